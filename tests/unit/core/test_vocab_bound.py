"""Bounded label vocabularies: a flood of distinct values resets them; counts stay exact."""

from __future__ import annotations

import random
from collections import Counter

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Rejections
from sloguard.ingest.decode import Decoder
from tests.support.specs import config, slo

T0 = 1_767_225_600_000


def record(i: int, customer: str, status: int) -> bytes:
    return (
        b'{"ts": %d, "service": "checkout", "endpoint": "GET /e%d", "customer": "%s", "status": %d,'
        b' "latency_ms": 12.5}' % (T0 + i, i % 7, customer.encode(), status)
    )


def test_counts_stay_exact_across_vocabulary_resets() -> None:
    cfg = config(
        slo(name="by-customer", group_by=("customer",), fine=60, coarse=3600),
        slo(name="by-both", group_by=("endpoint", "customer"), fine=60, coarse=3600),
    )
    agg = Aggregator(cfg, vocab_limit=50)
    decoder = Decoder(vocabs=agg.vocabs)
    rnd = random.Random(1)
    want_customer: Counter[str] = Counter()
    want_both: Counter[tuple[str, str]] = Counter()
    for batch_no in range(40):
        # Small batches (msgspec path) and one big buffer per few batches (the byte-level fast path).
        n = 3000 if batch_no % 5 == 0 else 40
        lines = []
        for j in range(n):
            i = batch_no * 10_000 + j
            customer = f"c{rnd.randrange(120)}"
            lines.append(record(i, customer, 500 if j % 9 == 0 else 200))
            want_customer[customer] += 1
            want_both[(f"GET /e{i % 7}", customer)] += 1
        agg.ingest(decoder.decode_many([b"\n".join(lines)], Rejections()))
    assert agg.vocab_resets > 0
    assert len(agg.vocabs.customer) <= 50 + 3000
    snap = agg.snapshot(T0 + 10 * 86_400_000)
    by_customer, by_both = snap.slos
    got_customer = {k[0]: int(t) for k, t in zip(by_customer.labels, by_customer.period_total, strict=True)}
    got_both = {(k[0], k[1]): int(t) for k, t in zip(by_both.labels, by_both.period_total, strict=True)}
    assert got_customer == dict(want_customer)
    assert got_both == dict(want_both)
