"""The daemon benchmarks' table."""

from __future__ import annotations

import math

import pytest

from benchmarks.checks import Check, columns, table


@pytest.mark.parametrize(
    ("value", "target", "higher", "verdict"),
    [
        (2.0, 1.0, True, "PASS"),
        (0.5, 1.0, True, "FAIL"),
        (0.5, 1.0, False, "PASS"),
        (None, 1.0, True, "ERROR"),
        (math.nan, 1.0, True, "ERROR"),
        (1.0, None, True, ""),
    ],
)
def test_verdict(value: float | None, target: float | None, higher: bool, verdict: str) -> None:
    assert Check("b", "m", value, "s", target, higher).verdict == verdict


def test_table() -> None:
    checks = [
        Check("throughput", "daemon events/s", 200_000.0, "ev/s", 180_000.0, note="steady"),
        Check("throughput", "render", 0.0123, "s"),
        Check("memory", "peak RSS", 900.0, "MiB", 1024.0, higher_is_better=False),
        Check("memory", "error", None, "", 0.0, note="boom"),
    ]
    assert table(checks).splitlines() == [
        "benchmark   measure                 value          target  verdict  note",
        "------------------------------------------------------------------------",
        "throughput  daemon events/s  200,000 ev/s  ≥ 180,000 ev/s  PASS     steady",
        "throughput  render                  12 ms",
        "",
        "memory      peak RSS              900 MiB     ≤ 1,024 MiB  PASS",
        "memory      error                       -            ≥ 0   ERROR    boom",
    ]


def test_columns_aligns_each_column_but_the_last() -> None:
    lines = columns(("a", "bb", "c"), [("xxx", "y", "free text")], "<>").splitlines()
    assert lines == ["a    bb  c", "----------", "xxx   y  free text"]
