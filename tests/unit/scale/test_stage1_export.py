"""What a stage-1 process exports: self-metrics only, no per-SLO family (not even the constants)."""

from __future__ import annotations

from sloguard.export.collector import Exposition
from sloguard.scale.stage1 import PartialStage
from sloguard.settings import load_settings
from sloguard.telemetry import TelemetrySnapshot
from tests.unit.scale.test_exactly_once import CONFIG, T0


async def test_stage1_exports_nothing_per_slo_so_absent_fires_without_merge_processes() -> None:
    # The rules' no-data ticket is absent(sloguard_slo_objective_ratio{slo=...}): were stage 1 to export
    # the SLO constants, it would never fire with every merge process down. (Async: the Kafka clients
    # want a running loop; nothing connects.)
    settings = load_settings(
        {"stage": "partial", "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["requests"]}}
    )
    stage = PartialStage(settings, CONFIG)
    snapshot = stage.export_counts(T0).evaluate()
    assert snapshot.slos == () and snapshot.latency is None
    text = Exposition(version="t").render(snapshot, TelemetrySnapshot()).decode()
    assert "sloguard_build_info" in text
    assert not [line for line in text.splitlines() if line.startswith(("sloguard_slo_", "sloguard_latency_"))]
