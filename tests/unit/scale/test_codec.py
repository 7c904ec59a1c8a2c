"""Partial records: round trip, the size cap, refusals of foreign and damaged records."""

from __future__ import annotations

import struct
import zlib
from dataclasses import fields, is_dataclass, replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.checkpoint import CheckpointError
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import LatencySpec
from sloguard.scale.applied import Verdict
from sloguard.scale.codec import (
    COARSE,
    FINE,
    HEAD_INTS,
    Body,
    PieceTooLargeError,
    _deflate,
    _narrow,
    _pack,
    _parse_body,
    decode_piece,
    encode_pieces,
)
from sloguard.scale.merger import Merger, Refused
from sloguard.scale.partials import (
    InputRange,
    config_fingerprint,
    home_partition,
    latency_partition,
    series_partition,
    split,
    summarise,
)
from tests.support.specs import config, slo
from tests.unit.scale.canon import canonical

T0 = 1_767_225_600_000
CONFIG = config(slo(group_by=("endpoint", "customer")), latency=LatencySpec(group_by=("customer",)))
FP = config_fingerprint(CONFIG)
RANGE = InputRange("requests", 7, 1200, 1500)
EVENTS = [
    Event(
        T0 + i * 997, "checkout", f"GET /item/{i % 13}", f"cust-{i % 41}", 500 if i % 9 == 0 else 200, i % 700
    )
    for i in range(300)
]


def test_pieces_round_trip_and_a_small_cap_cuts_by_series() -> None:
    state = summarise(CONFIG, [EventBatch.from_events(EVENTS)])
    whole = encode_pieces(CONFIG, RANGE, FP, 0, 1, state)
    capped = encode_pieces(CONFIG, RANGE, FP, 0, 1, state, max_bytes=1500)
    assert len(whole) == 1 and len(capped) > 3
    assert all(len(r) <= 1500 for r in capped)
    assert capped == encode_pieces(CONFIG, RANGE, FP, 0, 1, state, max_bytes=1500), "deterministic"
    pieces = [decode_piece(r) for r in capped]
    assert {(p.range, p.index, p.count, p.fingerprint) for p in pieces} == {
        (RANGE, i, len(capped), FP) for i in range(len(capped))
    }
    merger = Merger(CONFIG, FP, 0, 1)
    for p in pieces:
        assert merger.offer(p) is Verdict.NEW
    reference = Aggregator(CONFIG)
    reference.ingest(EventBatch.from_events(EVENTS))
    assert (
        canonical(merger.aggregator.export_state())["slo checkout-availability"]
        == canonical(reference.export_state())["slo checkout-availability"]
    )
    assert merger.aggregator.stats.events == 300, "counters travel once"


