"""The JSON API v1 as pure functions: a `Snapshot` (and one series' buckets, read on demand) → JSON.

No I/O, no clock: `sloguard.ui.routes` decides what is computed when and caches it per snapshot. Every
number is the snapshot's own (a series' values are the very floats /metrics shows), or, for an SLO as a
whole, the same formulas (`sloguard.core.budget`) over its series' summed integer counts, which are exact
because every event of the SLO lands in exactly one series (``__overflow__`` included).

The shapes are documented in docs/api.md; within v1 they only grow (fields are added, never renamed,
removed or retyped).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import numpy as np

from sloguard._types import F64, I64
from sloguard.core import budget as bm
from sloguard.core.history import BucketCounts, burn_down
from sloguard.core.snapshot import LatencySnapshot, SloSnapshot
from sloguard.core.spec import FINE_HORIZON, HOUR, SloSpec, format_duration

#: A customer's series: (budget consumed, SLO name, column, snapshot), worst first.
CustomerSeries = list[tuple[float, str, int, SloSnapshot]]

API_VERSION = "v1"
#: Points of the burn-down (the period's buckets are summed into at most this many groups).
BURN_DOWN_POINTS = 720
#: Requests and errors over the last 6 h, from the fine buckets, in at most this many groups.
RECENT_POINTS = 360
#: Latency groups shown on a detail page (the busiest first).
LATENCY_GROUPS = 20
#: Series listed per customer on /customers (its worst first).
CUSTOMER_SERIES = 20

Json = dict[str, Any]
#: Reads one series' buckets (`Aggregator.bucket_counts`): (spec, key or None for all, start, end, fine).
History = Callable[[SloSpec, "tuple[str, ...] | None", int, int, bool], BucketCounts | None]


#: A JSON string (skipped as it is) or a non-finite number token of `json.dumps`.
_NON_FINITE = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN')


def encode(obj: Any) -> bytes:
    """Compact JSON; NaN and infinities become null; ``<``, ``>`` and ``&`` are escaped (label values
    are attacker-controlled: the bytes never look like markup to anything that sniffs them)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if "NaN" in text or "Infinity" in text:
        # Tokens outside strings only: one regex pass instead of walking the object before encoding.
        text = _NON_FINITE.sub(lambda m: m[0] if m[0][0] == '"' else "null", text)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def percent(value: Fraction) -> str:
    """An exact fraction as a percentage, as written in the SLO file: 999/1000 -> "99.9"."""
    with localcontext() as ctx:
        ctx.prec = 40
        text = format((Decimal(value.numerator) * 100 / Decimal(value.denominator)).normalize(), "f")
    return text


def nearest_window(windows: Sequence[int], target: int) -> int:
    """The window closest to ``target`` (the shorter one on a tie)."""
    return min(windows, key=lambda w: (abs(w - target), w))


# -- the numbers of an SLO as a whole, or of one of its series ---------------------------------------


@dataclass(frozen=True, slots=True)
class Numbers:
    """Window and period counts with their ratios, for one series or an SLO's series summed."""

    total: I64  # per window of SloSnapshot.windows
    bad: I64
    error_ratio: F64
    burn_rate: F64
    period_total: int
    period_bad: int
    period_error_ratio: float
    remaining: float
    consumed: float
    eta: float
    firing: I64  # per tier: how many series fire (0 or 1 for one series)


def series_numbers(s: SloSnapshot, col: int) -> Numbers:
    """Column ``col`` of the snapshot: the values /metrics exports for that series."""
    return Numbers(
        total=s.total[:, col],
        bad=s.bad[:, col],
        error_ratio=s.error_ratio[:, col],
        burn_rate=s.burn_rate[:, col],
        period_total=int(s.period_total[col]),
        period_bad=int(s.period_bad[col]),
        period_error_ratio=float(s.period_error_ratio[col]),
        remaining=float(s.budget_remaining[col]),
        consumed=float(s.budget_consumed[col]),
        eta=float(s.exhaustion_eta[col]),
        firing=s.firing[:, col].astype(np.int64),
    )


