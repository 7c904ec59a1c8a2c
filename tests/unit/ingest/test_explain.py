"""Tests for sloguard.ingest.explain: the reason a line refused by the typed decode is counted under."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sloguard.ingest.explain import Explainer
from sloguard.ingest.reasons import (
    BAD_LATENCY,
    BAD_STATUS,
    BAD_TIMESTAMP,
    BAD_TYPE,
    EMPTY_LABEL,
    LABEL_TOO_LONG,
    MALFORMED_JSON,
    MISSING_FIELD,
    NEGATIVE_LATENCY,
    NOT_AN_OBJECT,
)
from sloguard.ingest.rules import DecodeOptions

GOOD: dict[str, Any] = {
    "ts": "2026-01-01T00:00:00Z",
    "service": "s",
    "endpoint": "e",
    "customer": "c",
    "status": 200,
    "latency_ms": 1.5,
}


def text(**fields: Any) -> bytes:
    return json.dumps({**GOOD, **fields}).encode()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(b'{"ts": ', MALFORMED_JSON, id="syntax"),
        pytest.param(b"[1, 2]", NOT_AN_OBJECT, id="array"),
        pytest.param(b'{"ts": "x"}', MISSING_FIELD, id="missing"),
        pytest.param(text(status="200"), BAD_TYPE, id="type"),
        pytest.param(text().replace(b"200", b"1e400"), BAD_TYPE, id="float-status"),
        pytest.param(text(ts=10**30), BAD_TIMESTAMP, id="huge-ts"),
        pytest.param(text(status=10**30), BAD_STATUS, id="huge-status"),
        pytest.param(text(status=10**30, ts=10**30), BAD_TIMESTAMP, id="ts-before-status"),
        pytest.param(text(status=10**30).replace(b"1.5", b"-1e400"), BAD_STATUS, id="status-before-negative"),
        pytest.param(text(status=10**30).replace(b"1.5", b"1e400"), BAD_STATUS, id="status-before-latency"),
        pytest.param(text().replace(b"1.5", b"-1e400"), NEGATIVE_LATENCY, id="negative"),
        pytest.param(text(service="").replace(b"1.5", b"1e400"), BAD_LATENCY, id="latency-before-empty"),
        pytest.param(text(service="", endpoint="x" * 300, status=10**30), BAD_STATUS, id="status-first"),
        pytest.param(text(service="", endpoint="x" * 300, ts=10**30), BAD_TIMESTAMP, id="ts-before-labels"),
    ],
)
def test_reasons(line: bytes, reason: str) -> None:
    assert Explainer(DecodeOptions()).explain(line) == reason


def test_label_reasons_in_precedence() -> None:
    explain = Explainer(DecodeOptions(max_label_length=4, default_customer="anon")).explain
    huge_ts = 10**30
    assert explain(text(service="", endpoint="x" * 9, ts=huge_ts)) == BAD_TIMESTAMP
    assert explain(text(service="", endpoint="x" * 9).replace(b"1.5", b"1e400")) == BAD_LATENCY
    assert explain(text(service="", endpoint="x" * 9, status=10**30)) == BAD_STATUS
    assert explain(text(service="", endpoint="x" * 9)) == EMPTY_LABEL
    assert explain(text(endpoint="x" * 9)) == LABEL_TOO_LONG
    assert explain(text(customer="")) == EMPTY_LABEL  # an empty customer is empty, default or not


def test_missing_customer_without_default() -> None:
    explain = Explainer(DecodeOptions(default_customer=None)).explain
    assert explain(text(customer=None)) == MISSING_FIELD
    assert explain(json.dumps({k: v for k, v in GOOD.items() if k != "customer"}).encode()) == MISSING_FIELD
    assert Explainer(DecodeOptions()).explain(text(customer=None)) == BAD_TYPE  # nothing else is wrong