def test_the_cut_does_not_depend_on_the_compressor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two stage-1 hosts whose zlib compresses differently cut a range over the cap into the same
    records, series for series (else stage 2 could apply record 0 of one cut and record 1 of another):
    here no compression at all vs level 1, and each record still fits."""
    from sloguard.scale import codec

    state = summarise(CONFIG, [EventBatch.from_events(EVENTS)])

    def series(records: list[bytes]) -> list[object]:
        return [canonical(decode_piece(r).state(CONFIG)) for r in records]

    level1 = encode_pieces(CONFIG, RANGE, FP, 0, 1, state, max_bytes=1500)
    monkeypatch.setattr(codec, "_deflate", lambda raw: zlib.compress(raw, 0))
    stored = encode_pieces(CONFIG, RANGE, FP, 0, 1, state, max_bytes=1500)
    assert len(stored) == len(level1) > 3
    assert all(len(r) <= 1500 for r in stored)
    assert series(stored) == series(level1)


def test_one_series_over_the_cap_is_an_error() -> None:
    state = summarise(CONFIG, [EventBatch.from_events(EVENTS[:1])])
    with pytest.raises(PieceTooLargeError, match="over the cap"):
        encode_pieces(CONFIG, RANGE, FP, 0, 1, state, max_bytes=200)


def test_another_slo_file_or_partition_layout_is_refused_not_applied() -> None:
    state = summarise(CONFIG, [EventBatch.from_events(EVENTS)])
    pieces = split(CONFIG, state, 3)
    other = config(
        slo(group_by=("endpoint", "customer"), objective="99.5"), latency=LatencySpec(group_by=("customer",))
    )
    record = encode_pieces(CONFIG, RANGE, config_fingerprint(other), 1, 3, pieces[1])[0]
    merger = Merger(CONFIG, FP, 1, 3)
    outcome = merger.offer(decode_piece(record))
    assert isinstance(outcome, Refused) and "fingerprint" in outcome.reason
    moved = encode_pieces(CONFIG, RANGE, FP, 1, 4, pieces[1])[0]
    outcome = merger.offer(decode_piece(moved))
    assert isinstance(outcome, Refused) and "partition 1 of 4" in outcome.reason
    assert merger.counts == {"refused": 2} and not merger.applied.ranges


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:20], "shorter than its header"),
        (lambda b: b"X" + b[1:], "bad magic"),
        (lambda b: b[:8] + b"\x09\x00" + b[10:], "format version 9"),
        (lambda b: b[:8] + b"\x01\x00" + b[10:], "format version 1; this sloguard reads 4"),
        (lambda b: b[:8] + b"\x02\x00" + b[10:], r"version 2; this sloguard reads 4 \(it laid each SLO"),
        (lambda b: b[:8] + b"\x03\x00" + b[10:], r"version 3; this sloguard reads 4 \(it stored every int"),
        (lambda b: b[:-3], "truncated"),
    ],
    ids=["short", "magic", "version", "version-1", "version-2", "version-3", "truncated-body"],
)
def test_damaged_records_are_refused_with_a_reason(damage: object, message: str) -> None:
    state = summarise(CONFIG, [EventBatch.from_events(EVENTS[:20])])
    (record,) = encode_pieces(CONFIG, RANGE, FP, 0, 1, state)
    with pytest.raises(CheckpointError, match=message):
        decode_piece(damage(record))  # type: ignore[operator]


def test_series_partition_is_pinned() -> None:
    # Pinned values: a change would move every series of a running deployment to another partition.
    assert [series_partition("checkout-availability", ("GET /a", f"c{i}"), 1000) for i in range(4)] == [
        259,
        297,
        82,
        538,
    ]
    assert latency_partition(("checkout", "GET /a"), 1000) == 689
    assert home_partition(1000) == 112
    assert series_partition("a", ("bc",), 1 << 30) != series_partition("ab", ("c",), 1 << 30)


def test_a_body_naming_rows_outside_its_series_is_refused() -> None:
    """Stage 2 adds every SLO's cells at once: a cell past its ring's rows is refused with the piece."""
    state = summarise(CONFIG, [EventBatch.from_events(EVENTS)])
    (record,) = encode_pieces(CONFIG, RANGE, FP, 0, 1, state)
    piece = decode_piece(record)
    assert isinstance(piece.body, Body)
    ints = piece.body.ints.copy()
    heads = ints[: len(CONFIG.slos) * HEAD_INTS].reshape(-1, HEAD_INTS)
    first_cell = len(heads) * HEAD_INTS + int(heads[:, 0].sum())
    ints[first_cell] = int(heads[0, FINE + 4]) * int(heads[0, FINE + 1])  # one past the ring's last cell
    bad = replace(piece, body=Body(piece.body.meta, ints))
    outcome = Merger(CONFIG, FP, 0, 1).offer(bad)
    assert isinstance(outcome, Refused) and "outside its rings" in outcome.reason


def _same(a: Any, b: Any, path: str = "state") -> None:
    """``a`` and ``b`` equal field by field; every array the same ints, and int64."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and b.dtype == np.int64, path
        assert np.array_equal(a, b), path
    elif is_dataclass(a):
        for f in fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, tuple) and any(isinstance(x, np.ndarray) or is_dataclass(x) for x in a):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b and type(a) is type(b), path


