"""The exporter's data model: metric families as blocks of samples that share one label layout.

A `Family` is what one ``# HELP``/``# TYPE`` header covers; its samples come in `Block`s, each one label
layout (the per-series label names of a `SeriesLabels`, plus constant labels) and one value column. The
metric sources (slo.py, latency.py, selfmetrics.py, sloth.py) build families; text.py renders them and
collector.py yields them as prometheus_client metrics. Label values are escaped once per tick, in
`SeriesLabels`, and shared by every block over the same series.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from sloguard._types import F64, Intp

MetricType = Literal["gauge", "counter", "summary"]


def escape_label_value(value: str) -> str:
    """Text-format escaping of a label value: backslash, newline and double quote.

    Backslashes first, so the backslashes the other two escapes add are not doubled (the same order
    prometheus_client uses).
    """
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class SeriesLabels:
    """Label values of a set of series (e.g. the exported columns of one SLO), escaped once per tick.

    Rendering needs, per series, the text ``name1="v1",name2="v2"`` of every run of label names that are
    adjacent once a family's label names are sorted; those strings are built once and shared by all the
    blocks (windows, tiers, ...) that use the same run.

    Across ticks, `follow` keeps the same object while the labels are unchanged, and makes a successor of
    the same ``lineage`` when series were only appended: the renderer's cache (`text.Renderer`) may reuse
    what it rendered for rows that two `SeriesLabels` of one lineage both hold, since those rows have the
    same labels.
    """

    __slots__ = ("_pairs", "_runs", "lineage", "names", "values")

    def __init__(self, names: tuple[str, ...], values: Sequence[tuple[str, ...]]) -> None:
        self.names = names
        self.values = values
        self._pairs: list[list[str]] | None = None
        self._runs: dict[tuple[int, ...], list[str]] = {}
        #: Shared by this object and its successors (`follow`): row ``i`` has the same labels in each.
        self.lineage = object()

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def follow(
        cls, previous: SeriesLabels | None, names: tuple[str, ...], values: Sequence[tuple[str, ...]]
    ) -> SeriesLabels:
        """The labels ``values`` as the successor of ``previous`` (the same series a tick earlier):
        ``previous`` itself when nothing changed, one of its lineage (with the label text already built
        for the old rows) when series were only appended, else a new one."""
        if previous is None or previous.names != names or len(values) < len(previous):
            return cls(names, values)
        old = previous.values
        if len(values) == len(old):
            return previous if values is old or tuple(values) == tuple(old) else cls(names, values)
        if tuple(values[: len(old)]) != tuple(old):
            return cls(names, values)
        nxt = cls(names, values)
        nxt.lineage = previous.lineage
        tail = cls(names, values[len(old) :])
        if previous._pairs is not None:
            nxt._pairs = [a + b for a, b in zip(previous._pairs, tail._pair_columns(), strict=True)]
        nxt._runs = {dims: run + tail.run(dims) for dims, run in previous._runs.items()}
        return nxt

    def _pair_columns(self) -> list[list[str]]:
        if self._pairs is None:
            columns = list(zip(*self.values, strict=True)) if self.values else [() for _ in self.names]
            self._pairs = [
                [f'{name}="{escape_label_value(v)}"' for v in col]
                for name, col in zip(self.names, columns, strict=True)
            ]
        return self._pairs

    def run(self, dims: tuple[int, ...]) -> list[str]:
        """Per series: ``names[d]="value"`` for each ``d`` in ``dims``, joined by commas."""
        cached = self._runs.get(dims)
        if cached is not None:
            return cached
        pairs = self._pair_columns()
        if len(dims) == 1:
            run = pairs[dims[0]]
        else:
            run = list(map(",".join, zip(*(pairs[d] for d in dims), strict=True)))
        self._runs[dims] = run
        return run


#: One series without labels of its own (process-wide metrics; labels come from a block's ``const``).
ONE = SeriesLabels((), ((),))


@dataclass(frozen=True, slots=True)
class Block:
    """Samples of one family that share their label names.

    One sample per series of ``series`` — or only for the series listed in ``rows``, in that order — with
    the labels of that series plus ``const``; ``values`` has one entry per sample.
    """

    series: SeriesLabels
    const: tuple[tuple[str, str], ...]
    values: F64
    rows: Intp | None = None

    def samples(self) -> Iterator[tuple[dict[str, str], float]]:
        """(labels, value) per sample: the slow, obvious spelling, for the prometheus_client path."""
        const = dict(self.const)
        names = self.series.names
        rows: Sequence[int] = range(len(self.series)) if self.rows is None else self.rows.tolist()
        values: list[float] = self.values.tolist()
        for j, v in zip(rows, values, strict=True):
            yield {**dict(zip(names, self.series.values[j], strict=True)), **const}, v


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: ``name`` as exposed (counters include ``_total``), help text, type, samples."""

    name: str
    doc: str
    type: MetricType
    blocks: tuple[Block, ...]


def block(
    series: SeriesLabels,
    const: tuple[tuple[str, str], ...],
    values: npt.NDArray[Any] | Sequence[float],
    rows: Intp | None = None,
) -> Block:
    """A `Block` with ``values`` as float64; ``rows`` dropped when it selects every series in order."""
    if rows is not None and len(rows) == len(series):
        rows = None  # every series has a sample: skip the indirection
    return Block(series, const, np.asarray(values, np.float64), rows)


def one(value: float, const: tuple[tuple[str, str], ...] = ()) -> Block:
    """A single sample with only constant labels."""
    return Block(ONE, const, np.array([value], np.float64))


def present(values: F64) -> Intp | None:
    """Rows where ``values`` is not NaN (NaN means "no value": the sample is left out, not written NaN)."""
    keep = ~np.isnan(values)
    return None if keep.all() else np.flatnonzero(keep)
