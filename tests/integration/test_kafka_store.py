"""`KafkaCheckpointStore` against a real (Tansu) broker: chunked round trip, newest complete wins, a
torn write falls back to the previous checkpoint, keys sharing a partition stay apart, the scan bound."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from aiokafka import AIOKafkaProducer

from sloguard.broker import LocalBroker
from sloguard.checkpoint import Checkpoint, decode, encode, load_latest
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.ingest.kafka import KafkaConfig
from sloguard.ingest.kafka_store import KafkaCheckpointStore, chunk_records
from tests.support.specs import config, slo

pytestmark = pytest.mark.kafka

NewTopic = Callable[..., str]
T0 = 1_767_225_600_000


@pytest.fixture
def stores(broker: LocalBroker, new_topic: NewTopic) -> Iterator[Callable[..., KafkaCheckpointStore]]:
    topic = new_topic(2, prefix="requests-sloguard-checkpoints")
    made: list[KafkaCheckpointStore] = []

    def make(key: str = "requests-sloguard-partials/1", **options: object) -> KafkaCheckpointStore:
        kafka = KafkaConfig(broker.bootstrap, (topic,))
        store = KafkaCheckpointStore(kafka, topic, 1, key, timeout_s=20.0, **options)  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for s in made:
        s.close()


def a_checkpoint(n: int) -> bytes:
    agg = Aggregator(config(slo(group_by=("customer",))))
    agg.ingest(
        EventBatch.from_events(
            Event(T0 + i * 1000, "checkout", "GET /a", f"cust-{i % 997}", 500 if i % 7 else 200, 1.0)
            for i in range(n)
        )
    )
    return encode(Checkpoint(agg.export_state(), {("requests-sloguard-partials", 1): n}, created_ms=T0))


def test_round_trip_in_chunks_newest_first(stores: Callable[..., KafkaCheckpointStore]) -> None:
    store = stores(chunk_bytes=4096)
    first, second = a_checkpoint(3000), a_checkpoint(5000)
    assert len(second) > 3 * 4096, "spans several chunks"
    n1, n2 = store.save(first), store.save(second)
    assert n2 > n1
    reader = stores(chunk_bytes=4096)  # another replica, after a rebalance
    assert reader.names()[:2] == [n2, n1]
    assert reader.read(n2) == second
    found = load_latest(reader, lambda name, why: pytest.fail(f"{name}: {why}"))
    assert found is not None and found[1].offsets == {("requests-sloguard-partials", 1): 5000}
    assert decode(reader.read(n1)).offsets == {("requests-sloguard-partials", 1): 3000}


def test_a_torn_write_falls_back_to_the_previous_checkpoint(
    broker: LocalBroker, stores: Callable[..., KafkaCheckpointStore]
) -> None:
    store = stores(chunk_bytes=4096)
    good = store.save(a_checkpoint(3000))
    torn = chunk_records(a_checkpoint(4000), uuid.uuid4().bytes, 4096)
    assert len(torn) > 2

    async def write_all_but_last() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        await producer.start()
        try:
            for r in torn[:-1]:
                await (await producer.send(store.tp.topic, r, key=store.key, partition=store.tp.partition))
        finally:
            await producer.stop()

    asyncio.run(write_all_but_last())
    assert stores(chunk_bytes=4096).names() == [good]


def test_keys_sharing_a_partition_see_only_their_own(stores: Callable[..., KafkaCheckpointStore]) -> None:
    mine, other = stores("requests-sloguard-partials/1"), stores("requests-sloguard-partials/5")
    a = mine.save(b"mine")
    b = other.save(b"other")
    assert mine.names() == [a] and other.names() == [b]
    assert mine.read(a) == b"mine"


def test_the_scan_is_bounded(stores: Callable[..., KafkaCheckpointStore]) -> None:
    """Checkpoints older than the last ``scan_records`` records are not looked at (documented bound)."""
    store = stores(scan_records=3)
    names = [store.save(os.urandom(100)) for _ in range(5)]
    assert store.names() == names[::-1][:3]


def test_an_unreachable_broker_is_an_oserror(broker: LocalBroker, new_topic: NewTopic) -> None:
    kafka = KafkaConfig("127.0.0.1:1", ("x",), request_timeout_ms=1000)
    store = KafkaCheckpointStore(kafka, "x", 0, "k", timeout_s=3.0)
    try:
        with pytest.raises(OSError, match="kafka topic x"):
            store.save(b"data")
    finally:
        store.close()
