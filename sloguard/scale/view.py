"""What a stage-2 process exports: the series it owns, from the state of its partitions (pure).

Each partials partition's `Merger` has its own aggregator. At a tick (`owned_counts`, on the event loop,
where the state is written) each aggregator is advanced to ``now`` as the single process's tick does,
and the counts of the series its partition owns (`Merger.owned_mask`, cached per series) are copied out:
per SLO, `SloCounts` (the core's `SloAggregate.capture`); per latency window, the dense HDR counts. A
partition with no owned series of an SLO (or of the latency groups) costs no capture at all. The columns
are put side by side into one `OwnedCounts`, whose `evaluate` (ratios, budgets, alert tiers,
percentiles: once per SLO, whatever the number of partitions) needs nothing else and may run in a worker
thread, as the single-process daemon's does (`Aggregator.capture` / `Counts.evaluate`). Every series is
computed exactly as in one process (its counts are all on its partition), and exported by exactly one
process.

Counters that belong to no series (an SLO's ``events``/``too_old``) travel only in the home partition's
pieces, so adding them over partitions counts each once. Overflow rows (``__overflow__`` past a series
cap, or after idle eviction) are per partition: only the owner partition's row is exported, which is
not the single process's overflow row (docs/scaling.md: not part of the exactness claim).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import chain, compress
from typing import TypeVar

import numpy as np

from sloguard._types import F64, I64, Bools
from sloguard.core.aggregator import Aggregator, SloAggregate, window_slots
from sloguard.core.latency import HdrLayout, sparse_percentiles
from sloguard.core.slices import SliceSums
from sloguard.core.snapshot import LatencySnapshot, LatencyWindow, SloCounts, SloSnapshot, Snapshot
from sloguard.core.spec import LatencySpec
from sloguard.scale.merger import Merger

__all__ = ["LatencyCounts", "OwnedCounts", "ViewCache", "owned_counts", "owned_snapshot"]


#: One partition's part of a latency window: its groups (rows), which of them it owns, and the window's
#: non-empty slots as the ring holds them (``(keys, counts)``, arrays the ring replaces, never changes).
_Part = tuple[int, Bools, tuple[tuple[I64, I64], ...]]


@dataclass(frozen=True, slots=True)
class LatencyCounts:
    """The owned latency groups' HDR counts per window, per partition, referenced out of the state."""

    spec: LatencySpec
    layout: HdrLayout
    labels: tuple[tuple[str, ...], ...]
    windows: tuple[tuple[int, tuple[int, int], tuple[_Part, ...]], ...]  # (window, bounds, parts)
    overflow_events: int
    too_old_events: int
    #: Per (window, part): the part as last evaluated and its counts and percentiles (`ViewCache`).
    memo: dict[tuple[int, int], tuple[_Part, I64, F64]] | None = field(default=None, compare=False)
    #: Where `evaluate` keeps its last snapshot (`ViewCache.latency_snapshot`), or None.
    cache: ViewCache | None = field(default=None, compare=False)

    def _seen(self, key: tuple[int, int], part: _Part) -> tuple[I64, F64] | None:
        """The counts and percentiles of the last evaluation of part ``key`` if the part is the same
        (same rows, mask object and slot arrays: the ring replaces a slot's arrays, never changes them)."""
        seen = self.memo.get(key) if self.memo is not None else None
        if seen is None:
            return None
        rows, mask, slots = part
        was = seen[0]
        if (
            was[0] == rows
            and was[1] is mask
            and len(was[2]) == len(slots)
            and all(a[0] is b[0] and a[1] is b[1] for a, b in zip(was[2], slots, strict=True))
        ):
            return seen[1], seen[2]
        return None

    def _part(self, key: tuple[int, int], part: _Part) -> tuple[I64, F64]:
        """One partition's counts and percentiles in one window (those of the last evaluation if the
        part is the same: `_seen`)."""
        seen = self._seen(key, part)
        if seen is not None:
            return seen
        rows, mask, slots = part
        count, us = sparse_percentiles(self.layout, self.spec.percentiles, rows, slots, mask)
        pct = us / 1000.0
        if self.memo is not None:
            self.memo[key] = (part, count, pct)
        return count, pct

    def _window(self, window: int, bounds: tuple[int, int], parts: Sequence[_Part]) -> LatencyWindow:
        count, pct = [np.zeros(0, np.int64)], [np.zeros((0, len(self.spec.percentiles)))]
        for j, part in enumerate(parts):
            c, q = self._part((window, j), part)
            count.append(c)
            pct.append(q)
        return LatencyWindow(
            window=window, bounds=bounds, count=np.concatenate(count), percentiles_ms=np.concatenate(pct)
        )

    def evaluate(self) -> LatencySnapshot:
        """The snapshot; with a `cache`, the very snapshot of the last evaluation when it is the same:
        same labels, counters, window bounds and number of parts, and every part as last evaluated
        (`_seen`; the memo's entries of those parts are the last evaluation's, which had as many). The
        exposition then knows the latency families did not change without comparing their numbers
        (`SnapshotCollector.update`)."""
        key = (
            self.labels,
            self.overflow_events,
            self.too_old_events,
            tuple((w, bounds, len(parts)) for w, bounds, parts in self.windows),
        )
        last = self.cache.latency_snapshot if self.cache is not None else None
        if (
            last is not None
            and last[0] == key
            and all(
                self._seen((w, j), p) is not None for w, _, parts in self.windows for j, p in enumerate(parts)
            )
        ):
            return last[1]
        snapshot = LatencySnapshot(
            spec=self.spec,
            labels=self.labels,
            windows=tuple(self._window(*w) for w in self.windows),
            overflow_events=self.overflow_events,
            too_old_events=self.too_old_events,
        )
        if self.cache is not None:
            self.cache.latency_snapshot = (key, snapshot)
        return snapshot


