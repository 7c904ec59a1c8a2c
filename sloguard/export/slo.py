"""SLO metric source: `SloSnapshot`s → the ``sloguard_slo_*`` families.

Per SLO: objective, metadata and period length (one sample each); per series and window: events, bad
events, error ratio and burn rate (the window covering the whole period is labelled ``window="period"``);
per series: the error budget left, spent, and its exhaustion ETA; per series and alert tier: whether
the tier fires, next to the tier's threshold. With ``top_k``, an SLO exports only a selection of its
series (`select_series`), the same in every family.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sloguard._types import F64, Intp
from sloguard.core.snapshot import SloSnapshot
from sloguard.core.spec import HOUR, AlertTier, format_duration
from sloguard.export.model import Block, Family, SeriesLabels, block, one, present

#: Window label value of the rows that cover the SLO period (its actual length is in
#: ``sloguard_slo_period_seconds``).
PERIOD = "period"

Column = Callable[[SloSnapshot], npt.NDArray[Any]]


def select_series(s: SloSnapshot, top_k: int | None) -> Intp | None:
    """Columns of ``s`` to export: ``None`` (all), or the ``top_k`` series with the highest 1h burn rate
    plus every series with a firing tier, in state order.

    Ties keep the older series (a stable sort on the negated burn rate), so a tie does not make the
    exported set flicker between ticks.
    """
    if top_k is None or top_k >= s.series:
        return None
    burn = s.burn_rate[s.window_index(HOUR)]
    keep = np.zeros(s.series, np.bool_)
    keep[np.argsort(-burn, kind="stable")[:top_k]] = True
    keep |= s.firing.any(axis=0)
    return np.flatnonzero(keep)


class SloView:
    """The exported columns of one SLO snapshot (all of them, or the top-k selection).

    ``ids`` are the labels on every series of the SLO: ``slo`` and the SLO's static ``labels``.
    """

    __slots__ = ("cols", "ids", "name", "s", "series")

    def __init__(self, s: SloSnapshot, top_k: int | None, previous: SeriesLabels | None = None) -> None:
        self.s = s
        self.name = s.spec.name
        self.ids: tuple[tuple[str, str], ...] = (("slo", self.name), *s.spec.labels)
        self.cols = select_series(s, top_k)
        labels = s.labels if self.cols is None else [s.labels[j] for j in self.cols.tolist()]
        #: ``previous``: this SLO's exported series a tick earlier (see `SeriesLabels.follow`).
        self.series = SeriesLabels.follow(previous, s.spec.group_by, labels)

    def take(self, a: npt.NDArray[Any]) -> F64:
        """The exported columns of ``a`` (last axis = series), as float64."""
        picked = a if self.cols is None else a[..., self.cols]
        return picked.astype(np.float64, copy=False)


def per_slo(views: Sequence[SloView]) -> SeriesLabels:
    """One series per SLO, labelled ``slo``."""
    return SeriesLabels(("slo",), [(v.name,) for v in views])


#: Families with one sample per series and window, plus the period row: (name, help, (by window, period)).
_WINDOWED: tuple[tuple[str, str, Column, Column], ...] = (
    ("sloguard_slo_events", "Events inside the window.", lambda s: s.total, lambda s: s.period_total),
    ("sloguard_slo_bad_events", "Bad events inside the window.", lambda s: s.bad, lambda s: s.period_bad),
    (
        "sloguard_slo_error_ratio",
        "Bad events / events inside the window (0 when empty).",
        lambda s: s.error_ratio,
        lambda s: s.period_error_ratio,
    ),
    (
        "sloguard_slo_burn_rate",
        "Error ratio / error budget (1 - objective) inside the window; 1 spends the budget in one period.",
        lambda s: s.burn_rate,
        lambda s: s.period_burn_rate,
    ),
)

#: Families with one sample per series: (name, help, column, whether NaN in the column means "no sample").
_PER_SERIES: tuple[tuple[str, str, Column, bool], ...] = (
    (
        "sloguard_slo_error_budget_remaining_ratio",
        "Fraction of the period's error budget left (negative when overspent).",
        lambda s: s.budget_remaining,
        False,
    ),
    (
        "sloguard_slo_error_budget_consumed_ratio",
        "Fraction of the period's error budget spent (1 - remaining).",
        lambda s: s.budget_consumed,
        False,
    ),
    (
        "sloguard_slo_error_budget_exhaustion_seconds",
        "Time until the budget is spent at the current 1h burn rate; absent when not burning.",
        lambda s: s.exhaustion_eta,
        True,
    ),
)


#: Families of time-slice SLOs only (`core.slices`), like `_WINDOWED`: (name, help, by window, period).
_MaybeColumn = Callable[[SloSnapshot], npt.NDArray[Any] | None]
_SLICED: tuple[tuple[str, str, _MaybeColumn, _MaybeColumn], ...] = (
    (
        "sloguard_slo_time_slices",
        "Complete time slices judged inside the window (time-slice budgeting only).",
        lambda s: s.slices,
        lambda s: s.period_slices,
    ),
    (
        "sloguard_slo_bad_time_slices",
        "Bad time slices inside the window (ratio_timeslices: the sum of per-slice bad ratios).",
        lambda s: s.bad_slices,
        lambda s: s.period_bad_slices,
    ),
)


#: An SLO's blocks of each ``sloguard_slo_*`` family, in `slo_families`' order (`view_blocks`).
ViewBlocks = tuple[tuple[Block, ...], ...]


def slo_families(views: Sequence[SloView], blocks: Sequence[ViewBlocks] | None = None) -> Iterator[Family]:
    """The ``sloguard_slo_*`` families of ``views``, in exposition order (all gauges). ``blocks``: each
    view's `view_blocks` (made here when not given; `SnapshotCollector` keeps an SLO's while its
    snapshot is the same object)."""
    per_view = [view_blocks(v) for v in views] if blocks is None else blocks
    for k, (name, doc, drop_empty) in enumerate(_FAMILIES):
        joined = tuple(b for bs in per_view for b in bs[k])
        if joined or not drop_empty:
            yield Family(name, doc, "gauge", joined)


def view_blocks(v: SloView) -> ViewBlocks:
    """One SLO's blocks of every ``sloguard_slo_*`` family (`_FAMILIES`' order): a function of its
    snapshot, its selection and its series labels alone."""
    s = v.s
    out: list[tuple[Block, ...]] = [
        (one(float(s.spec.objective), v.ids),),
        # What each SLO is about, for joins (`* on (slo) group_left (service) sloguard_slo_info`): the
        # SLO series carry only slo, their group labels and the SLO's static labels.
        (one(1.0, (*v.ids, ("service", s.spec.service), ("sli", s.spec.sli.kind), ("period", _period(v)))),),
        (one(s.spec.period.nominal_seconds, v.ids),),
    ]
    out.extend(tuple(_windowed(v, by_window(s), period(s))) for _, _, by_window, period in _WINDOWED)
    for _, _, by_slice, period_slices in _SLICED:
        w, p = by_slice(s), period_slices(s)
        out.append(tuple(_windowed(v, w, p)) if w is not None and p is not None else ())
    out.extend((_per_series(v, column(s), drop_nan),) for _, _, column, drop_nan in _PER_SERIES)
    out.extend(_tier_blocks(v))
    return tuple(out)


def _period(v: SloView) -> str:
    return v.s.spec.period.describe()


Labels = tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=4096)
def _window_labels(ids: Labels, windows: tuple[int, ...]) -> tuple[Labels, ...]:
    """The constant labels of an SLO's window rows (``ids`` and ``window``), the period's last. Made once
    per SLO, not per family and tick (~2,300 `format_duration` calls and label tuples a bench-scale
    update); the same tuples every tick, which the renderer's `_layout` memo keys on."""
    return (*((*ids, ("window", format_duration(w))) for w in windows), (*ids, ("window", PERIOD)))


