"""Immutable results of one evaluation: what exporters, `replay` and tests read. Never live state."""

from __future__ import annotations

from dataclasses import dataclass

from sloguard._types import F64, I64, Bools
from sloguard.core.spec import LatencySpec, SloSpec


@dataclass(frozen=True, slots=True)
class SloSnapshot:
    """One SLO at one instant, as arrays over its series (one column per series).

    ``windows[i]`` (seconds) covers ``window_bounds[i]`` = ``[start_ms, end_ms)``; rows of ``total``,
    ``bad``, ``error_ratio`` and ``burn_rate`` follow ``windows``. ``firing`` has one row per tier of
    ``spec.tiers``. ``exhaustion_eta`` is NaN where the budget is not burning.
    """

    spec: SloSpec
    labels: tuple[tuple[str, ...], ...]
    windows: tuple[int, ...]
    window_bounds: tuple[tuple[int, int], ...]
    total: I64
    bad: I64
    error_ratio: F64
    burn_rate: F64
    period_bounds: tuple[int, int]
    period_total: I64
    period_bad: I64
    period_error_ratio: F64
    period_burn_rate: F64
    budget_remaining: F64
    budget_consumed: F64
    exhaustion_eta: F64
    firing: Bools
    overflow_events: int
    too_old_events: int
    events: int
    #: Series evicted as idle (``series_ttl``) since the process started.
    evicted_series: int = 0

    @property
    def series(self) -> int:
        return len(self.labels)

    def window_index(self, seconds: int) -> int:
        return self.windows.index(seconds)


@dataclass(frozen=True, slots=True)
class LatencyWindow:
    """Percentiles of every latency group over one window ``[start_ms, end_ms)``."""

    window: int
    bounds: tuple[int, int]
    count: I64  # events per group
    percentiles_ms: F64  # shape (groups, len(spec.percentiles))


@dataclass(frozen=True, slots=True)
class LatencySnapshot:
    spec: LatencySpec
    labels: tuple[tuple[str, ...], ...]
    windows: tuple[LatencyWindow, ...]
    overflow_events: int
    too_old_events: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the aggregator knows, evaluated at ``now_ms``."""

    now_ms: int
    slos: tuple[SloSnapshot, ...]
    latency: LatencySnapshot | None
    events: int
    newest_event_ms: int | None
