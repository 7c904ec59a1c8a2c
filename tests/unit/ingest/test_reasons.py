"""Tests for sloguard.ingest.reasons: the reason strings (a metrics and dead-letter contract), precedence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sloguard._types import Bools
from sloguard.ingest import reasons
from sloguard.ingest.reasons import REASONS, Reason, first_reason, first_reasons

#: The contract, spelled out: label values of the invalid-events metric and `sloguard-reason` headers.
EXPECTED = (
    "too_large",
    "bad_encoding",
    "malformed_json",
    "not_an_object",
    "missing_field",
    "bad_type",
    "bad_timestamp",
    "bad_status",
    "negative_latency",
    "bad_latency",
    "empty_label",
    "label_too_long",
)


def test_the_strings_and_their_order_are_the_contract() -> None:
    assert REASONS == EXPECTED
    assert all(type(r) is str for r in REASONS)  # plain str, not enum members
    assert reasons.FUTURE_TIMESTAMP == "future_timestamp"
    assert reasons.FUTURE_TIMESTAMP not in REASONS


@pytest.mark.parametrize("member", list(Reason), ids=lambda m: m.name)
def test_each_constant_names_its_member(member: Reason) -> None:
    constant = getattr(reasons, member.name)
    assert constant == member.value
    assert type(constant) is str


def test_first_reason_follows_the_enum_order() -> None:
    for a, b in itertools.combinations(list(Reason), 2):  # a is declared before b
        assert first_reason([b.value, a.value]) == a.value
        assert first_reason([a.value, b.value]) == a.value
    assert first_reason([]) is None


def test_first_reasons_agrees_with_first_reason() -> None:
    rng = np.random.default_rng(9)
    n = 200
    failed: dict[str, Bools | None] = {r: rng.random(n) < 0.15 for r in REASONS[::2]}
    failed[REASONS[1]] = None  # no row can fail it
    rows, got = first_reasons(failed, n)
    expected = {
        row: first_reason([r for r, mask in failed.items() if mask is not None and mask[row]])
        for row in range(n)
    }
    assert rows.tolist() == [row for row, reason in expected.items() if reason is not None]
    assert got == [expected[row] for row in rows.tolist()]


def test_first_reasons_of_nothing() -> None:
    rows, got = first_reasons({}, 5)
    assert rows.tolist() == []
    assert got == []
