"""The composition root of `sloguard run`: Kafka in, aggregator, snapshots out on /metrics.

Three tasks in one TaskGroup:

- consume: fetch a batch -> decode (rejects counted, optionally dead-lettered with their original
  bytes) -> refuse events from the future -> ``Aggregator.ingest`` -> mark the offsets absorbed;
  commit absorbed offsets every few seconds;
- tick: every second ``advance(now)`` + ``snapshot(now)`` -> render the exposition (in a worker
  thread: the snapshot is immutable) -> hand the bytes to the HTTP server;
- the HTTP server (its own accept loop) serves /metrics, /healthz, /readyz;
- with a checkpoint directory: every ``checkpoint.interval`` a checkpoint (state + the offsets it holds,
  `sloguard.checkpoint`), and only then are those offsets committed. On start the newest good checkpoint
  is restored and its partitions seek back to its offsets: after a crash nothing is lost or counted
  twice. Partitions revoked in a rebalance are checkpointed and committed before they go.

SIGHUP (and a change of the SLO file's content, checked every ``reload_interval_seconds``) reloads the
SLO file: an invalid file is refused with a log line naming file and field, and the running config stays;
a valid one replaces it, SLOs whose spec did not change keep their state, removed SLOs stop being
exported.

SIGTERM/SIGINT stop fetching; the batch in hand is absorbed, a last checkpoint is written, offsets are
committed, and the process exits 0 within ``shutdown_timeout_seconds``. Settings are read once, here,
and passed down as values.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from sloguard import __version__
from sloguard.checkpoint import Checkpoint, DirectoryStore, encode, load_latest
from sloguard.core.aggregator import Aggregator
from sloguard.clock import Clock, SystemClock
from sloguard.core.snapshot import Snapshot
from sloguard.core.spec import Config
from sloguard.export.collector import Exposition
from sloguard.export.http import HttpServer
from sloguard.ingest.decode import FUTURE_TIMESTAMP, Decoder
from sloguard.ingest.kafka import TP, DeadLetterError, Fetched, KafkaSource
from sloguard.logs import RateLimiter, get_logger
from sloguard.settings import Settings
from sloguard.specfile import SpecError, load_config
from sloguard.telemetry import Telemetry

#: Ticks run this long after a whole period, so events stamped just before it have arrived.
TICK_LAG_MS = 50
#: How often idle series (an SLO's ``series_ttl``) are looked for.
EVICT_EVERY_MS = 60_000

log = get_logger("sloguard.app")


@dataclass
class Daemon:
    """One running sloguard: state, source, exporter, server. Tests drive it in-process."""

    settings: Settings
    config: Config
    clock: Clock = field(default_factory=SystemClock)
    source: KafkaSource | None = None

    def __post_init__(self) -> None:
        self.aggregator = Aggregator(self.config)
        self.decoder = Decoder(vocabs=self.aggregator.vocabs)
        self.telemetry = Telemetry()
        self.exposition = self._exposition(self.config)
        host, port = self.settings.listen_address()
        self.http = HttpServer(host, port, health=self.healthy, ready=self.ready)
        ck = self.settings.checkpoint
        self.store = DirectoryStore(ck.dir, ck.keep) if ck.dir is not None else None
        if self.source is None:
            # Each fetched batch is absorbed before the next fetch, so a revocation has nothing in flight
            # to flush; with checkpoints, the revoked partitions' state is checkpointed before their
            # offsets are committed for the next owner.
            on_revoke = self._on_revoke if self.store is not None else None
            self.source = KafkaSource(self.settings.kafka.to_config(), on_revoke)
        #: Next offset per partition of the events in the aggregator (what a checkpoint records), with
        #: the number of the assignment it was read in (see `_checkpoint_offsets`).
        self.positions: dict[TP, tuple[int, int]] = {}
        #: Why the last checkpoint write failed (None: the last one worked, or none tried yet).
        self.checkpoint_error: str | None = None
        self._checkpoint_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._heartbeat = time.monotonic()
        self._last_commit = time.monotonic()
        self._limiter = RateLimiter()
        self.ticks = 0
        self._evicted_at = -1
        #: The snapshot published by the last tick (what /metrics shows).
        self.latest: Snapshot | None = None

    def _exposition(self, config: Config) -> Exposition:
        return Exposition(
            sloth_compat=self.settings.sloth_compat,
            top_k={s.name: s.export_top_k for s in config.slos if s.export_top_k is not None},
            version=__version__,
        )

    # -- health -------------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Alive: the tick loop ran recently (the event loop is not stuck)."""
        return time.monotonic() - self._heartbeat < max(10.0, 10 * self.settings.tick_seconds)

    def ready(self) -> tuple[bool, str]:
        """Ready: config loaded, consuming (group joined, broker reachable), a snapshot published."""
        if self.ticks == 0:
            return False, "no snapshot published yet"
        if self.checkpoint_error is not None:
            return False, f"checkpoints failing, state would be lost on restart: {self.checkpoint_error}"
        assert self.source is not None
        return self.source.ready()

    # -- lifecycle ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the daemon to shut down gracefully (signal handlers call this)."""
        self._stopping.set()

    async def run(self) -> int:
        assert self.source is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, lambda: self.reload("SIGHUP"))
        await self.http.start()
        log.info("http_listening", address=f"{self.settings.listen_address()[0]}:{self.http.port}")
        if self.store is not None:
            self.restore()
        else:
            log.warning("checkpoints_disabled", hint="set SLOGUARD_CHECKPOINT__DIR; state is lost on restart")
        try:
            await self.source.start()
        except Exception:
            await self.http.stop()
            raise
        log.info(
            "started",
            version=__version__,
            slos=[s.name for s in self.config.slos],
            topics=list(self.settings.kafka.topics),
            group=self.settings.kafka.group_id,
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._consume())
                tg.create_task(self._tick_loop())
                if self.store is not None:
                    tg.create_task(self._checkpoint_loop())
                if self.settings.config is not None and self.settings.reload_interval_seconds > 0:
                    tg.create_task(self._watch_loop(self.settings.config))
        finally:
            await self._shutdown()
        return 0

    async def _shutdown(self) -> None:
        assert self.source is not None
        try:
            await asyncio.wait_for(self.source.stop(), self.settings.shutdown_timeout_seconds)
        except TimeoutError:
            log.error("shutdown_commit_timeout", timeout_s=self.settings.shutdown_timeout_seconds)
        await self.http.stop()
        log.info(
            "stopped", events=self.telemetry.events_processed, commit_failures=self.source.commit_failures
        )

    # -- the two loops ------------------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self.source is not None
        commit_every = self.settings.commit_interval_seconds
        while not self._stopping.is_set():
            fetched = await self.source.fetch()
            if fetched.records:
                await self.absorb(fetched)
            if time.monotonic() - self._last_commit >= commit_every:
                await self._commit()
        if self.store is not None:
            try:
                await asyncio.wait_for(self.checkpoint("shutdown"), self.settings.shutdown_timeout_seconds)
            except TimeoutError:
                log.error("shutdown_checkpoint_timeout", timeout_s=self.settings.shutdown_timeout_seconds)
        await self._commit()

    async def absorb(self, fetched: Fetched) -> None:
        """Decode, dead-letter what is rejected, ingest, then mark the offsets absorbed."""
        assert self.source is not None
        t = self.telemetry
        dead_letter = self.settings.kafka.dead_letter_topic is not None
        rejected: list[tuple[str, bytes]] | None = [] if dead_letter else None
        before = t.invalid.total
        now = self.clock.now_ms()
        future_before = t.invalid.counts.get(FUTURE_TIMESTAMP, 0)
        # Events stamped beyond now + the allowed skew are refused like malformed ones (counted,
        # dead-lettered with their bytes): the rings keep one minute of room past now.
        horizon = now + int(self.settings.allowed_skew_seconds * 1000)
        batch = self.decoder.decode_many(fetched.records, t.invalid, rejected, max_ts_ms=horizon)
        t.events_future += t.invalid.counts.get(FUTURE_TIMESTAMP, 0) - future_before
        t.records_consumed += len(fetched.records)
        if len(batch):
            late = batch.ts_ms < now - int(self.settings.late_after_seconds * 1000)
            t.events_late += int(late.sum())
            self.aggregator.ingest(batch)
            t.events_processed += len(batch)
        if rejected:
            # Dead-letter before marking absorbed: a crash in between re-delivers, never loses.
            dropped = await self._dead_letter(rejected)
            if dropped is None:
                return  # stopping with the dead-letter topic unreachable: leave these offsets uncommitted
            t.dead_lettered += len(rejected) - dropped
            t.dead_letter_dropped += dropped
        if t.invalid.total > before:
            self._log_invalid(t.invalid.total - before)
        n = self.source.assignments
        self.positions.update({tp: (o, n) for tp, o in self.source.current(fetched.offsets).items()})
        if self.store is None or self.checkpoint_error is not None:
            # Without (working) checkpoints, commit what the aggregator holds; with them, only what a
            # checkpoint holds (`checkpoint`), so a commit never runs ahead of durable state.
            self.source.absorbed(fetched.offsets)

    async def _dead_letter(self, rejected: list[tuple[str, bytes]]) -> int | None:
        """Publish to the dead-letter topic, retrying with backoff until it works or we stop.

        Returns how many records were too large to ever be written (skipped, logged), or None when
        stopping before it worked.
        """
        assert self.source is not None
        delay = 0.5
        while True:
            try:
                dropped = await self.source.dead_letter(rejected)
                if dropped:
                    log.error(
                        "dead_letter_too_large",
                        records=dropped,
                        limit_bytes=self.settings.kafka.dead_letter_max_bytes,
                        largest_bytes=max(len(p) for _, p in rejected),
                        hint="raise SLOGUARD_KAFKA__DEAD_LETTER_MAX_BYTES and the topic's max.message.bytes",
                    )
                return dropped
            except DeadLetterError as exc:
                ok, suppressed = self._limiter.allow("dead_letter", time.monotonic())
                if ok:
                    log.error(
                        "dead_letter_failed",
                        error=str(exc),
                        records=len(rejected),
                        suppressed_lines=suppressed,
                    )
            if self._stopping.is_set():
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, 10.0)

    def _log_invalid(self, n: int) -> None:
        ok, suppressed = self._limiter.allow("invalid", time.monotonic())
        if ok:
            log.warning(
                "invalid_events",
                count=n,
                by_reason=dict(self.telemetry.invalid.counts),
                suppressed_lines=suppressed,
            )

    async def _commit(self) -> None:
        assert self.source is not None
        self._last_commit = time.monotonic()
        if not await self.source.commit():
            self.telemetry.commit_failures = self.source.commit_failures
            ok, suppressed = self._limiter.allow("commit", time.monotonic())
            if ok:
                log.error("commit_failed", failures=self.source.commit_failures, suppressed_lines=suppressed)

    # -- reload -------------------------------------------------------------------------------------

    def reload(self, why: str) -> bool:
        """Re-read the SLO file; apply it if valid, keeping the state of every unchanged SLO.

        Synchronous on the event loop, so no batch is half-absorbed across the switch.
        """
        path = self.settings.config
        if path is None:
            log.warning("reload_ignored", reason="no SLO file path (--config) to re-read", trigger=why)
            return False
        t = self.telemetry
        try:
            config = load_config(path)
        except SpecError as exc:
            t.reload_failures += 1
            t.last_reload_ok = False
            log.error("reload_refused", file=str(path), trigger=why, problems=list(exc.problems))
            return False
        t.last_reload_ok = True
        if config == self.config:
            log.info("reload_unchanged", file=str(path), trigger=why)
            return True
        fresh = Aggregator(config)
        report = fresh.restore_state(self.aggregator.export_state())
        self.aggregator = fresh
        # New vocabularies come with the new aggregator: the decoder must write ids into those.
        self.decoder = Decoder(vocabs=fresh.vocabs)
        self.config = config
        self.exposition = self._exposition(config)
        t.reloads += 1
        log.info(
            "reloaded",
            file=str(path),
            trigger=why,
            kept=list(report.restored),
            new_or_changed=list(report.fresh),
            removed=list(report.dropped),
        )
        return True

    async def _watch_loop(self, path: Path) -> None:
        """Reload when the file's content changes (Kubernetes swaps ConfigMap files by symlink)."""
        last = _read_or_none(path)
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.reload_interval_seconds)
            current = _read_or_none(path)
            if current is not None and current != last:
                last = current
                self.reload("file changed")

    # -- checkpoints --------------------------------------------------------------------------------

    def restore(self) -> None:
        """Load the newest good checkpoint (start-up): state into the aggregator, offsets to seek to."""
        assert self.store is not None and self.source is not None
        where = self.store.describe()
        try:
            self.store.prepare()
        except OSError as exc:
            self.checkpoint_error = f"{where}: {exc.strerror or exc}"
            log.error("checkpoint_dir_unusable", dir=where, error=str(exc))
            return
        found = load_latest(
            self.store, lambda name, why: log.error("checkpoint_refused", dir=where, file=name, reason=why)
        )
        if found is None:
            log.info("no_checkpoint", dir=where, hint="starting with empty state")
            return
        name, cp = found
        report = self.aggregator.restore_state(cp.state)
        self.source.seek_on_assign(cp.offsets)
        # Assignment 0 marks "restored": valid once the source has sought to it (`_checkpoint_offsets`).
        self.positions = {tp: (o, 0) for tp, o in cp.offsets.items()}
        log.info(
            "checkpoint_restored",
            dir=where,
            file=name,
            taken_at_ms=cp.created_ms,
            events=cp.state.events,
            offsets={f"{t}/{p}": o for (t, p), o in sorted(cp.offsets.items())},
            restored=list(report.restored),
            fresh=list(report.fresh),
            dropped=list(report.dropped),
        )

    def _checkpoint_offsets(self) -> dict[TP, int]:
        assert self.source is not None
        current = self.source.assignments
        if current == 0:
            return {tp: o for tp, (o, _) in self.positions.items()}  # not joined yet: what was restored
        # Only offsets read in the current assignment (or restored for the first): after a rebalance or
        # a lost membership a partition's old offset may be stale (another member moved on, or the
        # broker lost the topic), and committing it would make the group skip or re-read records.
        owned = self.source.assignment
        sought = self.source.sought
        return {
            tp: o
            for tp, (o, n) in self.positions.items()
            if tp in owned and (n == current or (n == 0 and sought.get(tp) == (o, current)))
        }

    async def checkpoint(self, reason: str) -> bool:
        """Write a checkpoint of the current state and offsets, then mark those offsets for commit."""
        assert self.store is not None and self.source is not None
        store = self.store
        async with self._checkpoint_lock:
            started = time.perf_counter()
            # Taken together, between two absorbs (one event loop): the state holds exactly the events
            # before these offsets. Exporting copies, so ingesting may go on while the thread writes.
            offsets = self._checkpoint_offsets()
            cp = Checkpoint(
                state=self.aggregator.export_state(),
                offsets=offsets,
                created_ms=self.clock.now_ms(),
                sloguard_version=__version__,
                info={"config": str(self.settings.config or ""), "reason": reason},
            )

            def write() -> tuple[str, int]:
                data = encode(cp)
                return store.save(data), len(data)

            t = self.telemetry
            try:
                name, size = await asyncio.to_thread(write)
            except OSError as exc:
                t.checkpoint_failures += 1
                first = self.checkpoint_error is None
                self.checkpoint_error = f"{store.describe()}: {exc.strerror or exc}"
                ok, suppressed = self._limiter.allow("checkpoint", time.monotonic())
                if ok or first:
                    log.error(
                        "checkpoint_failed",
                        dir=store.describe(),
                        error=str(exc),
                        reason=reason,
                        failures=t.checkpoint_failures,
                        suppressed_lines=suppressed,
                    )
                return False
            if self.checkpoint_error is not None:
                log.info("checkpoint_recovered", dir=store.describe())
            self.checkpoint_error = None
            t.checkpoints_written += 1
            t.checkpoint_bytes = size
            t.checkpoint_duration_seconds = time.perf_counter() - started
            t.checkpoint_last_success_seconds = cp.created_ms / 1000
            log.debug("checkpoint_written", file=name, bytes=size, reason=reason)
            self.source.absorbed(offsets)
        # Commit at once: until then a new owner of these partitions (after a crash of this process)
        # would start before offsets this checkpoint already holds.
        await self._commit()
        return True

    async def _on_revoke(self) -> None:
        # Partitions are about to go to another member: make our state for them durable first; the
        # source then commits the offsets this checkpoint holds.
        await self.checkpoint("rebalance")

    async def _checkpoint_loop(self) -> None:
        interval = self.settings.checkpoint.interval
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
            if not self._stopping.is_set():
                await self.checkpoint("interval")

    async def _tick_loop(self) -> None:
        period_ms = int(self.settings.tick_seconds * 1000)
        while not self._stopping.is_set():
            await self.tick()
            # Tick just after each whole tick period of the wall clock: a bucket that closes at a whole
            # second is then published within ~TICK_LAG, not up to a whole period later.
            wait_ms = period_ms - self.clock.now_ms() % period_ms + TICK_LAG_MS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), min(wait_ms, period_ms + TICK_LAG_MS) / 1000)

    async def tick(self) -> None:
        """One evaluation: advance to now, snapshot, render off the loop, publish."""
        assert self.source is not None
        started = time.perf_counter()
        now = self.clock.now_ms()
        self.aggregator.advance(now)
        if now // EVICT_EVERY_MS != self._evicted_at:
            self._evicted_at = now // EVICT_EVERY_MS
            evicted = self.aggregator.evict_idle(now)
            if evicted:
                log.info("idle_series_evicted", per_slo=evicted)
        snapshot = self.aggregator.snapshot(now)
        t = self.telemetry
        t.consumer_lag = self.source.lag()
        t.commit_failures = self.source.commit_failures
        t.tick_duration_seconds = time.perf_counter() - started
        telemetry = t.snapshot()
        render_start = time.perf_counter()
        body = await asyncio.to_thread(self.exposition.render_chunks, snapshot, telemetry)
        t.render_duration_seconds = time.perf_counter() - render_start
        self.http.set_metrics(body)
        self.latest = snapshot
        self._heartbeat = time.monotonic()
        self.ticks += 1


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


async def run(settings: Settings, config: Config) -> int:
    """`sloguard run`: build the daemon and run it until SIGTERM/SIGINT."""
    return await Daemon(settings, config).run()
