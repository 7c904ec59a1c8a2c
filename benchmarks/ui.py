"""The web UI's JSON API at high cardinality (`make bench-ui`): how long each request holds the event loop.

State, built in this process with the core `Aggregator` (no Kafka, no decoder): an SLO grouped by
(endpoint, customer) with ``--exported`` series (default 10k, all exported), an SLO grouped by customer
with ``--customers`` series (default 100k, exporting its 100 worst), and latency groups by
(service, endpoint); ``--events`` events (default 1M) over the last two days, every series with events.

Then, with `sloguard.ui.routes.Ui` called directly (as `HttpServer` calls it, on the event loop):

* UI start: the first request of its kind to a fresh `Ui` (label codes built from nothing: once per
  process, and for one SLO after an eviction renumbers its series);
* first after a tick: a second of traffic is ingested (with a customer never seen before), the
  aggregator ticks (``advance`` + ``snapshot``) and one request of the kind is timed: what a page pays
  when it is the first to look at a new snapshot (median and worst of ``--rounds`` ticks);
* warm: the same request ``--repeat`` times on the same snapshot (median and p99).

And over real HTTP: the same state served by sloguard's `HttpServer` with the routes mounted, ticking
every second on its event loop as ``sloguard run`` does (advance + snapshot on the loop, the render in
a worker thread), and a client process scraping /metrics ``--scrapes`` times alone, then as many times
while 4 threads fetch API pages in turn: paced at ``--rate`` requests a second (people browsing), then as
fast as they are answered (saturation). Printed: scrape wall times alone and under load, and their ratio
in the same run. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.exposition import ENDPOINTS_PER_SERVICE, Synth, customer_name, endpoint_name

HOUR_MS = 3_600_000


def config_yaml(exported: int, customers: int, groups: int) -> str:
    """Two SLOs of the synthetic service (see the module docstring) and latency groups."""
    return f"""apiVersion: sloguard/v1
slos:
  - name: endpoint-customer-availability
    service: svc-001
    objective: 99.9
    sli: {{type: availability}}
    window: 30d
    group_by: [endpoint, customer]
    max_series: {exported + 1000}
  - name: per-customer-latency
    service: svc-000
    objective: 99.9
    sli: {{type: latency, threshold_ms: 1000}}
    window: 30d
    group_by: [customer]
    max_series: {customers + 10_000}
    export: {{top_k: 100}}
latency:
  group_by: [service, endpoint]
  percentiles: [50, 90, 99, 99.9]
  windows: [1m, 5m, 1h]
  max_groups: {groups + 1000}
