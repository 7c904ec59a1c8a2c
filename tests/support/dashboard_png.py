"""The Grafana dashboards of ``deploy/grafana/dashboards`` as data, and one dashboard rendered to a PNG.

Used by ``tests/integration/test_grafana.py`` (structure, PromQL via promtool) and
``tests/e2e/test_paging.py`` (every panel query against a real Prometheus, then the SLO detail dashboard
drawn with matplotlib for the README). The interpolation follows Grafana's rules for the Prometheus data
source: ``$var``, ``${var}``, ``${var:format}`` and ``[[var]]``; the values of multi-value or
include-all variables are regex-escaped; built-ins such as ``$__rate_interval`` are given fixed values.

`render_dashboard` lays the panels out on Grafana's 24-column grid (``gridPos``) and draws each with
matplotlib's Agg backend: timeseries as lines (a target that a ``byFrameRefID`` override styles as a
threshold is drawn dashed red, as are ``thresholdsStyle: line`` steps), stat panels as a number,
state timelines as coloured bands, bar gauges as bars and tables as tables.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parents[2]
GRAFANA_DIR = REPO / "deploy" / "grafana"
DASHBOARD_DIR = GRAFANA_DIR / "dashboards"
#: The datasource reference every panel and target must carry.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

JSON = dict[str, Any]

#: Grafana's variable syntax: $name, [[name:fmt]], ${name.field:fmt} (templateSrv's regex).
VARIABLE_RE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}",
)
#: Values of Grafana's built-in variables used when a query runs outside Grafana.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
#: What Grafana's Prometheus data source escapes in a value of a multi-value/include-all variable.
_REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|]")


def load_dashboards(directory: Path = DASHBOARD_DIR) -> dict[str, JSON]:
    """Every ``*.json`` in ``directory``, by file stem, in name order."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def panels(dashboard: JSON) -> Iterator[JSON]:
    """Every panel that is not a row (panels inside collapsed rows included), in file order."""
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


def variables(dashboard: JSON) -> list[JSON]:
    """The template variables, in order."""
    return list(dashboard.get("templating", {}).get("list", []))


def referenced_variables(text: str) -> set[str]:
    """Names of the variables ``text`` refers to: no built-ins (``__*``), no regex groups (``$1``)."""
    names = set()
    for m in VARIABLE_RE.finditer(text):
        name = m.group(1) or m.group(2) or m.group(4)
        if not name.startswith("__") and not name.isdigit():
            names.add(name)
    return names


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def regex_escape(value: str) -> str:
    """A value of a multi-value variable as Grafana's Prometheus data source inserts it in a regex."""
    value = value.replace("\\", "\\\\\\\\")
    return _REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(0), value)


@dataclass(frozen=True)
class Selection:
    """The chosen values of a dashboard's variables. ``regex`` names the multi-value/include-all ones
    (their values are escaped, except an ``All`` value, which is the variable's ``allValue``)."""

    values: Mapping[str, str]
    regex: frozenset[str] = frozenset()
    all_selected: frozenset[str] = frozenset()


def interpolate(text: str, selection: Selection) -> str:
    """``text`` with every variable replaced as Grafana does before sending a Prometheus query."""

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name in BUILTINS:
            return BUILTINS[name]
        if name not in selection.values:
            return m.group(0)  # unknown (e.g. $1 in label_replace): Grafana leaves it alone
        value = selection.values[name]
        if fmt == "queryparam":
            return f"var-{name}={value}"
        if name in selection.regex and name not in selection.all_selected:
            return regex_escape(value)
        return value

    return VARIABLE_RE.sub(replace, text)


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$", re.S)


def parse_label_values(query: str) -> tuple[str | None, str]:
    """``label_values(selector, label)`` or ``label_values(label)`` -> (selector or None, label)."""
    m = _LABEL_VALUES.match(query)
    if m is None:
        raise ValueError(f"not a label_values() query: {query!r}")
    return m.group("selector"), m.group("label")


# -- data for rendering -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One series of a query result: its labels and points (Unix seconds, value)."""

    labels: Mapping[str, str]
    points: Sequence[tuple[float, float]]

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None


def series_from_prometheus(result: Sequence[JSON]) -> list[Series]:
    """A Prometheus ``vector`` or ``matrix`` result (``data.result``) as `Series`."""
    out = []
    for r in result:
        raw = r["values"] if "values" in r else [r["value"]]
        out.append(Series(dict(r["metric"]), [(float(t), float(v)) for t, v in raw]))
    return out


def legend(fmt: str | None, labels: Mapping[str, str]) -> str:
    """A series name from a ``legendFormat`` (``{{label}}`` placeholders), as Grafana names it."""
    if fmt and fmt != "__auto":
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt).strip()
    shown = {k: v for k, v in labels.items() if k not in ("__name__", "job", "instance")}
    name = labels.get("__name__", "")
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in shown.items()) + "}" if shown else name or "value"


