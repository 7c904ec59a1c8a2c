"""Running span sums (`BucketRing.span_sums`) equal a fresh sum over the slots, whatever happened between
two reads: late, current and far-future events, slots reused, rows added, merges, spans moved forward,
backward or far."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest

from sloguard.core import windows
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import Config
from sloguard.core.state import RingState
from sloguard.core.windows import BLOCK, BucketRing, coarser, count_cells
from sloguard.specfile import parse_config


def random_batch(rnd: random.Random, head: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = rnd.randrange(1, 40)
    kinds = [rnd.choice(("late", "late", "current", "future", "far")) for _ in range(n)]
    offsets = {"late": (-29, -1), "current": (0, 0), "future": (1, 3), "far": (20, 59)}
    buckets = [head + rnd.randint(*offsets[k]) for k in kinds]
    return (
        np.array([rnd.randrange(rows) for _ in range(n)], np.intp),
        np.array(buckets, np.int64),
        np.array([rnd.random() < 0.3 for _ in range(n)], np.bool_),
    )


@pytest.mark.parametrize("seed", range(20))
def test_span_sums_equal_fresh_sums_through_any_history(seed: int) -> None:
    rnd = random.Random(seed)
    ring = BucketRing(1000, 24)
    rows = 3
    end = 100
    lengths = (1, 5, 12, 20)
    for _ in range(150):
        action = rnd.random()
        if action < 0.5:
            if rnd.random() < 0.1:
                rows += rnd.randrange(1, BLOCK // 3)  # crosses a block now and then
            ring.ensure_rows(rows)
            ring.add(*random_batch(rnd, end if ring.head is None else ring.head, rows))
        elif action < 0.6:
            ring.advance(end + rnd.randrange(0, 3))
        elif action < 0.65:
            other = BucketRing(1000, 24, rows)
            other.add(*random_batch(rnd, end, rows))
            ring.merge_from(other, np.arange(rows, dtype=np.intp))
        elif action < 0.7:
            # Saved cells added (the stage-2 merge): the spans move with them, and with `add`'s writes
            # made before them but not yet read.
            other = BucketRing(1000, 24, rows)
            other.add(*random_batch(rnd, end if ring.head is None else ring.head, rows))
            ring.ensure_rows(rows)  # (add_cells takes rows that exist)
            ring.add_cells(other.dump(rows), np.arange(rows, dtype=np.intp))
        else:
            end += rnd.choice((0, 1, 1, 2, 7, 30, -3))
            for length in lengths:
                got = ring.span_sums(length, end - length, end, rows)
                want = ring.sums(end - length, end, rows)
                np.testing.assert_array_equal(got[0], want[0], err_msg=f"total, span {length}")
                np.testing.assert_array_equal(got[1], want[1], err_msg=f"bad, span {length}")
            # A span whose start stays put while its end moves (a calendar period).
            got = ring.span_sums("period", 50, end, rows)
            np.testing.assert_array_equal(got[0], ring.sums(50, end, rows)[0])


def test_span_sums_are_copies() -> None:
    ring = BucketRing(1000, 10, 2)
    ring.add(np.array([0, 1], np.intp), np.array([5, 5], np.int64), np.array([True, False]))
    total, _ = ring.span_sums("w", 0, 6, 2)
    ring.add(np.array([0], np.intp), np.array([5], np.int64), np.array([False]))
    assert total.tolist() == [1, 1]
    assert ring.span_sums("w", 0, 6, 2)[0].tolist() == [2, 1]


SLOS = """\
apiVersion: sloguard/v1
slos:
  - {name: per-customer, service: checkout, objective: 99.9, sli: {type: availability}, window: 30d,
     group_by: [customer]}
  - name: monthly
    service: checkout
    objective: 99
    sli: {type: latency, threshold_ms: 100}
    window: {calendar: month}
    resolution: {fine: 10s, coarse: 5m}
