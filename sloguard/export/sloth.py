"""Sloth-compatible metric source: Sloth's recording-rule names and labels (github.com/slok/sloth, its
generated rules), so Sloth's dashboard (grafana.com 14348) reads sloguard unchanged.

Values are exact here, where Sloth's period ratio averages 5-minute ratios.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy.typing as npt

from sloguard.core.spec import DAY, format_duration
from sloguard.export.model import Block, Family, block, one
from sloguard.export.slo import SloView

Labels = tuple[tuple[str, str], ...]
#: One SLO's block of a family, from its view, its Sloth id labels and the sloguard version.
PerSlo = Callable[[SloView, Labels, str], Block]


def _windowed(v: SloView, ids: Labels, window: str, values: npt.NDArray[Any]) -> Block:
    return block(v.series, (*ids, ("sloth_window", window)), v.take(values))


def _period(v: SloView) -> str:
    return format_duration(v.s.spec.period.nominal_seconds)


#: Constant labels of ``sloth_slo_info`` (with ``sloth_version``).
_INFO = (("sloth_mode", "sloguard"), ("sloth_spec", "sloguard/v1"))

#: The families with one block per SLO, in exposition order: (name, help, block of one SLO).
_PER_SLO: tuple[tuple[str, str, PerSlo], ...] = (
    ("slo:objective:ratio", "Sloth-compatible: SLO objective.",
     lambda v, ids, _: one(float(v.s.spec.objective), ids)),
    ("slo:error_budget:ratio", "Sloth-compatible: 1 - objective.",
     lambda v, ids, _: one(float(v.s.spec.error_budget), ids)),
    ("slo:time_period:days", "Sloth-compatible: SLO period in days.",
     lambda v, ids, _: one(v.s.spec.period.nominal_seconds / DAY, ids)),
    # Sloth derives these three with `/ on(...) group_left`, which keeps the left side's sloth_window.
    ("slo:current_burn_rate:ratio", "Sloth-compatible: burn rate over 5m.",
     lambda v, ids, _: _windowed(v, ids, "5m", v.s.burn_rate[v.s.window_index(300)])),
    ("slo:period_burn_rate:ratio", "Sloth-compatible: burn rate over the period.",
     lambda v, ids, _: _windowed(v, ids, _period(v), v.s.period_burn_rate)),
    ("slo:period_error_budget_remaining:ratio", "Sloth-compatible: error budget left in the period.",
     lambda v, ids, _: _windowed(v, ids, _period(v), v.s.budget_remaining)),
    ("sloth_slo_info", "Sloth-compatible: one series per SLO; always 1.",
     lambda v, ids, version: one(1.0, (*ids, *_INFO, ("sloth_version", version)))),
)  # fmt: skip


def sloth_families(views: Sequence[SloView], version: str) -> Iterator[Family]:
    """``slo:sli_error:ratio_rate<window>`` per window (shortest first), then the per-SLO families."""
    ids = [_ids(v) for v in views]
    rates: dict[int, list[Block]] = {}
    for v, i in zip(views, ids, strict=True):
        for w, b in _rates(v, i):
            rates.setdefault(w, []).append(b)
    for w in sorted(rates):
        yield Family(
            f"slo:sli_error:ratio_rate{format_duration(w)}",
            "Sloth-compatible: error ratio over the window (sloth_window).",
            "gauge",
            tuple(rates[w]),
        )
    for name, doc, make in _PER_SLO:
        yield Family(name, doc, "gauge", tuple(make(v, i, version) for v, i in zip(views, ids, strict=True)))


def _ids(v: SloView) -> Labels:
    spec = v.s.spec
    return (
        ("sloth_id", f"{spec.service}-{spec.name}"),
        ("sloth_service", spec.service),
        ("sloth_slo", spec.name),
        *spec.labels,  # Sloth puts the SLO's labels on every series too
    )


def _rates(v: SloView, ids: Labels) -> Iterator[tuple[int, Block]]:
    """(window seconds, block) of the error ratio per window of one SLO, then over its period."""
    period_s = v.s.spec.period.nominal_seconds
    for i, w in enumerate(v.s.windows):
        if w != period_s:  # a window as long as the period: the period row says it
            yield w, _windowed(v, ids, format_duration(w), v.s.error_ratio[i])
    yield period_s, _windowed(v, ids, _period(v), v.s.period_error_ratio)
