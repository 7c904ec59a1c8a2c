"""Cost per series (`make bench-cardinality`): the real daemon at 1k .. 100k customer series, then the
1M-distinct-ids attack.

**sweep** (``python -m benchmarks.cardinality sweep --sizes 1k,10k,50k,100k``). For each size N: a local
Tansu broker gets a backlog of ``--events`` events (100 per NDJSON message, 4 partitions) for one SLO
grouped by customer (its default 1m/1h buckets, ``max_series`` above N, every series exported): the first
N events name every customer once, the rest follow a Zipf popularity over the N (as real tenants do), all
stamped over the ten minutes before the run, so every tick has new counts in closed buckets (late data:
the windows change every second), made and produced a million events at a time. Then ``sloguard run``
starts as its own process pinned to one CPU (the harness and the broker keep to the others) and consumes
the backlog, while the harness

* scrapes the whole of ``/metrics`` every ``--scrape-every`` seconds, plain and gzip in turn (``--plain-every
  N``: every Nth plain, 0: gzip only, as Prometheus), timed to the last byte (what Prometheus waits); the
  first two scrapes, before the daemon knows the interval and renders ahead of a scrape, are reported
  apart. It reads from each scrape its self-metrics: events processed (ingest rate
  between the first and the last scrape while consuming), ``sloguard_tick_loop_blocked_seconds`` and
  ``sloguard_tick_interval_seconds`` (maxima over the ticks since the previous render),
  ``sloguard_render_duration_seconds``. Nothing else asks for ``/metrics``: the daemon renders on demand,
  so a poll would be a render;
* reads the daemon's resident set from ``/proc`` every 0.2 s (peak: ``VmHWM``).

Printed per size, with the issue's goals: ingest at 100k >= 0.8x the smallest size's, in the same run;
tick interval ~1 s; gzip scrape <= 250 ms; RSS <= 1 GiB; event-loop blocking per tick <= 20 ms.

**attack** (``python -m benchmarks.cardinality attack``): memory under a cardinality attack, 1M distinct
customer ids fed through the decoder and the aggregator in-process, every event with a customer id never
seen before, into an SLO grouped by customer with ``max_series`` 5000 and latency groups by
service/endpoint. Prints, every ``--step`` events, the resident set, the series held, the overflow count
and the label vocabulary sizes: with the caps the state stops growing once the SLO is full; the
vocabularies are bounded by `Aggregator`'s vocabulary limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import math
import statistics
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.checks import columns
from benchmarks.harness import (
    EVENTS,
    OUT,
    RENDER_S,
    SNAPSHOT_TS,
    check_alive,
    daemon_argv,
    pin_harness,
    rss_kib,
    say,
    sloguard_env,
    spawn,
    status_kib,
    stop_on_sigterm,
    wait_ready,
)

BLOCKED_S = "sloguard_tick_loop_blocked_seconds"
INTERVAL_S = "sloguard_tick_interval_seconds"
#: The issue's goals.
GOAL_INGEST_RATIO = 0.8
GOAL_GZIP_S = 0.25
GOAL_RSS_MIB = 1024.0
GOAL_BLOCKED_S = 0.02
POLL_S = 0.2
#: Scrapes before the daemon knows the scrapers' interval (it renders ahead of the later ones): their times
#: are reported apart from the gzip scrape figures and goal.
WARMUP_SCRAPES = 2
EVENTS_PER_MESSAGE = 100
PARTITIONS = 4

SWEEP_SLOS = """\
apiVersion: sloguard/v1
slos:
  - name: per-customer
    service: checkout
    objective: 99.9
    sli: {{type: availability}}
    window: 30d
    group_by: [customer]
    max_series: {cap}
"""

SLOS = """\
apiVersion: sloguard/v1
slos:
  - name: per-customer
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [customer]
    max_series: 5000
  - name: checkout
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [endpoint]
latency:
  group_by: [service, endpoint]
  windows: [1m, 5m, 1h]
