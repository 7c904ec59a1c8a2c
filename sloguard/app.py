"""The composition root of `sloguard run`: Kafka in, aggregator, snapshots out on /metrics.

Tasks in one TaskGroup, each owned by its own module; this one only wires them and orders shutdown:

- consume: fetch a batch -> absorb it (`sloguard.absorb`: decode, refuse the future, dead-letter rejects,
  ingest, mark the offsets) -> commit every ``commit_interval_seconds``;
- tick: every second ``advance(now)`` (on the loop) + ``capture(now)`` (in a worker thread, the absorb step
  waiting meanwhile: `sloguard.engine.CopyGate`) -> publish the counts (`Published`), and to the HTTP
  server a render of them, evaluated and rendered when /metrics asks for it or just before a scrape is
  due (in a worker thread: the counts are a copy);
- the HTTP server (its own accept loop) serves /metrics, /healthz, /readyz;
- with a checkpoint directory, `sloguard.checkpointer`: restore on start, a checkpoint every
  ``checkpoint.interval``, on revocation and on shutdown;
- `sloguard.reloader`: SIGHUP and a change of the SLO file re-read it.

Delivery semantics live at one seam, `sloguard.ingest.offsets` (which offsets may be committed, when, and
after which rebalance), applied against the broker by `sloguard.ingest.kafka`. This module only orders the
steps: each batch is absorbed before the next fetch (so a revocation has nothing in flight to flush); with
checkpoints, offsets are committed only once a checkpoint holds them; a crash therefore re-reads from the
last commit or checkpoint, never skips.

SIGTERM/SIGINT stop fetching; the batch in hand is absorbed, a last checkpoint is written, offsets are
committed, and the process exits 0 within ``shutdown_timeout_seconds``. Settings are read once, here,
and passed down as values.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import gc
import itertools
import resource
import signal
import statistics
import threading
import time

from sloguard import __version__
from sloguard.absorb import SLICE_BYTES, Absorber
from sloguard.checkpoint import DirectoryStore
from sloguard.checkpointer import Checkpointer
from sloguard.clock import Clock, SystemClock
from sloguard.core.aggregator import Aggregator
from sloguard.core.history import BucketCounts
from sloguard.core.sla_live import LiveSla
from sloguard.core.snapshot import Counts, Snapshot
from sloguard.core.spec import Config, SloSpec
from sloguard.engine import Engine
from sloguard.export.collector import Body, Exposition
from sloguard.export.http import HttpServer
from sloguard.ingest.kafka import KafkaSource
from sloguard.ingest.offsets import OffsetLedger
from sloguard.logs import RateLimiter, get_logger
from sloguard.reloader import Reloader
from sloguard.settings import Settings
from sloguard.telemetry import GcPauses, Telemetry, TelemetrySnapshot
from sloguard.ui.routes import Ui

#: Ticks run this long after a whole period, so events stamped just before it have arrived.
TICK_LAG_MS = 50
#: How often idle series (an SLO's ``series_ttl``) are looked for.
EVICT_EVERY_MS = 60_000
#: A render for an expected scrape starts this much earlier than it would need to (scrapes jitter).
SCRAPE_MARGIN_S = 0.25
#: How many of the latest renders a render ahead of a scrape, and the age of a body served, allow for.
RECENT_RENDERS = 8
#: Record bytes absorbed per turn of the loop from `SCRAPE_MARGIN_S` before a scrape is due until it
#: arrives (`Absorber.slice_bytes`; else `sloguard.absorb.SLICE_BYTES`), for at most `SCRAPE_WINDOW_S`: its
#: request waits about five turns of the loop before its first byte (accept, transport, handler, request
#: head, answer), each a slice's absorb. Smaller slices cost more CPU per event (+12-24 % from 1 MiB
#: down), so only then. In-process at 100k series (a 16 MB gzip body, 4 MB fetches): first byte median
#: 57 ms at 2 MiB, 16 ms at 512 KiB, 13 ms at 256 KiB.
SCRAPE_SLICE_BYTES = 512 << 10
SCRAPE_WINDOW_S = 1.0
#: A tick that holds the event loop longer than this logs where the time went (``slow_tick``).
SLOW_TICK_S = 0.02

log = get_logger("sloguard.app")


class Daemon:
    """One running sloguard: source, engine, exporter, server, and the tasks between them. Tests drive it
    in-process; ``source`` may be given (then it gets no revocation checkpoint)."""

    def __init__(
        self,
        settings: Settings,
        config: Config,
        clock: Clock | None = None,
        source: KafkaSource | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.engine = Engine(config, sloth_compat=settings.sloth_compat, input_preset=settings.input.preset)
        self.telemetry = Telemetry()
        self._stopping = asyncio.Event()
        offsets = source.offsets if source is not None else OffsetLedger()
        ck = settings.checkpoint
        self.checkpointer = (
            Checkpointer(
                DirectoryStore(ck.dir, ck.keep),
                self.engine,
                offsets,
                self.telemetry,
                self.clock,
                self._commit,
                settings.config,
            )
            if ck.dir is not None
            else None
        )
        if source is None:
            on_revoke = self.checkpointer.on_revoke if self.checkpointer is not None else None
            source = KafkaSource(settings.kafka.to_config(), on_revoke, offsets=offsets)
        self.source = source
        self.absorber = Absorber(
            self.engine, offsets, source, self.telemetry, self.clock, settings, self._stopping
        )
        self.reloader = Reloader(settings.config, self.engine, self.telemetry)
        host, port = settings.listen_address()
        # The web UI and /api/v1: read-only, from the published snapshot (and, for one series' history,
        # the aggregator's buckets, read on the event loop: reads only, see `CopyGate`).
        routes = Ui(lambda: self.latest, self._bucket_counts) if settings.ui else None
        self.http = HttpServer(host, port, health=self.healthy, ready=self.ready, routes=routes)
        self.http.on_scrape = self._scraped
        #: The last scrape before the next one that smaller slices were planned for (`_slice_for_scrape`).
        self._sliced_after: float | None = None
        self._heartbeat = time.monotonic()
        self._last_commit = time.monotonic()
        self._limiter = RateLimiter()
        self.ticks = 0
        self._evicted_at = -1
        self._tick_started: float | None = None
        #: Garbage-collector pauses, for the ``slow_tick`` log line.
        self.gc_pauses = GcPauses()
        #: Renders running (`_render`), and how long the last few took (`_longest_render`).
        self._renders = 0
        self._render_seconds: collections.deque[float] = collections.deque(maxlen=RECENT_RENDERS)
        #: When (``time.monotonic``) the tick last rendered ahead of a scrape (`_prerender_due`).
        self._prerendered_at: float | None = None
        #: What the last tick published (its snapshot is what /metrics shows): `latest`.
        self._published: Published | None = None

    @property
    def latest(self) -> Snapshot | None:
        """The snapshot published by the last tick (evaluated now if nothing has asked for it yet: in the
        caller's thread), None before the first tick."""
        return None if self._published is None else self._published.snapshot()

    @property
    def exposition(self) -> Exposition:
        """The engine's exposition (replaced by a reload)."""
        return self.engine.exposition

    def _bucket_counts(
        self, spec: SloSpec, key: tuple[str, ...] | None, start_ms: int, end_ms: int, fine: bool
    ) -> BucketCounts | None:
        return self.engine.aggregator.bucket_counts(spec, key, start_ms, end_ms, fine=fine)

    def healthy(self) -> bool:
        """Alive: the tick loop ran recently (the event loop is not stuck)."""
        return time.monotonic() - self._heartbeat < max(10.0, 10 * self.settings.tick_seconds)

    def ready(self) -> tuple[bool, str]:
        """Ready: config loaded, consuming (group joined, broker reachable), a snapshot published."""
        if self.ticks == 0:
            return False, "no snapshot published yet"
        error = self.checkpointer.error if self.checkpointer is not None else None
        if error is not None:
            return False, f"checkpoints failing, state would be lost on restart: {error}"
        return self.source.ready()

    def stop(self) -> None:
        """Ask the daemon to shut down gracefully (signal handlers call this)."""
        self._stopping.set()

    def reload(self, why: str) -> bool:
        """Re-read the SLO file (`Reloader.reload`)."""
        return self.reloader.reload(why)

    async def run(self) -> int:
        """Restore, start the source, run the tasks until stopped, then shut down; returns the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, lambda: self.reload("SIGHUP"))
        await self.http.start()
        log.info("http_listening", address=f"{self.settings.listen_address()[0]}:{self.http.port}")
        if self.checkpointer is not None:
            self.checkpointer.restore()
        else:
            log.warning("checkpoints_disabled", hint="set SLOGUARD_CHECKPOINT__DIR; state is lost on restart")
        try:
            await self.source.start()
        except Exception:
            await self.http.stop()
            raise
        # What start-up made (modules, settings, the restored state) lives as long as the process: frozen,
        # a full collection no longer scans it (~60k objects, 12-55 ms a collection here, landing in
        # whatever runs then, a tick's capture included). Unfrozen on the way out (tests run many daemons).
        gc.collect()
        gc.freeze()
        self.gc_pauses.install()
        log.info(
            "started",
            version=__version__,
            slos=[s.name for s in self.engine.config.slos],
            topics=list(self.settings.kafka.topics),
            group=self.settings.kafka.group_id,
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._consume())
                tg.create_task(self._tick_loop())
                if self.checkpointer is not None:
                    tg.create_task(self.checkpointer.run(self.settings.checkpoint.interval, self._stopping))
                if self.settings.config is not None and self.settings.reload_interval_seconds > 0:
                    tg.create_task(self.reloader.watch(self.settings.reload_interval_seconds, self._stopping))
        finally:
            self.gc_pauses.uninstall()
            gc.unfreeze()
            await self._shutdown()
        return 0

    async def _shutdown(self) -> None:
        try:
            await asyncio.wait_for(self.source.stop(), self.settings.shutdown_timeout_seconds)
        except TimeoutError:
            log.error("shutdown_commit_timeout", timeout_s=self.settings.shutdown_timeout_seconds)
        await self.http.stop()
        log.info(
            "stopped", events=self.telemetry.events_processed, commit_failures=self.source.commit_failures
        )

    async def _consume(self) -> None:
        commit_every = self.settings.commit_interval_seconds
        while not self._stopping.is_set():
            fetched = await self.source.fetch()
            if fetched.records:
                await self.absorber.absorb(fetched)
            if time.monotonic() - self._last_commit >= commit_every:
                await self._commit()
        if self.checkpointer is not None:
            await self.checkpointer.shutdown(self.settings.shutdown_timeout_seconds)
        await self._commit()

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        if not await self.source.commit():
            self.telemetry.commit_failures = self.source.commit_failures
            ok, suppressed = self._limiter.allow("commit", time.monotonic())
            if ok:
                log.error("commit_failed", failures=self.source.commit_failures, suppressed_lines=suppressed)

    async def _tick_loop(self) -> None:
        period_ms = int(self.settings.tick_seconds * 1000)
        while not self._stopping.is_set():
            # Tick just after each whole tick period of the wall clock: a bucket that closes at a whole
            # second is then published within ~TICK_LAG, not up to a whole period later. A tick that ends
            # past the next one's time is followed at once (waiting for the period after would skip one).
            due = (self.clock.now_ms() // period_ms + 1) * period_ms + TICK_LAG_MS
            await self.tick()
            wait_ms = max(0, due - self.clock.now_ms())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), min(wait_ms, period_ms + TICK_LAG_MS) / 1000)

    async def tick(self) -> None:
        """One evaluation: advance to now (on the loop), copy the counts out in a worker thread while the
        absorb step waits (`CopyGate`), evaluate them in a worker thread, and publish the snapshot and its
        exposition (rendered on demand: `_render`)."""
        # Not while a checkpoint's copy of the state runs in a worker thread, nor between two slices of a
        # fetch being absorbed (`CopyGate`): advance writes.
        await self.engine.gate.writable()
        started = time.perf_counter()
        t = self.telemetry
        if self._tick_started is not None:
            t.tick_interval_seconds = max(t.tick_interval_seconds, started - self._tick_started)
        self._tick_started = started
        gc_before, full_before = self.gc_pauses.seconds, self.gc_pauses.full
        cpu_before, faults_before = time.thread_time(), _minor_faults()
        now = self.clock.now_ms()
        aggregator = self.engine.aggregator
        aggregator.advance(now)
        advanced = time.perf_counter()
        cpu, faults = time.thread_time() - cpu_before, _minor_faults() - faults_before
        evict = now // EVICT_EVERY_MS != self._evicted_at
        self._evicted_at = now // EVICT_EVERY_MS
        # The copy of the counts (~15 MB at 100k series) and, once a minute, the search for idle series
        # (a pass over every series' buckets: 50-150 ms at 100k with a series_ttl) run in a worker thread:
        # the loop serves requests and the Kafka client meanwhile; ingesting waits for them (`CopyGate`).
        # Their evaluation runs off the loop too.
        evicted, counts, evicted_at = await self.engine.gate.run_in_thread(
            functools.partial(_evict_and_capture, aggregator, now, evict)
        )
        captured = time.perf_counter()
        if evicted:
            log.info("idle_series_evicted", per_slo=evicted)
        cpu_before, faults_before = time.thread_time(), _minor_faults()
        t.consumer_lag = self.source.lag()
        t.commit_failures = self.source.commit_failures
        t.http_connections = dict(self.http.connection_counts)
        t.http_open_connections = self.http.open_connections()
        t.tick_duration_seconds = time.perf_counter() - started
        # What ran on the event loop (consumption and every request waited for it): before the copy and
        # after it. A worker thread holding the interpreter lock meanwhile is not counted.
        blocked = advanced - started + time.perf_counter() - captured
        t.tick_loop_blocked_seconds = max(t.tick_loop_blocked_seconds, blocked)
        slow = blocked > SLOW_TICK_S
        allowed, suppressed = self._limiter.allow("slow_tick", started) if slow else (False, 0)
        if allowed:
            log.warning(
                "slow_tick",
                suppressed_lines=suppressed,
                blocked_ms=round(blocked * 1000, 1),
                advance_ms=round((advanced - started) * 1000, 1),
                # In the worker thread (wall time, evict_ms once a minute): not part of blocked_ms.
                evict_ms=round((evicted_at - advanced) * 1000, 1),
                capture_ms=round((captured - evicted_at) * 1000, 1),
                gc_ms=round((self.gc_pauses.seconds - gc_before) * 1000, 1),
                # The loop's CPU in its parts (the rest: waiting for the core or the interpreter lock)
                # and page faults (fresh memory: each costs microseconds, several on a virtual machine).
                cpu_ms=round((cpu + time.thread_time() - cpu_before) * 1000, 1),
                page_faults=faults + _minor_faults() - faults_before,
                full_collections=self.gc_pauses.full - full_before,
                renders=self._renders,
            )
        telemetry = t.snapshot()
        # Evaluated when first asked for (a render, the UI), as the exposition is rendered: a 15 s scrape
        # interval costs one evaluation per 15 s, not fifteen (~20 ms each at 100k series). The SLAs are
        # asked every tick: `LiveSlas.results` keeps its own pace, in the background.
        slas = self.engine.slas.results(now) if self.engine.slas else None
        published = Published(counts, slas)
        # The exposition is rendered when asked for (at most once per tick), or just before a scrape is
        # due: a 15 s scrape interval costs one render per 15 s, not fifteen.
        exposition = self.engine.exposition
        self.http.set_metrics(functools.partial(self._render, exposition, published, telemetry))
        # A scrape gets the newest rendered body without waiting while it is at most a tick and two renders
        # (the longest of the recent ones) old, and the newest starts rendering for the next scrape. That is
        # as fresh as a daemon rendering back to back serves (a snapshot published a tick before its render
        # started, served until the next render is done), and safe for Prometheus: a series goes stale only
        # after 5 minutes without a sample, and its scrape interval (15-60 s) is many times this age. A
        # scrape that waited for a fresh render instead took a render (~0.5 s at 100k series, idle).
        self.http.metrics_max_age = self.settings.tick_seconds + 2 * self._longest_render()
        now_s = time.monotonic()
        if self._prerender_due(now_s):
            self.http.prerender()
            self._prerendered_at = now_s
        # A scrape that came as expected (rendered ahead of since the previous one) is served that body; a
        # render of the newest started then (the server's `render_behind`) would run through its transfer,
        # contending for the core, and be replaced by the render ahead of the next scrape. One that was
        # not expected starts it, for the next.
        times, at = self.http.scrape_times, self._prerendered_at
        self.http.render_behind = not times or at is None or at < times[-1]
        self._slice_for_scrape(now_s)
        self._published = published
        self._heartbeat = time.monotonic()
        self.ticks += 1

    async def _render(
        self, exposition: Exposition, published: Published, telemetry: TelemetrySnapshot
    ) -> Body:
        """Render one tick's exposition (in a worker thread, which evaluates the counts first if nothing
        has), reusing what the previous render made where the numbers did not change
        (`Exposition.render_body`)."""
        t = self.telemetry
        # The body reports the maxima since the previous one: start over.
        t.tick_loop_blocked_seconds = t.tick_interval_seconds = 0.0
        started = time.perf_counter()
        self._renders += 1
        try:
            # Gzipped at once when the latest scrape asked for gzip (Prometheus): the next one likely will.
            gz = self.http.last_scrape_gzip
            body = await asyncio.to_thread(
                lambda: exposition.render_body(published.snapshot(), telemetry, gzip=gz)
            )
        finally:
            self._renders -= 1
        t.render_duration_seconds = time.perf_counter() - started
        self._render_seconds.append(t.render_duration_seconds)
        return body

    def _longest_render(self) -> float:
        """The longest of the recent renders (they vary 2-3x under load: a scrape planned on the last one
        alone often came before the render was done)."""
        return max(self._render_seconds, default=0.0)

    def _prerender_due(self, now: float) -> bool:
        """Whether to render ahead of the next scrape now: it is due soon (`_scrape_due`), and no body
        rendered ahead since the last scrape will be young enough (``metrics_max_age``) to be served by
        it: when it is due, or, if it is late, when a render started now could be done. So one render
        per scrape when renders are slow (the body rendered ahead at the last tick that leaves time
        for one stays young enough: a tick and a render, plus the margin, against a tick and two); where a
        render is cheap (shorter than the margin), at most a second one, a tick later. Rendering back to
        back instead, until the scrape came, cost two or three renders per scrape at 100k series (~1.4 s
        each), the last one running through the scrape."""
        if not self._scrape_due(now):
            return False
        times = self.http.scrape_times
        at = self._prerendered_at
        if at is None or at < times[-1]:
            return True
        due = times[-1] + statistics.median(b - a for a, b in itertools.pairwise(times))
        served = due if due >= now else now + self._longest_render()
        return served - at > self.http.metrics_max_age

    def _slice_for_scrape(self, now: float) -> None:
        """Plan smaller absorb slices (`SCRAPE_SLICE_BYTES`) from a margin before the next scrape is due,
        if it is due before the next tick, until it arrives (`_scraped`) or `SCRAPE_WINDOW_S` later."""
        times = self.http.scrape_times
        if len(times) < 2 or self._sliced_after == times[-1]:
            return
        due = times[-1] + statistics.median(b - a for a, b in itertools.pairwise(times))
        if not now < due <= now + self.settings.tick_seconds + SCRAPE_MARGIN_S:
            return
        self._sliced_after = last = times[-1]
        loop = asyncio.get_running_loop()
        start = max(0.0, due - SCRAPE_MARGIN_S - now)
        loop.call_later(start, self._set_slices, SCRAPE_SLICE_BYTES, last)
        loop.call_later(start + SCRAPE_WINDOW_S, self._set_slices, SLICE_BYTES, last)

    def _set_slices(self, size: int, last: float) -> None:
        if self.http.scrape_times[-1] == last:  # not once the scrape came
            self.absorber.slice_bytes = size

    def _scraped(self) -> None:
        self.absorber.slice_bytes = SLICE_BYTES

    def _scrape_due(self, now: float) -> bool:
        """Whether a scrape is expected before a render started at the next tick could be done (the longest
        of the recent renders: `_longest_render`): the scrapers' interval (median of the last gaps) after
        the last scrape, at most one interval late."""
        times = self.http.scrape_times
        if len(times) < 2 or self._renders:
            return False  # one render at a time: renders queued behind each other help no scrape
        interval = statistics.median(b - a for a, b in itertools.pairwise(times))
        due = times[-1] + interval
        ahead = self.settings.tick_seconds + self._longest_render() + SCRAPE_MARGIN_S
        return now - interval <= due <= now + ahead


class Published:
    """One tick's counts, evaluated once, by whoever asks first (`snapshot`): the render of /metrics in a
    worker thread, the UI on the loop. `Counts.evaluate` is a function of the counts, so when it runs
    does not change the snapshot."""

    __slots__ = ("_counts", "_lock", "_slas", "_snapshot")

    def __init__(self, counts: Counts, slas: tuple[LiveSla, ...] | None) -> None:
        self._counts: Counts | None = counts
        self._slas = slas
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        """The counts evaluated (at the first call; the same object after)."""
        with self._lock:
            if self._snapshot is None:
                assert self._counts is not None
                snapshot = self._counts.evaluate()
                if self._slas is not None:
                    snapshot = dataclasses.replace(snapshot, slas=self._slas)
                self._snapshot, self._counts = snapshot, None  # (the copy is not needed any more)
            return self._snapshot


def _evict_and_capture(aggregator: Aggregator, now: int, evict: bool) -> tuple[dict[str, int], Counts, float]:
    """The tick's work in a worker thread: evict idle series (``evict``), copy the counts out; returns
    what was evicted per SLO, the counts, and when (``perf_counter``) the eviction ended."""
    evicted = aggregator.evict_idle(now) if evict else {}
    evicted_at = time.perf_counter()
    return evicted, aggregator.capture(now), evicted_at


def _minor_faults() -> int:
    """Page faults of the calling thread so far (minor: served from memory, no I/O)."""
    return resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)).ru_minflt


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one, as Go's runtime does for every program; returns the
    soft limit in force. Container runtimes start processes at a soft 1024, and the HTTP listener sizes its
    connection cap from it (`sloguard.export.http.connection_limits`)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit is not a valid soft one on every kernel: stop at 1M descriptors.
    target = min(hard, 1 << 20) if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def run(settings: Settings, config: Config) -> int:
    """`sloguard run`: build the daemon and run it until SIGTERM/SIGINT."""
    log.info("open_file_limit", soft=raise_open_file_limit())
    if settings.stage != "single":
        # Scaled out (docs/scaling.md): the stages have their own entry points; single stays as it was.
        from sloguard.scale.runtime import run_stage

        return await run_stage(settings, config)
    return await Daemon(settings, config).run()
