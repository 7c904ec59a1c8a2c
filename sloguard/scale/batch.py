"""Adding the SLO counts of several pieces to a partition's SLOs at once: every SLO's cells in a few
numpy calls, then one `BucketRing.add_kept` per ring that got cells.

A piece's SLO counts are `Runs` (each array of every SLO end to end). Adding one SLO's part of one piece
the way a restore and a merge would (`sloguard.scale.merger`) costs ~60 numpy calls on arrays of a few
cells; with 62 SLOs that was ~7 ms a piece whatever its size. Here the per-cell arithmetic (which bucket
a cell is, whether the ring still keeps it, which row of ours it goes to, cells that land on one) is done
once for all SLOs and all pieces held, and only the final add is per ring.

Why the state is the one adding each piece in turn gives:

* a ring keeps the buckets ``(head − n, head]`` of the cells offered, ``head`` the newest offered
  (`sloguard.scale.partials`): adding the pieces at once moves each ring to the newest head of them all,
  keeps the cells of buckets after ``head − n`` (a cell's bucket is read from its own piece's head:
  ``head − (head − slot) mod n``) and sums the rest. Its ``low`` is the oldest of the lows;
* a new key gets its row when a merge meets it, piece by piece in order: rows are given here in that
  order (SLO by SLO, pieces in the order they came), before any cell is added;
* every other counter is a sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np

from sloguard._types import I64, Bools, Intp
from sloguard.core.aggregator import SloAggregate
from sloguard.core.series import SeriesIndex
from sloguard.core.windows import BucketRing
from sloguard.scale.codec import COARSE, FINE, Runs

__all__ = ["add_runs", "rows_of"]

_NONE = np.iinfo(np.int64).min
_EMPTY = np.zeros(0, np.int64)
_MAX = np.iinfo(np.int64).max


def _starts(sizes: I64) -> I64:
    """Where each of ``sizes`` begins when laid end to end."""
    out = np.zeros(len(sizes), np.int64)
    np.cumsum(sizes[:-1], out=out[1:])
    return out


def rows_of(series: SeriesIndex, keys: Sequence[tuple[str, ...]]) -> list[int]:
    """The rows of ``keys`` in ``series``, new keys given rows in order (as a merge of a restored
    index would). Known keys are looked up in C (``map``): a lookup changes nothing, so only the new
    keys' turns matter."""
    found = list(map(series.rows_by_key.get, keys))
    if None not in found:
        return cast("list[int]", found)
    return [series.row_for_key(t) if r is None else r for t, r in zip(keys, found, strict=True)]


def add_runs(slos: Sequence[SloAggregate], held: Sequence[Runs], skip: frozenset[int]) -> list[bool]:
    """Add ``held`` (pieces' SLO counts, in the order they came) into ``slos`` (the aggregator's, in the
    SLO file's order), but SLOs in ``skip`` (added otherwise); per SLO, whether its state changed."""
    k, n = len(held), len(slos)
    if not n or not k:
        return [False] * n
    heads = np.stack([r.heads for r in held]) if k > 1 else held[0].heads[None]  # (k, n, HEAD_INTS)
    active = np.ones(n, np.bool_)
    active[list(skip)] = False
    # Rows of every key, SLO by SLO in the order the pieces came (a key's row is given when first met).
    rows: list[int] = []
    sizes: list[int] = []  # keys per (piece, SLO)
    on = active.tolist()
    for runs in held:
        for i, keys in enumerate(runs.keys):
            if keys and on[i]:
                rows += rows_of(slos[i].series, keys)
            sizes.append(len(keys) if on[i] else 0)
    counts = np.array(sizes, np.int64).reshape(k, n)
    row_map = np.array(rows, np.intp)
    key_at = _starts(counts.reshape(-1))  # where each (piece, SLO)'s rows begin in row_map
    series_rows = np.array([len(s.series) for s in slos], np.int64)
    piece_too_old = np.array([r.too_old for r in held], np.int64)
    piece_events = np.array([r.events for r in held], np.int64)
    full = active & (
        (counts > 0).any(axis=0)
        | (heads[:, :, [FINE + 5, COARSE + 5]] > 0).any(axis=(0, 2))
        | (piece_too_old != 0).any(axis=0)
        | (piece_events != 0).any(axis=0)
    )
    before = [(s.fine.head, s.fine.low, s.coarse.head, s.coarse.low) for s in slos]
    for i in np.flatnonzero(full).tolist():
        needed = int(series_rows[i])
        for ring in (slos[i].fine, slos[i].coarse):
            if ring.rows < needed:  # (else `ensure_rows` changes nothing: skip its pass over the spans)
                ring.ensure_rows(needed)
    for at, fine in ((FINE, True), (COARSE, False)):
        rings = [s.fine if fine else s.coarse for s in slos]
        cells = [r.fine if fine else r.coarse for r in held]
        _add_ring(rings, heads[:, :, at : at + 6], cells, active, row_map, key_at, series_rows)
    _add_events(slos, heads[:, :, 0], [r.row_events for r in held], full, row_map, key_at, counts)
    too_old, events = piece_too_old.sum(axis=0).tolist(), piece_events.sum(axis=0).tolist()
    changed: list[bool] = full.tolist()
    for i, s in enumerate(slos):
        if changed[i]:
            s.too_old += too_old[i]
            s.events += events[i]
            if s.judged is not None:
                s.judged.forget()
        else:
            changed[i] = before[i] != (s.fine.head, s.fine.low, s.coarse.head, s.coarse.low)
    return changed


