"""Time-slice budgeting (timeslices, ratio_timeslices) against the independent slice oracle."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
from fractions import Fraction

import numpy as np
import pytest

from sloguard._types import Bools
from sloguard.checkpoint import Checkpoint, decode, encode
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.snapshot import SloSnapshot
from sloguard.core.spec import (
    DAY,
    HOUR,
    MINUTE,
    CalendarPeriod,
    EmptySlice,
    RollingPeriod,
    SloSpec,
    Timeslices,
)
from sloguard.core.state import fingerprint
from sloguard.scale import partials
from tests.support import slice_groundtruth as sg
from tests.support.specs import config, slo

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CUSTOMERS = ("acme", "globex", "initech")


def sliced(
    good_ratio: str | None = "0.95",
    empty: EmptySlice = "good",
    slice_s: int = MINUTE,
    coarse: int = MINUTE,
    **kw: object,
) -> SloSpec:
    spec = slo(coarse=coarse, **kw)  # type: ignore[arg-type]
    b = Timeslices(slice_s, None if good_ratio is None else Fraction(good_ratio), empty)
    return dataclasses.replace(spec, budgeting=b)


def traffic(start: int, span_ms: int, seed: int, per_minute: float = 3.0) -> list[Event]:
    """Sparse, uneven traffic (many empty slices), with a few error bursts."""
    rnd = random.Random(seed)
    out = []
    for _ in range(int(span_ms / 60_000 * per_minute)):
        ts = start + rnd.randrange(span_ms)
        burst = (ts // 600_000) % 7 == 3
        status = 503 if rnd.random() < (0.6 if burst else 0.03) else 200
        out.append(Event(ts, "checkout", "GET /x", rnd.choice(CUSTOMERS), status, 5.0))
    return out


def feed(spec: SloSpec, events: list[Event], batches: int = 3) -> Aggregator:
    agg = Aggregator(config(spec))
    evs = list(events)
    random.Random(5).shuffle(evs)
    size = max(1, -(-len(evs) // batches))
    for i in range(0, len(evs), size):
        agg.ingest(EventBatch.from_events(evs[i : i + size]))
    return agg


def same(got: float, want: Fraction, exact: bool) -> bool:
    return got == float(want) if exact else math.isclose(got, float(want), rel_tol=1e-12, abs_tol=1e-15)


def assert_matches_oracle(
    spec: SloSpec, events: list[Event], snap: SloSnapshot, now: int, excluded: list[sg.Span] | None = None
) -> None:
    b = sg.budgeting(spec)
    exact = b.good_ratio is not None  # timeslices: integers throughout; ratio_timeslices: a float sum
    budget = 1 - spec.objective
    ex = excluded or []
    assert snap.slices is not None and snap.bad_slices is not None
    assert snap.period_slices is not None and snap.period_bad_slices is not None
    by_window = {}
    for i, w in enumerate(snap.windows):
        spans = sg.window_slices(spec, w, now)
        assert snap.window_bounds[i] == (spans[0][0], spans[-1][1])
        by_window[w] = truth = sg.totals(spec, events, spans, ex)
        assert set(snap.labels) == set(truth)
        for j, k in enumerate(snap.labels):
            t = truth[k]
            assert (int(snap.total[i, j]), int(snap.bad[i, j])) == (t.events, t.bad_events), (k, w)
            assert int(snap.slices[i, j]) == t.judged, (k, w)
            assert same(snap.bad_slices[i, j], t.badness, exact), (k, w)
            assert same(snap.error_ratio[i, j], t.error_ratio, exact), (k, w)
            assert same(snap.burn_rate[i, j], t.error_ratio / budget, exact), (k, w)
    p_spans = sg.period_slices(spec, now)
    assert snap.period_bounds == (sg.period_start(spec, now), sg.slice_end(spec, now))
    period = sg.totals(spec, events, p_spans, ex)
    for j, k in enumerate(snap.labels):
        t = period[k]
        assert (int(snap.period_total[j]), int(snap.period_bad[j])) == (t.events, t.bad_events)
        assert int(snap.period_slices[j]) == t.judged
        assert same(snap.period_bad_slices[j], t.badness, exact)
        remaining = 1 - t.badness / (budget * t.judged) if t.judged else Fraction(1)
        assert same(snap.budget_remaining[j], remaining, exact)
        assert same(snap.budget_consumed[j], 1 - remaining, exact)
        for n, tier in enumerate(spec.tiers):
            lt, st = by_window[tier.long_window][k], by_window[tier.short_window][k]
            limit = tier.factor * budget
            fires = lt.judged > 0 and st.judged > 0 and lt.error_ratio > limit and st.error_ratio > limit
            assert bool(snap.firing[n, j]) == (fires and lt.events >= tier.min_events), (k, tier.name)
        b1h = float(by_window[HOUR][k].error_ratio / budget)
        if remaining <= 0:
            assert snap.exhaustion_eta[j] == 0.0
        elif b1h == 0:
            assert math.isnan(snap.exhaustion_eta[j])
        elif exact:
            assert snap.exhaustion_eta[j] == float(remaining) * spec.period.nominal_seconds / b1h


METHODS = {
    "timeslices-1m-95": {"good_ratio": "0.95"},
    "timeslices-5m-of-1m-buckets-skip": {"good_ratio": "0.9", "slice_s": 300, "empty": "skip"},
    "timeslices-empty-bad": {"good_ratio": "0.95", "empty": "bad"},
    "ratio-timeslices-5m": {"good_ratio": None, "slice_s": 300},
    "ratio-timeslices-1m-skip": {"good_ratio": None, "empty": "skip"},
    "ratio-timeslices-empty-bad": {"good_ratio": None, "empty": "bad"},
}


@pytest.mark.parametrize("kw", METHODS.values(), ids=METHODS.keys())
@pytest.mark.parametrize("group_by", [(), ("customer",)], ids=["one-series", "by-customer"])
def test_rolling_period_matches_oracle(kw: dict[str, object], group_by: tuple[str, ...]) -> None:
    spec = sliced(objective="99", period=RollingPeriod(DAY), group_by=group_by, **kw)  # type: ignore[arg-type]
    events = traffic(T0, 4 * DAY * 1000, seed=2)
    agg = feed(spec, events)
    end = T0 + 4 * DAY * 1000
    # On a slice boundary, inside a slice (it is pending), and a few seconds into the next.
    for now in (end, end + 37_000, end + 301_000):
        assert_matches_oracle(spec, events, agg.snapshot(now).slos[0], now)


def test_empty_slices_good_bad_skip() -> None:
    # One series, one event a slice in 3 of the last 5 slices, the first of them bad: 2 empty slices.
    end = T0 + DAY * 1000
    events = [
        Event(end - 5 * 60_000 + 1, "checkout", "GET /x", "", 500, 1.0),
        Event(end - 3 * 60_000 + 1, "checkout", "GET /x", "", 200, 1.0),
        Event(end - 1 * 60_000 + 1, "checkout", "GET /x", "", 200, 1.0),
    ]
    five = {}
    for empty in ("good", "bad", "skip"):
        spec = sliced(empty=empty, objective="99")
        snap = feed(spec, events).snapshot(end).slos[0]
        i = snap.windows.index(5 * MINUTE)
        assert snap.slices is not None and snap.bad_slices is not None
        five[empty] = (int(snap.slices[i, 0]), float(snap.bad_slices[i, 0]), float(snap.error_ratio[i, 0]))
        assert_matches_oracle(spec, events, snap, end)
    assert five == {"good": (5, 1.0, 0.2), "bad": (5, 3.0, 0.6), "skip": (3, 1.0, 1 / 3)}


def test_good_ratio_threshold_is_exact() -> None:
    # 19 good of 20 is exactly 0.95: good. 18 of 19 (0.947...) is bad.
    end = T0 + HOUR * 1000
    ok = [Event(end - 120_000 + i, "checkout", "GET /x", "", 500 if i == 0 else 200, 1.0) for i in range(20)]
    bad = [Event(end - 60_000 + i, "checkout", "GET /x", "", 500 if i == 0 else 200, 1.0) for i in range(19)]
    snap = feed(sliced(good_ratio="0.95"), ok + bad).snapshot(end).slos[0]
    assert snap.bad_slices is not None
    assert float(snap.bad_slices[snap.windows.index(5 * MINUTE), 0]) == 1.0


def test_pending_slice_is_not_judged() -> None:
    spec = sliced(slice_s=300, coarse=60)
    end = T0 + HOUR * 1000
    events = [Event(end + 10_000, "checkout", "GET /x", "", 500, 1.0)]
    agg = feed(spec, events)
    # Inside the slice holding the error: not judged yet, nothing burns.
    snap = agg.snapshot(end + 299_999).slos[0]
    assert float(snap.burn_rate.max()) == 0.0
    assert snap.window_bounds[snap.windows.index(5 * MINUTE)] == (end - 300_000, end)
    # Once it is complete: judged bad.
    snap = agg.snapshot(end + 300_000).slos[0]
    assert snap.bad_slices is not None
    assert float(snap.bad_slices[snap.windows.index(5 * MINUTE), 0]) == 1.0


@pytest.mark.parametrize("good_ratio", ["0.95", None], ids=["timeslices", "ratio-timeslices"])
def test_calendar_month_slices_across_dst_change(good_ratio: str | None) -> None:
    # Europe/Berlin moves to summer time on 2026-03-29: March has 31 days minus one hour of slices.
    period = CalendarPeriod("month", "Europe/Berlin")
    spec = sliced(good_ratio=good_ratio, slice_s=300, coarse=300, period=period, group_by=("customer",))
    berlin = dt.timezone(dt.timedelta(hours=1))
    march = int(dt.datetime(2026, 3, 1, tzinfo=berlin).timestamp() * 1000)
    april = march + (31 * 24 - 1) * HOUR * 1000
    events = traffic(march - 2 * DAY * 1000, 33 * DAY * 1000, seed=4, per_minute=0.5)
    events += [Event(t, "checkout", "GET /x", "acme", 500, 1.0) for t in (march - 1, march, april - 1, april)]
    for now in (april - 1, april, april + 3 * HOUR * 1000 + 1):
        seen = [e for e in events if e.ts_ms < now + 5_000]
        assert_matches_oracle(spec, seen, feed(spec, seen).snapshot(now).slos[0], now)
    snap = feed(spec, events).snapshot(april - 1).slos[0]
    assert snap.period_slices is not None
    # Every customer: March so far is its 8916 slices (31 days - 1 h, in 5m slices) but the pending one.
    assert set(snap.period_slices.tolist()) == {(31 * 24 - 1) * 12 - 1}


def test_exclusion_covering_part_of_a_slice() -> None:
    # 5m slices of 1m buckets; an exclusion covers 2 minutes of one slice (its errors are left out, the
    # slice is judged on the rest) and all of another one (not judged).
    spec = sliced(good_ratio="0.9", slice_s=300, coarse=60, objective="99", group_by=("customer",))
    end = T0 + DAY * 1000
    events = traffic(T0, DAY * 1000, seed=8, per_minute=20)
    part = (end - 20 * 60_000, end - 18 * 60_000)  # minutes 0-1 of the slice [end - 20m, end - 15m)
    whole = (end - 10 * 60_000, end - 5 * 60_000)
    events += [Event(part[0] + i * 1000, "checkout", "GET /x", "acme", 500, 1.0) for i in range(100)]
    excluded = [part, whole]

    def mask(start: int, stop: int, res: int) -> Bools:
        buckets = np.arange(start, stop, res)
        out = np.zeros(len(buckets), np.bool_)
        for a, z in excluded:
            out |= (buckets >= a) & (buckets + res <= z)
        return out

    agg = feed(spec, events)
    for now in (end, end + 61_000):
        snap = agg.slos[0].capture(now, mask).evaluate()
        assert_matches_oracle(spec, events, snap, now, excluded)
    snap = agg.slos[0].capture(end, mask).evaluate()
    plain = agg.snapshot(end).slos[0]
    i = snap.windows.index(30 * MINUTE)
    assert snap.slices is not None and plain.slices is not None
    # The wholly excluded slice is not judged; the 100 errors of the excluded minutes do not count.
    assert snap.slices[i].tolist() == [5] * len(snap.labels)
    assert plain.slices[i].tolist() == [6] * len(plain.labels)
    acme = snap.labels.index(("acme",))
    assert int(plain.bad[i, acme]) - int(snap.bad[i, acme]) >= 100


def test_merge_of_two_halves_is_exact() -> None:
    spec = sliced(good_ratio=None, slice_s=300, coarse=60, group_by=("customer",))
    events = traffic(T0, 2 * DAY * 1000, seed=11)
    whole = feed(spec, events)
    a, b = feed(spec, events[::2]), feed(spec, events[1::2])
    a.merge(b)
    now = T0 + 2 * DAY * 1000 + 7_000
    x, y = whole.snapshot(now).slos[0], a.snapshot(now).slos[0]
    order = [y.labels.index(k) for k in x.labels]
    assert x.bad_slices is not None and y.bad_slices is not None
    assert np.array_equal(x.bad_slices, y.bad_slices[:, order])
    assert np.array_equal(x.budget_remaining, y.budget_remaining[order])


def test_checkpoint_round_trip_and_fingerprint() -> None:
    # No new state: slices are read from the coarse ring, which a checkpoint already holds.
    spec = sliced(good_ratio="0.95", group_by=("customer",))
    events = traffic(T0, DAY * 1000, seed=12)
    agg = feed(spec, events)
    now = T0 + DAY * 1000
    agg.snapshot(now)  # judged slices are a cache, not state
    fresh = Aggregator(config(spec))
    saved = decode(encode(Checkpoint(agg.export_state(), {("requests", 0): 7}, now)))
    assert fresh.restore_state(saved.state).restored == (spec.name,)
    assert_matches_oracle(spec, events, fresh.snapshot(now).slos[0], now)
    # An occurrences SLO keeps the fingerprint it had before budgeting existed; each method has its own.
    plain = dataclasses.replace(spec, budgeting=None)
    assert "budgeting" not in fingerprint(plain)
    assert fingerprint(spec) != fingerprint(dataclasses.replace(spec, budgeting=Timeslices(60)))


def test_coarse_resolution_must_divide_the_slice() -> None:
    with pytest.raises(ValueError, match="must divide the time slice"):
        Aggregator(config(sliced(slice_s=MINUTE, coarse=300)))


def test_late_events_rejudge_their_slice() -> None:
    # Slices are judged once and kept: an event arriving later for a judged slice must rejudge it.
    spec = sliced(good_ratio="0.95", group_by=("customer",))
    end = T0 + DAY * 1000
    events = traffic(T0, DAY * 1000, seed=13)
    agg = feed(spec, events)
    assert_matches_oracle(spec, events, agg.snapshot(end).slos[0], end)
    late = [
        Event(end - k * 3_600_000 - 1, "checkout", "GET /x", c, 503, 1.0) for k in (1, 5) for c in CUSTOMERS
    ]
    late += [Event(end - 90_000, "checkout", "GET /x", "newcomer", 503, 1.0)]
    agg.ingest(EventBatch.from_events(late))
    for now in (end, end + 45_000):
        assert_matches_oracle(spec, events + late, agg.snapshot(now).slos[0], now)


def test_scale_out_partials_split_and_merged_are_exact() -> None:
    # Stage 1 summarises two offset ranges, each state is cut into partials partitions by series; stage 2
    # restores every piece and merges them: the same judged slices as one aggregator fed everything.
    spec = sliced(good_ratio="0.9", slice_s=300, coarse=60, group_by=("customer",))
    cfg = config(spec)
    events = traffic(T0, DAY * 1000, seed=14)
    merged = Aggregator(cfg)
    for part in (events[: len(events) // 3], events[len(events) // 3 :]):
        state = partials.summarise(cfg, [EventBatch.from_events(part)])
        for piece in partials.split(cfg, state, 3):
            agg = partials.fresh(cfg)
            agg.restore_state(piece)
            merged.merge(agg)
    now = T0 + DAY * 1000 + 1_000
    assert_matches_oracle(spec, events, merged.snapshot(now).slos[0], now)


@pytest.mark.parametrize("empty", ["good", "bad", "skip"])
def test_a_new_series_after_slices_were_judged(empty: EmptySlice) -> None:
    # Judged slices are kept when a series appears; its past slices are empty ones (it had no events).
    spec = sliced(good_ratio=None, empty=empty, group_by=("customer",), objective="99")
    end = T0 + DAY * 1000
    events = traffic(T0, DAY * 1000, seed=15)
    agg = feed(spec, events)
    agg.snapshot(end)
    new = [Event(end + 1_000, "checkout", "GET /x", "newcomer", 503, 1.0)]
    agg.ingest(EventBatch.from_events(new))
    for now in (end + 30_000, end + 61_000):
        assert_matches_oracle(spec, events + new, agg.snapshot(now).slos[0], now)


@pytest.mark.parametrize("kw", METHODS.values(), ids=METHODS.keys())
def test_a_grouped_slo_with_no_series_yet_snapshots_empty(kw: dict[str, object]) -> None:
    # A daemon before its first event, or a stage-2 partition owning none of the SLO's series: no rows.
    # The slice counts were reshaped with -1, which numpy cannot infer from an empty array.
    agg = Aggregator(config(sliced(group_by=("customer",), **kw)))  # type: ignore[arg-type]
    snap = agg.snapshot(T0).slos[0]
    assert snap.labels == () and snap.total.shape == (len(snap.windows), 0)


@pytest.mark.parametrize("columns", [0, 1, 2, 3, 7])
def test_column_sums_add_in_slice_order_whatever_the_columns(columns: int) -> None:
    """Each column's sum is the running sum in slice order, bit for bit, for one column (numpy alone
    would sum it pairwise) as for several (numpy's own order, pinned here in case it changes)."""
    from sloguard.core.slices import column_sums

    rng = np.random.default_rng(7)
    bad, total = rng.integers(0, 7, (300, columns)), rng.integers(7, 13, (300, columns))
    ratios = bad / total
    got = column_sums(ratios)
    assert got.shape == (columns,)
    for j in range(columns):
        running = 0.0
        for x in ratios[:, j].tolist():
            running += x
        assert got[j] == running
    assert column_sums(np.zeros((0, columns))).tolist() == [0.0] * columns
