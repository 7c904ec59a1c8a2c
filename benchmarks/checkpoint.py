"""Checkpoint size and write time at 10k and 100k SLO series (`make bench-checkpoint`).

Builds the state of one SLO grouped by customer (default 1m/1h buckets) plus latency groups, by
ingesting synthetic events spread over ``--hours`` of event time (no JSON, straight into the
aggregator), then times each step of a checkpoint as the daemon takes it: ``export_state`` (on the
event loop), ``encode`` (zlib) and ``DirectoryStore.save`` (write, fsync, rename, fsync dir) in a
worker thread; and the restore (read, decode, ``restore_state``). Prints a table, per checkpoint and
per 10k series.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from benchmarks.exposition import Synth, config_yaml

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Row:
    series: int
    events: int
    bytes: int
    export_s: float
    encode_s: float
    save_s: float
    restore_s: float


def measure(series: int, hours: float, events_per_series: int) -> Row:
    from sloguard.checkpoint import Checkpoint, DirectoryStore, decode, encode
    from sloguard.core.aggregator import Aggregator
    from sloguard.specfile import parse_config

    config = parse_config(config_yaml(max_series=series, max_groups=1000, resolution=None), "bench.yaml")
    agg = Aggregator(config)
    synth = Synth(agg.vocabs, customers=series, groups=200)
    rng = np.random.default_rng(1)
    end = 1_767_225_600_000 + 40 * 86_400_000
    n = series * events_per_series
    step = 1_000_000
    for lo in range(0, n, step):
        m = min(step, n - lo)
        ts = end - rng.integers(0, int(hours * HOUR_MS), m)
        # Every customer gets events (series = customers); groups 0..99 are the SLO's service.
        customer = (np.arange(lo, lo + m) % series).astype(np.intp)
        group = rng.integers(0, 100, m).astype(np.intp)
        agg.ingest(synth.batch(ts.astype(np.int64), group, customer))
    agg.advance(end)

    t0 = time.perf_counter()
    state = agg.export_state()
    t1 = time.perf_counter()
    data = encode(Checkpoint(state, {("requests", p): 10**9 for p in range(12)}, end))
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = DirectoryStore(tmp)
        store.save(data)
        t3 = time.perf_counter()
        name = store.names()[0]
        back = decode(store.read(name))
        fresh = Aggregator(config)
        fresh.restore_state(back.state)
        t4 = time.perf_counter()
    got = len(fresh.snapshot(end).slos[0].labels)
    assert got == len(agg.snapshot(end).slos[0].labels)
    return Row(series, n, len(data), t1 - t0, t2 - t1, t3 - t2, t4 - t3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--hours", type=float, default=24.0, help="event time spread (default 24h)")
    p.add_argument("--events-per-series", type=int, default=20)
    args = p.parse_args(argv)
    rows = [measure(s, args.hours, args.events_per_series) for s in args.series]
    head = (
        f"{'series':>8} {'events':>10} {'bytes':>11} {'export s':>9} {'encode s':>9} {'save s':>8}"
        f" {'write s':>8} {'restore s':>10} | {'KiB/10k':>8} {'write s/10k':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        write = r.export_s + r.encode_s + r.save_s
        per = r.series / 10_000
        print(
            f"{r.series:>8} {r.events:>10} {r.bytes:>11,} {r.export_s:>9.3f} {r.encode_s:>9.3f}"
            f" {r.save_s:>8.3f} {write:>8.3f} {r.restore_s:>10.3f} | {r.bytes / 1024 / per:>8.0f}"
            f" {write / per:>11.3f}"
        )
    print(
        f"\nstate: one SLO grouped by customer (1m/1h buckets, 30d), {args.events_per_series} events per"
        f" series over {args.hours:g}h of event time, plus latency groups; write = export + encode + save"
        " (fsync'd)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
