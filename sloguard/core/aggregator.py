"""The aggregator: event batches in, exact per-series windows out. Pure: no I/O, no clock.

``ingest(batch)`` files each event into event-time buckets of every SLO it belongs to (and into latency
histograms); ``advance(now)`` moves time forward (live mode); ``snapshot(now)`` evaluates every window,
budget, burn rate and alert tier at ``now`` without changing state; ``merge(other)`` adds another
aggregator's state, so that two aggregators fed disjoint parts of a stream and merged hold exactly what
one aggregator fed the whole stream would hold (checkpoints and scale-out stand on this).

Window semantics: a window of length W served by a tier of resolution r is evaluated at
``now_r = ⌊now / r⌋ · r`` and covers events with ``now_r − W <= ts < now_r``. Windows up to 6 h use the
SLO's fine resolution (divides 1 minute), longer windows the coarse one (divides 1 hour). The period (the
budget) moves with the fine buckets: ``[now_c − P, now_f)`` rolling, ``[start of the unit, now_f)``
calendar, read as the coarse buckets up to ``now_c`` plus the fine ones from there to ``now_f``. Time-slice
SLOs (`core.slices`) end every window and the period at the slice instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sloguard._types import F64, I64, Bools, Intp
from sloguard.core import slices
from sloguard.core.exclusions import ExclusionCalendar, excluded_events
from sloguard.core.history import BucketCounts
from sloguard.core.histring import HistRing
from sloguard.core.latency import HdrLayout, sparse_percentiles
from sloguard.core.model import OVERFLOW, EventBatch, Vocabs
from sloguard.core.series import Matcher, SeriesIndex, endpoint_matcher
from sloguard.core.snapshot import Counts, LatencySnapshot, LatencyWindow, SloCounts, SloSnapshot, Snapshot
from sloguard.core.spec import (
    FINE_HORIZON,
    MINUTE,
    CalendarPeriod,
    Config,
    LatencySpec,
    RollingPeriod,
    SloSpec,
    Timeslices,
)
from sloguard.core.state import (
    AggregatorState,
    LatencyState,
    RestoreReport,
    RingState,
    SeriesState,
    SloState,
    fingerprint,
)
from sloguard.core.windows import BucketRing, coarser, count_cells

#: The key of the running sums `SloAggregate.capture` reads in each ring: its windows and its part of the
#: period, spans that all end at ``now`` aligned to the ring's resolution (`BucketRing.group_sums`).
CAPTURED = "captured"

#: Exclusions (maintenance windows) as the core reads them: ``(start_ms, end_ms, res_ms)`` -> one flag per
#: bucket of ``res_ms`` in ``[start_ms, end_ms)``, true where the bucket is excluded. Time-slice SLOs take
#: it in `SloAggregate.capture` (see `core.slices`); the SLO file's ``exclusions:`` give it through
#: `core.exclusions.ExclusionCalendar.buckets`, which also drops their events at ingest (docs/exclusions.md).
ExclusionMask = Callable[[int, int, int], Bools]

#: How far past the newest bucket an event may lie and still land in the rings (clock skew, late
#: evaluation). Beyond it an event still counts, it only moves ``head``.
_SKEW_SECONDS = MINUTE


@dataclass(frozen=True, slots=True)
class _Layout:
    """What `SloAggregate` derives from its spec alone, shared by every aggregator of a config (stage 2 makes
    one per partition: 12 x 63 SLOs): ``spec.windows`` (a property that sorts a set), the rings' slot
    counts, and the bad-status table (read-only: several SLO states hold it)."""

    windows: tuple[int, ...]
    fine_windows: tuple[int, ...]
    coarse_windows: tuple[int, ...]
    fine_slots: int
    coarse_slots: int
    judged_slots: int
    bad_status: Bools


#: `_layout`'s cache, by ``id(spec)`` with the spec itself (kept alive, so its id is not reused).
_LAYOUTS: dict[int, tuple[SloSpec, _Layout]] = {}


def _layout(spec: SloSpec) -> _Layout:
    hit = _LAYOUTS.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    res = spec.resolution
    if res.coarse % res.fine:  # (the SLO file's checks say so first) `ingest` counts coarse from fine
        raise ValueError(f"SLO {spec.name}: the fine resolution must divide the coarse one")
    windows = spec.windows
    fine_windows = tuple(w for w in windows if w <= FINE_HORIZON)
    coarse_windows = tuple(w for w in windows if w > FINE_HORIZON)
    # (`capture` lays the fine ring's windows, then the coarse ring's, end to end)
    assert windows == fine_windows + coarse_windows, "spec.windows ascend"
    retention = max([spec.period.max_seconds, *coarse_windows])
    coarse_slots = -(-retention // res.coarse) + -(-_SKEW_SECONDS // res.coarse) + 1
    judged_slots = 0
    if spec.budgeting is not None:
        if spec.budgeting.slice % res.coarse:
            raise ValueError(f"SLO {spec.name}: the coarse resolution must divide the time slice")
        judged_slots = coarse_slots * res.coarse // spec.budgeting.slice + 2
    lut = np.zeros(1000, np.bool_)
    for lo, hi in spec.sli.bad_status:
        lut[max(lo, 0) : min(hi, 999) + 1] = True
    lut.flags.writeable = False
    lay = _Layout(
        windows=windows,
        fine_windows=fine_windows,
        coarse_windows=coarse_windows,
        fine_slots=-(-max(fine_windows) // res.fine) + _SKEW_SECONDS // res.fine + 1,
        coarse_slots=coarse_slots,
        judged_slots=judged_slots,
        bad_status=lut,
    )
    if len(_LAYOUTS) >= 4096:  # reloads: keep the cache bounded (a miss only recomputes)
        _LAYOUTS.clear()
    _LAYOUTS[id(spec)] = (spec, lay)
    return lay


class SloAggregate:
    """Buckets of one SLO: a fine ring (windows up to 6 h) and a coarse ring (longer, and the period).

    Public so that the merge tier (`sloguard.scale`) can drive one SLO of an `Aggregator` (``slos[i]``)
    without reaching into it: it reads ``spec``, ``series`` (the row of each label set), the rings'
    resolutions and `counters`, adds cells to ``fine``/``coarse`` (`BucketRing.add_cells`) and calls
    `capture`, `dump`, `load` and `merge`. The rings' layout is the core's business."""

    def __init__(self, spec: SloSpec, exclusions: ExclusionCalendar | None = None) -> None:
        self.spec = spec
        #: Maintenance windows of this SLO: their events are left out at ingest, and counted.
        self.exclusions = exclusions
        res = spec.resolution
        lay = _layout(spec)
        #: ``spec.windows`` (a property computing them anew), with those the fine and the coarse ring serve.
        self.windows = lay.windows
        self.fine_windows, self.coarse_windows = lay.fine_windows, lay.coarse_windows
        self.fine = BucketRing(res.fine * 1000, lay.fine_slots)
        self.coarse = BucketRing(res.coarse * 1000, lay.coarse_slots)
        #: Time-slice budgeting: slices judged so far (`slices.JudgedRing`), as many as the coarse ring keeps.
        self.judged: slices.JudgedRing | None = None
        if spec.budgeting is not None:
            self.judged = slices.JudgedRing(lay.judged_slots, spec.budgeting.empty)
        self.series = SeriesIndex(spec.group_by, spec.max_series)
        self.service = Matcher(lambda s: s == spec.service)
        self.endpoint = endpoint_matcher(spec.endpoints, spec.endpoints_exclude)
        self.bad_status = lay.bad_status
        self.threshold_ms = spec.sli.threshold_ms if spec.sli.kind == "latency" else None
        self.too_old = 0
        self.events = 0
        #: Series evicted as idle since this process started (not part of the state).
        self.evicted = 0

    def ingest(self, batch: EventBatch, ids: dict[str, Intp], vocabs: Vocabs) -> Bools:
        """Count the events of ``batch`` this SLO selects; returns that selection (a mask over the batch)."""
        sel = self.service.lookup(vocabs["service"], ids["service"])
        if self.endpoint is not None:
            sel &= self.endpoint.lookup(vocabs["endpoint"], ids["endpoint"])
        if not sel.any():
            return sel
        idx = np.nonzero(sel)[0]
        if self.exclusions is not None and not len(idx := self.exclusions.keep(idx, batch.ts_ms)):
            return sel
        ts = batch.ts_ms[idx]
        status = np.clip(batch.status[idx], 0, 999)
        bad = self.bad_status[status]
        if self.threshold_ms is not None:
            bad |= batch.latency_ms[idx] > self.threshold_ms
        dims = self.spec.group_by
        rows = self.series.rows(len(idx), [ids[d][idx] for d in dims], [vocabs[d] for d in dims])
        n_rows = len(self.series)
        self.fine.ensure_rows(n_rows)
        self.coarse.ensure_rows(n_rows)
        # The events counted per (series, fine bucket) once (a sort of the batch at many series), and the
        # coarse ring's cells derived from those with no second sort: the coarse resolution is a multiple
        # of the fine one (`Resolution`), so a coarse bucket is whole fine ones.
        cells = count_cells(rows, ts // self.fine.res_ms, bad, n_rows)
        self.fine.add_counts(cells)
        self.too_old += self.coarse.add_counts(coarser(cells, self.coarse.res_ms // self.fine.res_ms))
        if self.judged is not None and self.spec.budgeting is not None:
            self.judged.forget(np.unique(ts // (self.spec.budgeting.slice * 1000)))
        self.events += len(idx)
        return sel

    def advance(self, now_ms: int) -> None:
        self.fine.advance(now_ms // self.fine.res_ms)
        self.coarse.advance(now_ms // self.coarse.res_ms)

    @property
    def counters(self) -> tuple[int, int, int, int]:
        """``(overflow, too_old, events, evicted)``: the events past ``max_series``, those older than the
        coarse ring, all those matched, and the series evicted as idle."""
        return (self.series.overflow_events, self.too_old, self.events, self.evicted)

    def grain_ms(self) -> int:
        """The gcd of both rings' resolutions and the time slice (ms): within one ``now // grain``, no
        bucket index of this SLO moves, so `advance` is a no-op and `capture` the same."""
        g = math.gcd(self.fine.res_ms, self.coarse.res_ms)
        if self.spec.budgeting is not None:
            g = math.gcd(g, self.spec.budgeting.slice * 1000)
        return g

    def period_bounds(self, now_ms: int) -> tuple[int, int]:
        """The budget's ``[start, end)``: it ends at ``now`` aligned to the fine resolution, so the budget
        moves with the fine buckets; a rolling period starts its length before ``now`` aligned to the
        coarse resolution (the period's buckets), a calendar one at the start of its unit. With time
        slices, both ends are slice boundaries (the slice in progress is pending)."""
        b = self.spec.budgeting
        if b is None:
            fine, coarse = self.fine.res_ms, self.coarse.res_ms
            end, rolling_end = now_ms // fine * fine, now_ms // coarse * coarse
        else:
            end = rolling_end = now_ms // (b.slice * 1000) * b.slice * 1000
        period = self.spec.period
        if isinstance(period, RollingPeriod):
            return rolling_end - period.seconds * 1000, end
        start, _ = period.bounds(end)
        return start, end

    def capture(self, now_ms: int, excluded: ExclusionMask | None = None) -> SloCounts:
        """This SLO's window and period counts at ``now_ms``: copies of the rings' running span sums
        (`BucketRing.group_sums`), so the cost is the buckets that moved since the last read plus a copy
        per ring, not a pass over every slot. `SloCounts.evaluate` does the rest, on copies."""
        spec = self.spec
        rows = len(self.series)
        if spec.budgeting is not None:
            return self._capture_slices(spec.budgeting, now_ms, rows, excluded)
        fine, coarse = self.fine, self.coarse
        f_res, c_res = fine.res_ms, coarse.res_ms
        f_end, c_end = now_ms // f_res, now_ms // c_res
        p_start, p_end = self.period_bounds(now_ms)
        # Every window ends at ``now`` aligned to its ring's resolution, and so do both parts of the period:
        # ``p_end`` is ``now`` aligned to the fine resolution, which divides the coarse one, so its coarse
        # part ends at ``c_end`` and its tail (from ``now`` aligned to the coarse resolution) at ``f_end``.
        # So each ring's spans are one group of running sums, moved together (`BucketRing.group_sums`).
        f_starts = [f_end - w // (f_res // 1000) for w in self.fine_windows]
        c_starts = [c_end - w // (c_res // 1000) for w in self.coarse_windows]
        for start in f_starts:
            fine.check_retained(start)
        for start in c_starts:
            coarse.check_retained(start)
        coarse.check_retained(p_start // c_res)
        tail = p_end // c_res * c_res // f_res
        fine.check_retained(tail)
        f_sums = fine.group_sums(CAPTURED, [*f_starts, tail], f_end, rows)
        c_sums = coarse.group_sums(CAPTURED, [*c_starts, p_start // c_res], c_end, rows)
        kf, kc = len(f_starts), len(c_starts)
        # Copies (the rings' running sums move on): totals and bad counts side by side, a call each.
        total, bad = np.concatenate((f_sums[:, :kf], c_sums[:, :kc]), axis=1)
        p_total, p_bad = f_sums[:, kf] + c_sums[:, kc]
        f_s, c_s = f_res // 1000, c_res // 1000
        bounds = [((f_end * f_s - w) * 1000, f_end * f_res) for w in self.fine_windows]
        bounds += [((c_end * c_s - w) * 1000, c_end * c_res) for w in self.coarse_windows]
        return SloCounts(
            spec=spec,
            labels=self.series.labels(),
            window_bounds=tuple(bounds),
            total=total,
            bad=bad,
            period_bounds=(p_start, p_end),
            period_total=p_total,
            period_bad=p_bad,
            overflow_events=self.series.overflow_events,
            too_old_events=self.too_old,
            events=self.events,
            evicted_series=self.evicted,
            excluded_events=excluded_events(self.exclusions),
        )

    def _capture_slices(
        self, b: Timeslices, now_ms: int, rows: int, excluded: ExclusionMask | None
    ) -> SloCounts:
        """`capture` for time-slice budgeting (`core.slices`): every window and the period end at ``now``
        aligned down to the slice (the slice in progress is pending) and are read, slice by slice, from
        the coarse ring, whose buckets divide the slice. ``excluded``: an `ExclusionMask` for this read
        (slices judged afresh); the SLO's own windows (``self.exclusions``) are fixed for its life and their
        buckets hold no events (dropped at ingest and on restore), so judged slices are kept with them."""
        spec = self.spec
        s_ms = b.slice * 1000
        k = s_ms // self.coarse.res_ms
        end = now_ms // s_ms
        p_start, p_end = self.period_bounds(now_ms)
        p_lo = -(-p_start // s_ms)
        lo = min([p_lo, *(end - b.slices(w) for w in spec.windows)])
        self.coarse.check_retained(lo * k)
        res = self.coarse.res_ms
        if excluded is not None or self.judged is None:
            # Exclusions change judgements per read: judge every slice afresh.
            mask = None if excluded is None else excluded(lo * k * res, end * k * res, res)
            total, bad, live = slices.per_slice(*self.coarse.dense(lo * k, end * k, rows), k, mask)
            judged, badness = slices.judge(b, total, bad, live)
            by_window = [
                slices.sums(total, bad, judged, badness, end - b.slices(w) - lo, end - lo)
                for w in spec.windows
            ]
            period = slices.sums(total, bad, judged, badness, p_lo - lo, end - lo)
        else:

            def judge(a: int, z: int) -> tuple[I64, F64]:
                x = self.exclusions
                mask = None if x is None else x.buckets(a * k * res, z * k * res, res)
                t, bd, live = slices.per_slice(*self.coarse.dense(a * k, z * k, rows), k, mask)
                return slices.judge(b, t, bd, live)

            self.judged.fill(lo, end, rows, judge)
            # Every window and the period end at the slice of ``now``: one group of running sums.
            firsts = [end - b.slices(w) for w in spec.windows]
            starts = [a * k for a in (*firsts, p_lo)]
            total, bad = self.coarse.group_sums(CAPTURED, starts, end * k, rows).copy()
            by_window = [
                slices.SliceSums(total[i], bad[i], *self.judged.sums(a, end)) for i, a in enumerate(firsts)
            ]
            period = slices.SliceSums(total[-1], bad[-1], *self.judged.sums(p_lo, end))
        empty = np.zeros((len(spec.windows), 0), np.int64)
        return SloCounts(
            spec=spec,
            labels=self.series.labels(),
            window_bounds=tuple(((end - b.slices(w)) * s_ms, end * s_ms) for w in spec.windows),
            total=np.stack([c.total for c in by_window]) if rows else empty,
            bad=np.stack([c.bad for c in by_window]) if rows else empty,
            period_bounds=(p_start, p_end),
            period_total=period.total,
            period_bad=period.bad,
            overflow_events=self.series.overflow_events,
            too_old_events=self.too_old,
            events=self.events,
            evicted_series=self.evicted,
            excluded_events=excluded_events(self.exclusions),
            slices=tuple(by_window),
            period_slices=period,
        )

    def snapshot(self, now_ms: int) -> SloSnapshot:
        return self.capture(now_ms).evaluate()

    def bucket_counts(
        self, key: tuple[str, ...] | None, start_ms: int, end_ms: int, fine: bool
    ) -> BucketCounts | None:
        """Per-bucket counts of series ``key`` (None: all series summed) over ``[start_ms, end_ms)``, from
        the fine or the coarse ring; None when there is no such series."""
        row = None if key is None else self.series.rows_by_key.get(key)
        if key is not None and row is None:
            return None
        ring = self.fine if fine else self.coarse
        res = ring.res_ms
        if fine or end_ms % res == 0 or end_ms % self.fine.res_ms:
            total, bad = ring.bucket_counts(start_ms // res, -(-end_ms // res), row)
            return BucketCounts(res, start_ms // res * res, total, bad)
        # A period ending at a fine boundary (`period_bounds`): whole coarse buckets, then the part of the
        # last one before ``end_ms`` from the fine ring, so the last point is the snapshot's budget.
        total, bad = ring.bucket_counts(start_ms // res, end_ms // res, row)
        f = self.fine.res_ms
        t_total, t_bad = self.fine.bucket_counts(end_ms // res * res // f, end_ms // f, row)
        return BucketCounts(
            res,
            start_ms // res * res,
            np.append(total, t_total.sum()),
            np.append(bad, t_bad.sum()),
            end=end_ms,
        )

    def dump(self) -> SloState:
        rows = len(self.series)
        return SloState(
            fingerprint=fingerprint(self.spec),
            series=self.series.dump(),
            fine=self.fine.dump(rows),
            coarse=self.coarse.dump(rows),
            too_old=self.too_old,
            events=self.events,
        )

    def load(self, state: SloState) -> None:
        self.series.load(state.series)
        self.fine.load(state.fine)
        self.coarse.load(state.coarse)
        self.too_old, self.events = state.too_old, state.events

    def idle_rows(self, state: SloState, now_ms: int, ttl_s: int) -> Intp:
        """Rows of ``state`` (this SLO's `dump`) without an event in ``[now − ttl, ...)``, by bucket;
        never the overflow row."""
        rows = len(state.series.keys)
        active = np.zeros(rows, np.bool_)
        for st in (state.fine, state.coarse):
            if st.head is None or not len(st.cells):
                continue
            slots, row = np.divmod(st.cells, rows)
            bucket = st.head - (st.head - slots) % st.n
            active[row[bucket >= (now_ms - ttl_s * 1000) // st.res_ms]] = True
        if self.series.overflow_row is not None:
            active[self.series.overflow_row] = True
        return np.flatnonzero(~active)

    def without(self, st: SloState, idle: Intp) -> SloState:
        """``st`` (this SLO's `dump`) with the ``idle`` rows' counts folded into the overflow row (created
        if needed) and the remaining rows renumbered in order: every window's totals stay the same."""
        rows = len(st.series.keys)
        keep = np.ones(rows, np.bool_)
        keep[idle] = False
        live = np.flatnonzero(keep)
        keys = [st.series.keys[i] for i in live]
        overflow = self.series.overflow_row
        if overflow is None:
            keys.append((OVERFLOW,) * len(self.spec.group_by))
            target = len(keys) - 1
        else:
            target = int(np.searchsorted(live, overflow))
        remap = np.empty(rows, np.int64)
        remap[live] = np.arange(len(live))
        remap[idle] = target
        new_rows = len(keys)
        # Events per row count what each key received; an evicted key's are not overflow events.
        row_events = np.zeros(new_rows, np.int64)
        row_events[: len(live)] = st.series.row_events[live]

        def fold(r: RingState) -> RingState:
            slots, row = np.divmod(r.cells, rows)
            cells, inverse = np.unique(slots * new_rows + remap[row], return_inverse=True)
            total = np.zeros(len(cells), np.int64)
            bad = np.zeros(len(cells), np.int64)
            np.add.at(total, inverse, r.total)
            np.add.at(bad, inverse, r.bad)
            return RingState(r.res_ms, r.n, r.head, r.low, new_rows, cells, total, bad)

        return SloState(
            fingerprint=st.fingerprint,
            series=SeriesState(tuple(keys), row_events),
            fine=fold(st.fine),
            coarse=fold(st.coarse),
            too_old=st.too_old,
            events=st.events,
        )

    def merge(self, other: SloAggregate) -> None:
        row_map = np.array([self.series.row_for_key(k) for k in other.series.keys], np.intp)
        n_rows = len(self.series)
        for mine, theirs in ((self.fine, other.fine), (self.coarse, other.coarse)):
            mine.ensure_rows(n_rows)
            mine.merge_from(theirs, row_map)
        self.series.absorb_events(other.series, row_map)
        self.too_old += other.too_old
        self.events += other.events
        if self.judged is not None:
            self.judged.forget()


def latency_slot_seconds(window: int, resolution: int, max_slots: int) -> int:
    """Slot size for a latency window: the smallest multiple of ``resolution`` dividing the window
    into at most ``max_slots`` slots (1m -> 10 s x 6, 5m -> 30 s x 10, 1h -> 5 min x 12)."""
    slot = resolution
    while window % slot or window // slot > max_slots:
        slot += resolution
        if slot >= window:
            return window
    return slot


#: `LatencyAggregate.snapshot` computes a window's percentiles from its non-empty cells
#: (`latency.sparse_percentiles`) while they number less than ``1 / _SPARSE_FACTOR`` of the dense
#: ``rows x counts_len`` array, from the dense array (`HdrLayout.percentiles`) past that. The same values.
_SPARSE_FACTOR = 8


def window_slots(ring: HistRing, now_ms: int) -> tuple[tuple[int, int], tuple[tuple[I64, I64], ...]]:
    """The bounds of ``ring``'s window at ``now_ms`` and its non-empty slots as ``(keys, counts)``:
    `HistRing.window_counts` without making them dense (the arrays the ring holds: it replaces a slot's
    arrays, never changes them)."""
    end = now_ms // ring.slot_ms
    start = end - ring.k
    slots = []
    if ring.head is not None:
        for b in range(max(start, ring.head - ring.n + 1), min(end, ring.head + 1)):
            keys = ring.keys[b % ring.n]
            if len(keys):
                slots.append((keys, ring.counts[b % ring.n]))
    return (start * ring.slot_ms, end * ring.slot_ms), tuple(slots)


class LatencyAggregate:
    """The HDR counts of the latency groups: one `HistRing` per window (``rings``), a row per group
    (``series``). Public for the merge tier, as `SloAggregate`."""

    def __init__(self, spec: LatencySpec) -> None:
        self.spec = spec
        self.layout = HdrLayout.create(int(spec.highest_ms * 1000), spec.significant_figures)
        self.series = SeriesIndex(spec.group_by, spec.max_groups)
        self.res_ms = spec.resolution * 1000
        self.rings = []
        for w in spec.windows:
            slot = latency_slot_seconds(w, spec.resolution, spec.max_slots)
            n = w // slot + -(-_SKEW_SECONDS // slot) + 1
            self.rings.append(HistRing(w, slot, n, self.layout.counts_len))
        self.too_old = 0

    def ingest(self, batch: EventBatch, ids: dict[str, Intp], vocabs: Vocabs) -> None:
        dims = self.spec.group_by
        rows = self.series.rows(len(batch), [ids[d] for d in dims], [vocabs[d] for d in dims])
        hidx = self.layout.indices(self.layout.to_microseconds(batch.latency_ms))
        # One sort for all windows: distinct (base bucket, cell) pairs with their counts. Every
        # window's slot is a whole number of base buckets, so each ring only regroups these.
        base = batch.ts_ms // self.res_ms
        lo = int(base.min())
        cells = rows.astype(np.int64) * self.layout.counts_len + hidx
        span = max(1, len(self.series)) * self.layout.counts_len
        # np.unique(..., return_counts=True), by one sort (np.unique's extra passes cost more than it).
        code = np.sort((base - lo) * span + cells)
        first = np.flatnonzero(np.concatenate(([True], code[1:] != code[:-1])))
        counts = np.diff(np.append(first, len(code)))
        code = code[first]
        ubase = code // span  # (np.divmod: its remainder is several times slower than this)
        ucells = code - ubase * span
        ubase += lo
        dropped = 0
        for ring in self.rings:
            ratio = ring.slot_ms // self.res_ms
            dropped = max(dropped, ring.add(ubase // ratio, ucells, counts.astype(np.int64)))
        self.too_old += dropped

    def advance(self, now_ms: int) -> None:
        for ring in self.rings:
            ring.advance(now_ms // ring.slot_ms)

    def snapshot(self, now_ms: int) -> LatencySnapshot:
        rows = len(self.series)
        out = []
        for ring in self.rings:
            bounds, slots = window_slots(ring, now_ms)
            if sum(len(k) for k, _ in slots) * _SPARSE_FACTOR < rows * self.layout.counts_len:
                count, pct = sparse_percentiles(self.layout, self.spec.percentiles, rows, slots)
            else:  # cells fill much of the dense array: a cumulative sum over it beats sorting them
                counts = ring.window_counts(now_ms, rows)[1]
                count, pct = counts.sum(axis=1), self.layout.percentiles(counts, self.spec.percentiles)
            out.append(
                LatencyWindow(window=ring.window, bounds=bounds, count=count, percentiles_ms=pct / 1000.0)
            )
        return LatencySnapshot(
            spec=self.spec,
            labels=self.series.labels(),
            windows=tuple(out),
            overflow_events=self.series.overflow_events,
            too_old_events=self.too_old,
        )

    def window_counts(self, now_ms: int) -> list[I64]:
        """Raw HDR counts per window (rows = groups): for tests and encoders."""
        return [ring.window_counts(now_ms, len(self.series))[1] for ring in self.rings]

    def dump(self) -> LatencyState:
        return LatencyState(
            fingerprint=fingerprint(self.spec),
            series=self.series.dump(),
            rings=tuple(ring.dump() for ring in self.rings),
            too_old=self.too_old,
        )

    def load(self, state: LatencyState) -> None:
        self.series.load(state.series)
        for ring, ring_state in zip(self.rings, state.rings, strict=True):
            ring.load(ring_state)
        self.too_old = state.too_old

    def merge(self, other: LatencyAggregate) -> None:
        row_map = np.array([self.series.row_for_key(k) for k in other.series.keys], np.intp)
        for mine, theirs in zip(self.rings, other.rings, strict=True):
            mine.merge_from(theirs, row_map)
        self.series.absorb_events(other.series, row_map)
        self.too_old += other.too_old


@dataclass(slots=True)
class IngestStats:
    """What was read, whatever the SLOs made of it. ``unmatched``: events selected by no SLO (service and
    endpoints); like ``SloSnapshot.evicted_series`` it describes this process's input, so it is not part
    of a checkpoint (a restored aggregator starts it at 0)."""

    events: int = 0
    newest_ms: int | None = None
    oldest_ms: int | None = None
    unmatched: int = 0


class Aggregator:
    """All SLOs and latency groups of one config; see the module docstring for the semantics."""

    def __init__(self, config: Config, vocab_limit: int | None = None) -> None:
        self.config = config
        #: Label vocabularies; give them to the `Decoder` so label columns need no re-coding.
        self.vocabs = Vocabs()
        #: A vocabulary holding more values than this is reset after a batch (see `Vocab.reset`): the
        #: series caps bound the state, this bounds the label strings seen (1M attacker ids...).
        caps = sum(s.max_series for s in config.slos) + (config.latency.max_groups if config.latency else 0)
        self.vocab_limit = vocab_limit if vocab_limit is not None else max(100_000, 4 * caps)
        self.vocab_resets = 0
        self.slos = [SloAggregate(s, ExclusionCalendar.for_slo(config.exclusions, s)) for s in config.slos]
        self.latency = LatencyAggregate(config.latency) if config.latency is not None else None
        self.stats = IngestStats()

    def ingest(self, batch: EventBatch) -> None:
        """Absorb a batch of valid events (any order, any event time)."""
        n = len(batch)
        if n == 0:
            return
        v = self.vocabs
        ids = {
            "service": batch.service.recode(v.service),
            "endpoint": batch.endpoint.recode(v.endpoint),
            "customer": batch.customer.recode(v.customer),
        }
        matched: Bools | None = None
        for slo in self.slos:
            sel = slo.ingest(batch, ids, self.vocabs)
            matched = sel if matched is None else matched | sel
        if self.latency is not None:
            self.latency.ingest(batch, ids, self.vocabs)
        for vocab in (v.service, v.endpoint, v.customer):
            if len(vocab) > self.vocab_limit:
                vocab.reset()
                self.vocab_resets += 1
        st = self.stats
        st.events += n
        st.unmatched += n - (0 if matched is None else int(np.count_nonzero(matched)))
        hi, lo = int(batch.ts_ms.max()), int(batch.ts_ms.min())
        st.newest_ms = hi if st.newest_ms is None else max(st.newest_ms, hi)
        st.oldest_ms = lo if st.oldest_ms is None else min(st.oldest_ms, lo)

    def grain_ms(self) -> int:
        """The gcd of every SLO's `SloAggregate.grain_ms` and every latency slot (ms): within one
        ``now // grain``, no bucket index anywhere moves."""
        g = 0
        for slo in self.slos:
            g = math.gcd(g, slo.grain_ms())
        if self.latency is not None:
            g = math.gcd(g, *(ring.slot_ms for ring in self.latency.rings))
        return g or 1

    def advance(self, now_ms: int) -> None:
        """Move every ring to ``now`` (live mode): buckets older than the retention are dropped."""
        for slo in self.slos:
            slo.advance(now_ms)
        if self.latency is not None:
            self.latency.advance(now_ms)

    def snapshot(self, now_ms: int) -> Snapshot:
        """Evaluate everything at ``now_ms`` (read-only: only caches of running sums move)."""
        return self.capture(now_ms).evaluate()

    def capture(self, now_ms: int) -> Counts:
        """The counts `snapshot` evaluates, copied out of the state: what must run where the state is
        written (the event loop); `Counts.evaluate` needs nothing else and may run in another thread."""
        return Counts(
            now_ms=now_ms,
            slos=tuple(s.capture(now_ms) for s in self.slos),
            latency=self.latency.snapshot(now_ms) if self.latency is not None else None,
            events=self.stats.events,
            newest_event_ms=self.stats.newest_ms,
        )

    def merge(self, other: Aggregator) -> None:
        """Add ``other``'s state (same config) into this one."""
        if other.config != self.config:
            raise ValueError("cannot merge aggregators with different configs")
        for mine, theirs in zip(self.slos, other.slos, strict=True):
            mine.merge(theirs)
        if self.latency is not None and other.latency is not None:
            self.latency.merge(other.latency)
        st, ot = self.stats, other.stats
        st.events += ot.events
        st.unmatched += ot.unmatched
        for attr, pick in (("newest_ms", max), ("oldest_ms", min)):
            a, b = getattr(st, attr), getattr(ot, attr)
            setattr(st, attr, b if a is None else a if b is None else pick(a, b))

    def bucket_counts(
        self, spec: SloSpec, key: tuple[str, ...] | None, start_ms: int, end_ms: int, *, fine: bool
    ) -> BucketCounts | None:
        """One series' counts per bucket (`sloguard.core.history`), read on demand for the UI: from the
        fine ring (the last hours) or the coarse one (the period). None when no SLO here has exactly
        ``spec`` (a reload changed it) or it has no series ``key``; ``key`` None sums every series."""
        for slo in self.slos:
            if slo.spec == spec:
                return slo.bucket_counts(key, start_ms, end_ms, fine)
        return None

    def default_now(self) -> int | None:
        """End of the bucket holding the newest event, aligned so every SLO's fine resolution
        divides it (they all divide a minute): every event seen lies before it."""
        if self.stats.newest_ms is None:
            return None
        step = 1000
        for s in self.config.slos:
            step = int(np.lcm(step, s.resolution.fine * 1000))
        return (self.stats.newest_ms // step + 1) * step

    # -- idle series --------------------------------------------------------------------------------

    def evict_idle(self, now_ms: int) -> dict[str, int]:
        """Evict the series of every SLO with a ``series_ttl`` that had no event for that long (event
        time, judged per bucket): their counts move to the SLO's ``__overflow__`` series, so every
        window and the budget of the SLO as a whole are unchanged, and their rows are free for new
        keys. Returns the number evicted per SLO (only SLOs that evicted any)."""
        out: dict[str, int] = {}
        for i, slo in enumerate(self.slos):
            ttl = slo.spec.series_ttl
            if ttl is None or not slo.spec.group_by:
                continue
            state = slo.dump()  # once: both the idleness test and the fold read it
            idle = slo.idle_rows(state, now_ms, ttl)
            if not len(idle):
                continue
            fresh = SloAggregate(slo.spec, slo.exclusions)
            fresh.load(slo.without(state, idle))
            fresh.evicted = slo.evicted + len(idle)
            self.slos[i] = fresh
            out[slo.spec.name] = len(idle)
        return out

    # -- state: checkpoints and reloads (sloguard.core.state) -----------------------------------------

    def export_state(self) -> AggregatorState:
        """A copy of the state as plain values; the aggregator can keep ingesting afterwards."""
        return AggregatorState(
            slos={slo.spec.name: slo.dump() for slo in self.slos},
            latency=self.latency.dump() if self.latency is not None else None,
            events=self.stats.events,
            newest_ms=self.stats.newest_ms,
            oldest_ms=self.stats.oldest_ms,
        )

    def restore_state(self, state: AggregatorState) -> RestoreReport:
        """Load ``state`` into this fresh aggregator: every SLO whose spec is unchanged gets its
        state back; new or changed SLOs start empty, SLOs no longer configured are dropped.

        ``events``/``newest``/``oldest`` are restored as they were (they describe the stream read, which
        a reload does not change).
        """
        if self.stats.events or any(s.events for s in self.slos):
            raise ValueError("restore_state() needs a fresh aggregator")
        restored, fresh = [], []
        for slo in self.slos:
            saved = state.slos.get(slo.spec.name)
            if saved is not None and saved.fingerprint == fingerprint(slo.spec):
                slo.load(saved if slo.exclusions is None else slo.exclusions.retroactive(saved))
                restored.append(slo.spec.name)
            else:
                fresh.append(slo.spec.name)
        latency_restored = False
        if (
            self.latency is not None
            and state.latency is not None
            and state.latency.fingerprint == fingerprint(self.latency.spec)
        ):
            self.latency.load(state.latency)
            latency_restored = True
        configured = {s.spec.name for s in self.slos}
        self.stats = IngestStats(state.events, state.newest_ms, state.oldest_ms)
        return RestoreReport(
            restored=tuple(restored),
            fresh=tuple(fresh),
            dropped=tuple(name for name in state.slos if name not in configured),
            latency_restored=latency_restored,
        )


__all__ = [
    "Aggregator",
    "CalendarPeriod",
    "SeriesIndex",
    "latency_slot_seconds",
    "window_slots",
]
