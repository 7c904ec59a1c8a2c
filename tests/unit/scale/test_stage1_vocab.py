"""Stage 1's long-lived decoder bounds its label vocabularies between ranges, never under a decoded batch."""

from __future__ import annotations

import asyncio

import pytest

from sloguard.scale import stage1
from sloguard.scale.partials import summarise
from sloguard.scale.stage1 import PartialStage
from sloguard.settings import load_settings
from tests.unit.scale.canon import comparable
from tests.unit.scale.test_exactly_once import CONFIG, COUNTS_LEN, T0


def _range(lo: int) -> list[bytes]:
    return [
        b'{"ts": %d, "service": "checkout", "endpoint": "GET /a", "customer": "c%d", "status": %d, '
        b'"latency_ms": %d}' % (T0 + i * 1000, i, 500 if i % 3 == 0 else 200, i)
        for i in range(lo, lo + 5)
    ]


def _stage() -> PartialStage:
    settings = load_settings(
        {"stage": "partial", "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["requests"]}}
    )
    return PartialStage(settings, CONFIG)


async def test_ranges_past_the_vocabulary_limit_summarise_as_with_no_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Async: the Kafka clients want a running loop; nothing connects. A limit of 3 customers: every
    # range takes the vocabulary past it, so each decode after the first starts from a reset one.
    bounded, unbounded = _stage(), _stage()
    never = asyncio.Event()
    got, want = [], []
    for lo in (0, 5, 10):
        records = _range(lo)
        stamps = [T0] * len(records)
        want.append(
            comparable(summarise(CONFIG, [await unbounded._decode(stamps, records, never)]), COUNTS_LEN)
        )
        monkeypatch.setattr(stage1, "_VOCAB_LIMIT", 3)
        got.append(comparable(summarise(CONFIG, [await bounded._decode(stamps, records, never)]), COUNTS_LEN))
        monkeypatch.setattr(stage1, "_VOCAB_LIMIT", 10**9)
    assert got == want
    assert len(bounded.decoder.vocabs.customer) <= 5 < len(unbounded.decoder.vocabs.customer)
