"""`core.budget` and `core.alerts` on arrays: each ratio is the exact rational rounded once (the integer
counts' ``Fraction``), 0 (1 for the budget left) where the total is 0, for one row of series or several
rows at once; counts given as floats (time slices' badness) give what dividing the gathered non-empty
entries gives; `exceeds` is the exact comparison."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.core import alerts
from sloguard.core import budget as bm

budgets = st.sampled_from(
    [Fraction(1, 1000), Fraction(1, 100), Fraction(3, 1000), Fraction(1, 3), Fraction(7, 9)]
)
series = st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)), max_size=30).map(
    lambda pairs: [(min(b, t), t) for b, t in pairs] + [(0, 0)]
)


def arrays(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([b for b, _ in pairs], np.int64), np.array([t for _, t in pairs], np.int64)


@settings(max_examples=200, deadline=None)
@given(pairs=series, budget=budgets, rows=st.sampled_from([1, 2, 3]))
def test_ratios_are_the_exact_fractions_rounded_once(
    pairs: list[tuple[int, int]], budget: Fraction, rows: int
) -> None:
    bad, total = arrays(pairs * rows)
    if rows > 1:  # several windows at once: the same entries, in a (rows, series) array
        bad, total = bad.reshape(rows, -1), total.reshape(rows, -1)
    er, br = bm.error_ratio(bad, total), bm.burn_rate(bad, total, budget)
    left, used = bm.budget_remaining(bad, total, budget), bm.budget_consumed(bad, total, budget)
    assert er.shape == br.shape == left.shape == used.shape == total.shape
    for i, (b, t) in enumerate(zip(bad.reshape(-1).tolist(), total.reshape(-1).tolist(), strict=True)):
        exact = Fraction(b, t) if t else Fraction(0)
        assert er.reshape(-1)[i] == float(exact)
        assert br.reshape(-1)[i] == float(exact / budget)
        assert used.reshape(-1)[i] == float(exact / budget)
        assert left.reshape(-1)[i] == (float(1 - exact / budget) if t else 1.0)
        for factor in (Fraction(144, 10), Fraction(6), Fraction(1)):
            got = alerts.exceeds(bad.reshape(-1)[i : i + 1], total.reshape(-1)[i : i + 1], factor * budget)
            assert bool(got[0]) == (t > 0 and exact > factor * budget)


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.tuples(st.floats(0, 50, allow_nan=False), st.integers(0, 60)), max_size=30),
    budget=budgets,
)
def test_float_counts_give_the_gathered_quotients(values: list[tuple[float, int]], budget: Fraction) -> None:
    """Time-slice budgeting: badness (a float sum) over judged slices (integers)."""
    bad = np.array([b if t else 0.0 for b, t in values], np.float64)
    total = np.array([t for _, t in values], np.int64)
    nz = total > 0
    p, q = budget.numerator, budget.denominator
    want = np.zeros(len(total))
    want[nz] = bad[nz] / total[nz]
    assert bm.error_ratio(bad, total).tobytes() == want.tobytes()
    want[nz] = (bad[nz] * q) / (total[nz] * p)
    assert bm.burn_rate(bad, total, budget).tobytes() == want.tobytes()
    want = np.ones(len(total))
    want[nz] = (total[nz] * p - bad[nz] * q) / (total[nz] * p)
    assert bm.budget_remaining(bad, total, budget).tobytes() == want.tobytes()
    a, b = (Fraction(144, 10) * budget).numerator, (Fraction(144, 10) * budget).denominator
    assert (
        alerts.exceeds(bad, total, Fraction(144, 10) * budget).tolist()
        == ((bad * b > total * a) & nz).tolist()
    )
