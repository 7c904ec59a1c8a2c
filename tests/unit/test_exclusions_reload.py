"""Maintenance windows through the daemon's hot reload (docs/exclusions.md): a window added over the past
takes the retained buckets wholly inside it out of the budget, new events inside it are left out, and
removing it again is forward only."""

from __future__ import annotations

from pathlib import Path

from sloguard.app import Daemon
from sloguard.clock import ManualClock
from sloguard.core.model import Event, EventBatch
from sloguard.settings import load_settings
from sloguard.specfile import load_config
from tests.unit.export.scrape import key, parse

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR_MS = 3_600_000
NOW = T0 + 6 * HOUR_MS

HEAD = """\
apiVersion: sloguard/v1
slos:
  - {name: api, service: api, objective: 99, sli: {type: availability}, window: 30d}
"""
# 02:00-03:00 UTC, on 5 min (coarse) bucket edges: a retroactive window is exact there.
WINDOW = """\
exclusions:
  - {name: db-upgrade, start: "2026-01-01T02:00:00Z", duration: 1h, reason: postgres 17, slos: [api]}
"""


def events(start: int, end: int, every_ms: int = 10_000) -> list[Event]:
    """One event each ``every_ms``; every 4th is a 503."""
    return [
        Event(ts, "api", "GET /", "", 503 if i % 4 == 0 else 200, 1.0)
        for i, ts in enumerate(range(start, end, every_ms))
    ]


def period(d: Daemon) -> tuple[int, int, int]:
    s = d.engine.aggregator.snapshot(NOW).slos[0]
    return int(s.period_total.sum()), int(s.period_bad.sum()), s.excluded_events


def test_a_window_added_by_reload_applies_to_the_past_and_to_new_events(tmp_path: Path) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(HEAD)
    settings = load_settings({"config": str(path), "listen": "127.0.0.1:0"})
    d = Daemon(settings, load_config(path), clock=ManualClock(NOW))
    past = events(T0, NOW)
    d.engine.aggregator.ingest(EventBatch.from_events(past))
    assert period(d) == (len(past), sum(e.status == 503 for e in past), 0)

    path.write_text(HEAD + WINDOW)
    assert d.reload("test")
    a, z = T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS
    inside = [e for e in past if a <= e.ts_ms < z]
    kept = [e for e in past if not a <= e.ts_ms < z]
    assert len(inside) == 360
    assert period(d) == (len(kept), sum(e.status == 503 for e in kept), len(inside))

    # Late events inside the window are left out as they arrive; outside it they count.
    late_in, late_out = events(a + 5_000, a + 65_000), events(z + 5_000, z + 65_000)
    d.engine.aggregator.ingest(EventBatch.from_events(late_in + late_out))
    assert period(d) == (len(kept) + 6, sum(e.status == 503 for e in kept + late_out), len(inside) + 6)
    body = b"".join(
        d.engine.exposition.render_chunks(d.engine.aggregator.snapshot(NOW), d.telemetry.snapshot())
    )
    _, samples = parse(body)
    assert samples[key("sloguard_excluded_events_total", slo="api")] == len(inside) + 6

    # Removing the window is forward only: what was left out does not come back.
    path.write_text(HEAD)
    assert d.reload("test")
    total, _, excluded = period(d)
    assert (total, excluded) == (len(kept) + 6, 0)
    d.engine.aggregator.ingest(EventBatch.from_events(events(a + 100_000, a + 160_000)))
    assert period(d)[0] == len(kept) + 12
