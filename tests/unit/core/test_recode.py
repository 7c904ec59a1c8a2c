"""`LabelColumn.recode` keeps its id table between batches: same ids, same target vocabulary, as a
table rebuilt over the whole source vocabulary on every call (the former way)."""

from __future__ import annotations

import random

import numpy as np

from sloguard._types import Intp
from sloguard.core.model import LabelColumn, Vocab


def rebuilt(column: LabelColumn, target: Vocab) -> Intp:
    """The former `recode`: a table over every source name, built on each call."""
    lut = np.fromiter(map(target.intern, column.vocab.names), np.intp, len(column.vocab))
    result: Intp = lut[column.codes]
    return result


def test_recode_matches_a_table_rebuilt_every_call() -> None:
    rnd = random.Random(3)
    # Two worlds fed the same operations: the kept table (new) and the rebuilt one (old).
    src_new, src_old = Vocab(), Vocab()
    targets_new, targets_old = [Vocab(), Vocab()], [Vocab(), Vocab()]
    for step in range(400):
        op = rnd.random()
        if op < 0.03:
            src_new.reset()
            src_old.reset()
        elif op < 0.06:
            k = rnd.randrange(2)
            targets_new[k].reset()
            targets_old[k].reset()
        elif op < 0.12:  # the target learns names of its own (from another decoder, say)
            k = rnd.randrange(2)
            extra = [f"t{rnd.randrange(300)}" for _ in range(rnd.randrange(1, 20))]
            targets_new[k].encode(extra)
            targets_old[k].encode(extra)
        values = [f"v{rnd.randrange(rnd.choice((5, 50, 500)))}" for _ in range(rnd.randrange(0, 60))]
        col_new = LabelColumn.of(values, src_new)
        col_old = LabelColumn.of(values, src_old)
        k = rnd.randrange(2)
        got = col_new.recode(targets_new[k])
        want = rebuilt(col_old, targets_old[k])
        assert got.tolist() == want.tolist(), step
        assert targets_new[k].names == targets_old[k].names, step
        assert [targets_new[k].names[i] for i in got.tolist()] == values


def test_recode_into_many_targets_and_itself() -> None:
    src = Vocab()
    col = LabelColumn.of(["a", "b", "a", "c"], src)
    assert col.recode(src) is col.codes
    for _ in range(3):
        targets = [Vocab() for _ in range(7)]  # more targets than the tables kept
        for t in targets:
            t.intern("z")
            assert [t.names[i] for i in col.recode(t).tolist()] == ["a", "b", "a", "c"]
            assert t.names == ["z", "a", "b", "c"]
