"""The backlog's rate: which ticks it is taken between, and the figures from them."""

from __future__ import annotations

import pytest

from benchmarks.backlog import Tick, Watched, consumed, steady_span


def ticks(*events: float) -> list[Tick]:
    return [Tick(100.0 + i, n, 0.0) for i, n in enumerate(events)]


def test_steady_between_the_first_and_last_tick_while_consuming() -> None:
    a, b, basis = steady_span(ticks(0, 0, 100, 300, 500, 1000), 1000)
    assert (a.events, b.events, basis) == (100, 500, "steady")


def test_coarse_from_the_last_idle_tick_to_the_first_complete_one() -> None:
    a, b, basis = steady_span(ticks(0, 0, 500, 1000, 1000), 1000)
    assert (a.ts, b.ts, basis) == (101.0, 103.0, "coarse")
    a, b, basis = steady_span(ticks(1000), 1000)  # done by the first tick seen
    assert (a, basis) == (b, "coarse")


def test_consumed() -> None:
    t = {tk.ts: tk for tk in ticks(0, 100, 300, 500, 1000)}
    cpu = [(99.0, 1.0), (105.0, 4.0)]  # half a core between the samples
    got = consumed(Watched(t, cpu, render_max=0.2, tick_max=0.01, length=10, rss_kib=2048), 1000, 98.0)
    assert (got.steady_events, got.steady_wall_s, got.basis) == (400, 2.0, "steady")
    assert got.steady_cpu_s == pytest.approx(1.0)
    assert got.events_per_s == 200.0
    assert got.events_per_cpu_s == pytest.approx(400.0)
    assert got.utilisation == pytest.approx(0.5)
    assert got.start_to_first_tick_with_events_s == 3.0
    assert (got.start_to_done_s, got.cpu_to_done_s) == (7.0, 4.0)
    assert (got.render_s_max, got.exposition_bytes, got.peak_rss_kib, got.ticks_seen) == (0.2, 10, 2048, 5)
