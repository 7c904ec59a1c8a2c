"""The daemon consuming a pre-filled topic, measured from its own ticks (``benchmarks.daemon``'s
throughput and ``benchmarks.soak``'s capacity alone).

``/metrics`` is polled every 0.2 s, reading only its first lines; each tick's
``sloguard_snapshot_timestamp_seconds`` and ``sloguard_events_processed_total`` give (time, count)
pairs, and the rate is taken between the first and the last tick seen while consuming (start-up and
the consumer group join are excluded; they are reported apart). CPU is the daemon's user+system time
from ``/proc/PID/stat``, interpolated to those ticks.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.harness import (
    EVENTS,
    RENDER_S,
    SNAPSHOT_TS,
    TICK_S,
    check_alive,
    cpu_seconds,
    interp,
    peak_rss_kib,
    scrape,
)

POLL_S = 0.2


@dataclass
class Tick:
    ts: float  # the tick's evaluation time (daemon wall clock, s)
    events: float
    seen_at: float


@dataclass
class Consumed:
    """The daemon consuming a pre-filled topic."""

    events: int
    steady_events: float
    steady_wall_s: float
    steady_cpu_s: float
    basis: str
    ticks_seen: int
    start_to_first_tick_with_events_s: float
    start_to_done_s: float
    cpu_to_done_s: float
    render_s_max: float
    tick_s_max: float
    exposition_bytes: int
    peak_rss_kib: int

    @property
    def events_per_s(self) -> float:
        return self.steady_events / self.steady_wall_s if self.steady_wall_s > 0 else math.nan

    @property
    def events_per_cpu_s(self) -> float:
        return self.steady_events / self.steady_cpu_s if self.steady_cpu_s > 0 else math.nan

    @property
    def utilisation(self) -> float:
        return self.steady_cpu_s / self.steady_wall_s if self.steady_wall_s > 0 else math.nan


@dataclass
class Watched:
    """What the polls gathered: ticks by evaluation time, (wall time, CPU seconds) samples, maxima."""

    ticks: dict[float, Tick]
    cpu: list[tuple[float, float]]
    render_max: float = 0.0
    tick_max: float = 0.0
    length: int = 0
    rss_kib: int = 0


def steady_span(ticks: Sequence[Tick], target: int) -> tuple[Tick, Tick, str]:
    """The two ticks the rate is taken between, sorted ``ticks`` in, and how they were chosen:
    "steady" (the first and last seen while consuming) or "coarse"."""
    mid = [t for t in ticks if 0 < t.events < target]
    if len(mid) >= 2:
        return mid[0], mid[-1], "steady"
    # Too few ticks while consuming (a small --events): from the last idle tick to the first
    # complete one; over-counts by up to a tick at each end.
    before = [t for t in ticks if t.events == 0]
    a = before[-1] if before else ticks[0]
    b = next(t for t in ticks if t.events >= target)
    return a, b, "coarse"


def consumed(w: Watched, target: int, started: float) -> Consumed:
    """The figures of a finished watch (``started``: wall time the daemon was started)."""
    done_at, done_cpu = w.cpu[-1]
    series = sorted(w.ticks.values(), key=lambda t: t.ts)
    a, b, basis = steady_span(series, target)
    first = next((t for t in series if t.events > 0), series[-1])
    return Consumed(
        events=target,
        steady_events=b.events - a.events,
        steady_wall_s=b.ts - a.ts,
        steady_cpu_s=interp(w.cpu, b.ts) - interp(w.cpu, a.ts),
        basis=basis,
        ticks_seen=len(series),
        start_to_first_tick_with_events_s=first.ts - started,
        start_to_done_s=done_at - started,
        cpu_to_done_s=done_cpu,
        render_s_max=w.render_max,
        tick_s_max=w.tick_max,
        exposition_bytes=w.length,
        peak_rss_kib=w.rss_kib,
    )


async def _look(w: Watched, port: int, now: float) -> float | None:
    """One scrape into ``w``; the events processed it reported, None if it gave no tick."""
    try:
        got = await scrape(port, (SNAPSHOT_TS, EVENTS, RENDER_S, TICK_S))
    except (OSError, TimeoutError, ValueError, IndexError):
        return None
    v = got.values
    if SNAPSHOT_TS not in v or EVENTS not in v:
        return None
    ts, n = v[SNAPSHOT_TS], v[EVENTS]
    w.ticks.setdefault(ts, Tick(ts, n, now))
    w.render_max = max(w.render_max, v.get(RENDER_S, 0.0))
    w.tick_max = max(w.tick_max, v.get(TICK_S, 0.0))
    w.length = max(w.length, got.content_length)
    return n


async def watch(
    proc: subprocess.Popen[bytes], name: str, port: int, target: int, limit_s: float, started: float
) -> Consumed:
    """Poll /metrics every `POLL_S` until the daemon has processed ``target`` events."""
    w = Watched({}, [])
    deadline = time.monotonic() + limit_s
    while True:
        check_alive(proc, name)
        now = time.time()
        w.cpu.append((now, cpu_seconds(proc.pid)))
        w.rss_kib = peak_rss_kib(proc.pid)
        n = await _look(w, port, now)
        if n is not None and n >= target:
            break
        if time.monotonic() > deadline:
            done = max((t.events for t in w.ticks.values()), default=0)
            raise TimeoutError(f"{name}: {done:,.0f} of {target:,} events after {limit_s:g} s")
        await asyncio.sleep(POLL_S)
    return consumed(w, target, started)
