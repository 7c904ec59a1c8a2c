"""HDR latency histograms, recorded in bulk with numpy. The only module that imports ``hdrh``.

The layout of the counts array (bucket / sub-bucket indexing) is the one of HdrHistogram (Gil Tene's
design, as implemented by the ``hdrhistogram`` package): values are recorded in integer microseconds;
with ``s`` significant figures every value is kept to a relative precision of ``1 / 2^⌈log2(2·10^s)⌉−1``
(2 figures: 1/128 ≈ 0.78 %, 3 figures: 1/1024 ≈ 0.1 %). Recording one value at a time in Python costs
~1 µs; computing the counts index for a whole array with numpy and scatter-adding into a view of the
same counts array gives identical histograms ~100x faster (a test asserts the identity).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from hdrh.histogram import HdrHistogram

from sloguard._types import F64, I64, Bools


@dataclass(frozen=True, slots=True)
class HdrLayout:
    """Shape parameters of an HDR histogram (µs values from 0 to ``highest``)."""

    highest: int
    significant_figures: int
    unit_magnitude: int
    sub_bucket_half_count_magnitude: int
    sub_bucket_half_count: int
    sub_bucket_mask: int
    counts_len: int

    @classmethod
    def create(cls, highest_us: int, significant_figures: int) -> HdrLayout:
        h = new_histogram(highest_us, significant_figures)
        return cls(
            highest=highest_us,
            significant_figures=significant_figures,
            unit_magnitude=h.unit_magnitude,
            sub_bucket_half_count_magnitude=h.sub_bucket_half_count_magnitude,
            sub_bucket_half_count=h.sub_bucket_half_count,
            sub_bucket_mask=h.sub_bucket_mask,
            counts_len=h.counts_len,
        )

    def indices(self, values_us: I64) -> I64:
        """Counts-array index of each value: HdrHistogram's ``_counts_index_for`` vectorised.

        ``bucket = bit_length(v | mask) − unit_mag − (half_mag + 1)``,
        ``sub = v >> (bucket + unit_mag)``, ``index = ((bucket + 1) << half_mag) + sub − half_count``.
        Values must already be clipped to ``[0, highest]``.
        """
        v = values_us.astype(np.int64, copy=False)
        masked = (v | self.sub_bucket_mask).astype(np.float64)
        # frexp's exponent is the bit length for integers exactly representable in a double (< 2^53).
        bit_length = np.frexp(masked)[1].astype(np.int64)
        bucket = bit_length - self.unit_magnitude - (self.sub_bucket_half_count_magnitude + 1)
        sub = v >> (bucket + self.unit_magnitude)
        return ((bucket + 1) << self.sub_bucket_half_count_magnitude) + sub - self.sub_bucket_half_count

    def value_from_index(self, index: I64) -> I64:
        """Lowest value that maps to each counts index (``get_value_from_index``)."""
        idx = index.astype(np.int64, copy=False)
        bucket = (idx >> self.sub_bucket_half_count_magnitude) - 1
        sub = (idx & (self.sub_bucket_half_count - 1)) + self.sub_bucket_half_count
        low = bucket < 0
        sub = np.where(low, sub - self.sub_bucket_half_count, sub)
        bucket = np.where(low, 0, bucket)
        return sub << (bucket + self.unit_magnitude)

    def highest_equivalent(self, values: I64) -> I64:
        """Largest value that shares each value's counts slot (``get_highest_equivalent_value``)."""
        v = values.astype(np.int64, copy=False)
        bit_length = np.frexp((v | self.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
        bucket = bit_length - self.unit_magnitude - (self.sub_bucket_half_count_magnitude + 1)
        sub = v >> (bucket + self.unit_magnitude)
        lowest = sub << (bucket + self.unit_magnitude)
        bucket = np.where(sub >= 2 * self.sub_bucket_half_count, bucket + 1, bucket)
        return lowest + (np.int64(1) << (self.unit_magnitude + bucket)) - 1

    def to_microseconds(self, latency_ms: F64) -> I64:
        """Milliseconds (float) to integer microseconds, rounded, clipped to the trackable range."""
        us = np.rint(latency_ms * 1000.0)
        return np.clip(us, 0, self.highest).astype(np.int64)

    def percentiles(self, counts: I64, percentiles: tuple[float, ...]) -> F64:
        """Values (µs) at each percentile for each histogram row of ``counts`` (shape ``(rows, len)``).

        The nearest-rank percentile: with ``n`` values in a row, the answer for ``p`` is the ``k``-th
        smallest, ``k = max(1, ⌈p/100 · n⌉)`` (`nearest_ranks`, exact), so "p99 = X" means at least 99 %
        of the values are ≤ X. This is the rank HdrHistogram's Java ``getValueAtPercentile`` uses
        (``Math.ceil``; the older round-half-up ``int(p/100·n + 0.5)`` of the ``hdrh`` Python package
        could answer p90 of 46 values with the 41st, which only 89 % are ≤). The ``k``-th value is
        reported as the highest value equivalent to its HDR slot, as ``getValueAtPercentile`` does for
        ``p > 0`` (so the true value is at most the answer, within the histogram's precision below it);
        where a slot holds a single value (every value under ``2 · sub_bucket_half_count`` µs) that
        is the exact value. Rows with no data give 0.
        """
        rows = counts.shape[0]
        out = np.zeros((rows, len(percentiles)), np.float64)
        if rows == 0 or not percentiles:
            return out
        cum = np.cumsum(counts, axis=1)
        totals = cum[:, -1]
        live = np.flatnonzero(totals)
        if len(live) == 0:
            return out
        cum, totals = cum[live], totals[live]
        targets = np.stack([nearest_ranks(p, totals) for p in percentiles], axis=1)
        # One searchsorted for all rows: shift each row's cumulative counts (and its targets) by an
        # offset larger than any total, so the concatenation stays sorted. The first slot whose
        # running count reaches k holds the k-th smallest value.
        stride = int(totals.max()) + 1
        offsets = np.arange(len(live), dtype=np.int64)[:, None] * stride
        flat = (cum + offsets).reshape(-1)
        pos = np.searchsorted(flat, (targets + offsets).reshape(-1), side="left")
        idx = pos - np.repeat(np.arange(len(live), dtype=np.int64) * counts.shape[1], len(percentiles))
        values = self.highest_equivalent(self.value_from_index(idx))
        out[live] = values.reshape(len(live), len(percentiles))
        return out


def sparse_percentiles(
    layout: HdrLayout,
    percentiles: tuple[float, ...],
    rows: int,
    slots: Sequence[tuple[I64, I64]],
    mask: Bools | None = None,
) -> tuple[I64, F64]:
    """Per row (per owned row: ``mask`` over ``rows``, None for all), the events and the percentiles (µs)
    of the cells of ``slots`` (``row · counts_len + index`` keys, their counts) added together: what
    `HdrLayout.percentiles` of the dense ``(rows, counts_len)`` sums gives, from the non-empty cells only.

    Sorted by key, the cells of row ``r`` are a run; with ``C`` the running count over all of them and
    ``C₀(r)`` its value before the run, the ``k``-th smallest value of row ``r`` is in the first cell
    where ``C ≥ C₀(r) + k`` (``k = max(1, ⌈p/100 · n⌉) ≤ n``, `nearest_ranks`): the first dense slot
    whose running count reaches ``k``, as `HdrLayout.percentiles` searches (cells of equal key, or of
    count 0, cannot move it). A window holds thousands of non-empty cells, not ``rows · counts_len``
    (~500k at a thousand groups): several times less work than making it dense."""
    owned = rows if mask is None else int(mask.sum())
    out = np.zeros((owned, len(percentiles)), np.float64)
    count = np.zeros(owned, np.int64)
    if not slots or owned == 0:
        return count, out
    cl = layout.counts_len
    keys = np.concatenate([k for k, _ in slots])
    counts = np.concatenate([c for _, c in slots])
    if mask is not None and owned != rows:
        # Renumber the owned rows 0..owned-1 (their order kept) and drop the others' cells.
        row = keys // cl
        keep = mask[row]
        renumber = np.cumsum(mask, dtype=np.int64) - 1
        keys = renumber[row[keep]] * cl + (keys[keep] - row[keep] * cl)
        counts = counts[keep]
    keys, counts = _by_key(keys, counts)
    cum = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
    bounds = np.searchsorted(keys, np.arange(owned + 1, dtype=np.int64) * cl, side="left")
    before = cum[bounds[:-1]]
    count = cum[bounds[1:]] - before
    live = np.flatnonzero(count)
    if not percentiles or not len(live):
        return count, out
    targets = np.stack([nearest_ranks(p, count[live]) for p in percentiles], axis=1) + before[live, None]
    # cum[i + 1] is the running count through cell i: the first cell reaching the target.
    at = np.searchsorted(cum[1:], targets.reshape(-1), side="left")
    index = keys[at] - np.repeat(live.astype(np.int64) * cl, len(percentiles))
    values = layout.highest_equivalent(layout.value_from_index(index))
    out[live] = values.reshape(len(live), len(percentiles))
    return count, out


def _by_key(keys: I64, counts: I64) -> tuple[I64, I64]:
    """The cells in ascending key order (cells of equal key in any order: `sparse_percentiles` cannot
    tell). As they are when already so (one slot: a ring's slot holds sorted keys); else one sort of
    ``key << b | count`` (``b``: the largest count's bits) while that fits in 63 bits, about a third
    less than an argsort and two gathers (bench-scale's 36 window parts: 15.4 -> 9.8 ms)."""
    if len(keys) < 2 or bool(np.all(keys[1:] >= keys[:-1])):
        return keys, counts
    bits = int(counts.max()).bit_length()
    if int(keys.max()) < 1 << (62 - bits) and int(keys.min()) >= 0 and int(counts.min()) >= 0:
        packed = (keys << bits) | counts
        packed.sort()
        return packed >> bits, packed & ((1 << bits) - 1)
    order = np.argsort(keys, kind="stable")
    return keys[order], counts[order]


def nearest_ranks(percent: float, totals: I64) -> I64:
    """The nearest rank ``k = max(1, ⌈p/100 · n⌉)`` of percentile ``percent`` for each count ``n``.

    Computed exactly in integers: ``percent`` is taken as the decimal it is written as (its shortest
    ``repr``: 99.9 is 999/10, not the double just above it) and clamped to [0, 100]. In floating point
    99.9 / 100 · 1000 is 999.0000000000001 and its ceiling would be 1000, one rank too high (Java's
    HdrHistogram steps the percentile down one ulp to dodge that; exact integers need no dodge).
    """
    num, den = _share(percent)
    n = totals.astype(np.int64, copy=False)
    if num * den < 2**62:
        # n = q·den + r, so ⌈n·num/den⌉ = q·num + ⌈r·num/den⌉; q·num ≤ n and r·num < den·num: no overflow.
        q, r = np.divmod(n, den)
        k: I64 = q * num + (r * num + den - 1) // den
    else:  # a percentile written with very many digits: Python's unbounded integers
        k = np.array([-(-t * num // den) for t in n.tolist()], np.int64)
    return np.maximum(k, 1)


@functools.lru_cache(maxsize=64)
def _share(percent: float) -> tuple[int, int]:
    """``percent`` / 100 as the fraction `nearest_ranks` uses (numerator, denominator): made once per
    percentile (the `Fraction` arithmetic was ~10 µs a call, a call per percentile per window part)."""
    share = min(max(Fraction(repr(float(percent))), Fraction(0)), Fraction(100)) / 100
    return share.numerator, share.denominator


def new_histogram(highest_us: int, significant_figures: int) -> HdrHistogram:
    """An empty HdrHistogram tracking 1 µs .. ``highest_us``."""
    return HdrHistogram(1, highest_us, significant_figures)


def counts_view(hist: HdrHistogram) -> I64:
    """A writable numpy view (no copy) of a histogram's counts array."""
    return np.ctypeslib.as_array(hist.counts).view(np.int64)


def record_bulk(hist: HdrHistogram, values_us: I64) -> None:
    """Record many values at once into ``hist``; same result as ``record_value`` per value.

    Values outside ``[0, highest]`` are ignored, exactly as ``record_value`` ignores them.
    """
    layout = HdrLayout.create(hist.highest_trackable_value, hist.significant_figures)
    v = values_us.astype(np.int64, copy=False)
    idx = layout.indices(np.clip(v, 0, None))
    ok = (v >= 0) & (idx < hist.counts_len)
    v, idx = v[ok], idx[ok]
    if len(v) == 0:
        return
    np.add.at(counts_view(hist), idx, 1)
    hist.total_count += len(v)
    hist.min_value = min(hist.min_value, int(v.min()))
    hist.max_value = max(hist.max_value, int(v.max()))


def to_histogram(layout: HdrLayout, counts: I64) -> HdrHistogram:
    """An HdrHistogram holding ``counts`` (for its encoder, or to cross-check with hdrh's own code)."""
    hist = new_histogram(layout.highest, layout.significant_figures)
    counts_view(hist)[:] = counts
    nz = np.nonzero(counts)[0]
    if len(nz):
        hist.set_internal_tacking_values(int(nz[0]), int(nz[-1]), int(counts.sum()))
    return hist
