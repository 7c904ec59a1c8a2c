"""``python -m benchmarks.daemon``: the daemon's targets, measured (never asserted), one table.

1. throughput — Kafka -> /metrics, single-event messages. ``--events`` events (default 2M) are produced
   with the load generator into a ``--partitions``-partition topic of a local Tansu broker *before*
   ``sloguard run`` starts, as its own process pinned to one core (the harness, the broker and the
   producers keep to the other cores). ``/metrics`` is polled every 0.2 s, reading only its first
   lines (the daemon still hands its whole cached body to the socket); each tick's
   ``sloguard_snapshot_timestamp_seconds`` and ``sloguard_events_processed_total`` give (time, count)
   pairs, and the rate is taken between the first and the last tick seen while
   consuming (start-up and the consumer group join, ~5 s on Tansu, are excluded; they are reported
   apart). CPU is the daemon's user+system time from ``/proc/PID/stat``, interpolated to those ticks.
   Baseline: aiokafka alone (``getmany`` in a loop, taking each record's value, nothing else), same
   topic, same pinning, timed from its first fetch with records to its last. Target: >= 180k events/s.
2. ndjson — the same with 100 events per message (``--ndjson-events``, default 5M). Target: >= 500k/s.
3. freshness — the daemon consumes ``sloguard loadgen`` at 50k events/s (single-event messages);
   meanwhile marker events (service ``marker``, counted by an SLO with 1 s fine buckets listed first
   in the SLO file) are produced to partition 0 about 4 times a second, each stamped with the wall
   time it was sent. ``/metrics`` is polled every 0.1 s; a marker is visible once
   ``sloguard_slo_events{slo="marker",window="5m"}`` counts it. Freshness = visible - produced
   (resolution: the poll interval). Part of it is bucket alignment: a window ends at the last whole
   bucket, so an event is in no window before its 1 s bucket closes (0..1 s after it, ~0.5 s on
   average); that part and the rest (tick, render, consume) are reported apart. Target: p99 <= 2 s.
4. exposition — 10k SLO series + 5k latency groups: render CPU <= 0.5 s, a scrape <= 250 ms
   (`benchmarks.exposition`).
5. memory — 100k SLO series + 5k latency groups: peak RSS <= 1 GiB (`benchmarks.memory`), at the
   default resolution of a customer-grouped SLO (1m/1h) exporting every series and exporting the 1000
   worst (``export: {top_k: 1000}``), and for scale (no target) with explicit 10 s / 5 min buckets.

Every process and broker started here is stopped on the way out, also on Ctrl-C and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import exposition, memory
from benchmarks.checks import Check, table
from benchmarks.freshness import freshness
from benchmarks.harness import BENCH_CONFIG, OUT, pin_harness, say, stop_on_sigterm
from benchmarks.throughput import consume_baseline, throughput

__all__ = ["BENCHES", "Check", "main", "table"]

BENCHES = ("throughput", "ndjson", "freshness", "exposition", "memory")

TARGET_SCRAPE_S = 0.25
TARGET_RENDER_CPU_S = 0.5
TARGET_RSS_MIB = 1024.0


# -- 4 and 5 ---------------------------------------------------------------------------------------------


def run_exposition(core: int | None) -> tuple[list[Check], dict[str, Any]]:
    bench = "exposition"
    say(f"{bench}: 10k SLO series + 5k latency groups, server pinned to CPU {core}")
    r = exposition.run(10_000, 5_000, scrapes=10, core=core)
    rd, sc = r.rendered, r.scrapes
    med = statistics.median
    checks = [
        Check(
            bench,
            "render CPU per tick (median)",
            med(rd.render_cpu_s),
            "s",
            TARGET_RENDER_CPU_S,
            higher_is_better=False,
            note=f"max {max(rd.render_cpu_s) * 1000:.0f} ms; {rd.samples:,} samples, {rd.bytes / 1e6:.1f} MB",
        ),
        Check(
            bench,
            "scrape wall time (worst of all)",
            sc.worst_s,
            "s",
            TARGET_SCRAPE_S,
            higher_is_better=False,
            note=f"{len(sc.identity_s)} of each kind below",
        ),
        Check(
            bench,
            "  identity (median)",
            med(sc.identity_s),
            "s",
            note=f"max {max(sc.identity_s) * 1000:.0f} ms",
        ),
        Check(
            bench,
            "  gzip, first after a render (median)",
            med(sc.gzip_fresh_s),
            "s",
            note=f"max {max(sc.gzip_fresh_s) * 1000:.0f} ms; {rd.gzip_bytes / 1e6:.1f} MB gzipped",
        ),
        Check(
            bench,
            "  gzip, cached (median)",
            med(sc.gzip_cached_s),
            "s",
            note=f"max {max(sc.gzip_cached_s) * 1000:.0f} ms",
        ),
        Check(
            bench,
            "advance+snapshot CPU per tick (median)",
            med(rd.snapshot_cpu_s),
            "s",
            note=f"first {rd.snapshot_cpu_s[0] * 1000:.0f} ms; on the event loop, before the render",
        ),
    ]
    return checks, r.to_json()


def run_memory(series: int) -> tuple[list[Check], dict[str, Any]]:
    bench = "memory"
    checks: list[Check] = []
    details: dict[str, Any] = {}
    for res, (resolution, _) in memory.VARIANTS.items():
        label = res
        say(f"{bench}: {series:,} SLO series + 5k latency groups, {label}")
        r = memory.run(res, series=series)
        p = r.phases
        mib = 1 / 1024
        checks += [
            Check(
                bench,
                f"peak RSS, {label}",
                r.peak_rss_kib * mib,
                "MiB",
                # The target is for the configuration a user gets (the default resolution of a
                # customer-grouped SLO); explicit 10 s buckets for 100k customers are shown for scale.
                TARGET_RSS_MIB if resolution is None else None,
                higher_is_better=False,
                note=f"state {p.rss_state_kib * mib:,.0f}, after snapshot {p.rss_snapshot_kib * mib:,.0f} "
                f"(peak {p.hwm_snapshot_kib * mib:,.0f}), render {p.exposition_bytes / 2**20:,.0f} MiB text",
            ),
            Check(
                bench,
                f"  state bytes/series resident, {label}",
                p.resident_bytes_per_series,
                "B",
                note=f"{p.days:g} days of event time; {p.series:,} series",
            ),
            Check(
                bench,
                f"  state bytes/series allocated, {label}",
                p.allocated_bytes_per_series,
                "B",
                note=f"= {p.slo_array_bytes / 2**20:,.0f} MiB once a whole period was written",
            ),
            Check(
                bench,
                f"  snapshot / render wall, {label}",
                p.snapshot_s,
                "s",
                note=f"render {p.render_s:.1f} s for {p.samples:,} samples",
            ),
        ]
        details[res] = r.to_json()
    return checks, details


# -- main ---------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    checks: list[Check] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.daemon", description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {','.join(BENCHES)}")
    p.add_argument("--events", type=int, default=2_000_000, help="single-event messages (default 2M)")
    p.add_argument("--ndjson-events", type=int, help="events in 100-event messages (default 2.5x --events)")
    p.add_argument("--partitions", type=int, default=4, help="topic partitions (default 4)")
    p.add_argument("--config", type=Path, default=BENCH_CONFIG, help="SLO file of the daemon runs")
    p.add_argument("--fresh-rate", type=float, default=50_000, help="freshness load, events/s")
    p.add_argument("--fresh-seconds", type=float, default=60, help="freshness: seconds of markers")
    p.add_argument("--memory-series", type=int, default=100_000, help="memory: SLO series (default 100k)")
    p.add_argument("--json", action="store_true", help=f"also write {OUT / 'daemon-results.json'}")
    return p


def run_bench(bench: str, args: argparse.Namespace, core: int | None) -> tuple[list[Check], dict[str, Any]]:
    """One benchmark of `BENCHES`, with the command line's settings."""
    if bench == "throughput":
        return asyncio.run(throughput(bench, args.events, 1, args.partitions, args.config, core))
    if bench == "ndjson":
        ndjson_events = args.ndjson_events or int(args.events * 2.5)
        return asyncio.run(throughput(bench, ndjson_events, 100, args.partitions, args.config, core))
    if bench == "freshness":
        return asyncio.run(
            freshness(args.fresh_rate, args.fresh_seconds, 5.0, args.partitions, args.config, core)
        )
    if bench == "exposition":
        return run_exposition(core)
    return run_memory(args.memory_series)


