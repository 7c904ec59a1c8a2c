"""Aggregator state export/restore: a restored aggregator is indistinguishable from the original."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import HOUR, Config
from tests.support.specs import config, slo
from tests.unit.core.test_merge import CONFIG, T0, assert_same, events_strategy


def restored(agg: Aggregator, cfg: Config = CONFIG) -> Aggregator:
    copy = Aggregator(cfg)
    copy.restore_state(agg.export_state())
    return copy


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=events_strategy,
    second=events_strategy,
    now_offset=st.integers(0, 2 * HOUR * 1000),
)
def test_restore_then_continue_equals_uninterrupted(
    first: list[Event], second: list[Event], now_offset: int
) -> None:
    whole = Aggregator(CONFIG)
    part = Aggregator(CONFIG)
    if first:
        whole.ingest(EventBatch.from_events(first))
        part.ingest(EventBatch.from_events(first))
    resumed = restored(part)
    now = max((e.ts_ms for e in first + second), default=T0) + now_offset
    assert_same(part.snapshot(now), resumed.snapshot(now))
    if second:
        whole.ingest(EventBatch.from_events(second))
        resumed.ingest(EventBatch.from_events(second))
    snap_whole, snap_resumed = whole.snapshot(now), resumed.snapshot(now)
    assert_same(snap_whole, snap_resumed)
    assert (resumed.stats.events, resumed.stats.newest_ms) == (whole.stats.events, whole.stats.newest_ms)


def test_export_is_a_copy() -> None:
    agg = Aggregator(CONFIG)
    agg.ingest(EventBatch.from_events([Event(T0, "checkout", "GET /a", "c1", 500, 3.0)]))
    state = agg.export_state()
    agg.ingest(EventBatch.from_events([Event(T0 + 1, "checkout", "GET /a", "c1", 500, 3.0)] * 10))
    fresh = Aggregator(CONFIG)
    fresh.restore_state(state)
    assert fresh.stats.events == 1
    assert fresh.snapshot(T0 + 60_000).slos[0].events == 1


def test_large_counts_round_trip() -> None:
    # 70 000 events in one bucket of one series: the ring has widened past uint16.
    cfg = config(slo(group_by=("endpoint",)))
    agg = Aggregator(cfg)
    n = 70_000
    batch = EventBatch.from_events([Event(T0, "checkout", "GET /a", "c1", 200, 1.0)] * n)
    agg.ingest(batch)
    now = T0 + 60_000
    snap = restored(agg, cfg).snapshot(now)
    assert int(snap.slos[0].total[0, 0]) == n
    assert_same_slos = agg.snapshot(now).slos[0]
    assert np.array_equal(snap.slos[0].period_total, assert_same_slos.period_total)


def test_changed_slo_starts_fresh_others_keep_state() -> None:
    old = config(slo(name="a"), slo(name="b"), slo(name="gone"))
    agg = Aggregator(old)
    agg.ingest(
        EventBatch.from_events([Event(T0 + i, "checkout", "GET /a", "c1", 500, 1.0) for i in range(5)])
    )
    a, b, _ = old.slos
    new = dataclasses.replace(old, slos=(a, dataclasses.replace(b, max_series=7), slo(name="new")))
    fresh = Aggregator(new)
    report = fresh.restore_state(agg.export_state())
    assert report.restored == ("a",)
    assert report.fresh == ("b", "new")
    assert report.dropped == ("gone",)
    events = [s.events for s in fresh.snapshot(T0 + 60_000).slos]
    assert events == [5, 0, 0]


def test_restore_needs_a_fresh_aggregator() -> None:
    agg = Aggregator(CONFIG)
    agg.ingest(EventBatch.from_events([Event(T0, "checkout", "GET /a", "c1", 500, 3.0)]))
    with pytest.raises(ValueError, match="fresh"):
        agg.restore_state(agg.export_state())
