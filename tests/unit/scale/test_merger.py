"""`Merger`'s way of applying a piece (SLO by SLO, rings by their cells, empty SLOs by their heads) gives
exactly the state `sloguard.scale.partials.apply` gives (restore the piece into a fresh uncapped
aggregator, merge it): same rows, same cells, same heads and lows, same counters; with series caps that
overflow, rings already moved past the piece's buckets, and counts that widen a ring's type."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloguard.core.aggregator import Aggregator
from sloguard.core.exclusions import Exclusion
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import DAY, Config
from sloguard.core.state import AggregatorState, RingState
from sloguard.core.windows import BucketRing
from sloguard.scale.applied import Verdict
from sloguard.scale.codec import DEFAULT_MAX_BYTES, decode_piece, encode_pieces, spec_fingerprints
from sloguard.scale.merger import (
    HELD_BYTES,
    HELD_MAX_BYTES,
    HELD_MIN_BYTES,
    Merger,
    held_bytes_each,
)
from sloguard.scale.partials import InputRange, apply, config_fingerprint, split, summarise
from tests.unit.scale.test_exactly_once import CONFIG, T0, events_strategy, ranges_of


def assert_same(a: AggregatorState, b: AggregatorState) -> None:
    assert (a.events, a.newest_ms, a.oldest_ms) == (b.events, b.newest_ms, b.oldest_ms)
    assert a.slos.keys() == b.slos.keys()
    for name, x in a.slos.items():
        y = b.slos[name]
        assert x.series.keys == y.series.keys, name
        assert x.series.row_events.tolist() == y.series.row_events.tolist(), name
        assert (x.too_old, x.events) == (y.too_old, y.events), name
        for r, s in ((x.fine, y.fine), (x.coarse, y.coarse)):
            assert (r.head, r.low, r.rows) == (s.head, s.low, s.rows), name
            assert r.cells.tolist() == s.cells.tolist(), name
            assert (r.total.tolist(), r.bad.tolist()) == (s.total.tolist(), s.bad.tolist()), name
    assert (a.latency is None) == (b.latency is None)
    if a.latency is not None and b.latency is not None:
        assert a.latency.series.keys == b.latency.series.keys
        assert a.latency.too_old == b.latency.too_old
        for h, g in zip(a.latency.rings, b.latency.rings, strict=True):
            assert (h.head, h.low, h.buckets.tolist()) == (g.head, g.low, g.buckets.tolist())
            assert (h.keys.tolist(), h.counts.tolist()) == (g.keys.tolist(), g.counts.tolist())


def assert_owned_masks_hashed(merger: Merger) -> None:
    """`Merger.owned_mask` (no hash for the keys a flush added from pieces) is `Merger.owns` of each key."""
    agg = merger.aggregator
    lists: list[tuple[str | None, list[tuple[str, ...]]]] = [(s.spec.name, s.series.keys) for s in agg.slos]
    if agg.latency is not None:
        lists.append((None, agg.latency.series.keys))
    for name, keys in lists:
        assert merger.owned_mask(name, keys).tolist() == [merger.owns(name, k) for k in keys], name


def _records(cfg: Config, events: list[Event], partitions: int, cuts: list[int]) -> list[list[bytes]]:
    """Per partials partition, the records of ``events`` cut into ranges at ``cuts``."""
    fp = config_fingerprint(cfg)
    pieces: list[list[bytes]] = [[] for _ in range(partitions)]
    for a, b in ranges_of(len(events), cuts):
        state = summarise(cfg, [EventBatch.from_events(events[a:b])])
        for p, piece in enumerate(split(cfg, state, partitions)):
            pieces[p] += encode_pieces(cfg, InputRange("requests", 0, a, b), fp, p, partitions, piece)
    return pieces


def _pair(cfg: Config, p: int, partitions: int, advanced: int | None) -> tuple[Merger, Aggregator]:
    """A merger of partition ``p`` and a reference aggregator, both moved on to ``advanced`` (a tick moved
    the rings on: older buckets of the pieces are dropped)."""
    merger, reference = Merger(cfg, config_fingerprint(cfg), p, partitions), Aggregator(cfg)
    if advanced is not None:
        merger.aggregator.advance(T0 + advanced * 1000)
        reference.advance(T0 + advanced * 1000)
    return merger, reference


#: Events, partitions, cuts (seed), series caps that overflow, rings moved past the pieces' buckets.
CASES = {
    "events": events_strategy,
    "partitions": st.integers(1, 3),
    "seed": st.integers(0, 2**32 - 1),
    "cap": st.sampled_from([1, 2, 10_000]),
    "advanced": st.sampled_from([None, 2 * DAY, 40 * DAY]),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**CASES)
def test_merger_applies_a_piece_as_restore_and_merge_would(
    events: list[Event], partitions: int, seed: int, cap: int, advanced: int | None
) -> None:
    rnd = random.Random(seed)
    cfg = replace(CONFIG, slos=tuple(replace(s, max_series=cap) for s in CONFIG.slos))
    pieces = _records(cfg, events, partitions, [rnd.randrange(1, 200) for _ in range(rnd.randrange(4))])
    for p in range(partitions):
        merger, reference = _pair(cfg, p, partitions, advanced)
        for record in pieces[p]:
            got = decode_piece(record)
            assert merger.offer(got) is Verdict.NEW
            apply(reference, got.state(cfg))
            assert_same(merger.aggregator.export_state(), reference.export_state())


def _ring_state(rnd: random.Random, head: int, n: int, rows: int, big: bool) -> RingState:
    buckets = sorted(rnd.sample(range(head - n + 1, head + 1), min(n, 5)))
    cells = sorted({(b % n) * rows + rnd.randrange(rows) for b in buckets})
    hi = 70_000 if big else 50
    total = np.array([rnd.randrange(1, hi) for _ in cells], np.int64)
    bad = np.array([rnd.randrange(0, int(t) + 1) for t in total], np.int64)
    return RingState(10_000, n, head, buckets[0], rows, np.array(cells, np.int64), total, bad)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), big=st.booleans(), shift=st.integers(-30, 30), collide=st.booleans())
def test_add_cells_is_merge_from_of_the_restored_ring(
    seed: int, big: bool, shift: int, collide: bool
) -> None:
    """`BucketRing.add_cells`: widening (counts past uint16), rows landing on one row or each on its own
    (in order), the target ahead of or behind the state; the running span sums stay equal to sums over
    the slots."""
    rnd = random.Random(seed)
    n, rows = 20, 4
    mine = _ring_state(rnd, 1000, n, rows, big=False)
    theirs = _ring_state(rnd, 1000 + shift, n, rows, big=big)
    if collide:  # rows may collide
        row_map = np.array([rnd.randrange(3) for _ in range(rows)], np.intp)
    else:
        row_map = np.array(sorted(rnd.sample(range(rows), rows)), np.intp)
    expected, got, scratch = BucketRing(10_000, n), BucketRing(10_000, n), BucketRing(10_000, n)
    expected.load(mine)
    got.load(mine)
    scratch.load(theirs)
    spans = [(lo, lo + length) for lo in (985, 995, 1000) for length in (1, 5, 12)]
    for lo, hi in spans:  # running sums a tick keeps: add_cells must move them with the cells
        got.span_sums((lo, hi), lo, hi, rows)
    expected.merge_from(scratch, row_map)
    got.add_cells(theirs, row_map, None if collide or seed % 2 else True)
    for lo, hi in spans:
        if got.head is not None and lo > got.head - n:  # (a span past the ring: refused by both)
            sums = [a.tolist() for a in got.span_sums((lo, hi), lo, hi, rows)]
            assert sums == [a.tolist() for a in expected.sums(lo, hi, rows)]
    a, b = expected.dump(rows), got.dump(rows)
    assert (a.head, a.low) == (b.head, b.low)
    assert (a.cells.tolist(), a.total.tolist(), a.bad.tolist()) == (
        b.cells.tolist(),
        b.total.tolist(),
        b.bad.tolist(),
    )
    assert expected.slot_total.tolist() == got.slot_total.tolist()
    assert expected.slot_bad.tolist() == got.slot_bad.tolist()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=events_strategy,
    partitions=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
    cap=st.sampled_from([2000, 4000, DEFAULT_MAX_BYTES]),
)
def test_records_round_trip_and_apply_as_the_state_they_were_made_of(
    events: list[Event], partitions: int, seed: int, cap: int
) -> None:
    """The record format carries a piece exactly: one record reads back as the very state it was made
    of; the records of a piece cut by the size cap, applied (by `apply` or by `Merger`), give the state
    `apply` of the whole piece gives."""
    rnd = random.Random(seed)
    fp = config_fingerprint(CONFIG)
    for a, b in ranges_of(len(events), [rnd.randrange(1, 200) for _ in range(rnd.randrange(3))]):
        rng = InputRange("requests", 0, a, b)
        for p, piece in enumerate(
            split(CONFIG, summarise(CONFIG, [EventBatch.from_events(events[a:b])]), partitions)
        ):
            records = encode_pieces(CONFIG, rng, fp, p, partitions, piece, max_bytes=cap)
            assert all(len(r) <= cap for r in records)
            read = [decode_piece(r) for r in records]
            if len(read) == 1:
                assert_same(read[0].state(CONFIG), piece)
            whole, parts, merger = Aggregator(CONFIG), Aggregator(CONFIG), Merger(CONFIG, fp, p, partitions)
            apply(whole, piece)
            for got in read:
                apply(parts, got.state(CONFIG))
                assert merger.offer(got) is Verdict.NEW
            assert_same(parts.export_state(), whole.export_state())
            assert_same(merger.aggregator.export_state(), whole.export_state())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**CASES, excluded=st.booleans())
def test_held_pieces_added_together_give_the_state_of_one_after_another(
    events: list[Event], partitions: int, seed: int, cap: int, advanced: int | None, excluded: bool
) -> None:
    """`Merger` holds new pieces and adds them several at once when its aggregator is read (or enough
    are held): whatever the batch (any number of pieces, from any ranges, rings read by a tick between
    batches so they keep running span sums, an SLO with a maintenance window), the state equals `apply`
    of each piece in turn, and an SLO's version moves when its state did."""
    rnd = random.Random(seed)
    cfg = replace(CONFIG, slos=tuple(replace(s, max_series=cap) for s in CONFIG.slos))
    if excluded:  # a maintenance window over part of the events' days, for one SLO
        window = Exclusion("m", T0 + DAY * 1000, DAY * 500, slos=(cfg.slos[0].name,))
        cfg = replace(cfg, exclusions=(window,))
    pieces = _records(cfg, events, partitions, [rnd.randrange(1, 100) for _ in range(rnd.randrange(8))])
    newest = max((e.ts_ms for e in events), default=T0)  # (every piece moves the rings up to its range's)
    for p in range(partitions):
        merger, reference = _pair(cfg, p, partitions, advanced)
        clock, last = max(newest, T0 + (advanced or 0) * 1000), merger.aggregator.export_state()
        for i, record in enumerate(pieces[p]):
            got = decode_piece(record)
            assert merger.offer(got) is Verdict.NEW
            apply(reference, got.state(cfg))
            if rnd.random() < 0.3 or i == len(pieces[p]) - 1:
                before = dict(merger.slo_versions)
                agg = merger.aggregator
                state = agg.export_state()
                assert_same(state, reference.export_state())
                for j, spec in enumerate(cfg.slos):
                    if merger.slo_versions.get(j) == before.get(j):  # its version kept: its counts too
                        was, now_ = last.slos[spec.name], state.slos[spec.name]
                        assert was.series.keys == now_.series.keys
                        assert [was.fine.cells.tolist(), was.coarse.cells.tolist()] == [
                            now_.fine.cells.tolist(),
                            now_.coarse.cells.tolist(),
                        ]
                assert_owned_masks_hashed(merger)
                if rnd.random() < 0.5:  # a tick (as the view's): its windows are running sums from here on
                    clock += rnd.randrange(3600) * 1000
                    for a in (agg, reference):
                        a.advance(clock)
                        a.capture(clock)
                last = agg.export_state()


