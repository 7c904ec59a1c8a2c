"""Exposition cost at high cardinality: one tick's snapshot and render, and scrapes of the result.

State: an `Aggregator` fed synthetic events in this process — an SLO grouped by customer with
``--customers`` customers (default 10k) and latency percentiles grouped by (service, endpoint) with
``--groups`` pairs (default 5k), every series and group with events in every window. Then:

* snapshot: ``advance(now)`` + ``snapshot(now)``, the evaluation half of a daemon tick (CPU seconds);
* render: ``Exposition.render`` of that snapshot, the half the daemon runs in a worker thread
  (CPU seconds; the target is <= 0.5 s);
* scrapes: the rendered bytes served by sloguard's `HttpServer` (in a child process pinned to one core,
  as the daemon is) and fetched with ``http.client`` from this process: identity, gzip right after a
  render (what every Prometheus scrape gets: each tick publishes new bytes, whose gzip copy is made
  by the first scrape that asks), and gzip again (cached). Wall time per scrape; the target is <= 250 ms.

``python -m benchmarks.exposition`` runs it alone and prints JSON; ``python -m benchmarks.daemon
--only exposition`` puts it in the table.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http.client
import json
import selectors
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import IO, Any

import numpy as np

from benchmarks.harness import OUT, rss_kib, spawn, tail
from sloguard._types import I64, Intp

ENDPOINTS_PER_SERVICE = 100
#: The service whose events the per-customer SLO counts.
SLO_SERVICE = "svc-000"


# -- synthetic state (shared with benchmarks.memory) ----------------------------------------------------


def service_name(i: int) -> str:
    return f"svc-{i:03d}"


def endpoint_name(i: int) -> str:
    return f"GET /v1/resource-{i:03d}"


def customer_name(i: int) -> str:
    return f"cust-{i:06d}"


def config_yaml(
    *,
    max_series: int,
    max_groups: int,
    resolution: tuple[str, str] | None,
    window: str = "30d",
    top_k: int | None = None,
) -> str:
    """An SLO file: one latency SLO of `SLO_SERVICE` grouped by customer, and latency percentiles
    grouped by (service, endpoint). ``resolution`` = (fine, coarse), or None for the defaults;
    ``top_k``: export only that many of the SLO's series (``export: {top_k: K}``)."""
    res = f"\n    resolution: {{fine: {resolution[0]}, coarse: {resolution[1]}}}" if resolution else ""
    if top_k is not None:
        res += f"\n    export: {{top_k: {top_k}}}"
    return f"""apiVersion: sloguard/v1
slos:
  - name: per-customer-latency
    service: {SLO_SERVICE}
    objective: 99.9
    sli: {{type: latency, threshold_ms: 1000}}
    window: {window}
    group_by: [customer]
    max_series: {max_series}{res}
    alerts: {{min_events: 100}}
latency:
  group_by: [service, endpoint]
  percentiles: [50, 90, 99, 99.9]
  windows: [1m, 5m, 1h]
  max_groups: {max_groups}
"""


