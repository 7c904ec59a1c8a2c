"""`KafkaCheckpointStore`: the `CheckpointStore` interface on a Kafka topic, for stage 2 (docs/scaling.md).

Every stage-2 replica can reach the broker, so checkpoints kept there move with their partials partition
to whichever replica is assigned it next. One store per partials partition: its checkpoints are records
keyed ``key`` (e.g. ``requests-sloguard-partials/7``) on one partition of the checkpoint topic
(``<input>-sloguard-checkpoints``, created beforehand like every sloguard topic).

* `save` cuts the checkpoint into chunks below ``chunk_bytes`` (Kafka's default ``max.message.bytes`` is
  1 MiB; Tansu takes more, tests/integration/test_broker_semantics.py), each naming the checkpoint's
  random id, its index, the chunk count, the total length and the CRC-32 of the whole, and returns once
  the broker acknowledged all of them (``acks=all``). Its name is the offset of its last chunk.
* `names` lists the complete checkpoints of ``key``, newest first (at most ``keep`` of them): all chunks
  present, lengths and CRC right. A torn write (a crash between chunks) is simply not complete, so the
  previous checkpoint wins.
* Reading the latest means scanning: Tansu has no log compaction, and compaction would not help chunked
  values anyway (it keeps the newest record per key, so a torn write would erase the chunks of the
  previous checkpoint). The scan looks at most at the last ``scan_records`` records of the partition;
  size it to hold a few checkpoints of every key sharing the partition, and give the topic a delete
  retention of several checkpoint intervals.

The stores of a process are thin views onto one `KafkaCheckpointClient`: one thread running one event
loop, one producer (started on the first save) and one consumer used only for reading (started on the
first `names`). What a scan found is remembered per checkpoint partition, for every key on it (its
complete checkpoints, the newest ``keep`` per key, and the chunks of checkpoints not complete yet), up to
the offset it read to; the next `names` of any key on that partition asks for the partition's ends and
reads only the records after that offset. Concurrent `names` calls are served by one scan of all the
partitions asked for (one request for their ends). `save` may be called from several threads at once.
`KafkaCheckpointStore(config, topic, partition, key)` shares a process-wide client per Kafka config and
options, reference-counted: closing its last store stops it.

The interface is synchronous (the checkpointer calls it from a worker thread, and once at start-up): every
call is bounded by ``timeout_s`` and failures surface as `OSError`, as `CheckpointStore` promises.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import uuid
import zlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from sloguard.ingest.kafka import KafkaConfig

__all__ = ["CHUNK_MAGIC", "KafkaCheckpointClient", "KafkaCheckpointStore", "chunk_records"]

CHUNK_MAGIC: Final = b"SLGCKCH\n"
_CHUNK = struct.Struct("<8s16sIIQI")  # magic, checkpoint id, index, count, total length, crc32 of the whole

T = TypeVar("T")

#: A scan asks only for records known to be there; a fetch left waiting for more holds up the requests
#: queued behind it on the connection (the next offset request), so it must not wait long.
_FETCH_WAIT_MS: Final = 50


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


@dataclass
class _Partial:
    """The chunks seen so far of one checkpoint, and the offset of its first."""

    count: int
    total: int
    crc: int
    first: int
    chunks: dict[int, bytes] = field(default_factory=dict)


@dataclass
class _Seen:
    """What the scans of one checkpoint partition found among the records below ``end``."""

    end: int = 0
    #: The partition's end offset as last listed (it only grows while the topic lives).
    listed_end: int = 0
    #: Per key: complete checkpoints by name -> (offset of the first chunk, data), at most ``keep``.
    complete: dict[bytes, dict[str, tuple[int, bytes]]] = field(default_factory=dict)
    #: Per (key, checkpoint id): chunks of a checkpoint not complete yet.
    partial: dict[tuple[bytes, bytes], _Partial] = field(default_factory=dict)

    def add(self, key: bytes, value: bytes, offset: int, keep: int) -> None:
        if len(value) < _CHUNK.size:
            return
        magic, cid, index, count, total, crc = _CHUNK.unpack_from(value)
        if magic != CHUNK_MAGIC or index >= count:
            return
        part = self.partial.setdefault((key, cid), _Partial(count, total, crc, offset))
        part.chunks[index] = value[_CHUNK.size :]
        if len(part.chunks) < part.count:
            return
        del self.partial[(key, cid)]
        data = _assemble(part.chunks, part.count, part.total, part.crc)
        if data is not None:
            mine = self.complete.setdefault(key, {})
            mine[f"offset-{offset:012d}"] = (part.first, data)
            for name in sorted(mine, reverse=True)[keep:]:
                del mine[name]

    def forget_before(self, start: int) -> None:
        """Drop what has a chunk before ``start`` (outside the scan window now)."""
        for key, mine in self.complete.items():
            self.complete[key] = {n: v for n, v in mine.items() if v[0] >= start}
        self.partial = {k: p for k, p in self.partial.items() if p.first >= start}


class KafkaCheckpointClient:
    """The thread, event loop and Kafka clients every `KafkaCheckpointStore` of a process shares.

    ``store(topic, partition, key)`` gives a store on it; closing that store leaves the client running.
    ``close()`` stops the clients and the thread (idempotent); the client cannot be used after it.
    """

    def __init__(
        self,
        config: KafkaConfig,
        *,
        chunk_bytes: int = 512 * 1024,
        scan_records: int = 2000,
        keep: int = 3,
        timeout_s: float = 30.0,
    ) -> None:
        if chunk_bytes <= _CHUNK.size or scan_records < 1 or keep < 1:
            raise ValueError("chunk_bytes must exceed the chunk header, scan_records and keep be positive")
        self.config = config
        self.chunk_bytes = chunk_bytes
        self.scan_records = scan_records
        self.keep = keep
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ckpt-kafka", daemon=True)
        self._thread_lock = threading.Lock()
        self._closed = False
        #: Records the scans have read (each is read once while it stays in the window).
        self.records_read = 0
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        # Loop-side state (touched on the loop's thread only).
        self._starting: asyncio.Lock | None = None
        self._seen: dict[TopicPartition, _Seen] = {}
        self._wanted: dict[TopicPartition, list[asyncio.Future[None]]] = {}
        self._scanner: asyncio.Task[None] | None = None

    def store(self, topic: str, partition: int, key: str) -> KafkaCheckpointStore:
        return KafkaCheckpointStore(self.config, topic, partition, key, client=self)

    def run(self, coro: Coroutine[Any, Any, T], where: str) -> T:
        """Run ``coro`` on the client's loop, bounded by ``timeout_s``; Kafka failures as OSError."""
        with self._thread_lock:
            if self._closed:
                coro.close()
                raise OSError(f"{where}: the checkpoint client is closed")
            if not self._thread.is_alive():
                self._thread.start()
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, self.timeout_s), self._loop)
        try:
            # The loop's own timeout fires first; this one only if the loop was stopped under us.
            return future.result(self.timeout_s + 5.0)
        except (KafkaError, TimeoutError) as exc:
            raise OSError(f"{where}: {exc!r}") from exc

    def close(self) -> None:
        """Stop the clients and the thread."""
        with self._thread_lock:
            if self._closed:
                return
            self._closed = True
            running = self._thread.is_alive()
        if running:
            try:
                asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(self.timeout_s)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(self.timeout_s)
        if not self._loop.is_running():
            self._loop.close()

    async def _stop(self) -> None:
        if self._scanner is not None:
            self._scanner.cancel()
            await asyncio.gather(self._scanner, return_exceptions=True)
        self._settle(self._wanted, KafkaError("the checkpoint client was closed"))
        for client in (self._producer, self._consumer):
            if client is not None:
                await client.stop()
        self._producer = self._consumer = None

    # -- on the loop -----------------------------------------------------------------------------------

    async def _started(self, producer: bool) -> AIOKafkaProducer | AIOKafkaConsumer:
        """The producer (or the consumer), started once by the first caller."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            client = self._producer if producer else self._consumer
            if client is not None:
                return client
            options = self.config.client_options()
            if producer:
                client = AIOKafkaProducer(acks="all", max_request_size=self.chunk_bytes + 4096, **options)
            else:
                client = AIOKafkaConsumer(
                    enable_auto_commit=False,
                    max_partition_fetch_bytes=4 * self.chunk_bytes,
                    fetch_max_wait_ms=_FETCH_WAIT_MS,
                    **options,
                )
            try:
                await client.start()
            except BaseException:
                # Also on the timeout's cancellation: a half-started client must not be left open.
                await client.stop()
                raise
            if isinstance(client, AIOKafkaProducer):
                self._producer = client
            else:
                self._consumer = client
            return client

    async def start_reading(self) -> None:
        await self._started(producer=False)

    async def save(self, tp: TopicPartition, key: bytes, data: bytes) -> str:
        producer = await self._started(producer=True)
        assert isinstance(producer, AIOKafkaProducer)
        records = chunk_records(data, uuid.uuid4().bytes, self.chunk_bytes)
        futures = [await producer.send(tp.topic, r, key=key, partition=tp.partition) for r in records]
        acks = await asyncio.gather(*futures)
        return f"offset-{acks[-1].offset:012d}"

    async def found(self, tp: TopicPartition, key: bytes) -> dict[str, bytes]:
        """The complete checkpoints of ``key`` on ``tp`` as of a scan that started after this call."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._wanted.setdefault(tp, []).append(waiter)
        if self._scanner is None or self._scanner.done():
            self._scanner = self._loop.create_task(self._scan_wanted())
        await waiter
        return {name: data for name, (_, data) in self._seen[tp].complete.get(key, {}).items()}

    async def _scan_wanted(self) -> None:
        """Scan what is wanted, all partitions at once, until nothing more is (calls during a scan wait for
        the next one: a scan that started before a call may miss what was written just before it)."""
        while self._wanted:
            wanted, self._wanted = self._wanted, {}
            outcome: BaseException | None = KafkaError("the checkpoint client was closed")
            try:
                await asyncio.wait_for(self._scan(sorted(wanted)), self.timeout_s)
                outcome = None
            except Exception as exc:  # noqa: BLE001 - handed to every waiter
                outcome = exc
            finally:
                self._settle(wanted, outcome)

    @staticmethod
    def _settle(
        wanted: dict[TopicPartition, list[asyncio.Future[None]]], outcome: BaseException | None
    ) -> None:
        for waiters in wanted.values():
            for w in waiters:
                if w.done():
                    continue
                if outcome is None:
                    w.set_result(None)
                else:
                    w.set_exception(outcome)

    async def _scan(self, tps: list[TopicPartition]) -> None:
        """Read each partition's new records within its last ``scan_records`` into `_seen`."""
        consumer = await self._started(producer=False)
        assert isinstance(consumer, AIOKafkaConsumer)
        # Paused until sought: a fetch in flight holds up the offset requests behind it (one connection).
        consumer.assign(tps)
        consumer.pause(*tps)
        ends, begins = await asyncio.gather(consumer.end_offsets(tps), consumer.beginning_offsets(tps))
        todo: dict[TopicPartition, int] = {}
        for tp in tps:
            seen = self._seen.setdefault(tp, _Seen())
            if ends[tp] < seen.listed_end:  # the topic was re-created or truncated
                seen = self._seen[tp] = _Seen()
            seen.listed_end = ends[tp]
            start = max(begins[tp], ends[tp] - self.scan_records)
            seen.forget_before(start)
            if seen.end < ends[tp]:
                consumer.seek(tp, max(seen.end, start))
                consumer.resume(tp)
                todo[tp] = ends[tp]
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000)
            for tp, records in batch.items():
                seen = self._seen[tp]
                self.records_read += len(records)
                for rec in records:
                    if rec.key is not None and rec.value is not None:
                        seen.add(rec.key, rec.value, rec.offset, self.keep)
            for tp in list(todo):
                position = await consumer.position(tp)
                if position >= todo[tp]:
                    # Whole batches: on Tansu the end offset can be below the last record read.
                    self._seen[tp].end = position
                    consumer.pause(tp)
                    del todo[tp]