def test_owned_masks_of_keys_from_pieces_from_restores_and_overflow_are_the_hash() -> None:
    """The keys a flush adds from pieces are owned without a hash; every other key is hashed: the
    ``__overflow__`` key a cap makes (every partition past its cap has one), a key whose values really
    are ``__overflow__`` (it came in a piece, but is hashed anyway), the ungrouped SLO's ``()``, and keys
    a checkpoint restored (which may come from another partition layout)."""
    cfg = replace(CONFIG, slos=tuple(replace(s, max_series=2) for s in CONFIG.slos))
    rnd = random.Random(3)
    events = [
        Event(
            ts_ms=T0 + rnd.randrange(3_600_000),
            service=rnd.choice(("checkout", "search")),
            endpoint=rnd.choice(("GET /a", "POST /b", "GET /c", "__overflow__")),
            customer=rnd.choice([f"c{i}" for i in range(8)] + ["__overflow__"]),
            status=rnd.choice((200, 500)),
            latency_ms=float(rnd.randrange(1, 900)),
        )
        for _ in range(300)
    ]
    partitions = 3
    pieces = _records(cfg, events, partitions, [100, 200])
    for p in range(partitions):
        merger = Merger(cfg, config_fingerprint(cfg), p, partitions)
        for record in pieces[p]:
            assert merger.offer(decode_piece(record)) is Verdict.NEW
        assert_owned_masks_hashed(merger)
        assert merger._from_pieces  # (the path without a hash ran)
        # Restored into a merger of another layout: nothing is taken on trust.
        other = Merger(cfg, config_fingerprint(cfg), p, partitions + 1)
        other.aggregator.restore_state(merger.aggregator.export_state())
        assert_owned_masks_hashed(other)


