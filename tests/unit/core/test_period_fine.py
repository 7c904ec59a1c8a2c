"""The budget moves with the fine buckets: a rolling period is ``[now_coarse − P, now_fine)``, a calendar
one ``[start of the unit, now_fine)``, so an outage shows in the budget within one fine bucket."""

from __future__ import annotations

import pytest

from sloguard.core.aggregator import Aggregator
from sloguard.core.history import burn_down
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import DAY, CalendarPeriod
from tests.support import groundtruth as gt
from tests.support.specs import config, slo

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def healthy(start: int, end: int, customer: str = "c") -> list[Event]:
    return [Event(t, "checkout", "GET /x", customer, 200, 1.0) for t in range(start, end, 1_000)]


@pytest.mark.parametrize(("fine", "coarse"), [(10, 300), (60, 3600)], ids=["default", "per-customer"])
def test_budget_reacts_within_one_fine_bucket_of_an_outage(fine: int, coarse: int) -> None:
    spec = slo(fine=fine, coarse=coarse, group_by=("customer",))
    # The outage starts mid coarse bucket: before this change the budget waited for the bucket to end.
    outage = T0 + DAY * 1000 + coarse * 1000 // 2 + 1
    events = healthy(T0, outage)
    events += [Event(t, "checkout", "GET /x", "c", 503, 1.0) for t in range(outage, outage + fine * 500, 100)]
    agg = Aggregator(config(spec))
    agg.ingest(EventBatch.from_events(events))
    before = agg.snapshot(outage).slos[0]
    assert before.budget_remaining[0] == 1.0
    bucket_end = (outage // (fine * 1000) + 1) * fine * 1000  # the end of the fine bucket it began in
    after = agg.snapshot(bucket_end).slos[0]
    assert after.budget_remaining[0] < 1.0
    assert after.period_bounds == gt.period_bounds(spec, bucket_end)
    assert after.period_bounds[1] == bucket_end
    start, end = after.period_bounds
    total, bad = gt.counts(spec, events, start, end)[("c",)]
    assert (int(after.period_total[0]), int(after.period_bad[0])) == (total, bad)
    assert after.budget_remaining[0] == gt.remaining(bad, total, spec.objective)
    # The UI's burn-down over the same bounds: coarse buckets and the fine tail, ending at the budget left.
    counts = agg.bucket_counts(spec, ("c",), start, end, fine=False)
    assert counts is not None
    bd = burn_down(counts, spec.error_budget, 50)
    assert int(bd.t_ms[-1]) == end and bd.remaining[-1] == after.budget_remaining[0]
    assert (bd.total, bd.bad) == (total, bad)


def test_bounds_rolling_start_on_coarse_end_on_fine_and_calendar() -> None:
    now = T0 + 40 * DAY * 1000 + 123_456
    rolling = Aggregator(config(slo())).snapshot(now).slos[0]
    assert rolling.period_bounds == (now // 300_000 * 300_000 - 30 * DAY * 1000, now // 10_000 * 10_000)
    spec = slo(period=CalendarPeriod("month", "UTC"))
    cal = Aggregator(config(spec)).snapshot(now).slos[0]
    assert cal.period_bounds == (T0 + 31 * DAY * 1000, now // 10_000 * 10_000)  # February so far
