"""Checkpoint files: exact round trip, every kind of damage refused, atomic directory store."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard._types import I64
from sloguard.checkpoint import (
    FORMAT_VERSION,
    MAGIC,
    Checkpoint,
    CheckpointError,
    DirectoryStore,
    decode,
    encode,
    key_steps,
    keys_from_steps,
    load_latest,
    slot_starts,
)
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.state import AggregatorState
from tests.unit.core.test_merge import CONFIG, T0, assert_same

FORMAT_1 = Path(__file__).parent / "data" / "format-1.sgc"


def filled(n: int = 3000) -> Aggregator:
    rng = np.random.default_rng(7)
    agg = Aggregator(CONFIG)
    events = [
        Event(
            T0 + int(rng.integers(0, 3 * 86_400_000)),
            str(rng.choice(["checkout", "search"])),
            str(rng.choice(["GET /a", "POST /b", "GET /c"])),
            # Label values a JSON encoder must escape, and non-ASCII.
            str(rng.choice(["c1", 'quote"d', "back\\slash", "tab\t", "ünï", "\u2028"])),
            int(rng.choice([200, 404, 500, 503])),
            float(rng.uniform(0, 5000)),
        )
        for _ in range(n)
    ]
    agg.ingest(EventBatch.from_events(events))
    return agg


def checkpoint(agg: Aggregator) -> Checkpoint:
    return Checkpoint(
        state=agg.export_state(),
        offsets={("requests", 0): 1234, ("requests", 1): 0, ("other", 7): 2**40},
        created_ms=T0,
        sloguard_version="test",
        info={"config": "slos.yaml"},
    )


def test_round_trip_is_exact() -> None:
    agg = filled()
    data = encode(checkpoint(agg))
    back = decode(data)
    assert back.offsets == checkpoint(agg).offsets
    assert (back.created_ms, back.sloguard_version, back.info) == (T0, "test", {"config": "slos.yaml"})
    restored = Aggregator(CONFIG)
    restored.restore_state(back.state)
    for now in (T0 + 3 * 86_400_000, T0 + 3 * 86_400_000 + 5_400_000):
        assert_same(agg.snapshot(now), restored.snapshot(now))
    # Compact: far below the dense size of the rings.
    assert len(data) < 200_000


def damaged(data: bytes) -> list[tuple[str, bytes, str]]:
    header = struct.Struct("<8sIQI")
    _, _, length, crc = header.unpack_from(data)
    body = data[header.size :]
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    bad_json = zlib.compress(struct.pack("<I", 5) + b"{nope")
    bad_state = encode_meta({"state_version": 999})
    return [
        ("empty", b"", "truncated"),
        ("short-header", data[:10], "truncated"),
        ("truncated-body", data[:-100], "truncated"),
        ("bit-flip", bytes(flipped), "checksum"),
        ("bad-magic", b"NOTACKPT" + data[8:], "bad magic"),
        ("other-format", header.pack(MAGIC, FORMAT_VERSION + 1, length, crc) + body, "format version 3"),
        (
            "bad-json",
            header.pack(MAGIC, FORMAT_VERSION, len(bad_json), zlib.crc32(bad_json)) + bad_json,
            "malformed",
        ),
        ("state-version", bad_state, "state version 999"),
    ]


def frame(body: bytes) -> bytes:
    return struct.pack("<8sIQI", MAGIC, FORMAT_VERSION, len(body), zlib.crc32(body)) + body


def encode_meta(meta: dict[str, object]) -> bytes:
    raw = json.dumps(meta).encode()
    return frame(zlib.compress(struct.pack("<I", len(raw)) + raw))


def test_damaged_checkpoints_are_refused_with_a_reason() -> None:
    data = encode(checkpoint(filled()))
    for name, bad, reason in damaged(data):
        with pytest.raises(CheckpointError, match=reason):
            decode(bad)
        assert name


def test_directory_store_keeps_newest_and_falls_back(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "ckpt", keep=3)
    store.prepare()
    (store.directory / ".tmp-checkpoint-000000000009.sgc").write_bytes(b"half")
    store.prepare()  # a crash mid-write leaves a temp file: cleaned up
    assert not list(store.directory.glob(".tmp-*"))
    agg = filled()
    names = []
    for i in range(5):
        cp = checkpoint(agg)
        names.append(store.save(encode(Checkpoint(cp.state, {("t", 0): i}, T0 + i))))
    assert store.names() == names[::-1][:3]
    assert sorted(os.listdir(store.directory)) == sorted(names[2:])
    # The newest is corrupt: refused with its name and reason, the previous one is used.
    (store.directory / names[-1]).write_bytes(b"garbage")
    refused: list[tuple[str, str]] = []
    found = load_latest(store, lambda name, why: refused.append((name, why)))
    assert found is not None
    assert found[0] == names[-2]
    assert found[1].offsets == {("t", 0): 3}
    assert refused == [(names[-1], "truncated: 7 bytes, shorter than the header")]


def test_no_checkpoint_yet(tmp_path: Path) -> None:
    assert load_latest(DirectoryStore(tmp_path / "none"), lambda n, w: None) is None


def test_unwritable_directory_fails_cleanly(tmp_path: Path) -> None:
    # A file where the directory should be: fails for root too (chmod would not).
    blocker = tmp_path / "ckpt"
    blocker.write_bytes(b"")
    store = DirectoryStore(blocker)
    with pytest.raises(OSError):
        store.prepare()
    with pytest.raises(OSError):
        store.save(b"x")


def _same_state(a: AggregatorState, b: AggregatorState) -> None:
    """Equal field by field, every array the same int64s."""
    assert (a.events, a.newest_ms, a.oldest_ms, a.slos.keys()) == (
        b.events,
        b.newest_ms,
        b.oldest_ms,
        b.slos.keys(),
    )
    pairs: list[tuple[object, object]] = [(a.slos[n], b.slos[n]) for n in a.slos]
    pairs += [(a.latency, b.latency)]
    while pairs:
        x, y = pairs.pop()
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and y.dtype == np.int64 and np.array_equal(x, y)
        elif is_dataclass(x):
            pairs += [(getattr(x, f.name), getattr(y, f.name)) for f in fields(x)]
        elif isinstance(x, tuple) and x and is_dataclass(x[0]):
            assert isinstance(y, tuple) and len(x) == len(y)
            pairs += list(zip(x, y, strict=True))
        else:
            assert x == y


def test_round_trip_keeps_every_array() -> None:
    state = filled().export_state()
    assert state.latency is not None and max(len(r.keys) for r in state.latency.rings) > 10
    _same_state(state, decode(encode(checkpoint(filled()))).state)


def test_a_format_1_checkpoint_still_loads() -> None:
    """Written by the checkpoint module of a9c8314 (format 1: latency keys as they are, zlib level 6)
    from ``filled()``'s state."""
    data = FORMAT_1.read_bytes()
    assert struct.unpack_from("<I", data, 8) == (1,)
    cp = decode(data)
    assert (cp.offsets, cp.created_ms, cp.sloguard_version) == ({("requests", 0): 3000}, T0, "format-1")
    _same_state(filled().export_state(), cp.state)


