"""Kafka in and out: the only module that imports aiokafka.

`KafkaSource` consumes request-log records in a consumer group with at-least-once delivery. The rules of
what may be committed live in `sloguard.ingest.offsets` (`OffsetLedger`, pure and unit-tested with no
broker: epochs, assignments, checkpoint seeks); this module applies them against the broker:

* ``enable_auto_commit=False``; `fetch()` is one ``getmany``; the app calls `absorbed()` once the aggregator
  has ingested a `Fetched`, and `commit()` commits exactly those offsets (never what was merely fetched).
* On partition revocation (a rebalance) the app's ``on_revoke`` callback runs first, so it can absorb what
  it still holds, then the absorbed offsets of the revoked partitions are committed and their pending
  offsets dropped. Offsets of a `Fetched` taken before a revocation are never committed afterwards.
* `stop()` commits the absorbed offsets itself: aiokafka does not call ``on_partitions_revoked`` on stop.
* Every commit is bounded by ``commit_timeout_s``: aiokafka retries retriable commit errors forever (a
  commit was seen hanging after a broker restart). A failed commit returns False and is counted; the
  offsets stay pending for the next commit. `CommitFailedError` (the group moved on without us) means the
  partitions are lost: their pending offsets are dropped, the new owner resumes from the last commit.
* `fetch()` never raises because the broker is away; `ready()` says so instead.
* `start()` checks that every topic exists with a metadata request that lists all topics. A request that
  *names* a topic would create it on brokers with auto-creation on (Tansu always is, and aiokafka always
  asks for it), hiding a typo behind an empty topic.

`dead_letter()` re-publishes rejected input byte for byte to an optional dead-letter topic, with the
rejection reason in a ``sloguard-reason`` header, so nothing the decoder refuses is lost.

`BatchProducer` (batched produce: the load generator, stage 1's partials) lives in
`sloguard.ingest.kafka_producer`; every module that speaks to Kafka is an ``ingest/kafka*.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
)
from aiokafka.helpers import create_ssl_context

from sloguard.ingest.offsets import TP, OffsetLedger, Offsets

__all__ = [
    "REASON_HEADER",
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "TP",
    "DeadLetterError",
    "Fetched",
    "KafkaConfig",
    "KafkaSource",
    "KafkaStartError",
    "Offsets",
    "TopicsMissingError",
]

log = logging.getLogger(__name__)

#: Header naming the rejection reason on dead-lettered records (values are `decode.REASONS`).
REASON_HEADER: Final = "sloguard-reason"
SECURITY_PROTOCOLS: Final = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})
#: SASL mechanisms that need only a user name and a password.
SASL_MECHANISMS: Final = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})
_OFFSET_RESETS: Final = frozenset({"earliest", "latest"})
_POSITION_TIMEOUT_S: Final = 0.05  # position() is instant when the position is known; never wait on it


class TopicsMissingError(ValueError):
    """Some configured topics do not exist on the broker (they are never auto-created)."""

    def __init__(self, missing: Iterable[str], bootstrap_servers: str) -> None:
        self.missing = tuple(sorted(missing))
        super().__init__(
            f"Kafka topics missing on {bootstrap_servers}: {', '.join(self.missing)} "
            "(create them first; sloguard never relies on broker auto-creation)"
        )


class KafkaStartError(RuntimeError):
    """The broker could not be reached (or refused us) while starting a client."""


class DeadLetterError(RuntimeError):
    """Rejected records could not be written to the dead-letter topic within the timeout.

    Do not mark the records they came from as absorbed: retry, so that nothing is lost.
    """


@dataclass(frozen=True)
class KafkaConfig:
    """Everything needed to talk to Kafka: where, what, who we are, and how long to wait.

    ``security_protocol`` is one of `SECURITY_PROTOCOLS`; the SASL ones need ``sasl_mechanism`` (one of
    `SASL_MECHANISMS`), ``sasl_username`` and ``sasl_password``; the SSL ones use the system trust store
    unless ``ssl_cafile`` is given, and a client certificate when ``ssl_certfile``/``ssl_keyfile`` are.
    The password is left out of ``repr`` and never logged.

    ``session_timeout_ms``/``heartbeat_interval_ms`` are the group membership timers; Tansu makes a new
    group wait half the session timeout for more members before the first assignment. ``ready_after_s``:
    `KafkaSource.ready()` turns false when the broker has not answered for that long.
    """

    bootstrap_servers: str
    topics: tuple[str, ...]
    group_id: str = "sloguard"
    client_id: str = "sloguard"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    dead_letter_topic: str | None = None
    max_records: int = 10_000
    fetch_timeout_ms: int = 500
    commit_timeout_s: float = 10.0
    auto_offset_reset: str = "earliest"
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    request_timeout_ms: int = 30_000
    dead_letter_timeout_s: float = 10.0
    #: Largest dead-letter record the producer sends (aiokafka's max_request_size; the topic's
    #: max.message.bytes must allow it too). Larger ones are dropped, counted and logged.
    dead_letter_max_bytes: int = 16 * 1024 * 1024
    ready_after_s: float = 15.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.bootstrap_servers.strip():
            problems.append("bootstrap_servers is empty")
        if not self.topics or any(not t for t in self.topics) or len(set(self.topics)) != len(self.topics):
            problems.append(f"topics must be distinct non-empty names, got {self.topics!r}")
        if self.dead_letter_topic is not None and self.dead_letter_topic in self.topics:
            problems.append("dead_letter_topic must not be one of the consumed topics")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            problems.append(f"security_protocol must be one of {sorted(SECURITY_PROTOCOLS)}")
        if self.security_protocol.startswith("SASL_"):
            if self.sasl_mechanism not in SASL_MECHANISMS:
                problems.append(f"sasl_mechanism must be one of {sorted(SASL_MECHANISMS)} with SASL")
            if not self.sasl_username or self.sasl_password is None:
                problems.append("sasl_username and sasl_password are required with SASL")
        elif self.sasl_mechanism or self.sasl_username or self.sasl_password is not None:
            problems.append("SASL settings given but security_protocol is not SASL_PLAINTEXT/SASL_SSL")
        has_ssl_files = self.ssl_cafile or self.ssl_certfile or self.ssl_keyfile
        if has_ssl_files and not self.security_protocol.endswith("SSL"):
            problems.append("SSL files given but security_protocol is not SSL/SASL_SSL")
        if self.ssl_keyfile and not self.ssl_certfile:
            problems.append("ssl_keyfile needs ssl_certfile")
        if self.auto_offset_reset not in _OFFSET_RESETS:
            problems.append(f"auto_offset_reset must be one of {sorted(_OFFSET_RESETS)}")
        if self.max_records < 1 or self.fetch_timeout_ms < 0:
            problems.append("max_records must be >= 1 and fetch_timeout_ms >= 0")
        timeouts = (self.commit_timeout_s, self.dead_letter_timeout_s, self.ready_after_s)
        if min(timeouts) <= 0 or self.request_timeout_ms <= 0:
            problems.append("timeouts must be positive")
        if not 0 < self.heartbeat_interval_ms < self.session_timeout_ms:
            problems.append("heartbeat_interval_ms must be positive and below session_timeout_ms")
        if problems:
            raise ValueError("invalid Kafka settings: " + "; ".join(problems))

    def client_options(self) -> dict[str, Any]:
        """Connection and security keyword arguments shared by aiokafka consumers and producers."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.security_protocol.endswith("SSL"):
            options["ssl_context"] = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        if self.security_protocol.startswith("SASL_"):
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options


