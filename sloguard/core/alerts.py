"""Multiwindow, multi-burn-rate alert evaluation (SRE Workbook, "Alerting on SLOs", approach 6).

A tier fires when the error ratio over BOTH its long and its short window exceeds
``factor · (1 − O)`` — equivalently both burn rates exceed ``factor`` — and the long window holds at
least ``min_events`` events. The short window (1/12 of the long one by default) makes the alert stop
soon after the errors stop; the event floor keeps one error in five requests from paging anyone.

Comparisons are done on integers: with ``factor · (1 − O) = a/b`` exact, "``bad/total > a/b``" is
"``bad·b > a·total``", so a burn rate exactly at the threshold never fires and one just above always
does, with no floating-point doubt at the boundary.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.typing as npt

from sloguard.core.spec import AlertTier

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


def exceeds(bad: I64, total: I64, threshold: Fraction) -> B:
    """``bad / total > threshold`` exactly (false for empty windows)."""
    a, b = threshold.numerator, threshold.denominator
    result: B = (bad * b > total * a) & (total > 0)
    return result


def evaluate_tier(
    tier: AlertTier,
    budget: Fraction,
    long_counts: tuple[I64, I64],
    short_counts: tuple[I64, I64],
) -> B:
    """Firing state per series for one tier; counts are ``(total, bad)`` per series."""
    threshold = tier.factor * budget
    long_total, long_bad = long_counts
    short_total, short_bad = short_counts
    firing: B = exceeds(long_bad, long_total, threshold) & exceeds(short_bad, short_total, threshold)
    if tier.min_events > 0:
        firing &= long_total >= tier.min_events
    return firing


def detection_seconds(tier: AlertTier, budget: Fraction, error_ratio: Fraction) -> Fraction:
    """Time for a constant error ratio ``e`` to trip the long window: ``factor·(1−O)·long / e``.

    E.g. a total outage (e = 1) at 99.9 % trips the 14.4x / 1 h tier after 14.4 · 0.001 · 3600 s ≈ 52 s.
    """
    return tier.factor * budget * tier.long_window / error_ratio


def any_firing(states: list[B]) -> B:
    """Series with at least one firing tier."""
    if not states:
        return np.zeros(0, np.bool_)
    out = states[0].copy()
    for s in states[1:]:
        out |= s
    return out