"""


def attack(argv: list[str]) -> int:
    """The 1M-distinct-ids attack (see the module docstring)."""
    from sloguard.core.aggregator import Aggregator
    from sloguard.core.model import Rejections
    from sloguard.ingest.decode import Decoder
    from sloguard.specfile import parse_config

    p = argparse.ArgumentParser(prog="python -m benchmarks.cardinality attack")
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--step", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)

    agg = Aggregator(parse_config(SLOS, "bench.yaml"))
    decoder = Decoder(vocabs=agg.vocabs)
    rejections = Rejections()
    now_ms = int(time.time() * 1000)
    rows = []
    head = f"{'events':>9} {'RSS MiB':>8} {'series':>7} {'overflow':>9} {'customer vocab':>15} {'s':>6}"
    print(head)
    print("-" * len(head))
    started = time.perf_counter()
    base = rss_kib()[0]
    for lo in range(0, args.customers, args.batch):
        records = [
            b'{"ts": %d, "service": "checkout", "endpoint": "POST /v1/orders", "customer": "attacker-%08d",'
            b' "status": 200, "latency_ms": 12.5}' % (now_ms - (i % 3_600_000), i)
            for i in range(lo, min(lo + args.batch, args.customers))
        ]
        agg.ingest(decoder.decode_many(records, rejections))
        done = min(lo + args.batch, args.customers)
        if done % args.step == 0 or done == args.customers:
            gc.collect()
            snap = agg.snapshot(now_ms)
            per_customer = snap.slos[0]
            row = {
                "events": done,
                "rss_mib": rss_kib()[0] / 1024,
                "series": len(per_customer.labels),
                "overflow": per_customer.overflow_events,
                "customer_vocab": len(agg.vocabs.customer),
                "seconds": time.perf_counter() - started,
            }
            rows.append(row)
            print(
                f"{done:>9} {row['rss_mib']:>8.1f} {row['series']:>7} {row['overflow']:>9}"
                f" {row['customer_vocab']:>15} {row['seconds']:>6.1f}"
            )
    growth = rows[-1]["rss_mib"] - rows[len(rows) // 2]["rss_mib"]
    print(
        f"\nRSS before: {base / 1024:.1f} MiB; growth over the second half of the attack: {growth:.1f} MiB;"
        f" rejected: {rejections.total}"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


# -- sweep: the daemon at N series ------------------------------------------------------------------------


def backlog_lines(n_series: int, events: int, now_ms: int, seed: int = 11) -> list[bytes]:
    """NDJSON messages of `EVENTS_PER_MESSAGE` events: every customer once, then Zipf over the N; event
    times spread over the ten minutes before ``now_ms``; ~0.5 % bad (5xx)."""
    return [m for part in backlog_parts(n_series, events, now_ms, seed) for m in part]


#: Events formatted at a time by `backlog_parts` (a few hundred MB of strings): a long backlog is produced
#: a part at a time, never held whole.
PART_EVENTS = 1_000_000


def backlog_parts(
    n_series: int, events: int, now_ms: int, seed: int = 11, part: int = PART_EVENTS
) -> Iterator[list[bytes]]:
    """`backlog_lines`' messages, ``part`` events' worth at a time."""
    rng = np.random.default_rng(seed)
    rest = max(0, events - n_series)
    pop = 1.0 / np.arange(1, n_series + 1)
    zipf = np.searchsorted(np.cumsum(pop / pop.sum()), rng.random(rest), side="right").clip(0, n_series - 1)
    cust = np.concatenate([np.arange(min(n_series, events)), zipf])
    # Customer c-000000 .. in a shuffled order of first appearance (rows are not popularity-sorted).
    names = rng.permutation(n_series)
    ts = now_ms - 600_000 + np.arange(len(cust), dtype=np.int64) * 600_000 // max(1, len(cust))
    status = np.where(rng.random(len(cust)) < 0.005, 503, 200)
    k = EVENTS_PER_MESSAGE
    step = max(k, part // k * k)
    where = '"service": "checkout", "endpoint": "GET /v1/cart"'
    for lo in range(0, len(cust), step):
        hi = lo + step
        lines = [
            f'{{"ts": {t}, {where}, "customer": "c-{names[c]:06d}", '
            f'"status": {st}, "latency_ms": 12.5, "trace": {{"id": "{t:x}"}}}}'
            for t, c, st in zip(ts[lo:hi].tolist(), cust[lo:hi].tolist(), status[lo:hi].tolist(), strict=True)
        ]
        yield ["\n".join(lines[i : i + k]).encode() for i in range(0, len(lines), k)]


async def produce(bootstrap: str, topic: str, parts: Iterable[list[bytes]]) -> int:
    """Send the messages, a part at a time (each part's sends acknowledged before the next is made);
    returns how many."""
    from sloguard.ingest.kafka import KafkaConfig
    from sloguard.ingest.kafka_producer import BatchProducer

    sent = 0
    async with BatchProducer(KafkaConfig(bootstrap, (topic,)), max_batch_bytes=1 << 20) as producer:
        step = 2000
        for messages in parts:
            futures = []
            for lo in range(0, len(messages), step):
                futures += await producer.send(
                    topic, (sent + lo) // step % PARTITIONS, messages[lo : lo + step]
                )
            await producer.flush()
            await asyncio.gather(*futures)
            sent += len(messages)
    return sent


#: The self-metrics read from the head of every scrape.
WATCHED = (SNAPSHOT_TS, EVENTS, RENDER_S, BLOCKED_S, INTERVAL_S)


def head_values(body: bytes, gzipped: bool) -> dict[str, float]:
    """The `WATCHED` samples, from the first MB of a /metrics body (the self-metrics come first)."""
    head = zlib.decompressobj(wbits=31).decompress(body, 1 << 20) if gzipped else body[: 1 << 20]
    got = {}
    for line in head.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition(" ")
        if name in WATCHED:
            got[name] = float(value)
    return got


async def full_scrape(port: int, gzip_ok: bool, limit_s: float = 60.0) -> tuple[float, int, dict[str, float]]:
    """GET the whole of /metrics (gzip or not): wall seconds to the last byte, the bytes received, and
    the `WATCHED` self-metrics it holds."""
    t0 = time.perf_counter()
    async with asyncio.timeout(limit_s):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            enc = "Accept-Encoding: gzip\r\n" if gzip_ok else ""
            writer.write(f"GET /metrics HTTP/1.1\r\nHost: x\r\n{enc}Connection: close\r\n\r\n".encode())
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length)
        finally:
            writer.transport.abort()
    wall = time.perf_counter() - t0
    if status != 200:
        raise ValueError(f"/metrics answered {status}")
    return wall, length, head_values(body, gzip_ok)


@dataclass
class SizeRun:
    """One size of the sweep: what the polls and scrapes saw."""

    series: int
    events: int
    ticks: dict[float, dict[str, float]] = field(default_factory=dict)
    scrapes: list[tuple[bool, float, float, int]] = field(default_factory=list)  # (gzip, at, s, bytes)
    peak_rss_kib: int = 0
    rss_kib: list[int] = field(default_factory=list)
    #: Events processed, as the latest scrape said.
    done: float = 0.0

    def steady(self) -> list[dict[str, float]]:
        """Ticks seen while the backlog was being consumed (start-up and the end excluded)."""
        ordered = [self.ticks[k] for k in sorted(self.ticks)]
        return [t for t in ordered if 0 < t[EVENTS] < self.events]

    def summary(self) -> dict[str, Any]:
        st = self.steady()
        if len(st) < 2:
            raise RuntimeError(f"{self.series} series: only {len(st)} ticks seen while consuming")
        first, last = st[0], st[-1]
        rate = (last[EVENTS] - first[EVENTS]) / (last[SNAPSHOT_TS] - first[SNAPSHOT_TS])
        t0, t1 = first["seen"], last["seen"]
        inside = [s for s in self.scrapes if t0 <= s[1] <= t1] or self.scrapes
        # The daemon renders ahead of a scrape once it knows the scrapers' interval, from two scrapes: the
        # first ones wait for a render (as Prometheus's first scrapes of a new daemon do). Reported apart.
        settled_at = self.scrapes[WARMUP_SCRAPES][1] if len(self.scrapes) > WARMUP_SCRAPES else math.inf
        plain = [s[2] for s in inside if not s[0] and s[1] >= settled_at]
        gz = [s[2] for s in inside if s[0] and s[1] >= settled_at]
        first_two = [s[2] for s in self.scrapes[:WARMUP_SCRAPES]]
        med = statistics.median
        return {
            "series": self.series,
            "ingest_ev_s": rate,
            "ticks": len(st),
            "blocked_max_s": max(t.get(BLOCKED_S, math.nan) for t in st),
            "blocked_median_s": med(t.get(BLOCKED_S, math.nan) for t in st),
            "render_median_s": med(t.get(RENDER_S, math.nan) for t in st),
            "render_max_s": max(t.get(RENDER_S, math.nan) for t in st),
            "interval_max_s": max(t.get(INTERVAL_S, math.nan) for t in st),
            # Each scrape reports the longest interval since the previous render (no poll sees every tick).
            "interval_median_s": med(t.get(INTERVAL_S, math.nan) for t in st),
            "plain_median_s": med(plain) if plain else math.nan,
            "plain_max_s": max(plain, default=math.nan),
            "gzip_median_s": med(gz) if gz else math.nan,
            "gzip_max_s": max(gz, default=math.nan),
            "gzip_scrapes": len(gz),
            "first_scrapes_max_s": max(first_two, default=math.nan),
            "body_bytes": max((s[3] for s in inside if not s[0]), default=0),
            "gzip_bytes": max((s[3] for s in inside if s[0]), default=0),
            "rss_peak_mib": self.peak_rss_kib / 1024,
            "rss_median_mib": med(self.rss_kib) / 1024 if self.rss_kib else math.nan,
        }


async def _scraper(run: SizeRun, port: int, every_s: float, plain_every: int) -> None:
    """Whole scrapes starting every ``every_s`` (as Prometheus would), every ``plain_every``-th plain (0:
    none, as Prometheus, which always asks for gzip), the others gzip; each one's self-metrics are a
    tick's. Nothing else asks for /metrics: the daemon renders only what is scraped."""
    next_at = time.monotonic()
    for i in itertools.count():
        gzip_ok = not plain_every or i % plain_every != 0
        # A fixed rate, as Prometheus keeps: a slot still taken by a slow scrape is skipped.
        next_at += every_s
        while next_at < time.monotonic():
            next_at += every_s
        await asyncio.sleep(next_at - time.monotonic())
        with contextlib.suppress(OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError):
            at = time.monotonic()
            wall, length, got = await full_scrape(port, gzip_ok)
            run.scrapes.append((gzip_ok, at, wall, length))
            if SNAPSHOT_TS in got and EVENTS in got:
                run.ticks.setdefault(got[SNAPSHOT_TS], {**got, "seen": time.monotonic()})
                run.done = max(run.done, got[EVENTS])


async def run_size(
    n: int, events: int, core: int | None, scrape_every: float, plain_every: int = 2
) -> SizeRun:
    """Backlog for ``n`` series, then the daemon consuming it, measured."""
    from sloguard.broker import LocalBroker, free_port

    name = f"cardinality-{n}"
    config = OUT / f"{name}.yaml"
    config.write_text(SWEEP_SLOS.format(cap=n + 1000))
    run = SizeRun(n, events)
    with LocalBroker() as broker:
        topic = f"series-{n}"
        broker.create_topics([topic], PARTITIONS)
        say(f"{n:,} series: producing {events:,} events")
        sent = await produce(broker.bootstrap, topic, backlog_parts(n, events, time.time_ns() // 1_000_000))
        say(f"{n:,} series: {sent:,} messages")
        port = free_port()
        say(f"{n:,} series: sloguard run pinned to CPU {core}, /metrics on :{port}")
        env = sloguard_env(broker.bootstrap, topic, name)
        with spawn(daemon_argv(config, port), name, core, env) as proc:
            await wait_ready(proc, name, port, 120)
            scraper = asyncio.create_task(_scraper(run, port, scrape_every, plain_every))
            try:
                await _watch(run, proc, name, 120 + events / 20_000)
            finally:
                scraper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scraper
    return run


async def _watch(run: SizeRun, proc: Any, name: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        check_alive(proc, name)
        rss, hwm = status_kib(proc.pid, "VmRSS", "VmHWM")
        run.rss_kib.append(rss)
        run.peak_rss_kib = max(run.peak_rss_kib, hwm)
        if run.done >= run.events:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: {run.done:,.0f} of {run.events:,} events after {limit_s:g} s")
        await asyncio.sleep(POLL_S)


def _ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v * 1000:,.0f}"


def sweep_table(rows: list[dict[str, Any]]) -> str:
    """The table: one line per size, the goals' verdicts at the end."""
    base = rows[0]["ingest_ev_s"]
    head = (
        "series", "ingest ev/s", "x smallest", "loop blocked ms (max)", "render ms (med/max)",
        "tick interval s (med/max)", "plain scrape ms", "gzip scrape ms (med/max; n)",
        "first 2 scrapes ms (max)", "body MB (gz)", "RSS MiB",
    )  # fmt: skip
    lines = [
        (
            f"{r['series']:,}",
            f"{r['ingest_ev_s']:,.0f}",
            f"{r['ingest_ev_s'] / base:.2f}",
            _ms(r["blocked_max_s"]),
            f"{_ms(r['render_median_s'])} / {_ms(r['render_max_s'])}",
            f"{r['interval_median_s']:.2f} / {r['interval_max_s']:.2f}",
            f"{_ms(r['plain_median_s'])} / {_ms(r['plain_max_s'])}",
            f"{_ms(r['gzip_median_s'])} / {_ms(r['gzip_max_s'])}; {r['gzip_scrapes']}",
            _ms(r["first_scrapes_max_s"]),
            f"{r['body_bytes'] / 1e6:,.1f} ({r['gzip_bytes'] / 1e6:,.1f})",
            f"{r['rss_peak_mib']:,.0f}",
        )
        for r in rows
    ]
    out = [columns(head, lines, ">" * len(head))]
    big = rows[-1]
    goals = [
        (f"ingest at {big['series']:,} >= {GOAL_INGEST_RATIO}x at {rows[0]['series']:,}",
         big["ingest_ev_s"] / base >= GOAL_INGEST_RATIO),
        # A batch being absorbed when a tick is due delays it a little; a skipped tick is 2 s.
        ("tick interval holds 1 s (no tick skipped: max < 1.5 s)",
         all(r["interval_max_s"] < 1.5 for r in rows)),
        (f"gzip scrape <= {GOAL_GZIP_S * 1000:.0f} ms (max, after the first {WARMUP_SCRAPES} scrapes)",
         all(r["gzip_max_s"] <= GOAL_GZIP_S for r in rows)),
        (f"RSS <= {GOAL_RSS_MIB:.0f} MiB", all(r["rss_peak_mib"] <= GOAL_RSS_MIB for r in rows)),
        (f"event loop blocked per tick <= {GOAL_BLOCKED_S * 1000:.0f} ms",
         all(r["blocked_max_s"] <= GOAL_BLOCKED_S for r in rows)),
    ]  # fmt: skip
    out += [f"{'PASS' if ok else 'FAIL'}  {text}" for text, ok in goals]
    return "\n".join(out)


def _size(text: str) -> int:
    text = text.strip().lower()
    return int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)


def sweep(argv: list[str]) -> int:
    """The daemon at each size (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.cardinality sweep")
    p.add_argument(
        "--sizes", default="1k,10k,50k,100k", help="customer series per run (default 1k,10k,50k,100k)"
    )
    # Scrapes as Prometheus makes them (gzip; a plain scrape now and then for its figure), every 10 s:
    # harsher than its 15 s default (a render ahead of each), and since the ingest got faster the 36M
    # backlog lasts ~40 s at 1k series, which at 15 s left no scrape past the warm-up ones to measure.
    p.add_argument("--events", type=int, default=36_000_000, help="backlog events per size (default 36M)")
    p.add_argument("--scrape-every", type=float, default=10.0, help="seconds between whole scrapes (10)")
    p.add_argument(
        "--plain-every",
        type=int,
        default=4,
        help="every Nth scrape plain, the others gzip (default 4; 0: gzip only, as Prometheus)",
    )
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    sizes = [_size(x) for x in args.sizes.split(",") if x.strip()]
    stop_on_sigterm()
    OUT.mkdir(parents=True, exist_ok=True)
    core = pin_harness()
    rows = []
    for n in sizes:
        run = asyncio.run(run_size(n, args.events, core, args.scrape_every, args.plain_every))
        rows.append(run.summary())
        say(f"{n:,} series: {json.dumps(rows[-1])}")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    print()
    print(f"sloguard run at N customer series: {args.events:,} backlog events, daemon pinned to CPU {core}")
    print(sweep_table(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["attack"]:
        return attack(args[1:])
    if args[:1] == ["sweep"]:
        return sweep(args[1:])
    if not args:
        status = sweep([])
        return status or attack([])
    print("usage: python -m benchmarks.cardinality [sweep|attack] [options]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