def slo_numbers(s: SloSnapshot) -> Numbers:
    """The SLO as a whole: every series' counts summed, then the same formulas as per series."""
    budget = s.spec.error_budget
    total = s.total.sum(axis=1, dtype=np.int64)
    bad = s.bad.sum(axis=1, dtype=np.int64)
    p_total = np.array([s.period_total.sum()], np.int64)
    p_bad = np.array([s.period_bad.sum()], np.int64)
    burn = bm.burn_rate(bad, total, budget)
    remaining = bm.budget_remaining(p_bad, p_total, budget)
    burn_1h = burn[s.windows.index(HOUR)] if HOUR in s.windows else np.nan
    eta = bm.exhaustion_eta(remaining, np.array([burn_1h]), s.spec.period.nominal_seconds)
    return Numbers(
        total=total,
        bad=bad,
        error_ratio=bm.error_ratio(bad, total),
        burn_rate=burn,
        period_total=int(p_total[0]),
        period_bad=int(p_bad[0]),
        period_error_ratio=float(bm.error_ratio(p_bad, p_total)[0]),
        remaining=float(remaining[0]),
        consumed=float(bm.budget_consumed(p_bad, p_total, budget)[0]),
        eta=float(eta[0]),
        firing=s.firing.sum(axis=1, dtype=np.int64),
    )


def attainment(n: Numbers) -> float | None:
    """The SLI over the period: the fraction of good events (None without events)."""
    return 1.0 - n.period_error_ratio if n.period_total else None


def _burns(s: SloSnapshot, n: Numbers) -> list[Json]:
    """Burn rates over the windows nearest 1 h and 6 h (the list page's two columns)."""
    out = []
    for target in (HOUR, 6 * HOUR):
        w = nearest_window(s.windows, target)
        i = s.window_index(w)
        out.append(
            {"window": format_duration(w), "burn_rate": float(n.burn_rate[i]), "events": int(n.total[i])}
        )
    return out


def _budget(s: SloSnapshot, n: Numbers) -> Json:
    """The period's counts and budget, and the two burn rates: what a list row shows."""
    return {
        "events": n.period_total,
        "bad_events": n.period_bad,
        "attainment": attainment(n),
        "budget_remaining": n.remaining,
        "budget_consumed": n.consumed,
        "exhaustion_eta_seconds": n.eta,
        "burn": _burns(s, n),
    }


def labels_of(s: SloSnapshot, col: int) -> dict[str, str]:
    return dict(zip(s.spec.group_by, s.labels[col], strict=True))


# -- the list ----------------------------------------------------------------------------------------


def slo_summary(s: SloSnapshot) -> Json:
    """One row of the SLO list (`/api/v1/slos`)."""
    spec = s.spec
    n = slo_numbers(s)
    worst: Json | None = None
    if s.series > 1:
        col = int(np.argmin(s.budget_remaining))
        worst = {"labels": labels_of(s, col), "budget_remaining": float(s.budget_remaining[col])}
    return {
        "name": spec.name,
        "service": spec.service,
        "description": spec.description,
        "sli": spec.sli.kind,
        "objective": float(spec.objective),
        "objective_percent": percent(spec.objective),
        "period": spec.period.describe(),
        "period_seconds": spec.period.nominal_seconds,
        "group_by": list(spec.group_by),
        "series": s.series,
        "overflow_events": s.overflow_events,
        "evicted_series": s.evicted_series,
        **_budget(s, n),
        "firing": [
            {"tier": t.name, "severity": t.severity.value, "series": int(n.firing[k])}
            for k, t in enumerate(spec.tiers)
            if n.firing[k]
        ],
        "worst_series": worst,
    }


def list_order(summaries: Sequence[Json]) -> list[Json]:
    """Worst budget first (ties: by name)."""
    return sorted(summaries, key=lambda r: (r["budget_remaining"], r["name"]))


def matches_filter(row: Json, service: str | None, label: str | None, text: str | None) -> bool:
    """The list's filters: exact service, a grouping label (``none`` for ungrouped SLOs), free text."""
    if service and row["service"] != service:
        return False
    if label and (label not in row["group_by"] if label != "none" else bool(row["group_by"])):
        return False
    if text:
        hay = " ".join([row["name"], row["service"], row["description"], row["sli"], *row["group_by"]])
        return text.casefold() in hay.casefold()
    return True


# -- the series of one SLO -----------------------------------------------------------------------------


def series_row(s: SloSnapshot, col: int) -> Json:
    """One row of `/api/v1/slos/<name>/series` through `Numbers`, as the list and detail pages compute
    theirs: the reference `series_rows` is tested against."""
    spec = s.spec
    n = series_numbers(s, col)
    return {
        "labels": labels_of(s, col),
        **_budget(s, n),
        "firing": [t.name for k, t in enumerate(spec.tiers) if n.firing[k]],
    }


