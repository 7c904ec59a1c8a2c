"""Independent ground truth for time-slice budgeting: plain Python and Fractions over event lists.

Written from the definitions (SLO_MATH.md, OpenSLO's Timeslices / RatioTimeslices, and the documented
slice semantics), not from `sloguard.core.slices`: slices are ``slice`` seconds long and start at epoch
multiples; only complete slices are judged, so a window of W ends at ``now`` rounded down to a slice and
covers ``max(1, W // slice)`` slices; the period starts at its start (rolling: ``end − P``; calendar:
local midnight of the first of the month, computed with datetime) and is walked slice by slice in UTC.
A slice is judged on its events outside any exclusion; wholly excluded, it is not judged.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from zoneinfo import ZoneInfo

from sloguard.core.model import Event
from sloguard.core.spec import CalendarPeriod, SloSpec, Timeslices
from tests.support import groundtruth as gt

Key = tuple[str, ...]
Span = tuple[int, int]


@dataclass
class Totals:
    events: int = 0
    bad_events: int = 0
    judged: int = 0
    badness: Fraction = Fraction(0)

    @property
    def error_ratio(self) -> Fraction:
        return self.badness / self.judged if self.judged else Fraction(0)


def budgeting(spec: SloSpec) -> Timeslices:
    assert spec.budgeting is not None
    return spec.budgeting


def slice_end(spec: SloSpec, now_ms: int) -> int:
    s = budgeting(spec).slice * 1000
    return now_ms // s * s


def window_slices(spec: SloSpec, window_s: int, now_ms: int) -> list[Span]:
    s = budgeting(spec).slice * 1000
    end = slice_end(spec, now_ms)
    n = max(1, window_s * 1000 // s)
    return [(end - (n - j) * s, end - (n - j - 1) * s) for j in range(n)]


def period_start(spec: SloSpec, now_ms: int) -> int:
    end = slice_end(spec, now_ms)
    p = spec.period
    if isinstance(p, CalendarPeriod):
        assert p.unit == "month"
        tz = ZoneInfo(p.timezone)
        local = dt.datetime.fromtimestamp(end / 1000, tz)
        return int(dt.datetime(local.year, local.month, 1, tzinfo=tz).timestamp() * 1000)
    return end - p.seconds * 1000


def period_slices(spec: SloSpec, now_ms: int) -> list[Span]:
    s = budgeting(spec).slice * 1000
    t, end = period_start(spec, now_ms), slice_end(spec, now_ms)
    out = []
    while t < end:
        out.append((t, t + s))
        t += s
    return out


def _inside(ts: int, spans: list[Span]) -> bool:
    return any(a <= ts < b for a, b in spans)


def judge_slice(b: Timeslices, total: int, bad: int) -> Fraction | None:
    """The slice's badness (None: not judged)."""
    if total == 0:
        return {"good": Fraction(0), "bad": Fraction(1), "skip": None}[b.empty]
    if b.good_ratio is not None:
        return Fraction(int(Fraction(total - bad, total) < b.good_ratio))
    return Fraction(bad, total)


def totals(
    spec: SloSpec,
    events: list[Event],
    spans: list[Span],
    excluded: list[Span] = (),  # type: ignore[assignment]
) -> dict[Key, Totals]:
    """Per series key (every key the SLO ever saw), over the slices ``spans``."""
    b = budgeting(spec)
    mine = sorted((e for e in events if gt.matches(spec, e)), key=lambda e: e.ts_ms)
    stamps = [e.ts_ms for e in mine]
    out = {gt.key(spec, e): Totals() for e in mine}
    for a, z in spans:
        wholly_excluded = bool(excluded) and all(_inside(t, excluded) for t in range(a, z, 1000))
        per: dict[Key, list[int]] = {k: [0, 0] for k in out}
        for e in mine[bisect.bisect_left(stamps, a) : bisect.bisect_left(stamps, z)]:
            if not _inside(e.ts_ms, excluded):
                c = per[gt.key(spec, e)]
                c[0] += 1
                c[1] += gt.is_bad(spec, e)
        for k, (total, bad) in per.items():
            t = out[k]
            t.events += total
            t.bad_events += bad
            badness = None if wholly_excluded else judge_slice(b, total, bad)
            if badness is not None:
                t.judged += 1
                t.badness += badness
    return out
