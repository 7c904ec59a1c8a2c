"""The rules that span fields: the second validation pass, on components whose fields are each valid.

The objective in its unit, short < long, tiers that can fire at the objective, windows vs. the bucket
resolution and the SLO period, time-zone offsets vs. the coarse resolution, latency alerts vs. what the
latency section computes. Every check reports through a
`errors.Report` and carries on, so one run lists every problem; `mapping` then maps only what passed.
"""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from zoneinfo import ZoneInfo

from sloguard.core.spec import (
    FINE_HORIZON,
    HOUR,
    MINUTE,
    CalendarPeriod,
    Period,
    format_duration,
    max_burn_rate,
    workbook_factor,
)
from sloguard.specfile.errors import Loc, Report, number
from sloguard.specfile.schema import (
    LatencyAlertModel,
    LatencyModel,
    RatioTimeslicesModel,
    ResolutionModel,
    SloModel,
    TierModel,
)
from sloguard.specfile.tables import table_for

#: Percent objectives below this are refused: 0.999 is almost always OpenSLO's ratio for 99.9 %, and 5 the
#: error budget of 95 %. A deliberately low objective can be written as a ratio (objective_unit: ratio).
MIN_OBJECTIVE_PERCENT = 50


def objective_ratio(m: SloModel) -> Fraction:
    """The objective as a ratio (0.999), whichever unit the file used."""
    return m.objective / 100 if m.objective_unit == "percent" else m.objective


def check_objective(m: SloModel, report: Report) -> bool:
    """The objective against its unit; whether it passed. The hint is computed from the value."""
    value = m.objective
    if m.objective_unit == "ratio":
        if value < 1:
            return True
        message = f"must be less than 1 with objective_unit: ratio; did you mean {number(value / 100)}?"
    elif value >= MIN_OBJECTIVE_PERCENT:
        return True
    elif value < 1:
        message = (
            f"must be a percentage of at least {MIN_OBJECTIVE_PERCENT}; did you mean {number(value * 100)}? "
            f"({number(value)} reads as {number(value)}%; for ratios set objective_unit: ratio)"
        )
    else:
        message = (
            f"must be a percentage of at least {MIN_OBJECTIVE_PERCENT}; did you mean {number(100 - value)}? "
            "(the share of good events, not the error budget)"
        )
    report(("objective",), f"{message} (got {number(value)})")
    return False


def tier_factor(t: TierModel, period: Period) -> Fraction:
    """A tier's burn-rate factor: as written, or ``workbook_factor(budget_percent, period, long)``."""
    if t.factor is not None:
        return t.factor
    assert t.budget_percent is not None  # exactly one of them: checked before this is asked
    return workbook_factor(t.budget_percent, period.nominal_seconds, t.long)


def never_fires(factor: Fraction, objective: Fraction) -> str | None:
    """Why a tier with ``factor`` can never fire at ``objective`` (see `max_burn_rate`); None if it can."""
    ceiling = max_burn_rate(objective)
    if factor < ceiling:
        return None
    return (
        f"can never fire: at objective {number(objective * 100)}% the burn rate is at most "
        f"{number(ceiling)} (every event bad: 1 / (1 - {number(objective)})); the factor must be below that"
    )


def check_slo(m: SloModel, period: Period, report: Report) -> None:
    """The objective, SLI, series_ttl, resolution and alert tier rules of one SLO (with its effective
    buckets)."""
    objective = objective_ratio(m) if check_objective(m, report) else None
    if m.sli.type == "latency" and m.sli.threshold_ms is None:
        report(("sli", "threshold_ms"), "is required for type latency (good = latency <= threshold_ms)")
    if m.sli.type == "availability" and m.sli.threshold_ms is not None:
        report(("sli", "threshold_ms"), "only applies to type latency")
    if m.sli.type == "availability" and not m.sli.bad_status:
        report(
            ("sli", "bad_status"),
            "is empty, so with type availability no event could ever be bad; list the bad statuses "
            "(e.g. [5xx]), or use type latency to count only slow events",
        )
    for i, glob in enumerate(m.endpoints_exclude):
        if glob in m.endpoints:
            report(("endpoints_exclude", i), f"{glob!r} is also in endpoints: it would select nothing there")
    if m.series_ttl is not None:
        if not m.group_by:
            report(("series_ttl",), "only applies to an SLO with group_by (one series per key)")
        elif m.series_ttl < m.resolution.coarse:
            report(
                ("series_ttl",),
                f"must be at least the coarse resolution ({format_duration(m.resolution.coarse)}): "
                "idleness is judged per coarse bucket",
            )
    _check_resolution(m, period, report)
    _check_budgeting(m, period, report)
    _check_tiers(m, period, objective, report)
    _check_by_severity(m, period, report)