"""

T0 = 1_767_225_600_000 + 29 * 86_400_000 + 23 * 3_600_000  # close to a month boundary


def skewed_events(rnd: random.Random, now: int, customers: int) -> list[Event]:
    """Up to 30 events of ``checkout``: current, late by seconds to a day, a few ``customers``."""
    return [
        Event(
            now - rnd.choice((0, 1, 5, 61, 700, 4000, 90_000)) * 1000 + rnd.randrange(1000),
            "checkout",
            "GET /a",
            f"c{rnd.randrange(customers)}",
            rnd.choice((200, 200, 500)),
            rnd.choice((5.0, 500.0)),
        )
        for _ in range(rnd.randrange(0, 30))
    ]


def ticks(
    rnd: random.Random, config: Config, steps: int, moves: tuple[int, ...]
) -> Iterator[tuple[Aggregator, Aggregator, int, int]]:
    """An aggregator fed `skewed_events` (more customers each step) and advanced by one of ``moves`` (ms)
    a step; after each step: it, an aggregator given every event so far at once, the step and ``now``."""
    live = Aggregator(config)
    seen: list[Event] = []
    now = T0
    for step in range(steps):
        batch = skewed_events(rnd, now, 6 + step)
        if batch:
            live.ingest(EventBatch.from_events(batch))
            seen += batch
        now += rnd.choice(moves)
        live.advance(now)
        fresh = Aggregator(config)
        if seen:
            fresh.ingest(EventBatch.from_events(seen))
        fresh.advance(now)
        yield live, fresh, step, now


@pytest.mark.parametrize("seed", range(3))
def test_a_ticking_aggregator_snapshots_as_a_fresh_one(seed: int) -> None:
    """Snapshots every tick (running sums moved along) equal those of an aggregator given every event at
    once and read a single time, across a month boundary, with late and future-skewed events."""
    config = parse_config(SLOS, "slos.yaml")
    for live, fresh, step, now in ticks(random.Random(seed), config, 40, (1000, 1000, 10_000, 300_000)):
        got, want = live.snapshot(now), fresh.snapshot(now)
        for g, w in zip(got.slos, want.slos, strict=True):
            assert g.labels == w.labels
            for name in ("total", "bad", "period_total", "period_bad", "burn_rate", "firing"):
                np.testing.assert_array_equal(getattr(g, name), getattr(w, name), err_msg=f"{name} {step}")


def test_a_head_jump_beyond_the_ring_empties_every_span() -> None:
    ring = BucketRing(1000, 10, 1)
    zero = np.zeros(10, np.intp)
    ring.add(zero, np.arange(10, dtype=np.int64), np.ones(10, np.bool_))
    assert ring.span_sums("w", 2, 10, 1)[0].tolist() == [8]
    ring.add(zero[:1], np.array([45], np.int64), np.zeros(1, np.bool_))  # 35 buckets on: every slot reused
    assert [a.tolist() for a in ring.span_sums("w", 2, 10, 1)] == [[0], [0]]
    assert ring.span_sums("w", 40, 46, 1)[0].tolist() == [1]


def test_a_span_moving_by_one_past_an_evicted_bucket() -> None:
    """The bucket a span leaves was already dropped from the ring (its slot now holds a newer bucket): the
    move subtracts nothing more, and the bucket that enters comes from its own slot."""
    ring = BucketRing(1000, 4, rows=2)
    rows = np.array([0, 1, 1, 0], np.intp)
    ring.add(rows, np.array([10, 11, 12, 13], np.int64), np.array([True, False, True, False]))
    assert ring.span_sums("w", 10, 14, 2)[0].tolist() == [2, 2]
    ring.add(np.array([1, 1, 1], np.intp), np.array([14, 14, 14], np.int64), np.ones(3, np.bool_))
    got = ring.span_sums("w", 11, 15, 2)  # bucket 10 left with the ring, 14 (in 10's slot) enters
    want = ring.sums(11, 15, 2)
    assert [a.tolist() for a in got] == [a.tolist() for a in want] == [[1, 5], [0, 4]]


@pytest.mark.parametrize("seed", range(10))
def test_writes_between_reads_reach_the_spans_through_reused_slots_and_saved_cells(seed: int) -> None:
    """`add` leaves its counts out of the running sums until the next read (`BucketRing._defer`): a read after
    writes into buckets inside the spans, after the head moved on and reused slots holding such buckets,
    or after saved cells were added on top of them, still equals a fresh sum."""
    rnd = random.Random(seed)
    ring = BucketRing(1000, 12, 4)
    rows = 4
    head = 50
    lengths = (1, 3, 8, 11)

    def read() -> None:
        end = head + rnd.choice((0, 1))
        for length in lengths:
            got = ring.span_sums(length, end - length, end, rows)
            want = ring.sums(end - length, end, rows)
            np.testing.assert_array_equal(got[0], want[0], err_msg=f"total, span {length}")
            np.testing.assert_array_equal(got[1], want[1], err_msg=f"bad, span {length}")

    read()
    for _ in range(120):
        for _ in range(rnd.randrange(1, 4)):
            action = rnd.random()
            if action < 0.6:
                n = rnd.randrange(1, 30)
                buckets = np.array([head - rnd.randrange(0, 11) for _ in range(n)], np.int64)
                picked = np.array([rnd.randrange(rows) for _ in range(n)], np.intp)
                ring.add(picked, buckets, np.array([rnd.random() < 0.3 for _ in range(n)], np.bool_))
            elif action < 0.8:
                head += rnd.choice((1, 1, 2, 5))
                ring.advance(head)  # reuses the slots of the oldest buckets, pending writes among them
            elif action < 0.9:
                other = BucketRing(1000, 12, rows)
                n = rnd.randrange(1, 10)
                other.add(
                    np.array([rnd.randrange(rows) for _ in range(n)], np.intp),
                    np.array([head - rnd.randrange(0, 6) for _ in range(n)], np.int64),
                    np.array([rnd.random() < 0.5 for _ in range(n)], np.bool_),
                )
                ring.add_cells(other.dump(rows), np.arange(rows, dtype=np.intp))
            else:
                rows += 1
                ring.ensure_rows(rows)
        read()


class NaiveRing:
    """The rule a `BucketRing` keeps, spelled out: a count per (bucket, row) cell; the head the newest
    bucket offered; cells of buckets ``<= head − n`` gone (dropped when offered)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.head: int | None = None
        self.cells: dict[tuple[int, int], list[int]] = {}

    def offer(self, cells: list[tuple[int, int, int, int]]) -> None:
        """Cells ``(bucket, row, total, bad)`` of one write."""
        if not cells:
            return
        top = max(c[0] for c in cells)
        self.advance(top)
        assert self.head is not None
        for bucket, row, total, bad in cells:
            if bucket > self.head - self.n:
                cell = self.cells.setdefault((bucket, row), [0, 0])
                cell[0] += total
                cell[1] += bad

    def advance(self, bucket: int) -> None:
        self.head = bucket if self.head is None else max(self.head, bucket)
        self.cells = {k: v for k, v in self.cells.items() if k[0] > self.head - self.n}

    def sums(self, start: int, end: int, rows: int) -> tuple[list[int], list[int]]:
        total, bad = [0] * rows, [0] * rows
        for (bucket, row), (t, b) in self.cells.items():
            if start <= bucket < end:
                total[row] += t
                bad[row] += b
        return total, bad


