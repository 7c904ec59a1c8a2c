"""The soak's look at the daemon, about every second (`Poll`), and the printed rows it is summed into
(`Sample`, one every ``--sample-seconds``).

A poll reads the daemon's self-metrics from ``/metrics`` (each family summed over its label sets) and,
from ``/proc``, the resident set, CPU time and run-queue wait of the daemon, and the CPU time of the
broker and the load generator sharing the other core(s).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.harness import (
    EVENTS,
    RENDER_S,
    SNAPSHOT_TS,
    TICK_S,
    cpu_seconds,
    cpu_seconds_or_nan,
    meminfo_kib,
    runq_wait_s,
    scrape,
    status_kib,
)

LAG = "sloguard_consumer_lag"
CHECKPOINT_BYTES = "sloguard_checkpoint_bytes"
CHECKPOINT_S = "sloguard_checkpoint_duration_seconds"
CHECKPOINTS = "sloguard_checkpoints_total"
CHECKPOINT_FAILURES = "sloguard_checkpoint_failures_total"
COMMIT_FAILURES = "sloguard_commit_failures_total"
SCRAPED = frozenset(
    (
        EVENTS,
        SNAPSHOT_TS,
        LAG,
        TICK_S,
        RENDER_S,
        CHECKPOINT_BYTES,
        CHECKPOINT_S,
        CHECKPOINTS,
        CHECKPOINT_FAILURES,
        COMMIT_FAILURES,
    )
)
MIB = 2**20


@dataclass
class Poll:
    """One look at the daemon (about every second)."""

    t: float  # seconds since the load started (harness clock)
    snapshot_ts: float  # the tick's evaluation time (daemon wall clock)
    events: float
    lag: float | None  # summed over partitions; None before any partition reported
    tick_s: float
    render_s: float
    checkpoint_bytes: float
    checkpoint_s: float
    checkpoints: float
    checkpoint_failures: float
    commit_failures: float
    rss_mib: float
    cpu_s: float
    wait_s: float  # run-queue wait (see harness.runq_wait_s)
    broker_rss_mib: float
    broker_cpu_s: float
    loadgen_cpu_s: float
    mem_available_mib: float


@dataclass
class Sample:
    """One printed row: the polls of one ``--sample-seconds`` window."""

    t: float
    rss_mib: float
    lag_mean: float | None
    lag_max: float | None
    tick_p50_s: float
    tick_max_s: float
    render_max_s: float
    events: float
    events_per_s: float
    cpu_pct: float
    wait_pct: float
    broker_cpu_pct: float
    loadgen_cpu_pct: float
    checkpoint_bytes: float
    checkpoint_s: float
    checkpoints: float
    broker_rss_mib: float


async def poll(port: int, pid: int, broker_pid: int | None, loadgen_pid: int | None, t: float) -> Poll | None:
    """A look at the daemon at ``t``; None if its /metrics gave no tick."""
    rss = status_kib(pid, "VmRSS")[0] / 1024
    cpu = cpu_seconds(pid)
    wait = runq_wait_s(pid)
    broker_rss = status_kib(broker_pid, "VmRSS")[0] / 1024 if broker_pid else math.nan
    broker_cpu, loadgen_cpu = cpu_seconds_or_nan(broker_pid), cpu_seconds_or_nan(loadgen_pid)
    mem = meminfo_kib("MemAvailable") / 1024
    try:
        v = (await scrape(port, SCRAPED, families=True)).values
    except (OSError, TimeoutError, ValueError, IndexError):
        return None
    if SNAPSHOT_TS not in v or EVENTS not in v:
        return None
    return Poll(
        t=t,
        snapshot_ts=v[SNAPSHOT_TS],
        events=v[EVENTS],
        lag=v.get(LAG),
        tick_s=v.get(TICK_S, math.nan),
        render_s=v.get(RENDER_S, math.nan),
        checkpoint_bytes=v.get(CHECKPOINT_BYTES, 0.0),
        checkpoint_s=v.get(CHECKPOINT_S, 0.0),
        checkpoints=v.get(CHECKPOINTS, 0.0),
        checkpoint_failures=v.get(CHECKPOINT_FAILURES, 0.0),
        commit_failures=v.get(COMMIT_FAILURES, 0.0),
        rss_mib=rss,
        cpu_s=cpu,
        wait_s=wait,
        broker_rss_mib=broker_rss,
        broker_cpu_s=broker_cpu,
        loadgen_cpu_s=loadgen_cpu,
        mem_available_mib=mem,
    )


# -- over a run of polls -------------------------------------------------------------------------------


def events_rate(polls: Sequence[Poll]) -> float:
    """Events processed per second of the daemon's tick times, first poll to last."""
    if len(polls) < 2 or polls[-1].snapshot_ts <= polls[0].snapshot_ts:
        return math.nan
    return (polls[-1].events - polls[0].events) / (polls[-1].snapshot_ts - polls[0].snapshot_ts)


