"""`HistRing.add` (new cells merged into each slot's sorted keys) leaves a ring as the plain rule does:
each slot the sum of every cell offered for its bucket while the ring kept it, as sorted unique keys with
their counts; the head the newest bucket offered, ``low`` the oldest; cells of buckets the ring no longer
kept dropped and counted. The reference below is the implementation it replaced (each slot's keys and the
new ones sorted again together)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard._types import I64
from sloguard.core import histring
from sloguard.core.histring import HistRing


def _compact(keys: I64, counts: I64) -> tuple[I64, I64]:
    uniq, inverse = np.unique(keys, return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=counts, minlength=len(uniq))
    return uniq, summed.astype(np.int64)


def reference_add(ring: HistRing, buckets: I64, keys: I64, counts: I64) -> int:
    if len(buckets) == 0:
        return 0
    keep = buckets >= ring._open(buckets)[0]
    dropped = int(counts[~keep].sum())
    buckets, keys, counts = buckets[keep], keys[keep], counts[keep]
    for b in np.unique(buckets).tolist():
        sel = buckets == b
        slot = b % ring.n
        ring.keys[slot], ring.counts[slot] = _compact(
            np.concatenate([ring.keys[slot], keys[sel]]), np.concatenate([ring.counts[slot], counts[sel]])
        )
    return dropped


def assert_same(ours: HistRing, theirs: HistRing) -> None:
    assert (ours.head, ours.low) == (theirs.head, theirs.low)
    for a, b, c, d in zip(ours.keys, theirs.keys, ours.counts, theirs.counts, strict=True):
        assert a.dtype == b.dtype == c.dtype == d.dtype == np.int64
        assert (a.tolist(), c.tolist()) == (b.tolist(), d.tolist())


#: One batch: how our ring takes it (returns the events it dropped), the cells it holds (buckets, keys,
#: counts, for the reference), and how far the head moves after it.
Batch = tuple[Callable[[HistRing], int], tuple[I64, I64, I64], int]


def _adding(buckets: I64, keys: I64, counts: I64) -> Callable[[HistRing], int]:
    return lambda ring: ring.add(buckets, keys, counts)


def _adding_slots(buckets: I64, lengths: I64, keys: I64, counts: I64) -> Callable[[HistRing], int]:
    return lambda ring: ring.add_slots(buckets, lengths, keys, counts)


def check_batches(n: int, batches: list[Batch]) -> None:
    """Our ring after each batch is the reference's; and a slot's arrays are never written in place (a
    window being read may hold them): every array taken along the way still holds what it held."""
    ours, theirs = HistRing(60 * (n - 1), 60, n, 8), HistRing(60 * (n - 1), 60, n, 8)
    held: list[tuple[I64, list[int]]] = []
    for add, (buckets, keys, counts), moved in batches:
        assert add(ours) == reference_add(theirs, buckets, keys, counts)
        assert_same(ours, theirs)
        held += [(a, a.tolist()) for a in (*ours.keys, *ours.counts)]
        if moved and ours.head is not None:
            to = ours.head + moved
            ours.advance(to)
            theirs.advance(to)
            assert_same(ours, theirs)
    for array, was in held:
        assert array.tolist() == was


cells = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 40), st.integers(0, 5)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    batches=st.lists(st.tuples(cells, st.integers(0, 3)), min_size=1, max_size=6),
    n=st.integers(3, 12),
    huge=st.booleans(),
)
def test_add_is_the_sorted_rule(
    batches: list[tuple[list[tuple[int, int, int]], int]], n: int, huge: bool
) -> None:
    """Any batches (repeated cells, zero counts, slots new and held, too-old cells, the head moved between
    batches); ``huge``: keys so large that the (bucket, key) codes do not fit 63 bits (the pairs' sort)."""
    steps: list[Batch] = []
    for batch, moved in batches:
        buckets, keys, counts = (np.array([c[i] for c in batch], np.int64) for i in range(3))
        if huge:
            keys = keys + (1 << 61)
        steps.append((_adding(buckets, keys, counts), (buckets, keys, counts), moved))
    check_batches(n, steps)


#: A slot's run: its bucket and its cells (unique keys, as a state's slot holds them; any counts).
runs = st.lists(
    st.tuples(st.integers(0, 30), st.dictionaries(st.integers(0, 300), st.integers(0, 5), max_size=60)),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(
    batches=st.lists(st.tuples(runs, st.integers(0, 3)), min_size=1, max_size=6),
    n=st.integers(3, 12),
    huge=st.booleans(),
    ratio=st.sampled_from([0, 1, histring._MERGE_RATIO, 10**9]),
)
def test_add_slots_is_add_of_the_cells(
    batches: list[tuple[list[tuple[int, dict[int, int]]], int]], n: int, huge: bool, ratio: int
) -> None:
    """`HistRing.add_slots` (cells given as runs, a bucket each: several pieces' slots) is `add` of the
    cells: runs of one bucket, empty runs, too-old runs, slots new and held, the head moved between
    batches; merged into the slots or sorted with them (``ratio``: `_MERGE_RATIO`, each way), or,
    ``huge``, keys too large to code with their slot."""
    steps: list[Batch] = []
    for batch, moved in batches:
        buckets = np.array([b for b, _ in batch], np.int64)
        lengths = np.array([len(c) for _, c in batch], np.int64)
        keys = np.array([k for _, c in batch for k in sorted(c)], np.int64)
        counts = np.array([c[k] for _, c in batch for k in sorted(c)], np.int64)
        if huge:
            keys = keys + (1 << 61)
        steps.append(
            (
                _adding_slots(buckets, lengths, keys, counts),
                (np.repeat(buckets, lengths), keys, counts),
                moved,
            )
        )
    was = histring._MERGE_RATIO
    histring._MERGE_RATIO = ratio
    try:
        check_batches(n, steps)
    finally:
        histring._MERGE_RATIO = was


def test_add_keeps_returned_arrays_unchanged() -> None:
    ring = HistRing(60, 60, 2, 8)
    ring.add(np.array([0, 0], np.int64), np.array([3, 5], np.int64), np.array([1, 2], np.int64))
    keys, counts = ring.keys[0], ring.counts[0]
    ring.add(np.array([0, 0], np.int64), np.array([5, 4], np.int64), np.array([1, 1], np.int64))
    assert (keys.tolist(), counts.tolist()) == ([3, 5], [1, 2])
    assert (ring.keys[0].tolist(), ring.counts[0].tolist()) == ([3, 4, 5], [1, 1, 3])
    ring.add(np.array([0], np.int64), np.array([4], np.int64), np.array([7], np.int64))
    assert ring.counts[0].tolist() == [1, 8, 3]
