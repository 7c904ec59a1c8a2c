"""The soak's verdicts, one check at a time, on synthetic polls (90 s: thirds of 30 polls)."""

from __future__ import annotations

import math

import pytest

from benchmarks import soak_verdicts as sv
from benchmarks.soak_verdicts import Thirds, Verdict
from tests.unit.benchmarks.polls import run

RATE = 1000.0


def thirds(**per_poll: object) -> Thirds:
    return Thirds.of(run(**per_poll))  # type: ignore[arg-type]


def test_thirds_cut_by_time() -> None:
    th = thirds()
    assert th.span == 89
    assert [p.t for p in th.second] == [float(i) for i in range(30, 60)]
    assert [p.t for p in th.last] == [float(i) for i in range(60, 90)]
    assert th.after == th.second + th.last


@pytest.mark.parametrize(
    ("growth_per_s", "verdict"),
    [(0.0, "FLAT"), (0.5, "FLAT"), (1.0, "GROWING")],
    ids=["steady", "15-mib-under-20", "30-mib-over-20"],
)
def test_rss_flat_within_max_of_5_percent_and_20_mib(growth_per_s: float, verdict: str) -> None:
    v = sv.rss(thirds(rss_mib=lambda i: 100.0 + growth_per_s * i))
    assert v.verdict == verdict
    assert v.last is not None and v.second is not None
    assert v.last - v.second == pytest.approx(30 * growth_per_s)
    if growth_per_s:
        assert f"trend {growth_per_s * 60:+.2f} MiB/min" in v.note


def test_slope_is_least_squares() -> None:
    assert sv.slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)


def test_rss_tolerance_is_5_percent_of_a_large_resident_set() -> None:
    v = sv.rss(thirds(rss_mib=lambda i: 1000.0 + (45.0 if i >= 60 else 0.0)))
    assert v.rule == "growth ≤ max(5 %, 20 MiB) = 50.0 MiB"
    assert v.verdict == "FLAT"


def test_lag_flat_when_bounded_and_not_rising() -> None:
    v = sv.lag(thirds(lag=lambda i: 500.0), RATE)
    assert (v.second, v.last, v.verdict) == (500.0, 500.0, "FLAT")
    assert v.rule == "last ≤ 2 s of events (2,000), trend ≤ 1 s"


@pytest.mark.parametrize(
    "lag",
    [lambda i: 2500.0, lambda i: 20.0 * i],
    ids=["over-2s-of-events", "rising-over-1s-of-events"],
)
def test_lag_growing(lag: object) -> None:
    assert sv.lag(thirds(lag=lag), RATE).verdict == "GROWING"


def test_lag_not_reported() -> None:
    v = sv.lag(thirds(lag=lambda i: None), RATE)
    assert v == Verdict("consumer lag, mean", None, None, "events", "no lag reported", "n/a")


@pytest.mark.parametrize(
    ("last_tick_s", "verdict"),
    [(0.014, "FLAT"), (0.0115, "FLAT"), (0.016, "GROWING"), (0.003, "FLAT")],
    ids=["1.4x", "within-2ms", "1.6x", "faster"],
)
def test_tick_p95_ratio_or_slack(last_tick_s: float, verdict: str) -> None:
    v = sv.tick(thirds(tick_s=lambda i: last_tick_s if i >= 60 else 0.010))
    assert v.verdict == verdict
    assert v.second == pytest.approx(0.010)
    assert v.last == pytest.approx(last_tick_s)


