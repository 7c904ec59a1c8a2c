"""Checkpoints: the aggregator's state and the source offsets it corresponds to, written atomically.

Like Flink and Kafka Streams, sloguard gets exactly-once state by storing state and offsets *together*:
a checkpoint says "this state holds every event before these offsets, and none after". After a crash
the daemon restores the newest good checkpoint and seeks each partition back to its offset, so every
event is counted once: those before the offset are in the restored state, those after are read again.

File format (version 2)::

    magic  b"SLGCKPT\\n"            8 bytes
    format u32 little-endian        2 (version 1 is read too)
    length u64 little-endian        length of the body
    crc32  u32 little-endian        zlib.crc32 of the body
    body   zlib( u32 meta_len | meta (JSON, UTF-8) | array bytes )

``meta`` holds the offsets, the series keys and the shape of the state tree, with every array replaced
by ``{"$a": i}``; ``arrays`` in meta gives each one's dtype and length, and their bytes follow in order.
Arrays are stored in the narrowest integer type that holds them. Nothing is pickled: a checkpoint from
an untrusted disk can be refused, never executed.

Version 2 stores a latency ring's ``keys`` (most of a checkpoint with latency groups: sorted within
each slot, up to ``rows · counts_len``) as steps (`key_steps`): ``keys`` holds each key less the one
before it, 0 at a slot's first key, and ``jumps`` (version 2 only) that difference for each non-empty
slot's first key. Steps fit a byte or two where keys need four, and they repeat: on bench-scale's
stage-2 state a third fewer bytes to compress and a third smaller. Version 1 stored the keys as they
are; it is still read. A sloguard that reads only version 1 refuses version 2 ("format version 2"), and
falls back to an older checkpoint if it has one.

The body is compressed with ISA-L (`sloguard.deflate`) at its level 1: a zlib stream like any other
(version 1 used zlib's level 6; either is read). On bench-scale's 12 stage-2 partitions (12k series,
written every ``checkpoint.interval``), encoding took 404 ms for 3.15 MB in version 1, 50 ms for
2.17 MB in version 2 (compression alone: 337 ms at zlib's level 6, 12 ms at ISA-L's level 1 with the
steps; without them ISA-L made 5.2 MB).

``meta["slas"]`` (optional, added after format 1 was first written) holds the live SLA counters by SLA
name (`sloguard.core.sla_live.SlaState`): a checkpoint without it still loads, with no SLA counts, and a
sloguard that predates it reads the rest and ignores it, so the format version stayed 1.

Stores sit behind `CheckpointStore` (save bytes, list, read), so a Kafka-topic store can follow the
local `DirectoryStore`: temp file, fsync, rename, fsync the directory, keep the newest ``keep``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import msgspec
import numpy as np
import numpy.typing as npt

from sloguard._types import I64
from sloguard.core.sla import SlaCounterState
from sloguard.core.sla_live import SlaState
from sloguard.core.state import (
    STATE_VERSION,
    AggregatorState,
    HistRingState,
    LatencyState,
    RingState,
    SeriesState,
    SloState,
)
from sloguard.deflate import DeflateError, compress, decompress

MAGIC = b"SLGCKPT\n"
FORMAT_VERSION = 2
#: The versions `decode` reads (version 1: latency ring keys stored as they are).
READS = (1, 2)
#: ISA-L's level for the body (0-3; not zlib's levels).
LEVEL = 1
_HEADER = struct.Struct("<8sIQI")

TP = tuple[str, int]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (corrupt, truncated, another format or state version)."""


@dataclass(frozen=True)
class Checkpoint:
    """State plus the next offset of every partition whose events it holds."""

    state: AggregatorState
    offsets: dict[TP, int]
    created_ms: int
    sloguard_version: str = ""
    #: Free-form details for people (config path, host); not interpreted.
    info: dict[str, str] = field(default_factory=dict)
    #: The live SLA counters by SLA name, taken with ``state`` (empty: none, or an older checkpoint).
    slas: dict[str, SlaState] = field(default_factory=dict)


# -- encoding -----------------------------------------------------------------------------------------


#: The array types, narrowest first, with their greatest value (negative ints: int64).
_TYPES = [(np.dtype(t).newbyteorder("<"), int(np.iinfo(t).max)) for t in (np.uint8, np.uint16, np.uint32)]
_INT64 = np.dtype(np.int64).newbyteorder("<")


