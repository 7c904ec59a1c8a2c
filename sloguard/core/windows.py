"""Event-time buckets: a ring of good/bad counts per series, and exact window sums over it.

Time is cut into buckets of ``res_ms``; bucket ``k`` holds events with ``k·res <= ts < (k+1)·res``.
A ring of ``n`` slots keeps the buckets ``(head − n, head]`` where ``head`` is the newest bucket seen
(from an event or from :meth:`BucketRing.advance`). Buckets newer than ``head`` are empty by definition,
so reading never has to mutate. A window ``[start, end)`` whose edges are bucket boundaries is the exact
sum of the buckets inside it: no interpolation, no approximation.

Layout is slot-major (``counts[slot, row]``): events of one batch mostly share a few time buckets, so the
scatter-add touches a few contiguous rows of memory instead of jumping across every series.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from sloguard._types import I64, Bools, Intp
from sloguard.core.state import RingState


def _cat(parts: list[I64]) -> I64:
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def reused(head: int | None, bucket: int, n: int) -> range:
    """The buckets a ring of ``n`` slots, newest ``head``, reuses when its head moves to ``bucket``.

    Slot ``b mod n`` holds bucket ``b``; moving the head forward hands the slots of the buckets after it to
    newer ones, which must start empty. None when the ring is new or ``bucket`` is not newer; at most ``n``.
    """
    if head is None or bucket <= head:
        return range(0)
    return range(max(head + 1, bucket - n + 1), bucket + 1)


class Ring:
    """What every ring of time slots shares: slot ``b mod n`` holds bucket ``b``; ``head`` is the newest
    bucket seen (slots newer than it are empty by definition), ``low`` the oldest ever offered (to tell
    "evicted" from "never had data"). Subclasses say how a reused slot is emptied (`_clear`)."""

    __slots__ = ("head", "low", "n")

    def __init__(self, n: int) -> None:
        self.n = n
        #: Newest bucket seen (None until the first event or advance).
        self.head: int | None = None
        #: Oldest bucket ever offered (to tell "evicted" from "never had data").
        self.low: int | None = None

    def _clear(self, buckets: range) -> None:
        raise NotImplementedError

    def advance(self, bucket: int) -> None:
        """Move ``head`` forward to ``bucket`` (never backwards), clearing slots that are reused."""
        cleared = reused(self.head, bucket, self.n)
        if cleared:
            self._clear(cleared)
        self.head = bucket if self.head is None else max(self.head, bucket)

    def _open(self, buckets: I64) -> tuple[int, int]:
        """Take a non-empty batch's buckets: ``head`` moves to the newest, ``low`` notes the oldest (too-old
        ones included: a window reaching back to them cannot be exact). Returns the oldest bucket the ring
        keeps, and the batch's oldest."""
        self.advance(int(buckets.max()))
        assert self.head is not None
        low = int(buckets.min())
        self.low = low if self.low is None else min(self.low, low)
        return self.head - self.n + 1, low


class EvictedWindowError(ValueError):
    """A window reaches back past data the ring has already dropped."""


#: Series rows are stored in blocks of this many columns, so adding series never copies old ones.
BLOCK = 16384

#: Up to this many (cell, span) pairs of the cells `add_cells` wrote since a read are added to the spans one
#: by one (`_settle_cells`), past it in one numpy call.
_FEW_CELLS = 32
#: The largest count each narrower counter type holds (looked up once: ``np.iinfo`` makes an object a call).
_HOLDS: dict[type, int] = {t: int(np.iinfo(t).max) for t in (np.uint16, np.uint32)}
#: `add_cells` batches held for the spans at most (then added to them at once): a bound on the memory.
_PENDING_BATCHES = 64

#: Up to this many cells, `BucketRing._shift` gathers the buckets leaving the spans (a call per block), past
#: it subtracts them span by span straight from their slots (a temporary that large is fresh pages).
_GATHER = 1 << 16
#: What `BucketRing._shift` counts a `BucketRing._nested` call as, in cells read: its fixed cost (~10 numpy
#: calls, ~15 us here) over what reading a cell costs (~1 ns).
_CALL = 16384


