"""Time-slice budgeting (`sloguard.core.spec.Timeslices`): bucket counts in, judged slices out. Pure.

A slice of ``s`` seconds is ``k = s / coarse`` consecutive coarse buckets (the SLO's coarse resolution
divides the slice), so the aggregator keeps no extra state for it: slices are read from the coarse
ring, which already keeps the period. Slice ``j`` covers ``[j·s, (j+1)·s)`` in epoch time.

Judging one slice of one series, with ``t`` events of which ``b`` bad:

- ``timeslices``: bad when ``(t − b) / t < good_ratio`` (compared on integers: exact); counts 1 or 0.
- ``ratio_timeslices``: contributes its bad ratio ``b / t`` (a float, rounded once).
- a slice with ``t = 0`` is ``empty``: good (0), bad (1) or skip (not judged at all).

Over a window of ``n`` slices: ``judged`` = slices judged, ``bad`` = sum of their contributions, and
the error ratio is ``bad / judged`` (0 when nothing is judged). For ``ratio_timeslices`` that is the mean
per-slice bad ratio, ``1 − mean(good ratio)``: a float sum, added in slice order (`column_sums`), so
every process that holds a series sums its slices to the same float, whatever else it holds.

Exclusions (maintenance windows) plug in through ``excluded``: a mask over the coarse buckets read. An
excluded bucket's events leave the slice before it is judged; a slice whose every bucket is excluded is
not judged; a slice only partly excluded is judged on the events outside the exclusion (and is empty,
with the ``empty`` rule, when none are left).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sloguard._types import F64, I64, Bools
from sloguard.core.spec import EmptySlice, Timeslices


@dataclass(frozen=True, slots=True)
class SliceSums:
    """Per series (one column each) over one span of slices: events, bad events, judged slices, and the
    sum of the judged slices' badness (bad slices, or the sum of per-slice bad ratios)."""

    total: I64
    bad: I64
    judged: I64
    bad_slices: F64


