"""HDR bulk recording is identical to hdrh's record_value; percentiles are within 1 % of exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.core.aggregator import Aggregator, latency_slot_seconds
from sloguard.core.latency import HdrLayout, counts_view, new_histogram, record_bulk, to_histogram
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import HOUR, MINUTE, LatencySpec
from tests.support import groundtruth as gt
from tests.support.specs import config, slo

T0 = 1_767_225_600_000


@pytest.mark.parametrize("figures", [1, 2, 3], ids=["1-figure", "2-figures", "3-figures"])
def test_bulk_record_is_identical_to_record_value(figures: int) -> None:
    rng = np.random.default_rng(figures)
    values = np.concatenate(
        [
            rng.integers(0, 3000, 2000),
            np.rint(rng.lognormal(10, 2, 20000)).astype(np.int64),
            np.array([0, 1, 2, 127, 128, 255, 256, 2**20, 3_600_000_000, 3_600_000_001, 2**40]),
        ]
    ).astype(np.int64)
    one = new_histogram(3_600_000_000, figures)
    for v in values.tolist():
        one.record_value(v)
    bulk = new_histogram(3_600_000_000, figures)
    record_bulk(bulk, values)
    assert np.array_equal(counts_view(one), counts_view(bulk))
    assert one.get_total_count() == bulk.get_total_count()
    assert one.get_min_value() == bulk.get_min_value()
    assert one.get_max_value() == bulk.get_max_value()
    for p in (0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0):
        assert one.get_value_at_percentile(p) == bulk.get_value_at_percentile(p)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 3_600_000_000), min_size=1, max_size=400),
    figures=st.integers(1, 3),
)
def test_vectorised_percentiles_equal_hdrh(values: list[int], figures: int) -> None:
    layout = HdrLayout.create(3_600_000_000, figures)
    hist = new_histogram(3_600_000_000, figures)
    for v in values:
        hist.record_value(v)
    ps = (1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0)
    got = layout.percentiles(counts_view(hist)[None, :].copy(), ps)[0]
    assert got.tolist() == [float(hist.get_value_at_percentile(p)) for p in ps]
    back = to_histogram(layout, counts_view(hist).copy())
    assert back.get_total_count() == len(values)
    assert back.get_value_at_percentile(99.0) == hist.get_value_at_percentile(99.0)


def test_slot_sizes() -> None:
    assert latency_slot_seconds(MINUTE, 10, 12) == 10
    assert latency_slot_seconds(5 * MINUTE, 10, 12) == 30
    assert latency_slot_seconds(HOUR, 10, 12) == 300


def test_percentiles_within_one_percent_of_exact() -> None:
    rng = np.random.default_rng(7)
    spec = LatencySpec(group_by=("service", "endpoint"))
    n = 60_000
    now = T0 + 2 * HOUR * 1000
    ts = now - rng.integers(1, 2 * HOUR * 1000, n)
    lat = np.round(rng.lognormal(3.5, 1.0, n), 3)
    eps = rng.choice(["GET /a", "POST /b", "GET /c"], n)
    events = [
        Event(int(t), "checkout", str(e), "c", 200, float(v)) for t, e, v in zip(ts, eps, lat, strict=True)
    ]
    agg = Aggregator(config(slo(), latency=spec))
    agg.ingest(EventBatch.from_events(events))
    snap = agg.snapshot(now).latency
    assert snap is not None
    checked = 0
    for w in snap.windows:
        start, end = w.bounds
        assert (
            end
            == now
            // (latency_slot_seconds(w.window, 10, 12) * 1000)
            * latency_slot_seconds(w.window, 10, 12)
            * 1000
        )
        assert end - start == w.window * 1000
        for g, labels in enumerate(snap.labels):
            inside = [
                e.latency_ms for e in events if (e.service, e.endpoint) == labels and start <= e.ts_ms < end
            ]
            assert int(w.count[g]) == len(inside)
            for k, p in enumerate(spec.percentiles):
                exact = gt.order_statistic(inside, p)
                got = float(w.percentiles_ms[g, k])
                # HDR precision (1/128 at 2 figures) plus rounding to whole microseconds.
                assert abs(got - exact) <= 0.01 * exact + 0.001, (labels, w.window, p)
                checked += 1
    assert checked == 3 * 3 * 4


def test_latency_groups_are_capped_with_overflow() -> None:
    spec = LatencySpec(group_by=("customer",), max_groups=2)
    agg = Aggregator(config(slo(), latency=spec))
    events = [Event(T0 + i, "checkout", "GET /a", f"c{i % 5}", 200, 5.0) for i in range(50)]
    agg.ingest(EventBatch.from_events(events))
    snap = agg.snapshot(T0 + MINUTE * 1000).latency
    assert snap is not None
    assert len(snap.labels) == 3
    assert snap.overflow_events == 30
    assert int(snap.windows[0].count.sum()) == 50
