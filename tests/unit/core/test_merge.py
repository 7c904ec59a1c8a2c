"""Mergeable state: two aggregators fed disjoint parts of a stream, merged, equal one fed it all."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.snapshot import Snapshot
from sloguard.core.spec import DAY, HOUR, LatencySpec, RollingPeriod
from tests.support.specs import config, slo

T0 = 1_767_225_600_000
CONFIG = config(
    slo(group_by=("endpoint",)),
    slo(
        name="lat", kind="latency", threshold_ms=100.0, group_by=("customer",), period=RollingPeriod(7 * DAY)
    ),
    slo(name="both", group_by=("endpoint", "customer"), fine=60, coarse=3600),
    latency=LatencySpec(group_by=("service", "endpoint")),
)

events_strategy = st.lists(
    st.builds(
        Event,
        ts_ms=st.integers(T0, T0 + 3 * DAY * 1000),
        service=st.sampled_from(["checkout", "search"]),
        endpoint=st.sampled_from(["GET /a", "POST /b", "GET /c"]),
        customer=st.sampled_from([f"c{i}" for i in range(6)]),
        status=st.sampled_from([200, 404, 500, 503]),
        latency_ms=st.floats(0, 5000, allow_nan=False).map(lambda x: round(x, 3)),
    ),
    max_size=120,
)


def assert_same(a: Snapshot, b: Snapshot) -> None:
    for sa, sb in zip(a.slos, b.slos, strict=True):
        order_a = {k: i for i, k in enumerate(sa.labels)}
        assert set(sa.labels) == set(sb.labels)
        perm = [order_a[k] for k in sb.labels]
        for name in ("total", "bad", "firing"):
            assert np.array_equal(getattr(sa, name)[:, perm], getattr(sb, name)), name
        for name in ("period_total", "period_bad", "budget_remaining"):
            assert np.array_equal(getattr(sa, name)[perm], getattr(sb, name)), name
        assert (sa.events, sa.too_old_events, sa.overflow_events) == (
            sb.events,
            sb.too_old_events,
            sb.overflow_events,
        )
    la, lb = a.latency, b.latency
    assert la is not None and lb is not None
    order = {k: i for i, k in enumerate(la.labels)}
    perm = [order[k] for k in lb.labels]
    for wa, wb in zip(la.windows, lb.windows, strict=True):
        assert np.array_equal(wa.count[perm], wb.count)
        assert np.array_equal(wa.percentiles_ms[perm], wb.percentiles_ms)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=events_strategy,
    split=st.lists(st.booleans(), min_size=120, max_size=120),
    now_offset=st.integers(0, 2 * HOUR * 1000),
)
def test_merge_of_disjoint_halves_equals_whole(
    events: list[Event], split: list[bool], now_offset: int
) -> None:
    whole = Aggregator(CONFIG)
    left, right = Aggregator(CONFIG), Aggregator(CONFIG)
    if events:
        whole.ingest(EventBatch.from_events(events))
        left.ingest(EventBatch.from_events([e for e, s in zip(events, split, strict=False) if s]))
        right.ingest(EventBatch.from_events([e for e, s in zip(events, split, strict=False) if not s]))
    left.merge(right)
    now = (max((e.ts_ms for e in events), default=T0)) + now_offset
    assert_same(whole.snapshot(now), left.snapshot(now))
    assert left.stats.events == whole.stats.events


def test_merge_into_empty_and_from_empty() -> None:
    evs = [
        Event(T0 + i * 1000, "checkout", "GET /a", "c1", 500 if i % 7 == 0 else 200, 3.0) for i in range(500)
    ]
    full = Aggregator(CONFIG)
    full.ingest(EventBatch.from_events(evs))
    empty = Aggregator(CONFIG)
    empty.merge(full)
    full.merge(Aggregator(CONFIG))
    now = T0 + 600_000
    assert_same(full.snapshot(now), empty.snapshot(now))
