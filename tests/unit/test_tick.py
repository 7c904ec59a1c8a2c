"""The daemon's tick, driven in-process (no broker: the Kafka source is never started)."""

from __future__ import annotations

import asyncio
import gc
import gzip
import threading
from collections.abc import Coroutine, Sequence

import numpy as np
import pytest
import structlog

from sloguard import app
from sloguard.app import Daemon
from sloguard.clock import ManualClock
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.snapshot import Counts, Snapshot
from sloguard.engine import CopyGate
from sloguard.export.model import Family
from sloguard.export.text import Body, render
from sloguard.settings import load_settings
from sloguard.specfile import parse_config
from sloguard.telemetry import GcPauses
from tests.unit.export.httpclient import exchange

SLOS = """\
apiVersion: sloguard/v1
slos:
  - {name: per-customer, service: checkout, objective: 99.9, sli: {type: availability}, window: 30d,
     group_by: [customer]}
"""

T0 = 1_767_225_600_000 + 86_400_000 + 250


def daemon() -> Daemon:
    d = Daemon(load_settings({"listen": "127.0.0.1:0"}), parse_config(SLOS, "slos.yaml"), ManualClock(T0))
    events = [
        Event(T0 - 600_000 + i, "checkout", "GET /a", f"c{i % 7}", 500 if i % 10 == 0 else 200, 1.0)
        for i in range(200)
    ]
    d.engine.aggregator.ingest(EventBatch.from_events(events))
    return d