def busy_pct(polls: Sequence[Poll], attr: str = "cpu_s") -> float:
    """Percent of the wall time spent on CPU (or, ``wait_s``, waiting for one), first poll to last."""
    if len(polls) < 2 or polls[-1].t <= polls[0].t:
        return math.nan
    spent = float(getattr(polls[-1], attr)) - float(getattr(polls[0], attr))
    return 100 * spent / (polls[-1].t - polls[0].t)


def window(polls: Sequence[Poll], prev: Poll | None) -> Sample:
    """The row of ``polls``; rates are taken from ``prev`` (the last poll of the row before) if any."""
    last = polls[-1]
    first = prev or polls[0]
    lags = [p.lag for p in polls if p.lag is not None]
    ticks = list({p.snapshot_ts: p.tick_s for p in polls}.values())
    span = [first, last]
    return Sample(
        t=last.t,
        rss_mib=last.rss_mib,
        lag_mean=statistics.fmean(lags) if lags else None,
        lag_max=max(lags) if lags else None,
        tick_p50_s=statistics.median(ticks),
        tick_max_s=max(ticks),
        render_max_s=max(p.render_s for p in polls),
        events=last.events,
        events_per_s=events_rate(span),
        cpu_pct=busy_pct(span),
        wait_pct=busy_pct(span, "wait_s"),
        broker_cpu_pct=busy_pct(span, "broker_cpu_s"),
        loadgen_cpu_pct=busy_pct(span, "loadgen_cpu_s"),
        checkpoint_bytes=last.checkpoint_bytes,
        checkpoint_s=last.checkpoint_s,
        checkpoints=last.checkpoints,
        broker_rss_mib=last.broker_rss_mib,
    )


# -- printed rows ----------------------------------------------------------------------------------------

SAMPLE_HEAD = (
    "    t s",
    "RSS MiB",
    "lag mean",
    "lag max",
    "tick p50",
    "tick max",
    "render max",
    "events",
    "events/s",
    "CPU %",
    "wait %",
    "ckpt MiB",
    "ckpt ms",
    "broker MiB",
    "broker CPU %",
    "loadgen CPU %",
)


def sample_cells(s: Sample) -> tuple[str, ...]:
    def ms(v: float) -> str:
        return f"{v * 1000:.1f}"

    return (
        f"{s.t:7.0f}",
        f"{s.rss_mib:.1f}",
        "-" if s.lag_mean is None else f"{s.lag_mean:,.0f}",
        "-" if s.lag_max is None else f"{s.lag_max:,.0f}",
        ms(s.tick_p50_s),
        ms(s.tick_max_s),
        ms(s.render_max_s),
        f"{s.events:,.0f}",
        f"{s.events_per_s:,.0f}",
        f"{s.cpu_pct:.0f}",
        f"{s.wait_pct:.0f}",
        f"{s.checkpoint_bytes / MIB:.2f}",
        f"{s.checkpoint_s * 1000:.0f}",
        f"{s.broker_rss_mib:,.0f}",
        f"{s.broker_cpu_pct:.0f}",
        f"{s.loadgen_cpu_pct:.0f}",
    )


def row(cells: Sequence[str]) -> str:
    widths = [max(len(h), 9) for h in SAMPLE_HEAD]
    return "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
