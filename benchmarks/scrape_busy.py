"""``python -m benchmarks.scrape_busy``: gzip scrapes of a large /metrics while the event loop absorbs a
backlog, in-process, A/B in one run.

The daemon's gzip scrape at 100k series (a ~22 MB body) is slow under a Kafka backlog because every turn of
its event loop absorbs a fetch: the request waits several turns for its first byte, and a body written by
the loop takes a turn per few MB the kernel takes. This reproduces that without Kafka: a child process
pinned to the last CPU runs the real `Absorber` on fetches of ``--fetch`` backlog records (100 events
each, `benchmarks.cardinality`'s backlog at ``--series`` series), one per turn of its loop, and the real
`HttpServer` serving a gzip body of ``--body-mb`` MB (random members of 2.8 KB, as a rendered body's). This
process (on another CPU) scrapes it with a cheap blocking client, switching the child between

* ``loop``: the body written by the loop, and a fetch absorbed whole;
* ``thread``: the body written from a thread (`sloguard.export.bulk`), a fetch absorbed whole;
* ``both``: from a thread, and a fetch absorbed a slice at a time (`sloguard.absorb.SLICE_BYTES`, as the
  daemon does),

in turn before every scrape, and prints per variant the median and max of the wall time to the last byte
and to the first byte, and the child's loop turns (median, p99) while it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.harness import pin_harness

VARIANTS = ("loop", "thread", "both")


def serve(series: int, fetch: int, body_mb: float) -> None:
    """The child: absorb fetches in a loop, serve /metrics; ``/variant?NAME`` switches how, ``/stop`` ends
    it. Prints its port, then at the end its loop turns per variant (JSON lines on stdout)."""
    import numpy as np

    import sloguard.absorb as absorb_module
    from benchmarks.cardinality import SWEEP_SLOS, backlog_parts
    from sloguard.absorb import Absorber
    from sloguard.clock import ManualClock
    from sloguard.engine import Engine
    from sloguard.export.http import HttpServer, Response
    from sloguard.export.text import Body
    from sloguard.ingest.kafka import Fetched
    from sloguard.ingest.offsets import OffsetLedger
    from sloguard.settings import load_settings
    from sloguard.specfile import parse_config
    from sloguard.telemetry import Telemetry

    class NoDeadLetters:
        async def dead_letter(self, items: object) -> int:
            return 0

    slice_bytes = absorb_module.SLICE_BYTES
    turns: dict[str, list[float]] = {v: [] for v in VARIANTS}
    variant = ["both"]
    stopping: list[bool] = []

    async def main() -> None:
        now = time.time_ns() // 1_000_000
        records = [m for part in backlog_parts(series, 3_000_000, now) for m in part]
        config = parse_config(SWEEP_SLOS.format(cap=series + 1000), "bench.yaml")
        absorber = Absorber(
            Engine(config), OffsetLedger(), NoDeadLetters(), Telemetry(), ManualClock(now),
            load_settings({}), asyncio.Event(),
        )  # fmt: skip
        first = series // 100 + 1  # every series once: the steady state
        await absorber.absorb(Fetched(records[:first], {("t", 0): first}))
        rng = np.random.default_rng(1)
        n_members = int(body_mb * 1e6 / 2800)
        members = [rng.integers(0, 256, 2800, dtype=np.uint8).tobytes() for _ in range(n_members)]

        def route(path: str, query: str) -> Response | None:
            if path == "/stop":
                stopping.append(True)
            elif path == "/variant" and query in VARIANTS:
                variant[0] = query
                server.threaded_send_min = None if query == "loop" else 1 << 20
                absorb_module.SLICE_BYTES = slice_bytes if query == "both" else 1 << 62
            else:
                return None
            return Response(200, "text/plain", b"ok\n")

        server = HttpServer("127.0.0.1", 0, lambda: True, lambda: (True, ""), routes=route)
        await server.start()
        server.set_metrics(Body.of_members(members, 15 * n_members * 2800))
        print(json.dumps({"port": server.port}), flush=True)
        loop = asyncio.get_running_loop()
        last = [time.perf_counter()]

        def beat() -> None:
            t = time.perf_counter()
            turns[variant[0]].append(t - last[0])
            last[0] = t
            loop.call_soon(beat)

        loop.call_soon(beat)
        i = first
        while not stopping:
            await asyncio.sleep(0)  # the fetch's turn
            await absorber.absorb(Fetched(records[i : i + fetch], {("t", 0): i + fetch}))
            i = i + fetch if i + 2 * fetch < len(records) else first
        await server.stop()
        quantiles = {v: [statistics.median(t), sorted(t)[int(len(t) * 0.99)]] for v, t in turns.items() if t}
        print(json.dumps(quantiles), flush=True)

    asyncio.run(main())


def scrape(port: int, buf: bytearray) -> tuple[float, float]:
    """A gzip GET of /metrics, read to the last byte: wall seconds to it and to the first byte."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        view, got, first = memoryview(buf), 0, 0.0
        while n := s.recv_into(view[got:], 1 << 22):
            first = first or time.perf_counter() - t0
            got += n
    return time.perf_counter() - t0, first


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scrape_busy", description=__doc__.split("\n")[0])
    p.add_argument("--series", type=int, default=100_000)
    p.add_argument("--fetch", type=int, default=240, help="records (100 events each) per fetch (240)")
    p.add_argument("--body-mb", type=float, default=22.0)
    p.add_argument("--scrapes", type=int, default=10, help="per variant (10)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.series, args.fetch, args.body_mb)
        return 0
    core = pin_harness()
    argv_child = [sys.executable, "-m", "benchmarks.scrape_busy", "--serve"]
    argv_child += ["--series", str(args.series), "--fetch", str(args.fetch), "--body-mb", str(args.body_mb)]
    pin = ["taskset", "-c", str(core)] if core is not None else []
    root = Path(__file__).parent.parent
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    with subprocess.Popen(pin + argv_child, cwd=root, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            port = json.loads(child.stdout.readline())["port"]
            buf = bytearray(int(args.body_mb * 2e6))
            for i in range(args.scrapes):
                for v in VARIANTS[i % 3 :] + VARIANTS[: i % 3]:  # each variant first in turn
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/variant?{v}").read()
                    time.sleep(0.3)
                    results[v].append(scrape(port, buf))
            urllib.request.urlopen(f"http://127.0.0.1:{port}/stop").read()
            turns = json.loads(child.stdout.readline())
        finally:
            if child.poll() is None:
                child.kill()  # done (its figures are read) or failed
    load = os.getloadavg()[0]
    print(
        f"{args.series:,} series, fetches of {args.fetch} records, {args.body_mb:g} MB gzip, load {load:.2f}"
    )
    print("variant   wall ms (med/max)   first byte ms (med/max)   loop turn ms (med/p99)")
    for v, r in results.items():
        wall, first = [x[0] * 1000 for x in r], [x[1] * 1000 for x in r]
        med, p99 = (x * 1000 for x in turns.get(v, [float("nan")] * 2))
        print(
            f"{v:8} {statistics.median(wall):>9.0f} / {max(wall):<6.0f} {statistics.median(first):>15.0f} / "
            f"{max(first):<8.0f} {med:>15.1f} / {p99:<6.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