def _utc_offsets(timezone: str) -> list[int]:
    """UTC offsets (seconds) of a zone on the first of each month, 2020-2030: its current rules."""
    zone = ZoneInfo(timezone)
    offsets = set()
    for year in range(2020, 2031):
        for month in range(1, 13):
            offset = dt.datetime(year, month, 1, 12, tzinfo=zone).utcoffset()
            assert offset is not None  # ZoneInfo always knows its offset
            offsets.add(int(offset.total_seconds()))
    return sorted(offsets)


def format_offset(seconds: int) -> str:
    """A UTC offset as ISO 8601: 19800 -> ``+05:30``, -3600 -> ``-01:00``."""
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), HOUR)
    return f"{sign}{hours:02d}:{rest // MINUTE:02d}" + (f":{rest % MINUTE:02d}" if rest % MINUTE else "")


def _check_resolution(m: SloModel, period: Period, report: Report) -> None:
    fine, coarse = m.resolution.fine, m.resolution.coarse
    if coarse % fine:
        report(
            ("resolution", "coarse"),
            f"must be a multiple of resolution.fine ({format_duration(fine)}) "
            f"(got {format_duration(coarse)})",
        )
        return
    if isinstance(period, CalendarPeriod):
        # Calendar units start at local midnight: coarse buckets (aligned to UTC) must start there
        # too, so every UTC offset of the zone must be a whole number of coarse buckets.
        offsets = _utc_offsets(period.timezone)
        if any(o % coarse for o in offsets):
            fits = math.gcd(coarse, *offsets)
            hint = (
                f"; use coarse: {format_duration(fits)} or a divisor of it"
                if fits % fine == 0
                else "; no coarse resolution fits with this fine resolution"
            )
            report(
                ("resolution", "coarse"),
                f"{format_duration(coarse)} does not divide the UTC offsets of {period.timezone} "
                f"({', '.join(map(format_offset, offsets))}), so buckets would not start at local "
                f"midnight{hint}",
            )


def time_slices(m: SloModel) -> tuple[str, RatioTimeslicesModel] | None:
    """The time-slice method an SLO's ``budgeting`` names (method, its settings); None: occurrences, or
    not exactly one method (`_check_budgeting` reports that)."""
    b = m.budgeting
    if isinstance(b, str):
        return None
    named = [(k, v) for k, v in (("timeslices", b.timeslices), ("ratio_timeslices", b.ratio_timeslices)) if v]
    return named[0] if len(named) == 1 else None


def _check_budgeting(m: SloModel, period: Period, report: Report) -> None:
    if isinstance(m.budgeting, str):
        return
    method = time_slices(m)
    if method is None:
        report(("budgeting",), "must name exactly one method: timeslices or ratio_timeslices")
        return
    name, b = method
    where = ("budgeting", name, "slice")
    coarse = m.resolution.coarse
    if b.slice % coarse:
        report(
            where,
            f"must be a multiple of resolution.coarse ({format_duration(coarse)}): slices are read from "
            f"the coarse buckets (got {format_duration(b.slice)})",
        )
    if isinstance(period, CalendarPeriod):
        offsets = _utc_offsets(period.timezone)
        if any(o % b.slice for o in offsets):
            report(
                where,
                f"{format_duration(b.slice)} does not divide the UTC offsets of {period.timezone} "
                f"({', '.join(map(format_offset, offsets))}), so slices would not start at local midnight",
            )


def _check_tiers(m: SloModel, period: Period, objective: Fraction | None, report: Report) -> None:
    """The default table must fit in the period; custom tiers are checked one by one (and, with a valid
    ``objective``, must be able to fire) and must not repeat. Default tiers that cannot fire are dropped by
    `mapping`, not refused: the user did not write them."""
    if m.alerts.tiers is None:
        table_name, table = table_for(period)
        longest = max(table.tiers, key=lambda t: t.long)
        if longest.long > period.nominal_seconds:
            report(
                ("window",),
                f"{period.describe()} is shorter than the {format_duration(longest.long)} long window of the "
                f"default alert tiers ({table_name}); use a longer window or set alerts.tiers",
            )
        return
    seen: dict[tuple[str, int, int], int] = {}
    for i, t in enumerate(m.alerts.tiers):
        base: Loc = ("alerts", "tiers", i)

        def at(loc: Loc, message: str, base: Loc = base) -> None:
            report(base + loc, message)

        check_tier(t, period, m.resolution, at)
        if objective is not None:
            _check_fires(t, period, objective, at)
        key = (t.severity, t.long, t.short)
        if key in seen:
            at((), f"repeats alerts.tiers[{seen[key]}] (same severity and windows)")
        seen.setdefault(key, i)


def written_tiers(m: SloModel, period: Period) -> tuple[TierModel, ...]:
    """The tiers as the file gives them: ``alerts.tiers``, or the default table's for the period."""
    return m.alerts.tiers if m.alerts.tiers is not None else table_for(period)[1].tiers


