"""Latency histograms per time slot, stored sparsely.

A dense HDR counts array is ~26 KB (2 significant figures, 1 µs .. 1 h). Keeping one per group, per slot
and per window costs hundreds of MB for a few hundred endpoints, while a slot of a quiet endpoint holds
a handful of distinct values. So each slot keeps only its non-zero cells, as sorted unique
``row · counts_len + hdr_index`` keys with their counts; a window is materialised densely (one array
per window, transient) only when it is evaluated.
"""

from __future__ import annotations

import itertools

import numpy as np

from sloguard._types import I64, Intp
from sloguard.core.state import HistRingState
from sloguard.core.windows import Ring

_EMPTY = np.zeros(0, np.int64)
#: `HistRing.add_slots` merges its cells into each slot's (`_merged`) when the slots it writes hold more
#: than this many times as many cells, else sorts them all together: a merge costs the new cells' search
#: and one pass over the slot, a sort more passes over both (measured on bench-scale's records: about
#: even at 8; a live piece's few cells into a long window's slot, 40 us merged vs 110 us sorted).
_MERGE_RATIO = 8


def _summed(offsets: I64, keys: I64, counts: I64) -> tuple[I64, I64, I64]:
    """Cells ``(offsets, keys)`` (offsets ``>= 0``) in ascending order, equal ones summed: their offsets,
    keys and counts. One sort of ``offset · span + key`` (``span``: past the largest key) when that fits
    in 63 bits, else of the pairs."""
    span = int(keys.max()) + 1
    if (int(offsets.max()) + 1) * span < 1 << 63:
        code = offsets * span + keys
        order = np.argsort(code, kind="stable")
        code = code[order]
        first = np.flatnonzero(np.concatenate(([True], code[1:] != code[:-1])))
        code = code[first]
        off = code // span  # (np.divmod: its remainder is several times slower than this)
        return off, code - off * span, np.add.reduceat(counts[order], first, dtype=np.int64)
    order = np.lexsort((keys, offsets))
    o, k = offsets[order], keys[order]
    first = np.flatnonzero(np.concatenate(([True], (o[1:] != o[:-1]) | (k[1:] != k[:-1]))))
    return o[first], k[first], np.add.reduceat(counts[order], first, dtype=np.int64)


def _sorted_sums(code: I64, counts: I64) -> tuple[I64, I64]:
    """``code`` sorted, equal ones once, with the sums of their ``counts``."""
    order = np.argsort(code, kind="stable")  # (stable: timsort, which takes sorted runs as they are)
    code = code[order]
    counts = counts[order]
    step = code[1:] != code[:-1]
    if step.all():
        return code, counts
    first = np.flatnonzero(np.concatenate(([True], step)))
    return code[first], np.add.reduceat(counts, first)


def _slot_runs(offsets: I64, keys: I64, counts: I64) -> list[tuple[int, I64, I64]]:
    """`_summed`'s cells cut slot by slot: each offset with its keys and counts."""
    edges = np.flatnonzero(np.concatenate(([True], offsets[1:] != offsets[:-1], [True]))).tolist()
    return [(int(offsets[a]), keys[a:z], counts[a:z]) for a, z in itertools.pairwise(edges)]


def _merged(old_keys: I64, old_counts: I64, keys: I64, counts: I64) -> tuple[I64, I64]:
    """Sorted unique ``keys`` with their ``counts`` added into a slot's (sorted unique). The counts are
    a new array; so are the keys, unless none is new (then the slot's, which nothing writes in place)."""
    if not len(old_keys):
        return keys.copy(), counts.copy()
    at = np.searchsorted(old_keys, keys)
    hit = at < len(old_keys)
    hit[hit] = old_keys[at[hit]] == keys[hit]
    if hit.all():
        summed = old_counts.copy()
        summed[at] += counts
        return old_keys, summed
    summed = old_counts
    if hit.any():
        summed = old_counts.copy()
        summed[at[hit]] += counts[hit]
        miss = ~hit
        at, keys, counts = at[miss], keys[miss], counts[miss]
    # New key i goes before old key ``at[i]`` (``at`` ascends with the keys): at ``at[i] + i`` of the
    # merged arrays, the old ones in the places left (one pass each; ``np.insert`` sorts the places
    # and builds its mask twice over, once per array).
    place = at + np.arange(len(at))
    old = np.ones(len(old_keys) + len(at), np.bool_)
    old[place] = False
    merged_keys, merged_counts = np.empty(len(old), np.int64), np.empty(len(old), np.int64)
    merged_keys[place], merged_counts[place] = keys, counts
    merged_keys[old], merged_counts[old] = old_keys, summed
    return merged_keys, merged_counts