class ViewCache:
    """What a stage-2 process's ticks reuse from one to the next (`owned_counts` with ``cache``): per SLO,
    the parts it was made of and the `SloCounts` joined from them, and the `SloSnapshot` evaluated from
    that. An SLO none of whose parts changed (same capture objects, same masks, same counters) keeps its
    `SloCounts` object, and so its evaluation: `SloCounts.evaluate` is pure arithmetic on the counts.
    Latency windows likewise, per partition: a window whose slots did not change keeps its counts and
    percentiles (most ticks: a slot is 10 s to 5 min)."""

    def __init__(self) -> None:
        #: Per SLO index: (the parts' captures and masks, the counters) and the joined counts.
        self.joined: dict[int, tuple[tuple[object, ...], tuple[int, ...], SloCounts]] = {}
        #: Per SLO index: the counts last evaluated and their snapshot.
        self.evaluated: dict[int, tuple[SloCounts, SloSnapshot]] = {}
        #: Latency: per (window, part), the part last evaluated and its counts and percentiles.
        self.latency: dict[tuple[int, int], tuple[_Part, I64, F64]] = {}
        #: The last latency snapshot evaluated and what it was of (`LatencyCounts.evaluate`).
        self.latency_snapshot: tuple[object, LatencySnapshot] | None = None
        #: Per SLO index with no owned series: (the fine bucket of now, the counters, the counts).
        self.empty: dict[int, tuple[int, tuple[int, ...], SloCounts]] = {}
        #: The last `owned_counts`: its mergers, their versions, ``now // grain`` and the result.
        self.last: tuple[tuple[Merger, ...], tuple[int, ...], int, OwnedCounts] | None = None
        #: The largest duration (ms) every ring's bucket or slot (and every time slice) is a multiple of.
        self.grain_ms = 0
        #: Per (SLO index or -1 for latency, partition position): an owned mask and whether it owns any
        #: series (`Merger.owned_mask` hands the same array back while its key list did not grow).
        self.owns: dict[tuple[int, int], tuple[Bools, bool]] = {}
        #: The latency groups' labels and what they were taken from: per part, its key list, that
        #: list's length then and its owned mask (`_latency_labels`).
        self.latency_labels: (
            tuple[tuple[tuple[object, int, Bools], ...], tuple[tuple[str, ...], ...]] | None
        ) = None


