"""Latency metric source: a `LatencySnapshot` → percentiles and event counts per group and window."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sloguard.core.snapshot import LatencySnapshot
from sloguard.core.spec import format_duration
from sloguard.export.model import Block, Family, SeriesLabels, block
from sloguard.export.text import quantile_label


def latency_families(lat: LatencySnapshot, series: SeriesLabels | None = None) -> Iterator[Family]:
    """``sloguard_latency_seconds`` (a summary of HDR percentiles) and ``sloguard_latency_events``
    (``series``: the labels of ``lat``'s groups, if already made)."""
    if series is None:
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
            values.append(block(series, (("window", window), ("quantile", quantile)), seconds[:, q], has))
        counts.append(block(series, (("window", window),), w.count))
    # Typed summary, not gauge: `promtool check metrics` rejects a "quantile" label on anything else, and
    # PromQL ignores types. There are no _sum/_count samples: the windows are not cumulative.
    yield Family(
        "sloguard_latency_seconds",
        "Latency percentiles over the window (HDR histogram, within 1%); absent when the window is empty.",
        "summary",
        tuple(values),
    )
    yield Family("sloguard_latency_events", "Events inside the latency window.", "gauge", tuple(counts))