class KafkaCheckpointStore:
    """Checkpoints of one key on one partition of a checkpoint topic (see the module docstring).

    With ``client``, a view onto it (`close` leaves it running); without, onto the process-wide client
    of ``config`` and the options, which closing the last such store stops.
    """

    def __init__(
        self,
        config: KafkaConfig,
        topic: str,
        partition: int,
        key: str,
        *,
        chunk_bytes: int = 512 * 1024,
        scan_records: int = 2000,
        keep: int = 3,
        timeout_s: float = 30.0,
        client: KafkaCheckpointClient | None = None,
    ) -> None:
        self.tp = TopicPartition(topic, partition)
        self.key = key.encode()
        self._shared = client is None
        self.client = (
            client if client is not None else _acquire(config, chunk_bytes, scan_records, keep, timeout_s)
        )
        self.config = self.client.config
        self._found: dict[str, bytes] = {}
        self._closed = False

    def describe(self) -> str:
        return f"kafka topic {self.tp.topic} partition {self.tp.partition} key {self.key.decode()}"

    def prepare(self) -> None:
        """Start the client's consumer (idempotent; `names` does it too). OSError if the broker is away."""
        self.client.run(self.client.start_reading(), self.describe())

    def close(self) -> None:
        """Let go of the client (stopping it if this was the last store sharing it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._shared:
            _release(self.client)

    def save(self, data: bytes) -> str:
        return self.client.run(self.client.save(self.tp, self.key, data), self.describe())

    def names(self) -> list[str]:
        self._found = self.client.run(self.client.found(self.tp, self.key), self.describe())
        return sorted(self._found, reverse=True)

    def read(self, name: str) -> bytes:
        if name not in self._found:
            self.names()
        try:
            return self._found[name]
        except KeyError:
            raise OSError(f"{self.describe()}: no complete checkpoint {name}") from None


_SharedKey = tuple[KafkaConfig, int, int, int, float]
_shared: dict[_SharedKey, tuple[KafkaCheckpointClient, int]] = {}
_shared_lock = threading.Lock()


def _acquire(
    config: KafkaConfig, chunk_bytes: int, scan_records: int, keep: int, timeout_s: float
) -> KafkaCheckpointClient:
    """The process-wide client of these settings, one more store using it."""
    key = (config, chunk_bytes, scan_records, keep, timeout_s)
    with _shared_lock:
        client, users = _shared.get(key) or (None, 0)
        if client is None:
            client = KafkaCheckpointClient(
                config, chunk_bytes=chunk_bytes, scan_records=scan_records, keep=keep, timeout_s=timeout_s
            )
        _shared[key] = (client, users + 1)
        return client


def _release(client: KafkaCheckpointClient) -> None:
    """One store fewer using ``client``; the last one closes it."""
    with _shared_lock:
        for key, (c, users) in _shared.items():
            if c is client:
                if users > 1:
                    _shared[key] = (c, users - 1)
                    return
                del _shared[key]
                break
    client.close()
