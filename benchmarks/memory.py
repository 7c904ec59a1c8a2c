"""Memory of the daemon's state at high cardinality: 100k SLO series (an SLO grouped by customer) and
5k latency groups, built by ingesting synthetic events spread over ``--days`` of event time.

Each configuration runs in its own child process (``python -m benchmarks.memory --child ...``), which
reports its resident set after each phase — imports, ingest (the state), snapshot, render (one tick's
exposition of every series) — and its peak (``VmHWM``). Bytes per series are measured two ways:

* resident: RSS growth over the ingest, divided by the SLO series. Event time spread over two days
  touches only part of the coarse (period) rings: pages of slots the ring never passed are still
  untouched zero pages, so this is what a daemon holds after running that long;
* allocated: the bytes of every numpy array in the aggregator divided by the series, which is what
  the resident set converges to once the daemon has run a whole SLO period (every slot written).

Three configurations by default: the default resolution of an SLO grouped by customer (``{fine: 1m,
coarse: 1h}``), the general default (``{fine: 10s, coarse: 5m}``), both exporting every series, and 1m/1h
exporting only the 1000 worst series (``export: {top_k: 1000}``). The target: peak RSS <= 1 GiB.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import measure
from benchmarks.exposition import Synth, config_yaml, count_samples
from benchmarks.harness import rss_kib, tail

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
HOUR_MS = 3_600_000

#: name -> ((fine, coarse) resolution, or None for the default — 1m/1h for an SLO grouped by
#: customer; export top_k, or None for all).
VARIANTS: dict[str, tuple[tuple[str, str] | None, int | None]] = {
    "default (1m/1h)": (None, None),
    "10s/5m": (("10s", "5m"), None),
    "default top_k=1000": (None, 1000),
}


@dataclass(frozen=True, slots=True)
class Phases:
    """What the child reports (KiB unless named otherwise)."""

    variant: str
    series: int
    latency_groups: int
    events: int
    days: float
    rss_imports_kib: int
    rss_state_kib: int
    rss_snapshot_kib: int
    hwm_snapshot_kib: int
    rss_render_kib: int
    hwm_kib: int
    slo_array_bytes: int
    latency_cells: int
    latency_array_bytes: int
    samples: int
    exposition_bytes: int
    ingest_s: float
    snapshot_s: float
    render_s: float

    @property
    def resident_bytes_per_series(self) -> float:
        return (self.rss_state_kib - self.rss_imports_kib) * 1024 / max(1, self.series)

    @property
    def allocated_bytes_per_series(self) -> float:
        return self.slo_array_bytes / max(1, self.series)


def _arrays(root: object) -> list[np.ndarray[Any, Any]]:
    """Every distinct numpy array reachable from ``root`` through attributes, lists, tuples and dicts
    (generic, so it keeps working when the aggregator's internals change)."""
    seen: set[int] = set()
    found: dict[int, np.ndarray[Any, Any]] = {}
    stack: list[object] = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            base = obj if obj.base is None or not isinstance(obj.base, np.ndarray) else obj.base
            found[id(base)] = base
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif hasattr(obj, "__dict__") or hasattr(type(obj), "__slots__"):
            if isinstance(obj, str | bytes | int | float | type):
                continue
            stack.extend(vars(obj).values() if hasattr(obj, "__dict__") else ())
            for klass in type(obj).__mro__:
                for name in getattr(klass, "__slots__", ()):
                    if hasattr(obj, name):
                        stack.append(getattr(obj, name))
    return list(found.values())


def _ingest(agg: Any, synth: Synth, args: argparse.Namespace, start_ms: int, hours: int) -> int:
    """``args.events`` events spread over ``hours`` from ``start_ms`` (plus ``args.recent_events`` in the
    last hour), one hour at a time, advancing the aggregator after each; the events ingested."""
    rng = synth.rng
    per_hour = max(1, args.events // hours)
    events = 0
    customer_cursor = 0
    for h in range(hours):
        lo = start_ms + h * HOUR_MS
        n = per_hour + (args.recent_events if h == hours - 1 else 0)
        # Half the events: the SLO's service, customers in turn (so every customer appears);
        # the other half: every latency group in turn, random customers. Time-ordered, ingested
        # in batches of --batch events, as the daemon ingests one fetch at a time.
        half = n // 2
        cust = (customer_cursor + np.arange(half, dtype=np.intp)) % args.series
        customer_cursor = (customer_cursor + half) % args.series
        groups = np.concatenate(
            [synth.slo_group(half), (np.arange(n - half, dtype=np.intp) + h * 7919) % args.groups]
        )
        customers = np.concatenate([cust, rng.integers(0, args.series, n - half).astype(np.intp)])
        ts = lo + rng.integers(0, HOUR_MS, n)
        order = np.argsort(ts, kind="stable")
        ts, groups, customers = ts[order], groups[order], customers[order]
        for i in range(0, n, args.batch):
            j = i + args.batch
            agg.ingest(synth.batch(ts[i:j], groups[i:j], customers[i:j]))
            events += len(ts[i:j])
        agg.advance(lo + HOUR_MS)
    return events


def _state_sizes(agg: Any) -> tuple[int, int, int]:
    """(bytes of the SLO arrays, bytes of the latency arrays, latency cells in use)."""
    slo_bytes = sum(a.nbytes for a in _arrays(agg.slos))
    if agg.latency is None:
        return slo_bytes, 0, 0
    latency_bytes = sum(a.nbytes for a in _arrays(agg.latency))
    return slo_bytes, latency_bytes, sum(int(ring.cells()) for ring in agg.latency.rings)


def _child(args: argparse.Namespace) -> int:
    from sloguard.core.aggregator import Aggregator
    from sloguard.export.collector import Exposition
    from sloguard.specfile import parse_config
    from sloguard.telemetry import TelemetrySnapshot

    resolution, top_k = VARIANTS[args.variant]
    config = parse_config(
        config_yaml(
            max_series=args.series + 1000, max_groups=args.groups + 1000, resolution=resolution, top_k=top_k
        ),
        "memory-bench.yaml",
    )
    gc.collect()
    rss_imports = rss_kib()[0]
    agg = Aggregator(config)
    synth = Synth(agg.vocabs, args.series, args.groups)
    now_ms = time.time_ns() // 1_000_000 // HOUR_MS * HOUR_MS
    hours = max(1, round(args.days * 24))
    t0 = time.perf_counter()
    events = _ingest(agg, synth, args, now_ms - hours * HOUR_MS, hours)
    ingest_s = time.perf_counter() - t0
    gc.collect()
    rss_state = rss_kib()[0]
    slo_bytes, latency_bytes, cells = _state_sizes(agg)

    t0 = time.perf_counter()
    snapshot = agg.snapshot(now_ms)
    snapshot_s = time.perf_counter() - t0
    rss_snapshot, hwm_snapshot = rss_kib()
    t0 = time.perf_counter()
    exported = {s.name: s.export_top_k for s in config.slos if s.export_top_k is not None}  # as the daemon
    # As the daemon does: chunks, served as they are (never joined into one body).
    chunks = Exposition(top_k=exported).render_chunks(snapshot, TelemetrySnapshot(events_processed=events))
    body_len = sum(len(c) for c in chunks)
    render_s = time.perf_counter() - t0
    rss_render, hwm = rss_kib()
    phases = Phases(
        variant=args.variant,
        series=sum(s.series for s in snapshot.slos),
        latency_groups=len(snapshot.latency.labels) if snapshot.latency is not None else 0,
        events=events,
        days=hours / 24,
        rss_imports_kib=rss_imports,
        rss_state_kib=rss_state,
        rss_snapshot_kib=rss_snapshot,
        hwm_snapshot_kib=hwm_snapshot,
        rss_render_kib=rss_render,
        hwm_kib=hwm,
        slo_array_bytes=slo_bytes,
        latency_cells=cells,
        latency_array_bytes=latency_bytes,
        samples=sum(count_samples(c) for c in chunks),
        exposition_bytes=body_len,
        ingest_s=ingest_s,
        snapshot_s=snapshot_s,
        render_s=render_s,
    )
    print(json.dumps(asdict(phases)))
    return 0


@dataclass(frozen=True, slots=True)
class Result:
    phases: Phases
    peak_rss_kib: int  # the child's VmHWM as sampled by the parent, or its own at the end
    cpu_s: float
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self.phases),
            "peak_rss_kib": self.peak_rss_kib,
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
            "resident_bytes_per_series": self.phases.resident_bytes_per_series,
            "allocated_bytes_per_series": self.phases.allocated_bytes_per_series,
        }