def format_value(value: float | None, unit: str | None, decimals: int | None = None) -> str:
    """A value as a short string in the panel's unit (percentunit, s, short, none)."""
    if value is None or math.isnan(value):
        return "-"
    if unit == "percentunit":
        return f"{value * 100:.{decimals if decimals is not None else 2}f}%"
    if unit == "s":
        for size, suffix in ((86400, "d"), (3600, "h"), (60, "min")):
            if abs(value) >= size:
                return f"{value / size:.1f} {suffix}"
        return f"{value:.3g} s"
    if decimals is not None:
        return f"{value:.{decimals}f}"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.4g}"


@dataclass
class PanelData:
    """Query results of one panel: per refId, the series (range results for graphs, else instant)."""

    panel: JSON
    title: str
    results: dict[str, list[Series]] = field(default_factory=dict)


# -- rendering ----------------------------------------------------------------------------------------------

_BG = "#111217"
_PANEL = "#181b1f"
_TEXT = "#ccccdc"
_GRID = "#2c3235"
_COLORS = {
    "green": "#73bf69",
    "red": "#f2495c",
    "orange": "#ff9830",
    "yellow": "#fade2a",
    "blue": "#5794f2",
    "transparent": _PANEL,
}
_PALETTE = ["#73bf69", "#fade2a", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff", "#ffb357", "#ca95e5"]


def _color(name: str) -> str:
    return _COLORS.get(name, name)


def _threshold_color(steps: Sequence[JSON], value: float | None) -> str:
    color = _color(steps[0]["color"]) if steps else _TEXT
    if value is None:
        return color
    for s in steps[1:]:
        if s["value"] is not None and value >= s["value"]:
            color = _color(s["color"])
    return color


def _threshold_refs(panel: JSON) -> set[str]:
    """refIds a ``byFrameRefID`` override styles (drawn as threshold lines)."""
    return {
        o["matcher"]["options"]
        for o in panel.get("fieldConfig", {}).get("overrides", [])
        if o["matcher"]["id"] == "byFrameRefID"
    }


#: Figure geometry in inches: width, height of one grid row, outer margin, title band.
_WIDTH = 18.0
_ROW = 0.36
_MARGIN = 0.2
_HEADER = 0.75


def render_dashboard(
    title: str,
    data: Sequence[PanelData],
    path: Path,
    *,
    time_range: tuple[float, float] | None = None,
    subtitle: str = "",
) -> None:
    """Draw the panels in ``data`` at their ``gridPos`` into one PNG at ``path``; graphs share
    ``time_range`` (Unix seconds) as their x axis when it is given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    rows = max(p.panel["gridPos"]["y"] + p.panel["gridPos"]["h"] for p in data)
    height = _HEADER + rows * _ROW + _MARGIN
    fig = plt.figure(figsize=(_WIDTH, height), facecolor=_BG)
    fig.text(_MARGIN / _WIDTH, 1 - 0.4 / height, title, color=_TEXT, fontsize=15, fontweight="bold")
    if subtitle:
        fig.text(1 - _MARGIN / _WIDTH, 1 - 0.4 / height, subtitle, color="#8e8e8e", fontsize=9, ha="right")
    column = (_WIDTH - 2 * _MARGIN) / 24
    for pd in data:
        g = pd.panel["gridPos"]
        kind = pd.panel["type"]
        # Panel box in inches from the top left, then the plot area inside it (room for the title and,
        # for graphs, the tick labels).
        box_left = _MARGIN + g["x"] * column + 0.08
        box_top = _HEADER + g["y"] * _ROW + 0.08
        box_w = g["w"] * column - 0.16
        box_h = g["h"] * _ROW - 0.16
        graph = kind in ("timeseries", "state-timeline", "bargauge")
        pad_left = 1.05 if kind in ("state-timeline", "bargauge") else (0.6 if graph else 0.05)
        pad_bottom = 0.3 if kind in ("timeseries", "state-timeline") else 0.05
        pad_top = 0.3
        # A legend placed on the right (as the timeseries panels have it) gets its own column.
        right_legend = kind == "timeseries" and _legend_right(pd.panel)
        pad_right = min(2.4, 0.3 * box_w) if right_legend else 0.05
        ax = fig.add_axes(
            (
                (box_left + pad_left) / _WIDTH,
                1 - (box_top + box_h) / height + pad_bottom / height,
                (box_w - pad_left - pad_right) / _WIDTH,
                (box_h - pad_top - pad_bottom) / height,
            )
        )
        fig.patches.append(
            FancyBboxPatch(
                (box_left / _WIDTH, 1 - (box_top + box_h) / height),
                box_w / _WIDTH,
                box_h / height,
                boxstyle="round,pad=0,rounding_size=0.004",
                transform=fig.transFigure,
                facecolor=_PANEL,
                edgecolor=_GRID,
                zorder=-1,
            )
        )
        fig.text(
            (box_left + 0.1) / _WIDTH,
            1 - (box_top + 0.2) / height,
            pd.title,
            color=_TEXT,
            fontsize=10,
            fontweight="bold",
            va="center",
        )
        ax.set_facecolor(_PANEL)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if kind == "timeseries":
            _draw_timeseries(ax, pd, mdates)
        elif kind == "state-timeline":
            _draw_state_timeline(ax, pd, mdates)
        elif kind == "stat":
            _draw_stat(ax, pd)
        elif kind == "bargauge":
            _draw_bargauge(ax, pd)
        elif kind == "table":
            _draw_table(ax, pd)
        if time_range is not None and kind in ("timeseries", "state-timeline"):
            date2num = cast("Callable[[datetime], float]", mdates.date2num)  # untyped upstream
            ax.set_xlim(*(date2num(datetime.fromtimestamp(t, UTC)) for t in time_range))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, facecolor=_BG)
    plt.close(fig)


def _legend_right(panel: JSON) -> bool:
    return bool(panel.get("options", {}).get("legend", {}).get("placement") == "right")


def _style_axes(ax: Any, mdates: Any) -> None:
    ax.tick_params(colors=_TEXT, labelsize=8)
    ax.grid(True, color=_GRID, linewidth=0.6)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))


def _draw_timeseries(ax: Any, pd: PanelData, mdates: Any) -> None:
    defaults = pd.panel.get("fieldConfig", {}).get("defaults", {})
    custom = defaults.get("custom", {})
    unit = defaults.get("unit")
    log = custom.get("scaleDistribution", {}).get("type") == "log"
    thresholds = _threshold_refs(pd.panel)
    color = iter(_PALETTE * 10)
    ymin = math.inf
    for target in pd.panel["targets"]:
        is_threshold = target["refId"] in thresholds
        for s in pd.results.get(target["refId"], []):
            ts = [datetime.fromtimestamp(t, UTC) for t, _ in s.points]
            vs = [v if not (log and v <= 0) else math.nan for _, v in s.points]
            ymin = min([ymin, *(v for v in vs if v > 0)])
            name = legend(target.get("legendFormat"), s.labels)
            if is_threshold:
                ax.plot(ts, vs, color=_COLORS["red"], linestyle=(0, (6, 4)), linewidth=1.1, label=name)
            else:
                ax.plot(ts, vs, color=next(color), linewidth=1.6, label=name)
    if custom.get("thresholdsStyle", {}).get("mode") == "line":
        for step in defaults.get("thresholds", {}).get("steps", [])[1:]:
            ax.axhline(step["value"], color=_color(step["color"]), linestyle=(0, (6, 4)), linewidth=1)
    if log and math.isfinite(ymin):
        ax.set_yscale("log")
    if unit == "percentunit":
        ax.yaxis.set_major_formatter(
            lambda v, _pos: format_value(v, "percentunit", 3 if 0 < abs(v) < 0.01 else 0)
        )
    elif unit == "s":
        ax.yaxis.set_major_formatter(lambda v, _pos: format_value(v, "s"))
    _style_axes(ax, mdates)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            labels,
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0) if _legend_right(pd.panel) else None,
            facecolor=_PANEL,
            edgecolor=_GRID,
            labelcolor=_TEXT,
            ncol=1 if _legend_right(pd.panel) or len(handles) <= 4 else 2,
        )


def _draw_state_timeline(ax: Any, pd: PanelData, mdates: Any) -> None:
    rows: list[tuple[str, Series]] = []
    for target in pd.panel["targets"]:
        for s in pd.results.get(target["refId"], []):
            rows.append((legend(target.get("legendFormat"), s.labels), s))
    rows.sort(key=lambda r: r[0])
    for i, (_, s) in enumerate(rows):
        for (t0, v), (t1, _) in zip(s.points, [*s.points[1:], s.points[-1]], strict=True):
            start = datetime.fromtimestamp(t0, UTC)
            width = datetime.fromtimestamp(max(t1, t0 + 1), UTC) - start
            color = _COLORS["red"] if v >= 1 else _COLORS["green"]
            ax.barh(i, width, left=start, height=0.7, color=color, linewidth=0)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.invert_yaxis()
    _style_axes(ax, mdates)
    ax.grid(False)


def _draw_stat(ax: Any, pd: PanelData) -> None:
    defaults = pd.panel.get("fieldConfig", {}).get("defaults", {})
    options = pd.panel.get("options", {})
    series = [s for t in pd.panel["targets"] for s in pd.results.get(t["refId"], [])]
    value = series[0].last if series else None
    if options.get("textMode") == "name" and series:
        text = legend(pd.panel["targets"][0].get("legendFormat"), series[0].labels)
    elif value is None and defaults.get("noValue"):
        text = defaults["noValue"]
    else:
        text = format_value(value, defaults.get("unit"), defaults.get("decimals"))
    steps = defaults.get("thresholds", {}).get("steps", [])
    if options.get("colorMode", "value") == "background":
        ax.set_facecolor(_threshold_color(steps, value))
        color = "white"
    else:
        color = _TEXT
    ax.text(
        0.5,
        0.42,
        text,
        ha="center",
        va="center",
        fontsize=22,
        color=color,
        fontweight="bold",
        transform=ax.transAxes,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_bargauge(ax: Any, pd: PanelData) -> None:
    defaults = pd.panel.get("fieldConfig", {}).get("defaults", {})
    steps = defaults.get("thresholds", {}).get("steps", [])
    bars = [
        (legend(t.get("legendFormat"), s.labels), s.last or 0.0)
        for t in pd.panel["targets"]
        for s in pd.results.get(t["refId"], [])
    ]
    names = [b[0] for b in bars]
    values = [b[1] for b in bars]
    ax.barh(range(len(bars)), values, color=[_threshold_color(steps, v) for v in values])
    ax.set_yticks(range(len(bars)), names)
    ax.invert_yaxis()
    ax.tick_params(colors=_TEXT, labelsize=8)


def table_rows(pd: PanelData) -> tuple[list[str], list[list[str]]]:
    """The panel's table as Grafana shows it after merge/organize/sortBy: (header, rows).

    One row per distinct label set (``__name__``, ``job``, ``instance`` and excluded columns left out);
    one value column per target, named ``Value`` for a single target and ``Value #<refId>`` otherwise,
    then renamed by the organize transformation.
    """
    organize: JSON = {}
    sort: list[JSON] = []
    for tr in pd.panel.get("transformations", []):
        if tr["id"] == "organize":
            organize = tr["options"]
        elif tr["id"] == "sortBy":
            sort = tr["options"].get("sort", [])
    rename: dict[str, str] = organize.get("renameByName", {})
    hidden = {"__name__", "job", "instance", "Time"}
    hidden |= {k for k, v in organize.get("excludeByName", {}).items() if v}
    targets = pd.panel["targets"]
    merged: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
    label_names: list[str] = []
    value_names: list[str] = []
    for t in targets:
        raw = "Value" if len(targets) == 1 else f"Value #{t['refId']}"
        column = rename.get(raw, raw)
        for s in pd.results.get(t["refId"], []):
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k not in hidden))
            label_names += [k for k, _ in key if k not in label_names]
            values = merged.setdefault(key, {})
            if column not in hidden:
                if column not in value_names:
                    value_names.append(column)
                values[column] = s.last if s.last is not None else math.nan
    records = [(dict(key), values) for key, values in merged.items()]
    for spec in reversed(sort):
        name, desc = spec["field"], bool(spec.get("desc"))
        if name in label_names:
            records.sort(key=lambda r: r[0].get(name, ""), reverse=desc)
        else:
            present = [r for r in records if not math.isnan(r[1].get(name, math.nan))]
            absent = [r for r in records if math.isnan(r[1].get(name, math.nan))]
            present.sort(key=lambda r: r[1][name], reverse=desc)
            records = present + absent
    units = _column_units(pd.panel)
    header = [*label_names, *value_names]
    rows = [
        [labels.get(n, "") for n in label_names]
        + [format_value(values.get(n), *units.get(n, (None, None))) for n in value_names]
        for labels, values in records
    ]
    return header, rows


def _column_units(panel: JSON) -> dict[str, tuple[str | None, int | None]]:
    out: dict[str, tuple[str | None, int | None]] = {}
    for o in panel.get("fieldConfig", {}).get("overrides", []):
        if o["matcher"]["id"] != "byName":
            continue
        props = {p["id"]: p.get("value") for p in o["properties"]}
        out[o["matcher"]["options"]] = (props.get("unit"), props.get("decimals"))
    return out


def _draw_table(ax: Any, pd: PanelData) -> None:
    header, rows = table_rows(pd)
    ax.set_xticks([])
    ax.set_yticks([])
    if not rows:
        ax.text(0.5, 0.5, "No data", ha="center", va="center", color=_TEXT, transform=ax.transAxes)
        return
    shown = rows[:8]
    tbl = ax.table(cellText=shown, colLabels=header, loc="upper center", cellLoc="left")
    tbl.auto_set_font_size(False)
    tbl.set_fontsize(8)
    tbl.scale(1, 1.25)
    for (r, _c), cell in tbl.get_celld().items():
        cell.set_edgecolor(_GRID)
        cell.set_facecolor(_PANEL if r else "#22252b")
        cell.get_text().set_color(_TEXT)
