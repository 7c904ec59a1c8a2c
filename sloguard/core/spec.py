"""The SLO domain model: what an SLO is, independent of how the file that declares it is spelled.

`sloguard.specfile` parses and validates the YAML file and maps it onto these types; the core only ever
sees these. All durations are whole seconds; objectives and factors are exact `Fraction`s so that
thresholds such as "burn rate 14.4 at 99.9 %" compare without floating-point error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import TYPE_CHECKING, ClassVar, Literal
from zoneinfo import ZoneInfo

from sloguard.core.inputspec import InputSpec

if TYPE_CHECKING:
    from sloguard.core.exclusions import Exclusion
    from sloguard.core.sla import SlaSpec
from sloguard.core.model import DIMENSIONS

MINUTE = 60
HOUR = 3600
DAY = 86400

#: Windows every SLO reports, in seconds (5m, 30m, 1h, 2h, 6h, 1d, 3d); the period comes on top.
STANDARD_WINDOWS: tuple[int, ...] = (5 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 6 * HOUR, DAY, 3 * DAY)

#: Windows up to this length use the fine resolution; longer ones the coarse resolution.
FINE_HORIZON = 6 * HOUR


class Severity(str):
    """An alert's severity: the value of the ``severity`` label Alertmanager routes on.

    Any simple token the SLO file allows (``critical``, ``pageteam``); `PAGE` and `TICKET` are the
    severities of the default tier tables and of sloguard's own alerts. ``value`` is the plain string.
    """

    __slots__ = ()

    PAGE: ClassVar[Severity]
    TICKET: ClassVar[Severity]

    @property
    def value(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        # The repr is part of the checkpoint fingerprint (`core.state`): it keeps the spelling of the enum
        # this class was, so page and ticket tiers keep their fingerprint and an upgrade keeps the state.
        return f"<Severity.{self.value.upper()}: {self.value!r}>"


Severity.PAGE = Severity("page")
Severity.TICKET = Severity("ticket")

#: Labels as ordered (name, value) pairs: static labels of an SLO, or of the alerts of a tier.
Labels = tuple[tuple[str, str], ...]


def format_duration(seconds: int) -> str:
    """Shortest exact spelling: 300 -> "5m", 7200 -> "2h", 259200 -> "3d", 90 -> "90s"."""
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class AlertTier:
    """One multiwindow burn-rate alert tier (SRE Workbook, "Alerting on SLOs", table 5-8).

    The tier fires when the error ratio over BOTH windows exceeds ``factor · (1 − objective)`` and the
    long window holds at least ``min_events`` events (the low-traffic guard). With the workbook's
    defaults ``factor = budget_percent/100 · period / long_window``: consuming ``budget_percent`` of the
    period's budget within ``long_window``.
    """

    severity: Severity
    long_window: int
    short_window: int
    factor: Fraction
    budget_percent: Fraction | None = None
    min_events: int = 0
    for_seconds: int = 0
    #: Extra labels and annotations of the tier's alert rule (the SLO's, its severity's and its own,
    #: merged). Presentation only, so not in the repr (the state fingerprint).
    labels: Labels = field(default=(), repr=False)
    annotations: Labels = field(default=(), repr=False)

    @property
    def name(self) -> str:
        return (
            f"{self.severity.value}-{format_duration(self.long_window)}-{format_duration(self.short_window)}"
        )


def workbook_factor(budget_percent: Fraction, period_seconds: int, long_window: int) -> Fraction:
    """factor = (budget_percent / 100 · period) / long_window  (SRE Workbook ch. 5, table 5-8).

    30d: 2 % in 1h -> 14.4, 5 % in 6h -> 6, 10 % in 1d -> 3, 10 % in 3d -> 1.
    """
    return budget_percent / 100 * Fraction(period_seconds, long_window)


def max_burn_rate(objective: Fraction) -> Fraction:
    """The highest burn rate an SLO can show: 1 / (1 − objective), when every event is bad.

    burn rate = error ratio / (1 − objective) and the error ratio is at most 1. A tier fires only when the
    burn rate exceeds its factor, so a tier with ``factor >= max_burn_rate(objective)`` can never fire:
    at 99.9 % the ceiling is 1000, at 50 % it is 2 (the default 14.4 / 6 / 3 can never fire there).
    """
    return 1 / (1 - objective)


@dataclass(frozen=True, slots=True)
class RollingPeriod:
    """A rolling SLO period (e.g. 30d): the budget covers ``[now − seconds, now)``."""

    seconds: int

    @property
    def nominal_seconds(self) -> int:
        return self.seconds

    @property
    def max_seconds(self) -> int:
        return self.seconds

    def describe(self) -> str:
        return format_duration(self.seconds)


CalendarUnit = Literal["week", "month", "quarter", "year"]

_NOMINAL_CALENDAR = {"week": 7 * DAY, "month": 30 * DAY, "quarter": 90 * DAY, "year": 365 * DAY}
# The longest a unit can be, plus one hour for a DST fall-back day inside it.
_MAX_CALENDAR = {
    "week": 7 * DAY + HOUR,
    "month": 31 * DAY + HOUR,
    "quarter": 92 * DAY + HOUR,
    "year": 366 * DAY,
}


@dataclass(frozen=True, slots=True)
class CalendarPeriod:
    """A calendar SLO period (this month / week / quarter / year in a time zone).

    The budget covers ``[start of the current unit, now)``; burn-rate factors use the nominal length
    (30 d a month, 90 d a quarter, 7 d a week, 365 d a year) so tiers stay the same month to month.
    """

    unit: CalendarUnit
    timezone: str = "UTC"

    @property
    def nominal_seconds(self) -> int:
        return _NOMINAL_CALENDAR[self.unit]

    @property
    def max_seconds(self) -> int:
        return _MAX_CALENDAR[self.unit]

    def describe(self) -> str:
        return f"calendar {self.unit} ({self.timezone})"

    def bounds(self, at_ms: int) -> tuple[int, int]:
        """[start, end) in epoch ms of the calendar unit that contains ``at_ms``.

        Computed on the wall clock of the zone, so a month across a DST change is 1 h shorter or longer.
        """
        tz = ZoneInfo(self.timezone)
        local = dt.datetime.fromtimestamp(at_ms / 1000, tz)
        if self.unit == "week":
            start_day = local.date() - dt.timedelta(days=local.weekday())
            end_day = start_day + dt.timedelta(days=7)
        elif self.unit == "month":
            start_day = local.date().replace(day=1)
            end_day = _add_months(start_day, 1)
        elif self.unit == "quarter":
            start_day = local.date().replace(month=(local.month - 1) // 3 * 3 + 1, day=1)
            end_day = _add_months(start_day, 3)
        else:
            start_day = local.date().replace(month=1, day=1)
            end_day = start_day.replace(year=start_day.year + 1)
        start = dt.datetime.combine(start_day, dt.time(), tz)
        end = dt.datetime.combine(end_day, dt.time(), tz)
        return int(start.timestamp()) * 1000, int(end.timestamp()) * 1000


def _add_months(day: dt.date, months: int) -> dt.date:
    m = day.month - 1 + months
    return day.replace(year=day.year + m // 12, month=m % 12 + 1)


Period = RollingPeriod | CalendarPeriod


@dataclass(frozen=True, slots=True)
class Sli:
    """What makes an event bad.

    Availability: ``status`` falls in one of ``bad_status`` (inclusive ranges; default 500–599).
    Latency: additionally bad when ``latency_ms > threshold_ms``; with ``bad_status`` empty, only then
    (a 5xx answered fast is good).
    """

    kind: Literal["availability", "latency"]
    bad_status: tuple[tuple[int, int], ...] = ((500, 599),)
    threshold_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    """Bucket sizes in seconds.

    ``fine`` (must divide 60) serves windows up to 6 h; ``coarse`` (must divide 3600 and be a multiple
    of ``fine``) serves longer windows and the period. A window is evaluated at ``now`` aligned down to
    its tier's resolution, so it covers exactly ``[now_aligned − W, now_aligned)``; the period ends at
    ``now`` aligned to ``fine`` (its last, partial coarse bucket read from the fine buckets).
    """

    fine: int = 10
    coarse: int = 300


EmptySlice = Literal["good", "bad", "skip"]


@dataclass(frozen=True, slots=True)
class Timeslices:
    """Time-slice budgeting (OpenSLO ``Timeslices`` / ``RatioTimeslices``): time is cut into slices of
    ``slice`` seconds (epoch multiples; for a calendar period every period start is one, see
    `sloguard.specfile`), and the budget counts slices instead of events.

    - ``good_ratio`` set (``timeslices``): a slice is good when ``good / total >= good_ratio`` (exactly);
      a slice is bad otherwise. The error ratio over a window is bad slices / judged slices.
    - ``good_ratio`` None (``ratio_timeslices``): each slice contributes its bad ratio ``bad / total``;
      the error ratio over a window is the mean of those, i.e. ``1 − mean(per-slice good ratio)``.

    ``empty``: what a slice without events is: ``good`` (ratio 1, the default), ``bad`` (ratio 0) or
    ``skip`` (not judged: in neither numerator nor denominator). Only complete slices are judged: the
    slice holding ``now`` is pending, so every window ends at ``now`` aligned down to the slice.
    Windows, burn rates, alert tiers, the period budget and ETA then follow SLO_MATH.md with slices in
    place of events (burn rate = error ratio / (1 − objective)).
    """

    slice: int
    good_ratio: Fraction | None = None
    empty: EmptySlice = "good"

    @property
    def method(self) -> Literal["timeslices", "ratio_timeslices"]:
        return "timeslices" if self.good_ratio is not None else "ratio_timeslices"

    def slices(self, window: int) -> int:
        """Slices a window of ``window`` seconds covers: the whole slices inside it, at least one."""
        return max(1, window // self.slice)


#: Field metadata of `SloSpec` fields added after checkpoints existed: such a field is in the repr (the
#: state fingerprint) only when it is set, so a spec that does not use it keeps the fingerprint it had.
_FINGERPRINT_IF_SET = {"fingerprint": "if set"}


@dataclass(frozen=True, slots=True)
class SloSpec:
    """One SLO: which events it looks at, what is bad, the objective, the period, how it is grouped.

    An event belongs to the SLO when its service is ``service``, its endpoint matches one of ``endpoints``
    (or ``endpoints`` is empty) and none of ``endpoints_exclude``.
    """

    name: str
    service: str
    objective: Fraction  # a ratio, e.g. Fraction(999, 1000)
    sli: Sli
    period: Period
    tiers: tuple[AlertTier, ...]
    endpoints: tuple[str, ...] = ()  # fnmatch globs; empty = all endpoints
    #: fnmatch globs of endpoints left out even when ``endpoints`` selects them (health checks, ...).
    endpoints_exclude: tuple[str, ...] = field(default=(), repr=False, metadata=_FINGERPRINT_IF_SET)
    group_by: tuple[str, ...] = ()  # subset of ("endpoint", "customer")
    resolution: Resolution = field(default_factory=Resolution)
    max_series: int = 10_000
    description: str = ""
    #: Export only the k series with the highest 1h burn rate plus every firing one (None: all).
    export_top_k: int | None = None
    #: Seconds without events after which a series is evicted: its counts move to the SLO's
    #: ``__overflow__`` series (nothing leaves the budget) and its row is free for a new key (None: never).
    series_ttl: int | None = None
    #: Default tiers left out because they can never fire at this objective (see `max_burn_rate`), kept so
    #: `sloguard check` can say so. Not in the repr: the repr is the state fingerprint (`core.state`), and
    #: what is not evaluated does not change the state's shape.
    dropped_tiers: tuple[AlertTier, ...] = field(default=(), repr=False)
    #: Static labels of the SLO: on each of its exported series and on each of its alerts. Presentation
    #: only, so not in the repr (the state fingerprint), like ``alert_name``.
    labels: Labels = field(default=(), repr=False)
    #: The name of the SLO's burn-rate alerts (None: sloguard's ``SloguardErrorBudgetBurn``).
    alert_name: str | None = field(default=None, repr=False)
    #: How the budget counts (`Timeslices`); None: occurrences (good events / all events).
    budgeting: Timeslices | None = field(default=None, repr=False, metadata=_FINGERPRINT_IF_SET)

    def __repr__(self) -> str:
        # What the dataclass would write, plus the fields marked _FINGERPRINT_IF_SET that are set.
        shown = [f for f in fields(self) if f.repr or (f.metadata and getattr(self, f.name))]
        return f"{type(self).__qualname__}({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in shown)})"

    @property
    def error_budget(self) -> Fraction:
        """1 − objective: the fraction of events allowed to be bad."""
        return 1 - self.objective

    @property
    def windows(self) -> tuple[int, ...]:
        """Every rolling window this SLO reports: the standard set plus any window a tier uses."""
        ws = set(STANDARD_WINDOWS)
        for t in self.tiers:
            ws.add(t.long_window)
            ws.add(t.short_window)
        return tuple(sorted(ws))


@dataclass(frozen=True, slots=True)
class LatencyAlert:
    """A percentile threshold on the latency series: fires while the ``percentile`` over ``window``
    exceeds ``threshold_ms`` (and the window holds at least ``min_events`` events), for ``for_seconds``.

    ``match`` restricts it to the latency groups with those label values (e.g. one endpoint with its
    own threshold); empty means every group.
    """

    percentile: float
    window: int
    threshold_ms: float
    severity: Severity = Severity.TICKET
    for_seconds: int = 5 * MINUTE
    min_events: int = 0
    match: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class LatencySpec:
    """Percentile series, independent of SLOs: HDR histograms per group and window."""

    group_by: tuple[str, ...] = ("service", "endpoint")
    percentiles: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)
    windows: tuple[int, ...] = (MINUTE, 5 * MINUTE, HOUR)
    #: Histogram slots per window: the window is evaluated at ``now`` aligned down to W / slots.
    max_slots: int = 12
    resolution: int = 10
    max_groups: int = 1_000
    significant_figures: int = 2
    highest_ms: float = 3_600_000.0
    alerts: tuple[LatencyAlert, ...] = ()

    def __post_init__(self) -> None:
        for d in self.group_by:
            if d not in DIMENSIONS:
                raise ValueError(f"latency group_by: unknown dimension {d!r}")
        for a in self.alerts:
            if a.percentile not in self.percentiles or a.window not in self.windows:
                raise ValueError("latency alert: percentile and window must be among those computed")
            if any(k not in self.group_by for k, _ in a.match):
                raise ValueError("latency alert: match keys must be among group_by")


@dataclass(frozen=True, slots=True)
class Config:
    """Everything an SLO file declares, as domain types."""

    slos: tuple[SloSpec, ...]
    latency: LatencySpec | None = None
    #: The file's ``input:`` mapping (None: sloguard's own shape, or the preset the settings name).
    input: InputSpec | None = None
    #: The file's ``slas:`` (`sloguard.core.sla`; read by `sloguard report sla`).
    slas: tuple[SlaSpec, ...] = ()
    #: The file's ``exclusions:`` (maintenance windows, `sloguard.core.exclusions`).
    exclusions: tuple[Exclusion, ...] = ()
