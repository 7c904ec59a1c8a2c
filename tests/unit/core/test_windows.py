"""BucketRing: counters widen before they could wrap; window sums stay exact."""

from __future__ import annotations

import numpy as np
import pytest

from sloguard.core.state import RingState
from sloguard.core.windows import BLOCK, BucketRing, coarser, count_cells, reused


def test_counters_widen_instead_of_wrapping() -> None:
    ring = BucketRing(10_000, 8)
    assert ring.dtype is np.uint16
    n = 70_000  # more than a uint16 cell holds, all in one bucket of one series
    rows = np.zeros(n, np.intp)
    buckets = np.full(n, 100, np.int64)
    bad = np.zeros(n, np.bool_)
    bad[:3] = True
    ring.add(rows, buckets, bad)
    assert ring.dtype is np.uint32
    total, nbad = ring.sums(95, 101, 1)
    assert (int(total[0]), int(nbad[0])) == (n, 3)
    ring.add(rows[:10], buckets[:10], bad[:10])
    assert int(ring.sums(100, 101, 1)[0][0]) == n + 10


def test_merge_widens_when_the_sum_would_not_fit() -> None:
    a, b = BucketRing(10_000, 8), BucketRing(10_000, 8)
    n = 40_000
    for ring in (a, b):
        ring.add(np.zeros(n, np.intp), np.full(n, 5, np.int64), np.zeros(n, np.bool_))
        assert ring.dtype is np.uint16
    a.merge_from(b, np.zeros(1, np.intp))
    assert a.dtype is np.uint32
    assert int(a.sums(0, 10, 1)[0][0]) == 2 * n


@pytest.mark.parametrize("rows", [3, 300, 2500], ids=["narrow", "grown first block", "several blocks"])
def test_widening_and_growing_keep_every_held_slot(rows: int) -> None:
    """Widening and growing copy only the slots that may hold counts (``_held``): counts in slots that
    wrap around the end of the ring, and in a ring that later grows, are all still there, exactly."""
    rng = np.random.default_rng(5)
    ring = BucketRing(1000, 10)
    expected = np.zeros((30, rows), np.int64)
    for lo in (15, 17):  # buckets 15 .. 20: slots 5 .. 9 and 0 (held in two runs)
        n = 2000
        r = rng.integers(0, rows, n).astype(np.intp)
        b = rng.integers(lo, lo + 4, n).astype(np.int64)
        ring.ensure_rows(rows)
        ring.add(r, b, np.zeros(n, np.bool_))
        np.add.at(expected, (b, r), 1)
    head = 20
    assert ring.dtype is np.uint16
    hot = np.full(70_000, rows - 1, np.intp)
    ring.add(hot, np.full(70_000, head, np.int64), np.zeros(70_000, np.bool_))
    expected[head, rows - 1] += 70_000
    assert ring.dtype is np.uint32
    ring.ensure_rows(rows + 2000)
    total, _ = ring.dense(0, 30, rows)
    assert np.array_equal(total, expected)


@pytest.mark.parametrize(
    ("head", "bucket", "expected"),
    [
        pytest.param(None, 5, range(0), id="new-ring"),
        pytest.param(5, 5, range(0), id="same-bucket"),
        pytest.param(5, 3, range(0), id="older-bucket"),
        pytest.param(5, 7, range(6, 8), id="two-forward"),
        pytest.param(5, 9, range(6, 10), id="exactly-n-forward"),
        pytest.param(5, 100, range(97, 101), id="far-forward-clears-n"),
    ],
)
def test_reused_buckets_when_the_head_moves(head: int | None, bucket: int, expected: range) -> None:
    assert reused(head, bucket, 4) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_several_blocks_count_exactly_and_widen(seed: int) -> None:
    """Batches over several blocks (cells counted across blocks at once) match a count per cell, bad
    counts and running span sums included; a cell of a later block passing uint16 widens the ring."""
    rng = np.random.default_rng(seed)
    rows_n, n = 3 * BLOCK + 100, 16
    ring = BucketRing(1000, n, rows_n)
    truth_total = np.zeros((1000, rows_n), np.int64)  # per bucket (buckets < 1000 here)
    truth_bad = np.zeros((1000, rows_n), np.int64)
    hot = 2 * BLOCK + 7  # a cell of the third block that will pass 65535
    for step in range(12):
        k = int(rng.integers(1, 6000))
        rows = rng.integers(0, rows_n, k).astype(np.intp)
        buckets = 20 + step + rng.integers(0, 3, k).astype(np.int64)
        if step in (4, 5):  # 2 x 40_000 events in one cell of block 2
            rows = np.concatenate([rows, np.full(40_000, hot, np.intp)])
            buckets = np.concatenate([buckets, np.full(40_000, 20 + step, np.int64)])
            buckets[-40_000:] = 25
        bad = rng.random(len(rows)) < 0.3
        np.add.at(truth_total, (buckets, rows), 1)
        np.add.at(truth_bad, (buckets[bad], rows[bad]), 1)
        assert ring.add(rows, buckets, bad) == 0
        lo, hi = 20 + step - n + 1, 21 + step
        total, nbad = ring.span_sums("w", lo, hi, rows_n)
        assert np.array_equal(total, truth_total[lo:hi].sum(axis=0))
        assert np.array_equal(nbad, truth_bad[lo:hi].sum(axis=0))
    assert ring.dtype is np.uint32
    head = ring.head
    assert head is not None
    for b in range(head - n + 1, head + 1):
        got_total, got_bad = ring.dense(b, b + 1, rows_n)
        assert np.array_equal(got_total[0], truth_total[b]) and np.array_equal(got_bad[0], truth_bad[b])
    assert np.array_equal(
        ring.slot_total[np.arange(head - n + 1, head + 1) % n],
        truth_total[head - n + 1 : head + 1].sum(axis=1),
    )