"""


@dataclass
class State:
    agg: Any
    synth: Synth
    now_ms: int
    events: int
    exported: int
    customers: int
    fresh: int = 0  # customers added after the build (one or two per tick)


def build(exported: int, customers: int, groups: int, events: int) -> State:
    """The aggregator: every customer and every (endpoint, customer) pair with events."""
    from sloguard.core.aggregator import Aggregator
    from sloguard.specfile import parse_config

    config = parse_config(config_yaml(exported, customers, groups), "ui-bench.yaml")
    agg = Aggregator(config)
    # Room for the customers that show up after the build.
    synth = Synth(agg.vocabs, customers + 10_000, max(groups, 2 * ENDPOINTS_PER_SERVICE))
    rng = synth.rng
    now_ms = time.time_ns() // 1_000_000 // 60_000 * 60_000
    eps = ENDPOINTS_PER_SERVICE
    pairs = np.arange(exported)
    rest = max(0, events - customers - exported)
    pick = rng.random(rest)
    # Every customer once (the SLO's service: groups 0..99), every (endpoint, customer) pair once
    # (the grid SLO's service: groups 100..199), then the rest at random: half per customer, three
    # tenths on the grid, a fifth to any latency group.
    groups_ = [synth.slo_group(customers), eps + pairs % eps, synth.slo_group(rest)]
    custs = [np.arange(customers), pairs // eps, rng.integers(0, customers, rest)]
    on_grid = (pick >= 0.5) & (pick < 0.8)
    groups_[2][on_grid] = eps + rng.integers(0, eps, int(on_grid.sum()))
    custs[2][on_grid] = rng.integers(0, max(1, exported // eps), int(on_grid.sum()))
    anywhere = pick >= 0.8
    groups_[2][anywhere] = rng.integers(2 * eps, max(groups, 3 * eps), int(anywhere.sum()))
    group, cust = np.concatenate(groups_), np.concatenate(custs)
    ts = now_ms - rng.integers(1, 48 * HOUR_MS, len(cust))
    order = np.argsort(ts, kind="stable")
    chunk = 100_000
    for i in range(0, len(order), chunk):
        sel = order[i : i + chunk]
        agg.ingest(synth.batch(ts[sel], group[sel], cust[sel].astype(np.intp)))
    agg.advance(now_ms)
    return State(agg, synth, now_ms, len(cust), exported, customers)


def tick(state: State) -> Any:
    """A second of new traffic (one new customer among it), then advance + snapshot."""
    rng = state.synth.rng
    state.now_ms += 1000
    n = 2000
    cust = rng.integers(0, state.customers, n).astype(np.intp)
    cust[0] = state.customers + state.fresh % 10_000
    state.fresh += 1
    ts = state.now_ms - rng.integers(1, 60_000, n)
    state.agg.ingest(state.synth.batch(ts, state.synth.slo_group(n), cust))
    state.agg.advance(state.now_ms)
    return state.agg.snapshot(state.now_ms)


def requests(state: State) -> list[tuple[str, str, str]]:
    return requests_for(state.customers)


def requests_for(customers: int) -> list[tuple[str, str, str]]:
    """(name, path, query) of each kind of request the pages make."""
    grid = "/api/v1/slos/endpoint-customer-availability"
    per = "/api/v1/slos/per-customer-latency"
    ep = endpoint_name(3).replace(" ", "+").replace("/", "%2F")
    return [
        ("SLO list", "/api/v1/slos", ""),
        ("series page (100 of 100k)", per + "/series", ""),
        ("series page, offset 50k", per + "/series", "offset=50000"),
        ("series filtered by label", grid + "/series", f"endpoint={ep}"),
        ("series filtered (100k)", per + "/series", f"customer={customer_name(777)}"),
        ("SLO detail (100k series)", per, ""),
        ("series detail", per, f"customer={customer_name(12345 % customers)}"),
        ("SLO detail (10k series)", grid, ""),
        ("customers page", "/api/v1/customers", ""),
        ("customers, offset 50k", "/api/v1/customers", "offset=50000"),
    ]


def history(state: State) -> Any:
    """`Ui`'s reader of one series' buckets, as the daemon wires it."""
    return lambda spec, key, start, end, fine: state.agg.bucket_counts(spec, key, start, end, fine=fine)


def in_process(state: State, rounds: int, repeat: int) -> list[dict[str, Any]]:
    """Each kind of request: the first after the UI starts (its label codes built from nothing), the
    first after each of ``rounds`` ticks, then ``repeat`` times on the same snapshot (warm)."""
    from sloguard.ui.routes import Ui

    latest: list[Any] = [None]
    rows = []
    for name, path, query in requests(state):
        ui = Ui(lambda: latest[0], history(state))

        def one(ui: Ui = ui, path: str = path, query: str = query) -> float:
            t0 = time.perf_counter()
            _ok(ui(path, query))
            return (time.perf_counter() - t0) * 1000

        latest[0] = tick(state)
        cold = one()
        first = []
        for _ in range(rounds):
            latest[0] = tick(state)
            first.append(one())
        warm = sorted(one() for _ in range(repeat))
        rows.append(
            {
                "request": name,
                "cold_ms": cold,
                "first_median_ms": statistics.median(first),
                "first_max_ms": max(first),
                "warm_median_ms": statistics.median(warm),
                "warm_p99_ms": warm[min(len(warm) - 1, int(len(warm) * 0.99))],
                "bytes": len(_ok(ui(path, query)).body),
            }
        )
    return rows


def _ok(r: Any) -> Any:
    if r is None or r.status != 200:
        raise RuntimeError(f"API answered {None if r is None else r.status}: {r and r.body[:200]!r}")
    return r


# -- over HTTP: scrapes of /metrics with and without API load ---------------------------------------------


async def serve(state: State, client_argv: list[str]) -> dict[str, Any]:
    """`HttpServer` with the UI's routes, ticking every second on this event loop as ``sloguard run``
    does (advance + snapshot on the loop, the render in a worker thread), while ``client_argv`` runs;
    returns the client's JSON."""
    from sloguard.export.collector import Exposition
    from sloguard.export.http import HttpServer
    from sloguard.telemetry import TelemetrySnapshot
    from sloguard.ui.routes import Ui

    config = state.agg.config
    exposition = Exposition(top_k={s.name: s.export_top_k for s in config.slos if s.export_top_k is not None})
    latest: list[Any] = [None]
    ui = Ui(lambda: latest[0], history(state))
    server = HttpServer("127.0.0.1", 0, health=lambda: True, ready=lambda: (True, "ok"), routes=ui)
    await server.start()

    async def publish() -> None:
        snap = tick(state)
        body = await asyncio.to_thread(
            exposition.render_chunks, snap, TelemetrySnapshot(events_processed=state.events)
        )
        server.set_metrics(body)
        latest[0] = snap

    async def ticking() -> None:
        while True:
            await publish()
            await asyncio.sleep(1.0)

    await publish()
    ticker = asyncio.create_task(ticking())
    try:
        proc = await asyncio.create_subprocess_exec(
            *client_argv, "--port", str(server.port), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"the client failed ({proc.returncode})")
        result: dict[str, Any] = json.loads(out)
        return result
    finally:
        ticker.cancel()
        await server.stop()