@dataclass(frozen=True, slots=True)
class OwnedCounts:
    """Everything `owned_counts` copied out at ``now_ms``; `evaluate` gives the `Snapshot`."""

    now_ms: int
    slos: tuple[SloCounts, ...]
    latency: LatencyCounts | None
    events: int
    newest_event_ms: int | None
    cache: ViewCache | None = field(default=None, compare=False)

    @property
    def series(self) -> int:
        """Series exported (SLO series and latency groups)."""
        return sum(len(s.labels) for s in self.slos) + (len(self.latency.labels) if self.latency else 0)

    def evaluate(self) -> Snapshot:
        return Snapshot(
            now_ms=self.now_ms,
            slos=tuple(self._evaluate(i, s) for i, s in enumerate(self.slos)),
            latency=self.latency.evaluate() if self.latency is not None else None,
            events=self.events,
            newest_event_ms=self.newest_event_ms,
        )

    def _evaluate(self, i: int, counts: SloCounts) -> SloSnapshot:
        """``counts.evaluate()``, or the snapshot of the same counts object evaluated before."""
        if self.cache is None:
            return counts.evaluate()
        seen = self.cache.evaluated.get(i)
        if seen is not None and seen[0] is counts:
            return seen[1]
        snapshot = counts.evaluate()
        self.cache.evaluated[i] = (counts, snapshot)
        return snapshot


#: One part of an SLO's counts: a partition's capture and the columns it owns (None: all of them).
_Pick = tuple[SloCounts, Bools | None]


def _picks(parts: Sequence[tuple[SloCounts, Bools]]) -> list[_Pick]:
    """``parts`` with a mask that keeps every column replaced by None (checked once per part, not once
    per array)."""
    return [(c, None if m.all() else m) for c, m in parts]


_A = TypeVar("_A", I64, F64)


def _cat(picks: Sequence[tuple[_A, Bools | None]]) -> _A:
    """The kept columns (last axis) of each array, side by side."""
    arrays = [a if m is None else a[..., m] for a, m in picks]
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays, -1)


def _slices(picks: Sequence[_Pick], pick: int | None) -> SliceSums | None:
    """The `SliceSums` of window ``pick`` (None: the period) of every part, side by side."""
    sums = []
    for c, _ in picks:
        s = c.period_slices if pick is None else (c.slices[pick] if c.slices is not None else None)
        if s is None:
            return None
        sums.append(s)
    masks = [m for _, m in picks]
    return SliceSums(
        *(
            _cat([(getattr(s, f), m) for s, m in zip(sums, masks, strict=True)])
            for f in ("total", "bad", "judged", "bad_slices")
        )
    )


def _slo(
    template: SloCounts, parts: Sequence[tuple[SloCounts, Bools]], counters: tuple[int, ...]
) -> SloCounts:
    """``parts`` (each part's owned columns) side by side; ``template`` gives the bounds when none;
    ``counters``: the SLO's `SloAggregate.counters` summed over every partition (`_counters`)."""
    picks = _picks(parts) if parts else [(template, np.zeros(len(template.labels), np.bool_))]
    first = picks[0][0]
    slices = None
    if first.slices is not None:
        per_window = [_slices(picks, i) for i in range(len(first.slices))]
        slices = tuple(s for s in per_window if s is not None)
    labels = chain.from_iterable(c.labels if m is None else compress(c.labels, m.tolist()) for c, m in picks)
    return replace(
        first,
        labels=tuple(labels),
        total=_cat([(c.total, m) for c, m in picks]),
        bad=_cat([(c.bad, m) for c, m in picks]),
        period_total=_cat([(c.period_total, m) for c, m in picks]),
        period_bad=_cat([(c.period_bad, m) for c, m in picks]),
        slices=slices,
        period_slices=_slices(picks, None) if first.period_slices is not None else None,
        overflow_events=counters[0],
        too_old_events=counters[1],
        events=counters[2],
        evicted_series=counters[3],
    )