def _windowed(v: SloView, by_window: npt.NDArray[Any], period: npt.NDArray[Any]) -> Iterator[Block]:
    rows = v.take(by_window)
    labels = _window_labels(v.ids, v.s.windows)
    for i in range(len(labels) - 1):
        yield Block(v.series, labels[i], rows[i])  # (float64 already: `block` would only check it)
    yield Block(v.series, labels[-1], v.take(period))


def _per_series(v: SloView, column: npt.NDArray[Any], drop_nan: bool) -> Block:
    values = v.take(column)
    rows = present(values) if drop_nan else None
    if rows is not None:
        values = values[rows]
    return block(v.series, v.ids, values, rows)


def _tier_labels(ids: Labels, tiers: tuple[AlertTier, ...]) -> tuple[tuple[float, Labels], ...]:
    """Per alert tier of an SLO: its threshold and constant labels (once per SLO, as `_window_labels`;
    kept by the tiers tuple's identity, the spec's own: hashing tiers hashes their `Fraction`s)."""
    seen = _TIERS.get(id(tiers))
    if seen is not None and seen[0] is tiers and seen[1] == ids:
        return seen[2]
    if len(_TIERS) >= 4096:
        _TIERS.clear()
    made = _make_tier_labels(ids, tiers)
    _TIERS[id(tiers)] = (tiers, ids, made)  # (the tuple kept alive with it: its id is not reused)
    return made


_TIERS: dict[int, tuple[tuple[AlertTier, ...], Labels, tuple[tuple[float, Labels], ...]]] = {}


def _make_tier_labels(ids: Labels, tiers: tuple[AlertTier, ...]) -> tuple[tuple[float, Labels], ...]:
    return tuple(
        (
            float(tier.factor),
            (
                *ids,
                ("severity", tier.severity.value),
                ("long_window", format_duration(tier.long_window)),
                ("short_window", format_duration(tier.short_window)),
            ),
        )
        for tier in tiers
    )


def _tier_blocks(v: SloView) -> tuple[tuple[Block, ...], tuple[Block, ...]]:
    """The SLO's ``burn_rate_threshold`` and ``alert_firing`` blocks, one per tier."""
    fires = v.take(v.s.firing)
    tiers = _tier_labels(v.ids, v.s.spec.tiers)
    return (
        tuple(one(factor, labels) for factor, labels in tiers),
        tuple(block(v.series, labels, fires[k]) for k, (_, labels) in enumerate(tiers)),
    )


#: The ``sloguard_slo_*`` families in exposition order: (name, help, whether left out when no SLO has a
#: block of it: the time-slice families).
_FAMILIES: tuple[tuple[str, str, bool], ...] = (
    ("sloguard_slo_objective_ratio", "SLO objective: the fraction of events that must be good.", False),
    ("sloguard_slo_info", "SLO metadata; always 1.", False),
    (
        "sloguard_slo_period_seconds",
        "Nominal length of the SLO period (a calendar month counts 30 days).",
        False,
    ),
    *((name, doc, False) for name, doc, _, _ in _WINDOWED),
    *((name, doc, True) for name, doc, _, _ in _SLICED),
    *((name, doc, False) for name, doc, _, _ in _PER_SERIES),
    (
        "sloguard_slo_burn_rate_threshold",
        "Burn rate above which a tier fires (over both its long and its short window).",
        False,
    ),
    (
        "sloguard_slo_alert_firing",
        "1 when the tier's burn rate exceeds its threshold over both windows (and min_events), else 0.",
        False,
    ),
)
