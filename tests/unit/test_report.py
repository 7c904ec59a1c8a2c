"""`sloguard.report`: the replay table fits 120 columns, shows what was not counted, and latencies at
the precision the histogram holds; the JSON gains `unmatched` and `slo_events`."""

from __future__ import annotations

import re

import msgspec
import pytest

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch, Rejections
from sloguard.core.snapshot import Snapshot
from sloguard.core.spec import DAY, Config, LatencySpec
from sloguard.report import TABLE_WIDTH, significant, to_dict, to_table
from tests.support.specs import config, slo

T0 = 1_767_225_600_000
NOW = T0 + DAY * 1000

# Names as SRE teams write them.
REALISTIC = config(
    slo(name="checkout-api-availability-per-endpoint", group_by=("endpoint",)),
    slo(
        name="search-latency-per-customer-premium-tier",
        kind="latency",
        threshold_ms=300.0,
        group_by=("customer",),
    ),
    slo(name="payments-authorize-availability", service="payments", group_by=("endpoint", "customer")),
    slo(name="auth-availability", service="auth"),
    latency=LatencySpec(group_by=("service", "endpoint")),
)
ENDPOINTS = ("POST /v1/payments/authorize/{payment_id}/capture", "GET /v1/orders/{order_id}", "POST /v1/cart")
CUSTOMERS = ("enterprise-customer-0042-eu-west", "acme", "umbrella-corporation-research")


def snapshot(cfg: Config = REALISTIC, failing: bool = True) -> Snapshot:
    agg = Aggregator(cfg)
    events = [
        Event(NOW - 1000 * (i + 1), svc, ep, cu, 503 if failing and i % 3 == 0 else 200, 12.5 + i * 91.37)
        for i, (svc, ep, cu) in enumerate(
            (s, e, c) for s in ("checkout", "search", "payments") for e in ENDPOINTS for c in CUSTOMERS
        )
    ]
    agg.ingest(EventBatch.from_events(events * 40, agg.vocabs))
    return agg.snapshot(NOW)


def test_table_fits_120_columns_with_realistic_names() -> None:
    text = to_table(snapshot(), Rejections({"malformed_json": 3}), after_now=2, unmatched=7)
    widths = [len(line) for line in text.splitlines()]
    assert max(widths) <= TABLE_WIDTH, text
    # The cut names stay recognisable: the SLO's start, the series' both ends.
    assert "checkout-api-" in text and "/capture" in text and "POST /v1/pay" in text


def test_names_are_not_cut_when_the_table_fits() -> None:
    text = to_table(snapshot(), width=400)
    assert "…" not in text
    assert "search-latency-per-customer-premium-tier" in text


def test_firing_tiers_are_compact() -> None:
    text = to_table(snapshot())
    assert "page:1h,6h ticket:1d,3d" in text


def test_the_summary_shows_what_was_not_counted() -> None:
    text = to_table(snapshot(), Rejections({"bad_timestamp": 4}), after_now=2, unmatched=7)
    first = text.splitlines()[0]
    assert re.fullmatch(
        r"now \S+  events 1080  invalid 4  matched no SLO 7  after now 2  too old 0", first
    ), first
    assert "invalid: bad_timestamp=4" in text


def test_too_old_events_are_shown_per_slo() -> None:
    cfg = config(slo(group_by=("endpoint",)))
    agg = Aggregator(cfg)
    old = Event(NOW - 40 * DAY * 1000, "checkout", "GET /", "acme", 200, 1.0)
    agg.ingest(
        EventBatch.from_events([Event(NOW - 1000, "checkout", "GET /", "acme", 200, 1.0), old], agg.vocabs)
    )
    text = to_table(agg.snapshot(NOW))
    assert text.splitlines()[0].endswith("too old 1")
    assert "too old (before an SLO's period, per SLO): checkout-availability=1" in text


def test_an_slo_without_events_is_a_row_saying_so() -> None:
    rows = [r for r in to_table(snapshot()).splitlines() if r.startswith("auth-availability")]
    assert len(rows) == 1 and "no events" in rows[0]
    # A grouped SLO with no series is not dropped either.
    cfg = config(
        slo(group_by=("endpoint",)), slo(name="grouped-nothing", service="nope", group_by=("customer",))
    )
    rows = [r for r in to_table(snapshot(cfg)).splitlines() if r.startswith("grouped-nothing")]
    assert len(rows) == 1 and "no events" in rows[0]


@pytest.mark.parametrize(
    ("value", "figures", "shown"),
    [
        (2539.519, 2, "2500"),
        (85.503, 2, "86"),
        (99.6, 2, "100"),
        (1.234, 2, "1.2"),
        (0.01234, 2, "0.012"),
        (2539.519, 3, "2540"),
        (12.5, 1, "10"),
        (0.0, 2, "0"),
    ],
)
def test_significant(value: float, figures: int, shown: str) -> None:
    assert significant(value, figures) == shown


def test_latencies_are_shown_to_the_histogram_precision() -> None:
    text = to_table(snapshot())
    lat = text[text.index("GROUP") :].split("\n\n")[0].splitlines()[1:]
    values = [v for row in lat for v in row.split()[-4:] if v != "-"]
    assert values and all(len(v.replace(".", "").lstrip("0").rstrip("0")) <= 2 for v in values), values


def test_json_counts_unmatched_events_and_events_per_slo() -> None:
    doc = to_dict(snapshot(), unmatched=7)
    assert doc["unmatched"] == 7
    assert doc["slo_events"]["auth-availability"] == 0
    assert doc["slo_events"]["checkout-api-availability-per-endpoint"] == 360


def test_slos_worst_first_and_series_worst_first_within() -> None:
    lines = to_table(snapshot()).split("\n\n")[0].splitlines()[2:]
    budgets: list[list[float]] = []
    for text in lines:
        if not text.startswith("  "):
            budgets.append([])  # an SLO's heading
        else:
            budgets[-1].append(float(text.split("%")[0].split()[-1]))
    assert all(b == sorted(b) for b in budgets)
    worst = [b[0] for b in budgets if b]
    assert worst == sorted(worst) and len(worst) == 3


def test_same_events_give_the_same_report_however_they_were_batched() -> None:
    """Series rows are numbered in arrival order; the report lists them by labels, so cutting the same
    events into other batches (replay's read chunks) changes neither the JSON nor the table."""
    events = [
        Event(NOW - 1000 * (i + 1), "checkout", ep, cu, 503 if i % 4 == 0 else 200, 20.0)
        for i, (ep, cu) in enumerate((e, c) for _ in range(30) for e in ENDPOINTS for c in CUSTOMERS)
    ]
    reports = []
    for batches in ([events], [events[::-1]], [events[i::5] for i in range(5)]):
        agg = Aggregator(REALISTIC)
        for batch in batches:
            agg.ingest(EventBatch.from_events(batch, agg.vocabs))
        snap = agg.snapshot(NOW)
        reports.append((msgspec.json.encode(to_dict(snap)), to_table(snap)))
    assert reports[0] == reports[1] == reports[2]
