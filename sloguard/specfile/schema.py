"""The file schema (pydantic): what users write, not the domain model.

These models describe the YAML as written (percentages, ``30d``, ``{calendar: month}``, ``5xx``) and check
each field on its own: types, ranges, unknown keys (``extra="forbid"``). Rules that span fields live in
`checks`, and `mapping` turns validated models into the plain dataclasses of :mod:`sloguard.core.spec`.
Defaults come from core.spec, the one place they are decided.
"""

from __future__ import annotations

import dataclasses
import typing
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    StrictInt,
    StrictStr,
    Tag,
)

from sloguard.core.spec import MINUTE, LatencyAlert, LatencySpec, Resolution, Sli, SloSpec, Timeslices
from sloguard.specfile.errors import TAG
from sloguard.specfile.validators import (
    ALERT_LABELS,
    SERIES_LABELS,
    LabelMap,
    Number,
    alert_name,
    coarse_resolution,
    duration,
    endpoint_glob,
    fine_resolution,
    latency_window,
    non_empty_text,
    positive_duration,
    rolling_window,
    severity,
    slo_name,
    status_range,
    time_slice,
    time_zone,
    unique,
)

#: The only schema version this package reads.
API_VERSION = "sloguard/v1"

# Either unit (percent, ratio) fits these bounds; `checks.check_objective` applies the unit's own.
_OBJECTIVE = Number(low=0, high=100, hint=", a percentage such as 99.9")
_BUDGET_PERCENT = Number(low=0, high=100, high_inclusive=True, hint=", a percentage of the error budget")
_FACTOR = Number(low=0, hint=", a burn rate such as 14.4")
_THRESHOLD_MS = Number(low=0, as_float=True, hint=", in milliseconds")
_PERCENTILE = Number(low=0, high=100, as_float=True)
_GOOD_RATIO = Number(low=0, high=1, high_inclusive=True, hint=", the share of good events a good slice needs")

_PositiveDuration = Annotated[int, PlainValidator(positive_duration)]
_NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
_PositiveInt = Annotated[StrictInt, Field(ge=1)]
_Text = Annotated[str, PlainValidator(non_empty_text)]
_Severity = Annotated[str, PlainValidator(severity)]
#: Static labels of an SLO (its series and alerts), labels and annotations of alert rules: (name, value)
#: pairs in file order.
_SeriesLabels = Annotated[tuple[tuple[str, str], ...], PlainValidator(LabelMap(SERIES_LABELS, series=True))]
_AlertLabels = Annotated[tuple[tuple[str, str], ...], PlainValidator(LabelMap(ALERT_LABELS))]
_Annotations = Annotated[tuple[tuple[str, str], ...], PlainValidator(LabelMap({}, annotations=True))]
_Globs = Annotated[
    tuple[Annotated[str, PlainValidator(endpoint_glob)], ...], Field(min_length=1), AfterValidator(unique)
]


def _default(cls: Any, name: str) -> Any:
    """The default of a core dataclass field: core.spec stays the one place defaults are decided."""
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


class _Schema(BaseModel):
    # Unknown keys are errors everywhere: a typo (objectve) must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SliModel(_Schema):
    """``sli:`` of an SLO: which events are bad."""

    type: Literal["availability", "latency"]
    threshold_ms: Annotated[float | None, PlainValidator(_THRESHOLD_MS)] = None
    #: Empty (``[]``): no status is bad, only latency over the threshold (type latency only).
    bad_status: tuple[Annotated[tuple[int, int], PlainValidator(status_range)], ...] = _default(
        Sli, "bad_status"
    )


class CalendarModel(_Schema):
    """``window: {calendar: month, timezone: Europe/Berlin}``."""

    calendar: Literal["week", "month", "quarter", "year"]
    timezone: Annotated[str, PlainValidator(time_zone)] = "UTC"


def _window_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return TAG + "rolling"
    if isinstance(value, dict):
        return TAG + "calendar"
    return None


