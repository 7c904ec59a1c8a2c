"""Cardinality attack: 1M distinct customer ids. State stays within the caps, overflow is counted and
alerted on, the label vocabularies stay bounded (RSS: `make bench-cardinality`)."""

from __future__ import annotations

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Rejections
from sloguard.core.series import SeriesIndex
from sloguard.ingest.decode import Decoder
from sloguard.rules import generate
from sloguard.specfile import parse_config

T0 = 1_767_225_600_000
SLOS = """\
apiVersion: sloguard/v1
slos:
  - {name: per-customer, service: checkout, objective: 99.9, sli: {type: availability}, window: 30d,
     group_by: [customer], max_series: 5000}
latency: {group_by: [service, endpoint], windows: [5m]}
"""


def test_a_million_distinct_customers() -> None:
    config = parse_config(SLOS, "slos.yaml")
    agg = Aggregator(config)
    decoder = Decoder(vocabs=agg.vocabs)
    n, batch = 1_000_000, 20_000
    peak_vocab = 0
    for lo in range(0, n, batch):
        records = [
            b'{"ts": %d, "service": "checkout", "endpoint": "GET /", "customer": "attacker-%07d",'
            b' "status": 200, "latency_ms": 1}' % (T0 + i % 3_600_000, i)
            for i in range(lo, lo + batch)
        ]
        agg.ingest(decoder.decode_many([b"\n".join(records)], Rejections()))
        peak_vocab = max(peak_vocab, len(agg.vocabs.customer))
    s = agg.snapshot(T0 + 2 * 3_600_000).slos[0]
    assert s.series == 5001  # the cap plus __overflow__
    assert s.overflow_events == n - 5000
    assert s.events == n
    assert int(s.period_total.sum()) == n  # nothing dropped
    assert peak_vocab <= agg.vocab_limit + batch
    assert agg.vocab_resets >= n // (agg.vocab_limit + batch) - 1
    # ... and Prometheus alerts on it.
    alerts = [r for g in generate(config)["groups"] for r in g["rules"]]
    (overflow,) = [r for r in alerts if r["alert"] == "SloguardSeriesOverflow"]
    assert "sloguard_overflow_events_total" in overflow["expr"]


def test_series_labels_are_one_tuple_until_a_key_is_added() -> None:
    index = SeriesIndex(("customer",), 10)
    assert index.labels() == ()
    index.row_for_key(("a",))
    first = index.labels()
    assert first == (("a",),)
    assert index.labels() is first  # unchanged: the same object
    index.row_for_key(("a",))  # a known key adds nothing
    assert index.labels() is first
    index.row_for_key(("b",))
    assert index.labels() == (("a",), ("b",))


def test_events_per_series_row_count_every_event_once() -> None:
    """Each row's event count (what ``overflow_events`` reads) counts every event once, past the cap
    included; a customer literally named ``__overflow__`` shares the overflow row, and its events are not
    counted as overflow."""
    import random

    from sloguard.core.model import OVERFLOW, Event, EventBatch

    config = parse_config(
        """\
apiVersion: sloguard/v1
slos:
  - {name: capped, service: checkout, objective: 99.9, sli: {type: availability}, window: 30d,
     group_by: [customer], max_series: 4}
  - {name: whole, service: checkout, objective: 99.9, sli: {type: availability}, window: 30d}
""",
        "slos.yaml",
    )
    agg = Aggregator(config)
    rnd = random.Random(5)
    names = [f"c{i}" for i in range(8)] + [OVERFLOW]
    seen: list[str] = []
    for _ in range(6):
        batch = [
            Event(T0 + rnd.randrange(-3_600_000, 60_000), "checkout", "GET /", rnd.choice(names), 200, 1.0)
            for _ in range(rnd.randrange(1, 300))
        ]
        agg.ingest(EventBatch.from_events(batch))
        seen += [e.customer for e in batch]
    capped, whole = (s.series for s in agg.slos)
    first: list[str] = []
    for c in seen:
        if c not in first and c != OVERFLOW and len(first) < 4:
            first.append(c)
    for key, row in capped.rows_by_key.items():
        want = sum(c == key[0] for c in seen) if key[0] != OVERFLOW else sum(c not in first for c in seen)
        literal = seen.count(OVERFLOW) if key[0] == OVERFLOW else 0
        assert int(capped.row_events[row]) == want - literal, key
    assert int(whole.row_events[0]) == len(seen)