@given(st.lists(st.integers(0, 5), max_size=10), st.data())
def test_latency_keys_as_steps_read_back_exactly(lengths: list[int], data: st.DataObject) -> None:
    """Any keys (sorted or not, any int64: the steps wrap as the sums do) and slot lengths, empty ones
    too."""
    n = sum(lengths)
    keys = np.array(
        data.draw(st.lists(st.integers(-(1 << 63), (1 << 63) - 1), min_size=n, max_size=n)), np.int64
    )
    held = np.array(lengths, np.int64)
    steps, jumps = key_steps(keys, held)
    assert len(steps) == n and len(jumps) == sum(1 for v in lengths if v)
    assert keys_from_steps(steps, jumps, slot_starts(held)).tolist() == keys.tolist()


def test_sorted_slot_keys_are_small_steps() -> None:
    keys = np.array([600_000, 600_003, 600_010, 5, 9, 700_000], np.int64)
    steps, jumps = key_steps(keys, np.array([3, 0, 2, 1], np.int64))
    assert steps.tolist() == [0, 3, 7, 0, 4, 0] and jumps.tolist() == [600_000, 5 - 600_010, 700_000 - 9]


def _rewritten(data: bytes, change: Callable[[dict[str, Any], list[I64]], None]) -> bytes:
    """``data`` (a checkpoint) with its meta and arrays changed by ``change``, framed again."""
    raw = zlib.decompress(data[24:])
    (n,) = struct.unpack_from("<I", raw)
    meta = json.loads(raw[4 : 4 + n])
    arrays, at = [], 4 + n
    for spec in meta["arrays"]:
        dt = np.dtype(spec["dtype"])
        arrays.append(np.frombuffer(raw, dt, spec["n"], at).astype(np.int64))
        at += spec["n"] * dt.itemsize
    change(meta, arrays)
    meta["arrays"] = [{"dtype": "<i8", "n": len(a)} for a in arrays]
    head = json.dumps(meta).encode()
    return frame(zlib.compress(struct.pack("<I", len(head)) + head + b"".join(a.tobytes() for a in arrays)))


def _ring(meta: dict[str, Any]) -> dict[str, Any]:
    rings = [r for r in meta["state"]["latency"]["rings"] if r["lengths"]]
    ring: dict[str, Any] = max(rings, key=lambda r: r["buckets"]["$a"])
    return ring


def test_latency_rings_whose_steps_do_not_fit_their_slots_are_refused() -> None:
    data = encode(checkpoint(filled()))

    def longer(meta: dict[str, Any], arrays: list[I64]) -> None:
        i = _ring(meta)["lengths"]["$a"]
        arrays[i] = arrays[i] + 1

    def fewer_jumps(meta: dict[str, Any], arrays: list[I64]) -> None:
        i = _ring(meta)["jumps"]["$a"]
        arrays[i] = arrays[i][1:]

    _same_state(decode(_rewritten(data, lambda m, a: None)).state, filled().export_state())
    with pytest.raises(CheckpointError, match="other lengths than their keys"):
        decode(_rewritten(data, longer))
    with pytest.raises(CheckpointError, match="other jumps than slots"):
        decode(_rewritten(data, fewer_jumps))