@pytest.mark.parametrize("seed", range(30))
def test_span_sums_equal_a_naive_ring_through_interleaved_writes(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`add`, `add_counts` (cells counted once for two rings: `count_cells`, `coarser`), `add_cells` (saved
    cells, rows landing on one or each on its own), head moves and reads, in any order: each write leaves
    the running sums to the next read (`_defer`, `_pending`), a bucket may be written by several kinds of
    write between two reads, and every read equals the sum the rule gives (bit for bit). A third of the
    seeds add every pending cell with numpy and settle them every other `add_cells` batch."""
    if seed % 3 == 2:
        monkeypatch.setattr(windows, "_FEW_CELLS", 0)
        monkeypatch.setattr(windows, "_PENDING_BATCHES", 2)
    rnd = random.Random(seed)
    n = 16
    ring, coarse = BucketRing(1000, n, 2), BucketRing(4000, n, 2)
    naive, naive_coarse = NaiveRing(n), NaiveRing(n)
    rows = 2
    head = 100
    spans = ((1, 0), (4, 0), (9, 1), (15, 2))  # (length, how far the span ends before the head + 1)

    def events(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.array([rnd.randrange(rows) for _ in range(k)], np.intp),
            np.array([head + rnd.choice((-20, -9, -3, -1, 0, 0, 0, 1, 2)) for _ in range(k)], np.int64),
            np.array([rnd.random() < 0.3 for _ in range(k)], np.bool_),
        )

    for step in range(200):
        action = rnd.random()
        if action < 0.25:
            r, b, bad = events(rnd.randrange(1, 30))
            ring.add(r, b, bad)
            naive.offer([(int(x), int(y), 1, int(z)) for x, y, z in zip(b, r, bad, strict=True)])
        elif action < 0.45:
            r, b, bad = events(rnd.randrange(1, 30))
            fine = count_cells(r, b, bad, rows)
            ring.add_counts(fine)
            coarse.add_counts(coarser(fine, 4))
            cells = list(zip(b.tolist(), r.tolist(), [1] * len(b), bad.astype(int).tolist(), strict=True))
            naive.offer(cells)
            naive_coarse.offer([(x // 4, y, t, z) for x, y, t, z in cells])
        elif action < 0.7:
            # Saved cells of another ring (a piece), its rows mapped onto ours (on one, now and then).
            theirs = rnd.randrange(1, 5)
            row_map = np.array([rnd.randrange(rows) for _ in range(theirs)], np.intp)
            if rnd.random() < 0.5:
                row_map = np.sort(rnd.sample(range(rows), min(theirs, rows))).astype(np.intp)
                theirs = len(row_map)
            their_head = head + rnd.choice((-5, -1, 0, 0, 1, 3))
            offered = {
                (their_head - rnd.randrange(0, n + 4), rnd.randrange(theirs)): rnd.randrange(1, 9)
                for _ in range(rnd.randrange(0, rnd.choice((6, 12, 60))))
            }
            picked = {k: (t, rnd.randrange(0, t + 1)) for k, t in offered.items() if k[0] > their_head - n}
            keys = sorted(picked)
            state = RingState(
                1000,
                n,
                their_head,
                min((k[0] for k in keys), default=their_head),
                theirs,
                np.array([(b % n) * theirs + r for b, r in keys], np.int64),
                np.array([picked[k][0] for k in keys], np.int64),
                np.array([picked[k][1] for k in keys], np.int64),
            )
            ring.add_cells(
                state, row_map, rnd.choice((None, bool(len(set(row_map.tolist())) == len(row_map))))
            )
            naive.advance(their_head)
            naive.offer([(b, int(row_map[r]), *picked[(b, r)]) for b, r in keys])
        elif action < 0.8:
            head += rnd.choice((1, 1, 2, 5, n + 1))
            ring.advance(head)
            coarse.advance(head // 4)
            naive.advance(head)
            naive_coarse.advance(head // 4)
        elif action < 0.85:
            rows += rnd.choice((1, 1, 3))
            ring.ensure_rows(rows)
            coarse.ensure_rows(rows)
        else:
            assert ring.head is not None or naive.head is None
            for read, nv, scale in ((ring, naive, 1), (coarse, naive_coarse, 4)):
                if nv.head is None:
                    continue
                for length, back in spans:
                    end = nv.head + 1 - back
                    got = read.span_sums((length, back), end - length, end, rows)
                    want = nv.sums(end - length, end, rows)
                    assert [a.tolist() for a in got] == list(want), (seed, step, scale, length)
                assert read.head == nv.head
                # Every cell the ring keeps (a slot reused but not emptied would show here).
                oldest = nv.head - n + 1
                kept = read.dense(oldest, nv.head + 1, rows)
                for bucket in range(oldest, nv.head + 1):
                    held = [nv.cells.get((bucket, i), [0, 0]) for i in range(rows)]
                    assert kept[0][bucket - oldest].tolist() == [c[0] for c in held], (seed, step, bucket)
                    assert kept[1][bucket - oldest].tolist() == [c[1] for c in held], (seed, step, bucket)
