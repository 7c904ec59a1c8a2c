"""``budgeting:``: occurrences (the default), timeslices and ratio_timeslices; their refusals."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sloguard.core.spec import MINUTE, Resolution, Timeslices
from sloguard.specfile import parse_config
from tests.unit.specfile.texts import GOOD_SLO, SOURCE, assert_refused_slo, spec_text


def parsed(**fields: str) -> tuple[Timeslices | None, Resolution]:
    spec = parse_config(spec_text({**GOOD_SLO, **fields}), SOURCE).slos[0]
    return spec.budgeting, spec.resolution


@pytest.mark.parametrize(
    ("fields", "budgeting", "resolution"),
    [
        pytest.param({}, None, Resolution(10, 300), id="default-occurrences"),
        pytest.param({"budgeting": "occurrences"}, None, Resolution(10, 300), id="occurrences"),
        pytest.param(
            {"budgeting": "{timeslices: {slice: 1m, good_ratio: 0.95}}"},
            Timeslices(MINUTE, Fraction(95, 100)),
            Resolution(10, 60),
            id="timeslices-1m-coarse-follows",
        ),
        pytest.param(
            {"budgeting": "{ratio_timeslices: {slice: 5m, empty: skip}}"},
            Timeslices(300, None, "skip"),
            Resolution(10, 300),
            id="ratio-timeslices-5m",
        ),
        pytest.param(
            {"budgeting": "{timeslices: {slice: 45s, good_ratio: 1, empty: bad}}"},
            Timeslices(45, Fraction(1), "bad"),
            Resolution(5, 15),
            id="odd-slice-fine-follows",
        ),
        pytest.param(
            {"budgeting": "{timeslices: {slice: 1m, good_ratio: 0.9}}", "group_by": "[customer]"},
            Timeslices(MINUTE, Fraction(9, 10)),
            Resolution(60, 60),
            id="per-customer",
        ),
        pytest.param(
            {
                "budgeting": "{ratio_timeslices: {slice: 1h}}",
                "resolution": "{fine: 30s, coarse: 15m}",
            },
            Timeslices(3600, None),
            Resolution(30, 900),
            id="explicit-resolution-kept",
        ),
    ],
)
def test_budgeting_maps(fields: dict[str, str], budgeting: Timeslices | None, resolution: Resolution) -> None:
    assert parsed(**fields) == (budgeting, resolution)


def test_calendar_slices_in_a_whole_hour_zone() -> None:
    b, _ = parsed(
        window="{calendar: month, timezone: Europe/Berlin}",
        budgeting="{timeslices: {slice: 5m, good_ratio: 0.99}}",
    )
    assert b == Timeslices(300, Fraction(99, 100))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"budgeting": "timeslices"},
            "budgeting: must be occurrences, {timeslices: {slice: 1m, good_ratio: 0.95}} or "
            "{ratio_timeslices: {slice: 5m}}",
            id="bare-word",
        ),
        pytest.param(
            {"budgeting": "{}"},
            "budgeting: must name exactly one method: timeslices or ratio_timeslices",
            id="none",
        ),
        pytest.param(
            {"budgeting": "{timeslices: {slice: 1m, good_ratio: 0.9}, ratio_timeslices: {slice: 1m}}"},
            "budgeting: must name exactly one method",
            id="both",
        ),
        pytest.param(
            {"budgeting": "{timeslices: {slice: 7m, good_ratio: 0.9}}"},
            "budgeting.timeslices.slice: must be at least 1s and divide 1h evenly",
            id="slice-not-dividing-an-hour",
        ),
        pytest.param(
            {"budgeting": "{timeslices: {slice: 1m}}"},
            "budgeting.timeslices.good_ratio: ",
            id="good-ratio-missing",
        ),
        pytest.param(
            {"budgeting": "{timeslices: {slice: 1m, good_ratio: 95}}"},
            "budgeting.timeslices.good_ratio: must be greater than 0 and at most 1",
            id="good-ratio-as-percent",
        ),
        pytest.param(
            {"budgeting": "{ratio_timeslices: {slice: 1m, good_ratio: 0.9}}"},
            "budgeting.ratio_timeslices.good_ratio: ",
            id="good-ratio-on-ratio-method",
        ),
        pytest.param(
            {"budgeting": "{ratio_timeslices: {slice: 1m, empty: maybe}}"},
            "budgeting.ratio_timeslices.empty: ",
            id="empty-unknown",
        ),
        pytest.param(
            {
                "budgeting": "{timeslices: {slice: 1m, good_ratio: 0.9}}",
                "resolution": "{fine: 10s, coarse: 5m}",
            },
            "budgeting.timeslices.slice: must be a multiple of resolution.coarse (5m)",
            id="slice-finer-than-coarse",
        ),
        pytest.param(
            {
                "budgeting": "{ratio_timeslices: {slice: 1h}}",
                "window": "{calendar: month, timezone: Asia/Kolkata}",
            },
            "budgeting.ratio_timeslices.slice: 1h does not divide the UTC offsets of Asia/Kolkata (+05:30)",
            id="slice-vs-zone-offset",
        ),
    ],
)
def test_budgeting_refusals(fields: dict[str, str | None], expected: str) -> None:
    assert_refused_slo(fields, expected)


def test_check_summary_names_the_method() -> None:
    from sloguard.specfile.summary import describe

    fields = {"budgeting": "{timeslices: {slice: 1m, good_ratio: 0.95}}", "objective": "99.99"}
    config = parse_config(spec_text(GOOD_SLO, {**GOOD_SLO, "name": "minutes", **fields}), SOURCE)
    text = describe(config)
    assert "objective    99.99% (error budget 0.01% of 1m slices)" in text
    assert (
        "budgeting    timeslices: a slice is good when >= 95% of its events are good; empty slices count "
        "good; the current slice is pending" in text
    )
    assert text.count("budgeting") == 1  # an occurrences SLO has no such line
