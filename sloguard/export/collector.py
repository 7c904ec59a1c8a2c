"""Snapshot → Prometheus metric families → text exposition 0.0.4 (with http.py, the prometheus_client home).

A tick evaluates the aggregator into an immutable `Snapshot`; `Exposition.render` turns it (and a
`TelemetrySnapshot`) into the bytes `/metrics` serves until the next tick. Nothing is updated per event
and nothing here touches live state: a series evicted from the aggregator is simply not in the next
snapshot, so it stops being exported.

Why a hand-written renderer: prometheus_client's ``generate_latest`` builds one ``Sample`` (with a label
dict) per sample and formats each one separately, about 4 µs a sample; at 10k SLO series that is seconds
per render. Here the families are first described as `Block`s — one label layout and one value column
per block, label values escaped once per tick — and rendered with one f-string per sample. The
`SnapshotCollector` also yields the very same families as ordinary prometheus_client metric families
(a custom collector), and the tests check that ``generate_latest`` on them gives byte-identical output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from sloguard import __version__
from sloguard.core.snapshot import LatencySnapshot, SloSnapshot, Snapshot
from sloguard.core.spec import DAY, HOUR, format_duration
from sloguard.telemetry import TelemetrySnapshot

#: Content type of what `render` produces (the classic text format; no OpenMetrics negotiation).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

F64 = npt.NDArray[np.float64]
Rows = npt.NDArray[np.intp]
MetricType = Literal["gauge", "counter", "summary"]

#: Window label value of the rows that cover the SLO period (its actual length is in
#: ``sloguard_slo_period_seconds``).
PERIOD = "period"

# prometheus_client's float formatting (untyped upstream): Go's spelling, e.g. 1.2e+06, +Inf, NaN.
_float_to_go = cast("Callable[[float], str]", floatToGoString)


def escape_label_value(value: str) -> str:
    """Text-format escaping of a label value: backslash, newline and double quote.

    Backslashes first, so the backslashes the other two escapes add are not doubled (the same order
    prometheus_client uses).
    """
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def quantile_label(percentile: float) -> str:
    """Percentile → the ``quantile`` label value: 50 → "0.5", 99.9 → "0.999" (not 0.9990000000000001)."""
    return _float_to_go(float(f"{percentile / 100:.12g}"))


def format_values(values: F64) -> list[str]:
    """Sample values as prometheus_client writes them (``floatToGoString``), for a whole column.

    ``repr`` is what ``floatToGoString`` returns for every finite value below 1e6 in magnitude; only the
    rest (NaN, ±Inf, and large values, which Go writes with an exponent) go through the slow function.
    """
    floats: list[float] = values.tolist()
    out = list(map(repr, floats))
    with np.errstate(invalid="ignore"):
        odd = np.flatnonzero(~(np.abs(values) < 1e6))
    for i in odd.tolist():
        out[i] = _float_to_go(floats[i])
    return out


class SeriesLabels:
    """Label values of a set of series (e.g. the exported columns of one SLO), escaped once per tick.

    Rendering needs, per series, the text ``name1="v1",name2="v2"`` of every run of label names that are
    adjacent once a family's label names are sorted; those strings are built once and shared by all the
    blocks (windows, tiers, ...) that use the same run.
    """

    __slots__ = ("_pairs", "_runs", "names", "values")

    def __init__(self, names: tuple[str, ...], values: Sequence[tuple[str, ...]]) -> None:
        self.names = names
        self.values = values
        self._pairs: list[list[str]] | None = None
        self._runs: dict[tuple[int, ...], list[str]] = {}

    def __len__(self) -> int:
        return len(self.values)

    def run(self, dims: tuple[int, ...]) -> list[str]:
        """Per series: ``names[d]="value"`` for each ``d`` in ``dims``, joined by commas."""
        cached = self._runs.get(dims)
        if cached is not None:
            return cached
        if self._pairs is None:
            columns = list(zip(*self.values, strict=True)) if self.values else [() for _ in self.names]
            self._pairs = [
                [f'{name}="{escape_label_value(v)}"' for v in col]
                for name, col in zip(self.names, columns, strict=True)
            ]
        pairs = self._pairs
        if len(dims) == 1:
            run = pairs[dims[0]]
        else:
            run = list(map(",".join, zip(*(pairs[d] for d in dims), strict=True)))
        self._runs[dims] = run
        return run


#: One series without labels of its own (process-wide metrics; labels come from a block's ``const``).
_ONE = SeriesLabels((), ((),))


@dataclass(frozen=True, slots=True)
class Block:
    """Samples of one family that share their label names.

    One sample per series of ``series`` — or only for the series listed in ``rows``, in that order — with
    the labels of that series plus ``const``; ``values`` has one entry per sample.
    """

    series: SeriesLabels
    const: tuple[tuple[str, str], ...]
    values: F64
    rows: Rows | None = None

    def samples(self) -> Iterator[tuple[dict[str, str], float]]:
        """(labels, value) per sample: the slow, obvious spelling, for the prometheus_client path."""
        const = dict(self.const)
        names = self.series.names
        rows: Sequence[int] = range(len(self.series)) if self.rows is None else self.rows.tolist()
        values: list[float] = self.values.tolist()
        for j, v in zip(rows, values, strict=True):
            yield {**dict(zip(names, self.series.values[j], strict=True)), **const}, v


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: ``name`` as exposed (counters include ``_total``), help text, type, samples."""

    name: str
    doc: str
    type: MetricType
    blocks: tuple[Block, ...]


