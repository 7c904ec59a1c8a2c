"""core.sla: per-customer slices -> attainment, downtime periods, credit tiers, projection, overflow.

Each case is small enough to count by hand; the month-long ground truth is tests/e2e/test_sla_report.py.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from sloguard.core import sla as sla_module
from sloguard.core.model import OVERFLOW, Event, EventBatch
from sloguard.core.sla import (
    INSUFFICIENT_DATA,
    OK,
    CreditTier,
    Downtime,
    IntervalErrorRate,
    MinutesDown,
    Occurrences,
    SlaCounter,
    SlaSpec,
    credit_for,
    month_range,
)
from sloguard.core.spec import HOUR, MINUTE
from tests.support.specs import slo

T0 = 1_790_812_800_000  # 2026-10-01T00:00:00Z
TIERS = (
    CreditTier(Fraction(9999, 100), Fraction(10)),
    CreditTier(Fraction(99), Fraction(30)),
    CreditTier(Fraction(95), Fraction(100)),
)


def sla(measure: MinutesDown | IntervalErrorRate | Occurrences, **kw: object) -> SlaSpec:
    return SlaSpec("api-sla", "checkout-availability", measure, TIERS, **kw)  # type: ignore[arg-type]


def ev(minute: int, customer: str, status: int = 200, second: int = 0) -> Event:
    return Event(T0 + (minute * MINUTE + second) * 1000, "checkout", "GET /", customer, status, 5.0)


def counter(spec: SlaSpec, minutes: int = 100, max_series: int = 10_000) -> SlaCounter:
    return SlaCounter(spec, slo(max_series=max_series), T0, T0 + minutes * MINUTE * 1000)


def test_month_range_and_tiers() -> None:
    assert month_range(2026, 10, "UTC") == (T0, T0 + 31 * 86_400_000)
    start, end = month_range(2026, 12, "Europe/Berlin")
    assert (end - start) == 31 * 86_400_000 and start == month_range(2026, 12, "UTC")[0] - HOUR * 1000
    assert credit_for(Fraction(1), TIERS) is None
    assert credit_for(Fraction(9999, 10000), TIERS) is None  # not below 99.99
    assert credit_for(Fraction(9998, 10000), TIERS) == TIERS[0]
    assert credit_for(Fraction(99, 100), TIERS) == TIERS[0]
    assert credit_for(Fraction(98, 100), TIERS) == TIERS[1]
    assert credit_for(Fraction(0), TIERS) == TIERS[2]


def test_minutes_down() -> None:
    c = counter(sla(MinutesDown(Fraction(1, 20))))
    events = []
    for m in range(100):
        events += [ev(m, "acme", second=s) for s in range(20)]
    # Minutes 10-12 down for acme (2/20 = 10 % > 5 %), minute 13 at exactly 5 % (not down), 50 down.
    events += [ev(m, "acme", 503, 30 + k) for m in (10, 11, 12, 50) for k in range(2)]
    events += [ev(13, "acme", 500, 59)]
    events += [ev(0, "tiny", 200)]
    c.ingest(EventBatch.from_events(events))
    r = c.evaluate(T0 + 100 * MINUTE * 1000)
    assert [x.customer for x in r.customers] == ["acme", "tiny"]
    acme, tiny = r.customers
    assert acme.status == OK and acme.slices == 100 and acme.good_slices == 96
    assert acme.attainment == Fraction(96, 100) and acme.credit == TIERS[1]
    assert acme.total == 2000 + 9 and acme.good == 2000
    ms = MINUTE * 1000
    assert acme.downtime == (
        Downtime(T0 + 10 * ms, T0 + 13 * ms, 6, 66),
        Downtime(T0 + 50 * ms, T0 + 51 * ms, 2, 22),
    )
    assert tiny.attainment == 1 and tiny.credit is None and tiny.credit_percent == 0
    assert acme.projected == acme.attainment  # the period is over


def test_projection_and_partial_period() -> None:
    c = counter(sla(MinutesDown(Fraction(1, 20)), projection_seconds=10 * MINUTE))
    # 20 minutes elapsed of 100: minutes 15-19 down (5 of the last 10).
    c.ingest(EventBatch.from_events([ev(m, "acme", 500 if m >= 15 else 200) for m in range(25)]))
    r = c.evaluate(T0 + 20 * MINUTE * 1000 + 30_000)  # mid-slice: slices [0, 20)
    (acme,) = r.customers
    assert r.elapsed == 20 and acme.slices == 20 and acme.total == 20
    assert acme.attainment == Fraction(15, 20)
    assert acme.projected == 1 - (5 + Fraction(5, 10) * 80) / Fraction(100)


def test_insufficient_data() -> None:
    c = counter(sla(MinutesDown(Fraction(1, 20)), min_events=10))
    c.ingest(EventBatch.from_events([ev(m, "few", 500) for m in range(9)]))
    (few,) = c.evaluate(T0 + 100 * MINUTE * 1000).customers
    assert few.status == INSUFFICIENT_DATA and few.attainment is None and few.credit_percent is None
    assert few.total == 9 and len(few.downtime) == 1


def test_interval_error_rate_and_occurrences() -> None:
    events = [ev(0, "a", 500), ev(0, "a"), ev(0, "a"), ev(0, "a"), ev(7, "a", 500)]  # 1/4, then 1/1
    for measure, want in (
        (IntervalErrorRate(), 1 - Fraction((0.25 + 1.0) / 20)),  # 100 min = 20 intervals
        (Occurrences(), Fraction(3, 5)),
    ):
        c = counter(sla(measure))
        c.ingest(EventBatch.from_events(events))
        (a,) = c.evaluate(T0 + 100 * MINUTE * 1000).customers
        assert a.attainment == want and a.good == 3 and a.total == 5
        # Intervals 0 and 1 are both above 5 %: one period of 10 minutes.
        assert [((d.start_ms - T0) // 60_000, (d.end_ms - T0) // 60_000) for d in a.downtime] == [(0, 10)]


def test_overflow_is_never_merged_into_a_customer() -> None:
    c = counter(sla(MinutesDown(Fraction(1, 20))), max_series=2)
    c.ingest(EventBatch.from_events([ev(0, "a"), ev(0, "b"), ev(1, "c", 500), ev(2, "d"), ev(3, "a")]))
    r = c.evaluate(T0 + 100 * MINUTE * 1000)
    by = {x.customer: x for x in r.customers}
    assert sorted(by) == [OVERFLOW, "a", "b"]
    assert (by["a"].total, by["b"].total, by[OVERFLOW].total) == (2, 1, 2)
    assert r.overflow_customers == 2 and r.overflow_events == 2 and OVERFLOW in r.warnings[0]


def test_outside_range_and_unselected() -> None:
    c = counter(sla(Occurrences()))
    other = Event(T0, "search", "GET /", "a", 500, 1.0)
    c.ingest(EventBatch.from_events([ev(-1, "a"), ev(100, "a"), ev(5, "a"), other]))
    (a,) = c.evaluate(T0 + 100 * MINUTE * 1000).customers
    assert a.total == 1 and c.outside == 2


def test_range_must_be_whole_slices() -> None:
    with pytest.raises(ValueError, match="whole number"):
        SlaCounter(sla(IntervalErrorRate()), slo(), T0, T0 + 7 * MINUTE * 1000)


def test_many_small_batches_and_merges_give_the_same_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cells are summed per batch, then merged into the sorted cells past `_COMPACT_AT` pending ones:
    with a tiny threshold (a merge after nearly every batch) the figures equal one batch's."""
    rnd = random.Random(5)
    events = [
        ev(rnd.randrange(100), rnd.choice("abcdefg"), rnd.choice((200, 200, 200, 500)), rnd.randrange(60))
        for _ in range(5000)
    ]
    whole = counter(sla(MinutesDown(Fraction(1, 5))))
    whole.ingest(EventBatch.from_events(events))
    monkeypatch.setattr(sla_module, "_COMPACT_AT", 7)
    pieces = counter(sla(MinutesDown(Fraction(1, 5))))
    for i in range(0, len(events), 37):
        pieces.ingest(EventBatch.from_events(events[i : i + 37]))
    now = T0 + 100 * MINUTE * 1000
    assert pieces.evaluate(now) == whole.evaluate(now)
    counts: dict[tuple[str, int], list[int]] = {}
    for e in events:
        cell = counts.setdefault((e.customer, (e.ts_ms - T0) // 60_000), [0, 0])
        cell[0] += 1
        cell[1] += e.status >= 500
    for c in whole.evaluate(now).customers:
        down = sum(1 for (name, _), (t, b) in counts.items() if name == c.customer and b * 5 > t)
        assert c.attainment == Fraction(100 - down, 100)
