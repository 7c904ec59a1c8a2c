"""The daemon renders once ahead of each expected scrape (`Daemon._prerender_due`), not back to back."""

from __future__ import annotations

import time

from sloguard.clock import ManualClock
from sloguard.export.text import render
from tests.unit.test_tick import daemon, scrape, until_rendered


async def test_slow_renders_one_render_ahead_of_each_scrape_and_none_when_it_is_served() -> None:
    d = daemon()
    assert isinstance(d.clock, ManualClock)
    try:
        await d.http.start()
        d._render_seconds.append(2.0)  # renders take 2 s: a body rendered 3 s ahead is young enough
        m = time.monotonic()
        d.http._scrapes.extend([m - 17.0, m - 7.0])  # every 10 s, the next due in 3 s
        for _ in range(4):  # the ticks until the scrape (without the wait between them)
            d.clock.advance(1000)
            await d.tick()
            await until_rendered(d)
        assert len(d._render_seconds) == 2  # each render adds its duration: one render
        assert not d.http.render_behind  # rendered ahead of the scrape expected
        ahead = render(d.exposition.collector.families)
        # The scrape gets the body rendered ahead; the newest is not rendered behind it.
        assert await scrape(d, gzip_ok=True) == ahead
        await until_rendered(d)
        assert len(d._render_seconds) == 2
        d.clock.advance(1000)
        await d.tick()  # the next scrape is not due soon: none rendered ahead of it yet
        assert d.http.render_behind and len(d._render_seconds) == 2
    finally:
        await d.http.stop()


async def test_a_render_ahead_is_repeated_only_when_its_body_would_be_too_old_when_served() -> None:
    d = daemon()
    try:
        await d.tick()  # metrics_max_age: a tick and two renders
        now = 1000.0
        d.http._scrapes.extend([now + 3.0 - 20.0, now + 3.0 - 10.0])  # the next due in 3 s
        d._render_seconds.append(2.0)
        d.http.metrics_max_age = d.settings.tick_seconds + 2 * 2.0
        assert d._prerender_due(now)
        d._prerendered_at = now
        assert not d._prerender_due(now + 1.0)  # 3 s old when due: young enough (5 s)
        assert not d._prerender_due(now + 2.9)
        # The scrape is late: a render started now is done in 2 s, when that body is 5.5 s old.
        assert d._prerender_due(now + 3.5)
        # A cheap render (shorter than the margin): the body rendered ahead is too old when due, once.
        d._render_seconds.clear()
        d._render_seconds.append(0.05)
        d.http.metrics_max_age = d.settings.tick_seconds + 2 * 0.05
        d._prerendered_at = None
        assert d._prerender_due(now + 1.8)  # due in 1.2 s
        d._prerendered_at = now + 1.8
        assert d._prerender_due(now + 2.8)  # that body would be 1.2 s old when due (> 1.1 s)
        d._prerendered_at = now + 2.8
        assert not d._prerender_due(now + 2.9)
        # A scrape since: the next one needs its own render ahead.
        d.http._scrapes.append(now + 3.0)
        assert d._prerender_due(now + 12.0)
    finally:
        await d.http.stop()
