"""What both stages of the scaled-out mode share as processes: the HTTP server, the tick that publishes
/metrics, signals, the consume loop's periodic commit, and the entry point `run_stage`.

A stage is a `Stage`: it consumes in ``step`` (one fetch and what follows), says what to export in
``export_counts`` (stage 1: no series, only self-metrics; stage 2: the series it owns) and whether it
is ready. As in the single process, a tick copies the counts out on the event loop (where the state is
written); they are evaluated and rendered in a worker thread when /metrics asks for them, so the loop
goes on fetching, applying and answering /metrics meanwhile, and a tick nobody scrapes costs no
evaluation. The single-process daemon (`sloguard.app`) is untouched by this.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import math
import signal
import threading
import time
from typing import Protocol

from sloguard import __version__
from sloguard.clock import Clock, SystemClock
from sloguard.core.snapshot import Snapshot
from sloguard.core.spec import Config
from sloguard.export.collector import Exposition
from sloguard.export.http import HttpServer
from sloguard.export.text import Body
from sloguard.ingest.kafka import KafkaSource
from sloguard.logs import RateLimiter, get_logger
from sloguard.scale import faults
from sloguard.scale.view import OwnedCounts
from sloguard.settings import Settings
from sloguard.telemetry import Telemetry, TelemetrySnapshot

__all__ = ["Stage", "StageProcess", "run_stage"]

log = get_logger("sloguard.scale")

#: Ticks run this long after a whole period (as `sloguard.app.TICK_LAG_MS`).
TICK_LAG_MS = 50
#: While a stage applies a backlog (`Stage.behind`), its tick copies out the series (evaluated and
#: rendered when scraped) at most this often; the self-metrics are published every tick. Each such
#: refresh is of counts that the next record changes anyway, and it cost stage 2 about as much CPU as
#: applying the backlog. A refresh of bench-scale's 14k series (copy, evaluation, a render) costs
#: ~0.4 s, ~1M events' applying: at 5 s it was still a tenth of a long backlog's CPU, and on a loaded
#: host (a backlog taking longer in wall time) an extra one in bench-scale's. Prometheus scrapes every
#: 15-60 s anyway.
BEHIND_REFRESH_S = 10.0


class Stage(Protocol):
    """One stage's work; `StageProcess` runs it."""

    source: KafkaSource
    telemetry: Telemetry

    async def start(self) -> None: ...

    async def step(self, stopping: asyncio.Event) -> None:
        """One fetch and everything it leads to."""
        ...

    async def close(self) -> None:
        """Last checkpoint or commit; stop the clients."""
        ...

    def behind(self) -> bool:
        """Whether the stage is applying a backlog (its tick then refreshes the series less often)."""
        ...

    def export_counts(self, now_ms: int) -> OwnedCounts:
        """What to export at ``now_ms``, copied out of the state (on the event loop)."""
        ...

    def ready(self) -> tuple[bool, str]: ...


