"""Snapshot -> plain data (JSON) and -> a table for people. Formatting only; no evaluation here."""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
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


def _by_labels(labels: Sequence[tuple[str, ...]]) -> list[tuple[int, tuple[str, ...]]]:
    """``(row, labels)`` in label order. Rows are numbered in arrival order, which depends on how the
    input was cut into batches: listing by label values makes the same events give the same report."""
    return sorted(enumerate(labels), key=lambda row: row[1])


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
        _Series(name, objective, dict(zip(group_by, labels, strict=True)), windows[j], periods[j], alerts[j])
        for j, labels in _by_labels(s.labels)
    ]


def to_dict(
    snap: Snapshot,
    invalid: Rejections | None = None,
    after_now: int = 0,
    reasons: Sequence[str] = (),
    unmatched: int = 0,
) -> dict[str, Any]:
    """The JSON document `sloguard replay --format json` prints (``reasons`` listed even when 0), for
    `msgspec.json.encode`: the entries of ``slos`` are msgspec Structs, encoded as JSON objects.
    ``unmatched``: valid events selected by no SLO; ``slo_events``: events each SLO selected (a grouped
    SLO with none has no entry in ``slos``)."""
    latency: list[dict[str, Any]] = []
    lat = snap.latency
    if lat is not None:
        keys = [_percent_key(p) for p in lat.spec.percentiles]
        for w in lat.windows:
            for g, labels in _by_labels(lat.labels):
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
        "unmatched": unmatched,
        "slo_events": {s.spec.name: s.events for s in snap.slos},
    }


#: The table fits a terminal this wide: series names are cut in the middle (marked ``…``) if need be.
TABLE_WIDTH = 120
_SLO_HEADER = ["SLO / SERIES", "BUDGET", "BAD/TOTAL", "BURN 1h", "BURN 6h", "EXHAUST", "FIRING"]


def _firing(s: SloSnapshot, j: int) -> str:
    """Firing tiers by severity and long window, ``page:1h,6h ticket:1d`` (the short window too where
    two tiers of a severity share a long window)."""
    tiers = s.spec.tiers
    longs = [(t.severity, t.long_window) for t in tiers]
    by_severity: dict[str, list[str]] = {}
    for k, t in enumerate(tiers):
        if s.firing[k, j]:
            name = format_duration(t.long_window)
            if longs.count((t.severity, t.long_window)) > 1:
                name += "/" + format_duration(t.short_window)
            by_severity.setdefault(t.severity.value, []).append(name)
    return " ".join(f"{sev}:{','.join(names)}" for sev, names in by_severity.items()) or "-"


def _eta(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds / 3600:.1f}h" if seconds < 2 * 86400 else f"{seconds / 86400:.1f}d"


@dataclass
class _Block:
    """One SLO in the table: a heading line, then one row per series, worst budget first."""

    heading: str
    worst: float
    rows: list[list[str]]


def _slo_blocks(snap: Snapshot) -> list[_Block]:
    """The SLOs, the one with the worst series first; an SLO that selected no event says so."""
    blocks: list[_Block] = []
    for s in snap.slos:
        heading = f"{s.spec.name}  objective {float(s.spec.objective) * 100:g}%"
        if s.spec.group_by:
            heading += f", by {','.join(s.spec.group_by)}"
        if s.events == 0:
            blocks.append(_Block(f"{heading}: no events", math.inf, []))
            continue
        if s.spec.group_by:
            heading += f": {len(s.labels)} series"
        i1, i6 = s.window_index(3600), s.window_index(6 * 3600)
        rows: list[tuple[float, list[str]]] = []
        for j, labels in enumerate(s.labels):
            budget = float(s.budget_remaining[j])
            cells = [
                "  " + (",".join(labels) or "-"),
                f"{budget * 100:.1f}%",
                f"{int(s.period_bad[j])}/{int(s.period_total[j])}",
                f"{float(s.burn_rate[i1, j]):.2f}",
                f"{float(s.burn_rate[i6, j]):.2f}",
                _eta(float(s.exhaustion_eta[j])),
                _firing(s, j),
            ]
            rows.append((budget, cells))
        rows.sort(key=lambda r: (r[0], r[1][0]))  # ties by label values, not arrival order
        blocks.append(_Block(heading, rows[0][0] if rows else math.inf, [cells for _, cells in rows]))
    blocks.sort(key=lambda b: b.worst)
    return blocks


