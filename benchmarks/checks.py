"""The table of ``python -m benchmarks.daemon``: one `Check` a line, a measured value and, for the
issue's targets, the target and a verdict; and the column layout the soak's table shares."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Check:
    """One line of the table: a measured value and, for the issue's targets, the target."""

    bench: str
    metric: str
    value: float | None
    unit: str  # "ev/s", "msg/s", "s", "MiB", "x", "B", "n", "%"
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        if self.value is None or math.isnan(self.value):
            return "ERROR"
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "PASS" if ok else "FAIL"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def _fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    if unit in ("ev/s", "msg/s", "n"):
        return f"{value:,.0f} {unit}" if unit != "n" else f"{value:,.0f}"
    if unit == "s":
        return f"{value * 1000:,.0f} ms" if abs(value) < 10 else f"{value:,.1f} s"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "%":
        return f"{value:.0f} %"
    return f"{value:g} {unit}"


def columns(head: tuple[str, ...], rows: Sequence[tuple[str, ...]], align: str, group: bool = False) -> str:
    """``rows`` under ``head`` and a rule, two spaces apart; each column but the last padded to its widest
    cell, left (``<``) or right (``>``) as ``align`` says per column. ``group``: a blank line wherever the
    first column changes."""

    def line(r: tuple[str, ...]) -> str:
        cells = [c.ljust(w) if a == "<" else c.rjust(w) for c, w, a in zip(r, widths, align, strict=False)]
        return "  ".join([*cells, r[-1]]).rstrip()

    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines = [line(head)]
    lines.append("-" * len(lines[0]))
    for i, r in enumerate(rows):
        if group and i and r[0] != rows[i - 1][0]:
            lines.append("")
        lines.append(line(r))
    return "\n".join(lines)


def table(checks: Sequence[Check]) -> str:
    """The daemon benchmarks' table, a blank line between benchmarks."""
    rows = [
        (
            c.bench,
            c.metric,
            _fmt(c.value, c.unit),
            ("" if c.target is None else ("≥ " if c.higher_is_better else "≤ ") + _fmt(c.target, c.unit)),
            c.verdict,
            c.note,
        )
        for c in checks
    ]
    head = ("benchmark", "measure", "value", "target", "verdict", "note")
    return columns(head, rows, "<<>><", group=True)
