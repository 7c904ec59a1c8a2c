"""BucketRing's per-slot sums over every row (what the UI reads for an SLO as a whole) stay equal to the
sum of the cells through every write: adds (too-old events dropped, counters widened, several blocks),
advances that reuse slots, merges, a load from state, and eviction by fold."""

from __future__ import annotations

import numpy as np
import pytest

from sloguard.core.windows import BLOCK, BucketRing


def summed(ring: BucketRing, start: int, end: int) -> tuple[list[int], list[int]]:
    """Every row's counts per bucket of ``[start, end)``, added one row at a time (the reference)."""
    total = np.zeros(end - start, np.int64)
    bad = np.zeros(end - start, np.int64)
    for row in range(ring.rows):
        t, b = ring.bucket_counts(start, end, row)
        total += t
        bad += b
    return total.tolist(), bad.tolist()


def assert_totals(ring: BucketRing) -> None:
    assert ring.head is not None
    start, end = ring.head - ring.n - 3, ring.head + 3
    t, b = ring.bucket_counts(start, end, None)
    assert (t.tolist(), b.tolist()) == summed(ring, start, end)


def feed(ring: BucketRing, rng: np.random.Generator, rows: int, lo: int, hi: int, n: int) -> None:
    ring.ensure_rows(rows)
    ring.add(
        rng.integers(0, rows, n).astype(np.intp),
        rng.integers(lo, hi, n).astype(np.int64),
        rng.random(n) < 0.1,
    )


@pytest.mark.parametrize("rows", [1, 7, BLOCK + 5], ids=["one row", "narrow block", "two blocks"])
def test_slot_sums_follow_adds_and_advances(rows: int) -> None:
    rng = np.random.default_rng(rows)
    ring = BucketRing(1000, 16)
    for step in range(12):
        # Late events (older than the ring keeps) are dropped from the cells and from the sums alike.
        feed(ring, rng, rows, 10 * step - 20, 10 * step + 3, 500)
        if step % 3 == 2:
            ring.advance(ring.head + 5 if ring.head is not None else 0)
        assert_totals(ring)
    # One cell past uint16: the counters widen, the sums do not move.
    ring.add(np.zeros(70_000, np.intp), np.full(70_000, ring.head or 0, np.int64), np.zeros(70_000, np.bool_))
    assert ring.dtype is not np.uint16
    assert_totals(ring)
    ring.advance((ring.head or 0) + 100)  # every slot reused
    assert ring.bucket_counts(0, ring.head or 0, None)[0].sum() == 0
    assert_totals(ring)


@pytest.mark.parametrize("behind", [0, 5, 40], ids=["same head", "other behind", "other far behind"])
def test_slot_sums_follow_a_merge(behind: int) -> None:
    rng = np.random.default_rng(behind)
    a, b = BucketRing(1000, 16), BucketRing(1000, 16)
    feed(a, rng, 30, 40, 60, 2000)
    feed(b, rng, 20, 40 - behind, 60 - behind, 2000)
    a.merge_from(b, rng.integers(0, 40, 20).astype(np.intp))  # some rows land on one (overflow)
    assert_totals(a)


def test_slot_sums_are_rebuilt_on_load() -> None:
    rng = np.random.default_rng(3)
    ring = BucketRing(1000, 16)
    feed(ring, rng, BLOCK + 9, 0, 20, 5000)
    state = ring.dump(BLOCK + 9)
    loaded = BucketRing(1000, 16)
    loaded.load(state)
    assert loaded.slot_total.tolist() == ring.slot_total.tolist()
    assert loaded.slot_bad.tolist() == ring.slot_bad.tolist()
    assert_totals(loaded)
