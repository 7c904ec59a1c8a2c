"""`sloguard.scale.batch.add_hist` leaves a latency ring as `HistRing.add` does (slot by slot: the same
sorted keys and counts, head and low), whatever the ring held, the head's moves and the cells' repeats.
(It now calls `HistRing.add`, whose sorted merge tests/unit/core/test_histring.py checks against the
re-sorting rule.)"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.core.histring import HistRing
from sloguard.scale.batch import add_hist

cells = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 40), st.integers(1, 5)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(cells, min_size=1, max_size=5), n=st.integers(3, 12))
def test_add_hist_is_histring_add(batches: list[list[tuple[int, int, int]]], n: int) -> None:
    ours, theirs = HistRing(60 * (n - 1), 60, n, 8), HistRing(60 * (n - 1), 60, n, 8)
    for batch in batches:
        buckets, keys, counts = (np.array([c[i] for c in batch], np.int64) for i in range(3))
        add_hist(ours, buckets, keys, counts)
        theirs.add(buckets, keys, counts)
        assert (ours.head, ours.low) == (theirs.head, theirs.low)
        for a, b, c, d in zip(ours.keys, theirs.keys, ours.counts, theirs.counts, strict=True):
            assert a.dtype == b.dtype and c.dtype == d.dtype
            assert (a.tolist(), c.tolist()) == (b.tolist(), d.tolist())
