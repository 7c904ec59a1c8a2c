"""Event-time buckets: a ring of good/bad counts per series, and exact window sums over it.

Time is cut into buckets of ``res_ms``; bucket ``k`` holds events with ``k·res <= ts < (k+1)·res``.
A ring of ``n`` slots keeps the buckets ``(head − n, head]`` where ``head`` is the newest bucket seen
(from an event or from :meth:`BucketRing.advance`). Buckets newer than ``head`` are empty by definition,
so reading never has to mutate. A window ``[start, end)`` whose edges are bucket boundaries is the exact
sum of the buckets inside it: no interpolation, no approximation.

Layout is slot-major (``counts[slot, row]``): events of one batch mostly share a few time buckets, so the
scatter-add touches a few contiguous rows of memory instead of jumping across every series.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


class EvictedWindowError(ValueError):
    """A window reaches back past data the ring has already dropped."""


class BucketRing:
    """Good/bad event counts per (series row, time bucket) for the last ``n`` buckets."""

    __slots__ = ("_bad", "_cap", "_total", "head", "low", "n", "res_ms")

    def __init__(self, res_ms: int, n: int, rows: int = 1) -> None:
        if res_ms <= 0 or n <= 0:
            raise ValueError("resolution and slot count must be positive")
        self.res_ms = res_ms
        self.n = n
        self._cap = max(1, rows)
        self._total = np.zeros((n, self._cap), np.int64)
        self._bad = np.zeros((n, self._cap), np.int64)
        #: Newest bucket seen (None until the first event or advance).
        self.head: int | None = None
        #: Oldest bucket that ever received an event (to tell "evicted" from "never had data").
        self.low: int | None = None

    @property
    def rows(self) -> int:
        return self._cap

    def ensure_rows(self, rows: int) -> None:
        """Make room for ``rows`` series (amortised doubling)."""
        if rows <= self._cap:
            return
        cap = self._cap
        while cap < rows:
            cap *= 2
        for name in ("_total", "_bad"):
            old = getattr(self, name)
            new = np.zeros((self.n, cap), np.int64)
            new[:, : self._cap] = old
            setattr(self, name, new)
        self._cap = cap

    def oldest_kept(self) -> int | None:
        """Oldest bucket number still in the ring."""
        return None if self.head is None else self.head - self.n + 1

    def advance(self, bucket: int) -> None:
        """Move ``head`` forward to ``bucket`` (never backwards), clearing slots that are reused."""
        if self.head is None:
            self.head = bucket
            return
        if bucket <= self.head:
            return
        steps = bucket - self.head
        if steps >= self.n:
            self._total.fill(0)
            self._bad.fill(0)
        else:
            slots = np.arange(self.head + 1, bucket + 1) % self.n
            self._total[slots] = 0
            self._bad[slots] = 0
        self.head = bucket

    def add(self, rows: npt.NDArray[np.intp], buckets: I64, bad: npt.NDArray[np.bool_]) -> int:
        """Count one event per element; returns how many were too old for the ring (and dropped).

        ``head`` first moves to the newest bucket of the batch, so the result does not depend on the
        order of events inside the batch.
        """
        if len(buckets) == 0:
            return 0
        self.advance(int(buckets.max()))
        assert self.head is not None
        # `low` includes events dropped as too old: a window reaching back to them cannot be exact.
        low = int(buckets.min())
        self.low = low if self.low is None else min(self.low, low)
        floor = self.head - self.n + 1
        keep = buckets >= floor
        dropped = int(len(buckets) - np.count_nonzero(keep))
        if dropped:
            rows, buckets, bad = rows[keep], buckets[keep], bad[keep]
            if len(buckets) == 0:
                return dropped
        flat = (buckets % self.n) * self._cap + rows
        np.add.at(self._total.reshape(-1), flat, 1)
        bad_flat = flat[bad]
        if len(bad_flat):
            np.add.at(self._bad.reshape(-1), bad_flat, 1)
        return dropped

    def _slices(self, start: int, end: int) -> list[slice]:
        """Ring slot slices covering buckets ``[start, end)`` clipped to what the ring holds."""
        if self.head is None:
            return []
        lo = max(start, self.head - self.n + 1)
        hi = min(end, self.head + 1)
        if lo >= hi:
            return []
        a, b = lo % self.n, hi % self.n
        if a < b:
            return [slice(a, b)]
        return [slice(a, self.n), slice(0, b)] if b else [slice(a, self.n)]

    def check_retained(self, start: int) -> None:
        """Raise if buckets from ``start`` on may have been evicted while holding data."""
        if self.head is None or self.low is None:
            return
        floor = self.head - self.n + 1
        if start < floor and self.low < floor:
            raise EvictedWindowError(
                f"window starts at bucket {start} but only buckets from {floor} on are kept "
                "(evaluation time is too far behind the newest event)"
            )

    def sums(self, start: int, end: int, rows: int) -> tuple[I64, I64]:
        """Total and bad counts per row over buckets ``[start, end)``."""
        total = np.zeros(rows, np.int64)
        bad = np.zeros(rows, np.int64)
        for s in self._slices(start, end):
            total += self._total[s, :rows].sum(axis=0)
            bad += self._bad[s, :rows].sum(axis=0)
        return total, bad

    def nested_sums(self, end: int, lengths: list[int], rows: int) -> list[tuple[I64, I64]]:
        """Sums over ``[end − L, end)`` for each length ``L`` (in buckets), sharing the work.

        Windows that end together are nested, so each is the previous one plus the slots between:
        the cost is that of the longest window only.
        """
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        out: list[tuple[I64, I64]] = [(np.zeros(0, np.int64), np.zeros(0, np.int64))] * len(lengths)
        total = np.zeros(rows, np.int64)
        bad = np.zeros(rows, np.int64)
        done = 0
        for i in order:
            length = lengths[i]
            self.check_retained(end - length)
            if length > done:
                t, b = self.sums(end - length, end - done, rows)
                total = total + t
                bad = bad + b
                done = length
            out[i] = (total, bad)
        return out

    def merge_from(self, other: BucketRing, row_map: npt.NDArray[np.intp]) -> None:
        """Add ``other``'s counts into this ring; ``row_map[i]`` is this ring's row for other's row ``i``.

        Both rings first move to the newer head, so each keeps exactly the buckets it would have kept
        had it seen the other's events itself.
        """
        if other.res_ms != self.res_ms or other.n != self.n:
            raise ValueError("cannot merge rings of different shape")
        if other.head is None:
            return
        self.advance(other.head)
        assert self.head is not None
        src_total, src_bad = other._total, other._bad
        if other.head < self.head:
            # Drop other's buckets that this (newer) ring no longer keeps.
            src_total, src_bad = src_total.copy(), src_bad.copy()
            gone = np.arange(other.head - other.n + 1, min(other.head, self.head - self.n) + 1)
            if len(gone):
                src_total[gone % self.n] = 0
                src_bad[gone % self.n] = 0
        m = len(row_map)
        if m == 0:
            return
        # row_map may send several rows to one (overflow): add.at on the transposed view handles that.
        np.add.at(self._total.T, row_map, src_total[:, :m].T)
        np.add.at(self._bad.T, row_map, src_bad[:, :m].T)
        if other.low is not None:
            self.low = other.low if self.low is None else min(self.low, other.low)
