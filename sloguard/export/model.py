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
    """

    __slots__ = ("_pairs", "_runs", "names", "values")

    def __init__(self, names: tuple[str, ...], values: Sequence[tuple[str, ...]]) -> None:
        self.names = names
        self.values = values
        self._pairs: list[list[str]] | None = None
        self._runs: dict[tuple[int, ...], list[str]] = {}

    def __len__(self) -> int:
        return len(self.values)

    def run(self, dims: tuple[int, ...]) -> list[str]:
        """Per series: ``names[d]="value"`` for each ``d`` in ``dims``, joined by commas."""
        cached = self._runs.get(dims)
        if cached is not None:
            return cached
        if self._pairs is None:
            columns = list(zip(*self.values, strict=True)) if self.values else [() for _ in self.names]
            self._pairs = [
                [f'{name}="{escape_label_value(v)}"' for v in col]
                for name, col in zip(self.names, columns, strict=True)
            ]
        pairs = self._pairs
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
