"""``python -m benchmarks.soak`` (``make soak``): the daemon under sustained load; do RSS, lag and tick
duration stay flat?

1. capacity (skipped with ``--rate``), on a local Tansu broker, each run with a fresh ``sloguard run``
   pinned to one core as in `benchmarks.daemon` (the harness, broker and load generator keep to the
   other cores), checkpoints on, on its own topic (deleted after, which frees its records):
   * alone: ``--capacity-events`` (5M) single-event messages are produced flat out, then consumed;
     the rate is taken from the daemon's ticks (``sloguard_events_processed_total`` over
     ``sloguard_snapshot_timestamp_seconds``, start-up excluded), as `benchmarks.daemon` does;
   * live: ``sloguard loadgen --rate 0`` (flat out) runs for ``--capacity-seconds`` (30) beside the
     daemon; the daemon's rate over its ticks, the first 8 s left out. On 2 CPUs the broker and the
     load generator share one core, so this is what the machine sustains, and what the load is a
     fraction of; the alone figure is printed for comparison.
2. soak: a fresh daemon (empty checkpoint directory in a temp dir, the default 30 s checkpoint
   interval, ``benchmarks/slos.bench.yaml``: an SLO for each of the load generator's six services) and
   ``sloguard loadgen --scenario steady`` at ``--load-fraction`` (80 %) of the live capacity for
   ``--minutes``. ``/metrics`` is polled every second (self-metrics only) and ``/proc`` read for the
   daemon's VmRSS, CPU time and run-queue wait; every ``--sample-seconds`` a row is printed: RSS,
   consumer lag (sum of ``sloguard_consumer_lag``: mean and max of the polls), tick duration (median
   and max of the ticks seen), render duration, events processed and their rate, CPU busy and waiting
   for the core, the last checkpoint's size and duration, the broker's RSS.
3. verdicts: the run is cut in thirds by time; the first is warm-up. RSS is flat when the last third's
   mean is at most max(5 %, 20 MiB) above the second third's; lag when the last third's mean is at most
   2 s worth of events and its least-squares trend over the last two thirds rises by at most 1 s worth;
   tick duration when the last third's p95 is at most 1.5x the second third's (or within 2 ms of it:
   ticks take milliseconds, and a shared core adds that much noise). Render time, throughput, events
   per CPU-second, CPU and checkpoints are shown for information. Rows, polls and verdicts are written
   to benchmarks/out/soak.json.

The broker keeps every record in memory (Tansu's memory engine has no retention, and DeleteRecords is
not implemented in it), about 175 bytes per single-event message. The soak's rate is therefore capped
so that the whole run fits ``--broker-memory-gib`` (default: half of MemAvailable at the start); the
output says when the cap, not the capacity, set the rate. The run also stops early if MemAvailable
falls below ``MEM_FLOOR_FRACTION`` of the machine's memory.

Every process and broker started here is stopped on the way out, also on Ctrl-C, SIGTERM and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks import measure
from benchmarks.daemon import (
    BENCH_CONFIG,
    OUT,
    _check_alive,
    _daemon_argv,
    _on_sigterm,
    _say,
    _sloguard_env,
    _wait_ready,
    _watch,
    pin_harness,
    spawn,
)

if TYPE_CHECKING:
    from sloguard.broker import LocalBroker

RESULTS = OUT / "soak.json"

EVENTS = "sloguard_events_processed_total"
SNAPSHOT_TS = "sloguard_snapshot_timestamp_seconds"
LAG = "sloguard_consumer_lag"
TICK_S = "sloguard_tick_duration_seconds"
RENDER_S = "sloguard_render_duration_seconds"
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

POLL_S = 1.0  # the daemon ticks every second
LIVE_SKIP_S = 8.0  # live capacity: ramp-up left out of the rate
RSS_TOLERANCE_FRACTION = 0.05
RSS_TOLERANCE_MIB = 20.0
LAG_BOUND_S = 2.0  # last third's mean lag: at most this many seconds worth of events
LAG_TREND_S = 1.0  # rise of the fitted line over the last two thirds: at most this many seconds worth
TICK_RATIO = 1.5
TICK_SLACK_S = 0.002
#: Broker memory per single-event message when not measured (loadgen's events are ~152 bytes of JSON).
DEFAULT_BROKER_BYTES_PER_EVENT = 175.0
#: Stop the soak early when MemAvailable falls below this fraction of MemTotal (other work shares it).
MEM_FLOOR_FRACTION = 0.10
MIB = 2**20


# -- /proc -----------------------------------------------------------------------------------------------


def _status_kib(pid: int, field_name: bytes) -> int:
    """A ``/proc/PID/status`` field in KiB (VmRSS, VmHWM), 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(field_name + b":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _runq_wait_s(pid: int) -> float:
    """Seconds the process's threads have spent runnable but waiting for a CPU (``schedstat``): the
    daemon is pinned to one core, and whatever else runs there takes turns with it."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return math.nan
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def _meminfo_kib(name: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key == name:
                return int(rest.split()[0])
    return 0


def _child_pid(exe: str) -> int | None:
    """The pid of our child process running ``exe`` (the broker), None if not found."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
            ppid = int(data[data.rindex(b")") + 2 :].split()[1])
            if ppid == me and os.path.realpath(f"/proc/{entry}/exe") == os.path.realpath(exe):
                return int(entry)
        except (OSError, ValueError):
            continue
    return None


# -- scraping ----------------------------------------------------------------------------------------------


async def scrape_self(port: int, names: frozenset[str] = SCRAPED, limit_s: float = 5.0) -> dict[str, float]:
    """GET /metrics and read only the families in ``names`` (each summed over its label sets; sloguard
    writes its self-metrics first), dropping the connection at the first line of another family once
    every one was seen. A family with no samples (the lag before partitions are assigned) means reading
    to the end. Raises on anything but a 200."""
    async with asyncio.timeout(limit_s):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            status = int((await reader.readline()).split()[1])
            if status != 200:
                raise ValueError(f"/metrics answered {status}")
            while (line := await reader.readline()) not in (b"\r\n", b""):
                pass
            values: dict[str, float] = {}
            while line := await reader.readline():
                if line.startswith(b"#"):
                    continue
                series, _, value = line.decode().rstrip("\n").rpartition(" ")
                name = series.partition("{")[0]
                if name in names:
                    values[name] = values.get(name, 0.0) + float(value)
                elif len(values) == len(names):
                    break
        finally:
            writer.transport.abort()
    return values


# -- records ---------------------------------------------------------------------------------------------


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
    wait_s: float  # run-queue wait (see _runq_wait_s)
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


@dataclass
class Capacity:
    """The daemon flat out: alone (consuming a backlog) and live (loadgen flat out beside it)."""

    backlog_events: int
    backlog_produce_events_per_s: float  # loadgen in-process, no daemon running
    broker_bytes_per_event: float
    alone_events_per_s: float
    alone_events_per_cpu_s: float
    alone_utilisation: float
    alone_basis: str
    alone_steady_wall_s: float
    live_seconds: float
    live_events_per_s: float  # the capacity the load is a fraction of
    live_utilisation: float
    live_lag_end: float | None
    live_loadgen: str  # loadgen's last report

    @property
    def events_per_s(self) -> float:
        return self.live_events_per_s


@dataclass
class RateChoice:
    rate: float
    wanted: float | None  # load fraction x capacity
    cap: float  # the broker memory budget's limit for this duration
    capped: bool
    budget_bytes: float
    broker_bytes_per_event: float
    why: str


@dataclass
class Verdict:
    metric: str
    second: float | None
    last: float | None
    unit: str  # "MiB", "events", "s", "ev/s", "%", "B"
    rule: str
    verdict: str  # FLAT, GROWING, "" (information only), "n/a"
    note: str = ""


@dataclass
class Run:
    """Everything gathered so far (an interrupted run is summarized from what is here)."""

    started_at: float = field(default_factory=time.time)
    capacity: Capacity | None = None
    rate: RateChoice | None = None
    polls: list[Poll] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    duration_s: float = 0.0
    stopped_early: str | None = None
    daemon_exit: int | None = None
    loadgen_last: str = ""


# -- capacity --------------------------------------------------------------------------------------------


def _env(bootstrap: str, topic: str, group: str, checkpoint_dir: Path) -> dict[str, str]:
    env = _sloguard_env(bootstrap, topic, group)
    # The default interval (30 s) is what a deployment runs with: not set here on purpose.
    env["SLOGUARD_CHECKPOINT__DIR"] = str(checkpoint_dir)
    return env


async def measure_capacity(
    broker: LocalBroker,
    broker_pid: int | None,
    events: int,
    live_seconds: float,
    partitions: int,
    config: Path,
    core: int | None,
    tmp: Path,
) -> Capacity:
    """Two runs of a fresh daemon, each on its own topic (deleted after, freeing its records)."""
    from sloguard.broker import free_port
    from sloguard.loadgen import run_loadgen

    # 1. Alone: a backlog produced first, then consumed (as benchmarks.daemon measures throughput).
    topic = "soak-capacity"
    broker.create_topics([topic], partitions)
    before = _status_kib(broker_pid, b"VmRSS") if broker_pid else 0
    _say(f"capacity: producing {events:,} events flat out into {topic} ({partitions} partitions)")
    produced = await run_loadgen(broker.bootstrap, topic, 0, None, events=events)
    after = _status_kib(broker_pid, b"VmRSS") if broker_pid else 0
    per_event = (after - before) * 1024 / produced.events if broker_pid and after > before else math.nan
    _say(f"capacity: produced {produced.summary()}; broker +{(after - before) / 1024:,.0f} MiB")
    port = free_port()
    name = "soak-capacity-daemon"
    _say(f"capacity: sloguard run pinned to CPU {core} consumes the backlog")
    started = time.time()
    env = _env(broker.bootstrap, topic, name, tmp / "capacity-checkpoints")
    with spawn(_daemon_argv(config, port), name, core, env) as proc:
        alone = await _watch(proc, name, port, produced.events, 60 + events / 20_000, started)
    broker.delete_topic(topic)  # the memory engine keeps every record until then
    _say(
        f"capacity: alone {alone.events_per_s:,.0f} events/s ({alone.basis}, {alone.steady_wall_s:.1f} s "
        f"of ticks, CPU busy {alone.utilisation:.0%})"
    )

    # 2. Live: loadgen flat out while the daemon consumes; the broker and loadgen share the other core.
    topic = "soak-capacity-live"
    broker.create_topics([topic], partitions)
    port = free_port()
    name = "soak-capacity-live-daemon"
    env = _env(broker.bootstrap, topic, name, tmp / "capacity-live-checkpoints")
    polls: list[Poll] = []
    with spawn(_daemon_argv(config, port), name, core, env) as proc:
        await _wait_ready(proc, name, port, 60)
        _say(f"capacity: loadgen flat out for {live_seconds:g} s beside the daemon")
        argv = _loadgen_argv(broker.bootstrap, topic, 0, live_seconds)
        try:
            with spawn(argv, "soak-capacity-loadgen") as lg:
                t0 = time.monotonic()
                while lg.poll() is None and (t := time.monotonic() - t0) < live_seconds + 30:
                    _check_alive(proc, name)
                    poll = await _poll(port, proc.pid, broker_pid, lg.pid, t)
                    if poll is not None:
                        polls.append(poll)
                    await asyncio.sleep(POLL_S)
                if lg.poll() not in (None, 0):
                    _check_alive(lg, "soak-capacity-loadgen")
        finally:
            last = measure.tail(OUT / "soak-capacity-loadgen.err", 1).strip()
    broker.delete_topic(topic)
    steady = [p for p in polls if min(LIVE_SKIP_S, live_seconds / 3) <= p.t <= live_seconds]
    lags = [p.lag for p in steady if p.lag is not None]
    live = _rate(steady)
    _say(f"capacity: live {live:,.0f} events/s, daemon CPU busy {_cpu(steady):.0f} %; {last}")
    return Capacity(
        backlog_events=produced.events,
        backlog_produce_events_per_s=produced.events_per_s,
        broker_bytes_per_event=per_event,
        alone_events_per_s=alone.events_per_s,
        alone_events_per_cpu_s=alone.events_per_cpu_s,
        alone_utilisation=alone.utilisation,
        alone_basis=alone.basis,
        alone_steady_wall_s=alone.steady_wall_s,
        live_seconds=live_seconds,
        live_events_per_s=live,
        live_utilisation=_cpu(steady) / 100,
        live_lag_end=lags[-1] if lags else None,
        live_loadgen=last,
    )


def _loadgen_argv(bootstrap: str, topic: str, rate: float, seconds: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sloguard",
        "loadgen",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--rate",
        f"{rate:.0f}",
        "--duration",
        f"{seconds:g}",
        "--scenario",
        "steady",
    ]


def choose_rate(
    args: argparse.Namespace, capacity: Capacity | None, broker_rss_bytes: float, seconds: float
) -> RateChoice:
    if args.broker_memory_gib is not None:
        budget = args.broker_memory_gib * 2**30
    else:
        budget = 0.5 * _meminfo_kib("MemAvailable") * 1024
    per_event = DEFAULT_BROKER_BYTES_PER_EVENT
    if capacity is not None and math.isfinite(capacity.broker_bytes_per_event):
        per_event = max(capacity.broker_bytes_per_event, 1.0)
    cap = max(0.0, budget - broker_rss_bytes) / (per_event * seconds)
    if args.rate is not None:
        why = "--rate"
        if args.rate > cap:
            why += f" (over the broker memory budget's {cap:,.0f}/s: the run may stop early)"
        return RateChoice(args.rate, None, cap, False, budget, per_event, why)
    assert capacity is not None
    wanted = args.load_fraction * capacity.events_per_s
    if wanted <= cap:
        why = f"{args.load_fraction:.0%} of the measured capacity"
        return RateChoice(wanted, wanted, cap, False, budget, per_event, why)
    why = (
        f"CAPPED by broker memory: {args.load_fraction:.0%} of capacity is {wanted:,.0f}/s, but the "
        f"in-memory broker would need {wanted * per_event * seconds / 2**30:,.1f} GiB for "
        f"{seconds / 60:g} min (budget {budget / 2**30:,.1f} GiB, {per_event:.0f} B/event)"
    )
    return RateChoice(cap, wanted, cap, True, budget, per_event, why)


# -- the soak ----------------------------------------------------------------------------------------------


def _window(polls: Sequence[Poll], prev: Poll | None) -> Sample:
    last = polls[-1]
    first = prev or polls[0]
    lags = [p.lag for p in polls if p.lag is not None]
    ticks = list({p.snapshot_ts: p.tick_s for p in polls}.values())
    span_ts = last.snapshot_ts - first.snapshot_ts
    span_t = last.t - first.t
    return Sample(
        t=last.t,
        rss_mib=last.rss_mib,
        lag_mean=statistics.fmean(lags) if lags else None,
        lag_max=max(lags) if lags else None,
        tick_p50_s=statistics.median(ticks),
        tick_max_s=max(ticks),
        render_max_s=max(p.render_s for p in polls),
        events=last.events,
        events_per_s=(last.events - first.events) / span_ts if span_ts > 0 else math.nan,
        cpu_pct=100 * (last.cpu_s - first.cpu_s) / span_t if span_t > 0 else math.nan,
        wait_pct=100 * (last.wait_s - first.wait_s) / span_t if span_t > 0 else math.nan,
        broker_cpu_pct=100 * (last.broker_cpu_s - first.broker_cpu_s) / span_t if span_t > 0 else math.nan,
        loadgen_cpu_pct=100 * (last.loadgen_cpu_s - first.loadgen_cpu_s) / span_t if span_t > 0 else math.nan,
        checkpoint_bytes=last.checkpoint_bytes,
        checkpoint_s=last.checkpoint_s,
        checkpoints=last.checkpoints,
        broker_rss_mib=last.broker_rss_mib,
    )


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


def _sample_cells(s: Sample) -> tuple[str, ...]:
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


def _row(cells: Sequence[str]) -> str:
    widths = [max(len(h), 9) for h in SAMPLE_HEAD]
    return "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))


def _cpu_s(pid: int | None) -> float:
    if pid is None:
        return math.nan
    try:
        return measure.cpu_seconds(pid)
    except (OSError, ValueError, IndexError):
        return math.nan


async def _poll(
    port: int, pid: int, broker_pid: int | None, loadgen_pid: int | None, t: float
) -> Poll | None:
    rss = _status_kib(pid, b"VmRSS") / 1024
    cpu = measure.cpu_seconds(pid)
    wait = _runq_wait_s(pid)
    broker_rss = _status_kib(broker_pid, b"VmRSS") / 1024 if broker_pid else math.nan
    broker_cpu, loadgen_cpu = _cpu_s(broker_pid), _cpu_s(loadgen_pid)
    mem = _meminfo_kib("MemAvailable") / 1024
    try:
        v = await scrape_self(port)
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


async def _sample_loop(
    run: Run,
    proc: subprocess.Popen[bytes],
    name: str,
    lg: subprocess.Popen[bytes],
    port: int,
    broker_pid: int | None,
    seconds: float,
    sample_s: float,
) -> None:
    floor_mib = MEM_FLOOR_FRACTION * _meminfo_kib("MemTotal") / 1024
    print(_row(SAMPLE_HEAD), flush=True)
    t0 = time.monotonic()
    next_poll = 0.0
    next_sample = sample_s
    window: list[Poll] = []
    prev: Poll | None = None
    while True:
        t = time.monotonic() - t0
        run.duration_s = t
        if t >= seconds:
            break
        _check_alive(proc, name)
        if lg.poll() not in (None, 0):
            _check_alive(lg, "soak-loadgen")
        poll = await _poll(port, proc.pid, broker_pid, lg.pid, t)
        if poll is not None:
            run.polls.append(poll)
            window.append(poll)
            if poll.mem_available_mib < floor_mib:
                run.stopped_early = (
                    f"MemAvailable {poll.mem_available_mib:,.0f} MiB < {floor_mib:,.0f} MiB after {t:.0f} s "
                    f"(broker {poll.broker_rss_mib:,.0f} MiB)"
                )
                _say(f"stopping early: {run.stopped_early}")
                break
        if t >= next_sample and window:
            prev = _emit(run, window, prev)
            window = []
            next_sample += sample_s
        next_poll += POLL_S
        await asyncio.sleep(max(0.0, t0 + next_poll - time.monotonic()))
    if window:  # the last, partial row
        _emit(run, window, prev)


def _emit(run: Run, window: list[Poll], prev: Poll | None) -> Poll:
    sample = _window(window, prev)
    run.samples.append(sample)
    print(_row(_sample_cells(sample)), flush=True)
    return window[-1]


async def soak(args: argparse.Namespace, core: int | None, run: Run) -> None:
    from sloguard.broker import LocalBroker, free_port, resolve_binary
    from sloguard.specfile import load_config

    load_config(args.config)  # refuse a bad file here, not in a child
    seconds = args.minutes * 60
    with LocalBroker() as broker, tempfile.TemporaryDirectory(prefix="sloguard-soak-") as tmp_name:
        tmp = Path(tmp_name)
        broker_pid = _child_pid(resolve_binary())
        if args.rate is None:
            run.capacity = await measure_capacity(
                broker,
                broker_pid,
                args.capacity_events,
                args.capacity_seconds,
                args.partitions,
                args.config,
                core,
                tmp,
            )
        broker_rss = _status_kib(broker_pid, b"VmRSS") * 1024 if broker_pid else 0
        run.rate = choice = choose_rate(args, run.capacity, broker_rss, seconds)
        _say(f"rate: {choice.rate:,.0f} events/s: {choice.why}")
        if choice.rate <= 0:
            raise RuntimeError("no load to run: rate 0")

        topic = "soak"
        broker.create_topics([topic], args.partitions)
        port = free_port()
        name = "soak-daemon"
        env = _env(broker.bootstrap, topic, name, tmp / "checkpoints")
        with spawn(_daemon_argv(args.config, port), name, core, env) as proc:
            ready_s = await _wait_ready(proc, name, port, 60)
            _say(
                f"soak: daemon ready after {ready_s:.1f} s (pinned to CPU {core}); loadgen at "
                f"{choice.rate:,.0f} events/s for {args.minutes:g} min, a row every {args.sample_seconds:g} s"
            )
            loadgen = _loadgen_argv(broker.bootstrap, topic, choice.rate, seconds + 5)
            try:
                with spawn(loadgen, "soak-loadgen") as lg:
                    await _sample_loop(run, proc, name, lg, port, broker_pid, seconds, args.sample_seconds)
            finally:
                run.loadgen_last = measure.tail(OUT / "soak-loadgen.err", 1)
        run.daemon_exit = proc.returncode


# -- verdicts ----------------------------------------------------------------------------------------------


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _rate(polls: Sequence[Poll]) -> float:
    if len(polls) < 2 or polls[-1].snapshot_ts <= polls[0].snapshot_ts:
        return math.nan
    return (polls[-1].events - polls[0].events) / (polls[-1].snapshot_ts - polls[0].snapshot_ts)


def _cpu(polls: Sequence[Poll], attr: str = "cpu_s") -> float:
    """Percent of the wall time spent on CPU (or, ``wait_s``, waiting for one)."""
    if len(polls) < 2 or polls[-1].t <= polls[0].t:
        return math.nan
    spent = float(getattr(polls[-1], attr)) - float(getattr(polls[0], attr))
    return 100 * spent / (polls[-1].t - polls[0].t)


def _per_cpu_s(polls: Sequence[Poll]) -> float:
    if len(polls) < 2 or polls[-1].cpu_s <= polls[0].cpu_s:
        return math.nan
    return (polls[-1].events - polls[0].events) / (polls[-1].cpu_s - polls[0].cpu_s)


def _ticks(polls: Sequence[Poll], attr: str) -> list[float]:
    """One value per tick (polls deduplicated by snapshot time)."""
    seen: dict[float, float] = {}
    for p in polls:
        value = float(getattr(p, attr))
        if math.isfinite(value):
            seen.setdefault(p.snapshot_ts, value)
    return list(seen.values())


def verdicts(run: Run) -> list[Verdict]:
    polls = run.polls
    if not polls:
        return []
    span = polls[-1].t
    second = [p for p in polls if span / 3 <= p.t < 2 * span / 3]
    last = [p for p in polls if p.t >= 2 * span / 3]
    after = second + last
    if len(second) < 2 or len(last) < 2:
        return [Verdict("all", None, None, "", "too few samples for thirds", "n/a")]
    rate = run.rate.rate if run.rate else math.nan
    out: list[Verdict] = []

    # RSS
    r2, r3 = _mean([p.rss_mib for p in second]), _mean([p.rss_mib for p in last])
    allowed = max(RSS_TOLERANCE_FRACTION * r2, RSS_TOLERANCE_MIB)
    growth = r3 - r2
    slope = float(np.polyfit([p.t for p in after], [p.rss_mib for p in after], 1)[0]) * 60
    out.append(
        Verdict(
            "daemon RSS, mean",
            r2,
            r3,
            "MiB",
            f"growth ≤ max(5 %, 20 MiB) = {allowed:.1f} MiB",
            "FLAT" if growth <= allowed else "GROWING",
            f"growth {growth:+.1f} MiB ({_ratio(growth, r2):+.1%}); trend {slope:+.2f} MiB/min; "
            f"peak {max(p.rss_mib for p in polls):.0f} MiB",
        )
    )

    # Lag
    l2 = [p.lag for p in second if p.lag is not None]
    l3 = [p.lag for p in last if p.lag is not None]
    la = [(p.t, p.lag) for p in after if p.lag is not None]
    bound = LAG_BOUND_S * rate
    if len(la) >= 2 and l3:
        rise = float(np.polyfit([t for t, _ in la], [v for _, v in la], 1)[0]) * (la[-1][0] - la[0][0])
        ok = _mean(l3) <= bound and rise <= LAG_TREND_S * rate
        out.append(
            Verdict(
                "consumer lag, mean",
                _mean(l2),
                _mean(l3),
                "events",
                f"last ≤ {LAG_BOUND_S:g} s of events ({bound:,.0f}), trend ≤ {LAG_TREND_S:g} s",
                "FLAT" if ok else "GROWING",
                f"trend {rise:+,.0f} events over the last two thirds; last third max {max(l3):,.0f} "
                f"= {_ratio(max(l3), rate):.2f} s of load",
            )
        )
    else:
        out.append(Verdict("consumer lag, mean", None, None, "events", "no lag reported", "n/a"))

    # Tick duration
    t2, t3 = _ticks(second, "tick_s"), _ticks(last, "tick_s")
    p2, p3 = _pct(t2, 95), _pct(t3, 95)
    ok = p3 <= TICK_RATIO * p2 or p3 - p2 <= TICK_SLACK_S
    out.append(
        Verdict(
            "tick duration, p95",
            p2,
            p3,
            "s",
            f"last ≤ {TICK_RATIO:g}x second (or +{TICK_SLACK_S * 1000:g} ms)",
            "FLAT" if ok else "GROWING",
            f"x{_ratio(p3, p2):.2f}; {len(t2)} / {len(t3)} ticks; max {max(t2 + t3) * 1000:.1f} ms",
        )
    )

    # Information only
    d2, d3 = _ticks(second, "render_s"), _ticks(last, "render_s")
    out.append(
        Verdict(
            "render duration, p95",
            _pct(d2, 95),
            _pct(d3, 95),
            "s",
            "information",
            "",
            f"x{_ratio(_pct(d3, 95), _pct(d2, 95)):.2f}; max {max(d2 + d3) * 1000:.0f} ms (own thread)",
        )
    )
    e2, e3 = _rate(second), _rate(last)
    out.append(
        Verdict(
            "events processed / s",
            e2,
            e3,
            "ev/s",
            f"load {rate:,.0f}/s",
            "",
            f"last third {_ratio(e3, rate):.1%} of the load; {polls[-1].events:,.0f} events in all",
        )
    )
    out.append(
        Verdict(
            "events per daemon CPU-s",
            _per_cpu_s(second),
            _per_cpu_s(last),
            "ev/s",
            "information",
            "",
            "cost per event; flat unless the work per event grows",
        )
    )
    out.append(
        Verdict(
            "daemon CPU busy",
            _cpu(second),
            _cpu(last),
            "%",
            "information",
            "",
            f"waiting for its core {_cpu(second, 'wait_s'):.0f} % / {_cpu(last, 'wait_s'):.0f} % of the time "
            "(other work on that core)",
        )
    )
    out.append(
        Verdict(
            "broker CPU busy",
            _cpu(second, "broker_cpu_s"),
            _cpu(last, "broker_cpu_s"),
            "%",
            "information",
            "",
            f"loadgen {_cpu(second, 'loadgen_cpu_s'):.0f} % / {_cpu(last, 'loadgen_cpu_s'):.0f} %; "
            f"both share the harness's core(s); broker RSS at the end {polls[-1].broker_rss_mib:,.0f} MiB",
        )
    )
    b2, b3 = _mean([p.checkpoint_bytes for p in second]), _mean([p.checkpoint_bytes for p in last])
    ck = {p.checkpoints: p for p in polls if p.checkpoints > 0}
    durations = [p.checkpoint_s for p in ck.values()]
    out.append(
        Verdict(
            "checkpoint size, mean",
            b2,
            b3,
            "B",
            "information",
            "",
            f"{int(polls[-1].checkpoints)} written, {int(polls[-1].checkpoint_failures)} failed; "
            f"commit failures {int(polls[-1].commit_failures)}",
        )
    )
    c2 = [p.checkpoint_s for p in ck.values() if span / 3 <= p.t < 2 * span / 3]
    c3 = [p.checkpoint_s for p in ck.values() if p.t >= 2 * span / 3]
    out.append(
        Verdict(
            "checkpoint duration, max",
            max(c2) if c2 else None,
            max(c3) if c3 else None,
            "s",
            "information",
            "",
            f"all {', '.join(f'{d * 1000:.0f}' for d in durations)} ms" if durations else "none yet",
        )
    )
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    if unit == "s":
        return f"{value * 1000:,.1f} ms"
    if unit == "B":
        return f"{value / MIB:,.2f} MiB"
    if unit == "%":
        return f"{value:.0f} %"
    if unit == "MiB":
        return f"{value:,.1f} MiB"
    return f"{value:,.0f}" + (" /s" if unit == "ev/s" else "")


def summary_table(rows: Sequence[Verdict]) -> str:
    head = ("measure", "2nd third", "last third", "rule", "verdict", "note")
    cells = [
        (v.metric, _fmt(v.second, v.unit), _fmt(v.last, v.unit), v.rule, v.verdict, v.note) for v in rows
    ]
    widths = [max(len(r[i]) for r in [head, *cells]) for i in range(5)]

    def line(r: tuple[str, ...]) -> str:
        parts = [r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2])]
        return "  ".join([*parts, r[3].ljust(widths[3]), r[4].ljust(widths[4]), r[5]]).rstrip()

    out = [line(head)]
    out.append("-" * len(out[0]))
    out += [line(r) for r in cells]
    return "\n".join(out)


