"""The exporter's data model: blocks, and label values escaped once per set of series."""

from __future__ import annotations

import numpy as np

from sloguard.export.model import ONE, SeriesLabels, block, escape_label_value, one, present


def test_block_drops_rows_that_select_every_series() -> None:
    series = SeriesLabels(("a",), [("x",), ("y",)])
    full = block(series, (), np.array([1, 2]), np.array([0, 1], np.intp))
    assert full.rows is None and full.values.dtype == np.float64
    some = block(series, (), [2.0], np.array([1], np.intp))
    assert some.rows is not None and some.rows.tolist() == [1]
    assert list(some.samples()) == [({"a": "y"}, 2.0)]


def test_one_is_a_single_sample_with_constant_labels() -> None:
    b = one(3, (("version", "1.2.3"),))
    assert b.series is ONE and b.values.tolist() == [3.0]
    assert list(b.samples()) == [({"version": "1.2.3"}, 3.0)]


def test_present_leaves_out_nan() -> None:
    assert present(np.array([1.0, 2.0])) is None
    rows = present(np.array([np.nan, 2.0, np.nan, 0.0]))
    assert rows is not None and rows.tolist() == [1, 3]


def test_series_labels_escape_once_and_join_runs() -> None:
    series = SeriesLabels(("a", "b", "c"), [("1", 'q"', "x"), ("2", "n\n", "y")])
    assert series.run((0,)) == ['a="1"', 'a="2"']
    assert series.run((1, 2)) == ['b="q\\"",c="x"', 'b="n\\n",c="y"']
    assert series.run((1, 2)) is series.run((1, 2))  # built once per tick, shared by every block
    assert escape_label_value('\\"\n') == '\\\\\\"\\n'
    assert SeriesLabels(("a",), []).run((0,)) == []