def _add_ring(
    rings: list[BucketRing],
    heads: I64,
    runs: list[tuple[I64, I64, I64]],
    active: Bools,
    row_map: Intp,
    key_at: I64,
    series_rows: I64,
) -> None:
    """One kind of ring (fine or coarse) of every SLO: ``heads`` each piece's and SLO's six ring ints
    (``res_ms, n, head, low, rows, cells``), ``runs`` each piece's cells, totals and bads."""
    k, n = heads.shape[:2]
    ring_n = np.array([r.n for r in rings], np.int64)
    piece_heads, lows = heads[:, :, 2], heads[:, :, 3]
    newest = piece_heads.max(axis=0)  # per SLO; _NONE: no piece moved it
    oldest = np.where(lows == _NONE, _MAX, lows).min(axis=0)
    ours = np.array([_NONE if r.head is None else r.head for r in rings], np.int64)
    top = np.maximum(newest, ours)  # each ring's head once every piece is added
    sizes = heads[:, :, 5].reshape(-1)
    # Each SLO's cells get a block of codes of their own (n slots x its rows), numbered as the ring
    # does: one sort puts them in order, SLO by SLO, and sums the cells that land on one (a cell in
    # several pieces, or keys sharing the overflow row).
    base = _starts(ring_n * series_rows)
    unique = total = bad = _EMPTY
    if sizes.any():
        # Per (piece, SLO) group, piece-major as the runs are: g = piece · n + SLO.
        group = np.repeat(np.arange(k * n), sizes)
        cells = np.concatenate([r[0] for r in runs]) if k > 1 else runs[0][0]
        cell_total = np.concatenate([r[1] for r in runs]) if k > 1 else runs[0][1]
        cell_bad = np.concatenate([r[2] for r in runs]) if k > 1 else runs[0][2]
        piece_rows = heads[:, :, 4].reshape(-1)[group]
        slot = cells // piece_rows  # (np.divmod: its remainder is several times slower than this)
        row = cells - slot * piece_rows
        kept = _kept(group, slot, heads, ring_n, top, active)
        if kept is not None:
            group, slot, row = group[kept], slot[kept], row[kept]
            cell_total, cell_bad = cell_total[kept], cell_bad[kept]
        # A cell's slot is the same in its piece's ring and ours (its bucket mod n); its row is ours.
        code = np.tile(base, k)[group] + slot * np.tile(series_rows, k)[group] + row_map[key_at[group] + row]
        order = np.argsort(code, kind="stable")  # (stable: timsort, which takes the pieces' runs as they are)
        code = code[order]
        step = code[1:] != code[:-1]
        if step.all():
            unique, total, bad = code, cell_total[order], cell_bad[order]
        else:
            first = np.flatnonzero(np.concatenate(([True], step)))
            unique = code[first]
            total = np.add.reduceat(cell_total[order], first)
            bad = np.add.reduceat(cell_bad[order], first)
    cuts = np.searchsorted(unique, np.append(base, _MAX)).tolist()
    # Each cell's slot and row in its ring, once for every SLO (a code is its SLO's base + slot · rows +
    # row): `add_kept` takes them as they are.
    slot_of = row_of = _EMPTY
    if len(unique):
        slo = np.repeat(np.arange(n), np.diff(cuts))
        within = unique - base[slo]
        per = series_rows[slo]
        slot_of = within // per
        row_of = within - slot_of * per
    heads_at, lows_at = newest.tolist(), oldest.tolist()
    for i in np.flatnonzero(active & (newest != _NONE)).tolist():
        ring, head, low = rings[i], heads_at[i], lows_at[i]
        a, z = cuts[i], cuts[i + 1]
        if a == z:  # no cells: only the ring moves (most SLOs of a small piece)
            ring.advance(head)
            if low != _MAX:
                ring.low = low if ring.low is None else min(ring.low, low)
            continue
        # The cells are distinct (one sort summed those that land on one), of buckets the ring keeps once
        # at ``head`` (`_kept`), and their rows ours.
        ring.add_kept(head, None if low == _MAX else low, slot_of[a:z], row_of[a:z], total[a:z], bad[a:z])