# -- main ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description="The daemon under sustained load: do RSS, consumer lag and tick duration stay flat?",
    )
    p.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    p.add_argument("--rate", type=float, help="load in events/s (default: measure capacity, take a fraction)")
    p.add_argument("--sample-seconds", type=float, default=10.0, help="seconds per printed row (default 10)")
    p.add_argument("--load-fraction", type=float, default=0.8, help="of the measured capacity (default 0.8)")
    p.add_argument(
        "--capacity-events", type=int, default=5_000_000, help="capacity, alone: backlog (default 5M)"
    )
    p.add_argument(
        "--capacity-seconds", type=float, default=30.0, help="capacity, live: loadgen flat out (default 30)"
    )
    p.add_argument("--partitions", type=int, default=4, help="topic partitions (default 4)")
    p.add_argument(
        "--config", type=Path, default=BENCH_CONFIG, help="SLO file (default benchmarks/slos.bench.yaml)"
    )
    p.add_argument(
        "--broker-memory-gib",
        type=float,
        help="memory the in-memory broker may use for the soak's records (default: half of MemAvailable)",
    )
    args = p.parse_args(argv)
    if min(args.minutes, args.sample_seconds, args.capacity_seconds, args.capacity_events) <= 0:
        p.error("--minutes, --sample-seconds, --capacity-seconds and --capacity-events must be > 0")
    if not 0 < args.load_fraction <= 1:
        p.error("--load-fraction must be in (0, 1]")
    if args.rate is not None and args.rate <= 0:
        p.error("--rate must be > 0")

    signal.signal(signal.SIGTERM, _on_sigterm)
    OUT.mkdir(parents=True, exist_ok=True)
    core = pin_harness()
    load_start = os.getloadavg()
    run = Run()
    t_start = time.monotonic()
    interrupted = False
    error: str | None = None
    try:
        asyncio.run(soak(args, core, run))
    except KeyboardInterrupt:
        interrupted = True
        _say("interrupted: every process and broker started was stopped; partial results follow")
    except Exception as exc:  # noqa: BLE001 - still print and save what was gathered
        error = repr(exc)
        _say(f"soak FAILED: {exc}")
    rows = verdicts(run)
    judged = [v.verdict for v in rows if v.verdict]
    overall = (
        "FLAT"
        if judged and all(v == "FLAT" for v in judged)
        else ("GROWING" if "GROWING" in judged else "INCONCLUSIVE")
    )
    if interrupted or error or run.stopped_early:
        overall += " (incomplete run)"

    print()
    print(
        f"sloguard soak — python {platform.python_version()}, {os.cpu_count()} CPUs, daemon pinned to CPU "
        f"{core}; load average {load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
        f"{time.monotonic() - t_start:.0f} s in all"
    )
    c = run.capacity
    if c is not None:
        print(
            f"capacity, live (the one used): {c.live_events_per_s:,.0f} events/s consumed while loadgen ran "
            f"flat out for {c.live_seconds:g} s (daemon CPU busy {c.live_utilisation:.0%}, lag at the end "
            f"{_fmt(c.live_lag_end, 'events')}; {c.live_loadgen})"
        )
        print(
            f"capacity, daemon alone: {c.alone_events_per_s:,.0f} events/s ({c.alone_events_per_cpu_s:,.0f} "
            f"per CPU-s, CPU busy {c.alone_utilisation:.0%}) consuming a {c.backlog_events:,}-event backlog "
            f"({c.alone_basis}, {c.alone_steady_wall_s:.1f} s of ticks); that backlog was produced at "
            f"{c.backlog_produce_events_per_s:,.0f}/s; broker {c.broker_bytes_per_event:.0f} B/event"
        )
    if run.rate is not None:
        print(f"load: {run.rate.rate:,.0f} events/s — {run.rate.why}")
    print(
        f"soak: {run.duration_s:.0f} s of {args.minutes * 60:.0f} s, {len(run.samples)} rows, "
        f"{len(run.polls)} polls; daemon exit {run.daemon_exit}"
        + (f"; STOPPED EARLY: {run.stopped_early}" if run.stopped_early else "")
        + (f"; ERROR: {error}" if error else "")
    )
    if run.loadgen_last:
        print(f"last loadgen report: {run.loadgen_last.strip()}")
    print(summary_table(rows))
    print(f"overall: {overall}")
    print("(2 shared vCPUs: other work on the machine adds noise to every number here)")
    results = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pinned_cpu": core,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "started_at": run.started_at,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "capacity": asdict(c) if c else None,
        "rate": asdict(run.rate) if run.rate else None,
        "duration_s": run.duration_s,
        "stopped_early": run.stopped_early,
        "interrupted": interrupted,
        "error": error,
        "daemon_exit": run.daemon_exit,
        "loadgen_last": run.loadgen_last,
        "verdicts": [asdict(v) for v in rows],
        "overall": overall,
        "samples": [asdict(s) for s in run.samples],
        "polls": [asdict(p) for p in run.polls],
    }
    RESULTS.write_text(json.dumps(_finite(results), indent=1, default=str) + "\n")
    print(f"wrote {RESULTS}")
    if interrupted:
        return 130
    return 1 if error else 0


if __name__ == "__main__":
    raise SystemExit(main())
