"""Latency families: percentiles and event counts per group and window."""

from __future__ import annotations

from sloguard.core.spec import format_duration
from sloguard.export.text import quantile_label
from tests.unit.export.scrape import key, parse, render
from tests.unit.export.snapshots import aggregated


def test_latency_quantiles_and_counts() -> None:
    snap = aggregated()
    assert snap.latency is not None
    lat = snap.latency
    types, samples = parse(render(snap))
    # A summary, not a gauge: promtool refuses a "quantile" label on anything else.
    assert types["sloguard_latency_seconds"] == "summary"
    assert types["sloguard_latency_events"] == "gauge"
    assert [quantile_label(p) for p in lat.spec.percentiles] == ["0.5", "0.9", "0.99", "0.999"]
    present = 0
    for w in lat.windows:
        window = format_duration(w.window)
        for g, labels in enumerate(lat.labels):
            at = {**dict(zip(lat.spec.group_by, labels, strict=True)), "window": window}
            assert samples[key("sloguard_latency_events", **at)] == w.count[g]
            for q, p in enumerate(lat.spec.percentiles):
                k = key("sloguard_latency_seconds", **at, quantile=quantile_label(p))
                if w.count[g] == 0:
                    assert k not in samples  # no events: no percentile, rather than a made-up 0 s
                else:
                    assert samples[k] == w.percentiles_ms[g, q] / 1000
                    present += 1
    assert present > 0
    assert {dict(lab)["window"] for n, lab in samples if n == "sloguard_latency_events"} == {"1m", "5m", "1h"}