def series_rows(s: SloSnapshot, cols: Sequence[int]) -> list[Json]:
    """`series_row` of each of ``cols``, read column-wise (one gather per array, not per row); NaN
    (no exhaustion ETA) is written as None here, so `encode` needs no second pass."""
    c = np.asarray(cols, np.intp)
    total, bad, ratio = s.period_total[c].tolist(), s.period_bad[c].tolist(), s.period_error_ratio[c].tolist()
    remaining, consumed = s.budget_remaining[c].tolist(), s.budget_consumed[c].tolist()
    eta = [None if x != x else x for x in s.exhaustion_eta[c].tolist()]
    burns = []
    for target in (HOUR, 6 * HOUR):
        w = nearest_window(s.windows, target)
        i = s.window_index(w)
        burns.append((format_duration(w), s.burn_rate[i, c].tolist(), s.total[i, c].tolist()))
    tiers = [t.name for t in s.spec.tiers]
    firing = s.firing[:, c].T.tolist()
    dims = s.spec.group_by
    return [
        {
            "labels": dict(zip(dims, s.labels[col], strict=True)),
            "events": total[j],
            "bad_events": bad[j],
            "attainment": 1.0 - ratio[j] if total[j] else None,
            "budget_remaining": remaining[j],
            "budget_consumed": consumed[j],
            "exhaustion_eta_seconds": eta[j],
            "burn": [{"window": w, "burn_rate": b[j], "events": e[j]} for w, b, e in burns],
            "firing": [name for name, on in zip(tiers, firing[j], strict=True) if on],
        }
        for j, col in enumerate(c.tolist())
    ]


# -- the detail page ------------------------------------------------------------------------------------


def definition(spec: SloSpec) -> Json:
    """What the SLO is, with one line on how its budget is computed."""
    bad = " or ".join(f"{lo}–{hi}" if lo != hi else str(lo) for lo, hi in spec.sli.bad_status)
    rule = f"status {bad}"
    if spec.sli.kind == "latency":
        rule += f", or slower than {spec.sli.threshold_ms:g} ms"
    scope = f"{spec.service} ({', '.join(spec.endpoints)})" if spec.endpoints else spec.service
    allowed = percent(spec.error_budget)
    return {
        "name": spec.name,
        "service": spec.service,
        "description": spec.description,
        "endpoints": list(spec.endpoints),
        "sli": {
            "type": spec.sli.kind,
            "bad_status": [list(r) for r in spec.sli.bad_status],
            "threshold_ms": spec.sli.threshold_ms,
        },
        "objective": float(spec.objective),
        "objective_percent": percent(spec.objective),
        "period": spec.period.describe(),
        "period_seconds": spec.period.nominal_seconds,
        "group_by": list(spec.group_by),
        "max_series": spec.max_series,
        "resolution_seconds": {"fine": spec.resolution.fine, "coarse": spec.resolution.coarse},
        "bad_event": rule,
        "explanation": (
            f"{percent(spec.objective)}% of {scope} events over {spec.period.describe()} must be good "
            f"(bad: {rule}), so the error budget is {allowed}% of them: budget left = "
            f"1 − bad ÷ ({allowed}% × events), counted over the period so far."
        ),
    }


def _windows(s: SloSnapshot, n: Numbers) -> list[Json]:
    rows = [
        {
            "window": format_duration(w),
            "seconds": w,
            "start_ms": lo,
            "end_ms": hi,
            "events": int(n.total[i]),
            "bad_events": int(n.bad[i]),
            "error_ratio": float(n.error_ratio[i]),
            "burn_rate": float(n.burn_rate[i]),
        }
        for i, (w, (lo, hi)) in enumerate(zip(s.windows, s.window_bounds, strict=True))
    ]
    lo, hi = s.period_bounds
    p_burn = bm.burn_rate(np.array([n.period_bad]), np.array([n.period_total]), s.spec.error_budget)
    rows.append(
        {
            "window": "period",
            "seconds": (hi - lo) // 1000,
            "start_ms": lo,
            "end_ms": hi,
            "events": n.period_total,
            "bad_events": n.period_bad,
            "error_ratio": n.period_error_ratio,
            "burn_rate": float(p_burn[0]),
        }
    )
    return rows


def _tiers(s: SloSnapshot, n: Numbers) -> list[Json]:
    out = []
    for k, t in enumerate(s.spec.tiers):
        li, si = s.window_index(t.long_window), s.window_index(t.short_window)
        out.append(
            {
                "tier": t.name,
                "severity": t.severity.value,
                "long_window": format_duration(t.long_window),
                "short_window": format_duration(t.short_window),
                "factor": float(t.factor),
                "budget_percent": None if t.budget_percent is None else float(t.budget_percent),
                "error_ratio_threshold": float(t.factor * s.spec.error_budget),
                "long_burn_rate": float(n.burn_rate[li]),
                "short_burn_rate": float(n.burn_rate[si]),
                "long_events": int(n.total[li]),
                "min_events": t.min_events,
                "for_seconds": t.for_seconds,
                "firing": bool(n.firing[k]),
                "firing_series": int(n.firing[k]),
            }
        )
    return out