def _check_by_severity(m: SloModel, period: Period, report: Report) -> None:
    """``alerts.by_severity`` must name severities of tiers, and its renames must not make two tiers
    the same alert (same severity and windows)."""
    tiers = written_tiers(m, period)
    severities = list(dict.fromkeys(t.severity for t in tiers))
    for name in m.alerts.by_severity:
        if name not in severities:
            report(
                ("alerts", "by_severity", name),
                f"no alert tier has severity {name} (the tiers' severities: {', '.join(severities)})",
            )
    seen: dict[tuple[str, int, int], str] = {}
    for t in tiers:
        by = m.alerts.by_severity.get(t.severity)
        key = (by.severity if by and by.severity else t.severity, t.long, t.short)
        other = seen.setdefault(key, t.severity)
        if other != t.severity:  # (the same written severity twice is `_check_tiers`' to report)
            renamed, kept = (t.severity, other) if key[0] != t.severity else (other, t.severity)
            report(
                ("alerts", "by_severity", renamed, "severity"),
                f"{key[0]} gives a {renamed} tier the severity and windows "
                f"({format_duration(t.long)}/{format_duration(t.short)}) of a {kept} tier",
            )


def _check_fires(t: TierModel, period: Period, objective: Fraction, report: Report) -> None:
    """A custom tier must be able to fire at the objective (its factor below `max_burn_rate`)."""
    if t.factor is not None and t.budget_percent is None:
        if why := never_fires(t.factor, objective):
            report(("factor",), f"{number(t.factor)} {why}")
    elif t.budget_percent is not None and t.factor is None:
        factor = tier_factor(t, period)
        if why := never_fires(factor, objective):
            report(
                ("budget_percent",),
                f"{number(t.budget_percent)} over {format_duration(t.long)} is a factor of {number(factor)}, "
                f"which {why}",
            )


def check_tier(t: TierModel, period: Period, res: ResolutionModel, report: Report) -> None:
    """The rules of one tier; ``report`` receives field locations relative to the tier."""
    if (t.budget_percent is None) == (t.factor is None):
        report((), "give exactly one of budget_percent or factor")
    if t.short >= t.long:
        report(
            ("short",),
            f"must be shorter than long ({format_duration(t.long)}) (got {format_duration(t.short)})",
        )
    if t.long > period.nominal_seconds:
        report(
            ("long",),
            f"{format_duration(t.long)} is longer than the SLO period ({period.describe()}); "
            "shorten the window or lengthen the period",
        )
    for field, window in (("long", t.long), ("short", t.short)):
        # Windows up to 6h are summed from fine buckets, longer ones from coarse buckets: a window
        # must be a whole number of its buckets to be exact.
        if window <= FINE_HORIZON and window % res.fine:
            report(
                (field,),
                f"{format_duration(window)} is not a multiple of resolution.fine "
                f"({format_duration(res.fine)}), which windows up to 6h use",
            )
        elif window > FINE_HORIZON and window % res.coarse:
            report(
                (field,),
                f"{format_duration(window)} is not a multiple of resolution.coarse "
                f"({format_duration(res.coarse)}), which windows longer than 6h use",
            )


def check_latency(m: LatencyModel, report: Report) -> tuple[bool, ...]:
    """The latency section's windows vs. its resolution, then each alert; whether each alert passed."""
    for i, window in enumerate(m.windows):
        if window % m.resolution:
            report(
                ("windows", i),
                f"{format_duration(window)} is not a multiple of latency.resolution "
                f"({format_duration(m.resolution)})",
            )
    seen: dict[tuple[float, int, float, tuple[tuple[str, str], ...]], int] = {}
    passed: list[bool] = []
    for i, a in enumerate(m.alerts):
        ok = _check_latency_alert(a, m, ("alerts", i), report)
        key_of = (a.percentile, a.window, a.threshold_ms, tuple(sorted(a.match.items())))
        if key_of in seen:
            ok = False
            report(
                ("alerts", i),
                f"repeats alerts[{seen[key_of]}] (same percentile, window, threshold and match)",
            )
        seen.setdefault(key_of, i)
        passed.append(ok)
    return tuple(passed)


def _check_latency_alert(a: LatencyAlertModel, m: LatencyModel, where: Loc, report: Report) -> bool:
    """An alert must use a computed percentile and window and match only group labels."""
    ok = True
    if a.percentile not in m.percentiles:
        ok = False
        computed = ", ".join(f"{p:g}" for p in m.percentiles)
        report((*where, "percentile"), f"p{a.percentile:g} is not computed; percentiles: {computed}")
    if a.window not in m.windows:
        ok = False
        computed = ", ".join(map(format_duration, m.windows))
        report((*where, "window"), f"{format_duration(a.window)} is not computed; windows: {computed}")
    for key in a.match:
        if key not in m.group_by:
            ok = False
            report(
                (*where, "match", key),
                f"is not a latency group label; group_by: {', '.join(m.group_by) or 'none'}",
            )
    return ok
