"""`KafkaCheckpointStore`: the `CheckpointStore` interface on a Kafka topic, for stage 2 (docs/scaling.md).

Every stage-2 replica can reach the broker, so checkpoints kept there move with their partials partition
to whichever replica is assigned it next. One store instance per partials partition: its checkpoints are
records keyed ``key`` (e.g. ``requests-sloguard-partials/7``) on one partition of the checkpoint topic
(``<input>-sloguard-checkpoints``, created beforehand like every sloguard topic).

* `save` cuts the checkpoint into chunks below ``chunk_bytes`` (Kafka's default ``max.message.bytes`` is
  1 MiB; Tansu takes more, tests/integration/test_broker_semantics.py), each naming the checkpoint's
  random id, its index, the chunk count, the total length and the CRC-32 of the whole, and returns once
  the broker acknowledged all of them (``acks=all``). Its name is the offset of its last chunk.
* `names` lists the complete checkpoints of ``key``, newest first: all chunks present, lengths and CRC
  right. A torn write (a crash between chunks) is simply not complete, so the previous checkpoint wins.
* Reading the latest means scanning: Tansu has no log compaction, and compaction would not help chunked
  values anyway (it keeps the newest record per key, so a torn write would erase the chunks of the
  previous checkpoint). The scan reads at most the last ``scan_records`` records of the partition; size
  it to hold a few checkpoints of every key sharing the partition, and give the topic a delete
  retention of several checkpoint intervals.

The interface is synchronous (the checkpointer calls it from a worker thread, and once at start-up), so
the store runs its own event loop on a thread of its own; every call is bounded by ``timeout_s`` and
failures surface as `OSError`, as `CheckpointStore` promises.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import uuid
import zlib
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from sloguard.ingest.kafka import KafkaConfig

__all__ = ["CHUNK_MAGIC", "KafkaCheckpointStore", "chunk_records"]

CHUNK_MAGIC: Final = b"SLGCKCH\n"
_CHUNK = struct.Struct("<8s16sIIQI")  # magic, checkpoint id, index, count, total length, crc32 of the whole

T = TypeVar("T")


def chunk_records(data: bytes, checkpoint_id: bytes, chunk_bytes: int) -> list[bytes]:
    """The record values of one checkpoint: chunks of at most ``chunk_bytes`` bytes, header included."""
    size = max(1, chunk_bytes - _CHUNK.size)
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    crc = zlib.crc32(data)
    return [
        _CHUNK.pack(CHUNK_MAGIC, checkpoint_id, i, len(pieces), len(data), crc) + piece
        for i, piece in enumerate(pieces)
    ]


def _assemble(chunks: dict[int, bytes], count: int, total: int, crc: int) -> bytes | None:
    """The checkpoint from its chunks, or None if some are missing or it does not check out."""
    if len(chunks) != count:
        return None
    data = b"".join(chunks[i] for i in range(count))
    return data if len(data) == total and zlib.crc32(data) == crc else None


class KafkaCheckpointStore:
    """Checkpoints of one key on one partition of a checkpoint topic (see the module docstring)."""

    def __init__(
        self,
        config: KafkaConfig,
        topic: str,
        partition: int,
        key: str,
        *,
        chunk_bytes: int = 512 * 1024,
        scan_records: int = 2000,
        timeout_s: float = 30.0,
    ) -> None:
        if chunk_bytes <= _CHUNK.size or scan_records < 1:
            raise ValueError("chunk_bytes must exceed the chunk header and scan_records be positive")
        self.config = config
        self.tp = TopicPartition(topic, partition)
        self.key = key.encode()
        self.chunk_bytes = chunk_bytes
        self.scan_records = scan_records
        self.timeout_s = timeout_s
        self._found: dict[str, bytes] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"ckpt-{topic}-{partition}", daemon=True
        )
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None

    def describe(self) -> str:
        return f"kafka topic {self.tp.topic} partition {self.tp.partition} key {self.key.decode()}"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, self.timeout_s), self._loop)
        try:
            return future.result()
        except (KafkaError, TimeoutError) as exc:
            raise OSError(f"{self.describe()}: {exc!r}") from exc

    def prepare(self) -> None:
        """Start the clients (idempotent). Raises OSError when the broker cannot be reached."""
        if self._producer is not None:
            return
        if not self._thread.is_alive():
            self._thread.start()
        self._run(self._start())

    async def _start(self) -> None:
        options = self.config.client_options()
        producer = AIOKafkaProducer(acks="all", max_request_size=self.chunk_bytes + 4096, **options)
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False, max_partition_fetch_bytes=4 * self.chunk_bytes, **options
        )
        try:
            await producer.start()
            await consumer.start()
        except BaseException:
            # Also on the timeout's cancellation: a half-started client must not be left open.
            await producer.stop()
            await consumer.stop()
            raise
        consumer.assign([self.tp])
        self._producer, self._consumer = producer, consumer

    def close(self) -> None:
        """Stop the clients and the store's thread."""
        if self._thread.is_alive():
            with_timeout = asyncio.run_coroutine_threadsafe(self._stop(), self._loop)
            with_timeout.result(self.timeout_s)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self.timeout_s)
        self._loop.close()

    async def _stop(self) -> None:
        for client in (self._producer, self._consumer):
            if client is not None:
                await client.stop()
        self._producer = self._consumer = None

    def save(self, data: bytes) -> str:
        self.prepare()
        return self._run(self._save(data))

    async def _save(self, data: bytes) -> str:
        assert self._producer is not None
        records = chunk_records(data, uuid.uuid4().bytes, self.chunk_bytes)
        futures = [
            await self._producer.send(self.tp.topic, r, key=self.key, partition=self.tp.partition)
            for r in records
        ]
        acks = await asyncio.gather(*futures)
        return f"offset-{acks[-1].offset:012d}"

    def names(self) -> list[str]:
        self.prepare()
        self._found = self._run(self._scan())
        return sorted(self._found, reverse=True)

    def read(self, name: str) -> bytes:
        if name not in self._found:
            self.names()
        try:
            return self._found[name]
        except KeyError:
            raise OSError(f"{self.describe()}: no complete checkpoint {name}") from None

    async def _scan(self) -> dict[str, bytes]:
        """Complete checkpoints of our key among the last ``scan_records`` records, by name."""
        consumer = self._consumer
        assert consumer is not None
        end = (await consumer.end_offsets([self.tp]))[self.tp]
        begin = (await consumer.beginning_offsets([self.tp]))[self.tp]
        consumer.seek(self.tp, max(begin, end - self.scan_records))
        # Per checkpoint id: its chunks, count, total, crc and the offset of the last chunk seen.
        parts: dict[bytes, tuple[dict[int, bytes], int, int, int, int]] = {}
        while await consumer.position(self.tp) < end:
            batch = await consumer.getmany(self.tp, timeout_ms=1000)
            for rec in batch.get(self.tp, []):
                value = rec.value
                if rec.key != self.key or value is None or len(value) < _CHUNK.size:
                    continue
                magic, cid, index, count, total, crc = _CHUNK.unpack_from(value)
                if magic != CHUNK_MAGIC or index >= count:
                    continue
                chunks, *_ = parts.setdefault(cid, ({}, count, total, crc, rec.offset))
                chunks[index] = value[_CHUNK.size :]
                parts[cid] = (chunks, count, total, crc, rec.offset)
        found = {}
        for chunks, count, total, crc, last in parts.values():
            data = _assemble(chunks, count, total, crc)
            if data is not None:
                found[f"offset-{last:012d}"] = data
        return found
