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
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.backlog import Consumed, watch
from benchmarks.harness import (
    BENCH_CONFIG,
    OUT,
    check_alive,
    child_pid,
    daemon_argv,
    loadgen_argv,
    meminfo_kib,
    pin_harness,
    say,
    sloguard_env,
    spawn,
    status_kib,
    stop_on_sigterm,
    tail,
    wait_ready,
)
from benchmarks.soak_polls import (
    SAMPLE_HEAD,
    Poll,
    Sample,
    busy_pct,
    events_rate,
    poll,
    row,
    sample_cells,
    window,
)
from benchmarks.soak_verdicts import Verdict, finite, fmt, overall, summary_table, verdicts

if TYPE_CHECKING:
    from sloguard.broker import LocalBroker
    from sloguard.loadgen import LoadgenStats

RESULTS = OUT / "soak.json"

POLL_S = 1.0  # the daemon ticks every second
LIVE_SKIP_S = 8.0  # live capacity: ramp-up left out of the rate
#: Broker memory per single-event message when not measured (loadgen's events are ~152 bytes of JSON).
DEFAULT_BROKER_BYTES_PER_EVENT = 175.0
#: Stop the soak early when MemAvailable falls below this fraction of MemTotal (other work shares it).
MEM_FLOOR_FRACTION = 0.10


# -- records ---------------------------------------------------------------------------------------------


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
    env = sloguard_env(bootstrap, topic, group)
    # The default interval (30 s) is what a deployment runs with: not set here on purpose.
    env["SLOGUARD_CHECKPOINT__DIR"] = str(checkpoint_dir)
    return env


def _loadgen(bootstrap: str, topic: str, rate: float, seconds: float) -> list[str]:
    return loadgen_argv(bootstrap, topic, f"{rate:.0f}", f"{seconds:g}")


@dataclass(frozen=True)
class Bench:
    """Where the capacity runs happen: the broker, its pid (None if not found), the daemon's settings."""

    broker: LocalBroker
    broker_pid: int | None
    partitions: int
    config: Path
    core: int | None
    tmp: Path

    def broker_rss_kib(self) -> int:
        return status_kib(self.broker_pid, "VmRSS")[0] if self.broker_pid else 0


async def capacity_alone(b: Bench, events: int) -> tuple[LoadgenStats, float, Consumed]:
    """A backlog produced first, then consumed (as benchmarks.daemon measures throughput): what
    loadgen produced, the broker's bytes per event, and the daemon's figures."""
    from sloguard.broker import free_port
    from sloguard.loadgen import run_loadgen

    topic = "soak-capacity"
    b.broker.create_topics([topic], b.partitions)
    before = b.broker_rss_kib()
    say(f"capacity: producing {events:,} events flat out into {topic} ({b.partitions} partitions)")
    produced = await run_loadgen(b.broker.bootstrap, topic, 0, None, events=events)
    after = b.broker_rss_kib()
    per_event = (after - before) * 1024 / produced.events if b.broker_pid and after > before else math.nan
    say(f"capacity: produced {produced.summary()}; broker +{(after - before) / 1024:,.0f} MiB")
    port = free_port()
    name = "soak-capacity-daemon"
    say(f"capacity: sloguard run pinned to CPU {b.core} consumes the backlog")
    started = time.time()
    env = _env(b.broker.bootstrap, topic, name, b.tmp / "capacity-checkpoints")
    with spawn(daemon_argv(b.config, port), name, b.core, env) as proc:
        alone = await watch(proc, name, port, produced.events, 60 + events / 20_000, started)
    b.broker.delete_topic(topic)  # the memory engine keeps every record until then
    say(
        f"capacity: alone {alone.events_per_s:,.0f} events/s ({alone.basis}, {alone.steady_wall_s:.1f} s "
        f"of ticks, CPU busy {alone.utilisation:.0%})"
    )
    return produced, per_event, alone


async def capacity_live(b: Bench, live_seconds: float) -> tuple[list[Poll], str]:
    """Loadgen flat out while the daemon consumes; the broker and loadgen share the other core. The
    polls, and loadgen's last report."""
    from sloguard.broker import free_port

    topic = "soak-capacity-live"
    b.broker.create_topics([topic], b.partitions)
    port = free_port()
    name = "soak-capacity-live-daemon"
    env = _env(b.broker.bootstrap, topic, name, b.tmp / "capacity-live-checkpoints")
    polls: list[Poll] = []
    with spawn(daemon_argv(b.config, port), name, b.core, env) as proc:
        await wait_ready(proc, name, port, 60)
        say(f"capacity: loadgen flat out for {live_seconds:g} s beside the daemon")
        argv = _loadgen(b.broker.bootstrap, topic, 0, live_seconds)
        try:
            with spawn(argv, "soak-capacity-loadgen") as lg:
                t0 = time.monotonic()
                while lg.poll() is None and (t := time.monotonic() - t0) < live_seconds + 30:
                    check_alive(proc, name)
                    got = await poll(port, proc.pid, b.broker_pid, lg.pid, t)
                    if got is not None:
                        polls.append(got)
                    await asyncio.sleep(POLL_S)
                if lg.poll() not in (None, 0):
                    check_alive(lg, "soak-capacity-loadgen")
        finally:
            last = tail(OUT / "soak-capacity-loadgen.err", 1).strip()
    b.broker.delete_topic(topic)
    return polls, last


