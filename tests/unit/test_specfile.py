"""The SLO file: parsing, mapping onto core.spec, the default alert tables, and error messages."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

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
    Sli,
)
from sloguard.specfile import SpecError, default_tiers, describe, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "tests" / "testdata" / "specs"
EXAMPLE = ROOT / "config" / "slos.example.yaml"
SOURCE = "config/slos.yaml"

FACTORS_30D = [Fraction("14.4"), Fraction(6), Fraction(3), Fraction(1)]
FACTORS_28D = [Fraction("13.44"), Fraction("5.6"), Fraction("2.8"), Fraction(28, 30)]
DEFAULT_WINDOWS = [(HOUR, 5 * MINUTE), (6 * HOUR, 30 * MINUTE), (DAY, 2 * HOUR), (3 * DAY, 6 * HOUR)]
DEFAULT_SEVERITIES = [Severity.PAGE, Severity.PAGE, Severity.TICKET, Severity.TICKET]


# --------------------------------------------------------------------------------------------------
# helpers

GOOD_SLO = {
    "name": "ok",
    "service": "checkout",
    "objective": "99.9",
    "sli": "{type: availability}",
    "window": "30d",
}
BROKEN_SLO = {**GOOD_SLO, "name": "broken"}


def slo_yaml(fields: Mapping[str, str | None]) -> str:
    """One list item of `slos:`; values are YAML text, None leaves the key out."""
    lines = [f"{key}: {value}" for key, value in fields.items() if value is not None]
    return "  - " + "\n    ".join(lines) + "\n"


def spec_text(*slos: Mapping[str, str | None], tail: str = "") -> str:
    return "apiVersion: sloguard/v1\nslos:\n" + "".join(slo_yaml(s) for s in slos) + tail


def one_slo(**fields: str | None) -> str:
    """A file with a valid SLO and, second, `BROKEN_SLO` changed by ``fields``."""
    return spec_text(GOOD_SLO, {**BROKEN_SLO, **fields})


def problems(text: str) -> tuple[str, ...]:
    with pytest.raises(SpecError) as info:
        parse_config(text, SOURCE)
    return info.value.problems


# --------------------------------------------------------------------------------------------------
# the example from the issue


def test_issue_example_maps_exactly() -> None:
    config = load_config(SPECS / "issue-example.yaml")

    avail, lat = config.slos
    assert avail.name == "checkout-availability"
    assert avail.service == "checkout"
    assert avail.endpoints == ("POST /v1/*",)
    assert avail.objective == Fraction(999, 1000)
    assert avail.error_budget == Fraction(1, 1000)
    assert avail.sli == Sli(kind="availability", bad_status=((500, 599),), threshold_ms=None)
    assert avail.period == RollingPeriod(30 * DAY)
    assert avail.group_by == ("endpoint",)
    assert avail.resolution == Resolution(fine=10, coarse=300)
    assert avail.max_series == 10_000
    assert avail.description == ""
    assert avail.tiers == tuple(
        AlertTier(sev, long, short, factor, Fraction(pct), min_events=0, for_seconds=0)
        for sev, (long, short), factor, pct in zip(
            DEFAULT_SEVERITIES, DEFAULT_WINDOWS, FACTORS_30D, [2, 5, 10, 10], strict=True
        )
    )

    assert lat.name == "checkout-latency"
    assert lat.objective == Fraction(99, 100)
    assert lat.endpoints == ()
    assert lat.sli == Sli(kind="latency", bad_status=((500, 599),), threshold_ms=300.0)
    assert lat.period == RollingPeriod(28 * DAY)
    assert lat.group_by == ("customer",)
    assert [t.factor for t in lat.tiers] == FACTORS_28D

    assert config.latency == LatencySpec(
        group_by=("service", "endpoint"),
        percentiles=(50.0, 90.0, 99.0, 99.9),
        windows=(MINUTE, 5 * MINUTE, HOUR),
    )


# --------------------------------------------------------------------------------------------------
# default alert tables (package data): the factors are pinned


@pytest.mark.parametrize(
    ("period", "factors"),
    [
        pytest.param(RollingPeriod(30 * DAY), FACTORS_30D, id="rolling-30d"),
        pytest.param(RollingPeriod(28 * DAY), FACTORS_28D, id="rolling-28d"),
        pytest.param(CalendarPeriod("month", "Europe/Berlin"), FACTORS_30D, id="calendar-month"),
        pytest.param(
            RollingPeriod(7 * DAY),
            [Fraction("3.36"), Fraction("1.4"), Fraction("0.7"), Fraction(7, 30)],
            id="rolling-7d-uses-30d-table",
        ),
    ],
)
def test_default_tier_factors(period: RollingPeriod | CalendarPeriod, factors: list[Fraction]) -> None:
    tiers = default_tiers(period)
    assert [t.factor for t in tiers] == factors
    assert [(t.long_window, t.short_window) for t in tiers] == DEFAULT_WINDOWS
    assert [t.severity for t in tiers] == DEFAULT_SEVERITIES
    assert [t.budget_percent for t in tiers] == [2, 5, 10, 10]
    assert all(t.for_seconds == 0 and t.min_events == 0 for t in tiers)


def test_default_tiers_take_min_events_from_alerts_block() -> None:
    config = parse_config(one_slo(alerts="{min_events: 25}"))
    assert {t.min_events for t in config.slos[1].tiers} == {25}


# --------------------------------------------------------------------------------------------------
# exact numbers and the value syntaxes


@pytest.mark.parametrize(
    ("text", "ratio"),
    [
        pytest.param("99.9", Fraction(999, 1000), id="99.9"),
        pytest.param("99.95", Fraction(1999, 2000), id="99.95"),
        pytest.param("99.999", Fraction(99999, 100000), id="99.999"),
        pytest.param("99.99999999", Fraction(9999999999, 10**10), id="many-digits"),
        pytest.param("99", Fraction(99, 100), id="integer"),
        pytest.param("9_9.5", Fraction(995, 1000), id="underscores"),
        pytest.param("0.1", Fraction(1, 1000), id="tiny"),
    ],
)
def test_objective_is_exact(text: str, ratio: Fraction) -> None:
    assert parse_config(one_slo(objective=text)).slos[1].objective == ratio


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


def test_yaml_merge_keys_may_override() -> None:
    # Duplicate keys are refused, but a key after a merge (<<) overrides the merged value.
    text = (
        "apiVersion: sloguard/v1\nslos:\n"
        "  - &first {name: a, service: checkout, objective: 99.9, sli: {type: availability}, window: 30d}\n"
        "  - {<<: *first, name: b, objective: 99.5}\n"
    )
    a, b = parse_config(text).slos
    assert (b.name, b.service, b.objective) == ("b", "checkout", Fraction(995, 1000))
    assert a.objective == Fraction(999, 1000)


# --------------------------------------------------------------------------------------------------
# refused files: every message names the file, the SLO and the field


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # structure
        pytest.param(
            {"objectve": "99.9"}, "objectve: unknown field; did you mean 'objective'?", id="unknown-key"
        ),
        pytest.param(
            {"sli": "{type: availability, bad_stauts: [500]}"},
            "sli.bad_stauts: unknown field; did you mean 'bad_status'?",
            id="unknown-nested-key",
        ),
        pytest.param({"service": None}, "service: is required", id="missing-service"),
        pytest.param({"service": "''"}, "service: must be a non-empty string", id="empty-service"),
        pytest.param({"name": "'a b'"}, "name: must start with a letter or digit", id="bad-name"),
        pytest.param({"sli": None}, "sli: is required", id="missing-sli"),
        pytest.param({"max_series": "0"}, "max_series: must be at least 1 (got 0)", id="max-series-0"),
        pytest.param(
            {"series_ttl": "1d"}, "series_ttl: only applies to an SLO with group_by", id="ttl-without-group"
        ),
        pytest.param(
            {"series_ttl": "30m", "group_by": "[customer]"},
            "series_ttl: must be at least the coarse resolution (1h)",
            id="ttl-below-coarse",
        ),
        pytest.param({"description": "[a]"}, "description: must be a string", id="description-list"),
        # objective
        pytest.param(
            {"objective": "100"}, "objective: must be greater than 0 and less than 100", id="objective-100"
        ),
        pytest.param(
            {"objective": "0"}, "objective: must be greater than 0 and less than 100", id="objective-0"
        ),
        pytest.param({"objective": "abc"}, "objective: must be a number", id="objective-abc"),
        pytest.param({"objective": "'99.9'"}, "objective: must be a number", id="objective-quoted"),
        pytest.param({"objective": ".nan"}, "objective: must be a number", id="objective-nan"),
        pytest.param({"objective": "true"}, "objective: must be a number", id="objective-bool"),
        # SLI
        pytest.param(
            {"sli": "{type: latency}"}, "sli.threshold_ms: is required for type latency", id="no-threshold"
        ),
        pytest.param(
            {"sli": "{type: latency, threshold_ms: 0}"},
            "sli.threshold_ms: must be greater than 0",
            id="threshold-0",
        ),
        pytest.param(
            {"sli": "{type: availability, threshold_ms: 5}"},
            "sli.threshold_ms: only applies to type latency",
            id="threshold-on-availability",
        ),
        pytest.param(
            {"sli": "{type: errors}"}, "sli.type: must be 'availability' or 'latency'", id="bad-sli-type"
        ),
        pytest.param(
            {"sli": "{type: availability, bad_status: [500, 6xx]}"},
            "sli.bad_status[1]: must be a status code (503), a range (500-599) or a class (5xx)",
            id="bad-status-class",
        ),
        pytest.param(
            {"sli": "{type: availability, bad_status: [599-500]}"},
            "sli.bad_status[0]: must be a status code",
            id="bad-status-reversed-range",
        ),
        pytest.param(
            {"sli": "{type: availability, bad_status: []}"},
            "sli.bad_status: must not be empty",
            id="bad-status-empty",
        ),
        # window
        pytest.param({"window": "30x"}, "window: must be a whole number of hours or days", id="window-unit"),
        pytest.param(
            {"window": "90m"}, "window: must be a whole number of hours or days", id="window-not-hours"
        ),
        pytest.param({"window": "0d"}, "window: must be a whole number of hours or days", id="window-zero"),
        pytest.param({"window": "30"}, "window: must be a rolling period such as 30d", id="window-number"),
        pytest.param(
            {"window": "{calendar: fortnight}"},
            "window.calendar: must be 'week', 'month', 'quarter' or 'year'",
            id="calendar-unit",
        ),
        pytest.param(
            {"window": "{calendar: month, timezone: Europe/Berln}"},
            "window.timezone: unknown time zone; did you mean 'Europe/Berlin'?",
            id="bad-timezone",
        ),
        pytest.param(
            {"window": "{calendar: month, tz: UTC}"},
            "window.tz: unknown field; allowed: calendar, timezone",
            id="calendar-unknown-key",
        ),
        pytest.param(
            {"window": "12h"},
            "window: 12h is shorter than the 3d long window of the default alert tiers",
            id="period-shorter-than-default-tiers",
        ),
        # grouping and endpoints
        pytest.param(
            {"group_by": "[host]"}, "group_by[0]: must be 'endpoint' or 'customer'", id="group-by-unknown"
        ),
        pytest.param(
            {"group_by": "[endpoint, endpoint]"}, "group_by: lists 'endpoint' twice", id="group-by-duplicate"
        ),
        pytest.param({"endpoints": "[]"}, "endpoints: must not be empty", id="endpoints-empty"),
        pytest.param({"endpoints": "['']"}, "endpoints[0]: must be a non-empty string", id="endpoint-blank"),
        pytest.param({"endpoints": "'POST /v1/*'"}, "endpoints: must be a list", id="endpoints-not-a-list"),
        # resolution
        pytest.param(
            {"resolution": "{fine: 7s}"}, "resolution.fine: must be at least 1s and divide 1m", id="fine-7s"
        ),
        pytest.param(
            {"resolution": "{fine: 2m}"}, "resolution.fine: must be at least 1s and divide 1m", id="fine-2m"
        ),
        pytest.param(
            {"resolution": "{coarse: 7m}"},
            "resolution.coarse: must be at least 1s and divide 1h",
            id="coarse-7m",
        ),
        pytest.param(
            {"resolution": "{fine: 30s, coarse: 20s}"},
            "resolution.coarse: must be a multiple of resolution.fine (30s) (got 20s)",
            id="coarse-not-multiple-of-fine",
        ),
        pytest.param(
            {"window": "{calendar: month, timezone: Asia/Kolkata}", "resolution": "{coarse: 1h}"},
            "resolution.coarse: 1h does not divide the UTC offsets of Asia/Kolkata (+05:30), so buckets"
            " would not start at local midnight; use coarse: 30m or a divisor of it",
            id="coarse-vs-timezone-offset",
        ),
        # alert tiers
        pytest.param(
            {"alerts": "{tiers: [{severity: page, long: 1h, short: 1h, budget_percent: 2}]}"},
            "alerts.tiers[0].short: must be shorter than long (1h) (got 1h)",
            id="tier-short-not-below-long",
        ),
        pytest.param(
            {
                "resolution": "{fine: 1m, coarse: 1h}",
                "alerts": "{tiers: [{severity: page, long: 1h, short: 90s, budget_percent: 2}]}",
            },
            "alerts.tiers[0].short: 90s is not a multiple of resolution.fine (1m)",
            id="tier-window-not-multiple-of-fine",
        ),
        pytest.param(
            {
                "resolution": "{coarse: 1h}",
                "alerts": "{tiers: [{severity: ticket, long: 390m, short: 30m, budget_percent: 10}]}",
            },
            "alerts.tiers[0].long: 390m is not a multiple of resolution.coarse (1h)",
            id="tier-window-not-multiple-of-coarse",
        ),
        pytest.param(
            {"window": "1d", "alerts": "{tiers: [{severity: ticket, long: 3d, short: 6h, factor: 1}]}"},
            "alerts.tiers[0].long: 3d is longer than the SLO period (1d)",
            id="tier-longer-than-period",
        ),
        pytest.param(
            {"alerts": "{tiers: [{severity: page, long: 1h, short: 5m, budget_percent: 2, factor: 14}]}"},
            "alerts.tiers[0]: give exactly one of budget_percent or factor",
            id="tier-budget-and-factor",
        ),
        pytest.param(
            {"alerts": "{tiers: [{severity: page, long: 1h, short: 5m}]}"},
            "alerts.tiers[0]: give exactly one of budget_percent or factor",
            id="tier-neither-budget-nor-factor",
        ),
        pytest.param(
            {"alerts": "{tiers: [{severity: page, long: 1h, short: 5m, budget_percent: 101}]}"},
            "alerts.tiers[0].budget_percent: must be greater than 0 and at most 100",
            id="tier-budget-over-100",
        ),
        pytest.param(
            {"alerts": "{tiers: [{severity: warn, long: 1h, short: 5m, factor: 2}]}"},
            "alerts.tiers[0].severity: must be 'page' or 'ticket' (got 'warn')",
            id="tier-severity",
        ),
        pytest.param(
            {"alerts": "{tiers: [{severity: page, long: 1h, short: 5m, factor: 2, fro: 2m}]}"},
            "alerts.tiers[0].fro: unknown field; did you mean 'for'?",
            id="tier-unknown-key",
        ),
        pytest.param(
            {"alerts": "{tiers: [{severity: page, long: 1 hour, short: 5m, factor: 2}]}"},
            "alerts.tiers[0].long: must be a duration such as 30s, 5m, 1h, 7d or 2w (got '1 hour')",
            id="tier-bad-duration",
        ),
        pytest.param(
            {"alerts": "{min_events: many}"},
            "alerts.min_events: must be a whole number (got 'many')",
            id="min-events",
        ),
        pytest.param(
            {
                "alerts": "{tiers: [{severity: page, long: 1h, short: 5m, factor: 2},"
                " {severity: page, long: 1h, short: 5m, factor: 3}]}"
            },
            "alerts.tiers[1]: repeats alerts.tiers[0] (same severity and windows)",
            id="tier-duplicate",
        ),
        # across SLOs
        pytest.param(
            {"name": "ok"}, "name: duplicate SLO name; slos[0] already uses it", id="duplicate-name"
        ),
    ],
)
def test_refused_slo(fields: dict[str, str | None], expected: str) -> None:
    name = yaml.safe_load(fields.get("name", "broken") or "null")
    label = f"slos[1] ({name})" if name else "slos[1]"
    lines = problems(one_slo(**fields))
    assert any(line.startswith(f"{SOURCE}: {label}: {expected}") for line in lines), lines


def test_missing_name_is_named_by_index() -> None:
    assert problems(one_slo(name=None)) == (f"{SOURCE}: slos[1]: name: is required",)


def test_message_format_matches_the_documented_example() -> None:
    text = spec_text(
        GOOD_SLO, {**BROKEN_SLO, "name": "checkout-latency", "sli": "{type: latency, threshold_ms: 0}"}
    )
    (line,) = problems(text)
    assert line.startswith(
        "config/slos.yaml: slos[1] (checkout-latency): sli.threshold_ms: must be greater than 0"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "apiVersion: sloguard/v2\nslos: []\n",
            ["apiVersion: unsupported version 'sloguard/v2'; this sloguard reads sloguard/v1"],
            id="bad-api-version",
        ),
        pytest.param(
            spec_text(GOOD_SLO).replace("apiVersion: sloguard/v1\n", ""),
            ["apiVersion: is required"],
            id="missing-api-version",
        ),
        pytest.param("apiVersion: sloguard/v1\nslos: []\n", ["slos: must not be empty"], id="empty-slos"),
        pytest.param("apiVersion: sloguard/v1\n", ["slos: is required"], id="missing-slos"),
        pytest.param("apiVersion: sloguard/v1\nslos: {}\n", ["slos: must be a list"], id="slos-not-a-list"),
        pytest.param("", ["the file is empty"], id="empty-file"),
        pytest.param(
            "- 1\n", ["must be a mapping with apiVersion: sloguard/v1 and slos (got a list)"], id="top-list"
        ),
        pytest.param(
            spec_text(GOOD_SLO, tail="slo: []\n"),
            ["slo: unknown field; did you mean 'slos'?"],
            id="unknown-top-key",
        ),
        pytest.param(
            "apiVersion: sloguard/v1\nslos:\n  - 3\n",
            ["slos[0]: must be a mapping (got 3)"],
            id="slo-not-a-mapping",
        ),
        pytest.param(
            "apiVersion: sloguard/v1\nslos:\n  - name: a\n   service: b\n",
            ["line 4, column 4: expected <block end>, but found '<block mapping start>'"],
            id="yaml-syntax",
        ),
        pytest.param(
            "apiVersion: sloguard/v1\nslos: [a, b\n",
            ["line 3, column 1: expected ',' or ']', but got '<stream end>'"],
            id="yaml-unclosed",
        ),
        pytest.param(
            "apiVersion: sloguard/v1\nslos:\n  - name: a\n    name: b\n",
            ["line 4, column 5: duplicate key 'name' (while constructing a mapping at line 3)"],
            id="yaml-duplicate-key",
        ),
        pytest.param(
            spec_text(
                GOOD_SLO,
                tail="latency: {percentiles: [50, 100], windows: [15s, 5s], group_by: [host],"
                " significant_figures: 5}\n",
            ),
            [
                "latency.group_by[0]: must be 'service', 'endpoint' or 'customer' (got 'host')",
                "latency.percentiles[1]: must be greater than 0 and less than 100 (got 100)",
                "latency.windows[1]: must be between 10s and 1d (got '5s')",
                "latency.significant_figures: must be at most 3 (got 5)",
            ],
            id="latency-section",
        ),
        pytest.param(
            spec_text(GOOD_SLO, tail="on: 1\n"),
            ["key true is not a string; quote it (YAML reads yes/no/on/off as booleans)"],
            id="yaml-boolean-key",
        ),
        pytest.param(
            spec_text(GOOD_SLO, tail="latency: {windows: [15s]}\n"),
            ["latency.windows[0]: 15s is not a multiple of latency.resolution (10s)"],
            id="latency-window-vs-resolution",
        ),
        pytest.param(
            spec_text(GOOD_SLO, tail="latency: {windows: [1m], reslution: 30s}\n"),
            ["latency.reslution: unknown field; did you mean 'resolution'?"],
            id="latency-unknown-key",
        ),
        pytest.param(
            spec_text(
                GOOD_SLO,
                tail="latency:\n  windows: [1m, 5m]\n  alerts:\n"
                "    - {percentile: 95, window: 1h, threshold_ms: 500, match: {host: a}}\n"
                "    - {threshold_ms: 0, severity: warn}\n",
            ),
            [
                "latency.alerts[1].threshold_ms: must be greater than 0",
                "latency.alerts[1].severity: must be 'page' or 'ticket'",
            ],
            id="latency-alerts-fields",
        ),
        pytest.param(
            spec_text(
                GOOD_SLO,
                tail="latency:\n  windows: [1m, 5m]\n  alerts:\n"
                "    - {percentile: 95, window: 1h, threshold_ms: 500, match: {host: a}}\n"
                "    - {threshold_ms: 2}\n"
                "    - {threshold_ms: 500}\n"
                "    - {threshold_ms: 500, for: 1m}\n",
            ),
            [
                "latency.alerts[0].percentile: p95 is not computed; percentiles: 50, 90, 99, 99.9",
                "latency.alerts[0].window: 1h is not computed; windows: 1m, 5m",
                "latency.alerts[0].match.host: is not a latency group label; group_by: service, endpoint",
                "latency.alerts[3]: repeats alerts[2] (same percentile, window, threshold and match)",
            ],
            id="latency-alerts",
        ),
    ],
)
def test_refused_file(text: str, expected: list[str]) -> None:
    lines = problems(text)
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(f"{SOURCE}: {start}"), lines


def test_all_problems_reported_at_once() -> None:
    text = spec_text(
        {**GOOD_SLO, "objective": "100", "objectve": "1"},
        {**BROKEN_SLO, "sli": "{type: latency}", "window": "{calendar: month, timezone: Mars/Olympus}"},
        {**BROKEN_SLO, "name": "third", "window": "1d"},
        {**BROKEN_SLO, "name": "ok"},
        tail="latency: {percentiles: [0]}\n",
    )
    assert problems(text) == (
        f"{SOURCE}: slos[0] (ok): objective: must be greater than 0 and less than 100,"
        " a percentage such as 99.9 (got 100)",
        f"{SOURCE}: slos[0] (ok): objectve: unknown field; did you mean 'objective'?",
        f"{SOURCE}: slos[1] (broken): window.timezone: unknown time zone; use an IANA name such as"
        " Europe/Berlin or UTC (got 'Mars/Olympus')",
        f"{SOURCE}: slos[2] (third): window: 1d is shorter than the 3d long window of the default alert tiers"
        " (google-30d.yaml); use a longer window or set alerts.tiers",
        f"{SOURCE}: slos[3] (ok): name: duplicate SLO name; slos[0] already uses it",
        f"{SOURCE}: latency.percentiles[0]: must be greater than 0 and less than 100 (got 0)",
    )


def test_spec_error_is_a_value_error_with_one_line_per_problem() -> None:
    with pytest.raises(ValueError, match=r"(?s)objective.*\n.*window") as info:
        parse_config(one_slo(objective="100", window="3x"), SOURCE)
    assert isinstance(info.value, SpecError)
    assert str(info.value) == "\n".join(info.value.problems)
    assert len(info.value.problems) == 2


def test_load_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(one_slo(objective="0"), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: slos[1] (broken): objective: must be greater than 0")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("missing.yaml", "no such file", id="missing-file"),
        pytest.param("", "is a directory", id="directory"),
    ],
)
def test_load_config_unreadable(tmp_path: Path, name: str, expected: str) -> None:
    path = tmp_path / name if name else tmp_path
    with pytest.raises(SpecError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {expected}")


# --------------------------------------------------------------------------------------------------
# the shipped example and describe()


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    services = {s.service for s in config.slos}
    assert services == {"checkout", "search", "auth", "payments", "catalog"}
    assert {s.sli.kind for s in config.slos} == {"availability", "latency"}
    assert any(isinstance(s.period, CalendarPeriod) for s in config.slos)
    assert any(s.resolution == Resolution(fine=MINUTE, coarse=HOUR) for s in config.slos)
    assert any(t.min_events > 0 for s in config.slos for t in s.tiers)
    assert config.latency is not None


@pytest.mark.parametrize(
    "path", [pytest.param(EXAMPLE, id="example"), pytest.param(SPECS / "issue-example.yaml", id="issue")]
)
def test_describe_mentions_every_slo(path: Path) -> None:
    config = load_config(path)
    text = describe(config)
    for slo in config.slos:
        assert f"SLO {slo.name}\n" in text
        assert f"service      {slo.service}\n" in text
    assert "latency percentiles" in text


def test_describe_shows_factors_and_thresholds() -> None:
    text = describe(load_config(SPECS / "issue-example.yaml"))
    assert "objective    99.9% (error budget 0.1% of events)" in text
    assert "page      1h    5m     2%      14.4    0.0144 (1.44%)           0s   0" in text
    assert "~0.933333" in text  # 28/30 has no exact decimal
    assert "latency: bad = latency > 300 ms or status in 500-599" in text


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
