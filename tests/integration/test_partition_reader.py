"""`PartitionReader` against Tansu: a log whose last batch holds several records is read whole.

Tansu answers the end offset with the last batch's base offset + 1 (the batch of records 4..7 gives end
5), so reading ``[begin, end)`` record by record lost every record of the last batch but its first: stage
1 then saw one cut intent of a round instead of all, cut a range differently from the previous owner, and
stage 2 refused its records as conflicts (found by tests/e2e/test_scale_faults.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from sloguard.broker import LocalBroker
from sloguard.ingest.kafka import KafkaConfig
from sloguard.ingest.kafka_producer import BatchProducer
from sloguard.ingest.kafka_topics import PartitionReader

pytestmark = pytest.mark.kafka


async def test_reads_every_record_of_the_last_batch(
    broker: LocalBroker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(1, "reader")
    config = KafkaConfig(broker.bootstrap, (topic,))
    written = [[f"{b}-{i}".encode() for i in range(4)] for b in range(3)]
    async with BatchProducer(config, acks="all") as producer:
        for batch in written:  # one batch per send
            await asyncio.gather(*(await producer.send(topic, 0, batch)))
    reader = PartitionReader(config)
    await reader.start()
    try:
        begin, end = await reader.bounds(topic, 0)
        assert await reader.read(topic, 0, begin, end) == [v for batch in written for v in batch]
        # From the middle of a batch: the records from there on.
        assert await reader.read(topic, 0, 6, end) == written[1][2:] + written[2]
    finally:
        await reader.stop()
