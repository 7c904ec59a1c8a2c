"""Snapshot -> plain data (JSON) and -> a table for people. Formatting only; no evaluation here."""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Sequence
from typing import Any

import msgspec

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


class _Window(msgspec.Struct, gc=False):
    total: int
    bad: int
    error_ratio: float
    burn_rate: float


class _Period(msgspec.Struct, gc=False):
    window: str
    start: str
    end: str
    total: int
    bad: int
    error_ratio: float
    burn_rate: float
    budget_remaining: float
    budget_consumed: float
    exhaustion_eta_seconds: float | None


class _Alert(msgspec.Struct, gc=False):
    severity: str
    long_window: str
    short_window: str
    factor: float
    min_events: int
    firing: bool


@functools.cache
def _windows_struct(names: tuple[str, ...]) -> type[msgspec.Struct]:
    """A Struct encoded as ``{"5m": {...}, "30m": {...}, ...}`` for these window names."""
    fields = [f"w{i}" for i in range(len(names))]
    return msgspec.defstruct(
        "Windows", [(f, _Window) for f in fields], rename=dict(zip(fields, names, strict=True)), gc=False
    )


class _Series(msgspec.Struct, gc=False):
    slo: str
    objective: float
    labels: dict[str, str]
    windows: msgspec.Struct  # one _Window per window name, see _windows_struct
    period: _Period
    alerts: list[_Alert]


def _slo_series(s: SloSnapshot) -> list[_Series]:
    """One entry per series. Thousands of series make this the bulk of the report, so entries are
    msgspec Structs (encoded as objects with the fields in order; built several times faster than
    dicts, and untracked by the cyclic GC), and each part is built for every series at once from
    columns (tolist is C speed; zipping columns beats indexing per series)."""
    n = len(s.labels)
    names = [format_duration(w) for w in s.windows]
    total, bad = s.total.tolist(), s.bad.tolist()
    er, br = s.error_ratio.tolist(), s.burn_rate.tolist()
    per_window = [list(map(_Window, total[i], bad[i], er[i], br[i])) for i in range(len(names))]
    windows = list(map(_windows_struct(tuple(names)), *per_window))
    period = s.spec.period.describe()
    p_start, p_end = rfc3339(s.period_bounds[0]), rfc3339(s.period_bounds[1])
    sums = (s.period_total, s.period_bad, s.period_error_ratio, s.period_burn_rate)
    budgets = (s.budget_remaining, s.budget_consumed)
    etas = [None if math.isnan(eta) else eta for eta in s.exhaustion_eta.tolist()]
    heads = ([period] * n, [p_start] * n, [p_end] * n)
    periods = list(map(_Period, *heads, *(c.tolist() for c in (*sums, *budgets)), etas))
    firing = s.firing.tolist()
    tiers = [
        (t.severity.value, format_duration(t.long_window), format_duration(t.short_window), float(t.factor))
        for t in s.spec.tiers
    ]
    per_tier = [
        [_Alert(severity, long_w, short_w, factor, t.min_events, f) for f in firing[k]]
        for k, (t, (severity, long_w, short_w, factor)) in enumerate(zip(s.spec.tiers, tiers, strict=True))
    ]
    alerts = (
        [list(entries) for entries in zip(*per_tier, strict=True)] if per_tier else [[] for _ in range(n)]
    )
    name, objective, group_by = s.spec.name, float(s.spec.objective), s.spec.group_by
    return [
        _Series(name, objective, dict(zip(group_by, labels, strict=True)), w, p, a)
        for labels, w, p, a in zip(s.labels, windows, periods, alerts, strict=True)
    ]


def to_dict(
    snap: Snapshot, invalid: Rejections | None = None, after_now: int = 0, reasons: Sequence[str] = ()
) -> dict[str, Any]:
    """The JSON document `sloguard replay --format json` prints (``reasons`` listed even when 0), for
    `msgspec.json.encode`: the entries of ``slos`` are msgspec Structs, encoded as JSON objects."""
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
