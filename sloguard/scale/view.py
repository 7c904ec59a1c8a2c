"""What a stage-2 process exports: the series it owns, from the snapshots of its partitions (pure).

Each partials partition's `Merger` has its own aggregator. At a tick, each is evaluated at the same
``now`` and only the columns of the series that partition owns (`Merger.owns`) are kept, then the
columns are put side by side in one `Snapshot` for the exposition: every series is computed exactly as
in one process (its counts are all on its partition), and exported by exactly one process.

Counters that belong to no series (an SLO's ``events``/``too_old``) travel only in the home partition's
pieces, so adding them over partitions counts each once. Overflow rows (``__overflow__`` past a series
cap, or after idle eviction) are per partition: only the owner partition's row is exported, which is
not the single process's overflow row (docs/scaling.md: not part of the exactness claim).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from sloguard._types import Bools
from sloguard.core.aggregator import Aggregator
from sloguard.core.snapshot import LatencySnapshot, LatencyWindow, SloSnapshot, Snapshot
from sloguard.scale.merger import Merger

__all__ = ["owned_snapshot"]


#: `SloSnapshot` arrays with one column per series (the last axis).
_SERIES_COLUMNS = (
    "total",
    "bad",
    "error_ratio",
    "burn_rate",
    "period_total",
    "period_bad",
    "period_error_ratio",
    "period_burn_rate",
    "budget_remaining",
    "budget_consumed",
    "exhaustion_eta",
    "firing",
)


def _slo(parts: Sequence[tuple[SloSnapshot, Bools]]) -> SloSnapshot:
    first = parts[0][0]

    # Any: replace() checks each keyword's type, and these are all arrays of the right kind.
    columns: dict[str, Any] = {
        name: np.concatenate([getattr(s, name)[..., m] for s, m in parts], -1) for name in _SERIES_COLUMNS
    }
    return replace(
        first,
        labels=tuple(k for s, m in parts for k, keep in zip(s.labels, m.tolist(), strict=True) if keep),
        **columns,
        overflow_events=sum(s.overflow_events for s, _ in parts),
        too_old_events=sum(s.too_old_events for s, _ in parts),
        events=sum(s.events for s, _ in parts),
        evicted_series=sum(s.evicted_series for s, _ in parts),
    )


def _latency(parts: Sequence[tuple[LatencySnapshot, Bools]]) -> LatencySnapshot:
    first = parts[0][0]
    windows = tuple(
        LatencyWindow(
            window=w.window,
            bounds=w.bounds,
            count=np.concatenate([s.windows[i].count[m] for s, m in parts]),
            percentiles_ms=np.concatenate([s.windows[i].percentiles_ms[m] for s, m in parts], axis=0),
        )
        for i, w in enumerate(first.windows)
    )
    return replace(
        first,
        labels=tuple(k for s, m in parts for k, keep in zip(s.labels, m.tolist(), strict=True) if keep),
        windows=windows,
        overflow_events=sum(s.overflow_events for s, _ in parts),
        too_old_events=sum(s.too_old_events for s, _ in parts),
    )


def _mask(merger: Merger | None, slo: str | None, labels: Sequence[tuple[str, ...]]) -> Bools:
    if merger is None:
        return np.zeros(len(labels), np.bool_)
    return np.array([merger.owns(slo, k) for k in labels], np.bool_)


def owned_snapshot(base: Aggregator, mergers: Sequence[Merger], now_ms: int) -> Snapshot:
    """The snapshot at ``now_ms`` of the series ``mergers`` own. ``base`` is an empty aggregator of the
    same config: it gives the shape when this process owns no partition (its columns are all left out).
    Every aggregator is advanced to ``now_ms`` first, as the single process's tick does."""
    sources: list[tuple[Aggregator, Merger | None]] = [(base, None)]
    sources += [(m.aggregator, m) for m in mergers]
    snaps = []
    for agg, merger in sources:
        agg.advance(now_ms)
        snaps.append((agg.snapshot(now_ms), merger))
    slos = tuple(
        _slo([(snap.slos[i], _mask(m, s.spec.name, snap.slos[i].labels)) for snap, m in snaps])
        for i, s in enumerate(snaps[0][0].slos)
    )
    latency = None
    if snaps[0][0].latency is not None:
        parts = [(snap.latency, _mask(m, None, snap.latency.labels)) for snap, m in snaps if snap.latency]
        latency = _latency(parts)
    newest = [snap.newest_event_ms for snap, _ in snaps if snap.newest_event_ms is not None]
    return Snapshot(
        now_ms=now_ms,
        slos=slos,
        latency=latency,
        events=sum(snap.events for snap, _ in snaps),
        newest_event_ms=max(newest) if newest else None,
    )
