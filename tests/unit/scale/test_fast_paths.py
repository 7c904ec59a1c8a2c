"""The faster paths of the two stages give exactly what the straightforward ones gave.

* `split` cuts every SLO ring for all partitions at once (`_split_ring`): identical arrays to cutting it
  partition by partition (`take` without pre-cut rings, `_take_ring`);
* `BucketRing.dump` scans only the slots of ``[max(low, head − n + 1), head]``: identical to a scan of
  the whole ring, wrap-around included;
* `summarise` reads labels in the batch's own vocabularies: the same state as with fresh ones;
* `owned_counts` evaluated in another thread equals `owned_snapshot` (the tick's split), and a
  partition's capture reused while nothing was applied and ``now`` stays in the fine bucket equals a
  fresh one.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.windows import BucketRing
from sloguard.scale.applied import Verdict
from sloguard.scale.codec import decode_piece, encode_pieces
from sloguard.scale.merger import Merger
from sloguard.scale.partials import InputRange, apply, home_partition, split, split_rows, summarise, take
from sloguard.scale.view import owned_counts, owned_snapshot
from tests.unit.scale.canon import comparable
from tests.unit.scale.test_exactly_once import CONFIG, COUNTS_LEN, FP, events_strategy

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same(a: object, b: object) -> None:
    """Dataclass trees equal, arrays element by element (and dtype)."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    elif hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b)
        for f in a.__dataclass_fields__:
            _same(getattr(a, f), getattr(b, f))
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, tuple | list) and a and hasattr(a[0], "__dataclass_fields__"):
        assert len(a) == len(b)  # type: ignore[arg-type]
        for x, y in zip(a, b, strict=True):  # type: ignore[call-overload]
            _same(x, y)
    else:
        assert a == b


@SETTINGS
@given(events=events_strategy, partitions=st.integers(1, 5))
def test_split_cuts_rings_as_partition_by_partition(events: list[Event], partitions: int) -> None:
    state = summarise(CONFIG, [EventBatch.from_events(events)])
    home = home_partition(partitions)
    slow = [
        take(CONFIG, state, slo_rows, lat_rows, counters=p == home)
        for p, (slo_rows, lat_rows) in enumerate(split_rows(state, partitions))
    ]
    for fast, ref in zip(split(CONFIG, state, partitions), slow, strict=True):
        _same(fast, ref)


@SETTINGS
@given(
    n=st.integers(2, 40),
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 200), st.booleans()), min_size=1, max_size=30),
        min_size=1,
        max_size=5,
    ),
)
def test_ring_dump_scans_only_held_slots_and_finds_every_cell(
    n: int, batches: list[list[tuple[int, int, bool]]]
) -> None:
    ring = BucketRing(1000, n, rows=4)
    for batch in batches:
        rows, buckets, bad = (np.array(c) for c in zip(*batch, strict=True))
        ring.add(rows.astype(np.intp), buckets.astype(np.int64), bad.astype(np.bool_))
    fast = ring.dump(4)
    ring.low = None  # without a low the whole ring is scanned
    full = ring.dump(4)
    for field in ("cells", "total", "bad"):
        _same(getattr(fast, field), getattr(full, field))


@SETTINGS
@given(events=events_strategy)
def test_summarise_in_the_batch_vocabularies_is_summarise_in_fresh_ones(events: list[Event]) -> None:
    shared = EventBatch.from_events(events)
    # The decoder's vocabularies hold values of earlier ranges too.
    for column in (shared.service, shared.endpoint, shared.customer):
        for v in ("zz-earlier", "aa-earlier"):
            column.vocab.intern(v)
    ref = summarise(CONFIG, [EventBatch.from_events(events)])
    assert comparable(summarise(CONFIG, [shared]), COUNTS_LEN) == comparable(ref, COUNTS_LEN)


def test_owned_counts_evaluated_apart_is_owned_snapshot() -> None:
    events = [
        Event(1_767_225_600_000 + i * 7_000, s, e, f"c{i % 5}", (200, 500)[i % 7 == 0], float(i % 300))
        for i, (s, e) in enumerate(
            [("checkout", "GET /a"), ("search", "POST /b"), ("checkout", "GET /c")] * 40
        )
    ]
    mergers = [Merger(CONFIG, FP, p, 3) for p in range(3)]
    for p, piece in enumerate(split(CONFIG, summarise(CONFIG, [EventBatch.from_events(events)]), 3)):
        apply(mergers[p].aggregator, piece)
    now = 1_767_225_600_000 + 3_600_000
    counts = owned_counts(Aggregator(CONFIG), mergers[1:], now)
    _same(counts.evaluate(), owned_snapshot(Aggregator(CONFIG), mergers[1:], now))
    assert counts.series == sum(s.series for s in counts.evaluate().slos) + len(counts.latency.labels)  # type: ignore[union-attr]


def test_ring_dump_of_buckets_that_wrap_around_the_ring() -> None:
    ring = BucketRing(1000, 10, rows=2)
    ring.add(
        np.array([0, 1, 1, 0], np.intp), np.array([7, 8, 12, 11], np.int64), np.array([0, 1, 0, 1], np.bool_)
    )
    assert ring._held() == [(0, 3), (7, 10)]
    state = ring.dump(2)
    slots, rows = np.divmod(state.cells, 2)
    assert sorted(zip(slots.tolist(), rows.tolist(), state.bad.tolist(), strict=True)) == [
        (1, 0, 1),
        (2, 1, 0),
        (7, 0, 0),
        (8, 1, 1),
    ]


def _offer_range(mergers: list[Merger], events: list[Event], start: int) -> None:
    rng = InputRange("requests", 0, start, start + len(events))
    state = summarise(CONFIG, [EventBatch.from_events(events)])
    for p, piece in enumerate(split(CONFIG, state, len(mergers))):
        for record in encode_pieces(CONFIG, rng, FP, p, len(mergers), piece):
            assert mergers[p].offer(decode_piece(record)) is Verdict.NEW


def test_a_capture_is_reused_only_while_nothing_changed_in_the_same_fine_bucket() -> None:
    t0 = 1_767_225_600_000
    first = [
        Event(t0 + i * 3_000, "checkout", f"GET /{i % 4}", "c1", 500 if i % 5 else 200, 9.0)
        for i in range(40)
    ]
    later = [Event(t0 + 200_000 + i, "checkout", "GET /new", "c2", 500, 9.0) for i in range(3)]
    cached = [Merger(CONFIG, FP, p, 2) for p in range(2)]
    _offer_range(cached, first, 0)
    now = t0 + 300_000  # a fine (10 s) bucket's start: now + 1 s is in the same bucket
    owned_snapshot(Aggregator(CONFIG), cached, now)
    for step, events in ((1_000, []), (1_000, later), (20_000, [])):
        now += step
        if events:
            _offer_range(cached, events, 100)
        fresh = [Merger(CONFIG, FP, p, 2) for p in range(2)]
        _offer_range(fresh, first, 0)
        if now > t0 + 301_000:
            _offer_range(fresh, later, 100)
        _same(owned_snapshot(Aggregator(CONFIG), cached, now), owned_snapshot(Aggregator(CONFIG), fresh, now))