def test_ticks_deduplicated_by_snapshot_time() -> None:
    # Two polls per tick: each tick counted once, by its first finite value (NaN: no duration yet).
    polls = run(6, snapshot_ts=lambda i: float(i // 2), tick_s=lambda i: math.nan if i == 0 else float(i))
    assert sv.ticks(polls, "tick_s") == [1.0, 2.0, 4.0]


def test_information_checks_carry_no_verdict() -> None:
    th = thirds()
    rows = [
        sv.render(th),
        sv.throughput(th, RATE),
        sv.cost(th),
        sv.daemon_cpu(th),
        sv.broker_cpu(th),
        sv.checkpoint_size(th),
        sv.checkpoint_duration(th),
    ]
    assert all(v.verdict == "" for v in rows)


def test_throughput_cost_and_cpu_from_the_counters() -> None:
    th = thirds()
    t = sv.throughput(th, RATE)
    assert t.second == pytest.approx(1000.0)
    assert t.last == pytest.approx(1000.0)
    assert t.note == "last third 100.0% of the load; 89,000 events in all"
    assert sv.cost(th).last == pytest.approx(2000.0)  # 1000 events/s on half a core
    cpu = sv.daemon_cpu(th)
    assert cpu.last == pytest.approx(50.0)
    assert "waiting for its core 5 % / 5 %" in cpu.note
    broker = sv.broker_cpu(th)
    assert broker.last == pytest.approx(30.0)
    assert broker.note.startswith("loadgen 20 % / 20 %")


def test_checkpoints() -> None:
    th = thirds()
    size = sv.checkpoint_size(th)
    assert size.last == 1_048_576.0
    assert size.note == "2 written, 0 failed; commit failures 0"
    duration = sv.checkpoint_duration(th)
    # Checkpoint 1 is last seen at t=59 (second third), checkpoint 2 at t=89 (last third).
    assert duration.second == pytest.approx(0.040)
    assert duration.last == pytest.approx(0.060)
    assert duration.note == "all 40, 60 ms"
    assert sv.checkpoint_duration(thirds(checkpoints=lambda i: 0.0)).note == "none yet"


def test_verdicts_in_table_order() -> None:
    rows = sv.verdicts(run(), RATE)
    assert [v.metric for v in rows] == [
        "daemon RSS, mean",
        "consumer lag, mean",
        "tick duration, p95",
        "render duration, p95",
        "events processed / s",
        "events per daemon CPU-s",
        "daemon CPU busy",
        "broker CPU busy",
        "checkpoint size, mean",
        "checkpoint duration, max",
    ]
    assert sv.overall(rows, incomplete=False) == "FLAT"


def test_verdicts_need_two_polls_a_third() -> None:
    assert sv.verdicts([], RATE) == []
    (only,) = sv.verdicts(run(4), RATE)
    assert (only.metric, only.verdict) == ("all", "n/a")


@pytest.mark.parametrize(
    ("judged", "incomplete", "expected"),
    [
        (["FLAT", "", "FLAT"], False, "FLAT"),
        (["FLAT", "GROWING"], False, "GROWING"),
        (["FLAT", "n/a"], False, "INCONCLUSIVE"),
        ([""], False, "INCONCLUSIVE"),
        (["FLAT"], True, "FLAT (incomplete run)"),
    ],
)
def test_overall(judged: list[str], incomplete: bool, expected: str) -> None:
    rows = [Verdict("m", None, None, "", "", v) for v in judged]
    assert sv.overall(rows, incomplete) == expected


def test_summary_table_layout() -> None:
    rows = [
        Verdict("daemon RSS, mean", 100.0, 101.5, "MiB", "rule", "FLAT", "a note"),
        Verdict("tick duration, p95", 0.01, math.nan, "s", "information", ""),
    ]
    assert sv.summary_table(rows).splitlines() == [
        "measure             2nd third  last third  rule         verdict  note",
        "---------------------------------------------------------------------",
        "daemon RSS, mean    100.0 MiB   101.5 MiB  rule         FLAT     a note",
        "tick duration, p95    10.0 ms           -  information",
    ]


def test_finite_makes_strict_json() -> None:
    assert sv.finite({"a": [1.0, math.nan, (math.inf, 2)], "b": "x"}) == {
        "a": [1.0, None, [None, 2]],
        "b": "x",
    }
