"""The set of applied ranges: an interval set checked against a plain set of integers, and the verdicts."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from sloguard.scale.applied import Applied, IntervalSet, RangeKey, Verdict

TP = ("requests", 3)


@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(1, 12)), max_size=25),
    st.integers(0, 70),
    st.integers(1, 9),
)
def test_interval_set_matches_a_set_of_integers(adds: list[tuple[int, int]], a: int, width: int) -> None:
    s, model = IntervalSet(), set[int]()
    for start, w in adds:
        s.add(start, start + w)
        model |= set(range(start, start + w))
    pairs = list(s)
    assert all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(pairs)), "joined, sorted, apart"
    assert set().union(*(set(range(x, y)) for x, y in pairs)) == model
    probe = set(range(a, a + width))
    assert s.covers(a, a + width) == (probe <= model)
    assert s.overlaps(a, a + width) == bool(probe & model)


def key(start: int, end: int, index: int = 0, count: int = 1, tp: tuple[str, int] = TP) -> RangeKey:
    return RangeKey(tp, start, end, index, count)


def test_same_range_is_a_duplicate_a_different_cut_a_conflict() -> None:
    applied = Applied()
    assert applied.check(key(10, 20)) is Verdict.NEW
    applied.record(key(10, 20))
    assert applied.check(key(10, 20)) is Verdict.DUPLICATE
    assert applied.check(key(12, 18)) is Verdict.DUPLICATE  # inside: every offset applied once already
    assert applied.check(key(15, 25)) is Verdict.CONFLICT
    assert applied.check(key(5, 11)) is Verdict.CONFLICT
    assert applied.check(key(20, 30)) is Verdict.NEW
    assert applied.check(key(15, 25, tp=("requests", 4))) is Verdict.NEW
    applied.record(key(20, 30))
    assert list(applied.ranges[TP]) == [(10, 30)]
    assert applied.next_offsets() == {TP: 30}


def test_a_range_in_several_records_is_applied_once_all_arrived() -> None:
    applied = Applied()
    applied.record(key(0, 50, 1, 3))
    assert applied.check(key(0, 50, 1, 3)) is Verdict.DUPLICATE
    assert applied.check(key(0, 50, 0, 3)) is Verdict.NEW
    assert applied.check(key(0, 40, 0, 2)) is Verdict.CONFLICT
    applied.record(key(0, 50, 0, 3))
    assert TP not in applied.ranges
    restored = Applied.from_rows(applied.to_rows())
    assert restored == applied
    restored.record(key(0, 50, 2, 3))
    assert list(restored.ranges[TP]) == [(0, 50)] and not restored.pending