def _block(
    series: SeriesLabels,
    const: tuple[tuple[str, str], ...],
    values: npt.NDArray[Any],
    rows: Rows | None = None,
) -> Block:
    if rows is not None and len(rows) == len(series):
        rows = None  # every series has a sample: skip the indirection
    return Block(series, const, np.asarray(values, np.float64), rows)


def _scalar(name: str, doc: str, value: float, typ: MetricType = "gauge", **labels: str) -> Family:
    return Family(name, doc, typ, (Block(_ONE, tuple(labels.items()), np.array([value], np.float64)),))


def _present(values: F64) -> Rows | None:
    """Rows where ``values`` is not NaN (NaN means "no value": the sample is left out, not written NaN)."""
    keep = ~np.isnan(values)
    return None if keep.all() else np.flatnonzero(keep)


class _SloView:
    """The exported columns of one SLO snapshot (all of them, or the top-k selection)."""

    __slots__ = ("cols", "name", "s", "series")

    def __init__(self, s: SloSnapshot, top_k: int | None) -> None:
        self.s = s
        self.name = s.spec.name
        self.cols = select_series(s, top_k)
        labels = s.labels if self.cols is None else [s.labels[j] for j in self.cols.tolist()]
        self.series = SeriesLabels(s.spec.group_by, labels)

    def take(self, a: npt.NDArray[Any]) -> F64:
        """The exported columns of ``a`` (last axis = series), as float64."""
        picked = a if self.cols is None else a[..., self.cols]
        return picked.astype(np.float64, copy=False)


