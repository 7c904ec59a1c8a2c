"""Running sums of spans that end together (`BucketRing.group_sums`, read by `SloAggregate.capture`) equal the
reference computation, a fresh `BucketRing.sums` per span, bit for bit: through writes of every kind, slots
reused, rows and blocks added, spans moving by one bucket, by many, backwards, past the ring, and a start
that stays put then jumps (the period's tail); along the path that moves the sums and the one that sums
them afresh (`windows._CALL` forces either), leaving buckets gathered or not (`windows._GATHER`). And a
capture equals one spelled with `sums`."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sloguard.core import windows
from sloguard.core.aggregator import SloAggregate
from sloguard.core.snapshot import SloCounts
from sloguard.core.windows import BLOCK, BucketRing, coarser, count_cells
from sloguard.specfile import parse_config
from tests.unit.core import test_spans as spans
from tests.unit.core.test_spans import ticks


def check(ring: BucketRing, key: object, starts: list[int], end: int, rows: int) -> None:
    got = ring.group_sums(key, starts, end, rows)
    assert got.shape == (2, len(starts), rows) and got.dtype == np.int64
    assert not got.flags.writeable
    for i, start in enumerate(starts):
        want = ring.sums(start, end, rows)
        assert got[0, i].tolist() == want[0].tolist(), (key, i, start, end)
        assert got[1, i].tolist() == want[1].tolist(), (key, i, start, end)


@pytest.mark.parametrize("seed", range(24))
def test_group_sums_equal_fresh_sums_through_any_history(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # A third of the seeds always move the sums, a third always sum afresh, a third decide by cost.
    monkeypatch.setattr(windows, "_CALL", (0, 1 << 40, windows._CALL)[seed % 3])
    if seed % 4 == 3:  # the cells `add_cells` leaves to the next read, added with numpy
        monkeypatch.setattr(windows, "_FEW_CELLS", 0)
    if seed % 2:  # buckets leaving the spans subtracted span by span, not gathered
        monkeypatch.setattr(windows, "_GATHER", 0)
    rnd = random.Random(seed)
    n = rnd.choice((12, 30))
    ring = BucketRing(1000, n, 2)
    rows = 2
    head = 1000 + rnd.randrange(n)  # (the buckets kept wrap around the end of the ring at any point)
    lengths = [1, 3, 7, n - 2]
    tail = head - 5  # a start that stays put while the end moves, then jumps (the period's fine tail)
    end = head + 1

    def events(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.array([rnd.randrange(rows) for _ in range(k)], np.intp),
            np.array([head + rnd.choice((-n - 2, -9, -4, -1, 0, 0, 1, 2)) for _ in range(k)], np.int64),
            np.array([rnd.random() < 0.3 for _ in range(k)], np.bool_),
        )

    for _ in range(160):
        action = rnd.random()
        if action < 0.25:
            ring.add(*events(rnd.randrange(1, 25)))
        elif action < 0.35:
            cells = count_cells(*events(rnd.randrange(1, 25)), rows)
            ring.add_counts(coarser(cells, 1))
        elif action < 0.5:
            other = BucketRing(1000, n, rows)
            other.add(*events(rnd.randrange(1, 12)))
            row_map = np.array([rnd.randrange(rows) for _ in range(rows)], np.intp)
            ring.add_cells(other.dump(rows), row_map)
        elif action < 0.55:
            other = BucketRing(1000, n, rows)
            other.add(*events(rnd.randrange(1, 12)))
            ring.merge_from(other, np.arange(rows, dtype=np.intp))
        elif action < 0.7:
            head += rnd.choice((1, 1, 1, 2, 4, n + 3))
            ring.advance(head)
        elif action < 0.75:
            rows += rnd.choice((1, 1, BLOCK // 2))  # now and then a second block
            ring.ensure_rows(rows)
        else:
            end = max(end + rnd.choice((0, 1, 1, 1, 2, 5, n, 3 * n)), 0)
            if rnd.random() < 0.05:
                end -= rnd.randrange(1, 4)  # backwards: summed afresh
            if rnd.random() < 0.15 or tail >= end:
                tail = end - rnd.randrange(0, 6)
            check(ring, "windows", [end - k for k in lengths] + [tail], end, rows)
            check(ring, "one", [end - 4], end, rows)


@pytest.mark.parametrize("rows", [3, BLOCK + 3], ids=["one block", "two blocks"])
def test_group_sums_of_a_tick_move_by_one_bucket(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every span of fixed length moving by one bucket, the period's tail growing by one: the sums move
    (no fresh sum: `_nested` is called once, for the first read) and equal the reference every tick."""
    rng = np.random.default_rng(rows)
    ring = BucketRing(1000, 40, rows)
    calls = []
    nested = BucketRing._nested

    def counted(self: BucketRing, starts: list[int], end: int) -> np.ndarray:
        calls.append((starts, end))
        return nested(self, starts, end)

    monkeypatch.setattr(BucketRing, "_nested", counted)
    tail = 100
    for end in range(101, 130):
        k = 200
        buckets = rng.integers(end - 30, end + 1, k).astype(np.int64)
        ring.add(rng.integers(0, rows, k).astype(np.intp), buckets, rng.random(k) < 0.2)
        check(ring, "tick", [end - 1, end - 6, end - 20, tail], end, rows)
    assert len(calls) == 1


