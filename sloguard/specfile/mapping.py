"""Validated schema models -> the plain dataclasses of :mod:`sloguard.core.spec`.

Percentages become ratios, durations seconds, ``bad_status`` entries merged inclusive ranges, alert tiers
get their burn-rate factors from the SLO's own period. The checks that span fields (`checks`) run first and
report into the same list; what they refuse is left out of the mapped result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sloguard.core.spec import (
    AlertTier,
    CalendarPeriod,
    Labels,
    LatencyAlert,
    LatencySpec,
    Period,
    Resolution,
    RollingPeriod,
    Severity,
    Sli,
    SloSpec,
    Timeslices,
    max_burn_rate,
)
from sloguard.specfile.checks import check_latency, check_slo, objective_ratio, tier_factor, time_slices
from sloguard.specfile.errors import Report
from sloguard.specfile.schema import (
    AlertsModel,
    CalendarModel,
    LatencyAlertModel,
    LatencyModel,
    RatioTimeslicesModel,
    ResolutionModel,
    SloModel,
    TierModel,
    TimeslicesModel,
)
from sloguard.specfile.tables import table_for


def period_of(window: int | CalendarModel) -> Period:
    """``window:`` as a core period: seconds are rolling, a ``{calendar: ...}`` mapping is calendar."""
    if isinstance(window, int):
        return RollingPeriod(window)
    return CalendarPeriod(window.calendar, window.timezone)


def merge_ranges(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted, with overlapping and adjacent ranges joined: [500-599, 429, 503] -> (429, 429), (500, 599)."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _merged(*layers: Labels) -> Labels:
    """Label or annotation pairs, a later layer's value winning over an earlier one's for the same name."""
    merged: dict[str, str] = {}
    for layer in layers:
        merged.update(layer)
    return tuple(merged.items())


def tier(
    t: TierModel, period: Period, min_events: int, alerts: AlertsModel | None = None, *, default: bool = False
) -> AlertTier:
    """One tier; a ``budget_percent`` becomes the factor ``workbook_factor(budget, period, long)``.

    With ``alerts`` (the SLO's ``alerts:``), the tier's alert also gets ``alerts.by_severity`` of its
    severity (rename, ``for``) and the labels and annotations of ``alerts``, of its severity and its own,
    the more specific winning. The ``for`` of a ``default`` tier (from a table, not written by the user)
    gives way to its severity's.
    """
    by = alerts.by_severity.get(t.severity) if alerts is not None else None
    for_seconds = t.for_
    if by is not None and by.for_ is not None and (default or t.for_ is None):
        for_seconds = by.for_
    return AlertTier(
        severity=Severity(by.severity if by is not None and by.severity else t.severity),
        long_window=t.long,
        short_window=t.short,
        factor=tier_factor(t, period),
        budget_percent=t.budget_percent if t.factor is None else None,
        min_events=min_events,
        for_seconds=for_seconds or 0,
        labels=_merged(alerts.labels if alerts else (), by.labels if by else (), t.labels),
        annotations=_merged(
            alerts.annotations if alerts else (), by.annotations if by else (), t.annotations
        ),
    )


def default_tiers(
    period: Period, min_events: int = 0, alerts: AlertsModel | None = None
) -> tuple[AlertTier, ...]:
    """The default alert tiers for ``period``, from the package's alert tables.

    A 28-day period uses ``google-28d.yaml``, any other ``google-30d.yaml``; factors are
    ``workbook_factor(budget_percent, period.nominal_seconds, long)``, so 14.4 / 6 / 3 / 1 over 30 days.
    """
    _, table = table_for(period)
    return tuple(tier(t, period, min_events, alerts, default=True) for t in table.tiers)


def _tiers(m: SloModel, period: Period) -> tuple[tuple[AlertTier, ...], tuple[AlertTier, ...]]:
    """The SLO's tiers, or the default table's; the alerts block's ``min_events`` unless a tier sets it.

    Returns (tiers, dropped): default tiers that can never fire at the objective (a factor at or above
    `max_burn_rate`, e.g. 14.4 at 90 %) are dropped, not refused: the user did not write them, and
    `sloguard check` says so. Custom tiers that cannot fire are refused by `checks`.
    """
    min_events = m.alerts.min_events if m.alerts.min_events is not None else 0
    if m.alerts.tiers is None:
        defaults = default_tiers(period, min_events, m.alerts)
        objective = objective_ratio(m)
        if objective >= 1:  # refused by checks (a ratio of 1 or more); this result is not used
            return defaults, ()
        ceiling = max_burn_rate(objective)
        return tuple(t for t in defaults if t.factor < ceiling), tuple(
            t for t in defaults if t.factor >= ceiling
        )
    tiers = tuple(
        tier(t, period, t.min_events if t.min_events is not None else min_events, m.alerts)
        for t in m.alerts.tiers
        if (t.budget_percent is None) != (t.factor is None)
    )
    return tiers, ()


def slo(m: SloModel, report: Report) -> SloSpec:
    """One SLO, after the checks that span its fields (problems go to ``report``)."""
    explicit = "resolution" in m.model_fields_set
    if not explicit and "customer" in m.group_by:
        # Thousands of per-customer series need 1-minute / 1-hour buckets (~4 KB a series instead of
        # ~43 KB); a per-customer page is at most a minute later. The default applies before any check,
        # so every check sees the effective buckets.
        coarser = ResolutionModel.model_validate({"fine": "1m", "coarse": "1h"})
        m = m.model_copy(update={"resolution": coarser})
    sliced = time_slices(m)
    if not explicit and sliced is not None:
        # Slices are read from the coarse buckets: the default coarse bucket becomes the largest that
        # divides the slice (1m slices: 1m buckets), and the fine one the largest that divides that.
        coarse = math.gcd(m.resolution.coarse, sliced[1].slice)
        res = ResolutionModel.model_construct(fine=math.gcd(m.resolution.fine, coarse), coarse=coarse)
        m = m.model_copy(update={"resolution": res})
    period = period_of(m.window)
    check_slo(m, period, report)
    tiers, dropped = _tiers(m, period)
    return SloSpec(
        name=m.name,
        service=m.service,
        objective=objective_ratio(m),
        sli=Sli(
            kind=m.sli.type,
            bad_status=merge_ranges(m.sli.bad_status),
            threshold_ms=m.sli.threshold_ms if m.sli.type == "latency" else None,
        ),
        period=period,
        tiers=tiers,
        dropped_tiers=dropped,
        endpoints=m.endpoints,
        endpoints_exclude=m.endpoints_exclude,
        group_by=m.group_by,
        resolution=Resolution(fine=m.resolution.fine, coarse=m.resolution.coarse),
        max_series=m.max_series,
        description=m.description,
        export_top_k=m.export.top_k,
        series_ttl=m.series_ttl,
        labels=m.labels,
        alert_name=m.alerts.name,
        budgeting=_budgeting(sliced),
    )


def _budgeting(sliced: tuple[str, RatioTimeslicesModel] | None) -> Timeslices | None:
    if sliced is None:
        return None
    _, b = sliced
    return Timeslices(b.slice, b.good_ratio if isinstance(b, TimeslicesModel) else None, b.empty)


def _latency_alert(a: LatencyAlertModel) -> LatencyAlert:
    return LatencyAlert(
        percentile=a.percentile,
        window=a.window,
        threshold_ms=a.threshold_ms,
        severity=Severity(a.severity),
        for_seconds=a.for_,
        min_events=a.min_events,
        match=tuple(sorted(a.match.items())),
    )


def latency(m: LatencyModel, report: Report) -> LatencySpec:
    """The latency section, with only the alerts that passed their checks (problems go to ``report``)."""
    passed = check_latency(m, report)
    return LatencySpec(
        group_by=m.group_by,
        percentiles=m.percentiles,
        windows=m.windows,
        max_slots=m.max_slots,
        resolution=m.resolution,
        max_groups=m.max_groups,
        significant_figures=m.significant_figures,
        alerts=tuple(_latency_alert(a) for a, ok in zip(m.alerts, passed, strict=True) if ok),
    )
