"""Series rows: which label values of an event make which series, and which events an SLO selects.

`SeriesIndex` maps label-value ids to rows with a cap (past it, new keys share one ``__overflow__`` row);
`Matcher` is a per-vocabulary-id table for a predicate on label values (the SLO's service, its endpoint
globs). Used by the aggregator and by the SLA counter (`core.sla`), so both count the same series.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable

import numpy as np

from sloguard._types import Bools, Intp
from sloguard.core.model import OVERFLOW, Vocab
from sloguard.core.state import SeriesState

#: Up to this many label combinations, a grouping by several dimensions maps ids to rows by table.
_DENSE_COMBOS = 1 << 16


class Matcher:
    """A per-vocabulary-id boolean table for a predicate on label values, extended lazily."""

    __slots__ = ("_gen", "_pred", "_table")

    def __init__(self, pred: Callable[[str], bool]) -> None:
        self._pred = pred
        self._table = np.zeros(0, np.bool_)
        self._gen = 0

    def lookup(self, vocab: Vocab, ids: Intp) -> Bools:
        if vocab.generation != self._gen:
            self._table, self._gen = np.zeros(0, np.bool_), vocab.generation
        if len(self._table) < len(vocab):
            new = [self._pred(n) for n in vocab.names[len(self._table) :]]
            self._table = np.concatenate([self._table, np.array(new, np.bool_)])
        result: Bools = self._table[ids]
        return result


def endpoint_matcher(include: tuple[str, ...], exclude: tuple[str, ...]) -> Matcher | None:
    """The endpoints an SLO selects: matching a glob of ``include`` (any, when empty) and none of
    ``exclude``; None when that is every endpoint."""
    if not include and not exclude:
        return None
    return Matcher(
        lambda e: (
            (not include or any(fnmatch.fnmatchcase(e, g) for g in include))
            and not any(fnmatch.fnmatchcase(e, g) for g in exclude)
        )
    )


def literal_overflow(ids: list[Intp], vocabs: list[Vocab]) -> int:
    """Events whose label values are all literally ``__overflow__``."""
    mask: Bools | None = None
    for arr, vocab in zip(ids, vocabs, strict=True):
        oid = vocab.ids.get(OVERFLOW)
        if oid is None:
            return 0
        hit = arr == oid
        mask = hit if mask is None else mask & hit
    return 0 if mask is None else int(np.count_nonzero(mask))


class SeriesIndex:
    """Maps label-value ids to series rows, with a cap: past ``cap`` series, new keys share one
    ``__overflow__`` row (counted, never dropped). A key keeps the row it first got."""

    __slots__ = (
        "_combo",
        "_dense",
        "_dense_sizes",
        "_gens",
        "_labels",
        "_lut",
        "cap",
        "dims",
        "keys",
        "overflow_row",
        "row_events",
        "rows_by_key",
    )

    def __init__(self, dims: tuple[str, ...], cap: int) -> None:
        self.dims = dims
        self.cap = cap
        self.keys: list[tuple[str, ...]] = []
        self._labels: tuple[tuple[str, ...], ...] = ()
        self.rows_by_key: dict[tuple[str, ...], int] = {}
        self.overflow_row: int | None = None
        self.row_events = np.zeros(0, np.int64)
        self._lut = np.zeros(0, np.intp)  # one dim: vocab id -> row (-1 unknown)
        self._combo: dict[tuple[int, ...], int] = {}  # several dims: id tuple -> row
        # Several dims, few combinations: mixed-radix code -> row (-1 unknown), for these vocab sizes.
        self._dense = np.zeros(0, np.intp)
        self._dense_sizes: list[int] = []
        self._gens: tuple[int, ...] = ()  # vocab generations the id caches above were built for
        if not dims:
            self.row_for_key(())

    def __len__(self) -> int:
        return len(self.keys)

    def labels(self) -> tuple[tuple[str, ...], ...]:
        """``keys`` as a tuple: the same object until a key is added (keys are only ever appended), so a
        capture per tick does not build a new 100k-element tuple, and a reader can tell "unchanged" by
        identity (`export.model.SeriesLabels.follow`)."""
        if len(self._labels) != len(self.keys):
            self._labels = tuple(self.keys)
        return self._labels

    @property
    def overflow_events(self) -> int:
        return 0 if self.overflow_row is None else int(self.row_events[self.overflow_row])

    def row_for_key(self, key: tuple[str, ...]) -> int:
        row = self.rows_by_key.get(key)
        if row is not None:
            return row
        normal = len(self.keys) - (self.overflow_row is not None)
        if normal >= self.cap and key != (OVERFLOW,) * len(self.dims):
            key = (OVERFLOW,) * len(self.dims)
            row = self.rows_by_key.get(key)
            if row is not None:
                return row
        row = len(self.keys)
        self.keys.append(key)
        self.rows_by_key[key] = row
        if key and key[0] == OVERFLOW and all(k == OVERFLOW for k in key):
            self.overflow_row = row
        if row >= len(self.row_events):
            self.row_events = np.concatenate([self.row_events, np.zeros(max(8, row + 1), np.int64)])
        return row

    def absorb_events(self, other: SeriesIndex, row_map: Intp) -> None:
        """Add ``other``'s per-row event counts (after a merge mapped its rows to ours)."""
        if len(self.row_events) < len(self.keys):
            grow = len(self.keys) - len(self.row_events)
            self.row_events = np.concatenate([self.row_events, np.zeros(grow, np.int64)])
        np.add.at(self.row_events, row_map, other.row_events[: len(row_map)])

    def dump(self) -> SeriesState:
        return SeriesState(tuple(self.keys), self.row_events[: len(self.keys)].copy())

    def load(self, state: SeriesState) -> None:
        """Recreate ``state``'s rows in order (a fresh index with the same dims and cap)."""
        for row, key in enumerate(state.keys):
            if self.row_for_key(key) != row:
                raise ValueError("series state does not match this index (dims or cap changed)")
        self.row_events[: len(state.keys)] = state.row_events

    def rows(self, n: int, ids: list[Intp], vocabs: list[Vocab]) -> Intp:
        """Series row for each of ``n`` events, given the vocabulary ids of each grouping dimension."""
        if not self.dims:
            self.row_events[0] += n
            return np.zeros(n, np.intp)
        gens = tuple(v.generation for v in vocabs)
        if gens != self._gens:
            # A vocabulary was reset: ids changed meaning. Rows stay (keys are strings).
            self._lut = np.zeros(0, np.intp)
            self._combo = {}
            self._dense = np.zeros(0, np.intp)
            self._dense_sizes = []
            self._gens = gens
        out = self._rows_one(ids[0], vocabs[0]) if len(self.dims) == 1 else self._rows_many(ids, vocabs)
        if n:
            per_row = np.bincount(out)
            self.row_events[: len(per_row)] += per_row
            if self.overflow_row is not None:
                # A key whose values really are "__overflow__" shares the overflow row, but its events
                # are not cardinality overflow: row_events of that row counts only redirected ones.
                self.row_events[self.overflow_row] -= literal_overflow(ids, vocabs)
        return out

    def _rows_one(self, ids: Intp, vocab: Vocab) -> Intp:
        if len(self._lut) < len(vocab):
            self._lut = np.concatenate([self._lut, np.full(len(vocab) - len(self._lut), -1, np.intp)])
        rows: Intp = self._lut[ids]
        if len(rows) and rows.min() < 0:
            for i in np.unique(ids[rows < 0]).tolist():
                self._lut[i] = self.row_for_key((vocab.names[i],))
            rows = self._lut[ids]
        return rows

    def _rows_many(self, ids: list[Intp], vocabs: list[Vocab]) -> Intp:
        # Mixed-radix code of the id tuple, valid within this batch (vocab sizes only grow).
        sizes = [max(1, len(v)) for v in vocabs]
        code = np.zeros(len(ids[0]), np.int64)
        for arr, size in zip(ids, sizes, strict=True):
            code = code * size + arr
        if math.prod(sizes) <= _DENSE_COMBOS:
            # Few combinations (e.g. service x endpoint): a table lookup instead of a sort per batch.
            if sizes != self._dense_sizes:
                self._dense = np.full(math.prod(sizes), -1, np.intp)
                self._dense_sizes = sizes
                for idt, row in self._combo.items():
                    self._dense[self._code(idt, sizes)] = row
            rows: Intp = self._dense[code]
            if len(rows) and rows.min() < 0:
                # New combinations get their rows in code order, as below.
                for c in np.unique(code[rows < 0]).tolist():
                    self._dense[c] = self._combo_row(c, sizes, vocabs)
                rows = self._dense[code]
            return rows
        uniq, inverse = np.unique(code, return_inverse=True)
        urows = np.array([self._combo_row(c, sizes, vocabs) for c in uniq.tolist()], np.intp)
        result: Intp = urows[inverse.reshape(-1)]
        return result

    @staticmethod
    def _code(idt: tuple[int, ...], sizes: list[int]) -> int:
        code = 0
        for i, size in zip(idt, sizes, strict=True):
            code = code * size + i
        return code

    def _combo_row(self, code: int, sizes: list[int], vocabs: list[Vocab]) -> int:
        """The row of the id tuple with mixed-radix ``code``, creating it if new."""
        parts: list[int] = []
        for size in reversed(sizes):
            code, r = divmod(code, size)
            parts.append(r)
        idt = tuple(reversed(parts))
        row = self._combo.get(idt)
        if row is None:
            key = tuple(v.names[i] for v, i in zip(vocabs, idt, strict=True))
            row = self._combo[idt] = self.row_for_key(key)
        return row