class _Arrays:
    def __init__(self) -> None:
        self.specs: list[dict[str, Any]] = []
        self.blobs: list[bytes] = []

    def put(self, arr: npt.NDArray[Any]) -> dict[str, int]:
        a = np.asarray(arr, np.int64)
        dt = _TYPES[0][0]
        if len(a):
            hi = int(a.max())
            dt = _INT64 if int(a.min()) < 0 else next((t for t, top in _TYPES if hi <= top), _INT64)
        self.specs.append({"dtype": dt.str, "n": len(a)})
        self.blobs.append(a.astype(dt).tobytes())
        return {"$a": len(self.specs) - 1}


def slot_starts(lengths: I64) -> I64:
    """Where each non-empty slot's keys begin, of slots holding ``lengths`` keys."""
    return (np.cumsum(lengths) - lengths)[lengths > 0]


def key_steps(keys: I64, lengths: I64) -> tuple[I64, I64]:
    """A latency ring's ``keys`` (slots of ``lengths`` keys, ascending in each) as steps and jumps:
    ``steps`` each key less the one before it, but 0 at each non-empty slot's first key, whose
    difference is in ``jumps`` (the first less 0). Small when the keys are sorted; exact for any int64
    keys (`keys_from_steps` undoes it; the differences wrap as the sums do)."""
    steps = np.diff(keys, prepend=0)
    starts = slot_starts(lengths)
    jumps = steps[starts]
    steps[starts] = 0
    return steps, jumps


def keys_from_steps(steps: I64, jumps: I64, starts: I64) -> I64:
    """`key_steps`' ``keys`` again (``starts``: `slot_starts` of its lengths)."""
    keys = steps.copy()
    keys[starts] = jumps
    return np.cumsum(keys, out=keys)


# The fields of each ring state in file order, by kind: "i" an integer, "o" an integer or None, "a" an
# array (stored as ``{"$a": index}``). One table for both directions, so encode and decode cannot drift.
_Fields = tuple[tuple[str, str], ...]
_RING_FIELDS: _Fields = (
    ("res_ms", "i"),
    ("n", "i"),
    ("head", "o"),
    ("low", "o"),
    ("rows", "i"),
    ("cells", "a"),
    ("total", "a"),
    ("bad", "a"),
)
_HIST_FIELDS: _Fields = (
    ("slot_ms", "i"),
    ("n", "i"),
    ("head", "o"),
    ("low", "o"),
    ("buckets", "a"),
    ("lengths", "a"),
    ("keys", "a"),
    ("counts", "a"),
)


def _put_fields(state: RingState | HistRingState, fields: _Fields, arrays: _Arrays) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in fields:
        value = getattr(state, name)
        out[name] = arrays.put(value) if kind == "a" else value
    return out


def _series(s: SeriesState, arrays: _Arrays) -> dict[str, Any]:
    return {"keys": [list(k) for k in s.keys], "row_events": arrays.put(s.row_events)}


def _sla(s: SlaState, arrays: _Arrays) -> dict[str, Any]:
    c = s.counter
    return {
        "fingerprint": s.fingerprint,
        "since_ms": s.since_ms,
        "start_ms": c.start_ms,
        "end_ms": c.end_ms,
        "series": _series(c.series, arrays),
        "keys": arrays.put(c.keys),
        "total": arrays.put(c.total),
        "bad": arrays.put(c.bad),
        "overflowed": list(c.overflowed),
        "outside": c.outside,
    }


def _hist_ring(r: HistRingState, arrays: _Arrays) -> dict[str, Any]:
    """A latency ring's fields, its keys as steps and jumps (`key_steps`)."""
    steps, jumps = key_steps(r.keys, r.lengths)
    out: dict[str, Any] = {}
    for name, kind in _HIST_FIELDS:
        value = steps if name == "keys" else getattr(r, name)
        out[name] = arrays.put(value) if kind == "a" else value
    out["jumps"] = arrays.put(jumps)
    return out


def encode(checkpoint: Checkpoint, level: int = LEVEL) -> bytes:
    """The checkpoint as bytes (format above); ``level`` is ISA-L's (0-3)."""
    st = checkpoint.state
    arrays = _Arrays()
    slos = {
        name: {
            "fingerprint": s.fingerprint,
            "series": _series(s.series, arrays),
            "fine": _put_fields(s.fine, _RING_FIELDS, arrays),
            "coarse": _put_fields(s.coarse, _RING_FIELDS, arrays),
            "too_old": s.too_old,
            "events": s.events,
        }
        for name, s in st.slos.items()
    }
    latency = None
    if st.latency is not None:
        latency = {
            "fingerprint": st.latency.fingerprint,
            "series": _series(st.latency.series, arrays),
            "rings": [_hist_ring(r, arrays) for r in st.latency.rings],
            "too_old": st.latency.too_old,
        }
    meta = {
        "state_version": st.version,
        "created_ms": checkpoint.created_ms,
        "sloguard_version": checkpoint.sloguard_version,
        "info": checkpoint.info,
        "offsets": [[t, p, o] for (t, p), o in sorted(checkpoint.offsets.items())],
        "state": {
            "slos": slos,
            "latency": latency,
            "events": st.events,
            "newest_ms": st.newest_ms,
            "oldest_ms": st.oldest_ms,
        },
        "slas": {name: _sla(s, arrays) for name, s in sorted(checkpoint.slas.items())},
        "arrays": arrays.specs,
    }
    meta_bytes = msgspec.json.encode(meta)
    body = compress(b"".join([struct.pack("<I", len(meta_bytes)), meta_bytes, *arrays.blobs]), level)
    return _HEADER.pack(MAGIC, FORMAT_VERSION, len(body), zlib.crc32(body)) + body