class Synth:
    """Builds `EventBatch`es straight into an aggregator's vocabularies (no JSON, no decoder).

    Group ``g`` is (service ``g // 100``, endpoint ``g % 100``); group ``g < 100`` belongs to
    `SLO_SERVICE`. Latencies are log-normal around 60 ms (~0.02 % above the SLO's 1 s threshold);
    ~0.02 % of events are 5xx: a healthy SLO, so ``top_k`` is not overruled by firing series.
    """

    def __init__(self, vocabs: Any, customers: int, groups: int, seed: int = 7) -> None:
        from sloguard.core.model import Vocab

        self.rng = np.random.default_rng(seed)
        self.groups = groups
        services = -(-groups // ENDPOINTS_PER_SERVICE)
        self._vocabs = vocabs
        svc: Vocab = vocabs.service
        ep: Vocab = vocabs.endpoint
        cu: Vocab = vocabs.customer
        self.service_ids = svc.encode([service_name(i) for i in range(services)])
        self.endpoint_ids = ep.encode([endpoint_name(i) for i in range(ENDPOINTS_PER_SERVICE)])
        self.customer_ids = cu.encode([customer_name(i) for i in range(customers)])

    def batch(self, ts_ms: I64, group: Intp, customer: Intp) -> Any:
        from sloguard.core.model import EventBatch, LabelColumn

        n = len(ts_ms)
        rng = self.rng
        status = np.where(rng.random(n) < 0.0002, 503, 200).astype(np.int32)
        latency = np.round(np.exp(np.log(60.0) + 0.8 * rng.standard_normal(n)), 3)
        v = self._vocabs
        return EventBatch(
            ts_ms=ts_ms.astype(np.int64),
            status=status,
            latency_ms=latency,
            service=LabelColumn(self.service_ids[group // ENDPOINTS_PER_SERVICE], v.service),
            endpoint=LabelColumn(self.endpoint_ids[group % ENDPOINTS_PER_SERVICE], v.endpoint),
            customer=LabelColumn(self.customer_ids[customer], v.customer),
        )

    def slo_group(self, n: int) -> Intp:
        """Random groups of the SLO's service (its first 100 groups)."""
        return self.rng.integers(0, min(ENDPOINTS_PER_SERVICE, self.groups), n).astype(np.intp)


def count_samples(body: bytes) -> int:
    """Sample lines of a text exposition (every line that is not a # comment)."""
    return body.count(b"\n") - body.count(b"\n#") - (1 if body.startswith(b"#") else 0)


# -- the server side (child process) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rendered:
    """What the child measured before serving (CPU seconds are this process's, all threads)."""

    customers: int
    groups: int
    events: int
    slo_series: int
    latency_groups: int
    samples: int
    bytes: int
    gzip_bytes: int
    build_s: float
    snapshot_cpu_s: list[float]
    render_cpu_s: list[float]
    render_wall_s: list[float]
    gzip_cpu_s: float
    peak_rss_kib: int


def build(customers: int, groups: int, now_ms: int) -> tuple[Any, int]:
    """An aggregator with every customer in the SLO and every latency group in every window."""
    from sloguard.core.aggregator import Aggregator
    from sloguard.specfile import parse_config

    config = parse_config(
        config_yaml(max_series=customers + 1000, max_groups=groups + 1000, resolution=("1m", "1h")),
        "exposition-bench.yaml",
    )
    agg = Aggregator(config)
    synth = Synth(agg.vocabs, customers, groups)
    rng = synth.rng
    two_hours = 2 * 3600 * 1000
    events = 0
    # Every customer (SLO service), 20 events each over the last two hours.
    cust = np.tile(np.arange(customers, dtype=np.intp), 20)
    # Every latency group, 40 events each over the last two hours and 3 in the last 50 s.
    grp = np.tile(np.arange(groups, dtype=np.intp), 40)
    recent = np.tile(np.arange(groups, dtype=np.intp), 3)
    parts = [
        (now_ms - rng.integers(1, two_hours, len(cust)), synth.slo_group(len(cust)), cust),
        (now_ms - rng.integers(1, two_hours, len(grp)), grp, rng.integers(0, customers, len(grp))),
        (now_ms - rng.integers(1, 50_000, len(recent)), recent, rng.integers(0, customers, len(recent))),
    ]
    chunk = 200_000
    for ts, g, c in parts:
        for i in range(0, len(ts), chunk):
            batch = synth.batch(ts[i : i + chunk], g[i : i + chunk], c[i : i + chunk])
            agg.ingest(batch)
            events += len(batch)
    return agg, events


def _child(args: argparse.Namespace) -> int:
    from sloguard.export.collector import Exposition
    from sloguard.export.http import HttpServer
    from sloguard.telemetry import TelemetrySnapshot

    t0 = time.perf_counter()
    now_ms = time.time_ns() // 1_000_000 // 60_000 * 60_000
    agg, events = build(args.customers, args.groups, now_ms)
    build_s = time.perf_counter() - t0
    snapshot_cpu: list[float] = []
    render_cpu: list[float] = []
    render_wall: list[float] = []
    body = b""
    snapshot = None
    for _ in range(args.renders):
        c0 = time.process_time()
        agg.advance(now_ms)
        snapshot = agg.snapshot(now_ms)
        snapshot_cpu.append(time.process_time() - c0)
        exposition = Exposition()
        telemetry = TelemetrySnapshot(events_processed=events)
        c0, w0 = time.process_time(), time.perf_counter()
        body = exposition.render(snapshot, telemetry)
        render_cpu.append(time.process_time() - c0)
        render_wall.append(time.perf_counter() - w0)
    assert snapshot is not None
    c0 = time.process_time()
    zipped = gzip.compress(body, 1, mtime=0)
    gzip_cpu = time.process_time() - c0
    latency_groups = len(snapshot.latency.labels) if snapshot.latency is not None else 0
    info = Rendered(
        customers=args.customers,
        groups=args.groups,
        events=events,
        slo_series=sum(s.series for s in snapshot.slos),
        latency_groups=latency_groups,
        samples=count_samples(body),
        bytes=len(body),
        gzip_bytes=len(zipped),
        build_s=build_s,
        snapshot_cpu_s=snapshot_cpu,
        render_cpu_s=render_cpu,
        render_wall_s=render_wall,
        gzip_cpu_s=gzip_cpu,
        peak_rss_kib=rss_kib()[1],
    )
    del zipped

    async def serve() -> None:
        server = HttpServer("127.0.0.1", 0, health=lambda: True, ready=lambda: (True, "ok"))
        await server.start()
        server.set_metrics(body)
        print(json.dumps({"port": server.port, **asdict(info)}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            # Each line from the parent: "publish" = a new tick published the same bytes again (so
            # the next gzip scrape compresses them afresh). EOF: stop.
            while line := await reader.readline():
                if line.strip() == b"publish":
                    server.set_metrics(body)
                    print("ok", flush=True)
        finally:
            await server.stop()

    asyncio.run(serve())
    return 0


# -- the client side (this process) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scrapes:
    """Wall seconds of each scrape, by kind."""

    identity_s: list[float]
    gzip_fresh_s: list[float]
    gzip_cached_s: list[float]

    @property
    def worst_s(self) -> float:
        return max([*self.identity_s, *self.gzip_fresh_s, *self.gzip_cached_s])


@dataclass(frozen=True, slots=True)
class Result:
    rendered: Rendered
    scrapes: Scrapes

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self.rendered), **asdict(self.scrapes)}


def _scrape(port: int, encoding: str, expect: int | None) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        t0 = time.perf_counter()
        conn.request("GET", "/metrics", headers={"Accept-Encoding": encoding})
        resp = conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"/metrics answered {resp.status}")
    if encoding == "gzip":
        if resp.getheader("Content-Encoding") != "gzip":
            raise RuntimeError("asked for gzip, got an identity body")
        data = gzip.decompress(data)
    if expect is not None and len(data) != expect:
        raise RuntimeError(f"/metrics body has {len(data)} bytes, expected {expect}")
    return elapsed


def _readline(stream: IO[bytes], timeout: float) -> bytes:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise TimeoutError(f"no answer from the exposition child within {timeout:g} s")
    finally:
        sel.close()
    return stream.readline()


def run(customers: int = 10_000, groups: int = 5_000, scrapes: int = 10, core: int | None = None) -> Result:
    """Build, render and serve in a child process (pinned to ``core``); scrape it from here."""
    OUT.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "benchmarks.exposition",
        "--serve",
        "--customers",
        str(customers),
        "--groups",
        str(groups),
    ]
    with spawn(argv, "exposition", core, pipes=True) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        line = _readline(proc.stdout, 300)
        if not line:
            raise RuntimeError(f"exposition child failed:\n{tail(OUT / 'exposition.err', 20)}")
        info = json.loads(line)
        port = int(info.pop("port"))
        rendered = Rendered(**info)
        identity = [_scrape(port, "identity", rendered.bytes) for _ in range(scrapes)]
        fresh, cached = [], []
        for _ in range(scrapes):
            proc.stdin.write(b"publish\n")
            proc.stdin.flush()
            if _readline(proc.stdout, 30).strip() != b"ok":
                raise RuntimeError("exposition child did not re-publish")
            fresh.append(_scrape(port, "gzip", rendered.bytes))
            cached.append(_scrape(port, "gzip", rendered.bytes))
    return Result(rendered, Scrapes(identity, fresh, cached))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.exposition", description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--groups", type=int, default=5_000)
    p.add_argument("--scrapes", type=int, default=10)
    p.add_argument("--renders", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        return _child(args)
    result = run(args.customers, args.groups, args.scrapes)
    out = result.to_json()
    out["render_cpu_median_s"] = statistics.median(result.rendered.render_cpu_s)
    out["scrape_worst_s"] = result.scrapes.worst_s
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
