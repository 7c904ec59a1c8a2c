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
per-slice bad ratio, ``1 − mean(good ratio)``; a float sum, exact to a few ulps.

Exclusions (maintenance windows) plug in through ``excluded``: a mask over the coarse buckets read. An
excluded bucket's events leave the slice before it is judged; a slice whose every bucket is excluded is
not judged; a slice only partly excluded is judged on the events outside the exclusion (and is empty,
with the ``empty`` rule, when none are left).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sloguard._types import F64, I64, Bools
from sloguard.core.spec import Timeslices


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
    return total.reshape(-1, k, rows).sum(axis=1), bad.reshape(-1, k, rows).sum(axis=1), live


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


def sums(total: I64, bad: I64, judged: I64, badness: F64, start: int, end: int) -> SliceSums:
    """`SliceSums` over slices ``[start, end)`` of these per-slice arrays."""
    sl = slice(max(0, start), max(0, end))
    return SliceSums(
        total[sl].sum(axis=0),
        bad[sl].sum(axis=0),
        judged[sl].sum(axis=0),
        badness[sl].sum(axis=0),
    )


__all__ = ["SliceSums", "judge", "per_slice", "sums"]
