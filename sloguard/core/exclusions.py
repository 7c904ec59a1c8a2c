"""Maintenance windows (budget exclusions): time ranges whose events an SLO leaves out. Pure: no clock.

An `Exclusion` is one ``[start, start + duration)`` range, or a series of them when a recurrence
(an iCal RRULE, expanded by the SLO file's parser: the core imports no date library) repeats it. It
applies to the SLOs it names, or to those whose static labels include all of ``match``.

Semantics (docs/exclusions.md):

- Events with ``start <= ts < end`` of an exclusion that applies to an SLO are left out of that SLO's
  windows, budget, burn rates and alerts, at ingest, and counted as excluded instead
  (`ExclusionCalendar.excluded`, ``sloguard_excluded_events``).
- The buckets do not keep event times, so an exclusion added later (retroactive, by a reload) can only
  remove whole buckets: `ExclusionCalendar.buckets` flags the buckets lying wholly inside an exclusion;
  a partly covered bucket is kept.
- Time-slice SLOs read the same flags per bucket (`core.slices.per_slice`): a slice all of whose
  buckets are excluded is not judged at all; a partly excluded slice is judged on the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from sloguard._types import I64, Bools, Intp
from sloguard.core.spec import Labels, SloSpec
from sloguard.core.state import RingState, SloState

#: The starts (epoch ms) of a recurrence's occurrences ``s`` with ``lo_ms <= s < hi_ms``, ascending.
Recurrence = Callable[[int, int], Iterable[int]]

#: Intervals are computed for whole days around what is asked, and the last answer cached.
_DAY_MS = 86_400_000
#: The cached range grows to hold several asks (windows and the period) up to this span.
_CACHE_SPAN_MS = 64 * _DAY_MS


@dataclass(frozen=True)
class Exclusion:
    """One maintenance window, or a recurring one (``recurrence`` expands ``rrule``)."""

    name: str
    #: The first (or only) occurrence's start, epoch ms.
    start_ms: int
    duration_ms: int
    reason: str = ""
    #: The RRULE text as written (None: a one-off window). Equality and the repr use it, not ``recurrence``.
    rrule: str | None = None
    #: SLO names it applies to; with ``match``, an SLO is excluded when either selects it.
    slos: tuple[str, ...] = ()
    #: Static SLO labels that must all be present (``match: {team: payments}``).
    match: Labels = ()
    recurrence: Recurrence | None = field(default=None, compare=False, repr=False, hash=False)

    def applies_to(self, spec: SloSpec) -> bool:
        if spec.name in self.slos:
            return True
        return bool(self.match) and set(self.match) <= set(spec.labels)

    def occurrences(self, lo_ms: int, hi_ms: int) -> list[tuple[int, int]]:
        """``[start, end)`` of each occurrence overlapping ``[lo_ms, hi_ms)``, ascending, unclipped."""
        d = self.duration_ms
        if self.recurrence is None:
            starts: Iterable[int] = [self.start_ms] if self.start_ms - d < hi_ms else []
        else:
            starts = self.recurrence(lo_ms - d + 1, hi_ms)
        return [(s, s + d) for s in starts if s + d > lo_ms and s < hi_ms]


@dataclass(frozen=True, slots=True)
class ExcludedPeriod:
    """One occurrence of a window within a range (clipped), as a report lists it."""

    start_ms: int
    end_ms: int
    name: str
    reason: str


def merge_intervals(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint, non-adjacent ``[start, end)`` intervals covering exactly the union of ``spans``."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def excluded_events(calendar: ExclusionCalendar | None) -> int:
    """The events ``calendar`` left out (0 without one)."""
    return 0 if calendar is None else calendar.excluded


class ExclusionCalendar:
    """The exclusions of one SLO: which times they cover, and how many events they took out."""

    __slots__ = ("_cache", "excluded", "exclusions")

    def __init__(self, exclusions: tuple[Exclusion, ...]) -> None:
        self.exclusions = exclusions
        #: Events left out at ingest (this process; like the other per-SLO counters, a Prometheus counter).
        self.excluded = 0
        self._cache: tuple[int, int, list[tuple[int, int]]] = (0, 0, [])

    @classmethod
    def for_slo(cls, exclusions: tuple[Exclusion, ...], spec: SloSpec) -> ExclusionCalendar | None:
        """The calendar of ``spec`` (None when no exclusion applies: ingest then pays nothing)."""
        mine = tuple(x for x in exclusions if x.applies_to(spec))
        return cls(mine) if mine else None

    def intervals(self, lo_ms: int, hi_ms: int) -> list[tuple[int, int]]:
        """The excluded time in ``[lo_ms, hi_ms)``: sorted, merged ``[start, end)`` intervals, clipped."""
        a, z, cached = self._cache
        if not (a <= lo_ms and hi_ms <= z):
            lo, hi = lo_ms // _DAY_MS * _DAY_MS, -(-hi_ms // _DAY_MS) * _DAY_MS
            if z > a and max(hi, z) - min(lo, a) <= _CACHE_SPAN_MS:
                # Keep what is cached as well: the fine and the coarse ring ask for different ranges.
                lo, hi = min(lo, a), max(hi, z)
            a, z = lo, hi
            cached = merge_intervals(o for x in self.exclusions for o in x.occurrences(a, z))
            self._cache = (a, z, cached)
        return [(max(s, lo_ms), min(e, hi_ms)) for s, e in cached if e > lo_ms and s < hi_ms]

    def periods(self, lo_ms: int, hi_ms: int) -> list[ExcludedPeriod]:
        """Each occurrence overlapping ``[lo_ms, hi_ms)``, clipped, with its exclusion (name, reason), in
        time order: what a report lists as excluded periods."""
        found = [
            ExcludedPeriod(max(s, lo_ms), min(e, hi_ms), x.name, x.reason)
            for x in self.exclusions
            for s, e in x.occurrences(lo_ms, hi_ms)
        ]
        return sorted(found, key=lambda p: (p.start_ms, p.end_ms, p.name))

    def _bounds(self, lo_ms: int, hi_ms: int) -> I64:
        flat: I64 = np.array(self.intervals(lo_ms, hi_ms), np.int64).reshape(-1)
        return flat

    def mask(self, ts_ms: I64) -> Bools:
        """One flag per timestamp: true where it lies inside an exclusion (``start <= ts < end``)."""
        if len(ts_ms) == 0:
            return np.zeros(0, np.bool_)
        bounds = self._bounds(int(ts_ms.min()), int(ts_ms.max()) + 1)
        # Inside an interval exactly when an odd number of bounds are <= ts.
        inside: Bools = np.searchsorted(bounds, ts_ms, side="right") % 2 == 1
        return inside

    def keep(self, idx: Intp, ts_ms: I64) -> Intp:
        """The indices of ``idx`` whose event (``ts_ms[idx]``) is not excluded; counts the others."""
        if len(idx) == 0:
            return idx
        out = self.mask(ts_ms[idx])
        n = int(np.count_nonzero(out))
        if n == 0:
            return idx
        self.excluded += n
        kept: Intp = idx[~out]
        return kept

    def buckets(self, start_ms: int, end_ms: int, res_ms: int) -> Bools:
        """One flag per bucket of ``res_ms`` in ``[start_ms, end_ms)`` (aligned): true where the bucket
        lies wholly inside an exclusion (`aggregator.ExclusionMask`)."""
        n = (end_ms - start_ms) // res_ms
        flags: Bools = np.zeros(n, np.bool_)
        for s, e in self.intervals(start_ms, end_ms):
            first, last = -(-(s - start_ms) // res_ms), (e - start_ms) // res_ms
            if last > first:
                flags[first:last] = True
        return flags

    def drop_from(self, ring: RingState) -> tuple[RingState, int]:
        """``ring`` without the buckets lying wholly inside an exclusion, and the events those held: a
        retroactive exclusion (`retroactive`). A partly covered bucket is kept whole."""
        if ring.head is None or not len(ring.cells):
            return ring, 0
        res, first = ring.res_ms, ring.head - ring.n + 1
        slots = ring.cells // ring.rows
        bucket = first + (slots - first) % ring.n  # slot b mod n holds bucket b, newest `head`
        out = self.buckets(first * res, (ring.head + 1) * res, res)[bucket - first]
        if not out.any():
            return ring, 0
        removed = int(ring.total[out].sum())
        keep = ~out
        return dataclasses.replace(
            ring, cells=ring.cells[keep], total=ring.total[keep], bad=ring.bad[keep]
        ), removed

    def retroactive(self, state: SloState) -> SloState:
        """A saved SLO state (a reload, a checkpoint) with the exclusions applied to the past it holds:
        buckets wholly inside an exclusion are emptied, in both rings, so every window and the budget
        leave them out. Their events (as the coarse ring, the budget's, held them) count as excluded.
        Idempotent: forward exclusion already kept those buckets empty."""
        fine, _ = self.drop_from(state.fine)
        coarse, removed = self.drop_from(state.coarse)
        self.excluded += removed
        return dataclasses.replace(state, fine=fine, coarse=coarse)
