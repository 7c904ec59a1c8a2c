"""Snapshot → Prometheus metric families → text exposition 0.0.4 (with http.py, the prometheus_client home).

A tick evaluates the aggregator into an immutable `Snapshot`; `Exposition.render` turns it (and a
`TelemetrySnapshot`) into the bytes `/metrics` serves until the next tick. Nothing is updated per event
and nothing here touches live state: a series evicted from the aggregator is simply not in the next
snapshot, so it stops being exported.

The package, one job per module (the shape of prometheus_client: a collector per source of metrics,
the exposition format on its own):

- model.py: `Family`, `Block`, `SeriesLabels` — the families, as blocks sharing one label layout;
- text.py: the text renderer, byte-identical to ``generate_latest`` (and the number formatting);
- one module per metric source: self_metrics.py (sloguard's own, from one table), slo.py, latency.py,
  sloth.py (Sloth's recording-rule names);
- this module: the `SnapshotCollector` that puts the sources together, and `Exposition`.

The `SnapshotCollector` also yields the families as ordinary prometheus_client metric families (a custom
collector), and the tests check that ``generate_latest`` on them gives the renderer's bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import TypedDict, Unpack

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from sloguard import __version__
from sloguard.core.snapshot import SloSnapshot, Snapshot
from sloguard.export.latency import latency_families
from sloguard.export.model import Block, Family, MetricType, SeriesLabels, escape_label_value
from sloguard.export.self_metrics import Sources, self_families
from sloguard.export.sla import sla_families
from sloguard.export.slo import PERIOD, SloView, ViewBlocks, select_series, slo_families, view_blocks
from sloguard.export.sloth import sloth_families
from sloguard.export.text import (
    CONTENT_TYPE,
    Body,
    Renderer,
    format_values,
    quantile_label,
    render,
    render_chunks,
)
from sloguard.telemetry import TelemetrySnapshot

# Re-exported: their home moved to the modules above, and callers import them from here.
__all__ = [
    "CONTENT_TYPE",
    "PERIOD",
    "Block",
    "Body",
    "Exposition",
    "Family",
    "MetricType",
    "Options",
    "SeriesLabels",
    "SnapshotCollector",
    "escape_label_value",
    "format_values",
    "quantile_label",
    "render",
    "render_chunks",
    "select_series",
]


class Options(TypedDict, total=False):
    """`SnapshotCollector`'s keyword arguments, which `Exposition` passes on."""

    sloth_compat: bool
    top_k: Mapping[str, int] | None
    version: str