def run(
    variant: str,
    series: int = 100_000,
    groups: int = 5_000,
    days: float = 2.0,
    events: int = 4_000_000,
    recent_events: int = 1_000_000,
    batch: int = 10_000,
) -> Result:
    """One configuration in a child process; raises RuntimeError if the child fails."""
    OUT.mkdir(parents=True, exist_ok=True)
    slug = variant.replace("/", "-").replace(" ", "-").replace("=", "")
    argv = [
        sys.executable,
        "-m",
        "benchmarks.memory",
        "--child",
        "--variant",
        variant,
        "--series",
        str(series),
        "--groups",
        str(groups),
        "--days",
        str(days),
        "--events",
        str(events),
        "--recent-events",
        str(recent_events),
        "--batch",
        str(batch),
    ]
    out, err = OUT / f"memory-{slug}.out", OUT / f"memory-{slug}.err"
    child = measure.run(argv, out, err, cwd=HERE.parent)
    if child.returncode != 0:
        raise RuntimeError(f"memory child ({variant}) failed:\n{tail(err, 20)}")
    phases = Phases(**json.loads(out.read_text()))
    return Result(phases, max(child.peak_rss_kib, phases.hwm_kib), child.cpu_s, child.wall_s)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.split("\n")[0])
    p.add_argument("--series", type=int, default=100_000, help="customers = SLO series (default 100k)")
    p.add_argument("--groups", type=int, default=5_000, help="latency (service, endpoint) groups")
    p.add_argument("--days", type=float, default=2.0, help="event time spread (default 2 days)")
    p.add_argument("--events", type=int, default=4_000_000, help="events over the whole spread")
    p.add_argument("--recent-events", type=int, default=1_000_000, help="extra events in the last hour")
    p.add_argument("--batch", type=int, default=10_000, help="events per ingest (default 10k, one fetch)")
    p.add_argument("--variant", choices=list(VARIANTS), action="append", help="default: all")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.variant = args.variant[0]
        return _child(args)
    for res in args.variant or list(VARIANTS):
        result = run(res, args.series, args.groups, args.days, args.events, args.recent_events, args.batch)
        print(json.dumps(result.to_json(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