async def scrape(d: Daemon, gzip_ok: bool = False) -> bytes:
    """GET /metrics from the daemon's server (started here if it is not)."""
    if d.http.port == 0:
        await d.http.start()
    extra = b"Accept-Encoding: gzip\r\n" if gzip_ok else b""
    r = await exchange(d.http.port, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n" + extra + b"\r\n")
    assert r.status == 200, r.body
    return gzip.decompress(r.body) if gzip_ok else r.body


def gauge(body: bytes, name: str) -> float:
    for line in body.decode().splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the exposition")


async def test_tick_exports_how_long_it_held_the_loop_and_the_interval_since_the_previous() -> None:
    d = daemon()
    try:
        await check_maxima(d)
    finally:
        await d.http.stop()


async def check_maxima(d: Daemon) -> None:
    await d.tick()
    first = await scrape(d)
    assert gauge(first, "sloguard_tick_loop_blocked_seconds") > 0
    assert gauge(first, "sloguard_tick_interval_seconds") == 0  # no previous tick
    assert isinstance(d.clock, ManualClock)
    d.clock.advance(1000)
    await d.tick()
    d.http.metrics_max_age = 0.0  # the first body is young enough to be served: ask for the newest
    second = await scrape(d)
    assert gauge(second, "sloguard_tick_interval_seconds") > 0
    # Maxima since the previous exposition: handed over, then started over.
    assert d.telemetry.tick_loop_blocked_seconds == 0 and d.telemetry.tick_interval_seconds == 0


async def test_published_body_is_the_reference_rendering_of_the_latest_snapshot() -> None:
    d = daemon()
    try:
        await d.tick()
        assert d.latest is not None
        plain = await scrape(d)
        assert plain == render(d.exposition.collector.families)
        assert await scrape(d, gzip_ok=True) == plain
    finally:
        await d.http.stop()


async def test_the_counts_are_evaluated_when_asked_for_once_a_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ticks nobody reads evaluate nothing; a tick's snapshot is evaluated once, by the first reader (the
    # render of /metrics, the UI's `latest`), and is then the same object for every other.
    evaluated: list[int] = []
    real = Counts.evaluate

    def counted(self: Counts) -> Snapshot:
        evaluated.append(self.now_ms)
        return real(self)

    monkeypatch.setattr(Counts, "evaluate", counted)
    d = daemon()
    try:
        assert isinstance(d.clock, ManualClock)
        for _ in range(3):
            d.clock.advance(1000)
            await d.tick()
        assert evaluated == []
        body = await scrape(d)
        assert evaluated == [T0 + 3000]
        snapshot = d.latest
        assert snapshot is d.latest and evaluated == [T0 + 3000]
        assert (
            snapshot is not None
            and gauge(body, "sloguard_snapshot_timestamp_seconds") == snapshot.now_ms / 1000
        )
        want = d.engine.aggregator.snapshot(T0 + 3000).slos[0]  # as evaluated at the tick
        got = snapshot.slos[0]
        assert got.labels == want.labels
        for field in ("total", "bad", "period_total", "period_bad"):
            assert np.array_equal(getattr(got, field), getattr(want, field)), field
    finally:
        await d.http.stop()


async def test_the_exposition_is_rendered_when_asked_for_at_most_once_a_tick() -> None:
    d = daemon()
    renderer = d.exposition.renderer
    calls: list[int] = []
    real = renderer.render

    def counted(families: Sequence[Family], *, gzip: bool = False) -> Body:
        calls.append(1)
        return real(families, gzip=gzip)

    renderer.render = counted  # type: ignore[method-assign]
    try:
        assert isinstance(d.clock, ManualClock)
        for _ in range(3):  # nobody scrapes: nothing is rendered
            d.clock.advance(1000)
            await d.tick()
        assert calls == [] and d.latest is not None
        first = await scrape(d)
        assert await scrape(d, gzip_ok=True) == first and len(calls) == 1  # twice in a tick: one render
        d.clock.advance(1000)
        await d.tick()
        # The first body (young enough: `test_scrapes_get_a_body_...`) while the newest renders, or the
        # newest if a render ahead of this scrape (two came last tick) is done.
        assert await scrape(d) in (first, render(d.exposition.collector.families))
        await asyncio.wait_for(until_rendered(d), 10)
        second = await scrape(d)
        assert len(calls) == 2 and second == render(d.exposition.collector.families)
        # The snapshot's now in the body is the last tick's.
        assert gauge(second, "sloguard_snapshot_timestamp_seconds") == d.latest.now_ms / 1000
    finally:
        await d.http.stop()


async def until_rendered(d: Daemon) -> None:
    """Wait for the render the server started in the background, if any."""
    if d.http._rendering is not None:
        await d.http._rendering.ready()


async def test_scrapes_get_a_body_up_to_a_tick_and_two_of_the_longest_recent_renders_old() -> None:
    d = daemon()
    try:
        await d.tick()
        assert d.http.metrics_max_age == d.settings.tick_seconds  # no render yet
        d._render_seconds.extend([0.4, 3.0, 0.2])  # renders vary under load: the longest counts
        assert isinstance(d.clock, ManualClock)
        d.clock.advance(1000)
        await d.tick()
        assert d.http.metrics_max_age == d.settings.tick_seconds + 6.0
        # A scrape every 15 s, the next due 2.45 s from now: a render started at the next tick ends past it
        # if it takes as long as the longest recent one (3 s), not the last (0.2 s); so it starts now.
        now = 1000.0
        d.http._scrapes.extend([now + 2.45 - 30, now + 2.45 - 15])
        assert d._scrape_due(now)
        d._render_seconds.clear()
        d._render_seconds.append(0.2)
        assert not d._scrape_due(now)
    finally:
        await d.http.stop()


async def test_a_slow_tick_logs_where_its_time_went(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past `SLOW_TICK_S` (here every tick), a tick logs its on-loop parts and the collector's share."""
    monkeypatch.setattr(app, "SLOW_TICK_S", -1.0)
    d = daemon()
    try:
        with structlog.testing.capture_logs() as logs:
            await d.tick()
    finally:
        await d.http.stop()
    (line,) = [e for e in logs if e["event"] == "slow_tick"]
    parts = ("advance_ms", "evict_ms", "capture_ms", "gc_ms")
    assert all(line[k] >= 0 for k in (*parts, "cpu_ms", "page_faults"))
    # Evict and capture ran in a worker thread: of the parts, only advance held the loop.
    assert line["blocked_ms"] >= line["advance_ms"]
    assert line["full_collections"] == 0


async def test_the_capture_runs_off_the_loop_and_writers_wait_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tick's copy of the counts runs in a worker thread: the loop goes on meanwhile, and a writer
    (the absorb step awaits `CopyGate.writable`) starts only once the copy is done."""
    d = daemon()
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []
    real = Aggregator.capture

    def capture(self: Aggregator, now_ms: int) -> object:
        assert threading.current_thread() is not threading.main_thread()
        entered.set()
        release.wait(10)
        order.append("copied")
        return real(self, now_ms)

    async def writer() -> None:
        await d.engine.gate.writable()
        order.append("written")

    monkeypatch.setattr(Aggregator, "capture", capture)
    try:
        tick = asyncio.create_task(d.tick())
        assert await asyncio.to_thread(entered.wait, 10)  # the loop runs while the copy is under way
        assert d.engine.gate.closed
        waiting = asyncio.create_task(writer())
        await asyncio.sleep(0.01)
        assert order == []
        release.set()
        await tick
        await waiting
        assert order == ["copied", "written"] and d.latest is not None
        assert not d.engine.gate.closed
    finally:
        release.set()
        await d.http.stop()


async def test_a_cancelled_read_keeps_the_gate_closed_until_its_thread_ends() -> None:
    gate = CopyGate()
    entered, release = threading.Event(), threading.Event()

    def read() -> int:
        entered.set()
        release.wait(10)
        return 1

    task = asyncio.create_task(gate.run_in_thread(read))
    assert await asyncio.to_thread(entered.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gate.closed  # the thread still reads
    release.set()
    await asyncio.wait_for(gate.writable(), 10)
    assert not gate.closed
    assert await gate.run_in_thread(lambda: 2) == 2


async def test_the_tick_evicts_idle_series_in_its_worker_thread_as_the_aggregator_does() -> None:
    """Eviction (once a minute) runs with the capture off the loop; the snapshot is the one an aggregator
    that evicts and snapshots in line gives."""
    slos = SLOS.replace("group_by: [customer]}", "group_by: [customer], series_ttl: 1h}")
    config = parse_config(slos, "slos.yaml")
    d = Daemon(load_settings({"listen": "127.0.0.1:0"}), config, ManualClock(T0))
    # c0, c3 and c6 had events a minute ago, the others only 3 h ago.
    ago = [60_000 if i % 7 in (0, 3, 6) else 3 * 3_600_000 for i in range(300)]
    status = [500 if i % 4 else 200 for i in range(300)]
    events = [Event(T0 - ago[i] + i, "checkout", "GET /a", f"c{i % 7}", status[i], 1) for i in range(300)]
    reference = Aggregator(config)
    for agg in (d.engine.aggregator, reference):
        agg.ingest(EventBatch.from_events(events))
    try:
        with structlog.testing.capture_logs() as logs:
            await d.tick()
    finally:
        await d.http.stop()
    reference.advance(T0)
    assert reference.evict_idle(T0) == {"per-customer": 4}
    assert [e["per_slo"] for e in logs if e["event"] == "idle_series_evicted"] == [{"per-customer": 4}]
    assert d.latest is not None
    got, want = d.latest.slos[0], reference.snapshot(T0).slos[0]
    assert got.labels == want.labels and got.evicted_series == want.evicted_series == 4
    for field in ("total", "bad", "period_total", "period_bad"):
        assert np.array_equal(getattr(got, field), getattr(want, field)), field


def test_gc_pauses_count_collections_while_installed() -> None:
    pauses = GcPauses()
    pauses.install()
    try:
        gc.collect()
        gc.collect(1)
    finally:
        pauses.uninstall()
    assert pauses.full == 1
    assert pauses.seconds > 0
    gc.collect()
    assert pauses.full == 1  # uninstalled: no longer counted
    pauses.uninstall()  # twice is harmless


async def test_a_tick_past_the_next_ones_time_is_followed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ticks are due just after each whole period; one that ends past the next one's time does not make
    the loop wait for the period after (a skipped tick), and a quick one waits for the next due time."""
    d = daemon()
    clock = d.clock
    assert isinstance(clock, ManualClock)
    took = iter([1_300, 200, 2_500, 100])  # ms each tick takes on the clock
    waits: list[float] = []

    async def tick() -> None:
        clock.advance(next(took))
        if len(waits) == 3:
            d.stop()

    real_wait_for = asyncio.wait_for

    async def wait_for(aw: Coroutine[object, object, bool], seconds: float) -> bool:
        waits.append(seconds)
        return await real_wait_for(aw, 0)

    monkeypatch.setattr(d, "tick", tick)
    monkeypatch.setattr(asyncio, "wait_for", wait_for)
    start = clock.now_ms()  # T0: 250 ms into a second
    await d._tick_loop()
    # Tick 1 ran 250 -> 1550 ms, past its successor's 1050: no wait. Tick 2 ran 1550 -> 1750, the next
    # due at 2050: 0.3 s. Tick 3 (the manual clock stood still while waiting) ran 1750 -> 4250, past 2050:
    # no wait. Tick 4 ran 4250 -> 4350, the next due at 5050: 0.7 s (then the loop sees the stop).
    assert start % 1000 == 250
    assert waits == [0.0, 0.3, 0.0, 0.7]
