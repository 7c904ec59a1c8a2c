"""Maintenance windows (`core.exclusions`) against an oracle written here: ``start <= ts < end``."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import pytest

from sloguard.core.aggregator import Aggregator
from sloguard.core.exclusions import ExcludedPeriod, Exclusion, ExclusionCalendar, Recurrence, merge_intervals
from sloguard.core.model import Event, EventBatch
from sloguard.core.sla import CreditTier, Occurrences, SlaCounter, SlaSpec
from sloguard.core.spec import DAY, HOUR, MINUTE, Config, RollingPeriod
from sloguard.report_sla.html import to_html
from sloguard.report_sla.render import sla_dict, to_dict
from tests.support import slice_groundtruth as sg
from tests.support.specs import slo
from tests.unit.core.test_slices import assert_matches_oracle, sliced, traffic

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z (a Thursday)
WEEK_MS = 7 * DAY * 1000


def weekly(first_ms: int) -> Recurrence:
    """A recurrence every 7 days from ``first_ms`` (what RRULE:FREQ=WEEKLY expands to in UTC)."""

    def starts(lo: int, hi: int) -> Iterator[int]:
        k = max(0, -(-(lo - first_ms) // WEEK_MS))
        while (s := first_ms + k * WEEK_MS) < hi:
            yield s
            k += 1

    return starts


ONE_OFF = Exclusion(
    "deploy", T0 + 3 * HOUR * 1000, 30 * MINUTE * 1000, "release 4.2", slos=("checkout-availability",)
)
WEEKLY = Exclusion(
    "patching",
    T0 + 2 * HOUR * 1000,
    HOUR * 1000,
    "OS patching",
    rrule="FREQ=WEEKLY",
    match=(("team", "payments"),),
    recurrence=weekly(T0 + 2 * HOUR * 1000),
)


def occurrences(x: Exclusion, until_ms: int) -> list[tuple[int, int]]:
    """The oracle's own expansion: the one-off, or every 7 days (no use of the code under test)."""
    step = WEEK_MS if x.rrule else until_ms
    return [(s, s + x.duration_ms) for s in range(x.start_ms, until_ms, step)]


def inside(ts: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= ts < b for a, b in spans)


def test_merge_intervals_joins_overlapping_and_adjacent() -> None:
    assert merge_intervals([(5, 9), (0, 3), (3, 4), (8, 12), (20, 20)]) == [(0, 4), (5, 12)]


def test_intervals_are_clipped_and_merged() -> None:
    cal = ExclusionCalendar((ONE_OFF, WEEKLY))
    s = T0 + 3 * HOUR * 1000
    assert cal.intervals(s + 60_000, s + 120_000) == [(s + 60_000, s + 120_000)]
    # Patching 02:00-03:00 then the deploy 03:00-03:30: one interval.
    assert cal.intervals(T0, T0 + DAY * 1000) == [(T0 + 2 * HOUR * 1000, T0 + 3 * HOUR * 1000 + 30 * 60_000)]
    assert cal.intervals(T0 + DAY * 1000, T0 + WEEK_MS) == []
    assert cal.intervals(T0 + WEEK_MS, T0 + WEEK_MS + DAY * 1000) == [
        (T0 + WEEK_MS + 2 * HOUR * 1000, T0 + WEEK_MS + 3 * HOUR * 1000)
    ]


def test_mask_matches_oracle_at_bounds_and_random() -> None:
    cal = ExclusionCalendar((ONE_OFF, WEEKLY))
    until = T0 + 5 * WEEK_MS
    spans = occurrences(ONE_OFF, until) + occurrences(WEEKLY, until)
    edges = [t + d for a, b in spans for t in (a, b) for d in (-1, 0, 1)]
    rnd = random.Random(3)
    ts = np.array(edges + [T0 + rnd.randrange(5 * WEEK_MS) for _ in range(20_000)], np.int64)
    want = [inside(int(t), spans) for t in ts]
    assert cal.mask(ts).tolist() == want
    assert sum(want) > 100  # the random part hits the windows too (1 h a week, 30 min once)


def test_buckets_flag_only_wholly_covered_buckets() -> None:
    x = Exclusion("x", T0 + 90_000, 200_000, slos=("s",))  # [1.5 min, 4.83 min)
    assert ExclusionCalendar((x,)).buckets(T0, T0 + 6 * 60_000, 60_000).tolist() == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]


def test_applies_to_names_or_labels() -> None:
    spec = slo()
    labelled = dataclasses.replace(spec, labels=(("team", "payments"), ("tier", "1")))
    assert ONE_OFF.applies_to(spec) and not WEEKLY.applies_to(spec)
    assert WEEKLY.applies_to(labelled)
    assert ExclusionCalendar.for_slo((WEEKLY,), spec) is None


