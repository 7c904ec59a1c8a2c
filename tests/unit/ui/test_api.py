"""The JSON of the API against the snapshot (what /metrics shows) and against ground truth."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from sloguard.core.spec import DAY, HOUR, MINUTE, format_duration
from sloguard.ui import api
from tests.support import groundtruth as gt
from tests.unit.ui.conftest import XSS, World


def slo_of(world: World, name: str):  # type: ignore[no-untyped-def]
    return next(s for s in world.snapshot.slos if s.spec.name == name)


def test_encode_escapes_markup_and_writes_null_for_nan() -> None:
    body = api.encode({"c": XSS, "x": math.nan, "y": [math.inf, 1.5], "z": "a&b"})
    assert b"<" not in body and b">" not in body and b"&" not in body
    assert json.loads(body) == {"c": XSS, "x": None, "y": [None, 1.5], "z": "a&b"}


@pytest.mark.parametrize(
    ("fraction", "text"),
    [(Fraction(999, 1000), "99.9"), (Fraction(99, 100), "99"), (Fraction(99995, 100000), "99.995")],
    ids=["99.9", "99", "99.995"],
)
def test_percent_is_exact(fraction: Fraction, text: str) -> None:
    assert api.percent(fraction) == text


def test_nearest_window_prefers_the_shorter_on_a_tie() -> None:
    assert api.nearest_window((300, 1800, 7200), HOUR) == 1800
    assert api.nearest_window((5 * MINUTE, HOUR, 6 * HOUR, DAY), 6 * HOUR) == 6 * HOUR


def test_series_detail_shows_the_snapshot_values_bit_for_bit(world: World) -> None:
    s = slo_of(world, "checkout-availability")
    for col in range(s.series):
        d = json.loads(api.encode(api.detail(s, col, world.snapshot.now_ms, None, None)))
        assert d["series"] == {"endpoint": s.labels[col][0]}
        assert d["tiles"]["budget_remaining"] == float(s.budget_remaining[col])
        assert d["tiles"]["events"] == int(s.period_total[col])
        eta = float(s.exhaustion_eta[col])
        assert d["tiles"]["exhaustion_eta_seconds"] == (None if math.isnan(eta) else eta)
        for i, w in enumerate(d["windows"][:-1]):
            assert w["burn_rate"] == float(s.burn_rate[i, col])
            assert w["events"] == int(s.total[i, col])
        for k, t in enumerate(d["tiers"]):
            assert t["firing"] == bool(s.firing[k, col])


def test_slo_as_a_whole_equals_ground_truth(world: World) -> None:
    spec = world.spec("checkout-availability")
    s = slo_of(world, spec.name)
    d = api.detail(s, None, world.snapshot.now_ms, None, None)
    mine = [e for e in world.events if gt.matches(spec, e)]
    start, end = gt.period_bounds(spec, world.snapshot.now_ms)
    inside = [e for e in mine if start <= e.ts_ms < end]
    bad = sum(gt.is_bad(spec, e) for e in inside)
    assert (d["tiles"]["events"], d["tiles"]["bad_events"]) == (len(inside), bad)
    assert d["tiles"]["budget_remaining"] == gt.remaining(bad, len(inside), spec.objective)
    for w in d["windows"][:-1]:
        lo, hi = gt.window_bounds(spec, w["seconds"], world.snapshot.now_ms)
        win = [e for e in mine if lo <= e.ts_ms < hi]
        assert w["window"] == format_duration(w["seconds"])
        assert w["burn_rate"] == gt.burn(sum(gt.is_bad(spec, e) for e in win), len(win), spec.objective)
    # The outage fires the page tier on the POST endpoint: the SLO shows one firing series.
    assert d["tiers"][0]["tier"] == "page-1h-5m" and d["tiers"][0]["firing_series"] == 1


def test_detail_burn_down_ends_at_the_budget_left_and_recent_covers_6h(world: World) -> None:
    s = slo_of(world, "checkout-per-customer")
    col = s.labels.index((XSS,))
    d = api.detail(s, col, world.snapshot.now_ms, world.snapshot.latency, world.history)
    bd = d["burn_down"]
    assert bd["remaining"][0] == 1.0 and bd["remaining"][-1] == d["tiles"]["budget_remaining"]
    assert (bd["t_ms"][0], bd["t_ms"][-1]) == s.period_bounds
    assert len(bd["t_ms"]) <= api.BURN_DOWN_POINTS + 1
    recent = d["recent"]
    assert recent["window"] == "6h" and len(recent["events"]) <= api.RECENT_POINTS
    hi = s.window_bounds[s.window_index(6 * HOUR)][1]
    assert recent["start_ms"] + recent["step_ms"] * len(recent["events"]) == hi
    assert sum(recent["events"]) == int(s.total[s.window_index(6 * HOUR), col])


def test_detail_without_history_has_no_charts(world: World) -> None:
    s = slo_of(world, "search-latency")
    d = api.detail(s, None, world.snapshot.now_ms, None, None)
    assert d["burn_down"] is None and d["recent"] is None


def test_latency_groups_are_the_slos_service_and_series(world: World) -> None:
    s = slo_of(world, "checkout-availability")
    lat = world.snapshot.latency
    whole = api.detail(s, None, world.snapshot.now_ms, lat, None)["latency"]
    assert {g["labels"]["service"] for g in whole} == {"checkout"}
    assert len(whole) == 2
    col = s.labels.index(("GET /v1/cart",))
    one = api.detail(s, col, world.snapshot.now_ms, lat, None)["latency"]
    assert [g["labels"] for g in one] == [{"service": "checkout", "endpoint": "GET /v1/cart"}]
    assert set(one[0]["windows"][0]["percentiles_ms"]) == {"p50", "p99"}


def test_definition_explains_the_budget(world: World) -> None:
    d = api.definition(world.spec("search-latency"))
    assert d["objective_percent"] == "99"
    assert "slower than 200 ms" in d["bad_event"]
    assert "1% of them" in d["explanation"] and "budget left" in d["explanation"]


def test_list_is_worst_budget_first_with_counts(world: World) -> None:
    rows = api.list_order([api.slo_summary(s) for s in world.snapshot.slos])
    budgets = [r["budget_remaining"] for r in rows]
    assert budgets == sorted(budgets)
    by = {r["name"]: r for r in rows}
    cust = by["checkout-per-customer"]
    assert cust["series"] == 4 and cust["overflow_events"] == 0
    assert [b["window"] for b in cust["burn"]] == ["1h", "6h"]
    s = slo_of(world, "checkout-per-customer")
    worst = int(np.argmin(s.budget_remaining))
    assert cust["worst_series"] == {
        "labels": {"customer": s.labels[worst][0]},
        "budget_remaining": float(s.budget_remaining[worst]),
    }
    assert by["search-latency"]["worst_series"] is None


@pytest.mark.parametrize(
    ("service", "label", "text", "names"),
    [
        ("checkout", None, None, {"checkout-availability", "checkout-per-customer"}),
        (None, "customer", None, {"checkout-per-customer"}),
        (None, "none", None, {"search-latency"}),
        (None, None, "200 MS", {"search-latency"}),
        (None, None, "nothing-matches", set()),
    ],
    ids=["service", "label", "ungrouped", "text-in-description", "no-match"],
)
def test_list_filters(
    world: World, service: str | None, label: str | None, text: str | None, names: set[str]
) -> None:
    rows = [api.slo_summary(s) for s in world.snapshot.slos]
    assert {r["name"] for r in rows if api.matches_filter(r, service, label, text)} == names