def select_series(s: SloSnapshot, top_k: int | None) -> Rows | None:
    """Columns of ``s`` to export: ``None`` (all), or the ``top_k`` series with the highest 1h burn rate
    plus every series with a firing tier, in state order.

    Ties keep the older series (a stable sort on the negated burn rate), so a tie does not make the
    exported set flicker between ticks.
    """
    if top_k is None or top_k >= s.series:
        return None
    burn = s.burn_rate[s.window_index(HOUR)]
    keep = np.zeros(s.series, np.bool_)
    keep[np.argsort(-burn, kind="stable")[:top_k]] = True
    keep |= s.firing.any(axis=0)
    return np.flatnonzero(keep)


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

    @property
    def families(self) -> tuple[Family, ...]:
        """The families of the last `update`, in exposition order."""
        return self._families

    def update(self, snapshot: Snapshot, telemetry: TelemetrySnapshot) -> None:
        """Build the families for a new tick (replaces the previous ones)."""
        views = [_SloView(s, self.top_k.get(s.spec.name)) for s in snapshot.slos]
        families = [
            *self._self_families(snapshot, telemetry, views),
            *_slo_families(views),
            *(_latency_families(snapshot.latency) if snapshot.latency is not None else ()),
            *(_sloth_families(views, self.version) if self.sloth_compat else ()),
        ]
        self._families = tuple(families)

    def collect(self) -> Iterator[Metric]:
        """The families as prometheus_client metrics (slow: one dict per sample; the renderer skips it)."""
        for f in self._families:
            base = f.name.removesuffix("_total") if f.type == "counter" else f.name
            metric = Metric(base, f.doc, f.type)
            for block in f.blocks:
                for labels, value in block.samples():
                    metric.add_sample(f.name, labels, value)
            yield metric

    def _self_families(
        self, snapshot: Snapshot, t: TelemetrySnapshot, views: list[_SloView]
    ) -> Iterator[Family]:
        yield _scalar("sloguard_build_info", "sloguard build; always 1.", 1.0, version=self.version)
        yield _scalar(
            "sloguard_snapshot_timestamp_seconds",
            "Evaluation time (now) of the exported snapshot, in Unix seconds.",
            snapshot.now_ms / 1000,
        )
        counters = (
            (
                "sloguard_events_processed_total",
                "Valid events absorbed by the aggregator.",
                t.events_processed,
            ),
            (
                "sloguard_events_late_total",
                "Events received more than late_after_seconds behind the clock (still absorbed).",
                t.events_late,
            ),
            (
                "sloguard_events_future_total",
                "Events stamped beyond now plus the allowed skew (refused; also invalid).",
                t.events_future,
            ),
            (
                "sloguard_records_consumed_total",
                "Records consumed from the source (a record may hold many events).",
                t.records_consumed,
            ),
            (
                "sloguard_dead_letter_total",
                "Rejected records sent to the dead-letter topic.",
                t.dead_lettered,
            ),
            (
                "sloguard_dead_letter_dropped_total",
                "Rejected records too large for the dead-letter topic (skipped and logged).",
                t.dead_letter_dropped,
            ),
            ("sloguard_commit_failures_total", "Failed offset commits.", t.commit_failures),
            ("sloguard_checkpoints_total", "Checkpoints written.", t.checkpoints_written),
            ("sloguard_checkpoint_failures_total", "Checkpoint writes that failed.", t.checkpoint_failures),
            ("sloguard_config_reloads_total", "SLO file reloads applied.", t.reloads),
            ("sloguard_config_reload_failures_total", "SLO file reloads refused.", t.reload_failures),
        )
        for name, doc, value in counters:
            yield _scalar(name, doc, value, "counter")
        reasons = sorted(t.events_invalid)
        yield Family(
            "sloguard_events_invalid_total",
            "Rejected input events, by reason.",
            "counter",
            (
                _block(
                    SeriesLabels(("reason",), [(r,) for r in reasons]),
                    (),
                    np.array([t.events_invalid[r] for r in reasons], np.float64),
                ),
            ),
        )
        lag = sorted(t.consumer_lag.items())
        yield Family(
            "sloguard_consumer_lag",
            "Messages behind the high watermark, per partition.",
            "gauge",
            (
                _block(
                    SeriesLabels(("topic", "partition"), [(topic, str(p)) for (topic, p), _ in lag]),
                    (),
                    np.array([v for _, v in lag], np.float64),
                ),
            ),
        )
        yield _scalar(
            "sloguard_tick_duration_seconds",
            "Wall time of the last evaluation (advance and snapshot).",
            t.tick_duration_seconds,
        )
        yield _scalar(
            "sloguard_config_last_reload_successful",
            "1 if the last SLO file (re)load was applied, 0 if it was refused (the previous config runs).",
            float(t.last_reload_ok),
        )
        yield _scalar(
            "sloguard_checkpoint_last_success_timestamp_seconds",
            "Unix time of the last successful checkpoint (0: none yet, or checkpoints disabled).",
            t.checkpoint_last_success_seconds,
        )
        yield _scalar(
            "sloguard_checkpoint_duration_seconds",
            "Wall time of the last successful checkpoint (export, encode, write, fsync).",
            t.checkpoint_duration_seconds,
        )
        yield _scalar("sloguard_checkpoint_bytes", "Size of the last checkpoint written.", t.checkpoint_bytes)
        yield _scalar(
            "sloguard_render_duration_seconds",
            "Wall time of the previous rendering of /metrics.",
            t.render_duration_seconds,
        )
        per_slo = SeriesLabels(("slo",), [(v.name,) for v in views])
        per_slo_families: tuple[tuple[str, str, MetricType, list[int]], ...] = (
            (
                "sloguard_series",
                "Series held in state per SLO (capped by max_series).",
                "gauge",
                [v.s.series for v in views],
            ),
            (
                "sloguard_exported_series",
                "SLO series exported on /metrics (after top_k).",
                "gauge",
                [len(v.series) for v in views],
            ),
            (
                "sloguard_overflow_events_total",
                "Events that went to an SLO's __overflow__ series.",
                "counter",
                [v.s.overflow_events for v in views],
            ),
            (
                "sloguard_too_old_events_total",
                "Events older than an SLO retains, not counted.",
                "counter",
                [v.s.too_old_events for v in views],
            ),
            (
                "sloguard_evicted_series_total",
                "Series evicted after series_ttl without events (their counts moved to __overflow__).",
                "counter",
                [v.s.evicted_series for v in views],
            ),
        )
        for name, doc, typ, values in per_slo_families:
            yield Family(name, doc, typ, (_block(per_slo, (), np.array(values, np.float64)),))
        lat = snapshot.latency
        if lat is not None:
            yield _scalar("sloguard_latency_groups", "Latency groups held in state.", len(lat.labels))
            yield _scalar(
                "sloguard_latency_overflow_events_total",
                "Events that went to the __overflow__ latency group.",
                lat.overflow_events,
                "counter",
            )
            yield _scalar(
                "sloguard_latency_too_old_events_total",
                "Events older than the latency windows retain, not recorded.",
                lat.too_old_events,
                "counter",
            )


