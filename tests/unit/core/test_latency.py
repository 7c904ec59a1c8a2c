"""HDR bulk recording is identical to hdrh's record_value; percentiles are the nearest-rank value
(numpy's ``inverted_cdf``) raised to the top of its HDR slot, within HDR's precision of exact."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloguard.core import aggregator
from sloguard.core.aggregator import Aggregator, latency_slot_seconds
from sloguard.core.latency import (
    HdrLayout,
    _by_key,
    counts_view,
    nearest_ranks,
    new_histogram,
    record_bulk,
    sparse_percentiles,
    to_histogram,
)
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


FIGURES_HIGHEST = 3_600_000_000


def reported(values_us: list[int], percentiles: tuple[float, ...], figures: int = 2) -> list[int]:
    """sloguard's percentiles (µs) of ``values_us`` recorded into one histogram row."""
    layout = HdrLayout.create(FIGURES_HIGHEST, figures)
    hist = new_histogram(FIGURES_HIGHEST, figures)
    record_bulk(hist, np.array(values_us, np.int64))
    got = layout.percentiles(counts_view(hist)[None, :].copy(), percentiles)[0]
    return [int(v) for v in got.tolist()]


def quantile_q(percent: float) -> float:
    """``percent / 100`` as the double nearest the decimal (99.9 / 100 in floating point is one ulp
    above 0.999, and numpy's inverted_cdf then takes the next rank at n = 1000)."""
    return float(Fraction(str(percent)) / 100)


@pytest.mark.parametrize(
    ("percent", "n", "k"),
    [
        (90.0, 46, 42),  # the 1m window: round() gave the 41st, which only 89 % are <= to
        (90.0, 50, 45),  # p·n exactly on a rank: that rank, not the next
        (99.9, 1000, 999),  # 99.9 / 100 · 1000 is 999.0000000000001 in floating point: not 1000
        (99.0, 100, 99),
        (50.0, 1, 1),
        (50.0, 2, 1),
        (50.0, 3, 2),
        (99.9, 1, 1),
        (0.1, 10, 1),
        (100.0, 7, 7),
        (250.0, 7, 7),  # clamped to 100
        (0.0, 7, 1),  # at least the first value
        (99.99999999999999, 10**18, 999_999_999_999_999_900),  # Python-integer path, no overflow
        (99.9, 2**62, 4_607_074_332_408_960_517),
    ],
)
def test_nearest_rank_is_exact(percent: float, n: int, k: int) -> None:
    assert nearest_ranks(percent, np.array([n], np.int64)).tolist() == [k]
    assert k == max(1, math.ceil(min(Fraction(str(percent)), Fraction(100)) * n / 100))


def test_rank_of_46_values_at_p90_is_the_42nd() -> None:
    """At least 90 % of the values are <= p90: 42 of 46 (the old rule reported the 41st, 89 %)."""
    values = list(range(1, 47))  # 1..46 µs: each its own HDR slot, reported exactly
    assert reported(values, (90.0,)) == [42]
    assert sum(v <= 42 for v in values) / len(values) >= 0.9 > sum(v <= 41 for v in values) / len(values)


@pytest.mark.parametrize("n", [1, 2, 10, 46, 100, 1000])
@pytest.mark.parametrize("figures", [2, 3])
def test_small_counts_equal_numpy_inverted_cdf(n: int, figures: int) -> None:
    """Against numpy's inverted_cdf (the nearest-rank method) on the exact values, mapped to the top of
    their HDR slot by hdrh; exact where a slot holds one value (small values)."""
    rng = np.random.default_rng(n)
    ps = (50.0, 90.0, 99.0, 99.9, 100.0)
    for values in (rng.integers(0, 200, n), np.rint(rng.lognormal(10, 2, n)).astype(np.int64)):
        got = reported(values.tolist(), ps, figures)
        hist = new_histogram(FIGURES_HIGHEST, figures)
        for p, g in zip(ps, got, strict=True):
            exact = int(np.quantile(values, quantile_q(p), method="inverted_cdf"))
            assert g == hist.get_highest_equivalent_value(exact), (n, p)
            assert exact <= g <= exact * (1 + gt.hdr_precision(figures)), (n, p)
            if values.max() < 2 * new_histogram(FIGURES_HIGHEST, figures).sub_bucket_half_count:
                assert g == exact


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 3_600_000_000) | st.integers(0, 3000), min_size=1, max_size=400),
    figures=st.integers(1, 3),
    percents=st.lists(st.integers(1, 100_000).map(lambda i: i / 1000), min_size=1, max_size=6),
)
def test_reported_value_is_the_nearest_rank_slot(
    values: list[int], figures: int, percents: list[float]
) -> None:
    """For v reported at p, k = ceil(p·n): at least k values are in v's slot or below, fewer than k
    below it; v is the top of its slot, and equals the independent ground truth."""
    hist = new_histogram(FIGURES_HIGHEST, figures)
    got = reported(values, tuple(percents), figures)
    for p, v in zip(percents, got, strict=True):
        k = math.ceil(Fraction(str(p)) * len(values) / 100)
        assert hist.get_highest_equivalent_value(v) == v
        low = hist.get_lowest_equivalent_value(v)
        assert sum(x <= v for x in values) >= k
        assert sum(x < low for x in values) < k
        spec = LatencySpec(significant_figures=figures, highest_ms=FIGURES_HIGHEST / 1000)
        assert v / 1000 == gt.hdr_percentile([x / 1000 for x in values], p, spec)