@dataclass(frozen=True)
class Fetched:
    """One ``getmany``: the record values, and per partition the next offset to commit (last + 1).

    Records without a value (tombstones) are skipped but still counted in ``offsets``.
    """

    records: list[bytes]
    offsets: dict[TP, int]
    #: With ``KafkaSource(by_partition=True)`` (the stages of docs/scaling.md): per partition, the
    #: records' offsets, timestamps (ms) and values (None for a tombstone), in offset order.
    parts: dict[TP, tuple[list[int], list[int], list[bytes | None]]] = field(default_factory=dict)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Forwards aiokafka's rebalance callbacks to the source (kept out of its public API)."""

    def __init__(self, source: KafkaSource) -> None:
        self._source = source

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._source._on_revoked({(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._source._on_assigned({(tp.topic, tp.partition) for tp in assigned})


async def cluster_metadata(metadata: Awaitable[Any], timeout_s: float) -> Any:
    """The cluster metadata of a request naming no topic (so that nothing gets auto-created)."""
    # asyncio.timeout, not wait_for, everywhere here: Python 3.11's wait_for can swallow a cancellation
    # that arrives as the awaited call completes, and a lost cancel keeps a loop running forever.
    async with asyncio.timeout(timeout_s):
        return await metadata


class KafkaSource:
    """Consumes the configured topics in a consumer group; offsets are committed only once absorbed.

    The expected loop (one task; `commit()` may also run from a timer)::

        fetched = await source.fetch()
        batch = decoder.decode_many(fetched.records, rejections, rejected)
        aggregator.ingest(batch)
        await source.dead_letter(rejected)       # raises DeadLetterError: retry, do not absorb
        source.absorbed(fetched.offsets)
        ...
        await source.commit()

    ``on_revoke`` is awaited when partitions are revoked, before their offsets are committed: absorb
    whatever has been fetched but not absorbed yet there.

    Attributes for telemetry and tests: ``commit_failures`` (failed or timed-out commits),
    ``dead_letter_failures``, ``dead_lettered`` (records written to the dead-letter topic) and
    ``committed`` (last successfully committed offset per partition).
    """

    def __init__(
        self,
        config: KafkaConfig,
        on_revoke: Callable[[], Awaitable[None]] | None = None,
        *,
        consumer_factory: Callable[..., Any] = AIOKafkaConsumer,
        producer_factory: Callable[..., Any] = AIOKafkaProducer,
        offsets: OffsetLedger | None = None,
        by_partition: bool = False,
        on_assign: Callable[[set[TP]], Awaitable[Mapping[TP, int]]] | None = None,
    ) -> None:
        self.config = config
        # The stages need each partition's records with their offsets (`Fetched.parts`), and a hook on
        # assignment that restores state and says where to start (returned offsets are sought to).
        self._by_partition = by_partition
        self._on_assign = on_assign
        #: Every piece of assignment and offset state (pure; the rules of what may be committed).
        self.offsets = offsets if offsets is not None else OffsetLedger()
        self._on_revoke = on_revoke
        # The factories are seams for unit tests (fakes); they get aiokafka's keyword arguments.
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._consumer: Any = None
        self._producer: Any = None
        self._probe_task: asyncio.Task[None] | None = None
        self._state = "new"  # new -> started -> stopping -> stopped
        self._last_contact = 0.0
        self._last_error = ""
        self._missing_topics: tuple[str, ...] = ()
        self.commit_failures = 0
        self.dead_letter_failures = 0
        self.dead_lettered = 0
        self.dead_letter_too_large = 0

    @property
    def committed(self) -> dict[TP, int]:
        """Last successfully committed offset per partition."""
        return self.offsets.committed

    def __repr__(self) -> str:
        c = self.config
        return f"KafkaSource({c.bootstrap_servers!r}, {c.topics!r}, group={c.group_id!r}, {self._state})"

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, check that the topics exist, subscribe; the group is joined in the background.

        Raises `TopicsMissingError` naming the missing topics (the dead-letter topic included) and
        `KafkaStartError` if the broker cannot be reached within the request timeout.
        """
        if self._state != "new":
            raise RuntimeError(f"KafkaSource.start() called on a {self._state} source")
        c = self.config
        options = c.client_options()
        # The topics are not passed to the constructor: consumer.start() would then name them in a
        # metadata request and auto-create missing ones before we could check.
        consumer = self._consumer_factory(
            **options,
            group_id=c.group_id,
            enable_auto_commit=False,
            auto_offset_reset=c.auto_offset_reset,
            session_timeout_ms=c.session_timeout_ms,
            heartbeat_interval_ms=c.heartbeat_interval_ms,
        )
        producer = None
        try:
            try:
                await consumer.start()
                existing = await cluster_metadata(consumer.topics(), c.request_timeout_ms / 1000)
            except (KafkaError, TimeoutError) as exc:
                raise KafkaStartError(f"cannot reach Kafka at {c.bootstrap_servers}: {exc}") from exc
            wanted = (*c.topics, *((c.dead_letter_topic,) if c.dead_letter_topic else ()))
            missing = [t for t in wanted if t not in existing]
            if missing:
                raise TopicsMissingError(missing, c.bootstrap_servers)
            if c.dead_letter_topic is not None:
                # acks="all": a dead-lettered record is the only copy of that input once we commit.
                producer = self._producer_factory(
                    **options, acks="all", max_request_size=c.dead_letter_max_bytes
                )
                try:
                    await producer.start()
                except KafkaError as exc:
                    raise KafkaStartError(f"cannot reach Kafka at {c.bootstrap_servers}: {exc}") from exc
            consumer.subscribe(list(c.topics), listener=_Listener(self))
        except BaseException:
            await consumer.stop()
            if producer is not None:
                await producer.stop()
            raise
        self._consumer, self._producer = consumer, producer
        self._state = "started"
        self._last_contact = time.monotonic()
        self._probe_task = asyncio.create_task(self._probe_loop(), name="sloguard-kafka-probe")

    async def stop(self) -> None:
        """Commit what was absorbed (bounded by ``commit_timeout_s``), then close consumer and producer.

        Never raises because the broker is away; a failed final commit is counted and logged.
        """
        if self._state != "started":
            self._state = "stopped"
            return
        self._state = "stopping"
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
        try:
            if self.offsets.pending and not await self.commit():
                log.warning("final Kafka commit failed; absorbed records will be consumed again")
        finally:
            self._state = "stopped"
            self.offsets.leave()
            try:
                # Leaving the group tells the broker to rebalance now, not after the session timeout.
                await _stop_consumer(self._consumer)
            finally:
                if self._producer is not None:
                    await self._producer.stop()

    async def __aenter__(self) -> KafkaSource:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- consuming ------------------------------------------------------------------------------------

    async def fetch(self) -> Fetched:
        """One ``getmany`` (at most ``max_records``, waiting at most ``fetch_timeout_ms``).

        Returns an empty `Fetched` on timeout, while rebalancing and while the broker is away (the error
        is logged and shows in `ready()`); never raises a Kafka error.
        """
        c = self.config
        offsets = self.offsets.stamp()  # the epoch *before* waiting: a revocation may happen meanwhile
        if self._state != "started":
            return Fetched([], offsets)
        try:
            batches = await self._consumer.getmany(timeout_ms=c.fetch_timeout_ms, max_records=c.max_records)
        except ConsumerStoppedError:
            return Fetched([], offsets)  # stop() ran meanwhile, from another task
        except KafkaError as exc:
            self._note_error(f"fetch failed: {exc!r}")
            # Errors can come back instantly; do not spin.
            await asyncio.sleep(c.fetch_timeout_ms / 1000)
            return Fetched([], offsets)
        records: list[bytes] = []
        parts: dict[TP, tuple[list[int], list[int], list[bytes | None]]] = {}
        for tp, messages in batches.items():
            if not messages:
                continue
            records.extend(m.value for m in messages if m.value is not None)
            offsets[(tp.topic, tp.partition)] = messages[-1].offset + 1
            if self._by_partition:
                parts[(tp.topic, tp.partition)] = (
                    [m.offset for m in messages],
                    [m.timestamp for m in messages],
                    [m.value for m in messages],
                )
        if records or offsets:
            self._last_contact = time.monotonic()
        await self._update_lag(offsets)
        return Fetched(records, offsets, parts)

    async def _seek_to_checkpoint(self, tp: TP, offset: int) -> None:
        """Start a partition at a restored checkpoint's offset, unless the group's committed offset is
        further on (the rule: `OffsetLedger.start_at_checkpoint`)."""
        try:
            async with asyncio.timeout(self.config.request_timeout_ms / 1000):
                committed = await self._consumer.committed(TopicPartition(*tp))
        except (KafkaError, TimeoutError) as exc:
            # Unknown: trust the checkpoint (re-reading is what a plain consumer would do too).
            log.warning("cannot read the committed offset of %s (%r); using the checkpoint's", tp, exc)
            committed = None
        if not self.offsets.start_at_checkpoint(tp, offset, committed):
            log.info("partition %s: committed offset %d is past the checkpoint's %d", tp, committed, offset)
            return
        self._consumer.seek(TopicPartition(*tp), offset)
        log.info("partition %s starts at checkpoint offset %d (committed: %s)", tp, offset, committed)

    def seek(self, tp: TP, offset: int) -> bool:
        """Fetch owned partition ``tp`` from ``offset`` next (the scaled-out stages re-read records a
        fetch spanning a rebalance returned and they had to drop); False if ``tp`` is not assigned.
        The position a fetch reported before is forgotten (the lag would stay stale until records come)."""
        try:
            self._consumer.seek(TopicPartition(*tp), offset)
        except (KafkaError, ValueError) as exc:
            log.debug("cannot seek %s to %d: %r", tp, offset, exc)
            return False
        self.offsets.forget_position(tp)
        return True

    def generation(self) -> int:
        """The consumer group generation this member is in (-1: none); stage 1 stamps its cut intents
        with it (`sloguard.scale.cuts`)."""
        coordinator = getattr(self._consumer, "_coordinator", None)
        generation = getattr(coordinator, "generation", -1)
        return generation if isinstance(generation, int) else -1

    async def committed_offset(self, tp: TP) -> int | None:
        """The group's committed offset of ``tp`` (None: none); raises KafkaError/TimeoutError."""
        async with asyncio.timeout(self.config.request_timeout_ms / 1000):
            committed = await self._consumer.committed(TopicPartition(*tp))
        return committed if isinstance(committed, int) else None

    @property
    def assignment(self) -> frozenset[TP]:
        """Partitions assigned by the last rebalance."""
        return self.offsets.assignment

    def absorbed(self, offsets: Mapping[TP, int]) -> None:
        """Mark offsets as absorbed by the aggregator: the next `commit()` commits them.

        Pass `Fetched.offsets`. Offsets of partitions revoked since that fetch are ignored. A plain
        mapping (without a fetch epoch) is taken as current; it must then only hold partitions this
        source owns.
        """
        current = self.offsets.current(offsets)
        for tp in offsets.keys() - current.keys():
            log.debug("ignoring offset %d of %s: partition revoked since the fetch", offsets[tp], tp)
        self.offsets.absorbed(current)

    async def commit(self) -> bool:
        """Commit absorbed-but-uncommitted offsets, waiting at most ``commit_timeout_s``.

        True if there was nothing to commit or the commit succeeded; False otherwise (counted in
        ``commit_failures``; the offsets stay pending unless the partitions were lost to a rebalance).
        """
        return await self._commit(set(self.offsets.pending))

    async def _commit(self, partitions: set[TP]) -> bool:
        if self._consumer is None or self._state == "stopped":
            return not self.offsets.pending
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        offsets = self.offsets.to_commit(partitions, assigned)
        if not offsets:
            return True
        request = {TopicPartition(topic, partition): off for (topic, partition), off in offsets.items()}
        try:
            async with asyncio.timeout(self.config.commit_timeout_s):
                await self._consumer.commit(request)
        except CommitFailedError as exc:
            # The group rebalanced without us: the partitions belong to someone else now.
            self.commit_failures += 1
            self._lose(assigned, f"commit failed, partitions lost to a rebalance: {exc}")
            return False
        except (KafkaError, TimeoutError) as exc:
            self.commit_failures += 1
            self._note_error(f"commit failed: {exc!r}" if str(exc) else "commit timed out")
            return False
        self.offsets.commit_succeeded(offsets)
        return True

    # -- dead letters ---------------------------------------------------------------------------------

    async def dead_letter(self, items: Sequence[tuple[str, bytes]]) -> int:
        """Write each ``(reason, original bytes)`` to the dead-letter topic, header ``sloguard-reason``.

        Waits until the broker acknowledged all of them (``acks=all``), at most ``dead_letter_timeout_s``;
        raises `DeadLetterError` otherwise (some may have been written: a retry can duplicate them).
        A record too large for the producer or the topic can never be written: retrying would stall
        consumption forever, so it is skipped, counted in ``dead_letter_too_large`` and returned.
        Without a dead-letter topic configured this does nothing.
        """
        if not items or self._producer is None:
            return 0
        topic = self.config.dead_letter_topic
        too_large = (MessageSizeTooLargeError, RecordTooLargeError)

        async def send_all() -> int:
            futures = []
            dropped = 0
            for reason, payload in items:
                try:
                    futures.append(
                        await self._producer.send(
                            topic, value=payload, headers=[(REASON_HEADER, reason.encode())]
                        )
                    )
                except too_large:
                    dropped += 1
            results = await asyncio.gather(*futures, return_exceptions=True)
            for r in results:
                if isinstance(r, too_large):
                    dropped += 1
                elif isinstance(r, BaseException):
                    raise r
            return dropped

        try:
            async with asyncio.timeout(self.config.dead_letter_timeout_s):
                dropped = await send_all()
        except (KafkaError, TimeoutError) as exc:
            self.dead_letter_failures += 1
            raise DeadLetterError(f"could not write {len(items)} records to {topic!r}: {exc!r}") from exc
        self.dead_lettered += len(items) - dropped
        self.dead_letter_too_large += dropped
        return dropped

    # -- health ---------------------------------------------------------------------------------------

    def lag(self) -> dict[TP, int]:
        """Records behind the high watermark per assigned partition (as of the last fetch).

        Partitions not fetched from yet since their assignment are absent.
        """
        return self.offsets.lag()

    def ready(self) -> tuple[bool, str]:
        """(ready, why): started, broker answered recently, topics present, group joined."""
        if self._state != "started":
            return False, f"Kafka source {self._state}"
        silent = time.monotonic() - self._last_contact
        if silent > self.config.ready_after_s:
            why = f": {self._last_error}" if self._last_error else ""
            return False, f"no answer from Kafka for {silent:.0f} s{why}"
        if self._missing_topics:
            return False, f"topics missing on the broker: {', '.join(self._missing_topics)}"
        if not self.offsets.joined:
            return False, f"joining consumer group {self.config.group_id!r}"
        return True, f"consuming {len(self.offsets.assignment)} partitions in group {self.config.group_id!r}"

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until `ready()` is true, at most ``timeout_s`` (polling; for startup logs and tests)."""
        deadline = time.monotonic() + timeout_s
        while not self.ready()[0]:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # -- internals ------------------------------------------------------------------------------------

    async def _on_revoked(self, revoked: set[TP]) -> None:
        self.offsets.leave()
        if not revoked:
            return  # aiokafka calls this with nothing before the first join too
        if self._on_revoke is not None:
            try:
                await self._on_revoke()
            except Exception:
                # The rebalance must go on (aiokafka would only log it too); what was not absorbed is
                # simply not committed and will be consumed again by the next owner.
                log.exception("on_revoke callback failed")
        if _membership_lost(self._consumer):
            # Java calls this onPartitionsLost: the broker forgot us (session expired, or it restarted and
            # lost its state), so others may own the partitions and our offsets may not even exist there.
            # A commit now would go out with generation -1, which a broker accepts for an empty group.
            self._lose(revoked, "consumer group membership lost; dropping offsets not committed yet")
        elif self._state in ("started", "stopping"):
            await self._commit(revoked & set(self.offsets.pending))
        self.offsets.revoked(revoked)

    async def _on_assigned(self, assigned: set[TP]) -> None:
        for tp, offset in self.offsets.assign(assigned).items():
            await self._seek_to_checkpoint(tp, offset)
        if self._on_assign is not None and assigned:
            for tp, offset in (await self._on_assign(set(assigned))).items():
                self.seek(tp, offset)
        self.offsets.join(assigned)
        self._last_contact = time.monotonic()
        log.info("assigned %d partitions: %s", len(assigned), sorted(assigned))

    def _lose(self, partitions: set[TP], why: str) -> None:
        log.warning("%s", why)
        self._last_error = why
        self.offsets.lost(partitions)

    def _note_error(self, message: str) -> None:
        if message != self._last_error:
            log.warning("%s", message)
        self._last_error = message

    async def _update_lag(self, fetched: Mapping[TP, int]) -> None:
        """Record high watermarks and positions (the next offset `fetch()` returns) for `lag()`."""
        assigned = self._consumer.assignment()
        # Known once a fetch response for the partition arrived (records or not).
        highwaters = {
            (tp.topic, tp.partition): highwater
            for tp in assigned
            if (highwater := self._consumer.highwater(tp)) is not None
        }
        owned = [(tp.topic, tp.partition) for tp in assigned]
        for key in self.offsets.fetched(owned, highwaters, fetched):  # idle since assignment: ask once
            try:
                # Instant when the position is valid, which it is once a fetch answered for it.
                async with asyncio.timeout(_POSITION_TIMEOUT_S):
                    position = await self._consumer.position(TopicPartition(*key))
            except (KafkaError, TimeoutError):
                continue
            self.offsets.positioned(key, position)
        for key, position, highwater in self.offsets.past_end():
            await self._reset_past_end(key, position, highwater)

    async def _reset_past_end(self, key: TP, position: int, highwater: int) -> None:
        """A position past the end of the log: the topic was re-created, or the broker lost data (Kafka
        answers OFFSET_OUT_OF_RANGE and the consumer resets; a broker that just returns nothing would
        leave us waiting forever). Reset as ``auto_offset_reset`` says, and say so."""
        log.warning(
            "%s: position %d is past the end of the partition (%d): topic re-created or data lost; "
            "resetting to the %s",
            key,
            position,
            highwater,
            self.config.auto_offset_reset,
        )
        tp = TopicPartition(*key)
        try:
            async with asyncio.timeout(self.config.request_timeout_ms / 1000):
                if self.config.auto_offset_reset == "earliest":
                    await self._consumer.seek_to_beginning(tp)
                else:
                    await self._consumer.seek_to_end(tp)
        except (KafkaError, TimeoutError) as exc:
            self._note_error(f"reset of {key} failed: {exc!r}")
            return
        self.offsets.forget_position(key)

    async def _probe_loop(self) -> None:
        """Ask the broker for metadata now and then: proof of life for `ready()`, and topic checks."""
        c = self.config
        interval = min(2.0, c.ready_after_s / 3)
        while self._state == "started":
            try:
                existing = await cluster_metadata(self._consumer.topics(), interval)
            except (KafkaError, TimeoutError) as exc:
                self._note_error(f"metadata request failed: {exc!r}")
            else:
                self._last_contact = time.monotonic()
                self._missing_topics = tuple(t for t in c.topics if t not in existing)
                if self._last_error and not self._missing_topics:
                    log.info("Kafka answers again")
                    self._last_error = ""
            await asyncio.sleep(interval)


def _membership_lost(consumer: Any) -> bool:
    """Whether aiokafka reset its group generation: the coordinator no longer knows this member.

    aiokafka calls ``on_partitions_revoked`` both for a normal rebalance and after such a reset (it has
    no ``on_partitions_lost``); the reset generation (-1) is the only way to tell them apart.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    generation = getattr(coordinator, "generation", 0)
    return isinstance(generation, int) and generation < 0


async def _stop_consumer(consumer: Any) -> None:
    """``consumer.stop()``, working around an aiokafka bug seen when the broker is away.

    aiokafka 0.14's ``Fetcher.close()`` cancels its in-flight fetch tasks and awaits them without
    suppressing their ``CancelledError``; a task sleeping in its retry backoff (the broker is down)
    re-raises it, so ``stop()`` raises ``CancelledError`` before closing the client (aio-libs/aiokafka
    #647 is the same symptom elsewhere). Finish the job then: cancel what is left and close the client.
    """
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # a real cancellation of the caller, not the bug
        log.debug("aiokafka consumer.stop() leaked a CancelledError; finishing the shutdown")
        fetcher = getattr(consumer, "_fetcher", None)
        for pending in list(getattr(fetcher, "_pending_tasks", ())):
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
        client = getattr(consumer, "_client", None)
        if client is not None:
            await client.close()
