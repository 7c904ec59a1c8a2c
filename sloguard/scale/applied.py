"""Exactly-once application of partials in stage 2: which input ranges a partials partition has applied.

Pure bookkeeping (no I/O), one `Applied` per partials partition, checkpointed with that partition's
state. Stage 1 cuts each input partition into ranges that are, across every owner, crashes and zombies,
either identical or disjoint (the cut intents of `sloguard.scale.cuts`; the argument is in
docs/scaling.md). So a piece is:

* **new**: its range is disjoint from everything applied: apply it, then `record` it;
* a **duplicate**: its range is applied already (or, for a range cut into several records, this record
  index is): drop it and count it (``sloguard_partials_duplicate_total``);
* a **conflict**: its range overlaps an applied one without being it. The cut protocol makes this
  impossible; if it happens anyway (a topic re-created, offsets reset, two deployments sharing topics)
  applying it would count events twice or not at all, so it is refused, counted and logged, never
  guessed at.

Per input partition the applied ranges are an `IntervalSet`: every range is sent to every partials
partition (possibly with no series), so the set stays one interval per input partition in steady state.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Applied", "IntervalSet", "RangeKey", "Verdict"]

TP = tuple[str, int]


class IntervalSet:
    """Disjoint half-open integer intervals ``[a, b)``, kept sorted; touching ones are joined."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, intervals: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for a, b in intervals:
            self.add(a, b)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(list(zip(self._starts, self._ends, strict=True)))

    def __len__(self) -> int:
        return len(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntervalSet) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"IntervalSet({list(self)!r})"

    def _neighbours(self, a: int, b: int) -> range:
        """Indices of the intervals that overlap or touch ``[a, b)``."""
        lo = bisect.bisect_left(self._ends, a)
        hi = bisect.bisect_right(self._starts, b)
        return range(lo, hi)

    def covers(self, a: int, b: int) -> bool:
        """Whether every integer of ``[a, b)`` is in the set."""
        i = bisect.bisect_right(self._starts, a) - 1
        return i >= 0 and self._ends[i] >= b

    def overlaps(self, a: int, b: int) -> bool:
        """Whether some integer of ``[a, b)`` is in the set."""
        i = bisect.bisect_right(self._ends, a)
        return i < len(self._starts) and self._starts[i] < b

    def add(self, a: int, b: int) -> None:
        """Add ``[a, b)`` (``a < b``), joining the intervals it overlaps or touches."""
        if a >= b:
            raise ValueError(f"empty interval [{a}, {b})")
        near = self._neighbours(a, b)
        if len(near):
            a = min(a, self._starts[near.start])
            b = max(b, self._ends[near.stop - 1])
        self._starts[near.start : near.stop] = [a]
        self._ends[near.start : near.stop] = [b]


class Verdict(Enum):
    """What to do with a piece (see the module docstring)."""

    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class RangeKey:
    """One record of a range: input partition, range, and the record's index of ``count``."""

    tp: TP
    start: int
    end: int
    index: int
    count: int


@dataclass
class Applied:
    """The ranges one partials partition has applied, per input partition, and the records seen of
    ranges cut into several records that have not all arrived yet (``pending``)."""

    ranges: dict[TP, IntervalSet] = field(default_factory=dict)
    pending: dict[tuple[TP, int, int, int], set[int]] = field(default_factory=dict)

    def check(self, key: RangeKey) -> Verdict:
        """The verdict on a record, without changing anything."""
        done = self.ranges.get(key.tp)
        if done is not None and done.covers(key.start, key.end):
            return Verdict.DUPLICATE
        if done is not None and done.overlaps(key.start, key.end):
            return Verdict.CONFLICT
        for (tp, a, b, n), seen in self.pending.items():
            if tp != key.tp or b <= key.start or key.end <= a:
                continue
            if (a, b, n) != (key.start, key.end, key.count):
                return Verdict.CONFLICT
            return Verdict.DUPLICATE if key.index in seen else Verdict.NEW
        return Verdict.NEW

    def record(self, key: RangeKey) -> None:
        """The record ``key`` was applied (call only after `check` said NEW)."""
        slot = (key.tp, key.start, key.end, key.count)
        seen = self.pending.setdefault(slot, set())
        seen.add(key.index)
        if len(seen) == key.count:
            del self.pending[slot]
            self.ranges.setdefault(key.tp, IntervalSet()).add(key.start, key.end)

    def next_offsets(self) -> dict[TP, int]:
        """Per input partition, the end of the first applied interval (how far it has been applied,
        for lag and for "caught up")."""
        return {tp: next(iter(s))[1] for tp, s in self.ranges.items() if len(s)}

    # -- as plain values, for checkpoints -----------------------------------------------------------

    def to_rows(self) -> list[tuple[str, int, int, int, int, int]]:
        """Rows ``(topic, partition, start, end, count, index)``: ``count`` 0 for an applied interval,
        else one row per record seen of a pending range."""
        rows = [(t, p, a, b, 0, 0) for (t, p), s in sorted(self.ranges.items()) for a, b in s]
        for ((t, p), a, b, n), seen in sorted(self.pending.items()):
            rows += [(t, p, a, b, n, i) for i in sorted(seen)]
        return rows

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, int, int, int, int, int]]) -> Applied:
        applied = cls()
        for t, p, a, b, n, i in rows:
            if n == 0:
                applied.ranges.setdefault((t, p), IntervalSet()).add(a, b)
            else:
                applied.pending.setdefault(((t, p), a, b, n), set()).add(i)
        return applied
