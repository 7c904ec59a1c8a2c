"""Snapshot -> plain data (JSON) and -> a table for people. Formatting only; no evaluation here."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from sloguard.core.model import Rejections
from sloguard.core.snapshot import SloSnapshot, Snapshot
from sloguard.core.spec import format_duration


def rfc3339(ms: int) -> str:
    """Epoch ms -> ``2026-01-01T00:00:00Z`` (milliseconds shown only when not zero)."""
    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    spec = "milliseconds" if ms % 1000 else "seconds"
    return t.isoformat(timespec=spec).replace("+00:00", "Z")


def _percent_key(p: float) -> str:
    return f"{p:g}"


def _slo_series(s: SloSnapshot) -> list[dict[str, Any]]:
    # Columns go to Python lists once (tolist is C speed); per-series work is then plain indexing.
    objective = float(s.spec.objective)
    names = [format_duration(w) for w in s.windows]
    total, bad = s.total.tolist(), s.bad.tolist()
    er, br = s.error_ratio.tolist(), s.burn_rate.tolist()
    p_total, p_bad = s.period_total.tolist(), s.period_bad.tolist()
    p_er, p_br = s.period_error_ratio.tolist(), s.period_burn_rate.tolist()
    remaining, consumed, eta = (
        s.budget_remaining.tolist(),
        s.budget_consumed.tolist(),
        s.exhaustion_eta.tolist(),
    )
    firing = s.firing.tolist()
    tiers = [
        (
            t.severity.value,
            format_duration(t.long_window),
            format_duration(t.short_window),
            float(t.factor),
            t.min_events,
        )
        for t in s.spec.tiers
    ]
    period = s.spec.period.describe()
    p_start, p_end = rfc3339(s.period_bounds[0]), rfc3339(s.period_bounds[1])
    windows = list(enumerate(names))
    out: list[dict[str, Any]] = []
    for j, labels in enumerate(s.labels):
        e = eta[j]
        out.append(
            {
                "slo": s.spec.name,
                "objective": objective,
                "labels": dict(zip(s.spec.group_by, labels, strict=True)),
                "windows": {
                    name: {
                        "total": total[i][j],
                        "bad": bad[i][j],
                        "error_ratio": er[i][j],
                        "burn_rate": br[i][j],
                    }
                    for i, name in windows
                },
                "period": {
                    "window": period,
                    "start": p_start,
                    "end": p_end,
                    "total": p_total[j],
                    "bad": p_bad[j],
                    "error_ratio": p_er[j],
                    "burn_rate": p_br[j],
                    "budget_remaining": remaining[j],
                    "budget_consumed": consumed[j],
                    "exhaustion_eta_seconds": None if math.isnan(e) else e,
                },
                "alerts": [
                    {
                        "severity": sev,
                        "long_window": lw,
                        "short_window": sw,
                        "factor": factor,
                        "min_events": min_events,
                        "firing": firing[k][j],
                    }
                    for k, (sev, lw, sw, factor, min_events) in enumerate(tiers)
                ],
            }
        )
    return out


def to_dict(
    snap: Snapshot, invalid: Rejections | None = None, after_now: int = 0, reasons: Sequence[str] = ()
) -> dict[str, Any]:
    """The JSON document `sloguard replay --format json` prints (``reasons`` listed even when 0)."""
    latency: list[dict[str, Any]] = []
    lat = snap.latency
    if lat is not None:
        keys = [_percent_key(p) for p in lat.spec.percentiles]
        for w in lat.windows:
            for g, labels in enumerate(lat.labels):
                latency.append(
                    {
                        "labels": dict(zip(lat.spec.group_by, labels, strict=True)),
                        "window": format_duration(w.window),
                        "start": rfc3339(w.bounds[0]),
                        "end": rfc3339(w.bounds[1]),
                        "count": int(w.count[g]),
                        "percentiles_ms": {
                            k: float(v) for k, v in zip(keys, w.percentiles_ms[g].tolist(), strict=True)
                        },
                    }
                )
    return {
        "now": rfc3339(snap.now_ms),
        "events": snap.events,
        "after_now": after_now,
        "slos": [series for s in snap.slos for series in _slo_series(s)],
        "latency": latency,
        "invalid": dict(sorted(({r: 0 for r in reasons} | (invalid.counts if invalid else {})).items())),
        "overflow": {s.spec.name: s.overflow_events for s in snap.slos},
        "too_old": {s.spec.name: s.too_old_events for s in snap.slos},
    }


def _pct(x: float) -> str:
    return f"{x * 100:.3f}%"


def to_table(snap: Snapshot, invalid: Rejections | None = None) -> str:
    """One line per SLO series, worst budget first, then latency and input counts."""
    rows: list[tuple[float, list[str]]] = []
    for s in snap.slos:
        i1, i6 = s.window_index(3600), s.window_index(6 * 3600)
        for j, labels in enumerate(s.labels):
            label = ",".join(f"{k}={v}" for k, v in zip(s.spec.group_by, labels, strict=True))
            firing = [t.name for k, t in enumerate(s.spec.tiers) if s.firing[k, j]]
            eta = float(s.exhaustion_eta[j])
            rows.append(
                (
                    float(s.budget_remaining[j]),
                    [
                        s.spec.name,
                        label or "-",
                        f"{float(s.spec.objective) * 100:g}%",
                        _pct(float(s.budget_remaining[j])),
                        f"{int(s.period_bad[j])}/{int(s.period_total[j])}",
                        f"{float(s.burn_rate[i1, j]):.2f}",
                        f"{float(s.burn_rate[i6, j]):.2f}",
                        "-" if math.isnan(eta) else f"{eta / 3600:.1f}h",
                        ",".join(firing) or "-",
                    ],
                )
            )
    rows.sort(key=lambda r: r[0])
    header = [
        "SLO",
        "SERIES",
        "OBJECTIVE",
        "BUDGET LEFT",
        "BAD/TOTAL",
        "BURN 1h",
        "BURN 6h",
        "EXHAUST",
        "FIRING",
    ]
    lines = [f"now {rfc3339(snap.now_ms)}  events {snap.events}", *_columns([header, *[r[1] for r in rows]])]
    lat = snap.latency
    if lat is not None and lat.labels:
        keys = [f"p{_percent_key(p)}" for p in lat.spec.percentiles]
        table = [["GROUP", "WINDOW", "COUNT", *[f"{k} ms" for k in keys]]]
        for w in lat.windows:
            for g, labels in enumerate(lat.labels):
                table.append(
                    [
                        ",".join(labels),
                        format_duration(w.window),
                        str(int(w.count[g])),
                        *[f"{v:.3f}" for v in w.percentiles_ms[g].tolist()],
                    ]
                )
        lines += ["", *_columns(table)]
    if invalid and invalid.counts:
        lines += ["", "invalid: " + ", ".join(f"{k}={v}" for k, v in sorted(invalid.counts.items()))]
    return "\n".join(lines)


def _columns(table: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
