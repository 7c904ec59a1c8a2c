"""Finding series at 100k series per SLO without a Python loop over them: label codes kept across
snapshots, pages picked by partial sorts, and the customer ranking in numpy.

Every request is answered on the event loop, so what it costs is time the daemon is not ingesting or
serving scrapes. Three things make it cheap:

* **Codes kept across snapshots.** A snapshot's labels are the previous snapshot's plus new series at
  the end, until an eviction or a reload renumbers the columns. `SloIndex` keeps one integer code column
  per ``group_by`` dimension and, on a new snapshot, encodes only the new columns (a full encode only on
  first use and after a renumbering, detected by comparing the old labels with the new ones' prefix).
  A label filter or a series lookup is then a comparison of code columns.
* **Pages by partial sort.** `smallest` returns what a stable sort's first ``k`` items would be in
  O(n + k log k): a page near the top never sorts every series.
* **Customers in numpy.** Customer ids share one `Codes` across SLOs; `CustomerRanking` finds each
  customer's worst series with ``np.maximum.at`` and ranks them with `smallest`, ties by id through
  `NameOrder` (ids in sorted order, new ones merged in by binary search: no re-sort per tick).

Nothing here changes a number: values are the snapshot's own arrays, only their order and selection
are computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from operator import itemgetter

import numpy as np

from sloguard._types import F64, I64, Intp
from sloguard.core.snapshot import SloSnapshot
from sloguard.ui.api import CustomerSeries

#: Customer ids kept (codes of ids no longer in any series) before the codes start afresh: a bound on
#: the memory of ids seen, as the aggregator's vocabularies have.
SPARE_CODES = 50_000


def _empty() -> I64:
    return np.zeros(0, np.int64)


class Codes:
    """Label values as small integers, append-only: a value keeps its code (``ids`` in code order)."""

    __slots__ = ("ids", "names")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        #: code -> value
        self.names: list[str] = []

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, values: Sequence[str]) -> I64:
        """The codes of ``values``, new values getting the next codes."""
        ids, names = self.ids, self.names
        known = len(ids)
        out = np.fromiter((ids.setdefault(v, len(ids)) for v in values), np.int64, len(values))
        if len(ids) - known > 256:  # many new (a first build): the dict's tail, in code order
            names.extend(islice(ids, known, None))
        elif len(ids) > known:
            # New codes appear in order of first occurrence: append each at its first.
            for i, code in zip(
                np.flatnonzero(out >= known).tolist(), out[out >= known].tolist(), strict=True
            ):
                if code == len(names):
                    names.append(values[i])
        return out


class NameOrder:
    """The rank of every code of a `Codes` in the order of its values (Python's string order).

    New values are sorted among themselves and merged into the sorted ones by binary search, so keeping
    up with a few new customers per tick costs O(n) array copies, not a sort of every id.
    """

    __slots__ = ("_codes", "_names", "_order", "rank")

    def __init__(self, codes: Codes) -> None:
        self._codes = codes
        self._names = np.zeros(0, np.str_)  # values in sorted order
        self._order = _empty()  # their codes
        #: code -> rank
        self.rank = _empty()

    def update(self) -> I64:
        """Ranks of every code (new codes included); returns `rank`."""
        done, n = len(self.rank), len(self._codes)
        if n == done:
            return self.rank
        new = np.array(self._codes.names[done:], np.str_)
        # numpy and Python order strings alike (by code point); numpy ignores trailing NULs, so two ids
        # differing only by those tie, and the merge keeps them in code order.
        by_name = np.argsort(new, kind="stable")
        # np.insert casts to the array's dtype: widen it first, or longer ids would be cut.
        names = self._names.astype(np.promote_types(self._names.dtype, new.dtype), copy=False)
        at = np.searchsorted(names, new[by_name], side="right")
        self._names = np.insert(names, at, new[by_name])
        self._order = np.insert(self._order, at, done + by_name)
        rank = np.empty(n, np.int64)
        rank[self._order] = np.arange(n)
        self.rank = rank
        return rank


def smallest(primary: F64, k: int, secondary: I64 | None = None) -> Intp:
    """Indices of the ``k`` smallest ``primary`` values in order, ties by ``secondary`` (by index when
    None): ``np.lexsort((secondary, primary))[:k]``, in O(n + k log k). ``primary`` has no NaN."""
    n = len(primary)
    sec = np.arange(n) if secondary is None else secondary
    if k <= 0 or n == 0:
        return np.zeros(0, np.intp)
    if k >= n:
        return np.lexsort((sec, primary)).astype(np.intp)
    kth = np.partition(primary, k - 1)[k - 1]
    less = np.flatnonzero(primary < kth)
    ties = np.flatnonzero(primary == kth)
    need = k - len(less)
    if need < len(ties):
        ties = ties[np.argpartition(sec[ties], need - 1)[:need]]
    idx = np.concatenate([less, ties])
    return idx[np.lexsort((sec[idx], primary[idx]))].astype(np.intp)


class SloIndex:
    """One SLO's series as label codes: ``columns[i][col]`` is the code of dimension ``i`` of column
    ``col``; built for one snapshot's labels and extended to the next one's (see the module docstring).
    """

    __slots__ = ("codes", "columns", "dims", "labels")

    def __init__(self, dims: Sequence[str], customers: Codes) -> None:
        self.dims = tuple(dims)
        #: Per dimension, its codes; customer ids share the UI's codes (for the ranking across SLOs).
        self.codes = [customers if d == "customer" else Codes() for d in dims]
        self.columns = [_empty() for _ in dims]
        self.labels: tuple[tuple[str, ...], ...] = ()

    def extend(self, labels: tuple[tuple[str, ...], ...]) -> bool:
        """Follow ``labels``; False (nothing changed) unless they are this index's labels plus new ones."""
        n = len(self.labels)
        if len(labels) < n or (n and labels[:n] != self.labels):
            return False
        new = labels[n:]
        if new:
            for i, codes in enumerate(self.codes):
                add = codes.encode(list(map(itemgetter(i), new)))
                self.columns[i] = np.concatenate([self.columns[i], add])
        self.labels = labels
        return True

    def match(self, wanted: dict[str, str]) -> Intp:
        """Columns (ascending) whose labels have every ``wanted`` value; all columns when none wanted."""
        mask = None
        for d, v in wanted.items():
            i = self.dims.index(d)
            code = self.codes[i].ids.get(v)
            if code is None:
                return np.zeros(0, np.intp)
            hit = self.columns[i] == code
            mask = hit if mask is None else mask & hit
        if mask is None:
            return np.arange(len(self.labels), dtype=np.intp)
        return np.flatnonzero(mask).astype(np.intp)


class CustomerRanking:
    """Customers of every SLO grouped by ``customer``, ranked by the most budget any of their series has
    burned, then by id; ``parts`` pairs each such SLO's snapshot with its columns' customer codes."""

    def __init__(self, parts: Sequence[tuple[SloSnapshot, I64]], codes: Codes, names: NameOrder) -> None:
        self.parts = list(parts)
        n = len(codes)
        self._names = codes.names
        self._rank = names.update()
        self.code = np.concatenate([c for _, c in self.parts]) if self.parts else _empty()
        self.consumed = (
            np.concatenate([s.budget_consumed for s, _ in self.parts]) if self.parts else np.zeros(0)
        )
        #: Which part (SLO) and column each entry is.
        self.part = np.repeat(np.arange(len(self.parts)), [s.series for s, _ in self.parts])
        self.col = np.concatenate([np.arange(s.series) for s, _ in self.parts]) if self.parts else _empty()
        self.count = np.bincount(self.code, minlength=n)
        self.worst = np.full(n, -1.0)  # budget consumed is never negative
        np.maximum.at(self.worst, self.code, self.consumed)
        self.present = np.flatnonzero(self.count)
        by_name = sorted(range(len(self.parts)), key=lambda j: self.parts[j][0].spec.name)
        self._slo_rank = np.empty(len(self.parts), np.int64)
        self._slo_rank[by_name] = np.arange(len(self.parts))

    def __len__(self) -> int:
        return len(self.present)

    def page(self, offset: int, limit: int, per_customer: int) -> list[tuple[str, CustomerSeries, int]]:
        """Customers ``offset`` .. ``offset + limit − 1`` of the ranking: (id, its worst
        ``per_customer`` series, how many series it has)."""
        p = self.present
        pick = smallest(-self.worst[p], offset + limit, self._rank[p])[offset:]
        codes = p[pick]
        if not len(codes):
            return []
        slot = np.full(len(self.count), -1, np.int64)
        slot[codes] = np.arange(len(codes))
        entries = np.flatnonzero(slot[self.code] >= 0)
        # Grouped by the customer's place on the page, worst first, then by SLO name and column.
        entries = entries[
            np.lexsort(
                (
                    self.col[entries],
                    self._slo_rank[self.part[entries]],
                    -self.consumed[entries],
                    slot[self.code[entries]],
                )
            )
        ]
        out: list[tuple[str, CustomerSeries, int]] = [(self._names[c], [], int(self.count[c])) for c in codes]
        for e in entries.tolist():
            series = out[slot[self.code[e]]][1]
            if len(series) < per_customer:
                s = self.parts[self.part[e]][0]
                series.append((float(self.consumed[e]), s.spec.name, int(self.col[e]), s))
        return out


class Indexes:
    """What the UI keeps across snapshots: each SLO's `SloIndex`, the customer ids' codes and their
    order. Bounded: when the codes hold `SPARE_CODES` more ids than the series have, all start afresh."""

    def __init__(self) -> None:
        self.customers = Codes()
        self.names = NameOrder(self.customers)
        self._slos: dict[str, SloIndex] = {}

    def start(self, slos: Sequence[SloSnapshot]) -> None:
        """A new snapshot: forget SLOs it no longer has, and the codes if they hold too many gone ids."""
        live = sum(s.series for s in slos if "customer" in s.spec.group_by)
        if len(self.customers) > live + SPARE_CODES:
            self.customers = Codes()
            self.names = NameOrder(self.customers)
            self._slos.clear()
        names = {s.spec.name for s in slos}
        for gone in [n for n in self._slos if n not in names]:
            del self._slos[gone]

    def of(self, s: SloSnapshot) -> SloIndex:
        """The index of ``s``'s columns (extended to its labels, or rebuilt after a renumbering)."""
        idx = self._slos.get(s.spec.name)
        if idx is None or idx.dims != s.spec.group_by or not idx.extend(s.labels):
            idx = self._slos[s.spec.name] = SloIndex(s.spec.group_by, self.customers)
            idx.extend(s.labels)
        return idx

    def customer_ranking(self, slos: Sequence[SloSnapshot]) -> CustomerRanking:
        parts = [
            (s, self.of(s).columns[s.spec.group_by.index("customer")])
            for s in slos
            if "customer" in s.spec.group_by
        ]
        return CustomerRanking(parts, self.customers, self.names)
