"""Batched produce: many records per request with ``create_batch``/``send_batch`` (about 10x ``send()``).

Used by the load generator and by stage 1 (partials, cut intents). Same connection settings and start-up
checks as `sloguard.ingest.kafka.KafkaSource` (`KafkaConfig`; topics must exist, never auto-created).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from sloguard.ingest.kafka import KafkaConfig, KafkaStartError, TopicsMissingError, cluster_metadata

__all__ = ["BatchProducer", "partition_for_key"]

log = logging.getLogger(__name__)


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's Java client (and aiokafka) would pick for ``key`` (murmur2)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class BatchProducer:
    """Writes many records per request with ``create_batch``/``send_batch`` (about 10x ``send()``).

    The topic must exist (checked at `start()`, never auto-created). ``max_batch_bytes`` bounds one
    record batch; bigger batches mean fewer requests.
    """

    def __init__(
        self,
        config: KafkaConfig,
        *,
        max_batch_bytes: int = 512 * 1024,
        linger_ms: int = 0,
        acks: int | str = 1,
    ) -> None:
        self.config = config
        self._acks = acks
        self._max_batch_bytes = max_batch_bytes
        self._linger_ms = linger_ms
        self._producer: Any = None
        self._partitions: dict[str, int] = {}

    async def start(self) -> None:
        """Connect and check the configured topics; raises `TopicsMissingError`/`KafkaStartError`."""
        c = self.config
        producer = AIOKafkaProducer(
            **c.client_options(),
            acks=self._acks,
            max_batch_size=self._max_batch_bytes,
            max_request_size=max(1 << 20, 2 * self._max_batch_bytes),
            linger_ms=self._linger_ms,
        )
        try:
            try:
                await producer.start()
                cluster = await cluster_metadata(
                    producer.client.fetch_all_metadata(), c.request_timeout_ms / 1000
                )
            except (KafkaError, TimeoutError) as exc:
                raise KafkaStartError(f"cannot reach Kafka at {c.bootstrap_servers}: {exc}") from exc
            missing = [t for t in c.topics if t not in cluster.topics()]
            if missing:
                raise TopicsMissingError(missing, c.bootstrap_servers)
            for topic in c.topics:
                self._partitions[topic] = len(cluster.partitions_for_topic(topic))
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    def partitions(self, topic: str) -> int:
        """Number of partitions of a configured topic."""
        return self._partitions[topic]

    async def send(
        self,
        topic: str,
        partition: int,
        values: Sequence[bytes],
        keys: Sequence[bytes | None] | None = None,
    ) -> list[asyncio.Future[Any]]:
        """Queue ``values`` (with ``keys``) for one partition in as few batches as fit.

        Returns one future per batch, done when the broker acknowledged it. Waits while the partition's
        previous batch is still being sent (that is the back-pressure).
        """
        producer = self._producer
        futures: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        for i, value in enumerate(values):
            key = keys[i] if keys is not None else None
            if batch.append(key=key, value=value, timestamp=None) is None:
                if batch.record_count() == 0:
                    raise ValueError(f"record of {len(value)} bytes exceeds max_batch_bytes")
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"record of {len(value)} bytes exceeds max_batch_bytes")
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def flush(self) -> None:
        """Wait until everything queued was sent."""
        await self._producer.flush()

    async def stop(self) -> None:
        """Flush and close."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def __aenter__(self) -> BatchProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
