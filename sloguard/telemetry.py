"""Self-metrics of the daemon, as plain values: the app updates them, the exporter reads a copy.

Nothing here imports prometheus_client: the exporter turns a `TelemetrySnapshot` into metric families
(its table of self-metrics is sloguard/export/self_metrics.py). The fields are declared once, in
`TelemetryValues`; the live `Telemetry` and the per-tick `TelemetrySnapshot` both derive from it and
differ only in how they hold the invalid-event counts.
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass, field, fields
from typing import Any

from sloguard.core.model import Rejections


@dataclass(slots=True)
class TelemetryValues:
    """Counters and gauges about sloguard itself (every one of them is exported).

    ``consumer_lag`` maps ``(topic, partition)`` to messages behind the high watermark.
    """

    events_processed: int = 0
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
    #: The HTTP listener's `HttpServer.connection_counts` (by outcome) and `open_connections()` (by state).
    http_connections: dict[str, int] = field(default_factory=dict)
    http_open_connections: dict[str, int] = field(default_factory=dict)
    #: Scaled-out mode (docs/scaling.md): "partial" or "merge"; "" in the single process, whose
    #: exposition leaves the pipeline's families out.
    stage: str = ""
    #: Stage 1: partial records and ranges produced.
    partials_produced: int = 0
    partial_ranges: int = 0
    #: Stage 2: partial records applied, dropped as duplicates, refused as conflicts or for another SLO
    #: file or partition layout.
    partials_applied: int = 0
    partials_duplicate: int = 0
    partials_conflict: int = 0
    partials_refused: int = 0
    #: Stage 2: wall time of the last restore of a partition's checkpoint, partitions and series owned.
    checkpoint_restore_seconds: float = 0.0
    partitions_owned: int = 0
    series_owned: int = 0
    #: The longest the event loop was held by one tick (its on-loop part), and the longest interval
    #: between two ticks' starts, over the ticks since the previous /metrics exposition was built.
    tick_loop_blocked_seconds: float = 0.0
    tick_interval_seconds: float = 0.0


@dataclass(slots=True)
class TelemetrySnapshot(TelemetryValues):
    """The telemetry at one tick: a copy the exporter reads (nothing writes to it after `snapshot`).

    ``events_invalid`` maps each rejection reason to its count.
    """

    events_invalid: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Telemetry(TelemetryValues):
    """Mutable counters owned by the composition root (single-threaded: the asyncio loop)."""

    invalid: Rejections = field(default_factory=Rejections)

    def snapshot(self) -> TelemetrySnapshot:
        """A copy for the exporter (same values; lag and invalid counts as new plain dicts)."""
        values = {f.name: getattr(self, f.name) for f in fields(TelemetryValues)}
        values["consumer_lag"] = dict(self.consumer_lag)
        return TelemetrySnapshot(events_invalid=dict(self.invalid.counts), **values)


class GcPauses:
    """How long Python's garbage collector held the process since `install` (`gc.callbacks`): a collection
    runs in whatever thread allocated when it came due, a tick's capture included, so the daemon's
    slow-tick log line says how much of a tick it was. ``full``: collections of the oldest generation
    (those scan every tracked object not frozen)."""

    __slots__ = ("_started", "full", "seconds")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started: float | None = None

    def install(self) -> None:
        gc.callbacks.append(self._observe)

    def uninstall(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._observe)

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None
            self.full += info.get("generation") == 2
