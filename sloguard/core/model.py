"""Events as the core sees them: one `Event` for tests and fakes, `EventBatch` columns for the hot path.

The hot path never builds one Python object per event beyond what the JSON decoder must: a batch is a
set of parallel columns (numpy arrays for numbers, lists for strings) so the aggregator can work on
whole arrays at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sloguard._types import F64, I64, Intp

#: Label used for the series that absorbs events beyond a cardinality cap.
OVERFLOW = "__overflow__"

#: Dimensions an SLO or a latency group can be grouped by.
DIMENSIONS = ("service", "endpoint", "customer")


@dataclass(frozen=True, slots=True)
class Event:
    """One request-log event, already validated.

    `ts_ms` is event time in epoch milliseconds (UTC); `latency_ms` is in milliseconds.
    """

    ts_ms: int
    service: str
    endpoint: str
    customer: str
    status: int
    latency_ms: float


class Vocab:
    """Interns the label values of one dimension to small ints.

    Append-only within a generation: an id, once given, names the same value until `reset` starts a new
    generation (the aggregator resets a vocabulary that grew past its limit, between two batches).

    The decoder writes label columns as ids into the same `Vocab` the aggregator reads them with, so a
    label string is hashed once per event, when it is decoded, and never again.
    """

    __slots__ = ("_luts", "generation", "ids", "names")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        #: Bumped by `reset`: whoever caches ids (lookup tables) must drop them when it changes.
        self.generation = 0
        # `lut`'s tables: id(other) -> (other, our generation, its generation, our ids -> its ids).
        self._luts: dict[int, tuple[Vocab, int, int, Intp]] = {}

    def __len__(self) -> int:
        return len(self.names)

    def reset(self) -> None:
        """Forget every value (bounds memory under a flood of distinct values). Ids of earlier values
        become meaningless: only call it when no decoded batch is waiting to be ingested."""
        self.ids = {}
        self.names = []
        self.generation += 1
        self._luts = {}

    def intern(self, value: str) -> int:
        i = self.ids.get(value)
        if i is None:
            i = self.ids[value] = len(self.names)
            self.names.append(value)
        return i

    def encode(self, values: Iterable[str]) -> Intp:
        """Ids of ``values``, interning the new ones."""
        vals = values if isinstance(values, list) else list(values)
        try:
            return np.fromiter(map(self.ids.__getitem__, vals), np.intp, len(vals))
        except KeyError:
            for v in dict.fromkeys(vals):
                self.intern(v)
            return np.fromiter(map(self.ids.__getitem__, vals), np.intp, len(vals))

    def lut(self, other: Vocab) -> Intp:
        """Our ids -> ``other``'s (its ids for our names, the new ones interned into it in our order).

        Kept between calls and extended by the names added since (both vocabularies are append-only
        within a generation), so a batch costs its new names, not the whole vocabulary (rebuilding the
        table took ~30 ms a batch at 100k names). Rebuilt when either generation changed.
        """
        key = id(other)
        held = self._luts.get(key)
        if held is None or held[0] is not other or held[1] != self.generation or held[2] != other.generation:
            old: Intp = np.empty(0, np.intp)
        else:
            old = held[3]
        n0 = len(old)
        if n0 == len(self.names):
            return old
        new = np.fromiter(map(other.intern, self.names[n0:]), np.intp, len(self.names) - n0)
        table = np.concatenate([old, new]) if n0 else new
        if held is None and len(self._luts) >= 4:
            self._luts.clear()  # bounded: a few targets (the aggregator's, an SLA counter's) at a time
        self._luts[key] = (other, self.generation, other.generation, table)
        return table


@dataclass(slots=True)
class LabelColumn:
    """A dictionary-encoded string column: ``vocab.names[codes[i]]`` is row i's value."""

    codes: Intp
    vocab: Vocab

    @classmethod
    def of(cls, values: Sequence[str], vocab: Vocab | None = None) -> LabelColumn:
        vocab = vocab if vocab is not None else Vocab()
        return cls(vocab.encode(list(values)), vocab)

    def __len__(self) -> int:
        return len(self.codes)

    def __iter__(self) -> Iterator[str]:
        return iter(self.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LabelColumn):
            return self.tolist() == other.tolist()
        if isinstance(other, list | tuple):
            return self.tolist() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def tolist(self) -> list[str]:
        names = self.vocab.names
        return [names[i] for i in self.codes.tolist()]

    def take(self, index: Intp) -> LabelColumn:
        return LabelColumn(self.codes[index], self.vocab)

    @staticmethod
    def concat(columns: Sequence[LabelColumn]) -> LabelColumn:
        vocab = columns[0].vocab
        if all(c.vocab is vocab for c in columns):
            return LabelColumn(np.concatenate([c.codes for c in columns]), vocab)
        return LabelColumn.of([v for c in columns for v in c.tolist()], vocab)

    def recode(self, vocab: Vocab) -> Intp:
        """These rows' ids in another vocabulary (identity when it is the same one)."""
        if vocab is self.vocab:
            return self.codes
        result: Intp = self.vocab.lut(vocab)[self.codes]
        return result