def _latency(lat: LatencySnapshot | None, spec: SloSpec, labels: dict[str, str]) -> list[Json]:
    """Percentiles of the latency groups that belong to this SLO (and series): its service, its
    endpoints, the series' own label values where the latency groups have the same dimension."""
    if lat is None or not lat.windows:
        return []
    dims = lat.spec.group_by
    keep = []
    for g, key in enumerate(lat.labels):
        d = dict(zip(dims, key, strict=True))
        if d.get("service", spec.service) != spec.service:
            continue
        ep = d.get("endpoint")
        if ep is not None and spec.endpoints and not any(fnmatch.fnmatchcase(ep, x) for x in spec.endpoints):
            continue
        if any(d.get(k, v) != v for k, v in labels.items()):
            continue
        keep.append(g)
    busiest = lat.windows[-1].count
    keep.sort(key=lambda g: -int(busiest[g]))
    names = [f"p{p:g}" for p in lat.spec.percentiles]
    return [
        {
            "labels": dict(zip(dims, lat.labels[g], strict=True)),
            "windows": [
                {
                    "window": format_duration(w.window),
                    "events": int(w.count[g]),
                    "percentiles_ms": dict(zip(names, w.percentiles_ms[g].tolist(), strict=True)),
                }
                for w in lat.windows
            ],
        }
        for g in keep[:LATENCY_GROUPS]
    ]


def history(s: SloSnapshot, key: tuple[str, ...] | None, read: History | None) -> Json:
    """The burn-down over the period (coarse buckets) and requests/errors over the last 6 h (fine)."""
    out: Json = {"burn_down": None, "recent": None}
    if read is None:
        return out
    start, end = s.period_bounds
    coarse = read(s.spec, key, start, end, False)
    if coarse is not None:
        bd = burn_down(coarse, s.spec.error_budget, BURN_DOWN_POINTS)
        out["burn_down"] = {
            "start_ms": start,
            "end_ms": end,
            "t_ms": bd.t_ms.tolist(),
            "remaining": bd.remaining.tolist(),
            "ideal": bd.ideal.tolist(),
            "events": bd.total,
            "bad_events": bd.bad,
        }
    fine_w = max(w for w in s.windows if w <= FINE_HORIZON)
    lo, hi = s.window_bounds[s.window_index(fine_w)]
    fine = read(s.spec, key, lo, hi, True)
    if fine is not None:
        g = fine.regroup(RECENT_POINTS)
        out["recent"] = {
            "window": format_duration(fine_w),
            "start_ms": g.start_ms,
            "step_ms": g.res_ms,
            "events": g.total.tolist(),
            "bad_events": g.bad.tolist(),
        }
    return out


def detail(
    s: SloSnapshot, col: int | None, now_ms: int, lat: LatencySnapshot | None, read: History | None
) -> Json:
    """`/api/v1/slos/<name>`: the SLO as a whole (``col`` None) or one of its series."""
    n = slo_numbers(s) if col is None else series_numbers(s, col)
    labels = {} if col is None else labels_of(s, col)
    key = None if col is None else s.labels[col]
    return {
        "api": API_VERSION,
        "now_ms": now_ms,
        "slo": definition(s.spec),
        "series": None if col is None else labels,
        "series_count": s.series,
        "overflow_events": s.overflow_events,
        "evicted_series": s.evicted_series,
        "too_old_events": s.too_old_events,
        "tiles": {
            "objective": float(s.spec.objective),
            "objective_percent": percent(s.spec.objective),
            "attainment": attainment(n),
            "budget_remaining": n.remaining,
            "budget_consumed": n.consumed,
            "exhaustion_eta_seconds": n.eta,
            "events": n.period_total,
            "bad_events": n.period_bad,
        },
        "windows": _windows(s, n),
        "tiers": _tiers(s, n),
        "latency": _latency(lat, s.spec, labels),
        **history(s, key, read),
    }


# -- customers -------------------------------------------------------------------------------------------


def customer_row(customer: str, entries: CustomerSeries, series_total: int) -> Json:
    """One row of `/api/v1/customers`: the customer's worst series (``entries``, worst first, at most
    `CUSTOMER_SERIES`) of ``series_total``; `sloguard.ui.index.CustomerRanking` picks them."""
    return {
        "customer": customer,
        "worst_budget_consumed": entries[0][0],
        "series_total": series_total,
        "series": [
            {
                "slo": name,
                "labels": labels_of(s, col),
                "budget_consumed": consumed,
                "budget_remaining": float(s.budget_remaining[col]),
                "firing": [t.name for k, t in enumerate(s.spec.tiers) if s.firing[k, col]],
            }
            for consumed, name, col, s in entries
        ],
    }
