"""The YAML loader: exact decimals, duplicate keys refused, syntax errors with line and column, limits."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from sloguard.specfile import SpecError, load_config, parse_config
from sloguard.specfile.loader import MAX_DEPTH, MAX_FILE_BYTES, load_yaml
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("slos:\n\t- name: a\n", "line 2: a tab is used for indentation", id="list-item"),
        pytest.param(
            "slos:\n  - name: a\n  \tservice: b\n", "line 3: a tab is used for indentation", id="mixed"
        ),
        pytest.param("a:\n  b:\n\t\tc: 1\n", "line 3: a tab is used for indentation", id="nested"),
        pytest.param("a: 1\nb:\t2\n", "line 2: a tab is used at column 3; YAML separates", id="separator"),
    ],
)
def test_tabs_are_explained(text: str, expected: str) -> None:
    # PyYAML says "found character '\t' that cannot start any token"; a user needs to hear why.
    with pytest.raises(SpecError) as info:
        load_yaml(text, "f.yaml")
    (line,) = info.value.problems
    assert line.startswith(f"f.yaml: {expected}"), line
    assert "cannot start any token" not in line


def test_tab_inside_a_value_is_fine() -> None:
    assert load_yaml('a: "x\ty"\nb: |\n  one\ttwo\n', "f.yaml") == {"a": "x\ty", "b": "one\ttwo\n"}


def test_oversized_text_is_refused_before_parsing() -> None:
    # Not YAML at all (a tab on line 1): the size is refused first, so the parser never ran.
    text = "a:\t[" + "x" * (MAX_FILE_BYTES + 100_000)
    with pytest.raises(SpecError) as info:
        load_yaml(text, "f.yaml")
    assert info.value.problems == (
        "f.yaml: the file is 1.1 MiB; SLO files are limited to 1 MiB (is it the right file?)",
    )
    load_yaml("a: " + "x" * (MAX_FILE_BYTES - 10), "f.yaml")  # just under the limit: read


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "slos.yaml"
    with path.open("wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MiB of NUL bytes, not written
    with pytest.raises(SpecError, match=r"slos\.yaml: the file is 50\.0 MiB; SLO files are limited to 1 MiB"):
        load_config(path)


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(
        SpecError, match=rf"^f\.yaml: line 1, column {MAX_DEPTH + 1}: nested more than 64 levels deep$"
    ):
        load_yaml("[" * 1000 + "]" * 1000, "f.yaml")
    load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f.yaml")


def _laughs(levels: int) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused() -> None:
    # 9 levels of 9 aliases: ~430 million values once expanded, from 400 bytes.
    with pytest.raises(SpecError) as info:
        load_yaml(_laughs(9), "f.yaml")
    assert info.value.problems == (
        "f.yaml: line 7, column 5: this value holds more than 1,000,000 values once its aliases (*name) "
        "are expanded",
    )
    assert load_yaml(_laughs(3), "f.yaml")["a2"][8][8][8] == "lol"  # 820 values: fine


def test_alias_cycle_is_refused() -> None:
    with pytest.raises(
        SpecError, match=r"line 1, column 4: an alias \(\*name\) refers to a value that contains it"
    ):
        load_yaml("a: &a [1, *a]\n", "f.yaml")
    assert load_yaml("a: &a [1]\nb: [*a, *a]\n", "f.yaml") == {"a": [1], "b": [[1], [1]]}