def significant(value: float, figures: int) -> str:
    """``value`` to ``figures`` significant digits, never in exponent form: 2539.519 -> ``2500``,
    85.503 -> ``86``, 0.01234 -> ``0.012`` (2 figures). What an HDR histogram of that precision holds."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    digits = figures - 1 - math.floor(math.log10(abs(value)))
    rounded = round(value, digits)
    return f"{rounded:.{max(digits, 0)}f}"


def _latency_lines(snap: Snapshot) -> list[str]:
    lat = snap.latency
    if lat is None or not lat.labels:
        return []
    figures = lat.spec.significant_figures
    keys = [f"p{_percent_key(p)}" for p in lat.spec.percentiles]
    table = [["GROUP", "WINDOW", "COUNT", *[f"{k} ms" for k in keys]]]
    for w in lat.windows:
        for g, labels in _by_labels(lat.labels):
            count = int(w.count[g])
            values = w.percentiles_ms[g].tolist()
            shown = [significant(v, figures) if count else "-" for v in values]
            table.append([",".join(labels), format_duration(w.window), str(count), *shown])
    return ["", *_columns(table)]


def to_table(
    snap: Snapshot,
    invalid: Rejections | None = None,
    after_now: int = 0,
    unmatched: int = 0,
    width: int = TABLE_WIDTH,
) -> str:
    """A summary line of what was read, then per SLO (worst first) one line per series (worst budget
    first), then latency and the input's problems. At most ``width`` columns with realistic names
    (series are cut in the middle beyond that). Latency percentiles are shown to the histogram's
    significant figures (the JSON has them unrounded)."""
    # Per SLO: events older than its period (and longest window) when they came. Latency windows are
    # short, so most of a long replay is "too old" for them: not news, not shown.
    too_old = {s.spec.name: s.too_old_events for s in snap.slos if s.too_old_events}
    bad_lines = invalid.total if invalid else 0
    summary = (
        f"now {rfc3339(snap.now_ms)}  events {snap.events}  invalid {bad_lines}  "
        f"matched no SLO {unmatched}  after now {after_now}  too old {sum(too_old.values())}"
    )
    lines = [summary, *_slo_lines(_slo_blocks(snap), width)]
    lines += _latency_lines(snap)
    if invalid and invalid.counts:
        lines += ["", "invalid: " + ", ".join(f"{k}={v}" for k, v in sorted(invalid.counts.items()))]
    if too_old:
        lines += [
            "too old (before an SLO's period, per SLO): " + ", ".join(f"{k}={v}" for k, v in too_old.items())
        ]
    return "\n".join(lines)


def _cut(text: str, n: int, middle: bool) -> str:
    """``text`` in at most ``n`` characters: the end (or the middle) replaced by ``…``."""
    if len(text) <= n:
        return text
    if not middle:
        return text[: n - 1] + "…"
    head = (n - 1) // 2
    return text[:head] + "…" + text[len(text) - (n - 1 - head) :]


def _slo_lines(blocks: list[_Block], width: int) -> list[str]:
    """The header, then per SLO its heading and its series rows, aligned in columns; series names are
    cut in the middle (endpoints differ at both ends) if the rows would not fit in ``width``."""
    table = [_SLO_HEADER, *[r for b in blocks for r in b.rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(_SLO_HEADER))]
    room = width - sum(widths[1:]) - 2 * (len(widths) - 1)
    if widths[0] > room:
        table = [[_cut(r[0], max(room, len(_SLO_HEADER[0])), True), *r[1:]] for r in table]
    aligned = iter(_columns(table))
    lines = [next(aligned)]
    for b in blocks:
        lines.append(_cut(b.heading, width, False))
        lines += [next(aligned) for _ in b.rows]
    return lines


def _columns(table: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
