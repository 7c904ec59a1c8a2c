"""``python -m benchmarks.scrape_busy``: gzip scrapes of a large /metrics while the event loop absorbs a
backlog, in-process, A/B in one run.

The daemon's gzip scrape at 100k series (a ~22 MB body) is slow under a Kafka backlog because every turn of
its event loop absorbs a fetch: the request waits several turns for its first byte, and a body written by
the loop takes a turn per few MB the kernel takes. This reproduces that without Kafka: a child process
pinned to the last CPU runs the real `Absorber` on fetches of ``--fetch`` backlog records (100 events
each, `benchmarks.cardinality`'s backlog at ``--series`` series), one per turn of its loop, and the real
`HttpServer` serving a gzip body of ``--body-mb`` MB (members of ~2.5 KB, each ~40 KB of exposition text,
as a rendered body's: one member repeated). This process (on another CPU) scrapes it with a cheap blocking
client, reading to the last byte of the Content-Length (as Prometheus; not to the close), switching the
child between

* ``loop``: the body written by the loop, and a fetch absorbed whole;
* ``thread``: the body written from a thread (`sloguard.export.bulk`), a fetch absorbed whole;
* ``both``: from a thread, and a fetch absorbed a slice at a time (`sloguard.absorb.SLICE_BYTES`, as the
  daemon does);
* ``fine``: as ``both`` with 512 KiB slices;
* ``plain``: as ``both``, a plain scrape (the text decompressed a member at a time as it is sent: ~15x the
  bytes),

in turn before every scrape, and prints per variant the median and max of the wall time to the last byte
and to the first byte, the CPU time of the thread that sent the body (none for ``loop``), and the child's loop
turns (median, p99) while it ran.
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
import threading
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from benchmarks.harness import pin_harness

#: Per variant: written from a thread, absorb slice bytes (None: whole fetches), gzip.
VARIANTS: dict[str, tuple[bool, int | None, bool]] = {
    "loop": (False, None, True),
    "thread": (True, None, True),
    "both": (True, 0, True),  # 0: `sloguard.absorb.SLICE_BYTES`
    "fine": (True, 512 << 10, True),
    "plain": (True, 0, False),
}


def serve(series: int, fetch: int, body_mb: float) -> None:
    """The child: absorb fetches in a loop, serve /metrics; ``/variant?NAME`` switches how, ``/stop`` ends
    it. Prints its port, then at the end its loop turns per variant (JSON lines on stdout)."""
    import numpy as np

    import sloguard.export.bulk as bulk
    from benchmarks.cardinality import SWEEP_SLOS, backlog_parts
    from sloguard.absorb import SLICE_BYTES, Absorber
    from sloguard.clock import ManualClock
    from sloguard.engine import Engine
    from sloguard.export.http import HttpServer, Response
    from sloguard.export.text import Body, gzip_member
    from sloguard.ingest.kafka import Fetched
    from sloguard.ingest.offsets import OffsetLedger
    from sloguard.settings import load_settings
    from sloguard.specfile import parse_config
    from sloguard.telemetry import Telemetry

    class NoDeadLetters:
        async def dead_letter(self, items: object) -> int:
            return 0

    slice_bytes = SLICE_BYTES
    turns: dict[str, list[float]] = {v: [] for v in VARIANTS}
    variant = ["both"]
    stopping: list[bool] = []
    # The sender thread's CPU time, summed over the scrapes (the scrape's own cost on the core: the
    # decompression of a plain body, the copies into the socket).
    sender_cpu = [0.0]
    send_blocking = bulk._send_blocking

    def timed_send(
        sock: socket.socket, chunks: Iterable[bytes], deadline: float, abandoned: threading.Event
    ) -> None:
        start = time.thread_time()
        try:
            send_blocking(sock, chunks, deadline, abandoned)
        finally:
            sender_cpu[0] += time.thread_time() - start

    bulk._send_blocking = timed_send

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
        values = np.random.default_rng(1).integers(0, 1000, 512).tolist()
        text = "".join(
            f'slo_events_total{{customer="c-{i:06d}",slo="per-customer",window="5m"}} {v}.0\n'
            for i, v in enumerate(values)
        ).encode()
        member = gzip_member(text)
        n_members = int(body_mb * 1e6 / len(member))

        def route(path: str, query: str) -> Response | None:
            if path == "/stop":
                stopping.append(True)
            elif path == "/cpu":
                return Response(200, "text/plain", f"{sender_cpu[0]!r}\n".encode())
            elif path == "/variant" and query in VARIANTS:
                variant[0] = query
                threaded, size, _ = VARIANTS[query]
                server.threaded_send_min = 1 << 20 if threaded else None
                absorber.slice_bytes = 1 << 62 if size is None else size or slice_bytes
            else:
                return None
            return Response(200, "text/plain", b"ok\n")

        server = HttpServer("127.0.0.1", 0, lambda: True, lambda: (True, ""), routes=route)
        await server.start()
        server.set_metrics(Body.of_members([member] * n_members, n_members * len(text)))
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


def scrape(port: int, gzip_ok: bool, buf: bytearray) -> tuple[float, float]:
    """A GET of /metrics (gzip or not), read to the last byte of its Content-Length (into ``buf``, over
    and over): wall seconds to it and to the first byte."""
    t0 = time.perf_counter()
    enc = b"Accept-Encoding: gzip\r\n" if gzip_ok else b""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + enc + b"Connection: close\r\n\r\n")
        view, got, first, end = memoryview(buf), 0, 0.0, -1
        while end < 0 or got < end:
            n = s.recv_into(view)
            if not n:
                raise ConnectionError("closed before the end of the body")
            if end < 0:
                first = time.perf_counter() - t0
                head, sep, _ = bytes(view[:n]).partition(b"\r\n\r\n")
                length = next(
                    int(v)
                    for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
                    if k.lower() == b"content-length"
                )
                end = len(head) + len(sep) + length
            got += n
    return time.perf_counter() - t0, first


def sender_cpu(port: int) -> float:
    """The child's sender threads' CPU seconds so far."""
    return float(urllib.request.urlopen(f"http://127.0.0.1:{port}/cpu").read())


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
    results: dict[str, list[tuple[float, float, float]]] = {v: [] for v in VARIANTS}
    names = list(VARIANTS)
    with subprocess.Popen(pin + argv_child, cwd=root, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            port = json.loads(child.stdout.readline())["port"]
            buf = bytearray(1 << 22)
            for i in range(args.scrapes):
                k = i % len(names)
                for v in names[k:] + names[:k]:  # each variant first in turn
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/variant?{v}").read()
                    time.sleep(0.3)
                    cpu = sender_cpu(port)
                    wall, first = scrape(port, VARIANTS[v][2], buf)
                    time.sleep(0.05)  # the thread's last instructions
                    results[v].append((wall, first, sender_cpu(port) - cpu))
            urllib.request.urlopen(f"http://127.0.0.1:{port}/stop").read()
            turns = json.loads(child.stdout.readline())
        finally:
            if child.poll() is None:
                child.kill()  # done (its figures are read) or failed
    load = os.getloadavg()[0]
    print(
        f"{args.series:,} series, fetches of {args.fetch} records, {args.body_mb:g} MB gzip, load {load:.2f}"
    )
    print(
        "variant   wall ms (med/max)   first byte ms (med/max)   sender CPU ms (med)   loop turn ms (med/p99)"
    )
    for v, r in results.items():
        walls, firsts = [x[0] * 1000 for x in r], [x[1] * 1000 for x in r]
        med, p99 = (x * 1000 for x in turns.get(v, [float("nan")] * 2))
        cpu = statistics.median(x[2] * 1000 for x in r)
        wall, first = statistics.median(walls), statistics.median(firsts)
        print(
            f"{v:8} {wall:>9.0f} / {max(walls):<6.0f} {first:>15.0f} / "
            f"{max(firsts):<8.0f} {cpu:>18.0f} {med:>15.1f} / {p99:<6.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