def _run_all(only: list[str], args: argparse.Namespace, core: int | None, outcome: Outcome) -> None:
    for bench in BENCHES:
        if bench not in only:
            continue
        t0 = time.monotonic()
        try:
            checks, details = run_bench(bench, args, core)
        except Exception as exc:  # noqa: BLE001 - one failed benchmark must not hide the others' results
            say(f"{bench} FAILED: {exc!r}")
            checks, details = (
                [Check(bench, "error", None, "", 0.0, note=str(exc).splitlines()[0][:100])],
                {"error": repr(exc)},
            )
        details["seconds"] = time.monotonic() - t0
        outcome.checks += checks
        outcome.details[bench] = details
        say(f"{bench} done in {details['seconds']:.0f} s")


def _write_json(args: argparse.Namespace, outcome: Outcome, core: int | None) -> None:
    results = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pinned_cpu": core,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "checks": [c.to_json() for c in outcome.checks],
        "details": outcome.details,
    }
    path = OUT / "daemon-results.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["_aiokafka"]:  # the baseline child
        bootstrap, topic, messages = args_list[1:4]
        print(json.dumps(asyncio.run(consume_baseline(bootstrap, topic, int(messages)))))
        return 0
    p = _parser()
    args = p.parse_args(args_list)
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(only) - set(BENCHES)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    stop_on_sigterm()
    OUT.mkdir(parents=True, exist_ok=True)
    core = pin_harness()
    outcome = Outcome()
    t_start = time.monotonic()
    interrupted = False
    try:
        _run_all(only, args, core, outcome)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: every process and broker started was stopped; partial results follow")

    print()
    print(
        f"sloguard daemon benchmarks — python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"process under test pinned to CPU {core}; {time.monotonic() - t_start:.0f} s in all"
    )
    print(table(outcome.checks))
    if args.json:
        _write_json(args, outcome, core)
    return 130 if interrupted else 0


if __name__ == "__main__":
    raise SystemExit(main())
