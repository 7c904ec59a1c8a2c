"""BucketRing: counters widen before they could wrap; window sums stay exact."""

from __future__ import annotations

import numpy as np
import pytest

from sloguard.core.windows import BucketRing, reused


def test_counters_widen_instead_of_wrapping() -> None:
    ring = BucketRing(10_000, 8)
    assert ring.dtype is np.uint16
    n = 70_000  # more than a uint16 cell holds, all in one bucket of one series
    rows = np.zeros(n, np.intp)
    buckets = np.full(n, 100, np.int64)
    bad = np.zeros(n, np.bool_)
    bad[:3] = True
    ring.add(rows, buckets, bad)
    assert ring.dtype is np.uint32
    total, nbad = ring.sums(95, 101, 1)
    assert (int(total[0]), int(nbad[0])) == (n, 3)
    ring.add(rows[:10], buckets[:10], bad[:10])
    assert int(ring.sums(100, 101, 1)[0][0]) == n + 10


def test_merge_widens_when_the_sum_would_not_fit() -> None:
    a, b = BucketRing(10_000, 8), BucketRing(10_000, 8)
    n = 40_000
    for ring in (a, b):
        ring.add(np.zeros(n, np.intp), np.full(n, 5, np.int64), np.zeros(n, np.bool_))
        assert ring.dtype is np.uint16
    a.merge_from(b, np.zeros(1, np.intp))
    assert a.dtype is np.uint32
    assert int(a.sums(0, 10, 1)[0][0]) == 2 * n


@pytest.mark.parametrize(
    ("head", "bucket", "expected"),
    [
        pytest.param(None, 5, range(0), id="new-ring"),
        pytest.param(5, 5, range(0), id="same-bucket"),
        pytest.param(5, 3, range(0), id="older-bucket"),
        pytest.param(5, 7, range(6, 8), id="two-forward"),
        pytest.param(5, 9, range(6, 10), id="exactly-n-forward"),
        pytest.param(5, 100, range(97, 101), id="far-forward-clears-n"),
    ],
)
def test_reused_buckets_when_the_head_moves(head: int | None, bucket: int, expected: range) -> None:
    assert reused(head, bucket, 4) == expected
