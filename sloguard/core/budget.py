"""Error ratio, burn rate, error budget and exhaustion ETA — vectorised over series.

Definitions (Google SRE Workbook, "Implementing SLOs" and "Alerting on SLOs"):

- error ratio over W:        ``e_W = bad_W / total_W``  (0 when ``total_W = 0``)
- burn rate over W:          ``b_W = e_W / (1 − O)``
- budget remaining (period): ``1 − bad_P / ((1 − O) · total_P)``  (1 when empty; may go negative)
- budget consumed:           ``bad_P / ((1 − O) · total_P)``
- exhaustion ETA:            ``remaining · P / b_1h`` seconds (0 when already exhausted, none when
  the 1 h burn rate is 0)

With ``1 − O = p/q`` exact, each ratio is computed as ONE division of two exact integers (``bad·q`` and
``total·p``), which IEEE 754 rounds correctly: the float equals the exact rational rounded once, the
same number an independent computation with ``fractions.Fraction`` gives. This holds while the
products stay below 2^53 (≈ 9·10^15: e.g. 10^10 events at a 99.999 % objective).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from sloguard._types import F64, I64


def error_ratio(bad: I64 | F64, total: I64 | F64) -> F64:
    """``bad / total`` with 0 for empty windows (any shape)."""
    out = np.zeros(total.shape, np.float64)
    # One division where the total is positive, written in place: the same IEEE quotients as dividing
    # the gathered non-empty entries, without the gathers and the scatter (a tick divides every series).
    np.divide(bad, total, out=out, where=total > 0)
    return out


def burn_rate(bad: I64 | F64, total: I64 | F64, budget: Fraction) -> F64:
    """``(bad / total) / (1 − O)`` = ``bad·q / (total·p)``, correctly rounded; 0 for empty windows."""
    p, q = budget.numerator, budget.denominator
    out = np.zeros(total.shape, np.float64)
    # (p is 1 for the usual objectives, 99.9 % -> 1/1000: ``total·1`` would be a copy of the same values)
    np.divide(bad * q, total if p == 1 else total * p, out=out, where=total > 0)
    return out


def budget_remaining(bad: I64 | F64, total: I64 | F64, budget: Fraction) -> F64:
    """``1 − bad / ((1 − O)·total)`` = ``(total·p − bad·q) / (total·p)``; 1 for an empty period."""
    p, q = budget.numerator, budget.denominator
    out = np.ones(total.shape, np.float64)
    tp = total if p == 1 else total * p
    np.divide(tp - bad * q, tp, out=out, where=total > 0)
    return out


def budget_consumed(bad: I64 | F64, total: I64 | F64, budget: Fraction) -> F64:
    """``bad / ((1 − O)·total)``: 1.0 means the period's whole budget is spent."""
    return burn_rate(bad, total, budget)


def exhaustion_eta(remaining: F64, burn_1h: F64, period_seconds: int) -> F64:
    """Seconds until the budget is gone at the current (1 h) burn rate: ``remaining · P / b``.

    A burn rate of 1 spends the whole budget in exactly one period, so a fraction ``remaining`` of it
    lasts ``remaining · P / b``. NaN (no ETA) when not burning; 0 when already exhausted.
    """
    out = np.full(len(remaining), np.nan, np.float64)
    burning = burn_1h > 0
    out[burning] = np.maximum(remaining[burning], 0.0) * period_seconds / burn_1h[burning]
    out[remaining <= 0] = 0.0
    return out
