"""SLAs: what an SLO's events are worth by contract, per customer, over a calendar period.

Pure: event batches in (`SlaCounter.ingest`), numbers out (`SlaCounter.evaluate(now_ms)`); time is an
argument. The SLO decides which events count and which are bad; the SLA decides how they are counted:

- `MinutesDown` (AWS Compute, Google Compute Engine, Azure VMs): the period is cut into slices (1 min)
  aligned to its start; a slice is *down* when it holds at least ``min_events`` events and more than
  ``error_rate_above`` of them are bad. Attainment = 1 − down slices / slices. A slice without traffic is
  up: the contracts count minutes of the month, and a minute nobody called holds no evidence of downtime.
- `IntervalErrorRate` (AWS S3): per slice (5 min) the error rate bad / total, 0 for a slice without
  requests (S3's own rule); attainment = 1 − the mean of the error rates over every slice of the period.
  Computed in floating point: each rate is one division, their sum `math.fsum` (correctly rounded, so
  independent of order), divided by the number of slices.
- `Occurrences` (sloguard's own method): attainment = good / total events of the period.

Attainment is exact (a `Fraction`) for the first and last. The credit is the highest ``percent`` of the
tiers whose ``below`` (a percentage) the attainment is under. A customer with fewer than
``min_events`` events in the range gets no attainment and no credit: ``INSUFFICIENT_DATA``.

While the period runs (``now`` inside it), attainment covers the slices elapsed, ``[start, now)`` with
``now`` aligned down to a slice; the projected end-of-period attainment assumes the rest of the period
goes as the last ``projection_seconds`` did (bad slices, error rates or bad events at that rate).

Downtime periods are runs of consecutive down slices (for the two other measures: slices whose error
rate is above ``down_above``), each with its start, end and counts.

Customers beyond the SLO's ``max_series`` share the ``__overflow__`` row (`SeriesIndex`): their events are
reported there, with a warning, and never added to another customer's figures.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from sloguard._types import I64, Bools, Intp
from sloguard.core.exclusions import ExcludedPeriod, Exclusion, ExclusionCalendar
from sloguard.core.model import OVERFLOW, EventBatch, Vocabs
from sloguard.core.series import Matcher, SeriesIndex, endpoint_matcher
from sloguard.core.spec import DAY, CalendarPeriod, SloSpec
from sloguard.core.state import SeriesState

INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
OK = "OK"

I32 = npt.NDArray[np.int32]

#: Pending (customer, slice) cells summed into the compact arrays past this many.
_COMPACT_AT = 1 << 20
#: A label vocabulary holding more values than this is reset between batches (as the aggregator does).
_VOCAB_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class MinutesDown:
    """Minutes (slices) of the period that were down; see the module docstring."""

    error_rate_above: Fraction
    slice_seconds: int = 60
    #: A slice with fewer events cannot be down.
    min_events: int = 1

    @property
    def down_above(self) -> Fraction:
        return self.error_rate_above


@dataclass(frozen=True, slots=True)
class IntervalErrorRate:
    """The mean of per-slice error rates (empty slice: 0); see the module docstring."""

    slice_seconds: int = 300
    #: Slices whose error rate is above this are listed as downtime periods (no effect on attainment).
    down_above: Fraction = Fraction(1, 20)
    min_events: int = 1


@dataclass(frozen=True, slots=True)
class Occurrences:
    """good / total events of the period; slices only list the downtime periods."""

    slice_seconds: int = 300
    down_above: Fraction = Fraction(1, 20)
    min_events: int = 1


Measure = MinutesDown | IntervalErrorRate | Occurrences


def measure_name(measure: Measure) -> str:
    """The measure as the SLO file spells it."""
    if isinstance(measure, MinutesDown):
        return "minutes_down"
    if isinstance(measure, IntervalErrorRate):
        return "interval_error_rate"
    return "occurrences"


@dataclass(frozen=True, slots=True)
class CreditTier:
    """Attainment under ``below`` percent earns ``percent`` of the period's bill."""

    below: Fraction
    percent: Fraction