@pytest.mark.parametrize(
    ("n_rows", "spread", "n"),
    [
        (50, 3, 5000),  # dense: one bincount over the keys
        (100_000, 3, 5000),  # sorted as 32-bit keys
        (100_000, 20_000, 5000),  # sorted as 64-bit keys (a late event far back)
        (1 << 40, 1 << 30, 300),  # keys that would not fit: lexsort
    ],
)
def test_count_cells_and_coarser_count_every_event_per_cell(n_rows: int, spread: int, n: int) -> None:
    rng = np.random.default_rng(n_rows % 97 + spread)
    rows = rng.integers(0, min(n_rows, 2000), n).astype(np.intp) * (n_rows // min(n_rows, 2000))
    buckets = rng.integers(-spread, spread, n).astype(np.int64) + 10**9
    bad = rng.random(n) < 0.2
    for ratio, cells in ((1, count_cells(rows, buckets, bad, n_rows)), (7, None)):
        if cells is None:
            cells = coarser(count_cells(rows, buckets, bad, n_rows), ratio)
        want_total: dict[tuple[int, int], int] = {}
        want_bad: dict[tuple[int, int], int] = {}
        for r, b, x in zip(rows.tolist(), (buckets // ratio).tolist(), bad.tolist(), strict=True):
            want_total[r, b] = want_total.get((r, b), 0) + 1
            want_bad[r, b] = want_bad.get((r, b), 0) + x
        got = list(zip(cells.rows.tolist(), cells.buckets.tolist(), strict=True))
        assert got == sorted(want_total)  # distinct cells, by row then bucket
        assert cells.total.tolist() == [want_total[c] for c in got]
        assert cells.bad.tolist() == [want_bad[c] for c in got]


@pytest.mark.parametrize("distinct", [True, False])
def test_add_cells_across_blocks_widens_and_lands_on_each_block(distinct: bool) -> None:
    """Saved cells in two blocks of rows, one of them past what uint16 and then uint32 hold: every cell
    lands on its own block's row and slot, the type widens first, and the other cells keep their counts."""
    rows = BLOCK + 10
    ring = BucketRing(1000, 8, rows)
    ring.add(np.array([3, BLOCK + 4], np.intp), np.array([100, 100], np.int64), np.array([True, False]))
    targets = np.array([3, BLOCK + 4, BLOCK + 9, 7], np.intp)
    slots = np.array([100, 100, 99, 98], np.int64) % 8
    for big, dtype in ((70_000, np.uint32), (5_000_000_000, np.int64)):
        total = np.array([1, big, 2, 3], np.int64)
        bad = np.array([1, 0, 2, 0], np.int64)
        order = np.argsort(slots * rows + targets)
        state = RingState(1000, 8, 100, 98, rows, (slots * rows + targets)[order], total[order], bad[order])
        row_map = np.arange(rows, dtype=np.intp)
        ring.add_cells(state, row_map, distinct)  # (False: the path summing cells that collide)
        assert ring.dtype is dtype
    t, b = ring.sums(98, 101, rows)
    assert t[[3, 7, BLOCK + 4, BLOCK + 9]].tolist() == [3, 6, 5_000_070_001, 4]
    assert b[[3, 7, BLOCK + 4, BLOCK + 9]].tolist() == [3, 0, 0, 4]
    assert int(t.sum()) == 3 + 6 + 5_000_070_001 + 4
    assert ring.bucket_counts(100, 101, BLOCK + 4)[0].tolist() == [5_000_070_001]