def test_mergers_of_one_config_share_its_spec_fingerprints() -> None:
    """The spec fingerprints are worked out once per config object, not once per partition's merger;
    another config (a reload) gets its own."""
    a, b = Merger(CONFIG, config_fingerprint(CONFIG), 0, 2), Merger(CONFIG, config_fingerprint(CONFIG), 1, 2)
    assert a._fingerprints is b._fingerprints and a._fingerprints == spec_fingerprints(CONFIG)
    other = replace(CONFIG, slos=CONFIG.slos[:1])
    c = Merger(other, config_fingerprint(other), 0, 2)
    assert c._fingerprints == spec_fingerprints(other) != a._fingerprints


def test_a_process_partitions_share_the_held_bytes_within_bounds() -> None:
    """Each partition's share of `HELD_BYTES`, never below the floor nor above the cap (one flush holds
    the event loop), whatever the count (0 included: a process between assignments)."""
    assert held_bytes_each(1) == held_bytes_each(0) == HELD_MAX_BYTES
    assert held_bytes_each(12) == HELD_BYTES // 12
    assert held_bytes_each(10_000) == HELD_MIN_BYTES
    shares = [held_bytes_each(n) for n in range(1, 200)]
    assert all(HELD_MIN_BYTES <= b <= HELD_MAX_BYTES for b in shares)
    assert shares == sorted(shares, reverse=True)
