"""The rules that span fields (the second pass): objective vs. unit, windows vs. buckets and period, tiers
(and whether they can fire), latency alerts."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sloguard.core.spec import DAY, HOUR, RollingPeriod
from sloguard.specfile import parse_config
from sloguard.specfile.checks import check_latency, check_tier, format_offset
from sloguard.specfile.schema import LatencyModel, ResolutionModel, TierModel
from tests.unit.specfile.texts import (
    GOOD_SLO,
    assert_refused_file,
    assert_refused_slo,
    one_slo,
    problems,
    spec_text,
)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"series_ttl": "1d"}, "series_ttl: only applies to an SLO with group_by", id="ttl-without-group"
        ),
        pytest.param(
            {"series_ttl": "30m", "group_by": "[customer]"},
            "series_ttl: must be at least the coarse resolution (1h)",
            id="ttl-below-coarse",
        ),
        pytest.param(
            {"sli": "{type: latency}"}, "sli.threshold_ms: is required for type latency", id="no-threshold"
        ),
        pytest.param(
            {"sli": "{type: availability, threshold_ms: 5}"},
            "sli.threshold_ms: only applies to type latency",
            id="threshold-on-availability",
        ),
        pytest.param(
            {"window": "12h"},
            "window: 12h is shorter than the 3d long window of the default alert tiers",
            id="period-shorter-than-default-tiers",
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
            {
                "alerts": "{tiers: [{severity: page, long: 1h, short: 5m, factor: 2},"
                " {severity: page, long: 1h, short: 5m, factor: 3}]}"
            },
            "alerts.tiers[1]: repeats alerts.tiers[0] (same severity and windows)",
            id="tier-duplicate",
        ),
        pytest.param(
            {"objective": "0.999"},
            "objective: must be a percentage of at least 50; did you mean 99.9? (0.999 reads as 0.999%; "
            "for ratios set objective_unit: ratio) (got 0.999)",
            id="objective-ratio-as-percent",
        ),
        pytest.param(
            {"objective": "0.95"},
            "objective: must be a percentage of at least 50; did you mean 95? ",
            id="objective-ratio-95",
        ),
        pytest.param(
            {"objective": "0.1"},
            "objective: must be a percentage of at least 50; did you mean 10? ",
            id="objective-tiny",
        ),
        pytest.param(
            {"objective": "5"},
            "objective: must be a percentage of at least 50; did you mean 95? (the share of good events, "
            "not the error budget) (got 5)",
            id="objective-error-budget",
        ),
        pytest.param(
            {"objective": "49.99"},
            "objective: must be a percentage of at least 50; did you mean 50.01? ",
            id="objective-just-below-50",
        ),
        pytest.param(
            {"objective": "99.9", "objective_unit": "ratio"},
            "objective: must be less than 1 with objective_unit: ratio; did you mean 0.999? (got 99.9)",
            id="objective-percent-as-ratio",
        ),
        pytest.param(
            {"objective": "1", "objective_unit": "ratio"},
            "objective: must be less than 1 with objective_unit: ratio; did you mean 0.01? (got 1)",
            id="objective-ratio-one",
        ),
        pytest.param(
            {"objective": "0.999", "objective_unit": "fraction"},
            "objective_unit: must be 'percent' or 'ratio' (got 'fraction')",
            id="objective-unit-unknown",
        ),
        pytest.param(
            {"alerts": "{tiers: [{severity: page, long: 1h, short: 5m, factor: 5000}]}"},
            "alerts.tiers[0].factor: 5000 can never fire: at objective 99.9% the burn rate is at most 1000 "
            "(every event bad: 1 / (1 - 0.999)); the factor must be below that",
            id="tier-factor-never-fires",
        ),
        pytest.param(
            {"objective": "90", "alerts": "{tiers: [{severity: page, long: 1h, short: 5m, factor: 10}]}"},
            "alerts.tiers[0].factor: 10 can never fire: at objective 90% the burn rate is at most 10 ",
            id="tier-factor-at-the-ceiling",
        ),
        pytest.param(
            {
                "objective": "0.97",
                "objective_unit": "ratio",
                "alerts": "{tiers: [{severity: page, long: 1h, short: 5m, budget_percent: 10}]}",
            },
            "alerts.tiers[0].budget_percent: 10 over 1h is a factor of 72, which can never fire: "
            "at objective 97% the burn rate is at most ~33.3333 (every event bad: 1 / (1 - 0.97))",
            id="tier-budget-never-fires",
        ),
    ],
)
def test_refused_slo(fields: dict[str, str | None], expected: str) -> None:
    assert_refused_slo(fields, expected)


def test_a_refused_objective_hides_the_tier_check() -> None:
    # 0.999 read as a percentage would make every tier "never fire": one problem, not five.
    text = one_slo(objective="0.999", alerts="{tiers: [{severity: page, long: 1h, short: 5m, factor: 2}]}")
    assert [line.split(": ")[2] for line in problems(text)] == ["objective"]


def test_a_tier_just_below_the_ceiling_is_kept() -> None:
    text = one_slo(objective="90", alerts="{tiers: [{severity: page, long: 1h, short: 5m, factor: 9.999}]}")
    assert [t.factor for t in parse_config(text).slos[1].tiers] == [Fraction("9.999")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            spec_text(GOOD_SLO, tail="latency: {windows: [15s]}\n"),
            ["latency.windows[0]: 15s is not a multiple of latency.resolution (10s)"],
            id="latency-window-vs-resolution",
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
    assert_refused_file(text, expected)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(19800, "+05:30", id="india"),
        pytest.param(-HOUR, "-01:00", id="negative"),
        pytest.param(0, "+00:00", id="utc"),
        pytest.param(-(HOUR + 75), "-01:01:15", id="seconds"),
    ],
)
def test_format_offset(seconds: int, text: str) -> None:
    assert format_offset(seconds) == text


def test_check_tier_reports_relative_to_the_tier() -> None:
    t = TierModel.model_validate({"severity": "page", "long": "2d", "short": "95s"})
    got: list[tuple[tuple[str | int, ...], str]] = []
    check_tier(t, RollingPeriod(DAY), ResolutionModel(), lambda loc, msg: got.append((loc, msg)))
    assert got == [
        ((), "give exactly one of budget_percent or factor"),
        (("long",), "2d is longer than the SLO period (1d); shorten the window or lengthen the period"),
        (("short",), "95s is not a multiple of resolution.fine (10s), which windows up to 6h use"),
    ]


def test_check_latency_says_which_alerts_passed() -> None:
    model = LatencyModel.model_validate(
        {"alerts": [{"threshold_ms": 1}, {"threshold_ms": 1, "percentile": 95}, {"threshold_ms": 1}]}
    )
    got: list[tuple[tuple[str | int, ...], str]] = []
    assert check_latency(model, lambda loc, msg: got.append((loc, msg))) == (True, False, False)
    assert [loc for loc, _ in got] == [("alerts", 1, "percentile"), ("alerts", 2)]
