"""The scaled-out mode's two stages as processes, each cost set against one sloguard run.

``python -m benchmarks.scale`` (`make bench-scale`, ``--quick`` for a short run): the stages of
docs/scaling.md as processes against a local Tansu broker, and the single process measured in the same
run. One table; the machine is shared, so compare ratios within a run.

1. **backlog**: ``--events`` events (default 1M; 100 per NDJSON message, 4 input partitions) at a
   realistic cardinality: 50 services x 40 endpoints x 5000 customers (Zipf popularity), stamped over the
   ten minutes before the run, for an SLO file of 50 availability SLOs by endpoint, 10 latency SLOs by
   endpoint, 2 SLOs by customer and latency groups by service and endpoint (``scale_slos``).
2. **single**: ``sloguard run`` consumes the backlog, pinned to one CPU (harness and broker on the other).
3. **stage 1**: ``sloguard topics create``, then one ``sloguard run --stage partial``, same pinning, same
   backlog (its own group). Partial records and bytes per input event are read from its self-metrics
   and from the partials topic once it is done.
4. **stage 2**: one ``sloguard run --stage merge`` applies that partials backlog, same pinning: a fresh
   process, cold, ending with one publish (capture, evaluation, render) of every series it owns.
   **more**: two more backlogs of ``--events`` (other seeds, the same ten minutes) go through stage 1
   (a new process in its group), then a second fresh merge process, in a group and with a checkpoints
   topic of its own, applies every partial record, same pinning. It starts as cold and ends with one
   publish of the same series, so its CPU beyond the first's, over the further events, is stage 2's
   CPU per input event (the goal's figure); the first backlog's CPU beyond its events' share at that
   rate is its fixed part (the publish, the cold start), which a tier pays per tick and scrape, not
   per event.
5. **two stage-1 processes** on an input topic of their own, both free to use both CPUs: once the two
   share its partitions, the same backlog is produced there.
6. **freshness**: ``sloguard loadgen`` at ``--fresh-rate`` (default 2k single-event messages a second,
   which both stages keep up with on a shared 2-core box) while markers are produced to input
   partition 0, each stamped with its send time (`benchmarks.freshness`), once stage 2 has applied a
   first range; a marker is fresh once the merge stage's /metrics counts it (markers not seen 15 s
   after the last was sent make p99 infinite). Stage 1 is pinned, stage 2 shares the harness's CPU.
   Then the same for the single process, for the part the second hop adds. The live partial records
   per input event and both stages' live CPU per event come from here.

CPU is each process's user+system time from ``/proc`` (all threads), from the poll (every 0.2 s) before
the tick whose /metrics last said nothing was processed yet to the first poll that saw it done: per-tick
work (render, checkpoint) is included. A poll it did not answer does not count as idle (a busy loop is
not idle), and an answer is a tick's, which may be older than the poll (a tick a second, fewer while
the loop is busy): the window starts at the poll before the first that read that tick's answer (told
apart by ``sloguard_tick_duration_seconds``). The capacity rows turn the per-event costs into processes,
partitions and Kafka bytes per second (``capacity``; docs/scaling.md#capacity).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from benchmarks.cardinality import PARTITIONS, _size
from benchmarks.checks import Check, table
from benchmarks.freshness import Latencies, Marked, Marking, freshness, freshness_config, pct
from benchmarks.harness import (
    EVENTS,
    OUT,
    check_alive,
    cpu_seconds,
    daemon_argv,
    loadgen_argv,
    pin_harness,
    say,
    scrape,
    sloguard_env,
    spawn,
    wait_ready,
)

SERVICES, ENDPOINTS, CUSTOMERS = 50, 40, 5000
EVENTS_PER_MESSAGE = 100
APPLIED = "sloguard_partials_applied_total"
PRODUCED = "sloguard_partials_produced_total"
RANGES = "sloguard_partial_ranges_total"
SERIES_OWNED = "sloguard_series_owned"
LAG = "sloguard_consumer_lag"
#: Differs from one tick's /metrics to the next: tells which tick a poll's answer came from (`until`).
TICK = "sloguard_tick_duration_seconds"
#: When the series a process exports were evaluated (`until`).
SNAPSHOT = "sloguard_snapshot_timestamp_seconds"
#: Partials partitions (`sloguard topics create`'s default).
PARTIALS = 12
POLL_S = 0.2
#: Backlogs of ``--events`` more events the second merge process applies (`more_events`).
MORE = 2
#: Seconds stage 2's CPU is sampled once everything is applied (what its ticks cost without traffic).
IDLE_S = 5.0
#: The issue's goals: stage 2 at most this share of stage 1's CPU per event; p99 freshness through both.
GOAL_STAGE2_SHARE = 10.0
GOAL_FRESH_P99_S = 3.0
#: Capacity rows: the event rates, and the share of a core a process is planned to use.
RATES = (100_000, 1_000_000, 10_000_000)
UTILISATION = 0.7


def scale_slos() -> str:
    """The SLO file (see the module docstring): realistic, every SLO selects some of the backlog."""
    slos: list[dict[str, object]] = [
        {
            "name": f"svc-{s:02d}-availability",
            "service": f"svc-{s:02d}",
            "objective": 99.9,
            "sli": {"type": "availability"},
            "window": "30d",
            "group_by": ["endpoint"],
        }
        for s in range(SERVICES)
    ]
    slos += [
        {
            "name": f"svc-{s:02d}-latency",
            "service": f"svc-{s:02d}",
            "objective": 99,
            "sli": {"type": "latency", "threshold_ms": 300},
            "window": "28d",
            "group_by": ["endpoint"],
        }
        for s in range(10)
    ]
    slos += [
        {
            "name": f"svc-{s:02d}-per-customer",
            "service": f"svc-{s:02d}",
            "objective": 99.5,
            "sli": {"type": "availability"},
            "window": "30d",
            "group_by": ["customer"],
            "max_series": CUSTOMERS + 1000,
        }
        for s in range(2)
    ]
    doc = {
        "apiVersion": "sloguard/v1",
        "slos": slos,
        "latency": {"group_by": ["service", "endpoint"], "windows": ["1m", "5m", "1h"]},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _zipf(rng: np.random.Generator, n: int, size: int, s: float) -> np.ndarray:
    pop = 1.0 / np.arange(1, n + 1) ** s
    return np.searchsorted(np.cumsum(pop / pop.sum()), rng.random(size), side="right").clip(0, n - 1)


def backlog(events: int, now_ms: int, seed: int = 13, span_ms: int = 600_000) -> list[bytes]:
    """NDJSON messages of `EVENTS_PER_MESSAGE` events: Zipf over services and customers, endpoints
    uniform, ~0.5 % 5xx and 2 % 404, log-normal latencies, times evenly over the ``span_ms`` (default ten
    minutes) before ``now_ms``."""
    rng = np.random.default_rng(seed)
    svc = _zipf(rng, SERVICES, events, 0.8)
    ep = rng.integers(0, ENDPOINTS, events)
    cust = _zipf(rng, CUSTOMERS, events, 1.0)
    ts = now_ms - span_ms + np.arange(events, dtype=np.int64) * span_ms // max(1, events)
    u = rng.random(events)
    status = np.where(u < 0.005, 503, np.where(u < 0.025, 404, 200))
    lat = np.round(rng.lognormal(3.5, 0.8, events), 2)
    lines = [
        f'{{"ts": {t}, "service": "svc-{s:02d}", "endpoint": "GET /v1/e{e:02d}", "customer": "c-{c:05d}", '
        f'"status": {st}, "latency_ms": {la}, "trace": {{"id": "{t:x}"}}}}'
        for t, s, e, c, st, la in zip(
            ts.tolist(), svc.tolist(), ep.tolist(), cust.tolist(), status.tolist(), lat.tolist(), strict=True
        )
    ]
    k = EVENTS_PER_MESSAGE
    return ["\n".join(lines[i : i + k]).encode() for i in range(0, len(lines), k)]


async def produce(bootstrap: str, topic: str, messages: list[bytes], chunk: int = 50) -> None:
    """``messages`` to the `PARTITIONS` partitions of ``topic``, ``chunk`` at a time in turn (evenly)."""
    from sloguard.ingest.kafka import KafkaConfig
    from sloguard.ingest.kafka_producer import BatchProducer

    async with BatchProducer(KafkaConfig(bootstrap, (topic,)), max_batch_bytes=1 << 20) as producer:
        futures = []
        for lo in range(0, len(messages), chunk):
            futures += await producer.send(topic, lo // chunk % PARTITIONS, messages[lo : lo + chunk])
        await producer.flush()
        await asyncio.gather(*futures)


# -- processes under test ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    """A started process: its handle, its name (log files) and its /metrics port."""

    proc: subprocess.Popen[bytes]
    name: str
    port: int


@dataclass(frozen=True)
class Run:
    """Processes run until their ``metric`` adds up to a target: CPU seconds (all of them) and the wall
    window, from before the last answer where none had counted anything to the first where their sum
    reached the target and each had published a snapshot evaluated since (`until`); ``both_*`` (the
    rate): from the same start to the first poll where the sum reached the target."""

    cpu_s: float
    wall_s: float
    count: float  # counted in the window, all processes
    counts: list[float]  # per process, at the end
    both_cpu_s: float
    both_wall_s: float
    both_count: float
    last: dict[str, float]

    @property
    def per_count_us(self) -> float:
        return self.cpu_s / self.count * 1e6 if self.count > 0 else math.nan

    @property
    def rate(self) -> float:
        return self.both_count / self.both_wall_s if self.both_wall_s > 0 else math.nan


def stage_env(
    bootstrap: str, topic: str, group: str, name: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """`sloguard_env` for ``topic`` (and ``extra``), after ``sloguard topics create`` made its internal
    topics."""
    env = {**sloguard_env(bootstrap, topic, group), **(extra or {})}
    argv = [sys.executable, "-m", "sloguard", "topics", "create"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{name}: sloguard topics create failed: {done.stderr.strip()}")
    say(f"{name}: {done.stdout.strip()}".replace("\n", "; "))
    return env


async def assigned(procs: Sequence[Proc], topic: str, limit_s: float = 120) -> None:
    """Wait until the input partitions are shared out among ``procs``, each owning some (its
    ``sloguard_consumer_lag`` rows name them)."""
    rows = [f'sloguard_consumer_lag{{partition="{i}",topic="{topic}"}}' for i in range(PARTITIONS)]
    deadline = time.monotonic() + limit_s
    while True:
        owned = []
        for p in procs:
            check_alive(p.proc, p.name)
            with contextlib.suppress(OSError, TimeoutError, ValueError, IndexError):
                owned.append(len((await scrape(p.port, rows)).values))
        if len(owned) == len(procs) and min(owned) > 0 and sum(owned) == PARTITIONS:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"partitions of {topic} not shared out after {limit_s:g} s: {owned}")
        await asyncio.sleep(POLL_S)


@contextlib.contextmanager
def started(
    config: Path, stage: str | None, name: str, env: dict[str, str], cores: set[int] | None
) -> Iterator[Proc]:
    """``sloguard run`` (``--stage stage`` unless None) as a process on ``cores`` (None: the harness's)."""
    from sloguard.broker import free_port

    port = free_port()
    argv = daemon_argv(config, port) + ([] if stage is None else ["--stage", stage])
    with spawn(argv, name, None, env) as proc:
        if cores is not None:
            os.sched_setaffinity(proc.pid, cores)
        yield Proc(proc, name, port)


async def until(procs: Sequence[Proc], metric: str, target: float, limit_s: float) -> Run:
    """Poll every `POLL_S` until the sum of ``metric`` over ``procs`` reaches ``target`` and every process
    has published a snapshot evaluated after that (stage 2 applying a backlog evaluates its series every
    few seconds only, `sloguard.scale.runtime.BEHIND_REFRESH_S`: exporting what it applied is its work).

    Polling starts at once, not once the processes are ready: a process may begin its work the moment
    it is (stage 2 applies the partials backlog as soon as its partitions are restored), before a first
    poll after a readiness wait, which would then miss that work."""
    # (wall, CPU of all, metric per process, whether every process answered, the tick of each answer)
    samples: list[tuple[float, float, list[float], bool, tuple[float, ...]]] = []
    seen: list[dict[str, float]] = [{} for _ in procs]  # the latest values read from each
    deadline = time.monotonic() + limit_s
    polled, reached = -math.inf, math.inf  # wall clock: the previous poll; the poll before the target
    while True:
        answered = True
        wall, polled = polled, time.time()
        for p, values in zip(procs, seen, strict=True):
            check_alive(p.proc, p.name)
            # A scrape that fails (a busy event loop) keeps the previous values, and its poll does not
            # count as idle: a process that holds its loop while it works would otherwise look idle
            # until it is done, and the window would miss its work.
            try:
                got = await scrape(p.port, (metric, EVENTS, PRODUCED, RANGES, TICK, SNAPSHOT), families=True)
            except (OSError, TimeoutError, ValueError, IndexError):
                answered = False
            else:
                values.update(got.values)
        counts = [values.get(metric, 0.0) for values in seen]
        ticks = tuple(values.get(TICK, math.nan) for values in seen)
        samples.append(
            (time.monotonic(), sum(cpu_seconds(p.proc.pid) for p in procs), counts, answered, ticks)
        )
        if sum(counts) >= target:
            # The answer that reached it is a tick's after the previous poll at the latest.
            reached = min(reached, wall)
            if min(values.get(SNAPSHOT, math.inf) for values in seen) > reached:
                break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{procs[0].name}: {sum(counts):,.0f} of {target:,.0f} after {limit_s:g} s")
        await asyncio.sleep(POLL_S)
    idle = [i for i, s in enumerate(samples) if sum(s[2]) == 0 and s[3]]
    # The last idle answer is a tick's /metrics, which may be older than the poll that read it (ticks
    # are a second apart, more while the loop is busy): the work may have begun right after that tick.
    # So the window starts at the poll before the first one that read the same ticks' answers.
    first = idle[-1] if idle else 0
    while first > 0 and samples[first - 1][4] == samples[first][4]:
        first -= 1
    a = samples[max(0, first - 1)]
    b = samples[-1]
    # The rate's window ends where the target was reached (not after the wait for a fresh snapshot), and
    # starts where the CPU window does: stage 1 counts its events a range at a time, and in a backlog a
    # range is a whole partition's share (`RANGE_BEHIND_BYTES`), so "from when every process had counted
    # something" could be the last poll itself (two processes: 5x, or no figure at all).
    r = next(s for s in samples if sum(s[2]) >= target)
    all_on = a
    totals = {k: sum(v.get(k, 0.0) for v in seen) for k in seen[0]}
    return Run(b[1] - a[1], b[0] - a[0], sum(b[2]) - sum(a[2]), b[2], r[1] - all_on[1], r[0] - all_on[0],
               sum(r[2]) - sum(all_on[2]), totals)  # fmt: skip


async def topic_records(bootstrap: str, topic: str) -> tuple[int, list[tuple[int, bytes]]]:
    """The partitions of ``topic`` and every record value, as ``(partition, value)`` in offset order
    per partition."""
    from sloguard.ingest.kafka import KafkaConfig
    from sloguard.ingest.kafka_topics import PartitionReader, partition_counts

    kafka = KafkaConfig(bootstrap, (topic,), client_id="bench-scale-reader")
    count = (await partition_counts(kafka, [topic]))[topic]
    reader = PartitionReader(kafka)
    await reader.start()
    records: list[tuple[int, bytes]] = []
    try:
        for p in range(count):
            lo, hi = await reader.bounds(topic, p)
            records += [(p, v) for v in await reader.read(topic, p, lo, hi)]
    finally:
        await reader.stop()
    return count, records


async def topic_bytes(bootstrap: str, topic: str) -> tuple[int, int]:
    """(records, value bytes) of every partition of ``topic``."""
    _, records = await topic_records(bootstrap, topic)
    return len(records), sum(len(v) for _, v in records)


# -- the phases -------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """What the phases measured (CPU per event in microseconds)."""

    events: int = 0
    input_bytes: int = 0
    single: Run | None = None
    stage1: Run | None = None
    stage2: Run | None = None
    stage1_more: Run | None = None  # stage 1 on the `MORE` further backlogs (`more_events`)
    stage2_all: Run | None = None  # a second merge process on every partial record
    partials_all: int = 0  # partial records of every backlog
    more: int = 0  # events of the further backlogs
    two: Run | None = None
    two_produce_s: float = math.nan  # producing the backlog the two processes read as it comes
    partials: tuple[int, int] = (0, 0)  # records, bytes
    series: float = math.nan
    live: dict[str, float] = field(default_factory=dict)
    fresh_scaled: Latencies | None = None
    fresh_single: dict[str, float] = field(default_factory=dict)
    stage2_idle: float = math.nan  # CPU seconds per second once applied, nothing more coming
    load: dict[str, float] = field(default_factory=dict)  # phase -> 1-minute load average at its start

    def phase(self, name: str, text: str) -> None:
        self.load[name] = os.getloadavg()[0]
        say(f"{name}: {text} (load average {self.load[name]:.1f})")


async def backlog_phases(args: argparse.Namespace, config: Path, core: int | None, m: Measured) -> None:
    from sloguard.broker import LocalBroker

    pinned = None if core is None else {core}
    everywhere = set(range(os.cpu_count() or 1))
    limit = 120 + args.events / 10_000
    with LocalBroker() as broker:
        topic = "scale-in"
        broker.create_topics([topic], PARTITIONS)
        messages = backlog(args.events, time.time_ns() // 1_000_000)
        m.events, m.input_bytes = args.events, sum(len(x) for x in messages)
        say(f"backlog: {args.events:,} events, {m.input_bytes / 1e6:,.0f} MB in {len(messages):,} messages")
        await produce(broker.bootstrap, topic, messages)
        boot = broker.bootstrap

        m.phase("single", f"sloguard run pinned to CPU {core}")
        with started(config, None, "scale-single", sloguard_env(boot, topic, "scale-single"), pinned) as p:
            m.single = await until([p], EVENTS, args.events, limit)

        env = stage_env(boot, topic, "scale-one", "stage 1")
        m.phase("stage 1", f"one sloguard run --stage partial pinned to CPU {core}")
        with started(config, "partial", "scale-partial", env, pinned) as p:
            m.stage1 = await until([p], EVENTS, args.events, limit)
        partials_topic = f"{topic}-sloguard-partials"
        m.partials = await topic_bytes(boot, partials_topic)
        say(f"stage 1: {m.partials[0]:,} partial records, {m.partials[1] / 1e6:,.1f} MB")

        m.phase("stage 2", f"one sloguard run --stage merge pinned to CPU {core}")
        with started(config, "merge", "scale-merge", env, pinned) as p:
            m.stage2 = await until([p], APPLIED, m.partials[0], limit)
            cpu0 = cpu_seconds(p.proc.pid)
            await asyncio.sleep(IDLE_S)
            m.stage2_idle = (cpu_seconds(p.proc.pid) - cpu0) / IDLE_S
            # After the idle seconds: while applying a backlog, stage 2 refreshes its series (and
            # sloguard_series_owned) every few seconds only (sloguard.scale.runtime.BEHIND_REFRESH_S).
            with contextlib.suppress(OSError, TimeoutError, ValueError, IndexError):
                m.series = (await scrape(p.port, (SERIES_OWNED,), families=True)).values[SERIES_OWNED]

        await more_events(args, config, pinned, boot, topic, env, m)

        # Both join first (else the first takes every partition of the backlog), then the backlog is
        # produced again, to an input topic of their own.
        broker.create_topics([f"{topic}-two"], PARTITIONS)
        env = stage_env(boot, f"{topic}-two", "scale-two", "two stage 1")
        m.phase("two stage 1", "two sloguard run --stage partial, each free to use every CPU")
        with contextlib.ExitStack() as stack:
            procs = [
                stack.enter_context(started(config, "partial", f"scale-partial-{i}", env, everywhere))
                for i in (1, 2)
            ]
            for p in procs:
                await wait_ready(p.proc, p.name, p.port, 120)
            await assigned(procs, f"{topic}-two")
            polls = asyncio.create_task(until(procs, EVENTS, args.events, limit))
            began = time.monotonic()
            await produce(boot, f"{topic}-two", messages)
            m.two_produce_s = time.monotonic() - began
            m.two = await polls


async def more_events(
    args: argparse.Namespace,
    config: Path,
    pinned: set[int] | None,
    boot: str,
    topic: str,
    env: dict[str, str],
    m: Measured,
) -> None:
    """Stage 2's CPU per further input event: `MORE` x ``--events`` more events (other seeds, the same ten
    minutes) through stage 1 (its group goes on from its commits), then a second fresh merge process
    (a group and a checkpoints topic of its own) applies every partial record, the first backlog's
    and these. Both merge runs start cold and end with one publish of the same series, so what the
    second costs beyond the first is what the further events cost: ``(B − A) / (MORE · events)``."""
    now = time.time_ns() // 1_000_000
    more = MORE * args.events
    m.phase("more", f"{more:,} more events for stage 1, then a second merge process applies every record")
    for seed in range(14, 14 + MORE):  # (one backlog in memory at a time)
        await produce(boot, topic, backlog(args.events, now, seed=seed))
    with started(config, "partial", "scale-partial-more", env, pinned) as p:
        m.stage1_more = await until([p], EVENTS, more, 120 + more / 10_000)
    m.partials_all = (await topic_bytes(boot, f"{topic}-sloguard-partials"))[0]
    extra = {"SLOGUARD_SCALE__CHECKPOINTS_TOPIC": f"{topic}-checkpoints-more"}
    env_b = stage_env(boot, topic, "scale-more", "stage 2, every record", extra)
    with started(config, "merge", "scale-merge-more", env_b, pinned) as p:
        m.stage2_all = await until([p], APPLIED, m.partials_all, 120 + (args.events + more) / 10_000)
    m.more = more


async def two_hop_freshness(args: argparse.Namespace, config: Path, core: int | None, m: Measured) -> None:
    """Loadgen + markers into the input, stage 1 pinned, stage 2 with the harness; markers seen in stage 2."""
    from sloguard.broker import LocalBroker
    from sloguard.ingest.kafka import KafkaConfig
    from sloguard.ingest.kafka_producer import BatchProducer

    pinned = None if core is None else {core}
    with LocalBroker() as broker:
        topic = "scale-live"
        broker.create_topics([topic], PARTITIONS)
        env = stage_env(broker.bootstrap, topic, "scale-live", "freshness")
        with (
            started(config, "partial", "scale-live-partial", env, pinned) as s1,
            started(config, "merge", "scale-live-merge", env, None) as s2,
        ):
            m.phase("freshness", f"two stages, loadgen at {args.fresh_rate:,.0f} events/s")
            # The load runs until stopped; markers start once stage 2 has applied a first range (its
            # start-up restores every partition first) and 3 s more.
            lg_argv = loadgen_argv(broker.bootstrap, topic, str(args.fresh_rate), "3600")
            producer = BatchProducer(KafkaConfig(broker.bootstrap, (topic,), client_id="bench-marker"))
            await producer.start()
            try:
                with spawn(lg_argv, "scale-live-loadgen") as lg:
                    await until([s1], EVENTS, 1, 120)
                    await until([s2], APPLIED, 1, 300)
                    say(f"freshness: stage 2 applying; {args.fresh_seconds:g} s of markers")
                    marking = Marking(s2.proc, lg, s2.name, s2.port, Marked())
                    before = await _live_counts(s1, s2)
                    await marking.run(producer, topic, 3.0, args.fresh_seconds)
                    after = await _live_counts(s1, s2)
            finally:
                await producer.stop()
    marked = marking.marked
    m.fresh_scaled = Latencies.of(marked.produced, marked.visible)
    m.live = {k: after[k] - before[k] for k in after}
    m.live["lag"] = after["lag"]


async def _live_counts(s1: Proc, s2: Proc) -> dict[str, float]:
    # Generous limits: stage 2's tick holds its event loop for seconds at a time (docs/benchmarks.md).
    one = (await scrape(s1.port, (EVENTS, PRODUCED, RANGES, LAG), families=True, limit_s=60)).values
    two = (await scrape(s2.port, (APPLIED,), families=True, limit_s=60)).values
    return {
        "t": time.monotonic(),
        "events": one.get(EVENTS, 0.0),
        "records": one.get(PRODUCED, 0.0),
        "ranges": one.get(RANGES, 0.0),
        "cpu1": cpu_seconds(s1.proc.pid),
        "cpu2": cpu_seconds(s2.proc.pid),
        "applied": two.get(APPLIED, 0.0),
        "lag": one.get(LAG, 0.0),
    }


# -- the table --------------------------------------------------------------------------------------------


def stage2_costs(m: Measured) -> tuple[float, float]:
    """Stage 2's CPU seconds per further input event (`more_events`), and the first backlog's CPU beyond
    that many per event: a fresh process's one publish of every series (capture, evaluation, render),
    its cold start and its ticks, whatever the events."""
    assert m.stage2 is not None and m.stage2_all is not None
    per_event = (m.stage2_all.cpu_s - m.stage2.cpu_s) / m.more
    return per_event, m.stage2.cpu_s - per_event * m.events


def capacity(m: Measured) -> list[Check]:
    """Processes, partitions and Kafka bytes per second at each of `RATES`, from the per-event costs.

    A process is planned at `UTILISATION` of one core (one Python process uses one core). Stage 1: the
    backlog's CPU per event (a busy process fetches full batches, so its ranges are as big as the
    backlog's). Stage 2: its CPU per further input event (`stage2_costs`); plus, every second, the first
    backlog's fixed part (a whole publish of every series and a cold start: more than a tier spends a
    second on them, which is a capture per tick and a render per scrape, split among its processes);
    plus its ticks' cost without traffic, which grows with the partials partitions (every partition's
    aggregator is evaluated every tick). Input partitions: twice the stage-1 processes (room to double
    without repartitioning); partials partitions: twice the stage-2 processes, at least the default 12.
    Kafka bytes: the input written and read once, the partials at the backlog's bytes per input event,
    written and read once."""
    assert m.stage1 is not None
    c1 = m.stage1.cpu_s / m.events
    c2, fixed = stage2_costs(m)
    idle_per_partition = m.stage2_idle / PARTIALS
    in_b, part_b = m.input_bytes / m.events, m.partials[1] / m.events
    rows = []
    for rate in RATES:
        n1 = max(1, math.ceil(rate * c1 / UTILISATION))
        parts = PARTIALS
        for _ in range(3):  # more processes want more partitions, whose ticks cost more
            n2 = max(1, math.ceil((rate * c2 + fixed + parts * idle_per_partition) / UTILISATION))
            parts = max(PARTIALS, 2 * n2)
        mb = 2 * rate * (in_b + part_b) / 1e6
        rows.append(
            Check(
                "capacity",
                f"{rate:,} ev/s: stage-1 + stage-2 processes",
                None,
                "",
                note=f"{n1} + {n2}; input partitions {2 * n1}, partials {parts}; Kafka in+out {mb:,.0f} MB/s "
                f"(partials {2 * rate * part_b / 1e6:,.1f})",
            )
        )
    return rows


def backlog_rows(m: Measured, core: int | None) -> list[Check]:
    s, one, two, merge, everything = m.single, m.stage1, m.two, m.stage2, m.stage2_all
    assert s is not None and one is not None and two is not None and merge is not None
    assert everything is not None and m.stage1_more is not None
    n, load = m.events, m.load
    us1, us_s, us_first = one.per_count_us, s.per_count_us, merge.cpu_s / n * 1e6
    per_event, fixed = stage2_costs(m)
    us2 = per_event * 1e6
    rec, size = m.partials
    ranges = one.last.get(RANGES, math.nan)
    return [
        Check("single", "sloguard run: CPU per event", us_s, "µs",
              note=f"{s.rate:,.0f} ev/s wall, pinned to CPU {core}; load {load['single']:.1f}"),
        Check("stage 1", "--stage partial: CPU per event", us1, "µs",
              note=f"{one.rate:,.0f} ev/s wall, pinned to CPU {core}; load {load['stage 1']:.1f}"),
        Check("stage 1", "  vs the single process", us1 / us_s, "x"),
        Check("stage 1", "  partial records per input event", rec / n, "",
              note=f"{ranges:,.0f} ranges of {n / ranges:,.0f} events x {PARTIALS} partials"),
        Check("stage 1", "  partial bytes per input event", size / n, "B",
              note=f"{size / rec / 1024:,.1f} KiB a record; input {m.input_bytes / n:,.0f} B an event"),
        Check("stage 2", "--stage merge: CPU per input event", us2, "µs",
              note=f"a further {m.more:,} events' records: {everything.cpu_s:.2f} s for all "
              f"{m.partials_all:,}, {merge.cpu_s:.2f} s for the first {rec:,}; load {load['more']:.1f}"),
        Check("stage 2", "  share of stage 1's CPU", 100 * us2 / us1, "%", GOAL_STAGE2_SHARE,
              higher_is_better=False,
              note=f"stage 1 on the further events: {m.stage1_more.per_count_us:.2f} µs"),
        Check("stage 2", "  first backlog, fresh process: per input event", us_first, "µs",
              note=f"{100 * us_first / us1:.0f} % of stage 1's; {rec:,} records applied in "
              f"{merge.wall_s:.1f} s; load {load['stage 2']:.1f}"),
        Check("stage 2", "  of which fixed: a publish, a cold start", fixed * 1e3, "ms",
              note=f"the first backlog's CPU past its events' share; {m.series:,.0f} series"),
        Check("stage 2", "  CPU without traffic (ticks)", m.stage2_idle * 100, "%",
              note=f"of a core, {PARTIALS} partitions owned, {m.series:,.0f} series"),
        Check("1 vs 2 stage 1", "one process", one.rate, "ev/s", note=f"pinned to CPU {core}"),
        Check("1 vs 2 stage 1", "two processes", two.rate, "ev/s",
              note=f"both free on {os.cpu_count()} CPUs with the broker; load {load['two stage 1']:.1f}; "
              f"read as produced ({m.two_produce_s:.1f} s to produce)"),
        Check("1 vs 2 stage 1", "  two / one", two.rate / one.rate, "x",
              note=f"CPU per event {two.per_count_us:.1f} µs (one: {us1:.1f}); events each: "
              f"{', '.join(f'{c:,.0f}' for c in two.counts)}"),
    ]  # fmt: skip


def freshness_rows(m: Measured) -> list[Check]:
    lat = m.fresh_scaled
    if lat is None:
        return []
    p99 = pct(lat.total, 99) if lat.seen == lat.markers else math.inf
    single99 = m.fresh_single.get("p99", math.nan)
    live = m.live
    ev, wall = live.get("events", 0.0), live.get("t", math.nan)
    rows = [
        Check("freshness", "two stages: produced -> merge /metrics, p99", p99, "s", GOAL_FRESH_P99_S,
              higher_is_better=False,
              note=f"p50 {pct(lat.total, 50):.2f} s; {lat.seen} of {lat.markers} markers; "
              f"load {m.load.get('freshness', math.nan):.1f}"),
        Check("freshness", "single process, p99", single99, "s",
              note=f"p50 {m.fresh_single.get('p50', math.nan):.2f} s; "
              f"load {m.load.get('freshness 1', math.nan):.1f}"),
        Check("freshness", "  added by the second hop, p99", p99 - single99, "s"),
    ]  # fmt: skip
    if ev > 0:
        rows += [
            Check("live", "partial records per input event", live["records"] / ev, "",
                  note=f"{ev / wall:,.0f} ev/s, {live['ranges'] / wall:,.1f} ranges/s, "
                  f"{live['records'] / wall:,.0f} records/s; stage 1 lag at the end {live['lag']:,.0f}"),
            Check("live", "stage 1 CPU per input event", live["cpu1"] / ev * 1e6, "µs"),
            Check("live", "stage 2 CPU per input event", live["cpu2"] / ev * 1e6, "µs",
                  note=f"{100 * live['cpu2'] / live['cpu1']:.0f} % of stage 1's"),
        ]  # fmt: skip
    return rows


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n")[0])
    options: tuple[tuple[str, Callable[[str], float], float, str], ...] = (
        ("--events", _size, 1_000_000, "backlog events (default 1M)"),
        ("--fresh-rate", float, 2_000, "freshness load, events/s (default 2k)"),
        ("--fresh-seconds", float, 30, "seconds of markers (default 30)"),
    )
    for flag, kind, default, text in options:
        p.add_argument(flag, type=kind, default=default, help=text)
    p.add_argument("--quick", action="store_true", help="--events 200k --fresh-seconds 10")
    return p


def main(argv: list[str] | None = None) -> int:
    from benchmarks.harness import stop_on_sigterm

    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.events, args.fresh_seconds = 200_000, 10.0
    stop_on_sigterm()
    OUT.mkdir(parents=True, exist_ok=True)
    core = pin_harness()
    base = OUT / "scale-base.yaml"
    base.write_text(scale_slos())
    config = freshness_config(base, OUT / "scale-slos.yaml")
    m = Measured()
    t0 = time.monotonic()
    asyncio.run(backlog_phases(args, config, core, m))
    try:
        asyncio.run(two_hop_freshness(args, config, core, m))
        m.phase("freshness 1", f"the single process, loadgen at {args.fresh_rate:,.0f} events/s")
        _, single = asyncio.run(freshness(args.fresh_rate, args.fresh_seconds, 5.0, PARTITIONS, base, core))
        m.fresh_single = {"p50": single["latency_s"][50], "p99": single["latency_s"][99]}
    except Exception as exc:  # noqa: BLE001 - the backlog's figures are still worth printing
        say(f"freshness FAILED: {exc!r}")
    m.load["end"] = os.getloadavg()[0]
    print()
    loads = ", ".join(f"{k} {v:.1f}" for k, v in m.load.items())
    print(
        f"sloguard scaled out vs one process — {m.events:,} backlog events at {SERVICES} services x "
        f"{ENDPOINTS} endpoints x {CUSTOMERS} customers, {PARTITIONS} input partitions, {PARTIALS} partials "
        f"partitions; {os.cpu_count()} CPUs; 1-min load average at each phase's start: {loads}; "
        f"{time.monotonic() - t0:.0f} s in all"
    )
    print(table(backlog_rows(m, core) + freshness_rows(m) + capacity(m)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