@pytest.mark.parametrize("batches", [1, 7])
def test_occurrence_slo_leaves_out_excluded_events_exactly(batches: int) -> None:
    spec = dataclasses.replace(
        slo(objective="99", period=RollingPeriod(30 * DAY), group_by=("customer",)),
        labels=(("team", "payments"),),
    )
    other = slo(name="other", objective="99")
    events = traffic(T0, 3 * WEEK_MS, seed=4, per_minute=2)
    # Errors inside the windows, which must not count.
    events += [
        Event(WEEKLY.start_ms + WEEK_MS + i * 1000, "checkout", "GET /x", "acme", 503, 1.0)
        for i in range(300)
    ]
    agg = Aggregator(Config((spec, other), exclusions=(ONE_OFF, WEEKLY)))
    rnd = random.Random(9)
    rnd.shuffle(events)
    size = -(-len(events) // batches)
    for i in range(0, len(events), size):
        agg.ingest(EventBatch.from_events(events[i : i + size]))
    now = T0 + 3 * WEEK_MS
    snap = agg.snapshot(now)
    spans = occurrences(ONE_OFF, now) + occurrences(WEEKLY, now)
    kept = [e for e in events if not inside(e.ts_ms, spans)]
    mine, theirs = snap.slos
    assert mine.excluded_events == len(events) - len(kept) > 300
    for j, (customer,) in enumerate(mine.labels):
        ev = [e for e in kept if e.customer == customer]
        assert int(mine.period_total[j]) == len(ev)
        assert int(mine.period_bad[j]) == sum(e.status >= 500 for e in ev)
        hour = [e for e in ev if now - HOUR * 1000 <= e.ts_ms < now]
        assert int(mine.total[mine.windows.index(HOUR), j]) == len(hour)
    # The other SLO is named by neither exclusion: it counts everything.
    assert theirs.excluded_events == 0
    assert int(theirs.period_total.sum()) == len(events)


def test_time_slice_slo_with_an_exclusion_covering_part_of_a_slice() -> None:
    # 5m slices of 1m buckets; the window covers minutes 1-2 of one slice (left out, the slice is judged on
    # the rest) and the whole of another (not judged).
    spec = sliced(good_ratio="0.9", slice_s=300, coarse=60, objective="99", group_by=("customer",))
    end = T0 + DAY * 1000
    part = Exclusion("part", end - 19 * 60_000, 2 * 60_000, slos=(spec.name,))
    whole = Exclusion("whole", end - 10 * 60_000, 5 * 60_000, slos=(spec.name,))
    events = traffic(T0, DAY * 1000, seed=8, per_minute=20)
    events += [Event(part.start_ms + i * 1000, "checkout", "GET /x", "acme", 500, 1.0) for i in range(100)]
    agg = Aggregator(Config((spec,), exclusions=(part, whole)))
    agg.ingest(EventBatch.from_events(events))
    excluded: list[sg.Span] = [(x.start_ms, x.start_ms + x.duration_ms) for x in (part, whole)]
    for now in (end, end + 61_000):
        snap = agg.snapshot(now).slos[0]
        assert_matches_oracle(spec, events, snap, now, excluded)
        assert snap.excluded_events == sum(inside(e.ts_ms, excluded) for e in events)
    # Late events, inside and outside the windows, after the slices were judged (and kept): exact still.
    late = [Event(a + 30_000, "checkout", "GET /x", "globex", 503, 1.0) for a, _ in excluded]
    late += [Event(end - 3 * 60_000 + i, "checkout", "GET /x", "globex", 503, 1.0) for i in range(50)]
    agg.ingest(EventBatch.from_events(late))
    events += late
    snap = agg.snapshot(end + 61_000).slos[0]
    assert_matches_oracle(spec, events, snap, end + 61_000, excluded)
    assert snap.excluded_events == sum(inside(e.ts_ms, excluded) for e in events)


def test_retroactive_exclusion_on_reload_removes_whole_buckets_only() -> None:
    # A reload adds a window over the past: the buckets keep no event times, so only buckets wholly
    # inside it leave the windows (10 s fine buckets) and the budget (5 min coarse buckets).
    spec = slo(objective="99", fine=10, coarse=300, group_by=("customer",))
    events = traffic(T0, 4 * HOUR * 1000, seed=12, per_minute=30)
    before = Aggregator(Config((spec,)))
    before.ingest(EventBatch.from_events(events))
    x = Exclusion(
        "late-notice", T0 + 2 * HOUR * 1000 + 100_000, HOUR * 1000, "found later", slos=(spec.name,)
    )
    after = Aggregator(Config((spec,), exclusions=(x,)))
    report = after.restore_state(before.export_state())
    assert report.restored == (spec.name,)
    now = T0 + 3 * HOUR * 1000 + 30 * 60_000
    snap = after.snapshot(now).slos[0]
    # The oracle: a bucket goes when [its start, its end) lies inside [x start, x end).
    a, z = x.start_ms, x.start_ms + x.duration_ms

    def gone(ts: int, res: int) -> bool:
        return a <= ts // res * res and ts // res * res + res <= z

    coarse_gone = [e for e in events if gone(e.ts_ms, 300_000)]
    assert snap.excluded_events == len(coarse_gone) > 0
    hour = snap.windows.index(HOUR)
    for j, (customer,) in enumerate(snap.labels):
        mine = [e for e in events if e.customer == customer]
        period = [e for e in mine if e.ts_ms < now and not gone(e.ts_ms, 300_000)]
        assert int(snap.period_total[j]) == len(period)
        assert int(snap.period_bad[j]) == sum(e.status >= 500 for e in period)
        window = [e for e in mine if now - HOUR * 1000 <= e.ts_ms < now and not gone(e.ts_ms, 10_000)]
        assert int(snap.total[hour, j]) == len(window)
    # Partly covered 5 min buckets stay: [2h, 2h05) holds events after x starts, still in the budget.
    assert any(a <= e.ts_ms < T0 + 2 * HOUR * 1000 + 300_000 for e in events if not gone(e.ts_ms, 300_000))
    # Idempotent: restoring the excluded state again removes nothing more.
    again = Aggregator(Config((spec,), exclusions=(x,)))
    again.restore_state(after.export_state())
    assert again.snapshot(now).slos[0].excluded_events == 0
    assert np.array_equal(again.snapshot(now).slos[0].period_total, snap.period_total)


def test_periods_list_each_occurrence_with_its_reason() -> None:
    cal = ExclusionCalendar((ONE_OFF, WEEKLY))
    got = [
        (p.start_ms - T0, p.end_ms - T0, p.name, p.reason)
        for p in cal.periods(T0, T0 + WEEK_MS + 2 * HOUR * 1000 + 60_000)
    ]
    h = HOUR * 1000
    assert got == [
        (2 * h, 3 * h, "patching", "OS patching"),
        (3 * h, 3 * h + 30 * 60_000, "deploy", "release 4.2"),
        (WEEK_MS + 2 * h, WEEK_MS + 2 * h + 60_000, "patching", "OS patching"),  # clipped at the range end
    ]


def test_cached_intervals_equal_fresh_ones_for_any_sequence_of_asks() -> None:
    cal = ExclusionCalendar((ONE_OFF, WEEKLY))
    rnd = random.Random(21)
    for _ in range(300):
        lo = T0 + rnd.randrange(-WEEK_MS, 200 * DAY * 1000)
        hi = lo + rnd.choice([1, 60_000, 6 * HOUR * 1000, 30 * DAY * 1000, 90 * DAY * 1000])
        assert cal.intervals(lo, hi) == ExclusionCalendar((ONE_OFF, WEEKLY)).intervals(lo, hi)


def test_sla_counter_leaves_excluded_events_out_of_attainment() -> None:
    # An occurrences SLA over 100 minutes: the window [10 min, 20 min) holds an outage that must not count.
    spec = slo()
    sla = SlaSpec("api-sla", spec.name, Occurrences(), (CreditTier(Fraction(99), Fraction(10)),))
    window = Exclusion("upgrade", T0 + 10 * 60_000, 10 * 60_000, "db upgrade", slos=(spec.name,))
    rnd = random.Random(4)
    events = [
        Event(T0 + rnd.randrange(100 * 60_000), "checkout", "GET /", rnd.choice("ab"), 200, 1.0)
        for _ in range(2000)
    ]
    events += [Event(T0 + 10 * 60_000 + i * 1000, "checkout", "GET /", "a", 503, 1.0) for i in range(600)]
    counter = SlaCounter(sla, spec, T0, T0 + 100 * 60_000, (window,))
    counter.ingest(EventBatch.from_events(events))
    kept = [e for e in events if not T0 + 10 * 60_000 <= e.ts_ms < T0 + 20 * 60_000]
    result = counter.evaluate(T0 + 100 * 60_000)
    assert result.excluded == (ExcludedPeriod(T0 + 10 * 60_000, T0 + 20 * 60_000, "upgrade", "db upgrade"),)
    # The report lists it (JSON; the HTML page writes the same under the SLA's heading).
    assert sla_dict(result)["excluded"] == [
        {
            "start": "2026-01-01T00:10:00Z",
            "end": "2026-01-01T00:20:00Z",
            "name": "upgrade",
            "reason": "db upgrade",
        }
    ]
    assert (
        "maintenance windows, not counted: 2026-01-01T00:10:00Z – 2026-01-01T00:20:00Z upgrade (db upgrade)"
        in (to_html(to_dict([result], {}, len(events)), "now"))
    )
    for c in result.customers:
        mine = [e for e in kept if e.customer == c.customer]
        assert (c.good, c.total) == (sum(e.status == 200 for e in mine), len(mine))
        assert c.attainment == 1 and c.credit is None and c.downtime == ()
    assert counter.exclusions is not None
    assert counter.exclusions.excluded == len(events) - len(kept) >= 600
