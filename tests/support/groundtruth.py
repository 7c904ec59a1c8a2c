"""Independent ground truth: plain Python over plain event lists, no numpy, no rings (hdrh only to
name the HDR slot a latency falls in).

Written from the definitions (SLO_MATH.md and the aggregator's documented window semantics), not from
the implementation: a window of length W served at resolution r is evaluated at now_r = floor(now/r)*r
and covers now_r - W <= ts < now_r.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import math
from fractions import Fraction
from zoneinfo import ZoneInfo

from hdrh.histogram import HdrHistogram

from sloguard.core.model import Event
from sloguard.core.spec import FINE_HORIZON, CalendarPeriod, LatencySpec, SloSpec


def matches(spec: SloSpec, e: Event) -> bool:
    if e.service != spec.service:
        return False
    if any(fnmatch.fnmatchcase(e.endpoint, g) for g in spec.endpoints_exclude):
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
    """The budget ends at now on the fine resolution (it moves with the fine buckets); a rolling period
    starts its length before now on the coarse resolution, a calendar month at local midnight on the 1st."""
    fine, coarse = spec.resolution.fine * 1000, spec.resolution.coarse * 1000
    end = now_ms // fine * fine
    p = spec.period
    if isinstance(p, CalendarPeriod):
        assert p.unit == "month"
        tz = ZoneInfo(p.timezone)
        local = dt.datetime.fromtimestamp(end / 1000, tz)
        start = dt.datetime(local.year, local.month, 1, tzinfo=tz)
        return int(start.timestamp() * 1000), end
    return now_ms // coarse * coarse - p.seconds * 1000, end


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


def nearest_rank(percentile: float, n: int) -> int:
    """``k = max(1, ⌈p/100 · n⌉)``: the nearest-rank definition, so at least p % of n values are ≤ the
    k-th smallest. ``percentile`` is read as the decimal it is written as (99.9 is 999/10), exactly."""
    return max(1, math.ceil(Fraction(str(percentile)) * n / 100))


def order_statistic(values: list[float], percentile: float) -> float:
    """The exact nearest-rank percentile: the ``nearest_rank(p, n)``-th smallest value."""
    s = sorted(values)
    return s[min(nearest_rank(percentile, len(s)), len(s)) - 1]


@functools.cache
def _hdr(highest_us: int, figures: int) -> HdrHistogram:
    return HdrHistogram(1, highest_us, figures)


def hdr_percentile(values: list[float], percentile: float, spec: LatencySpec) -> float:
    """What sloguard reports (ms) for a percentile of ``values`` (ms): the exact nearest-rank value,
    in whole µs (rounded half to even, clipped to the histogram's range), raised to the highest value
    of its HDR slot by hdrh's own ``get_highest_equivalent_value``. 0.0 for no values."""
    if not values:
        return 0.0
    highest = int(spec.highest_ms * 1000)
    us = min(max(round(order_statistic(values, percentile) * 1000), 0), highest)
    return float(_hdr(highest, spec.significant_figures).get_highest_equivalent_value(us)) / 1000.0


def hdr_precision(figures: int) -> Fraction:
    """HDR's stated relative precision with ``figures`` significant figures: a slot spans at most
    ``1/h`` of its values, ``h`` half the sub-bucket count ``2^⌈log2(2·10^figures)⌉`` (2 → 1/128)."""
    return Fraction(1, 2 ** ((2 * 10**figures - 1).bit_length() - 1))


def within_hdr_precision(got_ms: float, exact_ms: float, figures: int) -> bool:
    """``got`` (a whole number of µs, in ms) is at or above the exact value in whole µs, by at most HDR's
    stated precision of it."""
    exact_us, got_us = round(exact_ms * 1000), round(got_ms * 1000)
    return exact_us <= got_us <= exact_us * (1 + hdr_precision(figures))