def per_slice(total: I64, bad: I64, k: int, excluded: Bools | None = None) -> tuple[I64, I64, Bools]:
    """Bucket counts ``(buckets, rows)`` → slice counts ``(buckets / k, rows)``, and which slices are
    live (not wholly excluded). ``excluded``: one flag per bucket (every series alike)."""
    n, rows = total.shape
    if n % k:
        raise ValueError("the buckets read must be whole slices")
    live: Bools = np.ones(n // k, np.bool_)
    if excluded is not None:
        keep = ~excluded[:, None]
        total, bad = total * keep, bad * keep
        live = ~np.all(excluded.reshape(-1, k), axis=1)
    # The slice count spelled out, not -1: with no series yet (rows 0) numpy cannot infer it.
    return total.reshape(n // k, k, rows).sum(axis=1), bad.reshape(n // k, k, rows).sum(axis=1), live


def judge(b: Timeslices, total: I64, bad: I64, live: Bools) -> tuple[I64, F64]:
    """Per slice and series: whether it is judged (0/1) and its badness (see the module docstring)."""
    empty = total == 0
    if b.good_ratio is not None:
        p, q = b.good_ratio.numerator, b.good_ratio.denominator
        badness = ((total - bad) * q < total * p).astype(np.float64)  # never true when empty
    else:
        badness = np.zeros(total.shape, np.float64)
        np.divide(bad, total, out=badness, where=~empty)
    judged = np.broadcast_to(live[:, None], total.shape).copy()
    if b.empty == "skip":
        judged &= ~empty
    elif b.empty == "bad":
        badness[empty] = 1.0
    badness[~judged] = 0.0
    return judged.astype(np.int64), badness


def column_sums(a: F64) -> F64:
    """Per-series sums of ``a`` (slices x series), added slice after slice in order, whatever the number
    of series.

    Float addition is not associative, so the order decides the last bit. numpy sums a 2-D array down
    its rows one row at a time (sequential per column), but a single column is one contiguous run, which
    it sums pairwise: the same series' slices would then give another float in a stage-2 partition that
    holds only that series than in the single process, which holds others too. One column (or none) is
    therefore summed by an explicit running sum, the order numpy uses for two or more (a test pins both)."""
    out: F64 = np.add.accumulate(a, axis=0)[-1] if a.shape[1] <= 1 and len(a) else a.sum(axis=0)
    return out


def sums(total: I64, bad: I64, judged: I64, badness: F64, start: int, end: int) -> SliceSums:
    """`SliceSums` over slices ``[start, end)`` of these per-slice arrays."""
    sl = slice(max(0, start), max(0, end))
    return SliceSums(
        total[sl].sum(axis=0),
        bad[sl].sum(axis=0),
        judged[sl].sum(axis=0),
        column_sums(badness[sl]),
    )


#: Judges slices ``[a, b)`` of every series: (judged 0/1, badness), shape ``(b − a, rows)``.
Judge = Callable[[int, int], tuple[I64, F64]]


class JudgedRing:
    """Judged slices kept between reads, so a tick judges only the slices that are new or changed.

    Slot ``j mod n`` holds slice ``j`` (``held`` says which slice each slot holds, −1: none). A slice is
    judged once, when first read, and kept until `forget` (events landed in it: the aggregator calls
    it on every ingest) or until its slot is needed for a newer slice. Window sums then read the slots
    in place: one pass over the window's slices, no judging, no copy of the bucket counts.
    """

    __slots__ = ("badness", "empty", "held", "judged", "n")

    def __init__(self, n: int, empty: EmptySlice = "good") -> None:
        self.n = n
        #: How a slice without events is judged: what the held slices are for a series new since.
        self.empty = empty
        self.held = np.full(n, -1, np.int64)
        self.judged = np.zeros((n, 0), np.int8)
        self.badness = np.zeros((n, 0), np.float64)

    def forget(self, slices: I64 | None = None) -> None:
        """Drop the judgement of ``slices`` (None: of every slice)."""
        if slices is None:
            self.held[:] = -1
            return
        slots = slices % self.n
        self.held[slots[self.held[slots] == slices]] = -1

    def fill(self, lo: int, hi: int, rows: int, judge_slices: Judge) -> None:
        """Make sure slices ``[lo, hi)`` of ``rows`` series are judged (``hi − lo <= n``)."""
        if hi - lo > self.n:
            raise ValueError("more slices than the ring holds")
        have = self.judged.shape[1]
        if rows < have:
            self.judged = np.zeros((self.n, rows), np.int8)
            self.badness = np.zeros((self.n, rows), np.float64)
            self.held[:] = -1
        elif rows > have:
            # A series new since a slice was judged had no event in it (an event would have made the
            # aggregator `forget` the slice): its held slices are empty ones.
            extra = rows - have
            new_judged = np.full((self.n, extra), 0 if self.empty == "skip" else 1, np.int8)
            new_badness = np.full((self.n, extra), 1.0 if self.empty == "bad" else 0.0)
            self.judged = np.concatenate([self.judged, new_judged], axis=1)
            self.badness = np.concatenate([self.badness, new_badness], axis=1)
        want = np.arange(lo, hi, dtype=np.int64)
        missing = want[self.held[want % self.n] != want]
        if not len(missing):
            return
        # Runs of consecutive missing slices, each judged with one read of the ring.
        breaks = np.flatnonzero(np.diff(missing) != 1) + 1
        for run in np.split(missing, breaks):
            a, b = int(run[0]), int(run[-1]) + 1
            judged, badness = judge_slices(a, b)
            slots = run % self.n
            self.judged[slots] = judged
            self.badness[slots] = badness
            self.held[slots] = run

    def sums(self, lo: int, hi: int) -> tuple[I64, F64]:
        """Judged slices and summed badness per series over slices ``[lo, hi)`` (all judged: `fill`)."""
        judged = np.zeros(self.judged.shape[1], np.int64)
        badness = np.zeros(self.judged.shape[1], np.float64)
        if hi <= lo:
            return judged, badness
        a, b = lo % self.n, (hi - 1) % self.n + 1
        parts = [slice(a, b)] if a < b else [slice(a, self.n), slice(0, b)]
        for part in parts:
            judged += self.judged[part].sum(axis=0, dtype=np.int64)
            badness += column_sums(self.badness[part])
        return judged, badness


__all__ = ["JudgedRing", "SliceSums", "column_sums", "judge", "per_slice", "sums"]
