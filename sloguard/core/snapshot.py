"""Immutable results of one evaluation: what exporters, `replay` and tests read. Never live state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sloguard._types import F64, I64, Bools, Intp
from sloguard.core import budget as bm
from sloguard.core.alerts import evaluate_tier
from sloguard.core.slices import SliceSums
from sloguard.core.spec import HOUR, LatencySpec, SloSpec

if TYPE_CHECKING:  # core.sla imports the aggregator, which imports this module
    from sloguard.core.sla_live import LiveSla


#: Up to this many series, `SloCounts.evaluate` computes the error ratios and burn rates of all windows in one
#: call each: fewer numpy calls (in-process, 9 windows: 5 series 90 -> 7 us, 2,000 series 134 -> 63 us).
#: Past it, one window at a time, whose temporaries stay in the CPU cache (at 4,096 series the whole-array
#: calls were already slower, 214 -> 323 us). Elementwise either way: the same values.
_WHOLE_ROWS = 2048


@dataclass(frozen=True, slots=True)
class _Tiers:
    """An SLO's alert tiers as arrays, to judge them all at once (`core.alerts.evaluate_tier` per tier,
    vectorised over the tiers): the rows of their long and short windows, their thresholds
    ``factor · (1 − O) = a/b`` and ``min_events``."""

    long: Intp
    short: Intp
    a: I64
    b: I64
    min_events: I64

    def firing(self, den: I64 | F64, num: I64 | F64, events: I64) -> Bools:
        """Per tier and series: both windows' ``bad·b > a·total`` with ``total > 0`` (`alerts.exceeds`),
        and ``min_events`` events in the long window."""
        a, b = self.a[:, None], self.b[:, None]
        firing: Bools = np.greater(num[self.long] * b, den[self.long] * a)
        firing &= den[self.long] > 0
        firing &= np.greater(num[self.short] * b, den[self.short] * a)
        firing &= den[self.short] > 0
        firing &= events[self.long] >= self.min_events[:, None]
        return firing


#: `_tiers`' cache, by ``id(spec)`` with the spec itself (kept alive, so its id is not reused).
_TIERS: dict[int, tuple[SloSpec, _Tiers | None]] = {}


def _tiers(spec: SloSpec) -> _Tiers | None:
    """``spec``'s `_Tiers`, None where a threshold's terms do not fit in 64 bits (then per tier, as before:
    Python integers)."""
    hit = _TIERS.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    thresholds = [t.factor * spec.error_budget for t in spec.tiers]
    limit = 1 << 62
    tiers = None
    if all(t.numerator < limit and t.denominator < limit for t in thresholds):
        at = {w: i for i, w in enumerate(spec.windows)}
        tiers = _Tiers(
            long=np.array([at[t.long_window] for t in spec.tiers], np.intp),
            short=np.array([at[t.short_window] for t in spec.tiers], np.intp),
            a=np.array([t.numerator for t in thresholds], np.int64),
            b=np.array([t.denominator for t in thresholds], np.int64),
            # (a tier with no floor compares with the lowest integer: always true, like skipping it)
            min_events=np.array([t.min_events or np.iinfo(np.int64).min for t in spec.tiers], np.int64),
        )
    if len(_TIERS) >= 4096:  # reloads: keep the cache bounded (a miss only recomputes)
        _TIERS.clear()
    _TIERS[id(spec)] = (spec, tiers)
    return tiers


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
    #: Time-slice budgeting only (``spec.budgeting``; None otherwise), rows following ``windows`` like
    #: ``total``: slices judged, and their badness summed (bad slices, or the sum of per-slice bad
    #: ratios). ``error_ratio``, ``burn_rate``, the budget and the tiers are then computed on these.
    slices: I64 | None = None
    bad_slices: F64 | None = None
    period_slices: I64 | None = None
    period_bad_slices: F64 | None = None
    #: Events left out by maintenance windows (`core.exclusions`) since the process started.
    excluded_events: int = 0

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
    #: The live SLAs' figures (`sloguard.sla_live`), added by the daemon's tick.
    slas: tuple[LiveSla, ...] = ()


@dataclass(frozen=True, slots=True)
class SloCounts:
    """One SLO's integer counts at one instant, copied out of the state (`SloAggregate.capture`): all that
    `evaluate` needs to compute every ratio, budget and alert tier of a `SloSnapshot`.

    ``total`` and ``bad`` have one row per window of ``spec.windows`` and one column per series.
    """

    spec: SloSpec
    labels: tuple[tuple[str, ...], ...]
    window_bounds: tuple[tuple[int, int], ...]
    total: I64
    bad: I64
    period_bounds: tuple[int, int]
    period_total: I64
    period_bad: I64
    overflow_events: int
    too_old_events: int
    events: int
    evicted_series: int
    #: Time-slice budgeting only (`core.slices`): per window of ``spec.windows``, and over the period.
    slices: tuple[SliceSums, ...] | None = None
    period_slices: SliceSums | None = None
    #: Events left out by maintenance windows (`core.exclusions`) since the process started.
    excluded_events: int = 0

    def evaluate(self) -> SloSnapshot:
        """Error ratios, burn rates, the budget and alert tiers from the counts (`core.budget`,
        `core.alerts`): pure arithmetic on these arrays, so it may run off the event loop.

        With time-slice budgeting the same formulas run on slices: judged slices in place of events,
        their badness in place of bad events; the low-traffic guard (``min_events``) still counts events.
        """
        spec, total, bad = self.spec, self.total, self.bad
        windows = spec.windows
        budget = spec.error_budget
        # What the ratios are computed on: (denominator, numerator) per window, and over the period.
        den: I64 | F64 = total
        num: I64 | F64 = bad
        p_den: I64 | F64 = self.period_total
        p_num: I64 | F64 = self.period_bad
        sl, ps = self.slices, self.period_slices
        judged: I64 | None = None
        bad_slices: F64 | None = None
        if sl is not None and ps is not None:
            rows = len(self.labels)
            judged = np.stack([c.judged for c in sl]) if rows else np.zeros((len(windows), 0), np.int64)
            bad_slices = np.stack([c.bad_slices for c in sl]) if rows else np.zeros((len(windows), 0))
            den, num, p_den, p_num = judged, bad_slices, ps.judged, ps.bad_slices
        counts = {w: (den[i], num[i]) for i, w in enumerate(windows)}
        if den.shape[1] <= _WHOLE_ROWS:  # one call on the (windows x series) arrays: elementwise, same values
            er, br = bm.error_ratio(num, den), bm.burn_rate(num, den, budget)
        else:
            er = np.stack([bm.error_ratio(b, t) for t, b in zip(den, num, strict=True)])
            br = np.stack([bm.burn_rate(b, t, budget) for t, b in zip(den, num, strict=True)])
        remaining = bm.budget_remaining(p_num, p_den, budget)
        tiers = _tiers(spec) if den.shape[1] <= _WHOLE_ROWS else None
        if tiers is not None:
            firing = tiers.firing(den, num, total)
        else:
            firing = np.zeros((len(spec.tiers), len(self.labels)), np.bool_)
            for i, tier in enumerate(spec.tiers):
                events = total[windows.index(tier.long_window)]
                firing[i] = evaluate_tier(
                    tier, budget, counts[tier.long_window], counts[tier.short_window], events
                )
        return SloSnapshot(
            spec=spec,
            labels=self.labels,
            windows=windows,
            window_bounds=self.window_bounds,
            total=total,
            bad=bad,
            error_ratio=er,
            burn_rate=br,
            period_bounds=self.period_bounds,
            period_total=self.period_total,
            period_bad=self.period_bad,
            period_error_ratio=bm.error_ratio(p_num, p_den),
            period_burn_rate=bm.burn_rate(p_num, p_den, budget),
            budget_remaining=remaining,
            budget_consumed=bm.budget_consumed(p_num, p_den, budget),
            exhaustion_eta=bm.exhaustion_eta(remaining, br[windows.index(HOUR)], spec.period.nominal_seconds),
            firing=firing,
            overflow_events=self.overflow_events,
            too_old_events=self.too_old_events,
            events=self.events,
            evicted_series=self.evicted_series,
            slices=judged,
            bad_slices=bad_slices,
            period_slices=None if ps is None else ps.judged,
            period_bad_slices=None if ps is None else ps.bad_slices,
            excluded_events=self.excluded_events,
        )


@dataclass(frozen=True, slots=True)
class Counts:
    """Everything `Aggregator.capture` copied out at ``now_ms``; `evaluate` gives the `Snapshot`."""

    now_ms: int
    slos: tuple[SloCounts, ...]
    latency: LatencySnapshot | None
    events: int
    newest_event_ms: int | None

    def evaluate(self) -> Snapshot:
        return Snapshot(
            now_ms=self.now_ms,
            slos=tuple(s.evaluate() for s in self.slos),
            latency=self.latency,
            events=self.events,
            newest_event_ms=self.newest_event_ms,
        )
