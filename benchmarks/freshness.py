"""Freshness of /metrics under load (``python -m benchmarks.daemon --only freshness``).

The daemon consumes ``sloguard loadgen`` at 50k events/s (single-event messages); meanwhile marker
events (service ``marker``, counted by an SLO with 1 s fine buckets listed first in the SLO file) are
produced to partition 0 about 4 times a second, each stamped with the wall time it was sent.
``/metrics`` is polled every 0.1 s; a marker is visible once
``sloguard_slo_events{slo="marker",window="5m"}`` counts it. Freshness = visible - produced
(resolution: the poll interval). Part of it is bucket alignment: a window ends at the last whole
bucket, so an event is in no window before its 1 s bucket closes (0..1 s after it, ~0.5 s on
average); that part and the rest (tick, render, consume) are reported apart. Target: p99 <= 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.checks import Check
from benchmarks.harness import (
    EVENTS,
    OUT,
    RENDER_S,
    SNAPSHOT_TS,
    TICK_S,
    check_alive,
    cpu_seconds,
    daemon_argv,
    interp,
    loadgen_argv,
    say,
    scrape,
    sloguard_env,
    spawn,
    wait_ready,
)
from sloguard._types import F64

MARKER_SLO = "marker"
MARKER_5M = f'sloguard_slo_events{{slo="{MARKER_SLO}",window="5m"}}'
TARGET_FRESHNESS_P99 = 2.0
INTERVAL_S = 0.237  # between markers: they fall at every phase of the second
POLL_S = 0.1
#: Seconds to wait for the last markers once they are all produced.
DRAIN_S = 15.0


def freshness_config(base: Path, dest: Path) -> Path:
    """``base`` with a marker SLO first (1 s fine buckets), so its rows come early in /metrics."""
    data = yaml.safe_load(base.read_text())
    marker = {
        "name": MARKER_SLO,
        "service": MARKER_SLO,
        "objective": 99,
        "sli": {"type": "availability"},
        "window": "30d",
        "resolution": {"fine": "1s", "coarse": "5m"},
    }
    data["slos"] = [marker, *data["slos"]]
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


async def freshness(
    rate: float, duration: float, warmup: float, partitions: int, config: Path, core: int | None
) -> tuple[list[Check], dict[str, Any]]:
    """The daemon under ``rate`` events/s; markers for ``duration`` s after ``warmup`` s."""
    from sloguard.broker import LocalBroker, free_port
    from sloguard.ingest.kafka import KafkaConfig
    from sloguard.ingest.kafka_producer import BatchProducer
    from sloguard.specfile import load_config

    bench = "freshness"
    cfg = freshness_config(config, OUT / "freshness-slos.yaml")
    load_config(cfg)  # refuse a bad file here, not in the child
    with LocalBroker() as broker:
        topic = "bench-freshness"
        broker.create_topics([topic], partitions)
        port = free_port()
        name = "daemon-freshness"
        env = sloguard_env(broker.bootstrap, topic, name)
        with spawn(daemon_argv(cfg, port), name, core, env) as proc:
            ready_s = await wait_ready(proc, name, port, 60)
            say(f"{bench}: daemon ready after {ready_s:.1f} s; loadgen at {rate:,.0f} events/s")
            loadgen = loadgen_argv(broker.bootstrap, topic, str(rate), str(warmup + duration + 3))
            producer = BatchProducer(KafkaConfig(broker.bootstrap, (topic,), client_id="bench-marker"))
            await producer.start()
            try:
                with spawn(loadgen, "loadgen-freshness") as lg:
                    marking = Marking(proc, lg, name, port, Marked())
                    await marking.run(producer, topic, warmup, duration)
            finally:
                await producer.stop()
    result = marking.marked.summary()
    return checks(bench, result, rate), details(result, rate, duration, warmup)


# -- markers -----------------------------------------------------------------------------------------------


def marker_event(now_ms: int) -> bytes:
    """One marker, stamped with the wall time it is sent."""
    return json.dumps(
        {
            "ts": now_ms,
            "service": MARKER_SLO,
            "endpoint": "GET /marker",
            "customer": "bench",
            "status": 200,
            "latency_ms": 1.0,
        }
    ).encode()


@dataclass
class Marked:
    """What the marker run gathered (times are wall clock, seconds)."""

    produced: list[float] = field(default_factory=list)  # when each marker was sent
    visible: list[float] = field(default_factory=list)  # the poll that first counted it
    ticks: dict[float, float] = field(default_factory=dict)  # tick evaluation time -> events processed
    cpu: list[tuple[float, float]] = field(default_factory=list)  # (time, daemon CPU seconds)
    render_max: float = 0.0
    tick_max: float = 0.0

    def take(self, values: dict[str, float], t: float) -> None:
        """One scrape's self-metrics, polled at ``t``."""
        if MARKER_5M not in values:
            return
        count = min(int(values[MARKER_5M]), len(self.produced))
        while len(self.visible) < count:
            self.visible.append(t)
        self.ticks.setdefault(values[SNAPSHOT_TS], values[EVENTS])
        if self.produced:  # only while measuring
            self.render_max = max(self.render_max, values.get(RENDER_S, 0.0))
            self.tick_max = max(self.tick_max, values.get(TICK_S, 0.0))

    def summary(self) -> dict[str, Any]:
        """The daemon's consumption rate and tick interval over the marker period, from its ticks."""
        start, end = self.produced[0], self.produced[-1]
        inside = sorted((ts, n) for ts, n in self.ticks.items() if start <= ts <= end)
        rate = util = math.nan
        if len(inside) >= 2:
            (t0, n0), (t1, n1) = inside[0], inside[-1]
            rate = (n1 - n0) / (t1 - t0)
            util = (interp(self.cpu, t1) - interp(self.cpu, t0)) / (t1 - t0)
        gaps = np.diff([ts for ts, _ in inside]) if len(inside) >= 2 else np.array([math.nan])
        return {
            "produced": self.produced,
            "visible": self.visible,
            "tick_interval_s": {"median": float(np.median(gaps)), "max": float(np.max(gaps))},
            "events_per_s": rate,
            "utilisation": util,
            "render_s_max": self.render_max,
            "tick_s_max": self.tick_max,
        }


