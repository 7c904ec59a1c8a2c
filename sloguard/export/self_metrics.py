"""Self-metric source: sloguard's own counters and gauges, from one table.

Each `SelfMetric` is one family: its name, type and help, and where its value comes from — a
`TelemetrySnapshot` field (`Field`), the snapshot itself, or a count per SLO or of the latency state.
Adding a self-metric is one entry in `SELF_METRICS` (plus its field in `sloguard.telemetry`, if new).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sloguard.core.snapshot import LatencySnapshot, Snapshot
from sloguard.export.model import Block, Family, MetricType, SeriesLabels, block, one
from sloguard.export.slo import SloView, per_slo
from sloguard.telemetry import TelemetrySnapshot


@dataclass(frozen=True, slots=True)
class Sources:
    """What self-metrics are read from, at one tick."""

    snapshot: Snapshot
    telemetry: TelemetrySnapshot
    views: Sequence[SloView]
    version: str


#: Reads a family's samples from the sources; ``None`` leaves the family out of this tick.
Reader = Callable[[Sources], Block | None]


@dataclass(frozen=True, slots=True)
class Field:
    """A `TelemetrySnapshot` field: a number (one sample), or a dict whose keys are the ``labels``.

    A dict is exported in key order; a key that is a tuple gives one label per part.
    """

    name: str
    labels: tuple[str, ...] = ()

    def __call__(self, src: Sources) -> Block:
        value: Any = getattr(src.telemetry, self.name)
        if not self.labels:
            return one(value)
        items = sorted(value.items())
        keys = [k if isinstance(k, tuple) else (k,) for k, _ in items]
        series = SeriesLabels(self.labels, [tuple(map(str, k)) for k in keys])
        return block(series, (), [v for _, v in items])


@dataclass(frozen=True, slots=True)
class Staged(Field):
    """A number of one stage of the scaled-out mode (``stage``; "" for the stage's name itself, as an
    info sample); the family is left out in any other mode, so the single process's output is as it was."""

    stage: str = ""

    def __call__(self, src: Sources) -> Block | None:  # type: ignore[override]
        current = src.telemetry.stage
        if not current or (self.stage and current != self.stage):
            return None
        if not self.stage:
            return one(1.0, (("stage", current),))
        return one(getattr(src.telemetry, self.name))


def _per_slo(count: Callable[[SloView], int]) -> Reader:
    """One sample per SLO, labelled ``slo``."""
    return lambda src: block(per_slo(src.views), (), [count(v) for v in src.views])


def _latency(count: Callable[[LatencySnapshot], int]) -> Reader:
    """One sample about the latency state; absent when no latency is configured."""
    return lambda src: None if src.snapshot.latency is None else one(count(src.snapshot.latency))


@dataclass(frozen=True, slots=True)
class SelfMetric:
    """One self-metric family: ``name`` as exposed (counters end in ``_total``), type, help, source."""

    name: str
    type: MetricType
    doc: str
    field: Reader