def _slo_families(views: list[_SloView]) -> Iterator[Family]:
    objective = SeriesLabels(("slo",), [(v.name,) for v in views])
    yield Family(
        "sloguard_slo_objective_ratio",
        "SLO objective: the fraction of events that must be good.",
        "gauge",
        (_block(objective, (), np.array([float(v.s.spec.objective) for v in views], np.float64)),),
    )
    # What each SLO is about, for joins (`* on (slo) group_left (service) sloguard_slo_info`): the SLO
    # series carry only slo and their group labels.
    info = SeriesLabels(
        ("slo", "service", "sli", "period"),
        [(v.name, v.s.spec.service, v.s.spec.sli.kind, v.s.spec.period.describe()) for v in views],
    )
    yield Family(
        "sloguard_slo_info",
        "SLO metadata; always 1.",
        "gauge",
        (_block(info, (), np.ones(len(views), np.float64)),),
    )
    yield Family(
        "sloguard_slo_period_seconds",
        "Nominal length of the SLO period (a calendar month counts 30 days).",
        "gauge",
        (_block(objective, (), np.array([v.s.spec.period.nominal_seconds for v in views], np.float64)),),
    )

    def windowed(
        columns: Callable[[SloSnapshot], tuple[npt.NDArray[Any], npt.NDArray[Any]]],
    ) -> tuple[Block, ...]:
        blocks = []
        for v in views:
            by_window, period = columns(v.s)
            rows = v.take(by_window)
            for i, w in enumerate(v.s.windows):
                blocks.append(_block(v.series, (("slo", v.name), ("window", format_duration(w))), rows[i]))
            blocks.append(_block(v.series, (("slo", v.name), ("window", PERIOD)), v.take(period)))
        return tuple(blocks)

    yield Family(
        "sloguard_slo_events",
        "Events inside the window.",
        "gauge",
        windowed(lambda s: (s.total, s.period_total)),
    )
    yield Family(
        "sloguard_slo_bad_events",
        "Bad events inside the window.",
        "gauge",
        windowed(lambda s: (s.bad, s.period_bad)),
    )
    yield Family(
        "sloguard_slo_error_ratio",
        "Bad events / events inside the window (0 when empty).",
        "gauge",
        windowed(lambda s: (s.error_ratio, s.period_error_ratio)),
    )
    yield Family(
        "sloguard_slo_burn_rate",
        "Error ratio / error budget (1 - objective) inside the window; 1 spends the budget in one period.",
        "gauge",
        windowed(lambda s: (s.burn_rate, s.period_burn_rate)),
    )

    def per_series(
        column: Callable[[SloSnapshot], npt.NDArray[Any]], drop_nan: bool = False
    ) -> tuple[Block, ...]:
        blocks = []
        for v in views:
            values = v.take(column(v.s))
            rows = _present(values) if drop_nan else None
            if rows is not None:
                values = values[rows]
            blocks.append(_block(v.series, (("slo", v.name),), values, rows))
        return tuple(blocks)

    yield Family(
        "sloguard_slo_error_budget_remaining_ratio",
        "Fraction of the period's error budget left (negative when overspent).",
        "gauge",
        per_series(lambda s: s.budget_remaining),
    )
    yield Family(
        "sloguard_slo_error_budget_consumed_ratio",
        "Fraction of the period's error budget spent (1 - remaining).",
        "gauge",
        per_series(lambda s: s.budget_consumed),
    )
    yield Family(
        "sloguard_slo_error_budget_exhaustion_seconds",
        "Time until the budget is spent at the current 1h burn rate; absent when not burning.",
        "gauge",
        per_series(lambda s: s.exhaustion_eta, drop_nan=True),
    )
    thresholds = []
    firing = []
    for v in views:
        s = v.s
        fires = v.take(s.firing)
        for k, tier in enumerate(s.spec.tiers):
            labels = (
                ("slo", v.name),
                ("severity", tier.severity.value),
                ("long_window", format_duration(tier.long_window)),
                ("short_window", format_duration(tier.short_window)),
            )
            thresholds.append(_block(_ONE, labels, np.array([float(tier.factor)], np.float64)))
            firing.append(_block(v.series, labels, fires[k]))
    yield Family(
        "sloguard_slo_burn_rate_threshold",
        "Burn rate above which a tier fires (over both its long and its short window).",
        "gauge",
        tuple(thresholds),
    )
    yield Family(
        "sloguard_slo_alert_firing",
        "1 when the tier's burn rate exceeds its threshold over both windows (and min_events), else 0.",
        "gauge",
        tuple(firing),
    )


