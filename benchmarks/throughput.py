"""Throughput of the daemon, Kafka -> /metrics (``python -m benchmarks.daemon --only throughput,ndjson``).

``--events`` events are produced with the load generator into a local Tansu broker *before*
``sloguard run`` starts, as its own process pinned to one core (`benchmarks.backlog` measures it from
its ticks). Baseline: aiokafka alone (``getmany`` in a loop, taking each record's value, nothing else),
same topic, same pinning, timed from its first fetch with records to its last. Targets: >= 180k
events/s with single-event messages, >= 500k/s with 100 events per message (NDJSON).
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.backlog import Consumed, watch
from benchmarks.checks import Check
from benchmarks.harness import OUT, check_alive, daemon_argv, say, sloguard_env, spawn

if TYPE_CHECKING:
    from sloguard.loadgen import LoadgenStats

TARGET_SINGLE = 180_000.0
TARGET_NDJSON = 500_000.0


@dataclass
class Baseline:
    messages: int
    wall_s: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.messages / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def per_cpu_s(self) -> float:
        return self.messages / self.cpu_s if self.cpu_s > 0 else math.nan


async def consume_baseline(bootstrap: str, topic: str, messages: int) -> dict[str, float]:
    """aiokafka alone: getmany in a loop, keeping each record's value (what KafkaSource.fetch does)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="bench-aiokafka",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        # Timed from the end of the first fetch that returned records (its records not counted),
        # as the daemon is timed from a tick taken while it is already consuming.
        n = first = 0
        t0 = c0 = 0.0
        while n < messages:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batches.values():
                values = [r.value for r in records if r.value is not None]
                n += len(values)
            if n and not first:
                first = n
                t0, c0 = time.perf_counter(), time.process_time()
        return {"messages": n - first, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    finally:
        await consumer.stop()


async def baseline(bootstrap: str, topic: str, messages: int, core: int | None, name: str) -> Baseline:
    """`consume_baseline` in a child process pinned to ``core`` (``-m benchmarks.daemon _aiokafka``)."""
    argv = [sys.executable, "-m", "benchmarks.daemon", "_aiokafka", bootstrap, topic, str(messages)]
    with spawn(argv, name, core) as proc:
        deadline = time.monotonic() + 60 + messages / 50_000
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not finish in time")
            await asyncio.sleep(0.1)
        if proc.returncode:
            check_alive(proc, name)
    data = json.loads((OUT / f"{name}.out").read_text())
    return Baseline(int(data["messages"]), float(data["wall_s"]), float(data["cpu_s"]))


async def throughput(
    kind: str, events: int, per_message: int, partitions: int, config: Path, core: int | None
) -> tuple[list[Check], dict[str, Any]]:
    """Produce ``events`` (``per_message`` per message), then time aiokafka alone and the daemon."""
    from sloguard.broker import LocalBroker, free_port
    from sloguard.loadgen import run_loadgen

    bench = kind
    with LocalBroker() as broker:
        topic = f"bench-{kind}"
        broker.create_topics([topic], partitions)
        say(f"{bench}: producing {events:,} events, {per_message} per message, {partitions} partitions")
        produced = await run_loadgen(
            broker.bootstrap, topic, 0, None, events=events, ndjson_batch=per_message
        )
        say(f"{bench}: produced {produced.summary()}")
        say(f"{bench}: aiokafka alone, pinned to CPU {core}")
        base = await baseline(broker.bootstrap, topic, produced.messages, core, f"aiokafka-{kind}")
        say(f"{bench}: {base.messages:,} messages in {base.wall_s:.2f} s ({base.per_s:,.0f} msg/s)")
        port = free_port()
        name = f"daemon-{kind}"
        say(f"{bench}: sloguard run, pinned to CPU {core}, /metrics on :{port}")
        started = time.time()
        with spawn(
            daemon_argv(config, port), name, core, sloguard_env(broker.bootstrap, topic, name)
        ) as proc:
            got = await watch(proc, name, port, produced.events, 60 + events / 20_000, started)
    found = details(produced, partitions, per_message, base, got)
    return checks(bench, produced, base, got, per_message), found


def checks(
    bench: str, produced: LoadgenStats, base: Baseline, got: Consumed, per_message: int
) -> list[Check]:
    """The table's lines: the daemon's rate against its target and against aiokafka alone."""
    events_per_message = produced.events / max(1, produced.messages)
    base_events_per_s = base.per_s * events_per_message
    target = TARGET_SINGLE if per_message == 1 else TARGET_NDJSON
    ratio = got.events_per_s / base_events_per_s if base_events_per_s else math.nan
    return [
        Check(
            bench,
            "daemon events/s (wall, 1 core)",
            got.events_per_s,
            "ev/s",
            target,
            note=f"{got.basis}: {got.steady_events:,.0f} events over {got.steady_wall_s:.1f} s of ticks",
        ),
        Check(
            bench,
            "daemon events per CPU-second",
            got.events_per_cpu_s,
            "ev/s",
            note=f"CPU busy {got.utilisation * 100:.0f} % of the wall time",
        ),
        Check(
            bench,
            "aiokafka alone msg/s (wall)",
            base.per_s,
            "msg/s",
            note=f"{base.per_cpu_s:,.0f} msg per CPU-s; = {base_events_per_s:,.0f} ev/s",
        ),
        Check(bench, "daemon / aiokafka alone (events/s)", ratio, "x"),
        Check(
            bench,
            "render wall per tick (max; own thread)",
            got.render_s_max,
            "s",
            note=f"exposition {got.exposition_bytes / 1e6:.1f} MB; tick (advance+snapshot) "
            f"max {got.tick_s_max * 1000:.0f} ms",
        ),
        Check(
            bench,
            "start to first events / to done",
            got.start_to_first_tick_with_events_s,
            "s",
            note=f"done after {got.start_to_done_s:.1f} s wall, {got.cpu_to_done_s:.1f} CPU-s in all; "
            f"peak RSS {got.peak_rss_kib / 1024:.0f} MiB",
        ),
    ]


def details(
    produced: LoadgenStats, partitions: int, per_message: int, base: Baseline, got: Consumed
) -> dict[str, Any]:
    """Everything measured, for the JSON results."""
    return {
        "produced": asdict(produced) | {"events_per_s": produced.events_per_s},
        "partitions": partitions,
        "per_message": per_message,
        "aiokafka": asdict(base) | {"per_s": base.per_s, "per_cpu_s": base.per_cpu_s},
        "daemon": asdict(got) | {"events_per_s": got.events_per_s, "events_per_cpu_s": got.events_per_cpu_s},
    }
