"""Snapshots for the exporter's tests: from a real aggregator, or synthetic, straight from numpy arrays.

The exporter only reads a `Snapshot`, so `synthetic` can make one of 10k series in milliseconds, with
any label values. Its numbers are plausible (bad <= total, ratios and budgets computed as the core
does) but come from a random generator, not from events. `aggregated` runs real events through the
`Aggregator`.
"""

from __future__ import annotations

import random

import numpy as np

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.snapshot import LatencySnapshot, LatencyWindow, SloSnapshot, Snapshot
from sloguard.core.spec import DAY, HOUR, LatencySpec, RollingPeriod, SloSpec
from tests.support.specs import config, slo

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

#: Label values that need every kind of escaping, and then some.
NASTY = ("back\\slash", 'dq"uote', "new\nline", 'both\\"\n', "ünï©ødé ✓", '{a="b",c}', "", " ", "\\n")


def customers(n: int, nasty: bool = False) -> list[str]:
    names = [f"cust-{j:05d}" for j in range(n)]
    if nasty:
        for j, v in enumerate(NASTY[:n]):
            names[j] = v
    return names


def slo_snapshot(
    spec: SloSpec,
    labels: list[tuple[str, ...]],
    rng: np.random.Generator,
    now_ms: int = T0,
    firing_p: float = 0.01,
) -> SloSnapshot:
    n = len(labels)
    windows = spec.windows
    budget = float(spec.error_budget)
    p_bad = rng.choice([0.0, 0.0001, 0.001, 0.01, 0.2], size=n)
    total = rng.integers(0, 100_000, (len(windows), n)).astype(np.int64)
    total[:, rng.random(n) < 0.05] = 0  # some idle series
    bad = rng.binomial(total, p_bad).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        er = np.where(total > 0, bad / np.maximum(total, 1), 0.0)
        br = er / budget
        p_total = total.max(axis=0) * 30
        p_bad_n = bad.max(axis=0) * 5
        p_er = np.where(p_total > 0, p_bad_n / np.maximum(p_total, 1), 0.0)
        remaining = np.where(p_total > 0, 1 - p_bad_n / (budget * np.maximum(p_total, 1)), 1.0)
        burn_1h = br[windows.index(3600)]
        eta = np.where(
            (burn_1h > 0) & (remaining > 0), remaining * spec.period.nominal_seconds / burn_1h, np.nan
        )
    return SloSnapshot(
        spec=spec,
        labels=tuple(labels),
        windows=windows,
        window_bounds=tuple((now_ms - w * 1000, now_ms) for w in windows),
        total=total,
        bad=bad,
        error_ratio=er,
        burn_rate=br,
        period_bounds=(now_ms - 30 * DAY * 1000, now_ms),
        period_total=p_total.astype(np.int64),
        period_bad=p_bad_n.astype(np.int64),
        period_error_ratio=p_er,
        period_burn_rate=p_er / budget,
        budget_remaining=remaining,
        budget_consumed=1 - remaining,
        exhaustion_eta=eta,
        firing=rng.random((len(spec.tiers), n)) < firing_p,
        overflow_events=int(rng.integers(0, 1000)),
        too_old_events=int(rng.integers(0, 10)),
        events=int(p_total.sum()),
    )


def latency_snapshot(groups: int, rng: np.random.Generator, nasty: bool = False) -> LatencySnapshot:
    spec = LatencySpec()
    endpoints = [f"GET /v1/things/{j}" for j in range(groups)]
    if nasty:
        endpoints[: len(NASTY)] = NASTY[:groups]
    labels = tuple((f"svc-{j % 7}", e) for j, e in enumerate(endpoints))
    windows = []
    for w in spec.windows:
        count = rng.integers(0, 5000, groups).astype(np.int64)
        count[rng.random(groups) < 0.1] = 0
        pct = np.sort(rng.lognormal(3, 1.5, (groups, len(spec.percentiles))), axis=1)
        pct[count == 0] = 0.0
        windows.append(LatencyWindow(w, (T0 - w * 1000, T0), count, pct))
    return LatencySnapshot(spec, labels, tuple(windows), overflow_events=3, too_old_events=1)


def synthetic(
    series: int = 100,
    groups: int = 50,
    *,
    seed: int = 0,
    nasty: bool = False,
    firing_p: float = 0.01,
) -> Snapshot:
    """Three SLOs (ungrouped, by endpoint+customer over ``series`` series, by customer on a 28d
    period) and ``groups`` latency groups."""
    rng = np.random.default_rng(seed)
    specs = (
        slo(name="checkout-availability"),
        slo(name="checkout-by-customer", group_by=("endpoint", "customer"), fine=60, coarse=3600),
        slo(name="search-latency", service="search", kind="latency", threshold_ms=300.0, objective="99",
            group_by=("customer",), period=RollingPeriod(28 * DAY)),
    )  # fmt: skip
    cust = customers(series, nasty)
    slos = (
        slo_snapshot(specs[0], [()], rng, firing_p=firing_p),
        slo_snapshot(
            specs[1], [(f"POST /v1/{j % 40}", c) for j, c in enumerate(cust)], rng, firing_p=firing_p
        ),
        slo_snapshot(specs[2], [(c,) for c in cust[: max(1, series // 10)]], rng, firing_p=firing_p),
    )
    return Snapshot(
        now_ms=T0,
        slos=slos,
        latency=latency_snapshot(groups, rng, nasty),
        events=12345,
        newest_event_ms=T0 - 1,
    )


#: SLOs of `aggregated`: one series, grouped by endpoint, and a 28-day latency SLO by customer.
AGGREGATED_SPECS = (
    slo(),
    slo(name="checkout-by-endpoint", group_by=("endpoint",)),
    slo(name="search-latency", service="search", kind="latency", threshold_ms=80.0, objective="99",
        group_by=("customer",), period=RollingPeriod(28 * DAY)),
)  # fmt: skip
NOW = T0 + 2 * DAY * 1000


def aggregated(customers: tuple[str, ...] = ("acme", "globex", "initech"), seed: int = 1) -> Snapshot:
    """Two days of healthy random traffic, then an error burst on two checkout endpoints and a few slow
    searches for the first customer in the last 30 minutes, evaluated at `NOW`: some tiers fire, some
    budgets are overspent (ETA 0), one is burning (finite ETA), the rest are not burning (no ETA)."""
    rnd = random.Random(seed)
    endpoints = ("GET /v1/orders", "POST /v1/orders", "POST /v1/pay", "GET /health")
    events = [
        Event(
            ts_ms=T0 + rnd.randrange(2 * DAY * 1000 - HOUR * 1000),
            service=rnd.choice(("checkout", "search")),
            endpoint=rnd.choice(endpoints),
            customer=rnd.choice(customers),
            status=503 if rnd.random() < 0.0005 else rnd.choice((200, 200, 201, 404)),
            latency_ms=round(rnd.lognormvariate(2, 0.5), 3),
        )
        for _ in range(6000)
    ]
    burst_start = NOW - HOUR * 1000 // 2
    events += [
        Event(burst_start + i * 4000, "checkout", endpoints[i % 2], customers[0], 500, 9.0)
        for i in range(400)
    ]
    events += [
        Event(burst_start + i * 1000, "search", endpoints[3], customers[0], 200, 900.0) for i in range(3)
    ]
    agg = Aggregator(config(*AGGREGATED_SPECS, latency=LatencySpec()))
    agg.ingest(EventBatch.from_events(events))
    return agg.snapshot(NOW)
