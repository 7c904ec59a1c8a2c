"""describe(): the human summary of a loaded config, printed by `sloguard check`.

Reads only :mod:`sloguard.core.spec` types: what the daemon will run, not what the file said. Numbers are
shown as exact decimals where they have one (``14.4``), else rounded with a ``~`` (``~0.933333``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sloguard.core.spec import (
    FINE_HORIZON,
    CalendarPeriod,
    Config,
    LatencySpec,
    SloSpec,
    format_duration,
    max_burn_rate,
)
from sloguard.specfile.errors import number
from sloguard.specfile.exclusions import describe_exclusions
from sloguard.specfile.inputsummary import describe_input
from sloguard.specfile.slas import describe_slas


def _statuses(ranges: Sequence[tuple[int, int]]) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def _columns(rows: list[list[str]]) -> list[str]:
    """Rows of cells as left-aligned columns separated by two spaces."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _describe_slo(s: SloSpec) -> list[str]:
    if isinstance(s.period, CalendarPeriod):
        period = (
            f"{s.period.describe()}; burn rates use a nominal {format_duration(s.period.nominal_seconds)}"
        )
    else:
        period = f"{s.period.describe()} rolling"
    if s.sli.kind == "latency" and not s.sli.bad_status:
        sli = f"latency: bad = latency > {s.sli.threshold_ms:g} ms (the status never counts)"
    elif s.sli.kind == "latency":
        sli = f"latency: bad = latency > {s.sli.threshold_ms:g} ms or status in {_statuses(s.sli.bad_status)}"
    else:
        sli = f"availability: bad = status in {_statuses(s.sli.bad_status)}"
    group = ", ".join(s.group_by) if s.group_by else "none (one series)"
    res = s.resolution
    lines = [f"SLO {s.name}"]
    rows = [
        ("service", s.service),
        ("description", s.description),
        (
            "endpoints",
            (", ".join(s.endpoints) if s.endpoints else "all")
            + (f" except {', '.join(s.endpoints_exclude)}" if s.endpoints_exclude else ""),
        ),
        ("labels", _pairs(s.labels)),
        (
            "objective",
            f"{number(s.objective * 100)}% (error budget {number(s.error_budget * 100)}% of {_counted(s)})",
        ),
        ("budgeting", _budgeting(s)),
        ("period", period),
        (
            "group by",
            f"{group}; at most {s.max_series} series"
            + (f"; idle ones evicted after {format_duration(s.series_ttl)}" if s.series_ttl else "")
            + (f"; exports the {s.export_top_k} worst (1h burn) and any firing" if s.export_top_k else ""),
        ),
        ("SLI", sli),
        (
            "resolution",
            f"{format_duration(res.fine)} buckets for windows up to {format_duration(FINE_HORIZON)}, "
            f"{format_duration(res.coarse)} beyond",
        ),
        (
            "alert tiers",
            (str(len(s.tiers)) if s.tiers else "none") + (f", named {s.alert_name}" if s.alert_name else ""),
        ),
    ]
    lines += [f"  {label:<12} {value}".rstrip() for label, value in rows if value]
    if s.tiers:
        lines += ["    " + line for line in _columns(_tier_table(s))]
    for t in s.tiers:
        if t.labels or t.annotations:
            extra = [f"labels {_pairs(t.labels)}"] if t.labels else []
            extra += [f"annotations {', '.join(name for name, _ in t.annotations)}"] if t.annotations else []
            lines.append(f"    {t.name}: {'; '.join(extra)}")
    if s.dropped_tiers:
        # Defaults the user did not write are dropped rather than refused (see mapping._tiers): say so.
        # The last tier of each table (factor 1, or 28/30) can always fire: some tier always remains.
        dropped = ", ".join(f"{t.name} (factor {number(t.factor)})" for t in s.dropped_tiers)
        objective, ceiling = number(s.objective * 100), number(max_burn_rate(s.objective))
        lines.append(
            f"  warning: default tiers left out, they can never fire at objective {objective}%"
            f" (the burn rate is at most {ceiling}): {dropped}"
        )
    return lines


def _pairs(labels: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{name}={value}" for name, value in labels)


def _tier_table(s: SloSpec) -> list[list[str]]:
    """The alert tiers of ``s`` as table rows, a header first."""
    header = ["severity", "long", "short", "budget", "factor", "fires above error ratio", "for", "min_events"]
    table = [header]
    for t in s.tiers:
        threshold = t.factor * s.error_budget  # the error ratio both windows must exceed
        table.append(
            [
                t.severity.value,
                format_duration(t.long_window),
                format_duration(t.short_window),
                f"{number(t.budget_percent)}%" if t.budget_percent is not None else "-",
                number(t.factor),
                f"{number(threshold)} ({number(threshold * 100)}%)",
                format_duration(t.for_seconds),
                str(t.min_events),
            ]
        )
    return table


def _describe_latency(lat: LatencySpec | None) -> list[str]:
    if lat is None:
        return ["latency percentiles: none"]
    lines = [
        "latency percentiles",
        f"  {'group by':<12} {', '.join(lat.group_by) if lat.group_by else 'none (one group)'}"
        f"; at most {lat.max_groups} groups",
        f"  {'percentiles':<12} {', '.join(f'p{p:g}' for p in lat.percentiles)}"
        f" ({lat.significant_figures} significant figures)",
        f"  {'windows':<12} {', '.join(map(format_duration, lat.windows))}"
        f" (resolution {format_duration(lat.resolution)}, at most {lat.max_slots} histogram slots each)",
    ]
    for a in lat.alerts:
        where = ", ".join(f"{k}={v}" for k, v in a.match) or "every group"
        guard = f", at least {a.min_events} events" if a.min_events else ""
        lines.append(
            f"  {'alert':<12} {a.severity.value}: p{a.percentile:g} over {format_duration(a.window)}"
            f" > {a.threshold_ms:g} ms for {format_duration(a.for_seconds)} ({where}{guard})"
        )
    return lines


def describe(config: Config, input_preset: str | None = None) -> str:
    """A human summary of a loaded config: one block per SLO, the latency section, then the input mapping
    in force (the file's ``input:``, else ``input_preset``: the preset the settings name)."""
    lines: list[str] = []
    for spec in config.slos:
        lines += [*_describe_slo(spec), ""]
    lines += _describe_latency(config.latency)
    lines += describe_slas(config.slas)
    lines += describe_exclusions(config.exclusions)
    lines += ["", *describe_input(config.input, input_preset)]
    return "\n".join(lines)


def _counted(s: SloSpec) -> str:
    return "events" if s.budgeting is None else f"{format_duration(s.budgeting.slice)} slices"


def _budgeting(s: SloSpec) -> str:
    """The time-slice method (an empty line, left out, for occurrences)."""
    b = s.budgeting
    if b is None:
        return ""
    if b.good_ratio is not None:
        rule = f"timeslices: a slice is good when >= {number(b.good_ratio * 100)}% of its events are good"
    else:
        rule = "ratio_timeslices: the mean of per-slice good ratios"
    empty = "are skipped" if b.empty == "skip" else f"count {b.empty}"
    return f"{rule}; empty slices {empty}; the current slice is pending"