class HistRing(Ring):
    """Sparse HDR counts for the last ``n`` slots of ``slot_ms`` each (one latency window).

    ``window`` seconds are ``k = window / slot`` slots; the ring keeps ``n >= k + 1`` so the open slot
    and a little clock skew fit too. As with :class:`~sloguard.core.windows.BucketRing`, ``head`` is
    the newest slot seen and slots newer than it are empty by definition.
    """

    def __init__(self, window: int, slot_s: int, n: int, counts_len: int) -> None:
        if window % slot_s or n <= window // slot_s:
            raise ValueError("window must be a whole number of slots, and the ring longer than it")
        self.window = window
        self.slot_ms = slot_s * 1000
        self.k = window // slot_s
        super().__init__(n)
        self.counts_len = counts_len
        self.keys: list[I64] = [_EMPTY] * n
        self.counts: list[I64] = [_EMPTY] * n

    def _clear(self, buckets: range) -> None:
        for b in buckets:
            self.keys[b % self.n] = _EMPTY
            self.counts[b % self.n] = _EMPTY

    def add(self, buckets: I64, keys: I64, counts: I64) -> int:
        """Add ``counts`` at cell ``keys`` of slot ``buckets``; returns events dropped as too old.

        The new cells are put in ``(bucket, key)`` order and equal ones summed (one sort for every slot),
        then merged into each slot's sorted keys (``searchsorted``; ``insert`` for keys it lacked), not
        sorted again with them: a slot of a long window holds every group's cells, a batch adds a few.
        A slot written gets a new counts array (a reader may hold the old one), and a new keys array
        unless it gained no key (keys are never written in place); both stay sorted and unique."""
        if len(buckets) == 0:
            return 0
        floor, low = self._open(buckets)
        dropped = 0
        if low < floor:
            keep = buckets >= floor
            dropped = int(counts[~keep].sum())
            buckets, keys, counts = buckets[keep], keys[keep], counts[keep]
            if len(buckets) == 0:
                return dropped
        bucket, cell, added = _summed(buckets - floor, keys, counts)
        edges = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1], [True]))).tolist()
        for a, z in itertools.pairwise(edges):
            slot = (int(bucket[a]) + floor) % self.n
            self.keys[slot], self.counts[slot] = _merged(
                self.keys[slot], self.counts[slot], cell[a:z], added[a:z]
            )
        return dropped

    def add_slots(self, buckets: I64, lengths: I64, keys: I64, counts: I64) -> int:
        """`add` of cells given slot by slot, as states hold them: ``lengths[i]`` cells of ``keys`` and
        ``counts`` (in turn) at bucket ``buckets[i]``; several runs may name one bucket (the same slot of
        several pieces). Returns events dropped as too old. Same slots, keys and counts as `add`.

        For stage 2, which adds the slots of several pieces at once: the new cells are coded
        ``offset · span + key`` (``offset`` from the oldest slot kept, ``span`` past every key), and
        either summed in one sort and merged into each slot (`_merged`), or, when they are not few next
        to what the slots hold (`_MERGE_RATIO`), sorted together with the slots' own cells (those are a
        sorted run already), which then need no merge. Every slot written gets new arrays."""
        if not len(buckets):
            return 0
        if not lengths.all():  # (a state's runs are never empty, and `add` would not see such a bucket)
            buckets, lengths = buckets[lengths > 0], lengths[lengths > 0]
            if not len(buckets):
                return 0
        floor, low = self._open(buckets)
        offsets = buckets - floor
        dropped = 0
        if low < floor:
            kept = offsets >= 0
            cell_kept = np.repeat(kept, lengths)
            dropped = int(counts[~cell_kept].sum())
            keys, counts = keys[cell_kept], counts[cell_kept]
            offsets, lengths = offsets[kept], lengths[kept]
            if not len(offsets):
                return dropped
        written = sorted(set(offsets.tolist()))
        slots = [(b + floor) % self.n for b in written]
        held = sum(len(self.keys[s]) for s in slots)
        span = max([int(keys.max()), *(int(self.keys[s][-1]) for s in slots if len(self.keys[s]))]) + 1
        if (written[-1] + 1) * span >= 1 << 63:  # (keys too large to code with their slot)
            for b, k, c in _slot_runs(*_summed(np.repeat(offsets, lengths), keys, counts)):
                s = (b + floor) % self.n
                self.keys[s], self.counts[s] = _merged(self.keys[s], self.counts[s], k, c)
            return dropped
        code = np.repeat(offsets * span, lengths)
        code += keys
        if held > _MERGE_RATIO * len(code):
            code, added = _sorted_sums(code, counts)
            ends = np.searchsorted(code, [(b + 1) * span for b in written]).tolist()
            for b, s, a, z in zip(written, slots, [0, *ends[:-1]], ends, strict=True):
                self.keys[s], self.counts[s] = _merged(
                    self.keys[s], self.counts[s], code[a:z] - b * span, added[a:z]
                )
            return dropped
        if held:  # the written slots' cells first (ascending: one sorted run), then the new ones
            code = np.concatenate(
                [*(self.keys[s] + b * span for b, s in zip(written, slots, strict=True)), code]
            )
            counts = np.concatenate([*(self.counts[s] for s in slots), counts])
        code, added = _sorted_sums(code, counts)
        ends = np.searchsorted(code, [(b + 1) * span for b in written]).tolist()
        for b, s, a, z in zip(written, slots, [0, *ends[:-1]], ends, strict=True):
            self.keys[s] = code[a:z] - b * span
            # (a copy, unless one slot: a slice would keep every slot's cells of this call alive as long
            # as any one slot is)
            self.counts[s] = added if len(slots) == 1 else added[a:z].copy()
        return dropped

    def window_counts(self, now_ms: int, rows: int) -> tuple[tuple[int, int], I64]:
        """Dense counts ``(rows, counts_len)`` over the window ending at ``now`` aligned to a slot."""
        end = now_ms // self.slot_ms
        start = end - self.k
        dense = np.zeros(rows * self.counts_len, np.int64)
        if self.head is not None:
            for b in range(max(start, self.head - self.n + 1), min(end, self.head + 1)):
                keys = self.keys[b % self.n]
                if len(keys):
                    np.add.at(dense, keys, self.counts[b % self.n])
        return (start * self.slot_ms, end * self.slot_ms), dense.reshape(rows, self.counts_len)

    def merge_from(self, other: HistRing, row_map: Intp) -> None:
        """Add ``other``'s slots (rows renumbered through ``row_map``) into this ring."""
        if other.head is None:
            return
        buckets, keys, counts = [], [], []
        for b in range(other.head - other.n + 1, other.head + 1):
            k = other.keys[b % other.n]
            if len(k):
                rows, cells = np.divmod(k, other.counts_len)
                buckets.append(np.full(len(k), b, np.int64))
                keys.append(row_map[rows].astype(np.int64) * self.counts_len + cells)
                counts.append(other.counts[b % other.n])
        self.advance(other.head)
        if buckets:
            self.add(np.concatenate(buckets), np.concatenate(keys), np.concatenate(counts))
        if other.low is not None:
            self.low = other.low if self.low is None else min(self.low, other.low)

    def cells(self) -> int:
        """Stored non-zero cells (memory is ~16 bytes per cell)."""
        return sum(len(k) for k in self.keys)

    def dump(self) -> HistRingState:
        """The non-empty slots still retained."""
        buckets: list[int] = []
        keys: list[I64] = []
        counts: list[I64] = []
        if self.head is not None:
            for b in range(self.head - self.n + 1, self.head + 1):
                k = self.keys[b % self.n]
                if len(k):
                    buckets.append(b)
                    keys.append(k)
                    counts.append(self.counts[b % self.n])
        return HistRingState(
            slot_ms=self.slot_ms,
            n=self.n,
            head=self.head,
            low=self.low,
            buckets=np.array(buckets, np.int64),
            lengths=np.array([len(k) for k in keys], np.int64),
            keys=np.concatenate(keys) if keys else _EMPTY,
            counts=np.concatenate(counts) if counts else _EMPTY,
        )

    def load(self, state: HistRingState) -> None:
        """Put ``state`` into this (empty) ring of the same shape."""
        if (state.slot_ms, state.n) != (self.slot_ms, self.n):
            raise ValueError("histogram ring state of another shape")
        if self.head is not None:
            raise ValueError("load() needs an empty ring")
        ends = np.cumsum(state.lengths).tolist()
        starts = [0, *ends][:-1]
        for b, a, e in zip(state.buckets.tolist(), starts, ends, strict=True):
            self.keys[b % self.n] = state.keys[a:e].copy()
            self.counts[b % self.n] = state.counts[a:e].copy()
        self.head, self.low = state.head, state.low
