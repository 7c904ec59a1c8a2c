"""Error text: one line per problem naming the file, the SLO and the field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sloguard.specfile import SpecError, parse_config
from sloguard.specfile.errors import Problems, format_loc, show
from tests.unit.specfile.texts import (
    BROKEN_SLO,
    GOOD_SLO,
    SOURCE,
    assert_refused_file,
    one_slo,
    problems,
    spec_text,
)


def test_message_format_matches_the_documented_example() -> None:
    text = spec_text(
        GOOD_SLO, {**BROKEN_SLO, "name": "checkout-latency", "sli": "{type: latency, threshold_ms: 0}"}
    )
    (line,) = problems(text)
    assert line.startswith(
        "config/slos.yaml: slos[1] (checkout-latency): sli.threshold_ms: must be greater than 0"
    )


def test_spec_error_is_a_value_error_with_one_line_per_problem() -> None:
    with pytest.raises(ValueError, match=r"(?s)objective.*\n.*window") as info:
        parse_config(one_slo(objective="100", window="3x"), SOURCE)
    assert isinstance(info.value, SpecError)
    assert str(info.value) == "\n".join(info.value.problems)
    assert len(info.value.problems) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            spec_text(GOOD_SLO, tail="on: 1\n"),
            ["key true is not a string; quote it (YAML reads yes/no/on/off as booleans)"],
            id="yaml-boolean-key",
        ),
    ],
)
def test_refused_file(text: str, expected: list[str]) -> None:
    assert_refused_file(text, expected)


@pytest.mark.parametrize(
    ("loc", "text"),
    [
        pytest.param(("alerts", "tiers", 0, "short"), "alerts.tiers[0].short", id="nested"),
        pytest.param((0,), "[0]", id="index-only"),
        pytest.param(("window", "~calendar", "timezone"), "window.timezone", id="union-tag-dropped"),
        pytest.param((), "", id="empty"),
    ],
)
def test_format_loc(loc: tuple[str | int, ...], text: str) -> None:
    assert format_loc(loc) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(None, "null", id="null"),
        pytest.param(True, "true", id="bool"),
        pytest.param(Decimal("99.90"), "99.90", id="decimal-as-written"),
        pytest.param({"a": 1}, "a mapping", id="mapping"),
        pytest.param([1], "a list", id="list"),
        pytest.param("x" * 100, "'" + "x" * 56 + "...", id="long-string-cut"),
    ],
)
def test_show(value: Any, text: str) -> None:
    assert show(value) == text


def test_problems_join_the_parts_and_raise_together() -> None:
    collected = Problems("slos.yaml")
    collected.raise_if_any()  # nothing yet
    collected.add("slos[0] (a)", ("sli", "type"), "is required")
    collected.add("", (), "the file is empty")
    with pytest.raises(SpecError) as info:
        collected.raise_if_any()
    assert info.value.problems == (
        "slos.yaml: slos[0] (a): sli.type: is required",
        "slos.yaml: the file is empty",
    )