class SnapshotCollector(Collector):
    """A custom collector over the latest (`Snapshot`, `TelemetrySnapshot`) pair.

    `update` (once per tick) builds the metric families; `collect` (per scrape, if registered in a
    prometheus_client registry) yields them as prometheus_client metric families. `Exposition` renders
    the same families to text without going through ``generate_latest``. Replacing the families is a
    single assignment, so `collect` on another thread sees one tick or the next, never a mix.

    ``top_k`` maps SLO names to how many series to export (the highest 1h burn rates, plus every series
    with a firing tier); SLOs not in it export every series. ``sloth_compat`` adds Sloth's recording-rule
    names (``slo:sli_error:ratio_rate5m`` ...) so Sloth's Grafana dashboards work unchanged.
    """

    def __init__(
        self,
        *,
        sloth_compat: bool = False,
        top_k: Mapping[str, int] | None = None,
        version: str = __version__,
    ) -> None:
        top = dict(top_k or {})
        bad = {k: v for k, v in top.items() if v < 0}
        if bad:
            raise ValueError(f"top_k must be >= 0: {bad}")
        self.sloth_compat = sloth_compat
        self.top_k = top
        self.version = version
        self._families: tuple[Family, ...] = ()
        #: How many of `families` (the first) are the self-metrics; the rest is `rest`.
        self._self = 0
        #: The series labels of the last `update`, per SLO name and for latency (key ""): kept while
        #: the labels do not change, so the renderer can tell which rows are the same series.
        self._series: dict[str, SeriesLabels] = {}
        #: What the last `update`'s SLO, latency and SLA families were made of (the snapshot's parts),
        #: its views and those families (`rest`).
        self._inputs: tuple[object, ...] | None = None
        self._views: list[SloView] = []
        self._rest: tuple[Family, ...] = ()
        #: Per SLO name: the `SloSnapshot` of the last update, its view and its blocks (`view_blocks`),
        #: kept while the SLO's snapshot is the very same object (stage 2's `ViewCache` hands an SLO's
        #: back while nothing of it changed).
        self._per_slo: dict[str, tuple[SloSnapshot, SloView, ViewBlocks]] = {}

    @property
    def families(self) -> tuple[Family, ...]:
        """The families of the last `update`, in exposition order."""
        return self._families

    @property
    def rest(self) -> tuple[Family, ...]:
        """The families of the last `update` after the self-metrics (SLO, latency, Sloth, SLA): the very
        tuple of the update before when they were kept (see `update`)."""
        return self._rest

    def update(self, snapshot: Snapshot, telemetry: TelemetrySnapshot) -> None:
        """Build the families for a new tick (replaces the previous ones).

        The SLO, latency and SLA families are functions of the snapshot's `SloSnapshot` objects, its
        `LatencySnapshot` and its SLAs alone (immutable; ``now_ms`` and the counters are only in the
        self-metrics). When each of those is the very object of the previous update (stage 2's
        `ViewCache` hands the same objects back while nothing changed), the previous families and
        views are kept as they are (`rest`): only the self-metrics are made again."""
        inputs = (*snapshot.slos, snapshot.latency, *snapshot.slas)
        was = self._inputs
        if (
            was is not None
            and len(was) == len(inputs)
            and all(a is b for a, b in zip(was, inputs, strict=True))
        ):
            views = self._views
        else:
            views, self._rest = self._make_rest(snapshot)
            self._views, self._inputs = views, inputs
        selfs = tuple(self_families(Sources(snapshot, telemetry, views, self.version)))
        self._families = selfs + self._rest
        self._self = len(selfs)

    def _make_rest(self, snapshot: Snapshot) -> tuple[list[SloView], tuple[Family, ...]]:
        """The views of ``snapshot``'s SLOs and its families after the self-metrics."""
        before = self._series
        kept = self._per_slo
        per_slo: dict[str, tuple[SloSnapshot, SloView, ViewBlocks]] = {}
        for s in snapshot.slos:
            name = s.spec.name
            seen = kept.get(name)
            if seen is None or seen[0] is not s:
                # (a kept view's series are those `follow` would give: the same labels, same object)
                view = SloView(s, self.top_k.get(name), before.get(name))
                seen = (s, view, view_blocks(view))
            per_slo[name] = seen
        self._per_slo = per_slo
        views = [per_slo[s.spec.name][1] for s in snapshot.slos]
        series = {v.name: v.series for v in views}
        lat = snapshot.latency
        if lat is not None:
            series[""] = SeriesLabels.follow(before.get(""), lat.spec.group_by, lat.labels)
        rest = (
            *slo_families(views, [per_slo[v.name][2] for v in views]),
            *(latency_families(lat, series[""]) if lat is not None else ()),
            *(sloth_families(views, self.version) if self.sloth_compat else ()),
            *sla_families(snapshot.slas),
        )
        self._series = series
        return views, rest

    @property
    def self_metrics(self) -> tuple[Family, ...]:
        """The self-metrics families of the last `update` (the first of `families`)."""
        return self._families[: self._self]

    def collect(self) -> Iterator[Metric]:
        """The families as prometheus_client metrics (slow: one dict per sample; the renderer skips it)."""
        for f in self._families:
            base = f.name.removesuffix("_total") if f.type == "counter" else f.name
            metric = Metric(base, f.doc, f.type)
            for block in f.blocks:
                for labels, value in block.samples():
                    metric.add_sample(f.name, labels, value)
            yield metric


class Exposition:
    """Renders a snapshot to ``/metrics`` bytes, once per tick (options: those of `SnapshotCollector`).

    Owns a fresh `CollectorRegistry` with its `SnapshotCollector` registered (so ``generate_latest(
    exposition.registry)`` gives the same bytes, slowly), and renders with `render`. Rendering reads
    only the immutable snapshot: it may run in a worker thread.
    """

    def __init__(self, **options: Unpack[Options]) -> None:
        self.collector = SnapshotCollector(**options)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        self.renderer = Renderer()
        #: The `rest` families the last `render_body` rendered, and their body.
        self._rest: tuple[Family, ...] | None = None
        self._rest_body: Body | None = None
        self._lock = threading.Lock()

    def render(self, snapshot: Snapshot, telemetry: TelemetrySnapshot) -> bytes:
        """Update the collector with this tick's snapshot and return the exposition text."""
        self.collector.update(snapshot, telemetry)
        return render(self.collector.families)

    def render_chunks(self, snapshot: Snapshot, telemetry: TelemetrySnapshot) -> list[bytes]:
        """`render` as chunks (what the daemon serves: never one copy of the whole body)."""
        self.collector.update(snapshot, telemetry)
        return render_chunks(self.collector.families)

    def render_body(self, snapshot: Snapshot, telemetry: TelemetrySnapshot, *, gzip: bool = False) -> Body:
        """`render_chunks` and its gzip encoding, both reusing the pieces of the previous `render_body`
        whose numbers did not change (`Renderer`): what the daemon serves. ``gzip``: gzip it now (else a
        small body's pieces are gzipped when a scrape asks for it).

        The self-metrics are rendered every time, as one piece; the families after them (`rest`) only
        when they are not the very families of the last `render_body` (`SnapshotCollector.update`
        keeps them while the snapshot's SLOs, latency and SLAs are the same objects): else the last
        body's pieces of them are served again, with their gzip members once made. A stage-2 tick
        with nothing applied since costs the self-metrics' render only (~0.1 s of a 14k-series body
        before)."""
        with self._lock:
            c = self.collector
            c.update(snapshot, telemetry)
            rest = c.rest
            body = self._rest_body
            if body is None or rest is not self._rest:
                body = self.renderer.render(rest, gzip=gzip)
                self._rest, self._rest_body = rest, body
            return body.after(render(c.self_metrics), gzip=gzip)