@dataclass(frozen=True, slots=True)
class SlaSpec:
    """One SLA: an SLO measured per customer over a calendar period, with credit tiers."""

    name: str
    slo: str
    measure: Measure
    credits: tuple[CreditTier, ...]
    period: CalendarPeriod = field(default_factory=lambda: CalendarPeriod("month"))
    per: Literal["customer"] = "customer"
    #: Fewer events in the range: INSUFFICIENT_DATA.
    min_events: int = 1
    #: The published scheme the measure and tiers come from (None: written out in the file).
    preset: str | None = None
    #: The recent past the projection extrapolates.
    projection_seconds: int = DAY


def credit_for(attainment: Fraction, tiers: tuple[CreditTier, ...]) -> CreditTier | None:
    """The tier with the highest percent among those whose ``below`` the attainment (a ratio) is under."""
    hit = [t for t in tiers if attainment * 100 < t.below]
    return max(hit, key=lambda t: (t.percent, -t.below)) if hit else None


def month_range(year: int, month: int, timezone: str) -> tuple[int, int]:
    """[start, end) in epoch ms of a calendar month in a time zone."""
    tz = ZoneInfo(timezone)
    start = dt.datetime(year, month, 1, tzinfo=tz)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return int(start.timestamp()) * 1000, int(end.timestamp()) * 1000


@dataclass(frozen=True, slots=True)
class Downtime:
    """Consecutive down slices: ``[start_ms, end_ms)`` and the events in them."""

    start_ms: int
    end_ms: int
    bad: int
    total: int


@dataclass(frozen=True, slots=True)
class CustomerSla:
    """One customer's figures for one SLA; attainment and credit are None under INSUFFICIENT_DATA."""

    customer: str
    status: str
    good: int
    total: int
    #: Slices elapsed, and those of them not down.
    slices: int
    good_slices: int
    attainment: Fraction | None
    credit: CreditTier | None
    projected: Fraction | None
    projected_credit: CreditTier | None
    downtime: tuple[Downtime, ...]

    @property
    def credit_percent(self) -> Fraction | None:
        if self.attainment is None:
            return None
        return self.credit.percent if self.credit else Fraction(0)


@dataclass(frozen=True, slots=True)
class SlaResult:
    """An SLA evaluated at ``now_ms`` over ``[start_ms, end_ms)``; customers in name order."""

    spec: SlaSpec
    start_ms: int
    end_ms: int
    now_ms: int
    slices: int
    elapsed: int
    customers: tuple[CustomerSla, ...]
    #: Events of the SLO counted: in the range and in the slices elapsed at ``now``.
    #: ``overflow_*``: events and distinct customers beyond the SLO's max_series (under __overflow__).
    events: int
    overflow_events: int
    overflow_customers: int
    warnings: tuple[str, ...]
    #: The SLO's maintenance windows in ``[start_ms, now_ms)``: their events are not counted.
    excluded: tuple[ExcludedPeriod, ...] = ()


@dataclass(frozen=True, slots=True)
class SlaCounterState:
    """A `SlaCounter`'s counts as plain values (a daemon checkpoint holds them, `core.sla_live`)."""

    start_ms: int
    end_ms: int
    series: SeriesState
    #: The non-empty cells, sorted by key = row · slices + slice.
    keys: I64
    total: I64
    bad: I64
    #: Customers counted under ``__overflow__``.
    overflowed: tuple[str, ...]
    outside: int


