"""`SloCounts.evaluate` gives the same bytes whether it computes the error ratios and burn rates of all
windows in one call and judges all alert tiers at once (few series) or goes window by window and tier by
tier (many series, `snapshot._WHOLE_ROWS`)."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloguard.core import snapshot
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import DAY, MINUTE, RollingPeriod, Timeslices
from tests.support.specs import config, slo

T0 = 1_767_225_600_000
CONFIG = config(
    slo(group_by=("endpoint",)),
    slo(
        name="lat", kind="latency", threshold_ms=100.0, group_by=("customer",), period=RollingPeriod(7 * DAY)
    ),
    slo(name="both", objective="99.95", group_by=("endpoint", "customer"), fine=60, coarse=3600),
    slo(name="guarded", objective="99", group_by=("customer",), min_events=5),
    dataclasses.replace(
        slo(name="sliced", coarse=MINUTE, group_by=("customer",)),
        budgeting=Timeslices(MINUTE, Fraction("0.95"), "good"),
    ),
    dataclasses.replace(slo(name="ratio-sliced", coarse=MINUTE), budgeting=Timeslices(MINUTE, None, "skip")),
)

events_strategy = st.lists(
    st.builds(
        Event,
        ts_ms=st.integers(T0, T0 + 2 * DAY * 1000),
        service=st.just("checkout"),
        endpoint=st.sampled_from(["GET /a", "POST /b", "GET /c"]),
        customer=st.sampled_from([f"c{i}" for i in range(6)]),
        status=st.sampled_from([200, 404, 500, 503]),
        latency_ms=st.sampled_from([1.0, 99.0, 100.0, 101.0, 4000.0]),
    ),
    min_size=1,  # (an SLO with time slices and no series yet fails its capture in slices.per_slice)
    max_size=150,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy, later=st.integers(0, 3 * 3600))
def test_whole_and_per_window_ratios_are_the_same_bytes(
    events: list[Event], later: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    agg = Aggregator(CONFIG)
    agg.ingest(EventBatch.from_events(events))
    now = (agg.default_now() or T0) + later * 1000
    counts = agg.capture(now)
    monkeypatch.setattr(snapshot, "_WHOLE_ROWS", 1 << 30)
    whole = counts.evaluate()
    monkeypatch.setattr(snapshot, "_WHOLE_ROWS", -1)
    per_window = counts.evaluate()
    for a, b in zip(whole.slos, per_window.slos, strict=True):
        for f in dataclasses.fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if isinstance(x, np.ndarray):
                assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), f.name
            else:
                assert x == y, f.name


def test_tiers_fire_in_the_examples() -> None:
    """The comparison above sees tiers fire (and the ``min_events`` floor hold some back)."""
    t = T0 + 3_600_000
    events = [
        Event(t + i * 1000, "checkout", "GET /a", f"c{i % 2}", 500 if i % 3 else 200, 1.0) for i in range(9)
    ]
    agg = Aggregator(CONFIG)
    agg.ingest(EventBatch.from_events(events))
    snap = agg.snapshot(agg.default_now() or T0)
    guarded = next(s for s in snap.slos if s.spec.name == "guarded")
    assert guarded.labels == (("c0",), ("c1",))
    assert guarded.firing[:, 0].any()  # 3 bad of 5 events
    assert not guarded.firing[:, 1].any()  # 3 bad of 4: under the floor
