"""Tests for sloguard.ingest.rules: each validity rule, the same on one value and on columns."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.ingest.reasons import (
    BAD_LATENCY,
    BAD_STATUS,
    BAD_TIMESTAMP,
    EMPTY_LABEL,
    LABEL_TOO_LONG,
    NEGATIVE_LATENCY,
)
from sloguard.ingest.rules import (
    MAX_LATENCY_MS,
    STATUS_MAX,
    STATUS_MIN,
    LatencyScale,
    LatencyUnit,
    int64_column,
    label_failures,
    value_failure_masks,
    value_failures,
)

OK_LABELS = ("checkout", "GET /", "c1")


@pytest.mark.parametrize(
    ("status", "failed"),
    [(STATUS_MIN - 1, True), (STATUS_MIN, False), (200, False), (STATUS_MAX, False), (STATUS_MAX + 1, True)],
)
def test_status_range(status: int, failed: bool) -> None:
    assert (BAD_STATUS in value_failures(True, status, 1.0, OK_LABELS, 256)) is failed
    masks = value_failure_masks(np.ones(1, np.bool_), np.array([status], np.int64), np.ones(1))
    assert bool(masks[BAD_STATUS][0]) is failed


def test_status_beyond_any_integer_is_bad() -> None:
    assert value_failures(True, None, 1.0, OK_LABELS, 256) == [BAD_STATUS]
    assert int64_column([200, 1 << 70, -(1 << 70)]).tolist() == [200, -1, -1]


@pytest.mark.parametrize(
    ("latency", "expected"),
    [
        (0.0, None),
        (-0.0, None),
        (12.5, None),
        (MAX_LATENCY_MS, None),
        (-1e-300, NEGATIVE_LATENCY),
        (-math.inf, NEGATIVE_LATENCY),
        (MAX_LATENCY_MS * (1 + 1e-15), BAD_LATENCY),
        (math.inf, BAD_LATENCY),
        (math.nan, BAD_LATENCY),
    ],
)
def test_latency_rules(latency: float, expected: str | None) -> None:
    got = value_failures(True, 200, latency, OK_LABELS, 256)
    assert got == ([] if expected is None else [expected])
    masks = value_failure_masks(np.ones(1, np.bool_), np.array([200], np.int64), np.array([latency]))
    assert [r for r in (NEGATIVE_LATENCY, BAD_LATENCY) if masks[r][0]] == got


@pytest.mark.parametrize(
    ("unit", "raw", "ms"),
    [
        ("ms", 12.5, 12.5),
        ("s", 0.0125, 12.5),
        ("us", 12_500.0, 12.5),
        ("us", 1.0, 0.001),
        ("s", 1e308, math.inf),
    ],
)
def test_latency_scale(unit: LatencyUnit, raw: float, ms: float) -> None:
    scale = LatencyScale(unit)
    column = np.array([raw])
    scale.to_ms_inplace(column)
    assert column[0] == ms
    assert scale.to_ms(raw) == ms


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["ms", "s", "us"]), st.lists(st.floats(allow_nan=True), min_size=1, max_size=20))
def test_latency_scale_is_the_same_on_one_value_and_on_columns(
    unit: LatencyUnit, values: list[float]
) -> None:
    scale = LatencyScale(unit)
    column = np.array(values)
    scale.to_ms_inplace(column)
    one_by_one = np.array([scale.to_ms(v) for v in values])  # Python floats overflow to inf, no error
    np.testing.assert_array_equal(column, one_by_one)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (OK_LABELS, []),
        (("", "GET /", "c1"), [EMPTY_LABEL]),
        (("s", "", "c1"), [EMPTY_LABEL]),
        (("s", "e", ""), [EMPTY_LABEL]),
        (("s" * 8, "e", "c"), []),
        (("s" * 9, "e", "c"), [LABEL_TOO_LONG]),
        (("s", "e", "c" * 9), [LABEL_TOO_LONG]),
        (("", "e" * 9, "c"), [EMPTY_LABEL, LABEL_TOO_LONG]),
    ],
)
def test_label_rules(labels: tuple[str, str, str], expected: list[str]) -> None:
    assert label_failures(labels, 8) == expected
    assert sorted(value_failures(True, 200, 1.0, labels, 8)) == sorted(expected)


def test_timestamps_fail_as_given() -> None:
    assert value_failures(False, 200, 1.0, OK_LABELS, 256) == [BAD_TIMESTAMP]
    masks = value_failure_masks(np.array([True, False]), np.array([200, 200]), np.array([1.0, 1.0]))
    assert masks[BAD_TIMESTAMP].tolist() == [False, True]