def test_counts_round_trip_through_hdrh() -> None:
    layout = HdrLayout.create(FIGURES_HIGHEST, 2)
    hist = new_histogram(FIGURES_HIGHEST, 2)
    values = [0, 1, 5, 300, 70_000, 3_600_000_000]
    for v in values:
        hist.record_value(v)
    back = to_histogram(layout, counts_view(hist).copy())
    assert back.get_total_count() == len(values)
    assert np.array_equal(counts_view(back), counts_view(hist))
    assert back.get_min_value() == 0
    assert back.get_max_value() == hist.get_max_value()


def test_slot_sizes() -> None:
    assert latency_slot_seconds(MINUTE, 10, 12) == 10
    assert latency_slot_seconds(5 * MINUTE, 10, 12) == 30
    assert latency_slot_seconds(HOUR, 10, 12) == 300


def test_percentiles_are_the_nearest_rank_within_hdr_precision() -> None:
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
                got = float(w.percentiles_ms[g, k])
                assert got == gt.hdr_percentile(inside, p, spec), (labels, w.window, p)
                exact = gt.order_statistic(inside, p)
                assert gt.within_hdr_precision(got, exact, spec.significant_figures)
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


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(0, 5),
    cells=st.lists(
        st.lists(st.tuples(st.integers(0, 4), st.integers(0, 200), st.integers(0, 5)), max_size=12),
        max_size=4,
    ),
    owned=st.lists(st.booleans(), min_size=5, max_size=5),
    percentiles=st.lists(st.sampled_from([0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0]), max_size=4),
)
def test_sparse_percentiles_equal_the_dense_ones(
    rows: int,
    cells: list[list[tuple[int, int, int]]],
    owned: list[bool],
    percentiles: list[float],
) -> None:
    """`sparse_percentiles` of slots' cells (a key may repeat across slots, counts may be 0) is
    `HdrLayout.percentiles` of their dense sums, with or without a mask of owned rows."""
    layout = HdrLayout.create(10_000, 1)
    cl = layout.counts_len
    slots = [
        (
            np.array([r * cl + i * (cl - 1) // 200 for r, i, _ in s if r < rows], np.int64),
            np.array([c for r, _, c in s if r < rows], np.int64),
        )
        for s in cells
    ]
    slots = [(k, c) for k, c in slots if len(k)]
    flat = np.zeros(rows * cl, np.int64)
    for k, c in slots:
        np.add.at(flat, k, c)
    dense = flat.reshape(rows, cl)
    ps = tuple(percentiles)
    for mask in (None, np.array(owned[:rows], np.bool_)):
        picked = dense if mask is None else dense[mask]
        count, values = sparse_percentiles(layout, ps, rows, slots, mask)
        expected = layout.percentiles(picked, ps)
        assert count.tobytes() == picked.sum(axis=1).tobytes()
        assert values.dtype == expected.dtype and values.tobytes() == expected.tobytes()


@settings(max_examples=200, deadline=None)
@given(
    cells=st.lists(st.tuples(st.integers(0, 2**62), st.integers(0, 2**40)), max_size=30),
    small=st.booleans(),
)
def test_cells_by_key_keep_every_cell(cells: list[tuple[int, int]], small: bool) -> None:
    """`_by_key` (a sort of packed key and count where they fit, else an argsort) gives the cells in
    ascending key order, every (key, count) cell kept: small keys and counts take the packed sort,
    large ones the argsort."""
    if small:
        cells = [(k % 5000, c % 7) for k, c in cells]
    keys = np.array([k for k, _ in cells], np.int64)
    counts = np.array([c for _, c in cells], np.int64)
    got_keys, got_counts = _by_key(keys, counts)
    assert np.all(got_keys[1:] >= got_keys[:-1])
    assert sorted(zip(got_keys.tolist(), got_counts.tolist(), strict=True)) == sorted(cells)
    assert got_keys.dtype == got_counts.dtype == np.int64


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(
        st.tuples(
            st.integers(0, 2 * HOUR * 1000),
            st.sampled_from(["a", "b", "c"]),
            st.floats(0, 90_000, allow_nan=False).map(lambda x: round(x, 3)),
        ),
        min_size=1,
        max_size=200,
    ),
    later=st.integers(0, 2 * HOUR),
)
def test_latency_snapshot_is_the_same_sparse_or_dense(
    events: list[tuple[int, str, float]], later: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = 1_767_225_600_000
    agg = Aggregator(config(slo(), latency=LatencySpec(group_by=("endpoint",))))
    agg.ingest(EventBatch.from_events([Event(t0 + ts, "checkout", e, "c", 200, ms) for ts, e, ms in events]))
    now = (agg.default_now() or t0) + later * 1000
    snaps = []
    for factor in (0, 1 << 40):  # every window sparse, every window dense
        monkeypatch.setattr(aggregator, "_SPARSE_FACTOR", factor)
        snap = agg.snapshot(now).latency
        assert snap is not None
        snaps.append(snap)
    for a, b in zip(snaps[0].windows, snaps[1].windows, strict=True):
        assert a.bounds == b.bounds
        assert a.count.dtype == b.count.dtype and a.count.tobytes() == b.count.tobytes()
        assert a.percentiles_ms.tobytes() == b.percentiles_ms.tobytes()
