"""Spec builders for core tests (no YAML: the core does not depend on the file format)."""

from __future__ import annotations

from fractions import Fraction

from sloguard.core.spec import (
    DAY,
    AlertTier,
    Config,
    LatencySpec,
    Period,
    Resolution,
    RollingPeriod,
    Severity,
    Sli,
    SloSpec,
    workbook_factor,
)

WORKBOOK = (
    ("page", 2, 3600, 300),
    ("page", 5, 6 * 3600, 1800),
    ("ticket", 10, DAY, 7200),
    ("ticket", 10, 3 * DAY, 6 * 3600),
)


def tiers(period_s: int = 30 * DAY, min_events: int = 0) -> tuple[AlertTier, ...]:
    return tuple(
        AlertTier(
            Severity(sev),
            long,
            short,
            workbook_factor(Fraction(pct), period_s, long),
            budget_percent=Fraction(pct),
            min_events=min_events,
        )
        for sev, pct, long, short in WORKBOOK
    )


def slo(
    name: str = "checkout-availability",
    service: str = "checkout",
    objective: str = "99.9",
    kind: str = "availability",
    threshold_ms: float | None = None,
    period: Period | None = None,
    group_by: tuple[str, ...] = (),
    endpoints: tuple[str, ...] = (),
    fine: int = 10,
    coarse: int = 300,
    max_series: int = 10_000,
    min_events: int = 0,
) -> SloSpec:
    period = period or RollingPeriod(30 * DAY)
    return SloSpec(
        name=name,
        service=service,
        objective=Fraction(objective) / 100,
        sli=Sli(kind, threshold_ms=threshold_ms),  # type: ignore[arg-type]
        period=period,
        tiers=tiers(period.nominal_seconds, min_events),
        endpoints=endpoints,
        group_by=group_by,
        resolution=Resolution(fine, coarse),
        max_series=max_series,
    )


def config(*slos: SloSpec, latency: LatencySpec | None = None) -> Config:
    return Config(tuple(slos), latency)