@dataclass(slots=True)
class EventBatch:
    """Columns of valid events, all the same length.

    `ts_ms` int64 epoch milliseconds, `status` int32, `latency_ms` float64; the three label columns are
    dictionary-encoded (`LabelColumn`).
    """

    ts_ms: I64
    status: npt.NDArray[np.int32]
    latency_ms: F64
    service: LabelColumn
    endpoint: LabelColumn
    customer: LabelColumn

    def __len__(self) -> int:
        return len(self.ts_ms)

    @classmethod
    def empty(cls, vocabs: Vocabs | None = None) -> EventBatch:
        v = vocabs or Vocabs()
        none = np.empty(0, np.intp)
        return cls(
            ts_ms=np.empty(0, np.int64),
            status=np.empty(0, np.int32),
            latency_ms=np.empty(0, np.float64),
            service=LabelColumn(none, v.service),
            endpoint=LabelColumn(none, v.endpoint),
            customer=LabelColumn(none, v.customer),
        )

    @classmethod
    def from_events(cls, events: Iterable[Event], vocabs: Vocabs | None = None) -> EventBatch:
        evs = list(events)
        v = vocabs or Vocabs()
        return cls(
            ts_ms=np.fromiter((e.ts_ms for e in evs), np.int64, len(evs)),
            status=np.fromiter((e.status for e in evs), np.int32, len(evs)),
            latency_ms=np.fromiter((e.latency_ms for e in evs), np.float64, len(evs)),
            service=LabelColumn.of([e.service for e in evs], v.service),
            endpoint=LabelColumn.of([e.endpoint for e in evs], v.endpoint),
            customer=LabelColumn.of([e.customer for e in evs], v.customer),
        )

    def events(self) -> list[Event]:
        """Back to row form (tests and debugging only: slow)."""
        return [
            Event(int(t), s, e, c, int(st), float(lat))
            for t, s, e, c, st, lat in zip(
                self.ts_ms.tolist(),
                self.service.tolist(),
                self.endpoint.tolist(),
                self.customer.tolist(),
                self.status.tolist(),
                self.latency_ms.tolist(),
                strict=True,
            )
        ]

    def take(self, index: Intp | Sequence[int]) -> EventBatch:
        """A new batch holding the rows at `index` (in that order)."""
        idx = np.asarray(index, dtype=np.intp)
        return EventBatch(
            ts_ms=self.ts_ms[idx],
            status=self.status[idx],
            latency_ms=self.latency_ms[idx],
            service=self.service.take(idx),
            endpoint=self.endpoint.take(idx),
            customer=self.customer.take(idx),
        )

    @staticmethod
    def concat(batches: Sequence[EventBatch]) -> EventBatch:
        if not batches:
            return EventBatch.empty()
        if len(batches) == 1:
            return batches[0]
        return EventBatch(
            ts_ms=np.concatenate([b.ts_ms for b in batches]),
            status=np.concatenate([b.status for b in batches]),
            latency_ms=np.concatenate([b.latency_ms for b in batches]),
            service=LabelColumn.concat([b.service for b in batches]),
            endpoint=LabelColumn.concat([b.endpoint for b in batches]),
            customer=LabelColumn.concat([b.customer for b in batches]),
        )


@dataclass(slots=True)
class Vocabs:
    """One `Vocab` per label dimension; share one instance between a decoder and an aggregator."""

    service: Vocab = field(default_factory=Vocab)
    endpoint: Vocab = field(default_factory=Vocab)
    customer: Vocab = field(default_factory=Vocab)

    def __getitem__(self, dim: str) -> Vocab:
        vocab: Vocab = getattr(self, dim)
        return vocab


@dataclass(slots=True)
class Rejections:
    """Counts of rejected input by reason (`malformed_json`, `missing_field`, ...)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, n: int = 1) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n

    def merge(self, other: Rejections) -> None:
        for reason, n in other.counts.items():
            self.add(reason, n)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
