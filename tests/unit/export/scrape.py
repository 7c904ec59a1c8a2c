"""Helpers of the exporter's tests: a telemetry snapshot, rendering, and parsing the exposition back
into (name, labels) → value."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

from sloguard.core.snapshot import Snapshot
from sloguard.export.collector import Exposition
from sloguard.telemetry import TelemetrySnapshot

Key = tuple[str, tuple[tuple[str, str], ...]]

TELEMETRY = TelemetrySnapshot(
    events_processed=123_456,
    events_invalid={"malformed_json": 7, "bad_timestamp": 2},
    events_late=11,
    events_future=3,
    records_consumed=4_000_000,
    dead_lettered=9,
    commit_failures=1,
    consumer_lag={("requests", 1): 42, ("requests", 0): 0, ("other", 3): 5},
    tick_duration_seconds=0.0125,
    render_duration_seconds=0.25,
)


def parse(body: bytes) -> tuple[dict[str, str], dict[Key, float]]:
    """Exposition → (type per family name, value per (sample name, sorted labels)); no duplicates."""
    types: dict[str, str] = {}
    samples: dict[Key, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        types[family.name] = family.type
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = s.value
    return types, samples


def key(name: str, **labels: str) -> Key:
    return name, tuple(sorted(labels.items()))


def names(samples: Mapping[Key, float]) -> set[str]:
    return {name for name, _ in samples}


def render(
    snap: Snapshot,
    telemetry: TelemetrySnapshot = TELEMETRY,
    sloth: bool = False,
    top_k: Mapping[str, int] | None = None,
) -> bytes:
    return Exposition(sloth_compat=sloth, top_k=top_k, version="1.2.3").render(snap, telemetry)
