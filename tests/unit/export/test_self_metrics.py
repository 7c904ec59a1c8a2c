"""Self-metrics: sloguard's own counters and gauges."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from sloguard.core.snapshot import Snapshot
from sloguard.export.model import ONE
from sloguard.export.self_metrics import SELF_METRICS, Field, Sources
from sloguard.telemetry import Telemetry, TelemetrySnapshot, TelemetryValues
from tests.unit.export.scrape import key, parse, render
from tests.unit.export.snapshots import aggregated

EMPTY = Snapshot(0, (), None, 0, None)


def test_self_metrics() -> None:
    snap = aggregated()
    types, samples = parse(render(snap))
    assert samples[key("sloguard_build_info", version="1.2.3")] == 1.0
    assert samples[key("sloguard_snapshot_timestamp_seconds")] == snap.now_ms / 1000
    counters = {
        "sloguard_events_processed_total": 123_456,
        "sloguard_events_late_total": 11,
        "sloguard_events_future_total": 3,
        "sloguard_records_consumed_total": 4_000_000,
        "sloguard_dead_letter_total": 9,
        "sloguard_commit_failures_total": 1,
    }
    for name, value in counters.items():
        assert samples[key(name)] == value
        assert types[name.removesuffix("_total")] == "counter"
    assert samples[key("sloguard_events_invalid_total", reason="malformed_json")] == 7
    assert samples[key("sloguard_events_invalid_total", reason="bad_timestamp")] == 2
    assert samples[key("sloguard_consumer_lag", topic="requests", partition="1")] == 42
    assert samples[key("sloguard_consumer_lag", topic="requests", partition="0")] == 0
    assert samples[key("sloguard_consumer_lag", topic="other", partition="3")] == 5
    assert samples[key("sloguard_tick_duration_seconds")] == 0.0125
    assert samples[key("sloguard_render_duration_seconds")] == 0.25
    for s in snap.slos:
        assert samples[key("sloguard_series", slo=s.spec.name)] == s.series
        assert samples[key("sloguard_exported_series", slo=s.spec.name)] == s.series
        assert samples[key("sloguard_overflow_events_total", slo=s.spec.name)] == s.overflow_events
        assert samples[key("sloguard_too_old_events_total", slo=s.spec.name)] == s.too_old_events
    assert snap.latency is not None
    assert samples[key("sloguard_latency_groups")] == len(snap.latency.labels)
    assert samples[key("sloguard_latency_overflow_events_total")] == snap.latency.overflow_events
    assert samples[key("sloguard_latency_too_old_events_total")] == snap.latency.too_old_events


def test_every_telemetry_field_is_exported_once() -> None:
    # The table and the dataclass are the two halves of a self-metric: a field nobody exports, or
    # two families for one field, is a mistake.
    exported = [m.field.name for m in SELF_METRICS if isinstance(m.field, Field)]
    assert sorted(exported) == sorted(f.name for f in fields(TelemetrySnapshot))
    assert len({m.name for m in SELF_METRICS}) == len(SELF_METRICS)
    for m in SELF_METRICS:
        assert m.name.startswith("sloguard_")
        assert m.name.endswith("_total") == (m.type == "counter"), m.name


def test_field_reads_numbers_and_dicts_in_key_order() -> None:
    t = TelemetrySnapshot(
        checkpoint_bytes=7, last_reload_ok=False, consumer_lag={("b", 10): 1, ("b", 2): 2, ("a", 30): 3}
    )
    src = Sources(EMPTY, t, (), "1.2.3")
    scalar = Field("checkpoint_bytes")(src)
    assert scalar.series is ONE and scalar.const == () and scalar.values.tolist() == [7.0]
    assert Field("last_reload_ok")(src).values.tolist() == [0.0]
    lag = Field("consumer_lag", ("topic", "partition"))(src)
    # Partitions sort as numbers (2 before 10), then become label text.
    assert lag.series.names == ("topic", "partition")
    assert list(lag.series.values) == [("a", "30"), ("b", "2"), ("b", "10")]
    assert lag.values.tolist() == [3.0, 2.0, 1.0]
    empty = Field("events_invalid", ("reason",))(src)
    assert len(empty.series) == 0 and empty.values.dtype == np.float64 and len(empty.values) == 0


def test_every_field_reaches_the_exposition() -> None:
    t = TelemetrySnapshot(
        dead_letter_dropped=4,
        checkpoints_written=17,
        checkpoint_failures=2,
        checkpoint_last_success_seconds=1767225600.5,
        checkpoint_duration_seconds=0.75,
        checkpoint_bytes=123_456_789,
        reloads=3,
        reload_failures=1,
        last_reload_ok=False,
    )
    _, samples = parse(render(EMPTY, t))
    assert samples[key("sloguard_dead_letter_dropped_total")] == 4
    assert samples[key("sloguard_checkpoints_total")] == 17
    assert samples[key("sloguard_checkpoint_failures_total")] == 2
    assert samples[key("sloguard_checkpoint_last_success_timestamp_seconds")] == 1767225600.5
    assert samples[key("sloguard_checkpoint_duration_seconds")] == 0.75
    assert samples[key("sloguard_checkpoint_bytes")] == 123_456_789
    assert samples[key("sloguard_config_reloads_total")] == 3
    assert samples[key("sloguard_config_reload_failures_total")] == 1
    assert samples[key("sloguard_config_last_reload_successful")] == 0


def test_http_connection_metrics() -> None:
    t = TelemetrySnapshot(
        http_connections={"accepted": 1200, "evicted": 150, "rejected": 2, "throttled": 7},
        http_open_connections={"waiting": 900, "responding": 3, "lingering": 1},
    )
    types, samples = parse(render(EMPTY, t))
    assert types["sloguard_http_connections"] == "counter"
    assert types["sloguard_http_open_connections"] == "gauge"
    for outcome, n in t.http_connections.items():
        assert samples[key("sloguard_http_connections_total", outcome=outcome)] == n
    for state, n in t.http_open_connections.items():
        assert samples[key("sloguard_http_open_connections", state=state)] == n


def test_latency_self_metrics_are_absent_without_latency() -> None:
    _, samples = parse(render(EMPTY, TelemetrySnapshot()))
    assert not {name for name, _ in samples if name.startswith("sloguard_latency_")}
    assert samples[key("sloguard_events_processed_total")] == 0


def test_telemetry_snapshot_is_a_copy_of_every_field() -> None:
    live = Telemetry()
    for i, f in enumerate(fields(TelemetryValues)):
        value = getattr(live, f.name)
        if isinstance(value, dict):
            value[("requests", i)] = i
        elif isinstance(value, bool):
            setattr(live, f.name, not value)
        else:
            setattr(live, f.name, type(value)(i + 1))
    live.invalid.add("malformed_json", 2)
    snap = live.snapshot()
    for f in fields(TelemetryValues):
        assert getattr(snap, f.name) == getattr(live, f.name), f.name
    assert snap.events_invalid == {"malformed_json": 2}
    # Later updates of the live counters do not reach a snapshot already taken.
    live.consumer_lag[("requests", 99)] = 1
    live.invalid.add("malformed_json")
    live.events_processed += 1
    assert ("requests", 99) not in snap.consumer_lag
    assert snap.events_invalid == {"malformed_json": 2}
    assert snap.events_processed != live.events_processed
