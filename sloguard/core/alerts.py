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

from sloguard._types import F64, I64, Bools
from sloguard.core.spec import AlertTier


def exceeds(bad: I64 | F64, total: I64 | F64, threshold: Fraction) -> Bools:
    """``bad / total > threshold`` exactly (false for empty windows; ``bad`` may be a float sum of
    per-slice bad ratios, compared as the double it is)."""
    a, b = threshold.numerator, threshold.denominator
    result: Bools = np.greater(bad * b, total * a)
    result &= total > 0  # (in place: one boolean array fewer per tier and window)
    return result


def evaluate_tier(
    tier: AlertTier,
    budget: Fraction,
    long_counts: tuple[I64 | F64, I64 | F64],
    short_counts: tuple[I64 | F64, I64 | F64],
    long_events: I64 | None = None,
) -> Bools:
    """Firing state per series for one tier; counts are ``(total, bad)`` per series: events, or
    judged slices and their badness (time-slice budgeting), in which case ``long_events`` gives the
    long window's events for the ``min_events`` guard (default: ``total``)."""
    threshold = tier.factor * budget
    long_total, long_bad = long_counts
    short_total, short_bad = short_counts
    firing: Bools = exceeds(long_bad, long_total, threshold) & exceeds(short_bad, short_total, threshold)
    if tier.min_events > 0:
        firing &= (long_total if long_events is None else long_events) >= tier.min_events
    return firing