@dataclass
class Marking:
    """Markers produced while /metrics is polled, into ``marked``."""

    proc: subprocess.Popen[bytes]
    lg: subprocess.Popen[bytes]
    name: str
    port: int
    marked: Marked

    async def produce(self, producer: Any, topic: str, warmup: float, duration: float) -> None:
        await asyncio.sleep(warmup)
        end = time.monotonic() + duration
        while time.monotonic() < end:
            now_ms = time.time_ns() // 1_000_000
            value = marker_event(now_ms)
            self.marked.produced.append(now_ms / 1000)
            await producer.send(topic, 0, [value])
            await asyncio.sleep(INTERVAL_S)

    async def look(self) -> None:
        """One poll: the daemon's CPU time and its self-metrics."""
        check_alive(self.proc, self.name)
        t = time.time()
        self.marked.cpu.append((t, cpu_seconds(self.proc.pid)))
        try:
            got = await scrape(self.port, (SNAPSHOT_TS, EVENTS, RENDER_S, TICK_S, MARKER_5M))
        except (OSError, TimeoutError, ValueError, IndexError):
            return
        self.marked.take(got.values, t)

    async def run(self, producer: Any, topic: str, warmup: float, duration: float) -> None:
        """Poll every `POLL_S` until every marker is visible (or `DRAIN_S` after the last was sent)."""
        task = asyncio.create_task(self.produce(producer, topic, warmup, duration))
        try:
            drain_until = math.inf
            while time.monotonic() < drain_until:
                await self.look()
                if self.lg.poll() not in (None, 0):
                    check_alive(self.lg, "loadgen-freshness")
                if task.done():
                    task.result()
                    if len(self.marked.visible) >= len(self.marked.produced):
                        break
                    drain_until = min(drain_until, time.monotonic() + DRAIN_S)
                await asyncio.sleep(POLL_S)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


