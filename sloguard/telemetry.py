"""Self-metrics of the daemon, as plain values: the app updates them, the exporter reads a copy.

Nothing here imports prometheus_client: the exporter turns a `TelemetrySnapshot` into metric families.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    commit_failures: int = 0
    consumer_lag: dict[tuple[str, int], int] = field(default_factory=dict)
    tick_duration_seconds: float = 0.0
    render_duration_seconds: float = 0.0


@dataclass(slots=True)
class Telemetry:
    """Mutable counters owned by the composition root (single-threaded: the asyncio loop)."""

    events_processed: int = 0
    invalid: Rejections = field(default_factory=Rejections)
    events_late: int = 0
    events_future: int = 0
    records_consumed: int = 0
    dead_lettered: int = 0
    commit_failures: int = 0
    consumer_lag: dict[tuple[str, int], int] = field(default_factory=dict)
    tick_duration_seconds: float = 0.0
    render_duration_seconds: float = 0.0

    def snapshot(self) -> TelemetrySnapshot:
        return TelemetrySnapshot(
            events_processed=self.events_processed,
            events_invalid=dict(self.invalid.counts),
            events_late=self.events_late,
            events_future=self.events_future,
            records_consumed=self.records_consumed,
            dead_lettered=self.dead_lettered,
            commit_failures=self.commit_failures,
            consumer_lag=dict(self.consumer_lag),
            tick_duration_seconds=self.tick_duration_seconds,
            render_duration_seconds=self.render_duration_seconds,
        )
