"""The soak's printed rows, from synthetic polls."""

from __future__ import annotations

import math

import pytest

from benchmarks import soak_polls
from benchmarks.soak_polls import SAMPLE_HEAD, busy_pct, events_rate, row, sample_cells, window
from tests.unit.benchmarks.polls import poll, run


def test_rates_over_a_run_of_polls() -> None:
    polls = run(11)
    assert events_rate(polls) == pytest.approx(1000.0)
    assert busy_pct(polls) == pytest.approx(50.0)
    assert busy_pct(polls, "wait_s") == pytest.approx(5.0)
    assert math.isnan(events_rate(polls[:1]))
    assert math.isnan(busy_pct([polls[3], polls[3]]))


def test_window_takes_rates_from_the_previous_row() -> None:
    polls = run(21, lag=lambda i: float(i), tick_s=lambda i: 0.001 * i, snapshot_ts=lambda i: float(i // 2))
    s = window(polls[11:21], polls[10])
    assert s.t == 20.0
    assert (s.lag_mean, s.lag_max) == (15.5, 20.0)
    # Ticks by snapshot time, the last poll of each: 11(12), 13(14), 15(16), 17(18), 19(20) -> 0.011 ...
    assert s.tick_max_s == pytest.approx(0.020)
    assert s.events == 20_000.0
    assert s.events_per_s == pytest.approx(10_000 / 5)  # snapshot_ts advances half as fast
    assert s.cpu_pct == pytest.approx(50.0)
    assert s.broker_cpu_pct == pytest.approx(30.0)
    assert s.loadgen_cpu_pct == pytest.approx(20.0)


def test_window_of_one_poll() -> None:
    s = window([poll(5, lag=None)], None)
    assert (s.lag_mean, s.lag_max) == (None, None)
    assert math.isnan(s.events_per_s) and math.isnan(s.cpu_pct)


def test_row_is_aligned_under_the_head() -> None:
    s = window(run(11)[1:], None)
    head, line = row(SAMPLE_HEAD), row(sample_cells(s))
    assert len(head) == len(line)
    assert line.split() == ["10", "100.0", "100", "100", "10.0", "10.0", "50.0", "10,000", "1,000", "50", "5",
                            "1.00", "20", "300", "30", "20"]  # fmt: skip


def test_every_self_metric_read_is_a_family() -> None:
    assert all("{" not in name for name in soak_polls.SCRAPED)