class SlaCounter:
    """Per customer and slice: total and bad events of one SLA's SLO within ``[start_ms, end_ms)``.

    Only cells with events are kept (sparse: a customer that calls once a day costs 30 cells a month).
    Feed every batch to `ingest`, in any order; `evaluate` at any ``now``.
    """

    def __init__(
        self, sla: SlaSpec, slo: SloSpec, start_ms: int, end_ms: int, exclusions: tuple[Exclusion, ...] = ()
    ) -> None:
        slice_ms = sla.measure.slice_seconds * 1000
        if end_ms <= start_ms or (end_ms - start_ms) % slice_ms:
            raise ValueError(
                f"the range must be a whole number of {sla.measure.slice_seconds} s slices, "
                f"got {end_ms - start_ms} ms"
            )
        if slo.name != sla.slo:
            raise ValueError(f"SLA {sla.name} is on SLO {sla.slo}, not {slo.name}")
        self.sla, self.slo = sla, slo
        self.start_ms, self.end_ms, self.slice_ms = start_ms, end_ms, slice_ms
        self.n_slices = (end_ms - start_ms) // slice_ms
        self.vocabs = Vocabs()
        self.series = SeriesIndex(("customer",), slo.max_series)
        self._service = Matcher(lambda s: s == slo.service)
        self._endpoint = endpoint_matcher(slo.endpoints, slo.endpoints_exclude)
        self._bad_ranges = slo.sli.bad_status
        self._threshold = slo.sli.threshold_ms if slo.sli.kind == "latency" else None
        self._pending: list[tuple[I64, I32, I32]] = []
        self._pending_n = 0
        self._cells: tuple[I64, I32, I32] = (np.zeros(0, np.int64), _empty32(), _empty32())
        self._overflowed: set[str] = set()
        #: Events of the SLO outside the range (not counted).
        self.outside = 0
        #: The SLO's maintenance windows (docs/exclusions.md): their events are left out, and counted there.
        self.exclusions = ExclusionCalendar.for_slo(exclusions, slo)

    def ingest(self, batch: EventBatch) -> None:
        """Count the events of ``batch`` the SLO selects and the range holds."""
        if not len(batch):
            return
        v = self.vocabs
        service = batch.service.recode(v.service)
        sel = self._service.lookup(v.service, service)
        if self._endpoint is not None:
            sel &= self._endpoint.lookup(v.endpoint, batch.endpoint.recode(v.endpoint))
        ts = batch.ts_ms
        inside = sel & (ts >= self.start_ms) & (ts < self.end_ms)
        self.outside += int(np.count_nonzero(sel)) - int(np.count_nonzero(inside))
        idx = np.flatnonzero(inside)
        if self.exclusions is not None:
            idx = self.exclusions.keep(idx, ts)
        if len(idx):
            self._count(batch, idx)
        for vocab in (v.service, v.endpoint, v.customer):
            if len(vocab) > _VOCAB_LIMIT:
                vocab.reset()

    def _count(self, batch: EventBatch, idx: Intp) -> None:
        status = batch.status[idx]
        bad = np.zeros(len(idx), np.bool_)
        for lo, hi in self._bad_ranges:
            bad |= (status >= lo) & (status <= hi)
        if self._threshold is not None:
            bad |= batch.latency_ms[idx] > self._threshold
        vocab = self.vocabs.customer
        customer = batch.customer.recode(vocab)[idx]
        rows = self.series.rows(len(idx), [customer], [vocab])
        over = self.series.overflow_row
        if over is not None:
            names = {vocab.names[i] for i in np.unique(customer[rows == over]).tolist()}
            self._overflowed |= names - {OVERFLOW}
        keys = rows.astype(np.int64) * self.n_slices + (batch.ts_ms[idx] - self.start_ms) // self.slice_ms
        self._pending.append(_sum_by_key(keys, np.ones(len(idx), np.int32), bad.astype(np.int32)))
        self._pending_n += len(self._pending[-1][0])
        if self._pending_n > _COMPACT_AT:
            self._compact()

    def _compact(self) -> tuple[I64, I32, I32]:
        """Sum the pending cells into the compact arrays (sorted by cell key)."""
        if self._pending:
            parts = self._pending
            # The pending cells summed (small), then merged into the sorted cells: peak memory is the
            # cells twice (before and after the merge), not a sort of all of them.
            self._pending, self._pending_n = [], 0
            cells, self._cells = self._cells, (np.zeros(0, np.int64), _empty32(), _empty32())
            self._cells = _merge(cells, _sum_by_key(*_joined(parts)))
        return self._cells

    def dump(self) -> SlaCounterState:
        """A copy of the counts; the counter can keep ingesting afterwards."""
        keys, total, bad = self._compact()
        return SlaCounterState(
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            series=self.series.dump(),
            keys=keys.copy(),
            total=total.astype(np.int64),
            bad=bad.astype(np.int64),
            overflowed=tuple(sorted(self._overflowed)),
            outside=self.outside,
        )

    def load(self, state: SlaCounterState) -> None:
        """Put ``state`` back into this fresh counter (same SLA, SLO and range; raises ValueError)."""
        if (state.start_ms, state.end_ms) != (self.start_ms, self.end_ms):
            raise ValueError("the state is of another range")
        if len(self.series) or self._pending or len(self._cells[0]):
            raise ValueError("load() needs a fresh counter")
        keys = np.asarray(state.keys, np.int64)
        if not len(keys) == len(state.total) == len(state.bad):
            raise ValueError("cell columns of different lengths")
        if len(keys) and (keys[0] < 0 or bool(np.any(np.diff(keys) <= 0))):
            raise ValueError("cell keys are not sorted and unique")
        if len(keys) and int(keys[-1]) >= len(state.series.keys) * self.n_slices:
            raise ValueError("a cell lies outside the counter's rows and slices")
        self.series.load(state.series)
        self._cells = (keys.copy(), state.total.astype(np.int32), state.bad.astype(np.int32))
        self._overflowed = set(state.overflowed)
        self.outside = state.outside

    def evaluate(self, now_ms: int) -> SlaResult:
        """Every customer's figures at ``now_ms`` (slices from the range start up to ``now`` aligned down
        to a slice; events after that are not counted)."""
        keys, total, bad = self._compact()
        elapsed = max(0, min(self.n_slices, (now_ms - self.start_ms) // self.slice_ms))
        # Cells are sorted by key = row * slices + slice: a customer's cells up to ``now`` are one run.
        first = np.arange(len(self.series), dtype=np.int64) * self.n_slices
        lo, hi = np.searchsorted(keys, first).tolist(), np.searchsorted(keys, first + elapsed).tolist()
        customers = [
            self._customer(
                r,
                elapsed,
                keys[a:b] - r * self.n_slices,
                total[a:b].astype(np.int64),
                bad[a:b].astype(np.int64),
            )
            for r, a, b in zip(range(len(self.series)), lo, hi, strict=True)
        ]
        customers.sort(key=lambda c: c.customer)
        n_over = len(self._overflowed)
        over_events = self.series.overflow_events
        warnings: tuple[str, ...] = ()
        if n_over:
            warnings = (
                f"{n_over} customers beyond the SLO's max_series ({self.slo.max_series}) are reported "
                f"together under {OVERFLOW} ({over_events} events); raise max_series to see each",
            )
        return SlaResult(
            spec=self.sla,
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            now_ms=now_ms,
            slices=self.n_slices,
            elapsed=int(elapsed),
            customers=tuple(customers),
            events=sum(c.total for c in customers),
            overflow_events=over_events,
            overflow_customers=n_over,
            warnings=warnings,
            excluded=()
            if self.exclusions is None
            else tuple(self.exclusions.periods(self.start_ms, min(now_ms, self.end_ms))),
        )

    def _customer(self, row: int, elapsed: int, slices: I64, total: I64, bad: I64) -> CustomerSla:
        sla, m = self.sla, self.sla.measure
        name = self.series.keys[row][0]
        n_total, n_bad = int(total.sum()), int(bad.sum())
        limit = m.down_above
        enough = total >= m.min_events
        down: Bools = enough & (bad * limit.denominator > total * limit.numerator)
        downtime = self._runs(slices[down], total[down], bad[down])
        n_down = int(np.count_nonzero(down)) if isinstance(m, MinutesDown) else 0
        good_slices = elapsed - n_down if isinstance(m, MinutesDown) else elapsed - len(slices[down])
        if n_total < sla.min_events or elapsed == 0:
            none = dict.fromkeys(("attainment", "credit", "projected", "projected_credit"))
            return CustomerSla(
                name,
                INSUFFICIENT_DATA,
                n_total - n_bad,
                n_total,
                elapsed,
                good_slices,
                downtime=downtime,
                **none,
            )
        attainment = _attainment(m, elapsed, n_down, total, bad)
        projected = self._projected(m, elapsed, slices, total, bad, down, attainment)
        return CustomerSla(
            customer=name,
            status=OK,
            good=n_total - n_bad,
            total=n_total,
            slices=elapsed,
            good_slices=good_slices,
            attainment=attainment,
            credit=credit_for(attainment, sla.credits),
            projected=projected,
            projected_credit=credit_for(projected, sla.credits),
            downtime=downtime,
        )

    def _projected(
        self, m: Measure, elapsed: int, slices: I64, total: I64, bad: I64, down: Bools, now: Fraction
    ) -> Fraction:
        """The attainment at the period's end if the rest goes as the last ``projection_seconds`` did."""
        rest = self.n_slices - elapsed
        if rest == 0:
            return now
        width = min(elapsed, max(1, self.sla.projection_seconds * 1000 // self.slice_ms))
        recent = slices >= elapsed - width
        if isinstance(m, MinutesDown):
            down_now = int(np.count_nonzero(down))
            rate = Fraction(int(np.count_nonzero(down & recent)), width)
            return 1 - (down_now + rate * rest) / self.n_slices
        if isinstance(m, IntervalErrorRate):
            rates = bad / np.maximum(total, 1)
            recent_mean = math.fsum(rates[recent].tolist()) / width
            spent = (1 - now) * elapsed
            return 1 - (spent + Fraction(recent_mean) * rest) / self.n_slices
        n_total, n_bad = int(total.sum()), int(bad.sum())
        per_slice_total = Fraction(int(total[recent].sum()), width)
        per_slice_bad = Fraction(int(bad[recent].sum()), width)
        return 1 - (n_bad + per_slice_bad * rest) / (n_total + per_slice_total * rest)

    def _runs(self, slices: I64, total: I64, bad: I64) -> tuple[Downtime, ...]:
        """Runs of consecutive slices (sorted) as downtime periods."""
        if not len(slices):
            return ()
        starts = np.flatnonzero(np.diff(slices, prepend=slices[0] - 2) != 1)
        ends = [*starts[1:].tolist(), len(slices)]
        s0, ms = self.start_ms, self.slice_ms
        return tuple(
            Downtime(
                s0 + int(slices[a]) * ms,
                s0 + (int(slices[b - 1]) + 1) * ms,
                int(bad[a:b].sum()),
                int(total[a:b].sum()),
            )
            for a, b in zip(starts.tolist(), ends, strict=True)
        )


def _attainment(m: Measure, elapsed: int, n_down: int, total: I64, bad: I64) -> Fraction:
    if isinstance(m, MinutesDown):
        return Fraction(elapsed - n_down, elapsed)
    if isinstance(m, IntervalErrorRate):
        # Slices without events are 0 % and absent here; each rate is one correctly rounded division.
        mean = math.fsum((bad / total).tolist()) / elapsed
        return 1 - Fraction(mean)
    n_total = int(total.sum())
    return Fraction(n_total - int(bad.sum()), n_total)


def _empty32() -> I32:
    return np.zeros(0, np.int32)


def _merge(cells: tuple[I64, I32, I32], more: tuple[I64, I32, I32]) -> tuple[I64, I32, I32]:
    """Two sets of cells, each sorted with unique keys, as one (counts of a key in both added)."""
    keys, total, bad = cells
    add_keys, add_total, add_bad = more
    pos = np.searchsorted(keys, add_keys)
    hit = pos < len(keys)
    hit[hit] = keys[pos[hit]] == add_keys[hit]
    at = pos[hit]  # distinct: the keys added are unique
    total[at] += add_total[hit]
    bad[at] += add_bad[hit]
    miss = ~hit
    # np.insert puts values given for the same position in their given (sorted) order.
    keys = np.insert(keys, pos[miss], add_keys[miss])
    total = np.insert(total, pos[miss], add_total[miss])
    bad = np.insert(bad, pos[miss], add_bad[miss])
    return keys, total, bad


def _joined(parts: list[tuple[I64, I32, I32]]) -> tuple[I64, I32, I32]:
    """The parts' columns concatenated; empties ``parts``."""
    keys = np.concatenate([p[0] for p in parts])
    total = np.concatenate([p[1] for p in parts])
    bad = np.concatenate([p[2] for p in parts])
    parts.clear()
    return keys, total, bad


def _sum_by_key(keys: I64, total: I32, bad: I32) -> tuple[I64, I32, I32]:
    """The counts of equal keys added, keys sorted (a stable sort, then one sum per run of a key).

    Counts are int32: one customer's events in one slice (at most an hour) stay far below 2**31."""
    if not len(keys):
        return keys, total, bad
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    total, bad = total[order], bad[order]
    del order
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    keys = keys[starts]
    total = np.add.reduceat(total, starts)
    bad = np.add.reduceat(bad, starts)
    return keys, total, bad
