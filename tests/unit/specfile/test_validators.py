"""Field validators: one value as written -> its exact meaning, or a refusal that reads as-is."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from pydantic_core import PydanticCustomError

from sloguard.core.spec import DAY, HOUR, MINUTE
from sloguard.specfile.validators import (
    Number,
    endpoint_glob,
    exact,
    parse_duration,
    status_range,
    time_zone,
    unique,
)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("30s", 30, id="seconds"),
        pytest.param(" 5m ", 5 * MINUTE, id="padded"),
        pytest.param("2w", 14 * DAY, id="weeks"),
        pytest.param(0, 0, id="bare-zero"),
        pytest.param(5, None, id="bare-number"),
        pytest.param(False, None, id="bool"),
        pytest.param("1 hour", None, id="words"),
        pytest.param("1h30m", None, id="compound"),
    ],
)
def test_parse_duration(value: Any, seconds: int | None) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(1, Fraction(1), id="int"),
        pytest.param(Decimal("99.95"), Fraction(1999, 20), id="decimal-exact"),
        pytest.param(True, None, id="bool"),
        pytest.param(99.95, None, id="float"),
        pytest.param(Decimal("NaN"), None, id="nan"),
        pytest.param(Decimal("1e999999999"), None, id="huge-exponent"),
        pytest.param("99.9", None, id="string"),
    ],
)
def test_exact(value: Any, expected: Fraction | None) -> None:
    assert exact(value) == expected


def test_number_bounds_and_hint() -> None:
    percent = Number(low=0, high=100, high_inclusive=True, hint=", a percentage")
    assert percent(100) == Fraction(100)
    assert Number(low=0, as_float=True)(Decimal("2.5")) == 2.5
    with pytest.raises(PydanticCustomError) as info:
        Number(low=0, high=100)(100)
    assert info.value.message() == "must be greater than 0 and less than 100 (got 100)"
    with pytest.raises(PydanticCustomError) as info:
        percent("x")
    assert info.value.message() == "must be a number, a percentage (got 'x')"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(429, (429, 429), id="code"),
        pytest.param("503", (503, 503), id="quoted-code"),
        pytest.param("500 - 504", (500, 504), id="range"),
        pytest.param("4XX", (400, 499), id="class"),
    ],
)
def test_status_range(value: Any, expected: tuple[int, int]) -> None:
    assert status_range(value) == expected


@pytest.mark.parametrize("value", [99, 600, "599-500", "6xx", True, "abc"])
def test_status_range_refuses(value: Any) -> None:
    with pytest.raises(PydanticCustomError, match="must be a status code"):
        status_range(value)


def test_time_zone_suggests_a_close_name() -> None:
    assert time_zone("Europe/Berlin") == "Europe/Berlin"
    with pytest.raises(PydanticCustomError) as info:
        time_zone("Europe/Berln")
    assert info.value.message() == "unknown time zone; did you mean 'Europe/Berlin'? (got 'Europe/Berln')"


def test_unique_names_the_repeated_item() -> None:
    assert unique((HOUR, DAY)) == (HOUR, DAY)
    with pytest.raises(PydanticCustomError) as info:
        unique(("a", "b", "a"))
    assert info.value.message() == "lists 'a' twice"


@pytest.mark.parametrize(
    "glob",
    [
        "POST /v1/orders",
        "GET /v1/*",
        "GET /v?/[a-z]*",
        "GET /v1/[!0-9]*",
        "GET /[]]x",  # a ']' first in a set is a member
        "GET /[!]]x",
        "GET /[[]draft]",  # a literal '['
        "GET /[a-]",  # a trailing '-' is a member
    ],
)
def test_endpoint_glob_accepts(glob: str) -> None:
    assert endpoint_glob(glob) == glob


@pytest.mark.parametrize(
    ("glob", "expected"),
    [
        pytest.param("POST /v1/[orders", "'[' at character 10 is never closed by ']'", id="unclosed"),
        pytest.param("GET /[!]x", "'[' at character 6 is never closed by ']'", id="unclosed-negated"),
        pytest.param("GET /[]", "'[' at character 6 is never closed by ']'", id="empty-set"),
        pytest.param(
            "GET /v[z-a]", "range 'z-a' at character 8 is backwards (matches nothing)", id="backwards"
        ),
        pytest.param("GET /v[!9-0]", "range '9-0' at character 9 is backwards", id="backwards-negated"),
        pytest.param("GET /v1/\\*", "'\\' at character 9 does not escape in a glob", id="backslash"),
        pytest.param("  ", "must be a non-empty string", id="blank"),
        pytest.param(7, 'must be a string; YAML reads 7 as a number: quote it ("7")', id="number"),
    ],
)
def test_endpoint_glob_refuses_with_the_position(glob: Any, expected: str) -> None:
    with pytest.raises(PydanticCustomError) as info:
        endpoint_glob(glob)
    assert info.value.message().startswith(expected), info.value.message()