def _latency_families(lat: LatencySnapshot) -> Iterator[Family]:
    series = SeriesLabels(lat.spec.group_by, lat.labels)
    quantiles = [quantile_label(p) for p in lat.spec.percentiles]
    values: list[Block] = []
    counts: list[Block] = []
    for w in lat.windows:
        window = format_duration(w.window)
        # No events in the window: no percentile (absent, rather than a made-up 0 s).
        has = np.flatnonzero(w.count > 0)
        seconds = w.percentiles_ms[has] / 1000.0
        for q, quantile in enumerate(quantiles):
            values.append(_block(series, (("window", window), ("quantile", quantile)), seconds[:, q], has))
        counts.append(_block(series, (("window", window),), w.count))
    # Typed summary, not gauge: `promtool check metrics` rejects a "quantile" label on anything else, and
    # PromQL ignores types. There are no _sum/_count samples: the windows are not cumulative.
    yield Family(
        "sloguard_latency_seconds",
        "Latency percentiles over the window (HDR histogram, within 1%); absent when the window is empty.",
        "summary",
        tuple(values),
    )
    yield Family("sloguard_latency_events", "Events inside the latency window.", "gauge", tuple(counts))


def _sloth_families(views: list[_SloView], version: str) -> Iterator[Family]:
    """Sloth's recording-rule names and labels (github.com/slok/sloth, its generated rules), so Sloth's
    dashboard (grafana.com 14348) reads sloguard. Values are exact here, where Sloth's period ratio
    averages 5-minute ratios."""
    rates: dict[int, list[Block]] = {}
    objective: list[Block] = []
    budget: list[Block] = []
    days: list[Block] = []
    current: list[Block] = []
    period_burn: list[Block] = []
    remaining: list[Block] = []
    info: list[Block] = []
    for v in views:
        spec = v.s.spec
        ids = (
            ("sloth_id", f"{spec.service}-{spec.name}"),
            ("sloth_service", spec.service),
            ("sloth_slo", spec.name),
        )
        period_s = spec.period.nominal_seconds
        period = format_duration(period_s)
        er = v.take(v.s.error_ratio)
        for i, w in enumerate(v.s.windows):
            if w != period_s:  # a window as long as the period: the period row says it
                rates.setdefault(w, []).append(
                    _block(v.series, (*ids, ("sloth_window", format_duration(w))), er[i])
                )
        rates.setdefault(period_s, []).append(
            _block(v.series, (*ids, ("sloth_window", period)), v.take(v.s.period_error_ratio))
        )
        objective.append(_block(_ONE, ids, np.array([float(spec.objective)], np.float64)))
        budget.append(_block(_ONE, ids, np.array([float(spec.error_budget)], np.float64)))
        days.append(_block(_ONE, ids, np.array([period_s / DAY], np.float64)))
        # Sloth derives these with `/ on(...) group_left`, which keeps the left side's sloth_window.
        current.append(
            _block(v.series, (*ids, ("sloth_window", "5m")), v.take(v.s.burn_rate[v.s.window_index(300)]))
        )
        period_burn.append(_block(v.series, (*ids, ("sloth_window", period)), v.take(v.s.period_burn_rate)))
        remaining.append(_block(v.series, (*ids, ("sloth_window", period)), v.take(v.s.budget_remaining)))
        info.append(
            _block(
                _ONE,
                (*ids, ("sloth_mode", "sloguard"), ("sloth_spec", "sloguard/v1"), ("sloth_version", version)),
                np.array([1.0]),
            )
        )
    for w in sorted(rates):
        yield Family(
            f"slo:sli_error:ratio_rate{format_duration(w)}",
            "Sloth-compatible: error ratio over the window (sloth_window).",
            "gauge",
            tuple(rates[w]),
        )
    yield Family("slo:objective:ratio", "Sloth-compatible: SLO objective.", "gauge", tuple(objective))
    yield Family("slo:error_budget:ratio", "Sloth-compatible: 1 - objective.", "gauge", tuple(budget))
    yield Family("slo:time_period:days", "Sloth-compatible: SLO period in days.", "gauge", tuple(days))
    yield Family(
        "slo:current_burn_rate:ratio", "Sloth-compatible: burn rate over 5m.", "gauge", tuple(current)
    )
    yield Family(
        "slo:period_burn_rate:ratio",
        "Sloth-compatible: burn rate over the period.",
        "gauge",
        tuple(period_burn),
    )
    yield Family(
        "slo:period_error_budget_remaining:ratio",
        "Sloth-compatible: error budget left in the period.",
        "gauge",
        tuple(remaining),
    )
    yield Family("sloth_slo_info", "Sloth-compatible: one series per SLO; always 1.", "gauge", tuple(info))