def _kept(group: Intp, slot: I64, heads: I64, ring_n: I64, top: I64, active: Bools) -> Bools | None:
    """Which cells the rings keep once at ``top`` (each SLO's head once every piece is added), or None
    if all: a cell's bucket is ``head − (head − slot) mod n`` (``head`` its piece's), kept if after
    ``top − n``, and only for an `active` SLO. A piece's ring whose ``low`` (no count is older) is after
    ``top − n`` keeps every cell: then no cell's bucket is worked out (the usual case: the pieces held
    are of recent ranges)."""
    k = heads.shape[0]
    width = np.tile(ring_n, k)
    # (a ring with no head has no cell: 0 there only keeps the sum from wrapping)
    floor = np.tile(np.where(top == _NONE, 0, top), k) - width  # a kept cell's bucket is after this
    lows, sizes = heads[:, :, 3].reshape(-1), heads[:, :, 5].reshape(-1)
    if ((sizes == 0) | (np.tile(active, k) & (lows != _NONE) & (lows > floor))).all():
        return None
    head = heads[:, :, 2].reshape(-1)[group]
    width = width[group]
    return (head - (head - slot) % width > floor[group]) & np.tile(active, k)[group]


def _add_events(
    slos: Sequence[SloAggregate],
    lengths: I64,
    runs: list[I64],
    full: Bools,
    row_map: Intp,
    key_at: I64,
    counts: I64,
) -> None:
    """Each series' events (``row_events``) of every piece, added to its row."""
    k, n = lengths.shape
    sizes = lengths.reshape(-1)
    values = np.concatenate(runs) if k > 1 else runs[0]
    if not len(values):
        return
    group = np.repeat(np.arange(k * n), sizes)
    within = np.arange(len(values)) - np.repeat(_starts(sizes), sizes)
    # (a piece's row_events beyond its keys would be empty: a restore keeps only its keys' rows)
    keep = (within < counts.reshape(-1)[group]) & full[group % n]
    group, within, values = group[keep], within[keep], values[keep]
    slo = group % n
    order = np.argsort(slo, kind="stable")
    target, values, slo = row_map[key_at[group] + within][order], values[order], slo[order]
    cuts = np.searchsorted(slo, np.arange(n + 1)).tolist()
    for i in np.flatnonzero(full).tolist():
        a, z = cuts[i], cuts[i + 1]
        if a == z:
            continue
        series = slos[i].series
        rows = len(series)
        if len(series.row_events) < rows:
            series.row_events = np.concatenate(
                [series.row_events, np.zeros(rows - len(series.row_events), np.int64)]
            )
        np.add.at(series.row_events, target[a:z], values[a:z])