# -- decoding -----------------------------------------------------------------------------------------


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise CheckpointError(f"expected an integer, got {v!r}")
    return v


def _opt_int(v: Any) -> int | None:
    return None if v is None else _int(v)


def decode(data: bytes) -> Checkpoint:
    """Parse and verify a checkpoint; raises `CheckpointError` saying what is wrong."""
    if len(data) < _HEADER.size:
        raise CheckpointError(f"truncated: {len(data)} bytes, shorter than the header")
    magic, fmt, length, crc = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CheckpointError("not a sloguard checkpoint (bad magic)")
    if fmt not in READS:
        raise CheckpointError(f"format version {fmt}; this sloguard reads {' and '.join(map(str, READS))}")
    body = data[_HEADER.size :]
    if len(body) != length:
        raise CheckpointError(f"truncated: body is {len(body)} bytes, header says {length}")
    if zlib.crc32(body) != crc:
        raise CheckpointError("checksum mismatch (corrupt file)")
    try:
        raw = decompress(body)
        (meta_len,) = struct.unpack_from("<I", raw)
        meta = json.loads(raw[4 : 4 + meta_len].decode())
        return _from_meta(meta, memoryview(raw)[4 + meta_len :], fmt)
    except CheckpointError:
        raise
    except (DeflateError, struct.error, ValueError, KeyError, TypeError, IndexError) as exc:
        raise CheckpointError(f"malformed content: {exc!r}") from None


def _read_arrays(specs: list[dict[str, Any]], blob: memoryview) -> list[I64]:
    """The arrays after the meta, as int64, checked against their declared types and lengths."""
    arrays: list[I64] = []
    pos = 0
    for spec in specs:
        dt = np.dtype(spec["dtype"])
        if dt.kind not in "iu":
            raise CheckpointError(f"unexpected array type {spec['dtype']!r}")
        size = _int(spec["n"]) * dt.itemsize
        if pos + size > len(blob):
            raise CheckpointError("array data shorter than declared")
        arrays.append(np.frombuffer(blob[pos : pos + size], dt).astype(np.int64))
        pos += size
    if pos != len(blob):
        raise CheckpointError("trailing bytes after the arrays")
    return arrays