def _layout(
    name: str, dims: tuple[str, ...], const: tuple[tuple[str, str], ...]
) -> tuple[list[str], list[tuple[int, ...]]]:
    """Split one block's sample line into constant text and per-series runs of label pairs.

    prometheus_client writes labels sorted by name, so a block's constant labels (slo, window, ...) can
    fall between its per-series ones. The line is ``texts[0] + run_0 + texts[1] + ... + texts[-1] +
    value``, where ``run_k`` is the per-series text of adjacent per-series labels ``runs[k]``.
    """
    consts = dict(const)
    if len(consts) != len(const) or consts.keys() & set(dims):
        raise ValueError(f"{name}: duplicate label names in {dims} and {const}")
    names = sorted([*dims, *consts])
    if not names:
        return [f"{name} "], []
    index = {d: i for i, d in enumerate(dims)}
    groups: list[list[str]] = []
    for n in names:
        if groups and (n in index) == (groups[-1][0] in index):
            groups[-1].append(n)
        else:
            groups.append([n])
    texts = [f"{name}{{"]
    runs: list[tuple[int, ...]] = []
    for g, group in enumerate(groups):
        sep = "," if g else ""
        if group[0] in index:
            texts[-1] += sep
            runs.append(tuple(index[n] for n in group))
            texts.append("")
        else:
            texts[-1] += sep + ",".join(f'{n}="{escape_label_value(consts[n])}"' for n in group)
    texts[-1] += "} "
    return texts, runs