class StageProcess:
    """A stage as a daemon: /metrics, /healthz, /readyz, a tick every ``tick_seconds``, SIGTERM."""

    def __init__(self, settings: Settings, config: Config, stage: Stage, clock: Clock | None = None) -> None:
        self.settings = settings
        self.stage = stage
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.exposition = Exposition(
            sloth_compat=settings.sloth_compat,
            top_k={s.name: s.export_top_k for s in config.slos if s.export_top_k is not None},
            version=__version__,
        )
        host, port = settings.listen_address()
        self.http = HttpServer(host, port, health=self.healthy, ready=self.ready)
        self.stopping = asyncio.Event()
        self.ticks = 0
        #: What the last tick that refreshed the series copied out (`tick`), evaluated when asked.
        self.counts: OwnedCounts | None = None
        #: The last counts evaluated and their snapshot (`_evaluate`), and the lock of evaluate + render.
        self._snapshot: tuple[OwnedCounts, Snapshot] | None = None
        self._publishing = threading.Lock()
        self._heartbeat = time.monotonic()
        self._limiter = RateLimiter()
        #: `time.monotonic` of the last tick that refreshed the series (`tick`).
        self._refreshed = -math.inf
        #: Whether the last tick kept the previous snapshot (the stage was behind), and the event that
        #: ticks again at once, off the whole-second grid, when the stage has caught up since
        #: (`_consume`): a record applied just after a skipped tick is not held back up to a period.
        self._skipped = False
        self._wake = asyncio.Event()

    def healthy(self) -> bool:
        return time.monotonic() - self._heartbeat < max(10.0, 10 * self.settings.tick_seconds)

    def ready(self) -> tuple[bool, str]:
        if self.ticks == 0:
            return False, "no snapshot published yet"
        return self.stage.ready()

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        await self.http.start()
        log.info("http_listening", port=self.http.port, stage=self.settings.stage)
        try:
            await self.stage.start()
            # What start-up made (modules, settings, the Kafka clients) lives as long as the process:
            # frozen, a full collection no longer scans it, as in `sloguard.app` (bench-scale's merge
            # process: two full collections of ~90-100k objects, 30-40 ms each, in its 0.75 s of
            # applying and publishing, one of them in the render). Unfrozen on the way out.
            gc.collect()
            gc.freeze()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._consume())
                tg.create_task(self._tick_loop())
        finally:
            gc.unfreeze()
            await self.http.stop()
        log.info("stopped", stage=self.settings.stage)
        return 0

    async def _consume(self) -> None:
        try:
            while not self.stopping.is_set():
                await self.stage.step(self.stopping)
                if self._skipped and not self.stage.behind():
                    self._wake.set()
        finally:
            try:
                await asyncio.wait_for(self.stage.close(), self.settings.shutdown_timeout_seconds)
            except TimeoutError:
                log.error("shutdown_timeout", timeout_s=self.settings.shutdown_timeout_seconds)

    async def _tick_loop(self) -> None:
        """A tick just after each whole ``tick_seconds`` of the wall clock, as the single process ticks
        (`sloguard.app`): a fine bucket closes at a whole second, so what was applied by then is
        published within `TICK_LAG_MS`, not up to a period later; a tick that ends past the next one's
        time is followed at once. A tick that kept the last snapshot (the stage was behind) is followed
        as soon as the stage has caught up (`_wake`), not at the next whole period: the same number of
        evaluations, the last of them up to a period sooner."""
        period_ms = int(self.settings.tick_seconds * 1000)
        while not self.stopping.is_set():
            due = (self.clock.now_ms() // period_ms + 1) * period_ms + TICK_LAG_MS
            await self.tick()
            wait_ms = max(0, due - self.clock.now_ms())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(wait_ms, period_ms + TICK_LAG_MS) / 1000)
            self._wake.clear()

    async def tick(self) -> None:
        """Publish what the stage exports now, with its self-metrics: the counts are copied out here
        (``tick_duration_seconds``: the time the event loop spends on it); they are evaluated and the
        exposition rendered when /metrics asks for it (`_render`), as the single process renders. While
        the stage is applying a backlog (`Stage.behind`), the series are refreshed every
        `BEHIND_REFRESH_S` only: the ticks in between publish the self-metrics with the last counts."""
        started = time.perf_counter()
        behind = self.stage.behind()
        refresh = self.counts is None or not behind or time.monotonic() - self._refreshed >= BEHIND_REFRESH_S
        self._skipped = not refresh
        if refresh:
            self.counts = self.stage.export_counts(self.clock.now_ms())
            self._refreshed = time.monotonic()
        t = self.stage.telemetry
        t.consumer_lag = self.stage.source.lag()
        t.commit_failures = self.stage.source.commit_failures
        t.tick_duration_seconds = time.perf_counter() - started
        telemetry = t.snapshot()
        assert self.counts is not None
        # Evaluated and rendered when /metrics asks for it (at most once a tick), as the single process
        # renders: a 15 s scrape interval costs one evaluation and one render per 15 s, not fifteen. The
        # counts are those of this tick either way (copied out above): a later evaluation gives the
        # same snapshot (`OwnedCounts.evaluate` is a function of them).
        self.http.set_metrics(functools.partial(self._render, self.counts, telemetry))
        self._heartbeat = time.monotonic()
        self.ticks += 1

    def _evaluate(self, counts: OwnedCounts) -> Snapshot:
        """``counts`` evaluated (the last snapshot again if they are the last counts evaluated: a tick
        while behind keeps them). Under `_publishing`: one evaluation at a time (the stage's `ViewCache`
        keeps what they reuse)."""
        seen = self._snapshot
        if seen is None or seen[0] is not counts:
            seen = self._snapshot = (counts, counts.evaluate())
        return seen[1]

    def _publish(self, counts: OwnedCounts, telemetry: TelemetrySnapshot, gzip: bool) -> Body:
        """`_evaluate` and its exposition, reusing the pieces of the previous render whose numbers did not
        change (`Exposition.render_body`)."""
        with self._publishing:
            return self.exposition.render_body(self._evaluate(counts), telemetry, gzip=gzip)

    async def _render(self, counts: OwnedCounts, telemetry: TelemetrySnapshot) -> Body:
        """One tick's exposition (`_publish`), in a worker thread."""
        gz = self.http.last_scrape_gzip
        return await asyncio.to_thread(self._publish, counts, telemetry, gz)


async def run_stage(settings: Settings, config: Config) -> int:
    """`sloguard run --stage partial|merge`."""
    faults.check()
    stage: Stage
    if settings.stage == "partial":
        from sloguard.scale.stage1 import PartialStage

        stage = PartialStage(settings, config)
    else:
        from sloguard.scale.stage2 import MergeStage

        stage = MergeStage(settings, config)
    return await StageProcess(settings, config, stage).run()
