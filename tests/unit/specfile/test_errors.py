"""Error text: one line per problem naming the file, the SLO and the field."""

from __future__ import annotations

import pytest

from sloguard.specfile import SpecError, parse_config
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