_Window = Annotated[
    Annotated[int, PlainValidator(rolling_window), Tag(TAG + "rolling")]
    | Annotated[CalendarModel, Tag(TAG + "calendar")],
    Discriminator(
        _window_kind,
        custom_error_type="window",
        custom_error_message="must be a rolling period such as 30d or a calendar period "
        "such as {calendar: month, timezone: Europe/Berlin}",
    ),
]


_TimeSlice = Annotated[int, PlainValidator(time_slice)]
_EmptySlice = Literal["good", "bad", "skip"]


class RatioTimeslicesModel(_Schema):
    """``budgeting: {ratio_timeslices: {slice: 5m}}``: the mean of per-slice good ratios."""

    slice: _TimeSlice
    empty: _EmptySlice = _default(Timeslices, "empty")


class TimeslicesModel(RatioTimeslicesModel):
    """``budgeting: {timeslices: {slice: 1m, good_ratio: 0.95}}``: good slices / slices."""

    good_ratio: Annotated[Fraction, PlainValidator(_GOOD_RATIO)]


class BudgetingModel(_Schema):
    """``budgeting:`` as a mapping naming one time-slice method (`checks` wants exactly one)."""

    timeslices: TimeslicesModel | None = None
    ratio_timeslices: RatioTimeslicesModel | None = None


def _budgeting_kind(value: Any) -> str | None:
    if value == "occurrences":
        return TAG + "occurrences"
    if isinstance(value, dict):
        return TAG + "slices"
    return None


_Budgeting = Annotated[
    Annotated[Literal["occurrences"], Tag(TAG + "occurrences")]
    | Annotated[BudgetingModel, Tag(TAG + "slices")],
    Discriminator(
        _budgeting_kind,
        custom_error_type="budgeting",
        custom_error_message="must be occurrences, {timeslices: {slice: 1m, good_ratio: 0.95}} "
        "or {ratio_timeslices: {slice: 5m}}",
    ),
]


class ResolutionModel(_Schema):
    """``resolution:`` of an SLO: the fine and coarse bucket widths, in seconds."""

    fine: Annotated[int, PlainValidator(fine_resolution)] = Resolution().fine
    coarse: Annotated[int, PlainValidator(coarse_resolution)] = Resolution().coarse


class _ExportModel(_Schema):
    # Export only the k series with the highest 1h burn rate (plus every firing one); all stay in state.
    top_k: _PositiveInt | None = None


class TierModel(_Schema):
    """One alert tier, in an SLO's ``alerts.tiers`` or in a default table: exactly one of budget or factor."""

    severity: _Severity
    long: _PositiveDuration
    short: _PositiveDuration
    budget_percent: Annotated[Fraction | None, PlainValidator(_BUDGET_PERCENT)] = None
    factor: Annotated[Fraction | None, PlainValidator(_FACTOR)] = None
    for_: Annotated[int | None, PlainValidator(duration)] = Field(default=None, alias="for")
    min_events: _NonNegativeInt | None = None
    labels: _AlertLabels = ()
    annotations: _Annotations = ()


class SeverityModel(_Schema):
    """One entry of ``alerts.by_severity``: what the burn-rate alerts of the tiers of one severity get
    (Sloth's ``page_alert`` / ``ticket_alert``); a tier's own ``for``, labels and annotations win."""

    #: The severity those tiers alert with instead (``page`` -> ``pageteam``).
    severity: _Severity | None = None
    for_: Annotated[int | None, PlainValidator(duration)] = Field(default=None, alias="for")
    labels: _AlertLabels = ()
    annotations: _Annotations = ()


class AlertsModel(_Schema):
    """``alerts:`` of an SLO: its tiers, and how their burn-rate alerts are named, labelled and routed."""

    min_events: _NonNegativeInt | None = None
    tiers: tuple[TierModel, ...] | None = None
    #: The burn-rate alerts' name (Sloth's ``alerting.name``), labels and annotations.
    name: Annotated[str | None, PlainValidator(alert_name)] = None
    labels: _AlertLabels = ()
    annotations: _Annotations = ()
    by_severity: dict[_Severity, SeverityModel] = {}