async def measure_capacity(b: Bench, events: int, live_seconds: float) -> Capacity:
    """Two runs of a fresh daemon, each on its own topic (deleted after, freeing its records)."""
    produced, per_event, alone = await capacity_alone(b, events)
    polls, last = await capacity_live(b, live_seconds)
    steady = [p for p in polls if min(LIVE_SKIP_S, live_seconds / 3) <= p.t <= live_seconds]
    lags = [p.lag for p in steady if p.lag is not None]
    live = events_rate(steady)
    say(f"capacity: live {live:,.0f} events/s, daemon CPU busy {busy_pct(steady):.0f} %; {last}")
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
        live_utilisation=busy_pct(steady) / 100,
        live_lag_end=lags[-1] if lags else None,
        live_loadgen=last,
    )


def choose_rate(
    args: argparse.Namespace, capacity: Capacity | None, broker_rss_bytes: float, seconds: float
) -> RateChoice:
    """``--rate``, else ``--load-fraction`` of the live capacity; either capped so that ``seconds`` of
    records fit the in-memory broker's budget (``--broker-memory-gib``, default half of MemAvailable)."""
    if args.broker_memory_gib is not None:
        budget = args.broker_memory_gib * 2**30
    else:
        budget = 0.5 * meminfo_kib("MemAvailable") * 1024
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


async def sample_loop(
    run: Run,
    proc: subprocess.Popen[bytes],
    name: str,
    lg: subprocess.Popen[bytes],
    port: int,
    broker_pid: int | None,
    seconds: float,
    sample_s: float,
) -> None:
    floor_mib = MEM_FLOOR_FRACTION * meminfo_kib("MemTotal") / 1024
    print(row(SAMPLE_HEAD), flush=True)
    t0 = time.monotonic()
    next_poll = 0.0
    next_sample = sample_s
    rows: list[Poll] = []
    prev: Poll | None = None
    while True:
        t = time.monotonic() - t0
        run.duration_s = t
        if t >= seconds:
            break
        check_alive(proc, name)
        if lg.poll() not in (None, 0):
            check_alive(lg, "soak-loadgen")
        got = await poll(port, proc.pid, broker_pid, lg.pid, t)
        if got is not None:
            run.polls.append(got)
            rows.append(got)
            if got.mem_available_mib < floor_mib:
                run.stopped_early = (
                    f"MemAvailable {got.mem_available_mib:,.0f} MiB < {floor_mib:,.0f} MiB after {t:.0f} s "
                    f"(broker {got.broker_rss_mib:,.0f} MiB)"
                )
                say(f"stopping early: {run.stopped_early}")
                break
        if t >= next_sample and rows:
            prev = _emit(run, rows, prev)
            rows = []
            next_sample += sample_s
        next_poll += POLL_S
        await asyncio.sleep(max(0.0, t0 + next_poll - time.monotonic()))
    if rows:  # the last, partial row
        _emit(run, rows, prev)


def _emit(run: Run, polls: list[Poll], prev: Poll | None) -> Poll:
    sample = window(polls, prev)
    run.samples.append(sample)
    print(row(sample_cells(sample)), flush=True)
    return polls[-1]


async def soak(args: argparse.Namespace, core: int | None, run: Run) -> None:
    from sloguard.broker import LocalBroker, free_port, resolve_binary
    from sloguard.specfile import load_config

    load_config(args.config)  # refuse a bad file here, not in a child
    seconds = args.minutes * 60
    with LocalBroker() as broker, tempfile.TemporaryDirectory(prefix="sloguard-soak-") as tmp_name:
        tmp = Path(tmp_name)
        broker_pid = child_pid(resolve_binary())
        bench = Bench(broker, broker_pid, args.partitions, args.config, core, tmp)
        if args.rate is None:
            run.capacity = await measure_capacity(bench, args.capacity_events, args.capacity_seconds)
        run.rate = choice = choose_rate(args, run.capacity, bench.broker_rss_kib() * 1024, seconds)
        say(f"rate: {choice.rate:,.0f} events/s: {choice.why}")
        if choice.rate <= 0:
            raise RuntimeError("no load to run: rate 0")

        topic = "soak"
        broker.create_topics([topic], args.partitions)
        port = free_port()
        name = "soak-daemon"
        env = _env(broker.bootstrap, topic, name, tmp / "checkpoints")
        with spawn(daemon_argv(args.config, port), name, core, env) as proc:
            ready_s = await wait_ready(proc, name, port, 60)
            say(
                f"soak: daemon ready after {ready_s:.1f} s (pinned to CPU {core}); loadgen at "
                f"{choice.rate:,.0f} events/s for {args.minutes:g} min, a row every {args.sample_seconds:g} s"
            )
            loadgen = _loadgen(broker.bootstrap, topic, choice.rate, seconds + 5)
            try:
                with spawn(loadgen, "soak-loadgen") as lg:
                    await sample_loop(run, proc, name, lg, port, broker_pid, seconds, args.sample_seconds)
            finally:
                run.loadgen_last = tail(OUT / "soak-loadgen.err", 1)
        run.daemon_exit = proc.returncode