def _counters(states: Sequence[SloAggregate]) -> tuple[int, ...]:
    """The SLO's `SloAggregate.counters` summed over its partitions' states: read once per state and
    tick (`_slo` read each of the four per state, ~40k property calls a bench-scale tick)."""
    if not states:  # (a process with no partitions)
        return (0, 0, 0, 0)
    return tuple(map(sum, zip(*(s.counters for s in states), strict=True)))


def _capture(merger: Merger, i: int, slo: SloAggregate, now_ms: int) -> SloCounts:
    """SLO ``i``'s counts in ``merger``'s aggregator at ``now_ms``: the last capture again if nothing was
    applied to this SLO since (`Merger.slo_versions`) and ``now`` is in the same fine bucket (every
    window, the period and the time slices end at ``now`` aligned to the fine resolution, which divides
    the coarse one and the slice; so the counts are the same). A quiet SLO of a partition costs no
    capture for most ticks (fine: 10 s by default), even while pieces for other SLOs are applied."""
    key = (merger.slo_versions.get(i, 0), now_ms // (slo.spec.resolution.fine * 1000))
    seen = merger.captured.get(i)
    if seen is not None and seen[0] == key:
        return seen[1]
    counts = slo.capture(now_ms)
    merger.captured[i] = (key, counts)
    return counts


def owned_counts(
    base: Aggregator, mergers: Sequence[Merger], now_ms: int, cache: ViewCache | None = None
) -> OwnedCounts:
    """The counts at ``now_ms`` of the series ``mergers`` own. ``base`` is an empty aggregator of the
    same config: it gives the bounds of an SLO no partition here has a series of. Every aggregator is
    advanced to ``now_ms`` first, as the single process's tick does."""
    if cache is None:
        return _owned_counts(base, mergers, now_ms, None)
    if not cache.grain_ms:
        cache.grain_ms = base.grain_ms()
    key = (tuple(mergers), tuple(m.version for m in mergers), now_ms // cache.grain_ms)
    last = cache.last
    if (
        last is not None
        and len(last[0]) == len(key[0])
        and all(a is b for a, b in zip(last[0], key[0], strict=True))
        and last[1:3] == key[1:]
    ):
        # Nothing applied (`Merger.version` counts the new pieces, held or added) and every ring's
        # bucket index the same: advancing is a no-op and every capture, mask and window the same.
        return replace(last[3], now_ms=now_ms)
    counts = _owned_counts(base, mergers, now_ms, cache)
    cache.last = (*key, counts)
    return counts


def _owned_counts(
    base: Aggregator, mergers: Sequence[Merger], now_ms: int, cache: ViewCache | None
) -> OwnedCounts:
    """`owned_counts` computed (its cache of joined counts and evaluations still used)."""
    aggs = [m.aggregator for m in mergers]
    base.advance(now_ms)
    for agg in aggs:
        agg.advance(now_ms)
    slos = []
    for i, slo in enumerate(base.slos):
        name = slo.spec.name
        parts = []
        for j, (m, agg) in enumerate(zip(mergers, aggs, strict=True)):
            s = agg.slos[i]
            mask = m.owned_mask(name, s.series.keys)
            if _owns_any(cache, (i, j), mask):
                parts.append((_capture(m, i, s, now_ms), mask))
        counters = _counters([a.slos[i] for a in aggs])
        if cache is None:
            template = parts[0][0] if parts else slo.capture(now_ms)
            slos.append(_slo(template, parts, counters))
            continue
        if not parts:
            # No owned series: the bounds of ``now`` (fine-bucket aligned, as `_capture`'s) and the
            # counters. The same counts object while both are, so its evaluation and families are kept.
            bucket = now_ms // (slo.spec.resolution.fine * 1000)
            was = cache.empty.get(i)
            if was is not None and was[0] == bucket and was[1] == counters:
                slos.append(was[2])
                continue
            empty = _slo(slo.capture(now_ms), parts, counters)
            cache.empty[i] = (bucket, counters, empty)
            slos.append(empty)
            continue
        refs = tuple(x for part in parts for x in part)
        seen = cache.joined.get(i)
        same = seen is not None and len(seen[0]) == len(refs) and seen[1] == counters
        if seen is not None and same and all(a is b for a, b in zip(seen[0], refs, strict=True)):
            slos.append(seen[2])
            continue
        joined = _slo(parts[0][0], parts, counters)
        cache.joined[i] = (refs, counters, joined)
        slos.append(joined)
    latency = None
    if base.latency is not None:
        lat = base.latency
        lparts = []
        for j, (m, agg) in enumerate(zip(mergers, aggs, strict=True)):
            assert agg.latency is not None
            keys = agg.latency.series.keys
            mask = m.owned_mask(None, keys)
            if _owns_any(cache, (-1, j), mask):
                lparts.append((agg.latency, mask))
        windows = []
        for r, ring in enumerate(lat.rings):
            bounds, _ = window_slots(ring, now_ms)
            held = tuple((len(lp.series), m, window_slots(lp.rings[r], now_ms)[1]) for lp, m in lparts)
            windows.append((ring.window, bounds, held))
        lstates = [a.latency for a in aggs if a.latency is not None]
        latency = LatencyCounts(
            spec=lat.spec,
            layout=lat.layout,
            labels=_latency_labels(cache, [(lp.series.keys, m) for lp, m in lparts]),
            windows=tuple(windows),
            overflow_events=sum(s.series.overflow_events for s in lstates),
            too_old_events=sum(s.too_old for s in lstates),
            memo=cache.latency if cache is not None else None,
            cache=cache,
        )
    newest = [a.stats.newest_ms for a in aggs if a.stats.newest_ms is not None]
    return OwnedCounts(
        now_ms=now_ms,
        slos=tuple(slos),
        latency=latency,
        events=sum(a.stats.events for a in aggs),
        newest_event_ms=max(newest) if newest else None,
        cache=cache,
    )


def _owns_any(cache: ViewCache | None, key: tuple[int, int], mask: Bools) -> bool:
    """``mask.any()``, kept in ``cache`` while the mask is the same array (never written once made:
    `Merger.owned_mask` makes a new one when its key list grows). ~750 numpy reductions a tick."""
    if cache is None:
        return bool(mask.any())
    seen = cache.owns.get(key)
    if seen is not None and seen[0] is mask:
        return seen[1]
    owns = bool(mask.any())
    cache.owns[key] = (mask, owns)
    return owns


def _latency_labels(
    cache: ViewCache | None, parts: Sequence[tuple[Sequence[tuple[str, ...]], Bools]]
) -> tuple[tuple[str, ...], ...]:
    """The owned latency groups' labels, part after part: those of the last tick when every part has the
    same key list (append-only: the same length, the same keys) and the same mask array."""
    refs = tuple((keys, len(keys), mask) for keys, mask in parts)
    last = cache.latency_labels if cache is not None else None
    if (
        last is not None
        and len(last[0]) == len(refs)
        and all(a[0] is b[0] and a[1] == b[1] and a[2] is b[2] for a, b in zip(last[0], refs, strict=True))
    ):
        return last[1]
    labels = tuple(k for keys, m in parts for k, keep in zip(keys, m.tolist(), strict=True) if keep)
    if cache is not None:
        cache.latency_labels = (refs, labels)
    return labels


def owned_snapshot(base: Aggregator, mergers: Sequence[Merger], now_ms: int) -> Snapshot:
    """`owned_counts` evaluated (on this thread)."""
    return owned_counts(base, mergers, now_ms).evaluate()