def _get_fields(d: dict[str, Any], fields: _Fields, arrays: list[I64]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in fields:
        v = d[name]
        out[name] = arrays[_int(v["$a"])] if kind == "a" else _int(v) if kind == "i" else _opt_int(v)
    return out


def _series_from(d: dict[str, Any], arrays: list[I64]) -> SeriesState:
    keys = tuple(tuple(str(part) for part in k) for k in d["keys"])
    return SeriesState(keys, arrays[_int(d["row_events"]["$a"])])


def _hist_ring_from(d: dict[str, Any], arrays: list[I64], fmt: int) -> HistRingState:
    ring = HistRingState(**_get_fields(d, _HIST_FIELDS, arrays))
    if fmt == 1:
        return ring
    lengths, steps = ring.lengths, ring.keys
    if len(lengths) and (int(lengths.min()) < 0 or int(lengths.sum()) != len(steps)):
        raise CheckpointError("latency slots of other lengths than their keys")
    starts = slot_starts(lengths)
    jumps = arrays[_int(d["jumps"]["$a"])]
    if len(jumps) != len(starts):
        raise CheckpointError("latency ring with other jumps than slots")
    return replace(ring, keys=keys_from_steps(steps, jumps, starts))


def _state_from(st: dict[str, Any], arrays: list[I64], fmt: int) -> AggregatorState:
    slos = {
        str(name): SloState(
            fingerprint=str(s["fingerprint"]),
            series=_series_from(s["series"], arrays),
            fine=RingState(**_get_fields(s["fine"], _RING_FIELDS, arrays)),
            coarse=RingState(**_get_fields(s["coarse"], _RING_FIELDS, arrays)),
            too_old=_int(s["too_old"]),
            events=_int(s["events"]),
        )
        for name, s in st["slos"].items()
    }
    lat = st["latency"]
    latency = (
        None
        if lat is None
        else LatencyState(
            fingerprint=str(lat["fingerprint"]),
            series=_series_from(lat["series"], arrays),
            rings=tuple(_hist_ring_from(r, arrays, fmt) for r in lat["rings"]),
            too_old=_int(lat["too_old"]),
        )
    )
    return AggregatorState(
        slos=slos,
        latency=latency,
        events=_int(st["events"]),
        newest_ms=_opt_int(st["newest_ms"]),
        oldest_ms=_opt_int(st["oldest_ms"]),
    )


def _slas_from(slas: dict[str, Any], arrays: list[I64]) -> dict[str, SlaState]:
    def one(d: dict[str, Any]) -> SlaState:
        counter = SlaCounterState(
            start_ms=_int(d["start_ms"]),
            end_ms=_int(d["end_ms"]),
            series=_series_from(d["series"], arrays),
            keys=arrays[_int(d["keys"]["$a"])],
            total=arrays[_int(d["total"]["$a"])],
            bad=arrays[_int(d["bad"]["$a"])],
            overflowed=tuple(str(c) for c in d["overflowed"]),
            outside=_int(d["outside"]),
        )
        return SlaState(str(d["fingerprint"]), _int(d["since_ms"]), counter)

    return {str(name): one(d) for name, d in slas.items()}


def _from_meta(meta: dict[str, Any], blob: memoryview, fmt: int) -> Checkpoint:
    version = meta["state_version"]
    if version != STATE_VERSION:
        raise CheckpointError(f"state version {version!r}; this sloguard reads {STATE_VERSION}")
    arrays = _read_arrays(meta["arrays"], blob)
    offsets = {(str(t), _int(p)): _int(o) for t, p, o in meta["offsets"]}
    return Checkpoint(
        state=_state_from(meta["state"], arrays, fmt),
        offsets=offsets,
        created_ms=_int(meta["created_ms"]),
        sloguard_version=str(meta.get("sloguard_version", "")),
        info={str(k): str(v) for k, v in meta.get("info", {}).items()},
        slas=_slas_from(meta.get("slas", {}), arrays),
    )


# -- stores -------------------------------------------------------------------------------------------


class CheckpointStore(Protocol):
    """Where checkpoints live. Implementations must make `save` atomic: a reader sees the old list or
    the new one, never a partial checkpoint under a listed name."""

    def save(self, data: bytes) -> str:
        """Store a new checkpoint; returns its name. Raises OSError on failure."""
        ...

    def names(self) -> list[str]:
        """Stored checkpoints, newest first."""
        ...

    def read(self, name: str) -> bytes: ...

    def describe(self) -> str:
        """Where, for log lines (a path, a topic)."""
        ...


_NAME = re.compile(r"checkpoint-(\d{12})\.sgc")


class DirectoryStore:
    """Checkpoints as files ``checkpoint-<sequence>.sgc`` in one local directory (a PersistentVolume).

    ``save``: write ``.tmp-*`` in the same directory, fsync it, rename it into place, fsync the
    directory (so the rename itself survives a power cut), then delete all but the newest ``keep``.
    """

    def __init__(self, directory: str | Path, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.directory = Path(directory)
        self.keep = keep

    def describe(self) -> str:
        return str(self.directory)

    def prepare(self) -> None:
        """Create the directory; remove temp files left by a crash mid-write. Raises OSError."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for tmp in self.directory.glob(".tmp-checkpoint-*"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def names(self) -> list[str]:
        try:
            entries = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted((e for e in entries if _NAME.fullmatch(e)), reverse=True)

    def read(self, name: str) -> bytes:
        return (self.directory / name).read_bytes()

    def save(self, data: bytes) -> str:
        existing = self.names()
        newest = _NAME.fullmatch(existing[0]) if existing else None
        seq = int(newest[1]) + 1 if newest else 1
        name = f"checkpoint-{seq:012d}.sgc"
        tmp = self.directory / f".tmp-{name}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(self.directory)
        for old in [name, *existing][self.keep :]:
            with contextlib.suppress(OSError):
                (self.directory / old).unlink()
        return name


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_latest(
    store: CheckpointStore, on_refused: Callable[[str, str], None]
) -> tuple[str, Checkpoint] | None:
    """The newest checkpoint that decodes; each one refused on the way is reported as (name, reason)."""
    for name in store.names():
        try:
            return name, decode(store.read(name))
        except CheckpointError as exc:
            on_refused(name, str(exc))
        except OSError as exc:
            on_refused(name, f"cannot read: {exc.strerror or exc}")
    return None
