"""Freshness: markers' latencies and their parts, from synthetic send and visible times."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmarks import freshness
from benchmarks.freshness import MARKER_5M, Latencies, Marked
from benchmarks.harness import EVENTS, RENDER_S, SNAPSHOT_TS, TICK_S


def test_latency_split_at_the_end_of_the_markers_bucket() -> None:
    lat = Latencies.of([10.2, 10.9, 11.5], [11.4, 12.0])
    assert (lat.markers, lat.seen) == (3, 2)
    np.testing.assert_allclose(lat.total, [1.2, 1.1])
    np.testing.assert_allclose(lat.align, [0.8, 0.1])
    np.testing.assert_allclose(lat.after, [0.4, 1.0])


def marked() -> Marked:
    m = Marked(produced=[10.0, 10.25, 10.5])
    m.cpu = [(9.0, 0.0), (13.0, 2.0)]
    for t, count, ts, events in [(10.6, 1, 10.0, 0.0), (11.2, 2, 11.0, 500.0), (11.6, 3, 10.5, 250.0)]:
        m.take({MARKER_5M: count, SNAPSHOT_TS: ts, EVENTS: events, RENDER_S: t / 100, TICK_S: 0.001}, t)
    return m


def test_markers_visible_at_the_poll_that_counts_them() -> None:
    m = marked()
    assert m.visible == [10.6, 11.2, 11.6]
    assert m.ticks == {10.0: 0.0, 11.0: 500.0, 10.5: 250.0}
    assert m.render_max == pytest.approx(0.116)
    m.take({SNAPSHOT_TS: 12.0, EVENTS: 9.0}, 12.0)  # no marker series yet: nothing taken
    assert 12.0 not in m.ticks


def test_summary_over_the_marker_period() -> None:
    s = marked().summary()
    # Ticks inside [10.0, 10.5]: 10.0 and 10.5 -> 250 events in 0.5 s, 0.25 CPU-s.
    assert s["events_per_s"] == pytest.approx(500.0)
    assert s["utilisation"] == pytest.approx(0.5)
    assert s["tick_interval_s"] == {"median": 0.5, "max": 0.5}


def test_checks_and_details() -> None:
    result = marked().summary()
    checks = freshness.checks("freshness", result, 50_000.0)
    p99 = checks[0]
    assert p99.value == pytest.approx(float(np.percentile([0.6, 0.95, 1.1], 99)))
    assert (p99.target, p99.verdict, p99.note) == (2.0, "PASS", "3 of 3 markers seen; poll every 100 ms")
    assert checks[-1].note == "CPU busy 50 %; loadgen target 50,000/s"
    details = freshness.details(result, 50_000.0, 60.0, 5.0)
    assert (details["markers"], details["seen"]) == (3, 3)
    assert details["latency_s"][100] == pytest.approx(1.1)


def test_a_marker_never_seen_fails_the_p99() -> None:
    result = marked().summary()
    result["produced"] = [*result["produced"], 10.75]
    p99 = freshness.checks("freshness", result, 50_000.0)[0]
    assert (p99.value, p99.verdict) == (math.inf, "FAIL")


def test_marker_slo_comes_first(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"apiVersion": "sloguard/v1", "slos": [{"name": "a"}]}))
    out = yaml.safe_load(freshness.freshness_config(base, tmp_path / "out.yaml").read_text())
    assert [s["name"] for s in out["slos"]] == ["marker", "a"]
    assert out["slos"][0]["resolution"] == {"fine": "1s", "coarse": "5m"}
