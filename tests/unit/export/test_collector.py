"""The collector: what it yields, its options, and every source's exposition against prometheus_client."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import pytest
from prometheus_client import generate_latest

from sloguard.core.snapshot import Snapshot
from sloguard.export.collector import Exposition, SnapshotCollector
from sloguard.telemetry import TelemetrySnapshot
from tests.unit.export.scrape import TELEMETRY, parse, render
from tests.unit.export.snapshots import NASTY, aggregated, synthetic

# -- the renderer is prometheus_client's format, byte for byte -------------------------------------

CASES: dict[str, Callable[[], Snapshot]] = {
    "aggregated": lambda: aggregated(),
    "aggregated-nasty-customers": lambda: aggregated(customers=NASTY),
    "synthetic-nasty": lambda: synthetic(300, 60, nasty=True, firing_p=0.05),
    "synthetic-no-latency-no-series": lambda: Snapshot(0, (), None, 0, None),
}


@pytest.mark.parametrize(
    "top_k", [None, {"checkout-by-customer": 20, "checkout-by-endpoint": 1}], ids=["all", "top-k"]
)
@pytest.mark.parametrize("sloth", [False, True], ids=["native", "sloth-compat"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_render_is_byte_identical_to_generate_latest(
    case: Callable[[], Snapshot], sloth: bool, top_k: Mapping[str, int] | None
) -> None:
    snap = case()
    exposition = Exposition(sloth_compat=sloth, top_k=top_k)
    body = exposition.render(snap, TELEMETRY)
    assert body == generate_latest(exposition.registry)


def test_collector_yields_what_was_last_updated() -> None:
    collector = SnapshotCollector()
    assert list(collector.collect()) == []
    collector.update(aggregated(), TELEMETRY)
    first = [m.name for m in collector.collect()]
    assert "sloguard_slo_burn_rate" in first
    collector.update(Snapshot(0, (), None, 0, None), TelemetrySnapshot())
    assert "sloguard_slo_burn_rate" in [m.name for m in collector.collect()]  # family kept, no samples
    assert all(not m.samples for m in collector.collect() if m.name.startswith("sloguard_slo_"))


def test_counters_end_in_total_and_nothing_else_does() -> None:
    types, _ = parse(render(synthetic(20, 5), sloth=True))
    for name in types:
        # The parser strips _total from counter family names; a gauge named *_total would keep it.
        assert not name.endswith("_total"), name
    counters = {n for n, t in types.items() if t == "counter"}
    assert counters == {
        "sloguard_events_processed",
        "sloguard_events_invalid",
        "sloguard_events_late",
        "sloguard_events_future",
        "sloguard_records_consumed",
        "sloguard_dead_letter",
        "sloguard_dead_letter_dropped",
        "sloguard_commit_failures",
        "sloguard_checkpoints",
        "sloguard_checkpoint_failures",
        "sloguard_config_reloads",
        "sloguard_config_reload_failures",
        "sloguard_overflow_events",
        "sloguard_too_old_events",
        "sloguard_evicted_series",
        "sloguard_excluded_events",
        "sloguard_latency_overflow_events",
        "sloguard_latency_too_old_events",
        "sloguard_http_connections",
    }


def test_negative_top_k_is_refused() -> None:
    with pytest.raises(ValueError, match="top_k"):
        SnapshotCollector(top_k={"x": -1})


def test_exposition_passes_its_options_to_the_collector() -> None:
    exposition = Exposition(sloth_compat=True, top_k={"a": 3}, version="9.9")
    c = exposition.collector
    assert (c.sloth_compat, c.top_k, c.version) == (True, {"a": 3}, "9.9")
    default = Exposition().collector
    assert (default.sloth_compat, default.top_k) == (False, {})


@pytest.mark.parametrize("sloth", [False, True], ids=["native", "sloth-compat"])
def test_an_slo_whose_snapshot_is_the_same_object_keeps_its_blocks_and_renders_as_new(sloth: bool) -> None:
    """`SnapshotCollector` keeps an SLO's view and blocks while its `SloSnapshot` is the very object of
    the last update, and makes them again otherwise: each update's bytes are those of a fresh collector
    (and of ``generate_latest``), over ticks that keep some SLOs and replace others."""
    first = synthetic(40, 6, nasty=True, firing_p=0.2, seed=1)
    other = synthetic(40, 6, nasty=True, firing_p=0.2, seed=2)
    assert len(first.slos) >= 2 and [s.spec.name for s in first.slos] == [s.spec.name for s in other.slos]
    kept = first.slos[0]
    ticks = [
        first,
        dataclasses.replace(first, now_ms=first.now_ms + 1000),  # every SLO the same objects
        dataclasses.replace(first, slos=(kept, *other.slos[1:])),  # the first kept, the others new
        dataclasses.replace(other, slos=(other.slos[0], *other.slos[1:])),  # the first replaced
        first,
    ]
    exposition = Exposition(sloth_compat=sloth)
    last_blocks = None
    for k, snap in enumerate(ticks):
        body = exposition.render(snap, TELEMETRY)
        assert body == Exposition(sloth_compat=sloth).render(snap, TELEMETRY)
        assert body == generate_latest(exposition.registry)
        blocks = exposition.collector._per_slo[kept.spec.name][2]
        if k in (1, 2):
            assert blocks is last_blocks  # same snapshot object: not made again
        last_blocks = blocks