# -- main ---------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
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
    return p


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = _parser()
    args = p.parse_args(argv)
    if min(args.minutes, args.sample_seconds, args.capacity_seconds, args.capacity_events) <= 0:
        p.error("--minutes, --sample-seconds, --capacity-seconds and --capacity-events must be > 0")
    if not 0 < args.load_fraction <= 1:
        p.error("--load-fraction must be in (0, 1]")
    if args.rate is not None and args.rate <= 0:
        p.error("--rate must be > 0")
    return args


@dataclass
class Ending:
    """How the run ended, and the machine around it."""

    core: int | None
    load_start: tuple[float, float, float]
    seconds: float
    interrupted: bool
    error: str | None


def _print_capacity(c: Capacity) -> None:
    print(
        f"capacity, live (the one used): {c.live_events_per_s:,.0f} events/s consumed while loadgen ran "
        f"flat out for {c.live_seconds:g} s (daemon CPU busy {c.live_utilisation:.0%}, lag at the end "
        f"{fmt(c.live_lag_end, 'events')}; {c.live_loadgen})"
    )
    print(
        f"capacity, daemon alone: {c.alone_events_per_s:,.0f} events/s ({c.alone_events_per_cpu_s:,.0f} "
        f"per CPU-s, CPU busy {c.alone_utilisation:.0%}) consuming a {c.backlog_events:,}-event backlog "
        f"({c.alone_basis}, {c.alone_steady_wall_s:.1f} s of ticks); that backlog was produced at "
        f"{c.backlog_produce_events_per_s:,.0f}/s; broker {c.broker_bytes_per_event:.0f} B/event"
    )


def _print_report(args: argparse.Namespace, run: Run, end: Ending, rows: list[Verdict], verdict: str) -> None:
    print()
    print(
        f"sloguard soak — python {platform.python_version()}, {os.cpu_count()} CPUs, daemon pinned to CPU "
        f"{end.core}; load average {end.load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
        f"{end.seconds:.0f} s in all"
    )
    if run.capacity is not None:
        _print_capacity(run.capacity)
    if run.rate is not None:
        print(f"load: {run.rate.rate:,.0f} events/s — {run.rate.why}")
    print(
        f"soak: {run.duration_s:.0f} s of {args.minutes * 60:.0f} s, {len(run.samples)} rows, "
        f"{len(run.polls)} polls; daemon exit {run.daemon_exit}"
        + (f"; STOPPED EARLY: {run.stopped_early}" if run.stopped_early else "")
        + (f"; ERROR: {end.error}" if end.error else "")
    )
    if run.loadgen_last:
        print(f"last loadgen report: {run.loadgen_last.strip()}")
    print(summary_table(rows))
    print(f"overall: {verdict}")
    print("(2 shared vCPUs: other work on the machine adds noise to every number here)")


def _results(
    args: argparse.Namespace, run: Run, end: Ending, rows: list[Verdict], verdict: str
) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pinned_cpu": end.core,
        "loadavg_start": end.load_start,
        "loadavg_end": os.getloadavg(),
        "started_at": run.started_at,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "capacity": asdict(run.capacity) if run.capacity else None,
        "rate": asdict(run.rate) if run.rate else None,
        "duration_s": run.duration_s,
        "stopped_early": run.stopped_early,
        "interrupted": end.interrupted,
        "error": end.error,
        "daemon_exit": run.daemon_exit,
        "loadgen_last": run.loadgen_last,
        "verdicts": [asdict(v) for v in rows],
        "overall": verdict,
        "samples": [asdict(s) for s in run.samples],
        "polls": [asdict(p) for p in run.polls],
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    stop_on_sigterm()
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
        say("interrupted: every process and broker started was stopped; partial results follow")
    except Exception as exc:  # noqa: BLE001 - still print and save what was gathered
        error = repr(exc)
        say(f"soak FAILED: {exc}")
    rows = verdicts(run.polls, run.rate.rate if run.rate else math.nan)
    verdict = overall(rows, incomplete=bool(interrupted or error or run.stopped_early))
    end = Ending(core, load_start, time.monotonic() - t_start, interrupted, error)
    _print_report(args, run, end, rows, verdict)
    RESULTS.write_text(
        json.dumps(finite(_results(args, run, end, rows, verdict)), indent=1, default=str) + "\n"
    )
    print(f"wrote {RESULTS}")
    if interrupted:
        return 130
    return 1 if error else 0


if __name__ == "__main__":
    raise SystemExit(main())
