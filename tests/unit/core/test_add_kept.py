"""`BucketRing.add_kept` (stage 2's batched merge: cells already in the ring's terms) leaves a ring as
`BucketRing.add_cells` of the same cells as a saved state does, whatever came before or after: counts, head,
low, type, slot sums, running span sums (written by `add` since the last read or not), block layout."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sloguard.core import windows
from sloguard.core.state import RingState
from sloguard.core.windows import BLOCK, BucketRing
from tests.unit.core.test_lazy_ring import reads


@pytest.mark.parametrize("seed", range(24))
def test_add_kept_leaves_a_ring_as_add_cells_does(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    if seed % 3 == 2:
        monkeypatch.setattr(windows, "_FEW_CELLS", 0)
        monkeypatch.setattr(windows, "_PENDING_BATCHES", 2)
    rnd = random.Random(seed)
    n = 16
    rows = rnd.choice((2, 5, BLOCK + 3))
    cells_ring, kept_ring = BucketRing(1000, n, rows), BucketRing(1000, n, rows)
    if seed % 4 == 1:
        for ring in (cells_ring, kept_ring):
            ring.slot_total  # noqa: B018 (slot sums kept from the start)
    head = 100
    for _ in range(80):
        action = rnd.random()
        if action < 0.2:
            k = rnd.randrange(1, 20)
            r = np.array(sorted(rnd.randrange(rows) for _ in range(k)), np.intp)
            b = np.array([head + rnd.choice((-20, -3, -1, 0, 0, 1)) for _ in range(k)], np.int64)
            bad = np.array([rnd.random() < 0.3 for _ in range(k)], np.bool_)
            for ring in (cells_ring, kept_ring):
                ring.add(r, b, bad)
        elif action < 0.6:
            # A piece's cells: distinct, of buckets the ring keeps once at the newer of the two heads, as
            # `sloguard.scale.batch` hands them over.
            their_head = head + rnd.choice((-5, -1, 0, 0, 1, 3))
            top = their_head if cells_ring.head is None else max(cells_ring.head, their_head)
            big = rnd.random() < 0.1  # (counts past uint16 now and then: the type widens)
            picked: dict[tuple[int, int], tuple[int, int]] = {}
            for _ in range(rnd.randrange(0, rnd.choice((4, 12, 40)))):
                bucket = their_head - rnd.randrange(0, n)
                if bucket > top - n:
                    t = rnd.randrange(1, 70_000 if big else 9)
                    picked[(bucket, rnd.randrange(rows))] = (t, rnd.randrange(0, t + 1))
            keys = sorted(picked, key=lambda k: ((k[0] % n), k[1]))
            low = rnd.choice((None, min((k[0] for k in keys), default=their_head) - rnd.randrange(0, 3)))
            slot = np.array([b % n for b, _ in keys], np.int64)
            row = np.array([r for _, r in keys], np.intp)
            totals = np.array([picked[k][0] for k in keys], np.int64)
            bads = np.array([picked[k][1] for k in keys], np.int64)
            state = RingState(1000, n, their_head, low, rows, slot * rows + row, totals, bads)
            cells_ring.add_cells(state, np.arange(rows, dtype=np.intp), True)
            kept_ring.add_kept(their_head, low, slot, row, totals, bads)
        elif action < 0.75:
            head += rnd.choice((1, 1, 2, 5, n + 1))
            for ring in (cells_ring, kept_ring):
                ring.advance(head)
        elif action < 0.8:
            rows += rnd.choice((1, 3, BLOCK))
            for ring in (cells_ring, kept_ring):
                ring.ensure_rows(rows)
        else:
            assert reads(kept_ring, rows) == reads(cells_ring, rows)
            end = (kept_ring.head or head) + 1
            for ring in (cells_ring, kept_ring):
                ring.group_sums("g", [end - 9, end - 4, end - 1], end, rows)
        head = max(head, cells_ring.head or head)
    assert reads(kept_ring, rows) == reads(cells_ring, rows)
    assert kept_ring.dtype == cells_ring.dtype
    assert [b.shape for b in kept_ring._total] == [b.shape for b in cells_ring._total]
    end = (kept_ring.head or head) + 1
    a = cells_ring.group_sums("g", [end - 9, end - 4, end - 1], end, rows).tolist()
    assert kept_ring.group_sums("g", [end - 9, end - 4, end - 1], end, rows).tolist() == a


def test_add_kept_holds_no_array_of_the_caller() -> None:
    """The running sums learn the cells at the next read: what they learn are copies, so a caller that
    reuses its arrays (a flush's, sliced per ring) changes nothing."""
    ring = BucketRing(1000, 8, 4)
    ring.add(np.array([0], np.intp), np.array([10], np.int64), np.array([False]))
    ring.group_sums("g", [5, 9], 11, 4)  # (spans: the cells are held for them till the next read)
    slot, row = np.array([2, 3], np.int64), np.array([1, 2], np.intp)
    total, bad = np.array([5, 7], np.int64), np.array([1, 0], np.int64)
    ring.add_kept(11, 10, slot, row, total, bad)
    row[:], total[:], bad[:] = 0, 100, 100
    got = ring.group_sums("g", [5, 9], 12, 4).tolist()
    assert got == [[[1, 5, 7, 0], [1, 5, 7, 0]], [[0, 1, 0, 0], [0, 1, 0, 0]]]