def _capacity(rows: int) -> int:
    """The series columns the blocks of a ring asked for ``rows`` have: a first block of the power of two
    holding them (up to ``BLOCK``), then whole blocks."""
    if rows > BLOCK:
        return -(-rows // BLOCK) * BLOCK
    width = 1
    while width < rows:
        width *= 2
    return width


class BucketRing(Ring):
    """Good/bad event counts per (series row, time bucket) for the last ``n`` buckets.

    Counts start as uint16 and widen (uint32, then int64) the first time a cell would overflow:
    before each scatter every touched cell's count plus what the batch adds to it is checked. A
    customer series with a few requests a minute then costs 2 bytes a bucket, a busy one 4 or 8, and
    no count is ever wrapped. Rows live in blocks of ``BLOCK`` columns; the first block starts
    narrow and doubles, so a one-series SLO does not pay for a thousand.

    The blocks are allocated at the first write (`_allocate`): until then every read gives zeros without
    them. Stage 2 makes an aggregator per partition, 2 rings per SLO each, and most SLOs of a partition get
    no cells for a while (or never): ~28k arrays of zeros at start-up otherwise.

    The sum over every row of each slot (``slot_total``, ``slot_bad``, int64) is summed from the cells at
    its first read, then kept beside them, updated by every write, so the SLO as a whole reads its history
    in O(slots), not O(slots x series). Only the UI reads it: a ring nobody reads it of (a stage-2
    partition's) neither allocates it nor pays for it on each write.
    """

    __slots__ = (
        "_bad",
        "_before",
        "_pending",
        "_rows",
        "_slots",
        "_spans",
        "_total",
        "dtype",
        "res_ms",
    )

    def __init__(self, res_ms: int, n: int, rows: int = 1) -> None:
        if res_ms <= 0 or n <= 0:
            raise ValueError("resolution and slot count must be positive")
        super().__init__(n)
        self.res_ms = res_ms
        self.dtype: type[np.unsignedinteger[Any]] | type[np.signedinteger[Any]] = np.uint16
        self._total: list[npt.NDArray[np.signedinteger]] = []
        self._bad: list[npt.NDArray[np.signedinteger]] = []
        #: Per slot, the sum of every row's count, totals then bad counts (exact: the same integers, added
        #: as they arrive); None until first read (`slot_total`), and not kept up to date till then.
        self._slots: tuple[I64, I64] | None = None
        #: The series columns of the blocks (`_capacity`), allocated or not yet.
        self._rows = 0
        #: Running per-row sums over bucket spans read every tick (`group_sums`, `span_sums`), kept up to
        #: date by every write (`add`'s when they are next read: `_defer`), so a tick costs O(rows x
        #: windows), not O(rows x slots). Spans that end together (a capture's windows) are one `_Group`.
        self._spans: dict[object, _Group] = {}
        #: Buckets `add` wrote since the running sums were last brought up to date (`_settle`), inside some
        #: span, each with its per-row counts as they were before its first such write: the spans do not
        #: hold these writes yet. See `_defer`.
        self._before: dict[int, tuple[I64, I64]] = {}
        #: Cells `add_cells` wrote since the running sums were last brought up to date, as ``(buckets,
        #: rows, totals, bads)``, but those of a bucket in ``_before`` (its column's difference holds them):
        #: the spans learn them at the next read too (`_settle`), once for every batch since.
        self._pending: list[tuple[I64, Intp, I64, I64]] = []
        self.ensure_rows(max(1, rows))

    @property
    def slot_total(self) -> I64:
        """Per slot, the total count of every row (see `_slot_sums`)."""
        return self._slot_sums()[0]

    @property
    def slot_bad(self) -> I64:
        """Per slot, the bad count of every row (see `_slot_sums`)."""
        return self._slot_sums()[1]

    def _slot_sums(self) -> tuple[I64, I64]:
        """Per slot, the sums of every row's total and bad counts: summed from the cells the first time
        (the slots that may hold counts: `_held`), kept up to date by every write from then on."""
        if self._slots is not None:
            return self._slots
        total, bad = np.zeros((2, self.n), np.int64)  # (one allocation)
        if not self._total:
            return total, bad  # (nothing written: zeros, not kept, so writes need not keep them)
        for first, stop in self._held():
            for blocks, acc in ((self._total, total), (self._bad, bad)):
                for blk in blocks:
                    acc[first:stop] += blk[first:stop].sum(axis=1, dtype=np.int64)
        self._slots = (total, bad)
        return self._slots

    @property
    def rows(self) -> int:
        """The series the ring has room for (`ensure_rows`)."""
        return self._rows

    def ensure_rows(self, rows: int) -> None:
        """Make room for ``rows`` series."""
        if rows <= self._rows:
            return
        self._rows = _capacity(rows)
        if self._total:
            first = min(self._rows, BLOCK)
            if self._total[0].shape[1] < first:
                for blocks in (self._total, self._bad):
                    blocks[0] = self._copied(blocks[0], first, self.dtype)
            for _ in range((self._rows - first) // BLOCK - (len(self._total) - 1)):
                self._total.append(np.zeros((self.n, BLOCK), self.dtype))
                self._bad.append(np.zeros((self.n, BLOCK), self.dtype))
        for span in self._spans.values():
            span.grow(self._rows)

    def _allocate(self) -> None:
        """Allocate the blocks (zeros, as wide as `rows`) and the slot sums of a ring about to be written
        to for the first time; every write calls it first."""
        if self._total:
            return
        first = min(self._rows, BLOCK)
        for blocks in (self._total, self._bad):
            blocks.append(np.zeros((self.n, first), self.dtype))
            blocks += [np.zeros((self.n, BLOCK), self.dtype) for _ in range((self._rows - first) // BLOCK)]

    def _clear(self, buckets: range) -> None:
        if not self._total:
            return  # nothing was ever written: the reused slots hold nothing (and no span any count)
        self._settle()  # the reused slots' counts must be in the spans before they are subtracted
        if self._spans and self.head is not None:
            # The reused slots held the oldest buckets kept, from head - n + 1 on (every one of them when
            # the head jumps by n or more): a span covering them loses their counts.
            first, stop = self.head + 1 - self.n, min(buckets.stop - self.n, self.head + 1)
            for group in self._spans.values():
                end = min(group.hi, stop)
                if max(group.lo, first) < end:  # (the spans of a group end together: so do their parts)
                    group.sums -= self._nested([max(lo, first) for lo in group.los], end)
        # The reused slots held buckets ``[start − n, stop − n)``; none older than ``low`` was ever written
        # (a ring that saw minutes of a 30-day span, a fresh stage-2 partition: most ticks clear nothing).
        n = self.n
        lo, hi = buckets.start - n, buckets.stop - n
        if self.low is not None and self.low > lo:
            lo = self.low
        if lo >= hi:
            return
        if len(buckets) == n:  # every slot: fresh zeros (fill and zeros_like write every page)
            for blocks in (self._total, self._bad):
                for i, blk in enumerate(blocks):
                    blocks[i] = np.zeros(blk.shape, blk.dtype)  # calloc: no page written
            if self._slots is not None:
                for sums in self._slots:
                    sums[:] = 0
            return
        a, z = lo % n, (hi - 1) % n + 1
        for part in (slice(a, z),) if a < z else (slice(a, n), slice(0, z)):  # (slices: no index array)
            for blocks in (self._total, self._bad):
                for blk in blocks:
                    blk[part] = 0
            if self._slots is not None:
                for sums in self._slots:
                    sums[part] = 0

    def add(self, rows: Intp, buckets: I64, bad: Bools) -> int:
        """Count one event per element; returns how many were too old for the ring (and dropped).

        ``head`` first moves to the newest bucket of the batch, so the result does not depend on the
        order of events inside the batch.
        """
        if len(buckets) == 0:
            return 0
        return self.add_counts(count_cells(rows, buckets, bad, int(rows.max()) + 1))

    def add_counts(self, cells: Cells) -> int:
        """`add` of events already counted per cell (`count_cells`, `coarser`); returns how many events
        were too old for the ring (and dropped). Counters widen, as `add` says, before any write."""
        rows, buckets, total, bad = cells
        if len(buckets) == 0:
            return 0
        floor, low = self._open(buckets)
        dropped = 0
        if low < floor:
            keep = buckets >= floor
            dropped = int(total[~keep].sum())
            rows, buckets, total, bad = rows[keep], buckets[keep], total[keep], bad[keep]
            if len(buckets) == 0:
                return dropped
        self._defer(buckets)
        if not self._total:
            self._fit(int(total.max()))  # (the counts are the batch's: allocated as wide as they need)
            self._allocate()
        # buckets % n, spelled with a floor division: numpy divides by a scalar several times faster
        # than it takes a remainder.
        slots = buckets - buckets // self.n * self.n
        hit = np.flatnonzero(bad)
        if self._slots is not None:  # (float weights: exact, the sums are far below 2**53)
            slot_total, slot_bad = self._slots
            slot_total += np.bincount(slots, total, self.n).astype(np.int64)
            if len(hit):
                slot_bad += np.bincount(slots[hit], bad[hit], self.n).astype(np.int64)
        # The cells ascend by row: each block's are a run (every block but a lone first one is BLOCK wide,
        # a power of two). Whatever can be is done once for every cell, not once a block: the numpy calls
        # per block (~2 each for the total, 3 for a block holding bad cells) are what grows with series.
        if len(self._total) == 1:
            blocks = range(1)
            cuts = [0, len(rows)]
            at = slots * self._total[0].shape[1] + rows
        else:
            blocks = range(int(rows[0]) // BLOCK, int(rows[-1]) // BLOCK + 1)
            edges = np.arange(blocks.start, blocks.stop + 1, dtype=np.int64) * BLOCK
            cuts = np.searchsorted(rows, edges).tolist()
            at = slots * BLOCK + (rows & (BLOCK - 1))
        now = [self._total[b].reshape(-1).take(at[cuts[i] : cuts[i + 1]]) for i, b in enumerate(blocks)]
        new = (now[0] if len(now) == 1 else np.concatenate(now)) + total  # int64: cannot wrap
        self._fit(int(new.max()))  # (a cell's bad count never exceeds its total: the totals are enough)
        new = new.astype(self.dtype)
        for i, b in enumerate(blocks):
            lo, hi = cuts[i], cuts[i + 1]
            if lo < hi:
                self._total[b].reshape(-1)[at[lo:hi]] = new[lo:hi]
        if len(hit):  # (the cells with bad events, found above)
            add = bad[hit].astype(self.dtype)
            hit_cuts = np.searchsorted(hit, cuts).tolist()
            for i, b in enumerate(blocks):
                lo, hi = hit_cuts[i], hit_cuts[i + 1]
                if lo < hi:
                    self._bad[b].reshape(-1)[at[hit[lo:hi]]] += add[lo:hi]
        return dropped

    def _defer(self, buckets: I64) -> None:
        """Note the buckets about to be written that some running span holds, with their counts before the
        write (once each until `_settle`). The spans then learn the batch's counts at the next read, per
        bucket written (a copy of its column per span holding it), not per batch and span (a count of
        the events per row: a sort of the batch per span, ~2/3 of an ingest at 100k series)."""
        if not self._spans:
            return
        lo, hi = int(buckets.min()), int(buckets.max())
        # A batch mostly spans a bucket or two: its range, rather than a sort for the distinct ones (a
        # bucket of the range with no event costs a copy, and changes nothing).
        written = range(lo, hi + 1) if hi - lo < 4 else np.unique(buckets).tolist()
        groups = self._spans.values()
        for b in written:
            if b not in self._before and any(g.lo <= b < g.hi for g in groups):
                self._before[b] = self._column(b)

    def _settle(self) -> None:
        """Add to every span what `add` wrote since `_defer` noted it: per bucket, its counts now minus
        those before (integers: exactly what counting each event into the spans gave); and the cells
        `add_cells` wrote since (`_pending`), each into the spans holding its bucket."""
        if self._pending:
            self._settle_cells()
        if not self._before:
            return
        before, self._before = self._before, {}
        for b, (t0, b0) in before.items():
            t1, b1 = self._column(b)
            # Rows added since hold no count from before (zeros then).
            t1[: len(t0)] -= t0
            b1[: len(b0)] -= b0
            for group in self._spans.values():
                if group.lo <= b < group.hi:
                    inside = [i for i, lo in enumerate(group.los) if lo <= b]
                    if len(inside) == len(group.los):
                        group.total += t1  # (a row to every span: broadcast)
                        group.bad += b1
                    else:
                        group.total[inside] += t1
                        group.bad[inside] += b1

    def _settle_cells(self) -> None:
        """`_settle`'s part for `add_cells`' cells: each into the spans holding its bucket (a group's spans
        end together: those starting at or before it)."""
        pending, self._pending = self._pending, []
        bucket, rows, total, bad = (
            pending[0] if len(pending) == 1 else (np.concatenate(p) for p in zip(*pending, strict=True))
        )
        cells = None
        for group in self._spans.values():
            if len(bucket) * len(group.los) <= _FEW_CELLS:
                # A few cells (a piece adds ~4 to a ring): one Python step per cell and span costs less
                # than the numpy calls below, a few microseconds each whatever their size.
                if cells is None:
                    columns = (bucket.tolist(), rows.tolist(), total.tolist(), bad.tolist())
                    cells = list(zip(*columns, strict=True))
                lo, hi, los, group_total, group_bad = group.lo, group.hi, group.los, group.total, group.bad
                for b, r, t, x in cells:
                    if lo <= b < hi:
                        for i, start in enumerate(los):
                            if start <= b:
                                group_total[i, r] += t
                                if x:
                                    group_bad[i, r] += x
                continue
            # Every (span, cell) pair of a span holding the cell's bucket, added in one call.
            inside = np.array(group.los)[:, None] <= bucket
            inside &= bucket < group.hi
            span, cell = np.nonzero(inside)
            if not len(cell):
                continue
            at = rows[cell]
            np.add.at(group.total, (span, at), total[cell])
            hit = np.flatnonzero(bad[cell])
            if len(hit):
                np.add.at(group.bad, (span[hit], at[hit]), bad[cell[hit]])

    def _column(self, bucket: int) -> tuple[I64, I64]:
        """Total and bad counts of ``bucket`` (one the ring holds) per row, as int64 copies."""
        if not self._total:
            return np.zeros(self._rows, np.int64), np.zeros(self._rows, np.int64)
        slot = bucket % self.n
        out = []
        for blocks in (self._total, self._bad):
            acc = np.empty(self.rows, np.int64)
            col = 0
            for blk in blocks:
                acc[col : col + blk.shape[1]] = blk[slot]
                col += blk.shape[1]
            out.append(acc)
        return out[0], out[1]

    def _fit(self, need: int) -> None:
        """Widen the counters first if a cell is about to hold ``need``: to uint32 if that holds it, else
        int64 (an int64 ring stays as it is)."""
        if self.dtype is not np.int64 and need > _HOLDS[self.dtype]:
            self._widen(np.uint32 if need <= _HOLDS[np.uint32] else np.int64)

    def _widen(self, dtype: type[np.unsignedinteger[Any]] | type[np.signedinteger[Any]]) -> None:
        self.dtype = dtype
        self._total = [self._copied(blk, blk.shape[1], dtype) for blk in self._total]
        self._bad = [self._copied(blk, blk.shape[1], dtype) for blk in self._bad]

    def _copied(
        self,
        blk: npt.NDArray[np.signedinteger],
        width: int,
        dtype: type[np.unsignedinteger[Any]] | type[np.signedinteger[Any]],
    ) -> npt.NDArray[np.signedinteger]:
        """``blk`` in a new ``(n, width)`` block of ``dtype``: only the slots that may hold counts are
        copied. The rest stay untouched zeros, pages the OS has not handed out yet: widening a 30-day ring
        that holds ten minutes of events costs those minutes' slots, not the whole ring in resident memory
        (``astype`` wrote every slot: ~580 MB at 100k series)."""
        grown = np.zeros((self.n, width), dtype)
        if self.head is not None and self.low is not None:  # else nothing was ever counted: all zeros
            for first, stop in self._held():
                grown[first:stop, : blk.shape[1]] = blk[first:stop]
        return grown

    def _slices(self, start: int, end: int) -> list[slice]:
        """Ring slot slices covering buckets ``[start, end)`` clipped to what the ring holds."""
        if self.head is None:
            return []
        lo = max(start, self.head - self.n + 1)
        hi = min(end, self.head + 1)
        if lo >= hi:
            return []
        a, b = lo % self.n, hi % self.n
        if a < b:
            return [slice(a, b)]
        return [slice(a, self.n), slice(0, b)] if b else [slice(a, self.n)]

    def bucket_counts(self, start: int, end: int, row: int | None) -> tuple[I64, I64]:
        """Total and bad counts of buckets ``start .. end − 1`` (one entry each) for one series ``row``,
        or summed over every row when ``row`` is None (the slot sums: no pass over the rows); buckets the
        ring does not hold count 0.

        For reading one series' history on demand (the UI's burn-down), never per tick.
        """
        out = (np.zeros(max(0, end - start), np.int64), np.zeros(max(0, end - start), np.int64))
        if self.head is None or end <= start or not self._total:
            return out
        lo, hi = max(start, self.head - self.n + 1), min(end, self.head + 1)
        if lo >= hi:
            return out
        b, col = divmod(row or 0, BLOCK)  # every block but a narrow first one is BLOCK wide
        for blocks, sums, acc in zip(
            (self._total, self._bad), (self.slot_total, self.slot_bad), out, strict=True
        ):
            at = lo - start
            for sl in self._slices(lo, hi):  # slices, not a fancy index: no copy of the slots
                size = sl.stop - sl.start
                if row is None:
                    acc[at : at + size] = sums[sl]
                elif b < len(blocks) and col < blocks[b].shape[1]:
                    acc[at : at + size] = blocks[b][sl, col]
                at += size
        return out

    def dense(self, start: int, end: int, rows: int) -> tuple[I64, I64]:
        """Total and bad counts of buckets ``[start, end)`` x the first ``rows`` series, shape
        ``(end − start, rows)``; buckets the ring does not hold count 0. For time slices (`core.slices`)."""
        shape = (max(0, end - start), rows)
        out = (np.zeros(shape, np.int64), np.zeros(shape, np.int64))
        if self.head is None or end <= start or not self._total:
            return out
        lo, hi = max(start, self.head - self.n + 1), min(end, self.head + 1)
        at = lo - start
        for sl in self._slices(lo, hi):
            size = sl.stop - sl.start
            for blocks, acc in zip((self._total, self._bad), out, strict=True):
                col = 0
                for blk in blocks:
                    width = min(blk.shape[1], rows - col)
                    if width <= 0:
                        break
                    acc[at : at + size, col : col + width] = blk[sl, :width]
                    col += blk.shape[1]
            at += size
        return out

    def check_retained(self, start: int) -> None:
        """Raise if buckets from ``start`` on may have been evicted while holding data."""
        if self.head is None or self.low is None:
            return
        floor = self.head - self.n + 1
        if start < floor and self.low < floor:
            raise EvictedWindowError(
                f"window starts at bucket {start} but only buckets from {floor} on are kept "
                "(evaluation time is too far behind the newest event)"
            )

    def sums(self, start: int, end: int, rows: int) -> tuple[I64, I64]:
        """Total and bad counts per row over buckets ``[start, end)``."""
        if not self._total:
            width = min(rows, self._rows)
            return np.zeros(width, np.int64), np.zeros(width, np.int64)
        out = []
        # No count is older than ``low``: a ring that saw minutes of a 30-day span reads those minutes.
        slices = self._slices(start if self.low is None else max(start, self.low), end)
        for blocks in (self._total, self._bad):
            acc = np.zeros(self.rows, np.int64)
            for s in slices:
                col = 0
                for blk in blocks:
                    part = acc[col : col + blk.shape[1]]
                    if s.stop - s.start == 1:  # one bucket (a window moving): added as it is, no sum
                        np.add(part, blk[s.start], out=part)
                    else:
                        np.add(part, blk[s].sum(axis=0, dtype=np.int64), out=part)
                    col += blk.shape[1]
            out.append(acc[:rows])
        return out[0], out[1]

    def group_sums(self, key: object, starts: Sequence[int], end: int, rows: int) -> I64:
        """`sums` over ``[starts[i], end)`` for each ``i``: an array ``(2, len(starts), rows)`` (totals, then
        bad counts), kept as running sums under ``key`` between calls. A read-only view of the ring's own
        array: copy what is kept past the next call on this ring.

        The spans end together (a capture's windows and its part of the period: `SloAggregate.capture`),
        so they are read together: the first read sums each bucket of the longest once (`_nested`), a
        later one adds the buckets that entered (the same ones for every span) and subtracts those that
        left, all spans at once (`_shift`), and every write in between (`add`, `add_cells`, a reused slot)
        updated them. So reading the same windows every tick costs the buckets that moved, in a few numpy
        calls whatever the number of windows. Integers added and subtracted: exactly `sums`. Spans moved
        backwards, or further than a fresh sum would cost, are summed afresh.
        """
        self._settle()
        group = self._spans.get(key)
        if group is None or group.hi != end or group.los != starts:
            los = list(starts)
            if (
                group is None
                or len(group.los) != len(los)
                or end < group.hi
                or any(lo < was for lo, was in zip(los, group.los, strict=True))
                or not self._shift(group, los, end)
            ):
                group = self._spans[key] = _Group(los, end, self._nested(los, end))
            else:
                group.los, group.hi, group.lo = los, end, min(los)
        out = group.sums[:, :, :rows]
        out.flags.writeable = False
        return out

    def span_sums(
        self, key: object, start: int, end: int, rows: int, out: tuple[I64, I64] | None = None
    ) -> tuple[I64, I64]:
        """`sums` over ``[start, end)`` (copies, or written into ``out``: two arrays of ``rows``), kept as a
        running sum under ``key`` between calls: `group_sums` of one span."""
        sums = self.group_sums(key, [start], end, rows)
        if out is None:
            return sums[0, 0].copy(), sums[1, 0].copy()
        out[0][...] = sums[0, 0]
        out[1][...] = sums[1, 0]
        return out

    def _kept(self) -> tuple[int, int]:
        """The buckets ``[first, stop)`` that may hold counts: those the ring keeps, none older than
        ``low``; none in a ring never written."""
        if self.head is None or not self._total:
            return 0, 0
        first = self.head - self.n + 1
        if self.low is not None and self.low > first:
            first = self.low
        return first, self.head + 1

    def _nested(self, starts: Sequence[int], end: int) -> I64:
        """Total and bad counts per row over buckets ``[starts[i], end)`` for each ``i``, as an int64 array
        ``(2, len(starts), rows)``, in one pass over the longest: the pieces between the distinct starts
        are summed by one ``reduceat`` per run of slots (two where the buckets wrap around the ring), and
        each span is the sum of the pieces from its start on (a cumulative sum from the end)."""
        out = np.zeros((2, len(starts), self._rows), np.int64)
        first, stop = self._kept()
        if end < stop:
            stop = end
        clipped = [lo if lo > first else first for lo in starts]
        cuts = sorted({lo for lo in clipped if lo < stop})
        if not cuts:
            return out
        # Slot ``b mod n`` holds bucket ``b``; the buckets kept are at most n, so they wrap around the end
        # of the ring at most once: at ``wrap``, whose slot is 0 (a cut of its own, not a span's start).
        n = self.n
        wrap = (cuts[0] // n + 1) * n
        if wrap < stop:
            edges = sorted({*cuts, wrap})
            runs = [(cuts[0], wrap, [c - cuts[0] for c in edges if c < wrap]), (wrap, stop, [0])]
            runs[1][2].extend(c - wrap for c in edges if c > wrap)
        else:
            edges = cuts
            runs = [(cuts[0], stop, [c - cuts[0] for c in cuts])]
        at = {c: len(edges) - 1 - i for i, c in enumerate(edges)}  # (pieces summed from the end)
        rows = [i for i, lo in enumerate(clipped) if lo < stop]
        pick = [at[clipped[i]] for i in rows]
        every = len(rows) == len(starts)
        for blocks, acc in zip((self._total, self._bad), out, strict=True):
            col = 0
            for blk in blocks:
                width = blk.shape[1]
                pieces = []
                for lo, hi, offsets in runs:
                    slot = lo % n
                    run = blk[slot : slot + hi - lo]
                    pieces.append(np.add.reduceat(run, offsets, axis=0, dtype=np.int64))
                summed = (pieces[0] if len(pieces) == 1 else np.concatenate(pieces))[::-1].cumsum(axis=0)
                if every and width == self._rows:
                    summed.take(pick, axis=0, out=acc)
                elif every:
                    acc[:, col : col + width] = summed[pick]
                else:
                    acc[rows, col : col + width] = summed[pick]
                col += width
        return out

    def _shift(self, group: _Group, los: list[int], end: int) -> bool:
        """Move ``group`` to ``[los[i], end)`` (no start and not the end moved backwards): the buckets that
        entered are added to every span, those that left each span subtracted from it (buckets the ring
        does not hold count 0: an evicted one was subtracted when its slot was reused). False, with
        nothing done, when that costs more than summing the group afresh (`_nested`)."""
        first, stop = self._kept()
        n = self.n
        enter_lo = group.hi if group.hi > first else first
        enter_hi = end if end < stop else stop
        moved = enter_hi - enter_lo if enter_hi > enter_lo else 0
        calls = int(moved > 1)  # (`_nested` calls: one for the buckets entering, one per span losing several)
        ones: list[int] = []  # spans losing one bucket each, and its slot
        slots: list[int] = []
        longer = []
        for i, (was, lo) in enumerate(zip(group.los, los, strict=True)):
            a = was if was > first else first
            z = lo if lo < stop else stop
            if a < z:
                moved += z - a
                if z - a == 1:
                    ones.append(i)
                    slots.append(a % n)
                else:
                    longer.append((i, a, z))
                    calls += 1
        if not moved:
            return True
        # Cost in cells read, and `_CALL` cells for each `_nested` call (its fixed cost, ~10 numpy calls).
        fresh = (enter_hi - max(min(los), first)) * self._rows + _CALL
        if moved * self._rows + calls * _CALL > fresh:
            return False
        sums = group.sums
        if enter_hi - enter_lo == 1:  # one bucket (a tick): straight from each block's slot
            self._add_slot(group.total, group.bad, enter_lo % n, 1)
        elif enter_lo < enter_hi:
            sums += self._nested((enter_lo,), enter_hi)
        if ones and len(ones) * self._rows <= _GATHER:
            # One bucket off each (windows of fixed length moving by one): gathered, a call per block.
            rows = slice(0, len(ones)) if ones[-1] == len(ones) - 1 else ones  # (a slice: in place)
            for blocks, acc in ((self._total, group.total), (self._bad, group.bad)):
                if len(blocks) == 1:
                    acc[rows] -= blocks[0][slots]
                    continue
                col = 0
                for blk in blocks:
                    acc[rows, col : col + blk.shape[1]] -= blk[slots]
                    col += blk.shape[1]
        else:
            for i, slot in zip(ones, slots, strict=True):
                self._add_slot(group.total[i], group.bad[i], slot, -1)
        for i, a, z in longer:
            sums[:, i] -= self._nested((a,), z)[:, 0]
        return True

    def _add_slot(self, total: I64, bad: I64, slot: int, sign: int) -> None:
        """Add (``sign`` 1) or subtract (-1) the counts of ``slot`` to ``total`` and ``bad`` (rows on their
        last axis: one span's, or every span's), straight from each block's slot: no temporary array
        (each would be fresh pages, faulted in on the event loop) and no reduction (numpy releases the
        GIL in one, and a render thread then holds it for a switch interval)."""
        for blocks, acc in ((self._total, total), (self._bad, bad)):
            col = 0
            for blk in blocks:
                part = acc if len(blocks) == 1 else acc[..., col : col + blk.shape[1]]
                if sign > 0:
                    part += blk[slot]
                else:
                    part -= blk[slot]
                col += blk.shape[1]

    def _dense(self, which: list[npt.NDArray[np.signedinteger]]) -> npt.NDArray[np.signedinteger]:
        return which[0] if len(which) == 1 else np.concatenate(which, axis=1)

    def merge_from(self, other: BucketRing, row_map: Intp) -> None:
        """Add ``other``'s counts into this ring; ``row_map[i]`` is this ring's row for other's row ``i``.

        Both rings first move to the newer head, so each keeps exactly the buckets it would have kept
        had it seen the other's events itself.
        """
        if other.res_ms != self.res_ms or other.n != self.n:
            raise ValueError("cannot merge rings of different shape")
        if other.head is None:
            return
        self._spans.clear()  # recomputed on the next read
        self._before.clear()
        self._pending.clear()
        self.advance(other.head)
        assert self.head is not None
        m = len(row_map)
        if not other._total:  # (other holds no count: only its head, low and rows matter)
            if m:
                self.ensure_rows(int(row_map.max()) + 1)
            if other.low is not None:
                self.low = other.low if self.low is None else min(self.low, other.low)
            return
        if m:
            self.ensure_rows(int(row_map.max()) + 1)
        self._allocate()
        src_total = self._dense(other._total)[:, :m].astype(np.int64)
        src_bad = self._dense(other._bad)[:, :m].astype(np.int64)
        if other.head < self.head:
            # Drop other's buckets that this (newer) ring no longer keeps.
            gone = np.arange(other.head - other.n + 1, min(other.head, self.head - self.n) + 1)
            if len(gone):
                src_total[gone % self.n] = 0
                src_bad[gone % self.n] = 0
        # Rows of other past ``m`` are empty, so its slot sums are those of what is added here.
        if self._slots is not None:
            slot_total, slot_bad = self._slots
            slot_total += src_total.sum(axis=1)
            slot_bad += src_bad.sum(axis=1)
        if m:
            # Widen first if the sums might not fit (bound: our fullest cell plus theirs).
            ours = max(int(blk.max()) for blk in self._total)
            self._fit(ours + int(src_total.max(initial=0)))
            blk = row_map // BLOCK
            for b in np.unique(blk).tolist():
                sel = np.flatnonzero(blk == b)
                cols = row_map[sel] - b * BLOCK
                # Several rows may land on one (overflow): add.at on the transposed view sums them.
                np.add.at(self._total[b].T, cols, src_total[:, sel].T.astype(self.dtype))
                np.add.at(self._bad[b].T, cols, src_bad[:, sel].T.astype(self.dtype))
        if other.low is not None:
            self.low = other.low if self.low is None else min(self.low, other.low)

    def add_cells(self, state: RingState, row_map: Intp, distinct: bool | None = None) -> None:
        """Add a ring's saved cells into this ring (same shape), row ``i`` of the state going to row
        ``row_map[i]`` (rows here already): what `merge_from` of a ring restored from ``state`` does, in
        time proportional to the cells rather than to the ring's slots times its rows. The ring first
        moves to the state's head; cells of buckets it no longer keeps are dropped; a cell's type is
        widened when a sum would not fit (checked per cell, as `add` does). The running span sums learn
        the cells at their next read, as they learn `add`'s writes (`merge_from` drops them: the next tick
        sums every slot again). ``distinct``: whether ``row_map`` sends no two rows to one (the caller may
        know: distinct keys and no overflow row among them); None: ``row_map`` is taken as distinct only
        if it ascends."""
        if state.head is None:
            return
        if (state.res_ms, state.n) != (self.res_ms, self.n):
            raise ValueError("cannot merge rings of different shape")
        self.advance(state.head)
        assert self.head is not None
        if len(state.cells):
            slot, row = np.divmod(state.cells, state.rows)
            total, bad = state.total, state.bad
            bucket = state.head - (state.head - slot) % state.n
            keep = bucket > self.head - self.n
            if not keep.all():
                slot, row, total, bad, bucket = slot[keep], row[keep], total[keep], bad[keep], bucket[keep]
            if len(slot):
                self._allocate()
                if self._slots is not None:
                    np.add.at(self._slots[0], slot, total)
                    np.add.at(self._slots[1], slot, bad)
            targets = row_map[row]
            if self._spans:
                # (Copies: the caller's arrays are not held past this call.)
                self._note_cells(state.head, bucket, targets, total.copy(), bad.copy())
            if len(slot):
                if distinct is None:
                    distinct = len(row_map) <= 1 or bool((np.diff(row_map) > 0).all())
                self._add_at(slot, targets, total, bad, distinct)
        if state.low is not None:
            self.low = state.low if self.low is None else min(self.low, state.low)

    def add_kept(self, head: int, low: int | None, slot: I64, row: Intp, total: I64, bad: I64) -> None:
        """`add_cells` of cells already in this ring's terms: the ring moves to ``head`` (an int), then adds
        ``total``/``bad`` at cells ``(slot, row)``: distinct cells (no two alike) of buckets it keeps once at
        ``head`` (a cell's bucket: ``head − (head − slot) mod n``), rows it has room for; ``low`` as a
        state's. Stage 2's batched merge (`sloguard.scale.batch`) has already summed the cells that land on
        one, dropped those the ring would not keep and put their rows in ours: what `add_cells` does to a
        `RingState` of them with an identity row map and ``distinct``, without the state, the division
        splitting its cells and the check of what is kept."""
        self.advance(head)
        if len(slot):
            self._allocate()
            if self._slots is not None:
                np.add.at(self._slots[0], slot, total)
                np.add.at(self._slots[1], slot, bad)
            if self._spans:
                # (Copies: the caller's arrays, views of a whole flush's, are not held past this call.)
                bucket = head - (head - slot) % self.n
                self._note_cells(head, bucket, row.copy(), total.copy(), bad.copy())
            self._add_at(slot, row, total, bad, True)
        if low is not None:
            self.low = low if self.low is None else min(self.low, low)

    def _note_cells(self, head: int, bucket: I64, targets: Intp, total: I64, bad: I64) -> None:
        """Hold cells about to be written (buckets up to ``head``) for the running sums.

        The running sums a tick reads move with the cells (as an ingest's do), at the next read
        (`_settle`): a tick after a merge then costs the buckets its windows moved by, not a sum over every
        slot, and a batch does not pay a pass per span. A bucket `add` wrote since the last read is left
        out: the difference of its column will hold these cells too."""
        noted = [b for b in self._before if head - self.n < b <= head]
        if noted:
            cell = np.ones(len(bucket), np.bool_)
            for b in noted:
                cell &= bucket != b
            self._pending.append((bucket[cell], targets[cell], total[cell], bad[cell]))
        else:
            self._pending.append((bucket, targets, total, bad))
        if len(self._pending) >= _PENDING_BATCHES:  # (a ring written often and seldom read)
            self._settle_cells()

    def _add_at(self, slot: I64, targets: Intp, total: I64, bad: I64, distinct: bool) -> None:
        """`add_cells`' write: ``total``/``bad`` added at cells ``(slot, targets)`` (``distinct``: no cell
        twice), widening the type first if a sum would not fit."""
        if not distinct:
            # Saved rows may land on one row (a capped target's overflow): one sum per cell.
            flat, inverse = np.unique(slot * self.rows + targets, return_inverse=True)
            add_total = np.zeros(len(flat), np.int64)
            add_bad = np.zeros(len(flat), np.int64)
            np.add.at(add_total, inverse, total)
            np.add.at(add_bad, inverse, bad)
            slot, targets = np.divmod(flat, self.rows)
            total, bad = add_total, add_bad
        # (else rows land on distinct rows, and the saved cells are distinct: one sum per cell)
        # Flat indices into each block's cells (one-dimensional fancy indexing: several times cheaper
        # than a (slot, column) pair of index arrays for the few cells a piece adds).
        parts: list[tuple[int, Intp, I64, I64]]
        if len(self._total) == 1:
            parts = [(0, slot * self._total[0].shape[1] + targets, total, bad)]
        else:
            blocks = targets // BLOCK
            parts = []
            for b in np.unique(blocks).tolist():
                sel = np.flatnonzero(blocks == b)
                parts.append((b, slot[sel] * BLOCK + (targets[sel] - b * BLOCK), total[sel], bad[sel]))
        if self.dtype is not np.int64:
            # (a block's counts are unsigned below int64: their sum with int64 counts is int64)
            self._fit(max(int((self._total[b].reshape(-1).take(at) + t).max()) for b, at, t, _ in parts))
        for b, at, t, x in parts:
            cells = self._total[b].reshape(-1)  # (blocks are C-contiguous: a view)
            cells[at] += t.astype(self.dtype)
            cells = self._bad[b].reshape(-1)
            cells[at] += x.astype(self.dtype)

    def _held(self) -> list[tuple[int, int]]:
        """The slots that may hold counts, as ascending runs ``[first, stop)``: those of the buckets
        ``[max(low, head − n + 1), head]`` (no count is older than ``low``), so a ring that saw a few
        buckets (a stage-1 range) is not scanned whole."""
        if self.head is None or self.low is None:
            return [(0, self.n)]  # (nothing offered: nothing to find, but do not rely on it)
        lo = max(self.low, self.head - self.n + 1)
        if self.head - lo + 1 >= self.n:
            return [(0, self.n)]
        a, z = lo % self.n, self.head % self.n
        return [(a, z + 1)] if a <= z else [(0, z + 1), (a, self.n)]

    def dump(self, rows: int) -> RingState:
        """The non-zero cells of the first ``rows`` series (block by block: no dense copy)."""
        cells: list[I64] = []
        totals: list[I64] = []
        bads: list[I64] = []
        offset = 0
        for tot, bad in zip(self._total, self._bad, strict=True):
            width = min(tot.shape[1], rows - offset)
            if width <= 0:
                break
            for first, stop in self._held():
                slots, cols = np.nonzero(tot[first:stop, :width])
                slots += first
                cells.append(slots.astype(np.int64) * rows + cols + offset)
                totals.append(tot[slots, cols].astype(np.int64))
                bads.append(bad[slots, cols].astype(np.int64))
            offset += tot.shape[1]
        head, low = self.head, self.low
        return RingState(self.res_ms, self.n, head, low, rows, _cat(cells), _cat(totals), _cat(bads))

    def load(self, state: RingState) -> None:
        """Put ``state`` into this (empty) ring of the same shape."""
        if (state.res_ms, state.n) != (self.res_ms, self.n):
            raise ValueError("ring state of another shape")
        if self.head is not None:
            raise ValueError("load() needs an empty ring")
        self._spans.clear()
        self._before.clear()
        self._pending.clear()
        self.ensure_rows(max(1, state.rows))
        self._fit(int(state.total.max(initial=0)))
        if len(state.cells):
            self._allocate()
            slots, rows = np.divmod(state.cells, state.rows)
            blk = rows // BLOCK
            for b in np.unique(blk).tolist():
                sel = blk == b
                cols = rows[sel] - b * BLOCK
                self._total[b][slots[sel], cols] = state.total[sel]
                self._bad[b][slots[sel], cols] = state.bad[sel]
            if self._slots is not None:
                np.add.at(self._slots[0], slots, state.total)
                np.add.at(self._slots[1], slots, state.bad)
        self.head, self.low = state.head, state.low


class _Group:
    """Per-row total and bad counts of a ring over buckets ``[los[i], hi)`` for each span ``i`` (spans that
    end together: `BucketRing.group_sums`): ``sums`` ``(2, len(los), rows)``, ``total`` and ``bad`` views of
    its halves; ``lo`` the oldest start."""

    __slots__ = ("bad", "hi", "lo", "los", "sums", "total")

    def __init__(self, los: list[int], hi: int, sums: I64) -> None:
        self.los, self.hi, self.lo = los, hi, min(los)
        self.sums, self.total, self.bad = sums, sums[0], sums[1]

    def grow(self, rows: int) -> None:
        have = self.sums.shape[2]
        if rows > have:
            extra = np.zeros((2, len(self.los), rows - have), np.int64)
            self.sums = np.concatenate([self.sums, extra], axis=2)
            self.total, self.bad = self.sums[0], self.sums[1]


class Cells(NamedTuple):
    """A batch's events counted per cell: distinct ``(row, bucket)`` pairs ascending by row, then bucket,
    with how many events (``total``) and bad events (``bad``) each holds."""

    rows: Intp
    buckets: I64
    total: I64
    bad: I64


#: Below this a batch's cell keys are counted with one ``bincount`` over their span (dense), not sorted.
_DENSE_PER_EVENT = 4


def count_cells(rows: Intp, buckets: I64, bad: Bools, n_rows: int) -> Cells:
    """Count the events of a batch (one per element; rows below ``n_rows``) per cell (`Cells`).

    Each event gets the key ``row · 2^k + bucket − lo`` (``lo``: the batch's oldest bucket; ``2^k``: at
    least its buckets' width), so that sorting the keys groups a cell's events and orders the cells by
    row then bucket. The keys are counted with one ``bincount`` when their span is dense (few series),
    else by one sort (as 32-bit keys when they fit: twice as fast as 64-bit), once a batch: `coarser`
    derives a coarser ring's cells from these without another sort. The bad events (a few) are then
    found among the cells by a binary search.
    """
    lo = int(buckets.min())
    bits = (int(buckets.max()) - lo).bit_length()  # a shift and a mask, not a division, split the keys
    span = n_rows << bits
    if span >= 1 << 62:  # (timestamps ages apart: never in practice) keys would not fit
        order = np.lexsort((buckets, rows))
        r, b = rows[order], buckets[order]
        starts = np.flatnonzero(np.concatenate(([True], (r[1:] != r[:-1]) | (b[1:] != b[:-1]))))
        total = np.diff(starts, append=len(r))
        return Cells(
            r[starts].astype(np.intp), b[starts], total, np.add.reduceat(bad[order], starts, dtype=np.int64)
        )
    key = (rows.astype(np.int64) << bits) | (buckets - lo)
    if span <= _DENSE_PER_EVENT * len(key) + 1024:
        per_key = np.bincount(key)
        keys = np.flatnonzero(per_key != 0)  # (on booleans: ~10x faster than on the counts)
        counts = per_key[keys]
    else:
        s = np.sort(key.astype(np.int32) if span <= 1 << 31 else key)
        new = np.empty(len(s), np.bool_)
        new[0] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        counts = np.diff(starts, append=len(s))
        keys = s[starts].astype(np.int64)
    bad_counts = np.zeros(len(keys), np.int64)
    bad_keys = key[bad]
    if len(bad_keys):
        np.add.at(bad_counts, np.searchsorted(keys, bad_keys), 1)
    return Cells((keys >> bits).astype(np.intp), (keys & ((1 << bits) - 1)) + lo, counts, bad_counts)


def coarser(cells: Cells, ratio: int) -> Cells:
    """``cells`` of a ring in the cells of a ring whose buckets are ``ratio`` of theirs (``⌊b / ratio⌋``:
    ``⌊⌊t / r⌋ / ratio⌋ = ⌊t / (r · ratio)⌋``): a row's buckets ascend, so its cells that merge are
    adjacent and are summed in one pass, with no sort."""
    buckets = cells.buckets // ratio
    rows = cells.rows
    first = np.concatenate(([True], (rows[1:] != rows[:-1]) | (buckets[1:] != buckets[:-1])))
    return _grouped(rows, buckets, cells.total, cells.bad, first)


def _grouped(rows: Intp, buckets: I64, total: I64, bad: I64, first: Bools) -> Cells:
    """Runs of entries (each starting where ``first``) summed into one cell each."""
    if first.all():
        return Cells(rows, buckets, total.astype(np.int64), bad.astype(np.int64))
    starts = np.flatnonzero(first)
    return Cells(
        rows[starts],
        buckets[starts],
        np.add.reduceat(total, starts).astype(np.int64),
        np.add.reduceat(bad, starts).astype(np.int64),
    )
