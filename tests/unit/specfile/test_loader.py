"""The YAML loader: exact decimals, duplicate keys refused, syntax errors with line and column."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from sloguard.specfile import SpecError, parse_config
from sloguard.specfile.loader import load_yaml
from tests.unit.specfile.texts import (
    assert_refused_file,
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
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
    ],
)
def test_refused_file(text: str, expected: list[str]) -> None:
    assert_refused_file(text, expected)


def test_decimals_load_exact_and_specials_as_float() -> None:
    data = load_yaml("a: 99.95\nb: 1_000.5\nc: .inf\nd: 7\n", "f.yaml")
    assert data == {"a": Decimal("99.95"), "b": Decimal("1000.5"), "c": float("inf"), "d": 7}
    assert isinstance(data["a"], Decimal)
    assert isinstance(data["c"], float)


def test_not_yaml_names_the_source() -> None:
    with pytest.raises(SpecError) as info:
        load_yaml("a: \x00\n", "f.yaml")
    (line,) = info.value.problems
    assert line.startswith("f.yaml: ")
    with pytest.raises(
        SpecError,
        match=r"^f\.yaml: line 3, column 3: duplicate key 'x' \(while constructing a mapping at line 2\)$",
    ):
        load_yaml("a:\n  x: 1\n  x: 2\n", "f.yaml")