def _get(port: int, path: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Accept-Encoding": "identity"})
        resp = conn.getresponse()
        resp.read()
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"{path} answered {resp.status}")
    return elapsed * 1000


def client(port: int, scrapes: int, clients: int, rate: float, paths: list[str]) -> dict[str, Any]:
    """``scrapes`` scrapes of /metrics alone, then as many while ``clients`` threads fetch ``paths`` in
    turn, ``rate`` requests a second in all (0: as fast as they are answered)."""
    alone = [_get(port, "/metrics") for _ in range(scrapes)]
    stop = threading.Event()
    api_ms: list[float] = []

    def load(k: int) -> None:
        i = k
        while not stop.is_set():
            api_ms.append(_get(port, paths[i % len(paths)]))
            i += clients
            if rate:
                stop.wait(clients / rate)

    threads = [threading.Thread(target=load, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    loaded = [_get(port, "/metrics") for _ in range(scrapes)]
    seconds = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join()
    return {"alone_ms": alone, "loaded_ms": loaded, "api_ms": api_ms, "api_per_s": len(api_ms) / seconds}


def clients(port: int, scrapes: int, rate: float, paths: list[str]) -> dict[str, Any]:
    """Scrapes alone and under two loads: ``rate`` API requests a second (people browsing) and 4
    threads asking as fast as they are answered (saturation)."""
    paced = client(port, scrapes, 4, rate, paths)
    flat_out = client(port, scrapes, 4, 0, paths)
    return {"paced": paced, "saturated": flat_out}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def scrape_table(result: dict[str, Any]) -> str:
    """Scrape wall times alone and under each API load, with their ratio (medians), as Markdown."""
    out = [
        "| API load | API requests/s | API ms (median / p99) | scrape ms alone (median / p99)"
        " | scrape ms under load (median / p99) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in result.items():
        alone, loaded, api_ms = r["alone_ms"], r["loaded_ms"], r["api_ms"]
        out.append(
            f"| {name} | {r['api_per_s']:.0f} | {statistics.median(api_ms):.1f} / {_pct(api_ms, 0.99):.1f}"
            f" | {statistics.median(alone):.1f} / {_pct(alone, 0.99):.1f}"
            f" | {statistics.median(loaded):.1f} / {_pct(loaded, 0.99):.1f}"
            f" | {statistics.median(loaded) / statistics.median(alone):.2f} |"
        )
    return "\n".join(out)


def table(rows: list[dict[str, Any]]) -> str:
    """The in-process rows as a Markdown table (ms)."""
    out = [
        "| request | UI start ms | first after tick ms (median / max) | warm ms (median / p99) | bytes |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['request']} | {r['cold_ms']:.1f} | {r['first_median_ms']:.1f} / {r['first_max_ms']:.1f}"
            f" | {r['warm_median_ms']:.2f} / {r['warm_p99_ms']:.2f} | {r['bytes']:,} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exported", type=int, default=10_000)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--groups", type=int, default=2_000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--scrapes", type=int, default=30, help="scrapes of /metrics alone and under load")
    p.add_argument("--rate", type=float, default=20, help="paced API load, requests a second")
    p.add_argument("--no-http", action="store_true", help="only the in-process table")
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)  # the client process
    args = p.parse_args(argv)
    if args.port is not None:
        paths = [f"{path}?{query}" if query else path for _, path, query in requests_for(args.customers)]
        print(json.dumps(clients(args.port, args.scrapes, args.rate, paths)))
        return 0
    t0 = time.perf_counter()
    state = build(args.exported, args.customers, args.groups, args.events)
    series = [len(s.series) for s in state.agg.slos]
    print(f"state: {series} series, {state.events} events, built in {time.perf_counter() - t0:.1f} s")
    rows = in_process(state, args.rounds, args.repeat)
    print(table(rows))
    if not args.no_http:
        client_argv = [sys.executable, "-m", "benchmarks.ui", "--customers", str(args.customers)]
        client_argv += ["--scrapes", str(args.scrapes), "--rate", str(args.rate)]
        result = asyncio.run(serve(state, client_argv))
        print()
        print(scrape_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