# -- figures -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latencies:
    """Per marker seen (seconds): produced -> visible, and its two parts."""

    markers: int
    seen: int
    total: F64
    align: F64  # produced -> the end of its 1 s bucket
    after: F64  # the end of its bucket -> visible

    @classmethod
    def of(cls, produced: list[float], visible: list[float]) -> Latencies:
        sent, seen = np.array(produced), np.array(visible)
        n = len(seen)
        bucket_end = np.floor(sent[:n]) + 1.0  # ts is whole ms: floor(ts / 1 s) + 1 s
        return cls(len(sent), n, seen - sent[:n], bucket_end - sent[:n], seen - bucket_end)


def pct(a: F64, q: float) -> float:
    return float(np.percentile(a, q)) if len(a) else math.nan


def checks(bench: str, result: dict[str, Any], rate: float) -> list[Check]:
    lat = Latencies.of(result["produced"], result["visible"])
    p99 = pct(lat.total, 99) if lat.seen == lat.markers else math.inf
    ticks = result["tick_interval_s"]
    return [
        Check(
            bench,
            "produced -> in /metrics, p99",
            p99,
            "s",
            TARGET_FRESHNESS_P99,
            higher_is_better=False,
            note=f"{lat.seen} of {lat.markers} markers seen; poll every {POLL_S * 1000:.0f} ms",
        ),
        Check(
            bench,
            "produced -> in /metrics, p50",
            pct(lat.total, 50),
            "s",
            note=f"max {pct(lat.total, 100):.2f} s",
        ),
        Check(
            bench,
            "  of which bucket alignment, p50/p99",
            pct(lat.align, 50),
            "s",
            note=f"p99 {pct(lat.align, 99) * 1000:.0f} ms (1 s fine buckets)",
        ),
        Check(
            bench,
            "  bucket closed -> in /metrics, p50/p99",
            pct(lat.after, 50),
            "s",
            note=f"p99 {pct(lat.after, 99) * 1000:.0f} ms (tick + render + consume lag)",
        ),
        Check(
            bench,
            "  tick interval (median)",
            ticks["median"],
            "s",
            note=f"max {ticks['max'] * 1000:.0f} ms; render wall max "
            f"{result['render_s_max'] * 1000:.0f} ms, advance+snapshot max "
            f"{result['tick_s_max'] * 1000:.0f} ms",
        ),
        Check(
            bench,
            "daemon events/s while measured",
            result["events_per_s"],
            "ev/s",
            note=f"CPU busy {result['utilisation'] * 100:.0f} %; loadgen target {rate:,.0f}/s",
        ),
    ]


def details(result: dict[str, Any], rate: float, duration: float, warmup: float) -> dict[str, Any]:
    lat = Latencies.of(result["produced"], result["visible"])
    qs = (50, 90, 99, 100)
    return {
        "rate": rate,
        "duration_s": duration,
        "warmup_s": warmup,
        "markers": lat.markers,
        "seen": lat.seen,
        "latency_s": {q: pct(lat.total, q) for q in qs},
        "bucket_alignment_s": {q: pct(lat.align, q) for q in qs},
        "after_bucket_close_s": {q: pct(lat.after, q) for q in qs},
        "daemon_events_per_s": result["events_per_s"],
        "daemon_utilisation": result["utilisation"],
        "render_s_max": result["render_s_max"],
        "tick_s_max": result["tick_s_max"],
        "tick_interval_s": result["tick_interval_s"],
        "samples": {"produced": result["produced"], "visible": result["visible"]},
    }
