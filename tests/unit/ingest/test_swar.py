"""`swar.flag_positions` against numpy's own nonzero, on every density: one set byte a word (the usual
newline case), several (where the positions come out in order without a sort), full, empty, and sizes
around the word and recursion boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from sloguard.ingest.swar import flag_positions, scratch_size


@pytest.mark.parametrize("n", [1, 7, 8, 9, 63, 64, 65, 4095 * 8, 4096 * 8 + 3, 300_001])
@pytest.mark.parametrize("density", [0.0, 0.001, 0.02, 0.3, 0.9, 1.0])
def test_positions_equal_flatnonzero(n: int, density: float) -> None:
    rng = np.random.default_rng(n * 1000 + int(density * 100))
    padded = np.zeros(-(-n // 8) * 8, np.bool_)
    padded[:n] = rng.random(n) < density
    words = padded.view(np.uint64)
    got = flag_positions(words, np.zeros(scratch_size(len(words)), np.bool_))
    assert got.dtype == np.intp
    np.testing.assert_array_equal(got, np.flatnonzero(padded))


def test_two_set_bytes_in_one_word_among_single_ones() -> None:
    flags = np.zeros(8 * 5000, np.bool_)
    flags[[3, 5, 80, 81, 82, 87, 9000, 39_999]] = True
    words = flags.view(np.uint64)
    got = flag_positions(words, np.zeros(scratch_size(len(words)), np.bool_))
    assert got.tolist() == [3, 5, 80, 81, 82, 87, 9000, 39_999]