#: Samples rendered per string batch: bounds the transient Python strings to a few MB.
_SLICE = 32_768


def _render_block(name: str, block: Block, out: list[bytes]) -> None:
    texts, runs = _layout(name, block.series.names, block.const)
    values = format_values(block.values)
    cols = [block.series.run(r) for r in runs]
    if block.rows is not None:
        rows = block.rows.tolist()
        cols = [[c[j] for j in rows] for c in cols]
    for lo in range(0, len(values), _SLICE):
        hi = lo + _SLICE
        out.append("".join(_lines(texts, [c[lo:hi] for c in cols], values[lo:hi])).encode())


def _lines(texts: list[str], cols: list[list[str]], values: list[str]) -> list[str]:
    # One f-string per sample; the common layouts are spelled out (no per-sample join).
    if not cols:
        (t0,) = texts
        return [f"{t0}{v}\n" for v in values]
    if len(cols) == 1:
        t0, t1 = texts
        return [f"{t0}{a}{t1}{v}\n" for a, v in zip(cols[0], values, strict=True)]
    if len(cols) == 2:
        t0, t1, t2 = texts
        return [f"{t0}{a}{t1}{b}{t2}{v}\n" for a, b, v in zip(cols[0], cols[1], values, strict=True)]
    lines = []
    for j, v in enumerate(values):
        parts = [texts[0]]
        for c, t in zip(cols, texts[1:], strict=True):
            parts += (c[j], t)
        lines.append("".join(parts) + v + "\n")
    return lines


def render_chunks(families: Sequence[Family]) -> list[bytes]:
    """The text exposition as a list of byte chunks (concatenated, exactly `render`'s bytes).

    The daemon serves the chunks as they are: no single copy of a body that can be hundreds of MB.
    """
    out: list[bytes] = []
    for f in families:
        doc = f.doc.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {f.name} {doc}\n# TYPE {f.name} {f.type}\n".encode())
        for block in f.blocks:
            _render_block(f.name, block, out)
    return out


def render(families: Sequence[Family]) -> bytes:
    """The text exposition (format 0.0.4) of ``families``: byte-identical to prometheus_client's
    ``generate_latest`` on the same families as yielded by `SnapshotCollector.collect`."""
    return b"".join(render_chunks(families))


class Exposition:
    """Renders a snapshot to ``/metrics`` bytes, once per tick.

    Owns a fresh `CollectorRegistry` with its `SnapshotCollector` registered (so ``generate_latest(
    exposition.registry)`` gives the same bytes, slowly), and renders with `render`. Rendering reads
    only the immutable snapshot: it may run in a worker thread.
    """

    def __init__(
        self,
        *,
        sloth_compat: bool = False,
        top_k: Mapping[str, int] | None = None,
        version: str = __version__,
    ) -> None:
        self.collector = SnapshotCollector(sloth_compat=sloth_compat, top_k=top_k, version=version)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)

    def render(self, snapshot: Snapshot, telemetry: TelemetrySnapshot) -> bytes:
        """Update the collector with this tick's snapshot and return the exposition text."""
        self.collector.update(snapshot, telemetry)
        return render(self.collector.families)

    def render_chunks(self, snapshot: Snapshot, telemetry: TelemetrySnapshot) -> list[bytes]:
        """`render` as chunks (what the daemon serves: never one copy of the whole body)."""
        self.collector.update(snapshot, telemetry)
        return render_chunks(self.collector.families)
