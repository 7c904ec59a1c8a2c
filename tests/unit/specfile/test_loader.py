"""The YAML loader: exact decimals, duplicate keys refused, syntax errors with line and column."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sloguard.specfile import parse_config
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
