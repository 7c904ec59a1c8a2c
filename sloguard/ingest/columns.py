"""Decoded objects to an `EventBatch`: their columns, then the value rules, in two steps.

`Assembler.columns` reads the six fields of msgspec's objects into columns (labels as vocabulary ids, new ones
interned in row order, as every decode path interns them; customers of a big vocabulary are kept packed, one
string a piece (`Pending`), interned later, also in row order); `Assembler.batch` gives those their ids,
applies the value rules to columns (`sloguard.ingest.rules`, first failing reason by
`sloguard.ingest.reasons`' precedence) and keeps the valid rows. In between, `Columns.concat` joins the
columns of consecutive pieces, so that the numpy work of the rules and of the timestamp parser (tens of calls,
each with a fixed cost of a few microseconds) is paid once per buffer rather than once per 256 KiB piece, and
so is the lookup of a big vocabulary's customers (`StrLabels.ids` has a fixed cost per call: in-process at
100k customers, ~160-200 ns an event in calls of one piece's ~1500 rows, ~90-100 ns in calls of a 2 MiB absorb
slice's ~12k rows). A small vocabulary's customers are looked up per piece, while the piece's strings are
still in cache (deferred, the dict lookups cost ~3 % more per event at 1k customers). `Assembler.small` does
both steps row by row, cheaper for a handful of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any, Final

import numpy as np

from sloguard._types import F64, I64, Bools, Intp
from sloguard.core.model import EventBatch, LabelColumn, Vocab, Vocabs
from sloguard.ingest.framing import LineReasons
from sloguard.ingest.labelcache import LabelCache, StrLabels
from sloguard.ingest.reasons import (
    BAD_TIMESTAMP,
    EMPTY_LABEL,
    LABEL_TOO_LONG,
    MISSING_FIELD,
    first_reason,
    first_reasons,
)
from sloguard.ingest.rules import (
    DecodeOptions,
    LatencyScale,
    int64_column,
    label_failures,
    value_failure_masks,
    value_failures,
)
from sloguard.ingest.timestamps import parse_timestamps, timestamp_ms

__all__ = ["Assembler", "Columns", "Pending"]

_TS, _CUSTOMER, _STATUS, _LATENCY = (attrgetter(f) for f in ("ts", "customer", "status", "latency"))
_NO_IDS: Final[Intp] = np.empty(0, np.intp)  # customer ids of a part whose customers are all pending


class Pending:
    """Customers of one piece left for `Assembler.batch` to intern: packed into one NUL-separated string
    when none holds a NUL (`packed`), else as they are (`values`).

    Packed, the piece's strings are freed with its objects. Held as strings until the run's batch, the
    ~1500 customers of each of a buffer's pieces outlived the Structs around them: at 100k distinct
    customers in-process, that scattered what msgspec allocates next (its decode went ~100 ns an event
    slower) and the whole decode cost ~20 % more an event."""

    __slots__ = ("n", "packed", "values")

    def __init__(self, n: int, packed: str, values: list[str] | None) -> None:
        self.n = n
        self.packed = packed
        self.values = values

    @classmethod
    def of(cls, values: list[str]) -> Pending:
        packed = "\x00".join(values)
        if packed.count("\x00") == len(values) - 1:
            return cls(len(values), packed, None)
        return cls(len(values), "", values)  # a customer holds a NUL (or none): unpacked

    def __len__(self) -> int:
        return self.n

    def names(self) -> list[str]:
        """The customers, in row order."""
        if self.values is not None:
            return self.values
        return self.packed.split("\x00")


class Columns:
    """The fields of decoded objects, one column each, before the value rules: the raw `ts` values,
    status, latency in ms, the label ids, and (without a default customer) the rows whose customer is
    missing or null, and those where it is empty (None: no such row).

    The customer ids may cover only the first rows: `pending` holds the customers of the rest, not yet
    interned (the default replacing missing, null and empty ones; without a default, "" for those), as
    `Pending` pieces.
    """

    __slots__ = ("customer", "empty", "endpoint", "latency", "missing", "pending", "service", "status", "ts")

    def __init__(
        self,
        ts: list[object],
        status: I64,
        latency: F64,
        labels: tuple[Intp, Intp, Intp],
        missing: Bools | None,
        empty: Bools | None,
        pending: list[Pending] | None = None,
    ) -> None:
        self.ts = ts
        self.status = status
        self.latency = latency
        self.service, self.endpoint, self.customer = labels
        self.pending: list[Pending] = [] if pending is None else pending
        self.missing = missing
        self.empty = empty

    def __len__(self) -> int:
        return len(self.ts)

    @staticmethod
    def concat(parts: Sequence[Columns]) -> Columns:
        """The rows of `parts`, in order.

        A part with pending customers may only be followed by parts with no customer ids (the order in
        which `Assembler.columns` makes them: it defers from a vocabulary size on, and deferring interns
        nothing), so that the ids stay the first rows and new customers are interned in row order.
        """
        if len(parts) == 1:
            return parts[0]
        ts: list[object] = []
        pending: list[Pending] = []
        for part in parts:
            if pending and len(part.customer):
                raise ValueError("customer ids after pending customers: interning would leave row order")
            ts += part.ts
            pending += part.pending
        return Columns(
            ts,
            np.concatenate([p.status for p in parts]),
            np.concatenate([p.latency for p in parts]),
            (
                np.concatenate([p.service for p in parts]),
                np.concatenate([p.endpoint for p in parts]),
                np.concatenate([p.customer for p in parts]),
            ),
            _concat_masks([p.missing for p in parts], [len(p) for p in parts]),
            _concat_masks([p.empty for p in parts], [len(p) for p in parts]),
            pending,
        )


class Assembler:
    """Builds batches from decoded objects under one `DecodeOptions` (see the module docstring)."""

    __slots__ = ("_big", "_default_customer", "_max_label", "_scale")

    def __init__(self, options: DecodeOptions) -> None:
        self._default_customer: Final = options.default_customer
        self._max_label: Final = options.max_label_length
        self._scale: Final = LatencyScale(options.latency_unit)
        # Per big vocabulary (id -> its `StrLabels`): ids through a label cache rather than its dict.
        self._big: dict[int, StrLabels] = {}

    def columns(self, objs: list[Any], vocabs: Vocabs) -> Columns:
        """The columns of `objs`, their labels interned into `vocabs` in row order; customers of a big
        vocabulary are left pending (interned by `batch`, also in row order)."""
        # map(attrgetter) rather than comprehensions: the loop over the rows runs in C.
        service = self._encode_attr(objs, "service", vocabs.service)
        endpoint = self._encode_attr(objs, "endpoint", vocabs.endpoint)
        customers, missing, empty = self._customer_column(objs)
        pending: list[Pending] = []
        if len(vocabs.customer) >= StrLabels.MIN_NAMES:
            customer, pending = _NO_IDS, [Pending.of(customers)]
        else:
            customer = self._encode(customers, vocabs.customer)
        latency = np.fromiter(map(_LATENCY, objs), np.float64, len(objs))
        self._scale.to_ms_inplace(latency)  # 1e308 s -> inf ms, rejected as bad_latency
        status = int64_column(list(map(_STATUS, objs)))
        return Columns(
            list(map(_TS, objs)), status, latency, (service, endpoint, customer), missing, empty, pending
        )

    def batch(
        self, cols: Columns, vocabs: Vocabs, unchecked: Sequence[int] = ()
    ) -> tuple[EventBatch, LineReasons]:
        """The batch of the valid rows of `cols`, and `(row, reason)` for the others.

        Rows decoded with the strict Struct already have service/endpoint non-empty and every label within
        `max_label_length`; `unchecked` lists the rows decoded with the relaxed one.
        """
        n = len(cols)
        customer = cols.customer
        if cols.pending:
            pending = self._encode_pending(cols.pending, vocabs.customer)
            customer = np.concatenate([customer, pending]) if len(customer) else pending
        ts_ms, ts_ok = parse_timestamps(cols.ts)
        empty = cols.empty
        too_long: Bools | None = None
        if unchecked:
            empty, too_long = self._check_labels(cols, customer, vocabs, unchecked)
        failed: dict[str, Bools | None] = {
            **value_failure_masks(ts_ok, cols.status, cols.latency),
            MISSING_FIELD: cols.missing,
            EMPTY_LABEL: empty,
            LABEL_TOO_LONG: too_long,
        }
        bad_any = np.zeros(n, np.bool_)
        for mask in failed.values():
            if mask is not None:
                bad_any |= mask
        if not bad_any.any():
            return _batch(cols, customer, ts_ms, vocabs, None), []
        # Rare: label every bad row with its first reason.
        rows, reasons = first_reasons(failed, n)
        bad = list(zip(rows.tolist(), reasons, strict=True))
        return _batch(cols, customer, ts_ms, vocabs, np.flatnonzero(~bad_any)), bad

    def _customer_column(self, objs: list[Any]) -> tuple[list[str], Bools | None, Bools | None]:
        """Customers (the default replacing missing, null and empty ones, else ""), and without a
        default the rows where it is missing or null, and those where it is empty (None: no such row is
        possible)."""
        customer_raw: list[str | None] = list(map(_CUSTOMER, objs))
        if all(customer_raw):
            return customer_raw, None, None  # type: ignore[return-value]  # all(): no None
        dflt = self._default_customer
        if dflt is not None:
            return [c or dflt for c in customer_raw], None, None
        n = len(customer_raw)
        missing = np.fromiter((c is None for c in customer_raw), np.bool_, n)
        empty = np.fromiter((c == "" for c in customer_raw), np.bool_, n)
        return [c or "" for c in customer_raw], missing, empty

    def _encode(self, values: list[str], vocab: Vocab) -> Intp:
        """`vocab.encode(values)`; for a big vocabulary through its `StrLabels` (same ids, same order of
        interning, fewer cache misses)."""
        if len(vocab) >= StrLabels.MIN_NAMES:
            ids = self._big_labels(vocab).ids(values)
            if ids is not None:
                return ids
        return vocab.encode(values)

    def _encode_pending(self, pending: list[Pending], vocab: Vocab) -> Intp:
        """Ids of the customers of `pending`, in order: through the big vocabulary's `StrLabels` in one call
        on the packed pieces if every piece is packed, else `_encode` of them all."""
        if all(p.values is None for p in pending):
            packed = pending[0].packed if len(pending) == 1 else "\x00".join(p.packed for p in pending)
            ids = self._big_labels(vocab).ids_packed(packed, sum(p.n for p in pending))
            if ids is not None:
                return ids
        return self._encode([v for p in pending for v in p.names()], vocab)

    def _big_labels(self, vocab: Vocab) -> StrLabels:
        labels = self._big.get(id(vocab))
        if labels is None or labels.cache.vocab is not vocab:
            if len(self._big) >= 3:
                self._big.clear()  # vocabularies replaced (a reload): keep only the live ones
            labels = self._big[id(vocab)] = StrLabels(LabelCache(vocab))
        return labels

    def _encode_attr(self, objs: list[Any], attr: str, vocab: Vocab) -> Intp:
        """Ids of ``o.<attr>`` for every object, in one C-level pass (no intermediate list)."""
        get = attrgetter(attr)
        if len(vocab) >= StrLabels.MIN_NAMES:
            return self._encode(list(map(get, objs)), vocab)
        try:
            return np.fromiter(map(vocab.ids.__getitem__, map(get, objs)), np.intp, len(objs))
        except KeyError:
            for value in dict.fromkeys(map(get, objs)):
                vocab.intern(value)
            return np.fromiter(map(vocab.ids.__getitem__, map(get, objs)), np.intp, len(objs))

    def _check_labels(
        self, cols: Columns, customer: Intp, vocabs: Vocabs, unchecked: Sequence[int]
    ) -> tuple[Bools, Bools]:
        """The label rules for the rows the relaxed Struct decoded (customer ids given): (empty, too
        long) masks."""
        n = len(cols)
        empty = np.zeros(n, np.bool_) if cols.empty is None else cols.empty
        too_long = np.zeros(n, np.bool_)
        names = (vocabs.service.names, vocabs.endpoint.names, vocabs.customer.names)
        ids = (cols.service, cols.endpoint, customer)
        for row in unchecked:
            service, endpoint, customer_ = (nm[int(col[row])] for nm, col in zip(names, ids, strict=True))
            failed = label_failures((service, endpoint, customer_), self._max_label)
            empty[row] |= EMPTY_LABEL in failed
            too_long[row] = LABEL_TOO_LONG in failed
        return empty, too_long

    def small(self, objs: list[Any], vocabs: Vocabs) -> tuple[EventBatch, LineReasons]:
        """`columns` then `batch`, row by row (same rules, same precedence): cheaper than numpy for a few
        rows. Only the valid rows' labels are interned.

        Every row's labels are checked, also the strict Struct's (already in bounds): it is cheaper than
        finding out which rows were decoded with the relaxed one.
        """
        dflt = self._default_customer
        limit = self._max_label
        to_ms = self._scale.to_ms
        ts_col: list[int] = []
        status_col: list[int] = []
        latency_col: list[float] = []
        labels_cols: list[tuple[str, str, str]] = []
        bad: LineReasons = []
        for row, o in enumerate(objs):
            customer = o.customer
            if not customer and dflt is not None:
                customer = dflt
            ms = timestamp_ms(o.ts)
            latency = to_ms(o.latency)
            labels = (o.service, o.endpoint, customer or "")
            failed = value_failures(ms is not None, o.status, latency, labels, limit)
            if customer is None:
                failed.append(MISSING_FIELD)
            if failed or ms is None:  # (ms is None implies a failure: spelled out for mypy)
                bad.append((row, first_reason(failed) or BAD_TIMESTAMP))
                continue
            ts_col.append(ms)
            status_col.append(o.status)
            latency_col.append(latency)
            labels_cols.append(labels)
        service, endpoint, customer_col = zip(*labels_cols, strict=True) if labels_cols else ((), (), ())
        batch = EventBatch(
            ts_ms=np.array(ts_col, dtype=np.int64),
            status=np.array(status_col, dtype=np.int32),
            latency_ms=np.array(latency_col, dtype=np.float64),
            service=LabelColumn(vocabs.service.encode(list(service)), vocabs.service),
            endpoint=LabelColumn(vocabs.endpoint.encode(list(endpoint)), vocabs.endpoint),
            customer=LabelColumn(vocabs.customer.encode(list(customer_col)), vocabs.customer),
        )
        return batch, bad


def _batch(cols: Columns, customer: Intp, ts_ms: I64, vocabs: Vocabs, keep: Intp | None) -> EventBatch:
    """The batch of `cols` (customer ids and timestamps given), or of their rows `keep`."""
    status, latency = cols.status, cols.latency
    service, endpoint = cols.service, cols.endpoint
    if keep is not None:
        ts_ms, status, latency = ts_ms[keep], status[keep], latency[keep]
        service, endpoint, customer = service[keep], endpoint[keep], customer[keep]
    return EventBatch(
        ts_ms=ts_ms,
        status=status.astype(np.int32),
        latency_ms=latency,
        service=LabelColumn(service, vocabs.service),
        endpoint=LabelColumn(endpoint, vocabs.endpoint),
        customer=LabelColumn(customer, vocabs.customer),
    )


def _concat_masks(masks: list[Bools | None], lengths: list[int]) -> Bools | None:
    """Masks of consecutive parts as one (None for a part: no row of it), None if all are None."""
    if all(m is None for m in masks):
        return None
    parts = [np.zeros(n, np.bool_) if m is None else m for m, n in zip(masks, lengths, strict=True)]
    return np.concatenate(parts)
