"""Idle series eviction (``series_ttl``): counts move to ``__overflow__``, the SLO's totals never change."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import OVERFLOW, Event, EventBatch
from sloguard.core.spec import HOUR, Config
from tests.support.specs import config, slo

T0 = 1_767_225_600_000
H = 3_600_000


def cfg(ttl: int = 2 * HOUR, max_series: int = 10_000) -> Config:
    base = slo(group_by=("customer",), fine=60, coarse=3600, max_series=max_series)
    return config(dataclasses.replace(base, series_ttl=ttl))


def ev(ts: int, customer: str, status: int = 200) -> Event:
    return Event(ts, "checkout", "GET /a", customer, status, 1.0)


def sums(agg: Aggregator, now: int) -> tuple[list[int], list[int], int, int]:
    s = agg.snapshot(now).slos[0]
    return (
        s.total.sum(axis=1).tolist(),
        s.bad.sum(axis=1).tolist(),
        int(s.period_total.sum()),
        int(s.period_bad.sum()),
    )


def test_idle_series_fold_into_overflow_and_totals_stay() -> None:
    agg = Aggregator(cfg())
    agg.ingest(EventBatch.from_events([ev(T0, "old", 500), ev(T0 + 1, "old"), ev(T0 + 3 * H, "new", 500)]))
    now = T0 + 3 * H + 60_000
    before = sums(agg, now)
    assert agg.evict_idle(now) == {"checkout-availability": 1}
    s = agg.snapshot(now).slos[0]
    assert set(s.labels) == {("new",), (OVERFLOW,)}
    over = s.labels.index((OVERFLOW,))
    assert (int(s.period_total[over]), int(s.period_bad[over])) == (2, 1)
    assert sums(agg, now) == before
    # Eviction is not cardinality overflow, and is counted on its own.
    assert s.overflow_events == 0 and s.evicted_series == 1
    # Nothing more to evict; a returning key starts a fresh series.
    assert agg.evict_idle(now) == {}
    agg.ingest(EventBatch.from_events([ev(T0 + 3 * H + 1, "old")]))
    later = T0 + 4 * H + 60_000
    s = agg.snapshot(later).slos[0]
    assert (int(s.period_total[s.labels.index(("old",))])) == 1
    # The period ends at the fine bucket of now: it held "new" already, and now "old"'s return too.
    assert sums(agg, later)[2] == before[2] + 1


def test_eviction_frees_rows_under_the_cap() -> None:
    agg = Aggregator(cfg(max_series=2))
    agg.ingest(EventBatch.from_events([ev(T0, "a"), ev(T0, "b")]))
    agg.ingest(EventBatch.from_events([ev(T0 + 3 * H, "c")]))  # over the cap: overflow
    now = T0 + 3 * H + 60_000
    assert agg.snapshot(now).slos[0].overflow_events == 1
    assert agg.evict_idle(now) == {"checkout-availability": 2}
    agg.ingest(EventBatch.from_events([ev(T0 + 3 * H + 5, "d")]))
    s = agg.snapshot(now).slos[0]
    assert ("d",) in s.labels  # a real series again: a and b went idle


def test_no_ttl_no_eviction() -> None:
    agg = Aggregator(config(slo(group_by=("customer",))))
    agg.ingest(EventBatch.from_events([ev(T0, "a")]))
    assert agg.evict_idle(T0 + 100 * H) == {}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(
        st.builds(
            ev,
            ts=st.integers(T0, T0 + 10 * H),
            customer=st.sampled_from([f"c{i}" for i in range(8)]),
            status=st.sampled_from([200, 500]),
        ),
        min_size=1,
        max_size=80,
    ),
    later=st.integers(0, 6 * H),
    max_series=st.integers(1, 10),
)
def test_eviction_never_changes_what_the_slo_counts(events: list[Event], later: int, max_series: int) -> None:
    agg = Aggregator(cfg(max_series=max_series))
    agg.ingest(EventBatch.from_events(events))
    now = max(e.ts_ms for e in events) + later
    before = sums(agg, now)
    had_rows = {k[0] for k in agg.snapshot(now).slos[0].labels}
    evicted = agg.evict_idle(now).get("checkout-availability", 0)
    assert sums(agg, now) == before
    s = agg.snapshot(now).slos[0]
    assert s.series <= max_series + 1
    assert s.evicted_series == evicted
    # A key with an event in the last 2 h (by its 1-minute bucket) keeps its series.
    recent = {e.customer for e in events if e.ts_ms >= (now - 2 * H) // 60_000 * 60_000}
    kept = {k[0] for k in s.labels}
    assert (recent & had_rows) <= kept
    assert len(had_rows - kept) == evicted
    # And its state survives a checkpoint round trip unchanged.
    copy = Aggregator(agg.config)
    copy.restore_state(agg.export_state())
    assert sums(copy, now) == before
    assert np.array_equal(copy.snapshot(now).slos[0].period_total, s.period_total)
