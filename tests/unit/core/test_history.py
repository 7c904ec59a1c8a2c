"""One series' history read on demand (`Aggregator.bucket_counts`, `core.history`) against ground truth:
plain Python over the events, exact Fractions."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from sloguard.core.aggregator import Aggregator
from sloguard.core.history import BucketCounts, burn_down
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import DAY, HOUR, RollingPeriod
from sloguard.core.windows import BLOCK
from tests.support import groundtruth as gt
from tests.support.specs import config, slo
from tests.unit.core.test_aggregator import T0, random_events

NOW = T0 + 3 * DAY + 123_456


@pytest.mark.parametrize(
    ("group_by", "fine"),
    [((), False), (("endpoint",), False), (("customer",), True), (("endpoint", "customer"), True)],
    ids=["ungrouped-coarse", "endpoint-coarse", "customer-fine", "two-dims-fine"],
)
def test_bucket_counts_equal_events_per_bucket(group_by: tuple[str, ...], fine: bool) -> None:
    events = random_events(4000, 2 * DAY, seed=5, start=NOW - 2 * DAY)
    spec = slo(group_by=group_by, period=RollingPeriod(7 * DAY))
    agg = Aggregator(config(spec))
    agg.ingest(EventBatch.from_events(events))
    res = (spec.resolution.fine if fine else spec.resolution.coarse) * 1000
    end = NOW // res * res
    start = end - 6 * HOUR * 1000
    keys = sorted({gt.key(spec, e) for e in events if gt.matches(spec, e)})
    for key in [*keys[:5], None]:
        got = agg.bucket_counts(spec, key, start, end, fine=fine)
        assert got is not None
        assert (got.res_ms, got.start_ms, got.end_ms) == (res, start, end)
        want_total = np.zeros(len(got.total), np.int64)
        want_bad = np.zeros(len(got.total), np.int64)
        for e in events:
            if gt.matches(spec, e) and (key is None or gt.key(spec, e) == key) and start <= e.ts_ms < end:
                want_total[(e.ts_ms - start) // res] += 1
                want_bad[(e.ts_ms - start) // res] += gt.is_bad(spec, e)
        assert got.total.tolist() == want_total.tolist()
        assert got.bad.tolist() == want_bad.tolist()


def test_unknown_series_or_changed_spec_is_none() -> None:
    events = random_events(500, HOUR * 1000, seed=2, start=NOW - HOUR * 1000)
    spec = slo(group_by=("customer",))
    agg = Aggregator(config(spec))
    agg.ingest(EventBatch.from_events(events))
    assert agg.bucket_counts(spec, ("nobody",), NOW - 60_000, NOW, fine=True) is None
    other = slo(group_by=("customer",), objective="99")
    assert agg.bucket_counts(other, None, NOW - 60_000, NOW, fine=True) is None


def test_rows_in_later_blocks_and_outside_the_ring() -> None:
    """Rows past the first block of columns are read from theirs; buckets the ring never held are 0."""
    spec = slo(group_by=("customer",), max_series=3 * BLOCK)
    events = [
        Event(NOW - 1000 - i, "checkout", "GET /", f"c{i}", 500 if i % 3 == 0 else 200, 1.0)
        for i in range(BLOCK + 10)
    ]
    agg = Aggregator(config(spec))
    agg.ingest(EventBatch.from_events(events))
    res = spec.resolution.fine * 1000
    end = NOW // res * res + res
    far = end - 100 * DAY * 1000  # long before what the fine ring keeps
    for i in (0, BLOCK - 1, BLOCK, BLOCK + 9):
        got = agg.bucket_counts(spec, (f"c{i}",), far, end, fine=True)
        assert got is not None
        assert int(got.total.sum()) == 1 and int(got.bad.sum()) == (i % 3 == 0)


@pytest.mark.parametrize("objective", ["99.9", "99", "95.5"])
@pytest.mark.parametrize("max_points", [1, 7, 100, 10_000])
def test_burn_down_is_exact_and_ends_at_the_budget_left(objective: str, max_points: int) -> None:
    events = random_events(3000, 5 * DAY, seed=9, start=NOW - 5 * DAY)
    spec = slo(objective=objective, group_by=("endpoint",), period=RollingPeriod(7 * DAY))
    agg = Aggregator(config(spec))
    agg.ingest(EventBatch.from_events(events))
    snap = agg.snapshot(NOW).slos[0]
    start, end = snap.period_bounds
    for col, key in enumerate(snap.labels):
        counts = agg.bucket_counts(spec, key, start, end, fine=False)
        assert counts is not None
        bd = burn_down(counts, spec.error_budget, max_points)
        assert len(bd.t_ms) <= max_points + 1
        assert int(bd.t_ms[0]) == start and int(bd.t_ms[-1]) == end
        assert bd.remaining[0] == 1.0 and bd.ideal[0] == 1.0 and bd.ideal[-1] == 0.0
        # The last point is the snapshot's budget left, bit for bit.
        assert bd.remaining[-1] == snap.budget_remaining[col]
        mine = [
            e for e in events if gt.matches(spec, e) and gt.key(spec, e) == key and start <= e.ts_ms < end
        ]
        assert bd.total == len(mine)
        for t, rem in zip(bd.t_ms.tolist(), bd.remaining.tolist(), strict=True):
            bad_before = sum(gt.is_bad(spec, e) for e in mine if e.ts_ms < t)
            want = 1 - Fraction(bad_before, len(mine)) / spec.error_budget if mine else Fraction(1)
            assert rem == float(want)
        assert np.all(np.diff(bd.remaining) <= 0)


def test_burn_down_of_an_empty_period_stays_full() -> None:
    empty = BucketCounts(1000, 0, np.zeros(10, np.int64), np.zeros(10, np.int64))
    bd = burn_down(empty, Fraction(1, 1000), 4)
    assert bd.remaining.tolist() == [1.0] * len(bd.t_ms)
    assert bd.t_ms.tolist() == [0, 3000, 6000, 9000, 10000]


def test_regroup_sums_whole_groups_ending_at_the_end() -> None:
    c = BucketCounts(10, 1000, np.arange(10, dtype=np.int64), np.arange(10, dtype=np.int64) % 2)
    g = c.regroup(3)  # g = 4: two whole groups, the first 2 buckets dropped
    assert (g.res_ms, g.start_ms, g.end_ms) == (40, 1020, c.end_ms)
    assert g.total.tolist() == [2 + 3 + 4 + 5, 6 + 7 + 8 + 9]
    assert g.bad.tolist() == [2, 2]
    assert c.regroup(10) is c
