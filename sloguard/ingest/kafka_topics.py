"""Kafka for sloguard's internal topics (scaled-out mode, docs/scaling.md): create them, count their
partitions, read a partition's records by offset. One of aiokafka's homes, with `sloguard.ingest.kafka`
(consuming, producing) and `sloguard.ingest.kafka_store` (checkpoints on a topic).

Topics are created here on purpose, never by the broker's auto-creation: a typo must not become an empty
topic, and the partition counts are decisions (the partials topic's count fixes which process owns which
series; records say which count they were made for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from sloguard.ingest.kafka import KafkaConfig, KafkaStartError, TopicsMissingError

__all__ = ["PartitionReader", "create_topics", "partition_counts"]


async def partition_counts(config: KafkaConfig, topics: Sequence[str]) -> dict[str, int]:
    """The partition count of each of ``topics``; raises `TopicsMissingError` naming the missing ones
    (the metadata request lists every topic, so asking creates nothing)."""
    admin = AIOKafkaAdminClient(**config.client_options())
    try:
        async with asyncio.timeout(config.request_timeout_ms / 1000):
            await admin.start()
            cluster: Any = await admin._client.fetch_all_metadata()
    except (KafkaError, TimeoutError) as exc:
        raise KafkaStartError(f"cannot reach Kafka at {config.bootstrap_servers}: {exc!r}") from exc
    finally:
        await admin.close()
    missing = [t for t in topics if t not in cluster.topics()]
    if missing:
        raise TopicsMissingError(missing, config.bootstrap_servers)
    return {t: len(cluster.partitions_for_topic(t)) for t in topics}


async def create_topics(
    config: KafkaConfig, wanted: Sequence[tuple[str, int]]
) -> list[tuple[str, int, bool]]:
    """Create each ``(topic, partitions)`` that does not exist yet; returns ``(topic, partitions, created)``
    with the partition count the topic has. An existing topic is left as it is (its count is reported)."""
    admin = AIOKafkaAdminClient(**config.client_options())
    created: dict[str, bool] = {}
    try:
        async with asyncio.timeout(config.request_timeout_ms / 1000):
            await admin.start()
            existing = set(await admin.list_topics())
            for topic, partitions in wanted:
                if topic in existing:
                    created[topic] = False
                    continue
                try:
                    await admin.create_topics([NewTopic(topic, partitions, 1)])
                except TopicAlreadyExistsError:
                    created[topic] = False  # created meanwhile by another init step
                else:
                    created[topic] = True
    except (KafkaError, TimeoutError) as exc:
        raise KafkaStartError(f"cannot create topics on {config.bootstrap_servers}: {exc!r}") from exc
    finally:
        await admin.close()
    counts = await partition_counts(config, [t for t, _ in wanted])
    return [(t, counts[t], created[t]) for t, _ in wanted]


class PartitionReader:
    """Reads records of single partitions by offset, outside any consumer group (the cuts log's tail)."""

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self._consumer: Any = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(enable_auto_commit=False, **self.config.client_options())
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise KafkaStartError(f"cannot reach Kafka at {self.config.bootstrap_servers}: {exc!r}") from exc

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def bounds(self, topic: str, partition: int) -> tuple[int, int]:
        """(first offset, end offset) of the partition."""
        tp = TopicPartition(topic, partition)
        async with asyncio.timeout(self.config.request_timeout_ms / 1000):
            begin = (await self._consumer.beginning_offsets([tp]))[tp]
            end = (await self._consumer.end_offsets([tp]))[tp]
        return int(begin), int(end)

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[bytes]:
        """The record values from offset ``start`` to at least ``end - 1``, tombstones left out.

        Whole batches: records past ``end`` in the batch holding ``end - 1`` are kept. Tansu answers the
        end offset with the last batch's *base* offset + 1, so the rest of that batch lies past ``end``
        (a batch of several intents would otherwise lose all but its first record)."""
        tp = TopicPartition(topic, partition)
        consumer = self._consumer
        consumer.assign([tp])
        consumer.seek(tp, start)
        values: list[bytes] = []
        async with asyncio.timeout(self.config.request_timeout_ms / 1000):
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for rec in batch.get(tp, []):
                    if rec.value is not None:
                        values.append(rec.value)
        return values
