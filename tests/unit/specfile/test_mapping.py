"""Mapping onto core.spec: exact numbers, the value syntaxes, defaults, tiers and the latency section."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sloguard.core.spec import (
    DAY,
    HOUR,
    MINUTE,
    AlertTier,
    CalendarPeriod,
    LatencyAlert,
    LatencySpec,
    Resolution,
    RollingPeriod,
    Severity,
)
from sloguard.specfile import SpecError, describe, parse_config
from sloguard.specfile.mapping import merge_ranges, period_of, tier
from sloguard.specfile.schema import CalendarModel, TierModel
from tests.unit.specfile.texts import (
    FACTORS_30D,
    GOOD_SLO,
    one_slo,
    spec_text,
)


@pytest.mark.parametrize(
    ("text", "ratio"),
    [
        pytest.param("99.9", Fraction(999, 1000), id="99.9"),
        pytest.param("99.95", Fraction(1999, 2000), id="99.95"),
        pytest.param("99.999", Fraction(99999, 100000), id="99.999"),
        pytest.param("99.99999999", Fraction(9999999999, 10**10), id="many-digits"),
        pytest.param("99", Fraction(99, 100), id="integer"),
        pytest.param("9_9.5", Fraction(995, 1000), id="underscores"),
        pytest.param("50", Fraction(1, 2), id="lowest-percent"),
    ],
)
def test_objective_is_exact(text: str, ratio: Fraction) -> None:
    assert parse_config(one_slo(objective=text)).slos[1].objective == ratio


@pytest.mark.parametrize(
    ("text", "ratio"),
    [
        pytest.param("0.999", Fraction(999, 1000), id="openslo-style"),
        pytest.param("0.9995", Fraction(1999, 2000), id="exact"),
        pytest.param("0.25", Fraction(1, 4), id="low-on-purpose"),
    ],
)
def test_objective_as_a_ratio(text: str, ratio: Fraction) -> None:
    assert parse_config(one_slo(objective=text, objective_unit="ratio")).slos[1].objective == ratio


def test_ratio_and_percent_give_the_same_spec() -> None:
    as_ratio = parse_config(one_slo(objective="0.999", objective_unit="ratio")).slos[1]
    assert as_ratio == parse_config(one_slo(objective="99.9", objective_unit="percent")).slos[1]
    assert as_ratio == parse_config(one_slo(objective="99.9")).slos[1]  # percent is the default


@pytest.mark.parametrize(
    ("objective", "kept"),
    [
        pytest.param("99.99", [Fraction("14.4"), 6, 3, 1], id="99.99-all-fire"),
        pytest.param("93.1", [Fraction("14.4"), 6, 3, 1], id="93.1-ceiling-14.49"),
        pytest.param("93.0", [6, 3, 1], id="93-ceiling-14.29"),
        pytest.param("90", [6, 3, 1], id="90-ceiling-10"),
        pytest.param("83.4", [6, 3, 1], id="83.4-ceiling-6.02"),
        pytest.param("83.3", [3, 1], id="83.3-ceiling-5.99"),
        pytest.param("50", [1], id="50-ceiling-2"),
    ],
)
def test_default_tiers_that_cannot_fire_are_dropped(objective: str, kept: list[Fraction]) -> None:
    # A tier fires when the burn rate exceeds its factor; the burn rate is at most 1 / (1 - objective).
    spec = parse_config(one_slo(objective=objective)).slos[1]
    assert [t.factor for t in spec.tiers] == kept
    assert [t.factor for t in spec.dropped_tiers] == FACTORS_30D[: 4 - len(kept)]
    # The dropped tiers are not part of the state fingerprint (the repr).
    assert "dropped_tiers" not in repr(spec)


@pytest.mark.parametrize(
    ("bad_status", "ranges"),
    [
        pytest.param("[500-599, 429, 5xx]", ((429, 429), (500, 599)), id="mixed-merged"),
        pytest.param("[503]", ((503, 503),), id="one-code"),
        pytest.param("['502', 4XX]", ((400, 499), (502, 502)), id="quoted-code-and-class"),
        pytest.param("[500 - 502, 503-504]", ((500, 504),), id="adjacent-ranges-joined"),
    ],
)
def test_bad_status(bad_status: str, ranges: tuple[tuple[int, int], ...]) -> None:
    sli = f"{{type: availability, bad_status: {bad_status}}}"
    assert parse_config(one_slo(sli=sli)).slos[1].sli.bad_status == ranges


@pytest.mark.parametrize(
    ("window", "period"),
    [
        pytest.param("28d", RollingPeriod(28 * DAY), id="days"),
        pytest.param("2w", RollingPeriod(14 * DAY), id="weeks"),
        pytest.param("{calendar: month}", CalendarPeriod("month", "UTC"), id="calendar-default-utc"),
        pytest.param(
            "{calendar: quarter, timezone: America/New_York}",
            CalendarPeriod("quarter", "America/New_York"),
            id="calendar-quarter",
        ),
    ],
)
def test_windows(window: str, period: RollingPeriod | CalendarPeriod) -> None:
    assert parse_config(one_slo(window=window)).slos[1].period == period


def test_short_period_with_custom_tiers() -> None:
    alerts = "{tiers: [{severity: page, long: 1h, short: 5m, budget_percent: 10}]}"
    slo = parse_config(one_slo(window="12h", alerts=alerts)).slos[1]
    assert slo.period == RollingPeriod(12 * HOUR)
    assert slo.tiers[0].factor == Fraction("1.2")  # 10% of 12h spent in 1h


def test_custom_tiers_and_options() -> None:
    text = spec_text(
        {
            **GOOD_SLO,
            "description": "Payments succeed",
            "endpoints": '["POST /v1/pay*", "GET /v1/pay/*"]',
            "group_by": "[customer, endpoint]",
            "max_series": "50",
            "resolution": "{fine: 30s, coarse: 15m}",
            "alerts": (
                "\n      min_events: 10"
                "\n      tiers:"
                "\n        - {severity: page, long: 1h, short: 5m, budget_percent: 2.5, for: 2m,"
                " min_events: 20}"
                "\n        - {severity: ticket, long: 3d, short: 6h, factor: 0.75}"
            ),
        }
    )
    slo = parse_config(text).slos[0]
    assert slo.description == "Payments succeed"
    assert slo.endpoints == ("POST /v1/pay*", "GET /v1/pay/*")
    assert slo.group_by == ("customer", "endpoint")
    assert slo.max_series == 50
    assert slo.resolution == Resolution(fine=30, coarse=900)
    assert slo.tiers == (
        AlertTier(
            Severity.PAGE, HOUR, 5 * MINUTE, Fraction(18), Fraction(5, 2), min_events=20, for_seconds=120
        ),
        AlertTier(Severity.TICKET, 3 * DAY, 6 * HOUR, Fraction(3, 4), None, min_events=10, for_seconds=0),
    )


def test_series_ttl() -> None:
    (spec,) = parse_config(spec_text({**GOOD_SLO, "group_by": "[customer]", "series_ttl": "1d"})).slos
    assert spec.series_ttl == DAY
    assert "idle ones evicted after 1d" in describe(
        parse_config(spec_text({**GOOD_SLO, "group_by": "[customer]", "series_ttl": "1d"}))
    )


def test_latency_section_defaults_and_options() -> None:
    assert parse_config(spec_text(GOOD_SLO)).latency is None
    assert parse_config(spec_text(GOOD_SLO, tail="latency: {}\n")).latency == LatencySpec()
    tail = (
        "latency: {group_by: [customer], percentiles: [99.99], windows: [30s, 1d], resolution: 30s,"
        " max_groups: 5, significant_figures: 3, max_slots: 6}\n"
    )
    assert parse_config(spec_text(GOOD_SLO, tail=tail)).latency == LatencySpec(
        group_by=("customer",),
        percentiles=(99.99,),
        windows=(30, DAY),
        resolution=30,
        max_groups=5,
        significant_figures=3,
        max_slots=6,
    )
    tail = (
        "latency:\n  alerts:\n    - {threshold_ms: 750}\n"
        "    - {percentile: 99.9, window: 1m, threshold_ms: 2000.5, severity: page, for: 0s, min_events: 50,"
        " match: {service: checkout, endpoint: POST /v1/orders}}\n"
    )
    assert parse_config(spec_text(GOOD_SLO, tail=tail)).latency == LatencySpec(
        alerts=(
            LatencyAlert(percentile=99.0, window=300, threshold_ms=750.0),
            LatencyAlert(
                percentile=99.9,
                window=60,
                threshold_ms=2000.5,
                severity=Severity.PAGE,
                for_seconds=0,
                min_events=50,
                match=(("endpoint", "POST /v1/orders"), ("service", "checkout")),
            ),
        )
    )


def test_export_top_k_is_parsed_and_validated() -> None:
    base = (
        "apiVersion: sloguard/v1\nslos:\n  - name: a\n    service: s\n    objective: 99.9\n"
        "    sli: {type: availability}\n    window: 30d\n    group_by: [customer]\n"
    )
    assert parse_config(base).slos[0].export_top_k is None
    assert parse_config(base + "    export: {top_k: 25}\n").slos[0].export_top_k == 25
    with pytest.raises(SpecError, match=r"export\.top_k"):
        parse_config(base + "    export: {top_k: 0}\n")


def test_customer_grouped_slos_default_to_minute_and_hour_buckets() -> None:
    base = (
        "apiVersion: sloguard/v1\nslos:\n  - name: a\n    service: s\n    objective: 99.9\n"
        "    sli: {type: availability}\n    window: 30d\n"
    )
    assert parse_config(base).slos[0].resolution == Resolution(10, 300)
    assert parse_config(base + "    group_by: [customer]\n").slos[0].resolution == Resolution(60, 3600)
    explicit = base + "    group_by: [customer]\n    resolution: {fine: 10s, coarse: 5m}\n"
    assert parse_config(explicit).slos[0].resolution == Resolution(10, 300)


def test_merge_ranges() -> None:
    assert merge_ranges([(500, 599), (429, 429), (503, 503)]) == ((429, 429), (500, 599))
    assert merge_ranges([(500, 502), (503, 504), (506, 506)]) == ((500, 504), (506, 506))
    assert merge_ranges([]) == ()


def test_period_of() -> None:
    assert period_of(28 * DAY) == RollingPeriod(28 * DAY)
    calendar = CalendarModel.model_validate({"calendar": "month", "timezone": "Europe/Berlin"})
    assert period_of(calendar) == CalendarPeriod("month", "Europe/Berlin")


def test_tier_factor_from_budget_or_as_given() -> None:
    budget = TierModel.model_validate({"severity": "page", "long": "1h", "short": "5m", "budget_percent": 2})
    given = TierModel.model_validate(
        {"severity": "ticket", "long": "1d", "short": "2h", "factor": 3, "for": "5m"}
    )
    period = RollingPeriod(30 * DAY)
    assert tier(budget, period, 7) == AlertTier(
        Severity.PAGE, HOUR, 5 * MINUTE, Fraction("14.4"), Fraction(2), min_events=7, for_seconds=0
    )
    assert tier(given, period, 0) == AlertTier(
        Severity.TICKET, DAY, 2 * HOUR, Fraction(3), None, min_events=0, for_seconds=5 * MINUTE
    )