#: Every self-metric, in exposition order.
SELF_METRICS: tuple[SelfMetric, ...] = (
    SelfMetric("sloguard_build_info", "gauge", "sloguard build; always 1.",
               lambda src: one(1.0, (("version", src.version),))),
    SelfMetric("sloguard_snapshot_timestamp_seconds", "gauge",
               "Evaluation time (now) of the exported snapshot, in Unix seconds.",
               lambda src: one(src.snapshot.now_ms / 1000)),
    SelfMetric("sloguard_events_processed_total", "counter", "Valid events absorbed by the aggregator.",
               Field("events_processed")),
    SelfMetric("sloguard_events_late_total", "counter",
               "Events received more than late_after_seconds behind the clock (still absorbed).",
               Field("events_late")),
    SelfMetric("sloguard_events_future_total", "counter",
               "Events stamped beyond now plus the allowed skew (refused; also invalid).",
               Field("events_future")),
    SelfMetric("sloguard_records_consumed_total", "counter",
               "Records consumed from the source (a record may hold many events).",
               Field("records_consumed")),
    SelfMetric("sloguard_dead_letter_total", "counter", "Rejected records sent to the dead-letter topic.",
               Field("dead_lettered")),
    SelfMetric("sloguard_dead_letter_dropped_total", "counter",
               "Rejected records too large for the dead-letter topic (skipped and logged).",
               Field("dead_letter_dropped")),
    SelfMetric("sloguard_commit_failures_total", "counter", "Failed offset commits.",
               Field("commit_failures")),
    SelfMetric("sloguard_checkpoints_total", "counter", "Checkpoints written.",
               Field("checkpoints_written")),
    SelfMetric("sloguard_checkpoint_failures_total", "counter", "Checkpoint writes that failed.",
               Field("checkpoint_failures")),
    SelfMetric("sloguard_config_reloads_total", "counter", "SLO file reloads applied.",
               Field("reloads")),
    SelfMetric("sloguard_config_reload_failures_total", "counter", "SLO file reloads refused.",
               Field("reload_failures")),
    SelfMetric("sloguard_events_invalid_total", "counter", "Rejected input events, by reason.",
               Field("events_invalid", ("reason",))),
    SelfMetric("sloguard_consumer_lag", "gauge", "Messages behind the high watermark, per partition.",
               Field("consumer_lag", ("topic", "partition"))),
    SelfMetric("sloguard_tick_duration_seconds", "gauge",
               "Wall time of the last evaluation (advance and snapshot).",
               Field("tick_duration_seconds")),
    SelfMetric("sloguard_config_last_reload_successful", "gauge",
               "1 if the last SLO file (re)load was applied, 0 if it was refused (the previous config runs).",
               Field("last_reload_ok")),
    SelfMetric("sloguard_checkpoint_last_success_timestamp_seconds", "gauge",
               "Unix time of the last successful checkpoint (0: none yet, or checkpoints disabled).",
               Field("checkpoint_last_success_seconds")),
    SelfMetric("sloguard_checkpoint_duration_seconds", "gauge",
               "Wall time of the last successful checkpoint (export, encode, write, fsync).",
               Field("checkpoint_duration_seconds")),
    SelfMetric("sloguard_checkpoint_bytes", "gauge", "Size of the last checkpoint written.",
               Field("checkpoint_bytes")),
    SelfMetric("sloguard_render_duration_seconds", "gauge",
               "Wall time of the previous rendering of /metrics.",
               Field("render_duration_seconds")),
    SelfMetric("sloguard_series", "gauge", "Series held in state per SLO (capped by max_series).",
               _per_slo(lambda v: v.s.series)),
    SelfMetric("sloguard_exported_series", "gauge", "SLO series exported on /metrics (after top_k).",
               _per_slo(lambda v: len(v.series))),
    SelfMetric("sloguard_overflow_events_total", "counter",
               "Events that went to an SLO's __overflow__ series.",
               _per_slo(lambda v: v.s.overflow_events)),
    SelfMetric("sloguard_too_old_events_total", "counter", "Events older than an SLO retains, not counted.",
               _per_slo(lambda v: v.s.too_old_events)),
    SelfMetric("sloguard_evicted_series_total", "counter",
               "Series evicted after series_ttl without events (their counts moved to __overflow__).",
               _per_slo(lambda v: v.s.evicted_series)),
    SelfMetric("sloguard_excluded_events_total", "counter",
               "Events left out of an SLO by a maintenance window (exclusions:; docs/exclusions.md).",
               _per_slo(lambda v: v.s.excluded_events)),
    SelfMetric("sloguard_latency_groups", "gauge", "Latency groups held in state.",
               _latency(lambda lat: len(lat.labels))),
    SelfMetric("sloguard_latency_overflow_events_total", "counter",
               "Events that went to the __overflow__ latency group.",
               _latency(lambda lat: lat.overflow_events)),
    SelfMetric("sloguard_latency_too_old_events_total", "counter",
               "Events older than the latency windows retain, not recorded.",
               _latency(lambda lat: lat.too_old_events)),
    SelfMetric("sloguard_http_connections_total", "counter",
               "HTTP connections by outcome: accepted; of those, evicted (closed at the connection cap: "
               "the one waiting longest for a request) and throttled (503: too many responses in flight); "
               "rejected (closed unanswered: at the cap, all responding).",
               Field("http_connections", ("outcome",))),
    SelfMetric("sloguard_http_open_connections", "gauge",
               "Open HTTP connections by state: waiting (for a request head), responding, lingering "
               "(closing).",
               Field("http_open_connections", ("state",))),
    # The two stages (docs/scaling.md); absent from the single process's exposition.
    SelfMetric("sloguard_stage_info", "gauge", "The stage this process runs (partial or merge); always 1.",
               Staged("stage")),
    SelfMetric("sloguard_partials_produced_total", "counter",
               "Stage 1: partial records produced (one or more per range and partials partition).",
               Staged("partials_produced", stage="partial")),
    SelfMetric("sloguard_partial_ranges_total", "counter",
               "Stage 1: input ranges summarised and produced.",
               Staged("partial_ranges", stage="partial")),
    SelfMetric("sloguard_partials_applied_total", "counter",
               "Stage 2: partial records applied to the state.",
               Staged("partials_applied", stage="merge")),
    SelfMetric("sloguard_partials_duplicate_total", "counter",
               "Stage 2: partial records of ranges already applied, dropped.",
               Staged("partials_duplicate", stage="merge")),
    SelfMetric("sloguard_partials_conflict_total", "counter",
               "Stage 2: partial records overlapping an applied range without being it, refused.",
               Staged("partials_conflict", stage="merge")),
    SelfMetric("sloguard_partials_refused_total", "counter",
               "Stage 2: partial records of another SLO file or partition layout, refused.",
               Staged("partials_refused", stage="merge")),
    SelfMetric("sloguard_checkpoint_restore_seconds", "gauge",
               "Stage 2: wall time of the last restore of a partition's checkpoint.",
               Staged("checkpoint_restore_seconds", stage="merge")),
    SelfMetric("sloguard_partitions_owned", "gauge", "Stage 2: partials partitions owned.",
               Staged("partitions_owned", stage="merge")),
    SelfMetric("sloguard_series_owned", "gauge",
               "Stage 2: SLO series and latency groups this process owns and exports.",
               Staged("series_owned", stage="merge")),
    SelfMetric("sloguard_tick_loop_blocked_seconds", "gauge",
               "Longest time one tick held the event loop (consumption waits meanwhile), over the ticks "
               "since the previous exposition.",
               Field("tick_loop_blocked_seconds")),
    SelfMetric("sloguard_tick_interval_seconds", "gauge",
               "Longest interval between the starts of two ticks (1 s when on time), over the ticks since "
               "the previous exposition.",
               Field("tick_interval_seconds")),
)  # fmt: skip


def self_families(src: Sources) -> Iterator[Family]:
    """The families of `SELF_METRICS` that have samples at this tick."""
    for m in SELF_METRICS:
        samples = m.field(src)
        if samples is not None:
            yield Family(m.name, m.doc, m.type, (samples,))
