"""Events as the core sees them: one `Event` for tests and fakes, `EventBatch` columns for the hot path.

The hot path never builds one Python object per event beyond what the JSON decoder must: a batch is a
set of parallel columns (numpy arrays for numbers, lists for strings) so the aggregator can work on
whole arrays at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

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


@dataclass(slots=True)
class EventBatch:
    """Columns of valid events, all the same length.

    `ts_ms` int64 epoch milliseconds, `status` int32, `latency_ms` float64; the three string
    columns are plain lists (interning happens in the aggregator, which owns the label vocabulary).
    """

    ts_ms: npt.NDArray[np.int64]
    status: npt.NDArray[np.int32]
    latency_ms: npt.NDArray[np.float64]
    service: list[str]
    endpoint: list[str]
    customer: list[str]

    def __len__(self) -> int:
        return len(self.service)

    @classmethod
    def empty(cls) -> EventBatch:
        return cls(
            ts_ms=np.empty(0, np.int64),
            status=np.empty(0, np.int32),
            latency_ms=np.empty(0, np.float64),
            service=[],
            endpoint=[],
            customer=[],
        )

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> EventBatch:
        evs = list(events)
        return cls(
            ts_ms=np.fromiter((e.ts_ms for e in evs), np.int64, len(evs)),
            status=np.fromiter((e.status for e in evs), np.int32, len(evs)),
            latency_ms=np.fromiter((e.latency_ms for e in evs), np.float64, len(evs)),
            service=[e.service for e in evs],
            endpoint=[e.endpoint for e in evs],
            customer=[e.customer for e in evs],
        )

    def events(self) -> list[Event]:
        """Back to row form (tests and debugging only: slow)."""
        return [
            Event(int(t), s, e, c, int(st), float(lat))
            for t, s, e, c, st, lat in zip(
                self.ts_ms.tolist(),
                self.service,
                self.endpoint,
                self.customer,
                self.status.tolist(),
                self.latency_ms.tolist(),
                strict=True,
            )
        ]

    def take(self, index: npt.NDArray[np.intp] | Sequence[int]) -> EventBatch:
        """A new batch holding the rows at `index` (in that order)."""
        idx = np.asarray(index, dtype=np.intp)
        il = idx.tolist()
        return EventBatch(
            ts_ms=self.ts_ms[idx],
            status=self.status[idx],
            latency_ms=self.latency_ms[idx],
            service=[self.service[i] for i in il],
            endpoint=[self.endpoint[i] for i in il],
            customer=[self.customer[i] for i in il],
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
            service=[s for b in batches for s in b.service],
            endpoint=[s for b in batches for s in b.endpoint],
            customer=[s for b in batches for s in b.customer],
        )


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
