"""parse_config / load_config: whole files, every problem at once, each component on its own."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from sloguard.core.spec import (
    DAY,
    HOUR,
    MINUTE,
    AlertTier,
    CalendarPeriod,
    LatencySpec,
    Resolution,
    RollingPeriod,
    Sli,
)
from sloguard.specfile import SpecError, load_config
from tests.unit.specfile.texts import (
    BROKEN_SLO,
    DEFAULT_SEVERITIES,
    DEFAULT_WINDOWS,
    EXAMPLE,
    FACTORS_28D,
    FACTORS_30D,
    GOOD_SLO,
    SOURCE,
    SPECS,
    assert_refused_file,
    assert_refused_slo,
    one_slo,
    problems,
    spec_text,
)


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


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    services = {s.service for s in config.slos}
    assert services == {"checkout", "search", "auth", "payments", "catalog"}
    assert {s.sli.kind for s in config.slos} == {"availability", "latency"}
    assert any(isinstance(s.period, CalendarPeriod) for s in config.slos)
    assert any(s.resolution == Resolution(fine=MINUTE, coarse=HOUR) for s in config.slos)
    assert any(t.min_events > 0 for s in config.slos for t in s.tiers)
    assert config.latency is not None


def test_missing_name_is_named_by_index() -> None:
    assert problems(one_slo(name=None)) == (f"{SOURCE}: slos[1]: name: is required",)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"name": "ok"}, "name: duplicate SLO name; slos[0] already uses it", id="duplicate-name"
        ),
    ],
)
def test_refused_slo(fields: dict[str, str | None], expected: str) -> None:
    assert_refused_slo(fields, expected)


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
    ],
)
def test_refused_file(text: str, expected: list[str]) -> None:
    assert_refused_file(text, expected)


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
