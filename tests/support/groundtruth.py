"""Independent ground truth: plain Python over plain event lists, no numpy, no rings.

Written from the definitions (SLO_MATH.md and the aggregator's documented window semantics), not from
the implementation: a window of length W served at resolution r is evaluated at now_r = floor(now/r)*r
and covers now_r - W <= ts < now_r.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from fractions import Fraction
from zoneinfo import ZoneInfo

from sloguard.core.model import Event
from sloguard.core.spec import FINE_HORIZON, CalendarPeriod, SloSpec


def matches(spec: SloSpec, e: Event) -> bool:
    if e.service != spec.service:
        return False
    return not spec.endpoints or any(fnmatch.fnmatchcase(e.endpoint, g) for g in spec.endpoints)


def is_bad(spec: SloSpec, e: Event) -> bool:
    bad = any(lo <= e.status <= hi for lo, hi in spec.sli.bad_status)
    if spec.sli.kind == "latency":
        assert spec.sli.threshold_ms is not None
        bad = bad or e.latency_ms > spec.sli.threshold_ms
    return bad


def key(spec: SloSpec, e: Event) -> tuple[str, ...]:
    return tuple(getattr(e, d) for d in spec.group_by)


def window_bounds(spec: SloSpec, window_s: int, now_ms: int) -> tuple[int, int]:
    r = (spec.resolution.fine if window_s <= FINE_HORIZON else spec.resolution.coarse) * 1000
    end = now_ms // r * r
    return end - window_s * 1000, end


def period_bounds(spec: SloSpec, now_ms: int) -> tuple[int, int]:
    r = spec.resolution.coarse * 1000
    end = now_ms // r * r
    p = spec.period
    if isinstance(p, CalendarPeriod):
        assert p.unit == "month"
        tz = ZoneInfo(p.timezone)
        local = dt.datetime.fromtimestamp(end / 1000, tz)
        start = dt.datetime(local.year, local.month, 1, tzinfo=tz)
        return int(start.timestamp() * 1000), end
    return end - p.seconds * 1000, end


def counts(
    spec: SloSpec, events: list[Event], start: int, end: int
) -> dict[tuple[str, ...], tuple[int, int]]:
    out: dict[tuple[str, ...], list[int]] = {}
    for e in events:
        if not matches(spec, e):
            continue
        c = out.setdefault(key(spec, e), [0, 0])
        if start <= e.ts_ms < end:
            c[0] += 1
            c[1] += is_bad(spec, e)
    return {k: (v[0], v[1]) for k, v in out.items()}


def ratio(bad: int, total: int) -> float:
    return float(Fraction(bad, total)) if total else 0.0


def burn(bad: int, total: int, objective: Fraction) -> float:
    return float(Fraction(bad, total) / (1 - objective)) if total else 0.0


def remaining(bad: int, total: int, objective: Fraction) -> float:
    return float(1 - Fraction(bad, total) / (1 - objective)) if total else 1.0


def fires(
    bad_l: int, tot_l: int, bad_s: int, tot_s: int, factor: Fraction, objective: Fraction, min_events: int
) -> bool:
    thr = factor * (1 - objective)
    return (
        tot_l > 0
        and Fraction(bad_l, tot_l) > thr
        and tot_s > 0
        and Fraction(bad_s, tot_s) > thr
        and tot_l >= min_events
    )


def order_statistic(values: list[float], percentile: float) -> float:
    """The k-th smallest value with k = max(1, round-half-up(p/100 * n)): HDR's rank definition."""
    s = sorted(values)
    k = max(int(percentile * len(s) / 100 + 0.5), 1)
    return s[min(k, len(s)) - 1]
