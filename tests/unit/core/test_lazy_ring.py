"""A `BucketRing` allocates its blocks and slot sums at its first write (`BucketRing._allocate`): until then
every read gives what the same ring allocated up front gives (zeros, same shapes and types), and every
write leaves it as it leaves an allocated one (same counts, same block layout)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sloguard.core.state import RingState
from sloguard.core.windows import BLOCK, BucketRing


def eager(res_ms: int, n: int, rows: int = 1) -> BucketRing:
    """The ring as it was before lazy allocation: blocks and slot sums allocated at construction."""
    ring = BucketRing(res_ms, n, rows)
    ring._allocate()
    return ring


def reads(ring: BucketRing, rows: int) -> list[object]:
    """Everything a reader can get out of ``ring`` (arrays as dtype, shape and values)."""

    def arr(a: np.ndarray) -> tuple[str, tuple[int, ...], list[int]]:
        return (str(a.dtype), a.shape, a.reshape(-1).tolist())

    head = 50 if ring.head is None else ring.head
    out: list[object] = [ring.rows, ring.head, ring.low, ring.dtype]
    out += [arr(a) for a in ring.sums(head - 7, head + 1, rows)]
    out += [arr(a) for a in ring.dense(head - 5, head + 2, rows)]
    out += [arr(a) for a in ring.bucket_counts(head - 5, head + 2, None)]
    out += [arr(a) for a in ring.bucket_counts(head - 5, head + 2, rows - 1)]
    out += [arr(a) for a in ring.span_sums("w", head - 6, head + 1, rows)]
    out += [arr(ring.slot_total), arr(ring.slot_bad)]
    state = ring.dump(rows)
    out += [state.head, state.low, state.rows, arr(state.cells), arr(state.total), arr(state.bad)]
    return out


@pytest.mark.parametrize("rows", [1, 5, BLOCK + 3])
def test_an_unwritten_ring_reads_as_an_allocated_one(rows: int) -> None:
    lazy, full = BucketRing(1000, 12), eager(1000, 12)
    assert not lazy._total and full._total
    for ring in (lazy, full):
        ring.ensure_rows(rows)
        ring.advance(40)
        ring.advance(47)  # reuses slots: nothing to clear
    assert reads(lazy, rows) == reads(full, rows)
    assert not lazy._total  # reads allocate nothing
    # Too-old events only (dropped): nothing written, the head and low move as they do allocated.
    for ring in (lazy, full):
        ring.add(np.zeros(2, np.intp), np.array([1, 2], np.int64), np.ones(2, np.bool_))
    assert reads(lazy, rows) == reads(full, rows)
    assert not lazy._total


@pytest.mark.parametrize("seed", range(8))
def test_writes_to_an_unwritten_ring_give_what_they_give_an_allocated_one(seed: int) -> None:
    """`add` (wide counts included), `add_cells`, `merge_from` (of an unwritten ring too) and `load`, on a
    ring allocated lazily and on one allocated up front: the same reads and the same block layout."""
    rnd = random.Random(seed)
    rows = rnd.choice((1, 3, 40, BLOCK + 2))
    first = rnd.choice(("add", "wide", "cells", "merge", "merge-empty", "load", "load-empty"))
    r = np.array([rnd.randrange(rows) for _ in range(20)], np.intp)
    b = np.array([100 - rnd.randrange(0, 20) for _ in range(20)], np.int64)
    bad = np.array([rnd.random() < 0.3 for _ in range(20)], np.bool_)
    pair = []
    for up_front in (False, True):
        ring = eager(1000, 16) if up_front else BucketRing(1000, 16)
        ring.span_sums("w", 90, 101, 1)  # a running span on the unwritten ring, moved by every write
        ring.ensure_rows(rows)
        other = BucketRing(1000, 16, rows)
        other.add(r, b, bad)
        if first == "add":
            ring.add(r, b, bad)
        elif first == "wide":
            ring.add(np.repeat(r[:1], 70_000), np.repeat(b[:1], 70_000), np.zeros(70_000, np.bool_))
        elif first == "cells":
            ring.add_cells(other.dump(rows), np.arange(rows, dtype=np.intp))
        elif first == "merge":
            ring.merge_from(other, np.arange(rows, dtype=np.intp))
        elif first == "merge-empty":
            blank = BucketRing(1000, 16, rows)
            blank.advance(103)
            ring.merge_from(blank, np.arange(rows, dtype=np.intp))
        elif first == "load":
            ring.load(other.dump(rows))
        else:
            ring.load(RingState(1000, 16, 99, None, rows, *(np.zeros(0, np.int64),) * 3))
        pair.append(ring)
    lazy, full = pair
    assert reads(lazy, rows) == reads(full, rows)
    assert bool(lazy._total) == (first not in ("merge-empty", "load-empty"))
    if lazy._total:
        assert [b.shape for b in lazy._total] == [b.shape for b in full._total]
        assert [b.dtype for b in lazy._bad] == [b.dtype for b in full._bad]
    assert lazy.rows == sum(b.shape[1] for b in full._total)


@pytest.mark.parametrize("steps", [(1,), (3, 9), (5, 300, 2), (20_000,), (2, BLOCK, BLOCK + 1, 3 * BLOCK)])
def test_rows_are_the_allocated_block_widths(steps: tuple[int, ...]) -> None:
    """`rows` (kept, not summed) is the width of the blocks an allocated ring grows to, whether the blocks
    are allocated before the rows grow, after, or in between."""
    for allocate_at in range(len(steps) + 1):
        ring = BucketRing(1000, 4)
        for i, rows in enumerate(steps):
            if i == allocate_at:
                ring._allocate()
            ring.ensure_rows(rows)
        ring._allocate()
        assert ring.rows == sum(b.shape[1] for b in ring._total) == sum(b.shape[1] for b in ring._bad)
        assert all(b.shape[1] == BLOCK for b in ring._total[1:])


@pytest.mark.parametrize("seed", range(12))
def test_slot_sums_kept_from_a_first_read_equal_those_summed_at_the_end(seed: int) -> None:
    """`slot_total`/`slot_bad` are summed from the cells at their first read, then kept up to date by every
    write: a ring read every step (kept through every write) and one read only at the end (summed then) give
    the same sums, and those are the cells' (every row's counts per slot)."""
    rnd = random.Random(seed)
    n, rows = 12, rnd.choice((3, BLOCK + 2))
    kept, summed = BucketRing(1000, n, rows), BucketRing(1000, n, rows)
    head = 100
    for _ in range(40):
        action = rnd.random()
        k = rnd.randrange(1, 30)
        r = np.array([rnd.randrange(rows) for _ in range(k)], np.intp)
        b = np.array([head - rnd.randrange(-2, n + 3) for _ in range(k)], np.int64)
        bad = np.array([rnd.random() < 0.3 for _ in range(k)], np.bool_)
        other = BucketRing(1000, n, rows)
        other.add(r, b, bad)
        target = head + rnd.choice((1, 3, n + 1))
        for ring in (kept, summed):
            if action < 0.4:
                ring.add(r, b, bad)
            elif action < 0.5:
                ring.add(np.repeat(r[:1], 70_000), np.repeat(b[:1], 70_000), np.zeros(70_000, np.bool_))
            elif action < 0.7:
                ring.add_cells(other.dump(rows), np.arange(rows, dtype=np.intp))
            elif action < 0.8:
                ring.merge_from(other, np.arange(rows, dtype=np.intp))
            else:
                ring.advance(target)
        head = max(head, kept.head or head)
        kept.slot_total  # noqa: B018 (read every step: kept up to date from the first write on)
    loaded = BucketRing(1000, n)
    loaded.slot_bad  # noqa: B018
    loaded.load(summed.dump(rows))
    assert kept.head == summed.head
    dense_total, dense_bad = kept.dense(head - n + 1, head + 1, rows)
    by_slot = [np.zeros(n, np.int64), np.zeros(n, np.int64)]
    for i, bucket in enumerate(range(head - n + 1, head + 1)):
        by_slot[0][bucket % n] = dense_total[i].sum()
        by_slot[1][bucket % n] = dense_bad[i].sum()
    for ring in (kept, summed, loaded):
        assert ring.slot_total.tolist() == by_slot[0].tolist()
        assert ring.slot_bad.tolist() == by_slot[1].tolist()
