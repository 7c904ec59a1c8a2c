"""One series' history, read on demand (the UI's detail page): its counts per bucket, and the period's
burn-down computed from them.

Nothing here runs per tick: `Aggregator.bucket_counts` copies one series' column (or the sum of all
columns) out of a ring when a page asks for it, and these functions turn it into points. Every point is
a sum of whole buckets, so it is exact, like the windows (`sloguard.core.windows`).

Burn-down (the SLO period ``[start, end)`` in coarse buckets, ``T`` events and ``B(t)`` bad events before
``t``, ``1 − O = p/q``)::

    remaining(t) = 1 − B(t) / ((1 − O) · T) = (T·p − B(t)·q) / (T·p)      (1 when T = 0)
    ideal(t)     = 1 − (t − start) / (end − start)

``remaining`` starts at 1 (100 %) at the period start and ends, at ``end``, at exactly the budget left of
the snapshot (`budget.budget_remaining`: the same integers, the same one division). ``ideal`` is the
straight line of a budget spent evenly over the period, down to 0 at its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from sloguard._types import F64, I64


@dataclass(frozen=True, slots=True)
class BucketCounts:
    """Events and bad events per bucket of ``res_ms``, the first bucket starting at ``start_ms``."""

    res_ms: int
    start_ms: int
    total: I64
    bad: I64
    #: Where the last bucket ends when it is cut short (a period ending at a fine bucket, not a coarse
    #: one); None: it is whole.
    end: int | None = None

    @property
    def end_ms(self) -> int:
        whole = self.start_ms + len(self.total) * self.res_ms
        return whole if self.end is None else min(whole, self.end)

    def regroup(self, max_points: int) -> BucketCounts:
        """Sums of ``g`` consecutive buckets, ``g`` the smallest giving at most ``max_points`` groups.

        Groups end at ``end_ms``; buckets left over at the start (fewer than ``g``) are dropped, so every
        group is whole and exact.
        """
        n = len(self.total)
        g = max(1, -(-n // max(1, max_points)))
        if g == 1:
            return self
        keep = n // g * g
        cut = n - keep
        return BucketCounts(
            self.res_ms * g,
            self.start_ms + cut * self.res_ms,
            self.total[cut:].reshape(-1, g).sum(axis=1),
            self.bad[cut:].reshape(-1, g).sum(axis=1),
            self.end,
        )


@dataclass(frozen=True, slots=True)
class BurnDown:
    """The period's budget over time (see the module docstring): one point per ``t_ms``."""

    t_ms: I64
    remaining: F64
    ideal: F64
    total: int
    bad: int


def burn_down(counts: BucketCounts, budget: Fraction, max_points: int) -> BurnDown:
    """The burn-down of a period given as ``counts``, at most ``max_points + 1`` points (the start, then
    the ends of groups of whole buckets, the last at ``counts.end_ms``); exact at every point."""
    n = len(counts.total)
    g = max(1, -(-n // max(1, max_points)))
    idx = np.unique(np.append(np.arange(0, n, g), n))
    cum_bad = np.concatenate(([0], np.cumsum(counts.bad, dtype=np.int64)))[idx]
    total = int(counts.total.sum())
    p, q = budget.numerator, budget.denominator
    if total:
        tp = np.full(len(idx), total * p, np.int64)
        remaining: F64 = (tp - cum_bad * q) / tp
    else:
        remaining = np.ones(len(idx), np.float64)
    t_ms = np.minimum(counts.start_ms + idx.astype(np.int64) * counts.res_ms, counts.end_ms)
    span = max(1, counts.end_ms - counts.start_ms)
    ideal: F64 = 1.0 - (t_ms - counts.start_ms) / span
    return BurnDown(t_ms, remaining, ideal, total, int(cum_bad[-1]))