class SloModel(_Schema):
    """One item of ``slos:``."""

    name: Annotated[str, PlainValidator(slo_name)]
    service: _Text
    description: StrictStr = ""
    endpoints: _Globs = ()
    endpoints_exclude: _Globs = ()
    objective: Annotated[Fraction, PlainValidator(_OBJECTIVE)]
    #: How ``objective`` is written: ``percent`` (99.9) or ``ratio`` (0.999, OpenSLO's spelling).
    objective_unit: Literal["percent", "ratio"] = "percent"
    sli: SliModel
    window: _Window
    group_by: Annotated[tuple[Literal["endpoint", "customer"], ...], AfterValidator(unique)] = ()
    labels: _SeriesLabels = ()
    max_series: _PositiveInt = _default(SloSpec, "max_series")
    series_ttl: _PositiveDuration | None = None
    resolution: ResolutionModel = ResolutionModel()
    alerts: AlertsModel = AlertsModel()
    export: _ExportModel = _ExportModel()
    budgeting: _Budgeting = "occurrences"


_LATENCY_DEFAULTS = LatencySpec()
_LatencyDimension = Literal["service", "endpoint", "customer"]


class LatencyAlertModel(_Schema):
    """One item of ``latency.alerts:``."""

    percentile: Annotated[float, PlainValidator(_PERCENTILE)] = 99.0
    window: Annotated[int, PlainValidator(latency_window)] = 5 * MINUTE
    threshold_ms: Annotated[float, PlainValidator(_THRESHOLD_MS)]
    severity: _Severity = "ticket"
    for_: Annotated[int, PlainValidator(duration)] = Field(
        default=_default(LatencyAlert, "for_seconds"), alias="for"
    )
    min_events: _NonNegativeInt = 0
    match: dict[_Text, _Text] = {}


class LatencyModel(_Schema):
    """The ``latency:`` section: percentiles per group over sliding windows."""

    group_by: Annotated[tuple[_LatencyDimension, ...], AfterValidator(unique)] = typing.cast(
        "tuple[_LatencyDimension, ...]", _LATENCY_DEFAULTS.group_by
    )
    percentiles: Annotated[
        tuple[Annotated[float, PlainValidator(_PERCENTILE)], ...],
        Field(min_length=1),
        AfterValidator(unique),
    ] = _LATENCY_DEFAULTS.percentiles
    windows: Annotated[
        tuple[Annotated[int, PlainValidator(latency_window)], ...],
        Field(min_length=1),
        AfterValidator(unique),
    ] = _LATENCY_DEFAULTS.windows
    resolution: Annotated[int, PlainValidator(fine_resolution)] = _LATENCY_DEFAULTS.resolution
    max_groups: _PositiveInt = _LATENCY_DEFAULTS.max_groups
    significant_figures: Annotated[StrictInt, Field(ge=1, le=3)] = _LATENCY_DEFAULTS.significant_figures
    max_slots: _PositiveInt = _LATENCY_DEFAULTS.max_slots
    alerts: tuple[LatencyAlertModel, ...] = ()


class FileModel(_Schema):
    """The top level of an SLO file."""

    # Only the top-level shape: each SLO and the latency section are validated on their own so that a
    # broken one does not hide the problems of the others.
    api_version: Literal["sloguard/v1"] = Field(alias="apiVersion")
    slos: Annotated[list[Any], Field(min_length=1)]
    latency: Any = None
    input: Any = None
    slas: Any = None
    exclusions: Any = None


class TableModel(_Schema):
    """A default alert tier table (``kind: AlertWindows``, package data)."""

    api_version: Literal["sloguard/v1"] = Field(alias="apiVersion")
    kind: Literal["AlertWindows"]
    period: _PositiveDuration
    tiers: Annotated[tuple[TierModel, ...], Field(min_length=1)]