def test_a_record_reads_back_as_the_state_it_was_made_of() -> None:
    """Format 4 stores ints narrow and latency keys as steps: reading it back gives the same state,
    array for array (int64), key for key."""
    state = summarise(CONFIG, [EventBatch.from_events(EVENTS)])
    assert state.latency is not None and any(len(r.keys) for r in state.latency.rings)
    (record,) = encode_pieces(CONFIG, RANGE, FP, 0, 1, state)
    _same(state, decode_piece(record).state(CONFIG))


_INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
_EDGES = st.sampled_from(
    [0, 1, 255, 256, 65535, 65536, (1 << 32) - 1, 1 << 32, -1, -(1 << 63), (1 << 63) - 1]
)


@given(st.lists(st.lists(st.one_of(_INT64, _EDGES), max_size=12), max_size=8))
def test_narrow_runs_read_back_exactly(arrays: list[list[int]]) -> None:
    ints = [np.array(a, np.int64) for a in arrays]
    body = _parse_body(_deflate(_pack([0, None, None, [], None], ints)))
    assert body.ints.dtype == np.int64 and body.ints.tolist() == [v for a in arrays for v in a]


def test_runs_are_the_narrowest_width_and_adjacent_widths_join() -> None:
    arrays = [[255], [3, 1], [256], [], [(1 << 32) - 1], [1 << 32], [-1], [0]]
    layout, data = _narrow([np.array(a, np.int64) for a in arrays])
    assert layout == [(1, 3), (2, 1), (4, 1), (8, 2), (1, 1)]
    assert [len(d) for d in data] == [w * n for w, n in layout]


def _raw_body(meta: bytes, runs: list[tuple[int, int]], data: bytes) -> bytes:
    table = struct.pack("<I", len(runs)) + b"".join(struct.pack("<BI", w, n) for w, n in runs)
    return zlib.compress(struct.pack("<I", len(meta)) + meta + table + data)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_raw_body(b"[0,null,null,[]]", [], b""), "meta malformed"),
        (_raw_body(b"[0,null,null,[],null", [], b""), "meta malformed"),
        (_raw_body(b'[0,null,null,[[[["a",1]],0,0]],null]', [], b""), "meta malformed"),
        (_raw_body(b"[0,null,null,[],null]", [(3, 1)], b"abc"), "unknown int width"),
        (_raw_body(b"[0,null,null,[],null]", [(2, 2)], b"abc"), "truncated"),
        (_raw_body(b"[0,null,null,[],null]", [(1, 2)], b"abc"), "truncated"),
        (_raw_body(b"[0,null,null,[],null]", [], b"")[:-1], "truncated or damaged"),
        (zlib.compress(struct.pack("<I", 2) + b"[]"), "truncated"),
    ],
    ids=["short-meta", "not-json", "key-not-str", "width", "short-ints", "long-ints", "stream", "no-runs"],
)
def test_damaged_bodies_are_refused_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        _parse_body(body)


def test_latency_slots_not_matching_their_keys_are_refused() -> None:
    state = summarise(CONFIG, [EventBatch.from_events(EVENTS)])
    (record,) = encode_pieces(CONFIG, RANGE, FP, 0, 1, state)
    piece = decode_piece(record)
    assert isinstance(piece.body, Body) and state.latency is not None
    ints = piece.body.ints.copy()
    heads = ints[: len(CONFIG.slos) * HEAD_INTS].reshape(-1, HEAD_INTS)
    slos_end = heads.size + int(heads[:, 0].sum()) + 3 * int(heads[:, [FINE + 5, COARSE + 5]].sum())
    lat_events = int(ints[slos_end])
    buckets = int(ints[slos_end + 2 + lat_events + 4])  # the first ring's head: slot_ms, n, head, low, ...
    at = slos_end + 2 + lat_events + 6 + buckets  # its first slot's length
    assert buckets and ints[at] > 0
    ints[at] += 1
    bad = replace(piece, body=Body(piece.body.meta, ints))
    outcome = Merger(CONFIG, FP, 0, 1).offer(bad)
    assert isinstance(outcome, Refused) and "latency slots" in outcome.reason
