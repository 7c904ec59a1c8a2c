"""The soak's load: a fraction of the measured capacity, capped by the in-memory broker's budget."""

from __future__ import annotations

import argparse
import math

import pytest

from benchmarks.soak import Capacity, choose_rate

GIB = 2**30


def args(rate: float | None = None, fraction: float = 0.8, budget_gib: float = 1.0) -> argparse.Namespace:
    return argparse.Namespace(rate=rate, load_fraction=fraction, broker_memory_gib=budget_gib)


def capacity(events_per_s: float, bytes_per_event: float = math.nan) -> Capacity:
    return Capacity(
        backlog_events=1000,
        backlog_produce_events_per_s=1.0,
        broker_bytes_per_event=bytes_per_event,
        alone_events_per_s=1.0,
        alone_events_per_cpu_s=1.0,
        alone_utilisation=1.0,
        alone_basis="steady",
        alone_steady_wall_s=1.0,
        live_seconds=30.0,
        live_events_per_s=events_per_s,
        live_utilisation=1.0,
        live_lag_end=None,
        live_loadgen="",
    )


def test_a_fraction_of_the_live_capacity() -> None:
    # 1 GiB at 175 B/event (the default, unmeasured) over 600 s: ~10.2k events/s allowed.
    choice = choose_rate(args(), capacity(10_000.0), 0.0, 600.0)
    assert (choice.rate, choice.wanted, choice.capped) == (8000.0, 8000.0, False)
    assert choice.cap == pytest.approx(GIB / (175 * 600))
    assert choice.why == "80% of the measured capacity"


def test_capped_by_broker_memory_measured_per_event() -> None:
    choice = choose_rate(args(), capacity(100_000.0, bytes_per_event=200.0), 0.5 * GIB, 600.0)
    assert choice.capped
    assert choice.rate == choice.cap == pytest.approx(0.5 * GIB / (200 * 600))
    assert choice.broker_bytes_per_event == 200.0
    assert choice.why.startswith("CAPPED by broker memory: 80% of capacity is 80,000/s")


def test_an_explicit_rate_is_kept_even_over_the_budget() -> None:
    choice = choose_rate(args(rate=50_000.0), None, 0.0, 600.0)
    assert (choice.rate, choice.wanted, choice.capped) == (50_000.0, None, False)
    assert choice.why.startswith("--rate (over the broker memory budget's")
    assert choose_rate(args(rate=5.0), None, 0.0, 600.0).why == "--rate"
