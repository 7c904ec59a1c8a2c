"""Self-metrics of the daemon, as plain values: the app updates them, the exporter reads a copy.

Nothing here imports prometheus_client: the exporter turns a `TelemetrySnapshot` into metric families.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from sloguard.core.model import Rejections


@dataclass(frozen=True, slots=True)
class TelemetrySnapshot:
    """Counters and gauges about sloguard itself, at one tick.

    ``consumer_lag`` maps ``(topic, partition)`` to messages behind the high watermark.
    """

    events_processed: int = 0
    events_invalid: dict[str, int] = field(default_factory=dict)
    events_late: int = 0
    events_future: int = 0
    records_consumed: int = 0
    dead_lettered: int = 0
    dead_letter_dropped: int = 0
    commit_failures: int = 0
    consumer_lag: dict[tuple[str, int], int] = field(default_factory=dict)
    tick_duration_seconds: float = 0.0
    render_duration_seconds: float = 0.0
    checkpoints_written: int = 0
    checkpoint_failures: int = 0
    checkpoint_last_success_seconds: float = 0.0
    checkpoint_duration_seconds: float = 0.0
    checkpoint_bytes: int = 0
    reloads: int = 0
    reload_failures: int = 0
    last_reload_ok: bool = True


@dataclass(slots=True)
class Telemetry:
    """Mutable counters owned by the composition root (single-threaded: the asyncio loop)."""

    events_processed: int = 0
    invalid: Rejections = field(default_factory=Rejections)
    events_late: int = 0
    events_future: int = 0
    records_consumed: int = 0
    dead_lettered: int = 0
    dead_letter_dropped: int = 0
    commit_failures: int = 0
    consumer_lag: dict[tuple[str, int], int] = field(default_factory=dict)
    tick_duration_seconds: float = 0.0
    render_duration_seconds: float = 0.0
    checkpoints_written: int = 0
    checkpoint_failures: int = 0
    checkpoint_last_success_seconds: float = 0.0
    checkpoint_duration_seconds: float = 0.0
    checkpoint_bytes: int = 0
    reloads: int = 0
    reload_failures: int = 0
    last_reload_ok: bool = True

    def snapshot(self) -> TelemetrySnapshot:
        """A copy for the exporter (same fields, invalid counts as a plain dict)."""
        values = {
            f.name: getattr(self, f.name) for f in fields(TelemetrySnapshot) if f.name != "events_invalid"
        }
        values["consumer_lag"] = dict(self.consumer_lag)
        return TelemetrySnapshot(events_invalid=dict(self.invalid.counts), **values)
