"""`IngestStats.unmatched`: valid events selected by no SLO, counted exactly (replay reports it)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import DAY, Config
from tests.support import groundtruth as gt
from tests.support.specs import config, slo

T0 = 1_767_225_600_000
CONFIG = config(
    slo(group_by=("endpoint",), endpoints=("POST /v1/*",)),
    slo(name="checkout-latency", kind="latency", threshold_ms=300.0, group_by=("customer",)),
    slo(name="search", service="search", endpoints=("GET /v1/search",)),
)


def ev(service: str, endpoint: str = "POST /v1/orders", ts: int = T0) -> Event:
    return Event(ts, service, endpoint, "acme", 200, 12.5)


def unmatched(cfg: Config, events: list[Event]) -> int:
    return sum(not any(gt.matches(spec, e) for spec in cfg.slos) for e in events)


def test_a_service_spelled_differently_matches_nothing() -> None:
    agg = Aggregator(CONFIG)
    events = [ev("Checkout"), ev("checkout"), ev("search", "GET /v1/search"), ev("search", "GET /v1/other")]
    agg.ingest(EventBatch.from_events(events, agg.vocabs))
    # "Checkout" (case) and search's other endpoint are in no SLO; checkout's GET is in the latency SLO.
    assert (agg.stats.events, agg.stats.unmatched) == (4, 2)


def test_no_slos_means_every_event_is_unmatched() -> None:
    agg = Aggregator(config())
    agg.ingest(EventBatch.from_events([ev("checkout"), ev("search")], agg.vocabs))
    assert agg.stats.unmatched == 2


events_strategy = st.lists(
    st.builds(
        Event,
        ts_ms=st.integers(T0, T0 + 3 * DAY * 1000),
        service=st.sampled_from(["checkout", "Checkout", "search", "auth"]),
        endpoint=st.sampled_from(["POST /v1/orders", "GET /v1/search", "GET /v2/x"]),
        customer=st.sampled_from(["acme", "globex"]),
        status=st.sampled_from([200, 500]),
        latency_ms=st.just(10.0),
    ),
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(events=events_strategy, cut=st.integers(0, 80))
def test_unmatched_equals_ground_truth_and_merges(events: list[Event], cut: int) -> None:
    whole = Aggregator(CONFIG)
    for part in (events[:cut], events[cut:]):  # two batches: the count adds up across batches
        whole.ingest(EventBatch.from_events(part, whole.vocabs))
    assert whole.stats.unmatched == unmatched(CONFIG, events)
    a, b = Aggregator(CONFIG), Aggregator(CONFIG)
    a.ingest(EventBatch.from_events(events[:cut], a.vocabs))
    b.ingest(EventBatch.from_events(events[cut:], b.vocabs))
    a.merge(b)
    assert a.stats.unmatched == whole.stats.unmatched