#: test_spans' SLOs (rolling with series, calendar month) and a time-slice one.
SLOS = (
    spans.SLOS
    + """\
  - name: sliced
    service: checkout
    objective: 99
    sli: {type: availability}
    window: 7d
    group_by: [customer]
    budgeting: {timeslices: {slice: 5m, good_ratio: 0.9}}
"""
)

Reference = tuple[list[tuple[int, int]], np.ndarray, np.ndarray, list[int]]


def reference(slo: SloAggregate, now_ms: int) -> Reference:
    """Window and period counts of ``slo`` at ``now_ms`` spelled with `BucketRing.sums`, bucket by bucket
    (no running sum): window bounds, totals and bad counts per window, and the period's."""
    rows = len(slo.series)
    total, bad, bounds = [], [], []
    for ring, group in ((slo.fine, slo.fine_windows), (slo.coarse, slo.coarse_windows)):
        end = now_ms // ring.res_ms
        for w in group:
            t, b = ring.sums(end - w * 1000 // ring.res_ms, end, rows)
            total.append(t)
            bad.append(b)
            bounds.append((end * ring.res_ms - w * 1000, end * ring.res_ms))
    p_start, p_end = slo.period_bounds(now_ms)
    c, f = slo.coarse.res_ms, slo.fine.res_ms
    t, b = slo.coarse.sums(p_start // c, p_end // c, rows)
    tt, tb = slo.fine.sums(p_end // c * c // f, p_end // f, rows)
    return bounds, np.array(total).reshape(-1, rows), np.array(bad).reshape(-1, rows), [*(t + tt), *(b + tb)]


@pytest.mark.parametrize("seed", range(4))
def test_a_capture_equals_one_spelled_with_sums(seed: int) -> None:
    """`SloAggregate.capture` (each ring's windows and period part as one group of running sums, read
    every tick, the period's tail jumping at each coarse boundary) against `reference`; time slices against
    a fresh aggregator's."""
    config = parse_config(SLOS, "slos.yaml")
    moves = (1000, 10_000, 10_000, 60_000, 300_000, 3_600_000)
    for live, fresh, step, now in ticks(random.Random(seed), config, 50, moves):
        got = live.capture(now)
        for slo, counts in zip(live.slos, got.slos, strict=True):
            if slo.spec.budgeting is not None:
                continue
            bounds, total, bad, period = reference(slo, now)
            assert list(counts.window_bounds) == bounds
            assert counts.total.dtype == counts.bad.dtype == np.int64
            assert counts.total.shape == total.shape and counts.total.tobytes() == total.tobytes(), step
            assert counts.bad.tobytes() == bad.tobytes(), step
            assert [*counts.period_total.tolist(), *counts.period_bad.tolist()] == period, step
        for g, w in zip(got.slos, fresh.capture(now).slos, strict=True):
            assert_same(g, w)


def assert_same(got: SloCounts, want: SloCounts) -> None:
    assert got.labels == want.labels and got.window_bounds == want.window_bounds
    for name in ("total", "bad", "period_total", "period_bad"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
    mine = (*(got.slices or ()), got.period_slices)
    theirs = (*(want.slices or ()), want.period_slices)
    for g, w in zip(mine, theirs, strict=True):
        if g is None or w is None:
            assert g is w
            continue
        for name in ("total", "bad", "judged", "bad_slices"):
            a, b = getattr(g, name), getattr(w, name)
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
