"""While a scrape is expected, the daemon absorbs in smaller slices, until it comes."""

from __future__ import annotations

import asyncio
import time

from sloguard import app
from sloguard.absorb import SLICE_BYTES
from tests.unit.test_tick import daemon, scrape


async def test_smaller_slices_from_a_margin_before_a_scrape_is_due_until_it_comes() -> None:
    d = daemon()
    try:
        await d.http.start()
        m = time.monotonic()
        d.http._scrapes.extend([m - 19.6, m - 9.6])  # every 10 s, the next due in 0.4 s
        await d.tick()
        assert d.absorber.slice_bytes == SLICE_BYTES
        await asyncio.sleep(0.25)  # past the margin before it
        assert d.absorber.slice_bytes == app.SCRAPE_SLICE_BYTES
        await scrape(d, gzip_ok=True)
        assert d.absorber.slice_bytes == SLICE_BYTES
        await d.tick()  # the next is 10 s away: no smaller slices planned
        await asyncio.sleep(0.3)
        assert d.absorber.slice_bytes == SLICE_BYTES
    finally:
        await d.http.stop()
