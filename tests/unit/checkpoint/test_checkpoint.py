"""Checkpoint files: exact round trip, every kind of damage refused, atomic directory store."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from sloguard.checkpoint import (
    FORMAT_VERSION,
    MAGIC,
    Checkpoint,
    CheckpointError,
    DirectoryStore,
    decode,
    encode,
    load_latest,
)
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from tests.unit.core.test_merge import CONFIG, T0, assert_same


def filled() -> Aggregator:
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
        for _ in range(3000)
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
        ("other-format", header.pack(MAGIC, FORMAT_VERSION + 1, length, crc) + body, "format version 2"),
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
