"""The SLO file: a versioned YAML schema (``apiVersion: sloguard/v1``), validated and mapped onto `core.spec`.

The file schema is not the domain model: pydantic models here describe what users write (percentages,
``30d``, ``{calendar: month}``, ``5xx``), and :func:`parse_config` maps them onto the plain dataclasses of
:mod:`sloguard.core.spec` (ratios, seconds, inclusive status ranges). pydantic lives only here.

Validation runs in two passes and reports every problem at once, one line each, naming the file, the
SLO and the field (``slos.yaml: slos[1] (checkout-latency): sli.threshold_ms: must be greater than 0``):

1. structure, per component (top level, each SLO, the latency section) with pydantic: types, ranges,
   unknown keys (``extra="forbid"``);
2. rules that span fields (short < long, windows vs. resolution and period, time-zone offsets vs. the
   coarse resolution), for every component that passed the first pass.

Numbers that matter exactly (objective, budget_percent, factor) never pass through ``float``: the YAML
loader keeps decimal scalars as :class:`~decimal.Decimal`, which converts to :class:`~fractions.Fraction`
without rounding (``99.95`` -> ``Fraction(1999, 20)``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import math
import re
import types
import typing
from collections.abc import Callable, Hashable, Sequence
from decimal import Context, Decimal, InvalidOperation
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
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
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from sloguard.core.spec import (
    FINE_HORIZON,
    HOUR,
    MINUTE,
    AlertTier,
    CalendarPeriod,
    Config,
    LatencyAlert,
    LatencySpec,
    Period,
    Resolution,
    RollingPeriod,
    Severity,
    Sli,
    SloSpec,
    format_duration,
    workbook_factor,
)

__all__ = ["API_VERSION", "SpecError", "default_tiers", "describe", "load_config", "parse_config"]

#: The only schema version this module reads.
API_VERSION = "sloguard/v1"

#: Default alert tier tables (package data, ``sloguard/data``), chosen by the SLO period they were made for.
DEFAULT_TABLES = ("google-28d.yaml", "google-30d.yaml")
#: The table for every period no table was made for (7d, calendar quarter, ...).
FALLBACK_TABLE = "google-30d.yaml"

_DAY = 24 * HOUR


class SpecError(ValueError):
    """An SLO file that cannot be used: unreadable, not YAML, or not a valid ``sloguard/v1`` file.

    ``str(error)`` is one line per problem, each starting with the file name; ``problems`` holds the same
    lines as a tuple.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------------------------------
# YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps decimal numbers exact and refuses duplicate keys.

    PyYAML silently keeps the last of two equal keys; in a config file that is almost always a
    copy-paste mistake (two ``objective:`` lines), so it is an error here.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            # Merge keys (<<: *base) may legitimately be overridden by explicit keys: only compare
            # the keys written in this mapping.
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"duplicate key {key_node.value!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> Decimal | float:
    # Decimal(text) is exact, float(text) is not: 99.95 must stay 99.95 for the objective.
    text = loader.construct_scalar(node).replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if value.is_finite():
        return value
    # .inf, .nan and YAML 1.1 sexagesimal floats (1:30.5): let PyYAML decide; the validators refuse
    # non-finite values.
    return loader.construct_yaml_float(node)


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            what += f" ({exc.context}"
            if exc.context_mark is not None and exc.context_mark is not mark:
                what += f" at line {exc.context_mark.line + 1}"
            what += ")"
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise SpecError([f"{source}: {where}{what}"]) from None
    except yaml.YAMLError as exc:  # e.g. ReaderError: control characters in the text
        raise SpecError([f"{source}: {exc}"]) from None


# --------------------------------------------------------------------------------------------------
# Field validators. Each raises PydanticCustomError so the message reads as-is ("must be ...").


def _show(value: Any) -> str:
    """A value as the user wrote it, short: ``'abc'``, ``99.9``, ``null``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _error(kind: str, message: str, value: Any) -> PydanticCustomError:
    # The message is a template for pydantic-core; braces in user input must not be read as fields.
    return PydanticCustomError(kind, message + " (got {got})", {"got": _show(value)})


@dataclasses.dataclass(frozen=True, slots=True)
class _Number:
    """Validator for a YAML number within bounds, kept exact (Fraction) unless ``as_float``."""

    low: int  # exclusive lower bound
    high: int | None = None
    high_inclusive: bool = False
    as_float: bool = False
    hint: str = ""

    def __call__(self, value: Any) -> Fraction | float:
        number = _exact(value)
        if number is None:
            raise _error("number_type", "must be a number" + self.hint, value)
        too_high = self.high is not None and (
            number > self.high if self.high_inclusive else number >= self.high
        )
        if number <= self.low or too_high:
            bound = f"greater than {self.low}"
            if self.high is not None:
                bound += f" and {'at most' if self.high_inclusive else 'less than'} {self.high}"
            raise _error("number_range", "must be " + bound + self.hint, value)
        return float(number) if self.as_float else number


def _exact(value: Any) -> Fraction | None:
    """An int or a decimal scalar (see `_Loader`) as an exact Fraction; None if it is not a finite number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    # The exponent guard keeps "1e999999999" from building a billion-digit integer.
    if isinstance(value, Decimal) and value.is_finite() and abs(value.adjusted()) <= 30:
        return Fraction(value)
    return None


_DURATION = re.compile(r"([0-9]+)(s|m|h|d|w)")
_UNIT_SECONDS = {"s": 1, "m": MINUTE, "h": HOUR, "d": _DAY, "w": 7 * _DAY}
_DURATION_HINT = "must be a duration such as 30s, 5m, 1h, 7d or 2w"


def _parse_duration(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return 0  # `for: 0` needs no unit
    if isinstance(value, str) and (m := _DURATION.fullmatch(value.strip())):
        return int(m[1]) * _UNIT_SECONDS[m[2]]
    return None


def _duration(value: Any) -> int:
    seconds = _parse_duration(value)
    if seconds is None:
        raise _error("duration", _DURATION_HINT, value)
    return seconds


def _positive_duration(value: Any) -> int:
    seconds = _duration(value)
    if seconds <= 0:
        raise _error("duration_range", "must be longer than 0s", value)
    return seconds


def _rolling_window(value: Any) -> int:
    seconds = _parse_duration(value)
    if seconds is None or seconds <= 0 or seconds % HOUR:
        raise _error(
            "window",
            "must be a whole number of hours or days such as 30d, 28d or 12h, "
            "or a calendar period such as {calendar: month, timezone: Europe/Berlin}",
            value,
        )
    return seconds


def _fine_resolution(value: Any) -> int:
    seconds = _duration(value)
    if seconds < 1 or MINUTE % seconds:
        raise _error(
            "resolution", "must be at least 1s and divide 1m evenly, e.g. 10s, 15s, 30s or 1m", value
        )
    return seconds


def _coarse_resolution(value: Any) -> int:
    seconds = _duration(value)
    if seconds < 1 or HOUR % seconds:
        raise _error("resolution", "must be at least 1s and divide 1h evenly, e.g. 1m, 5m, 15m or 1h", value)
    return seconds


def _latency_window(value: Any) -> int:
    seconds = _duration(value)
    if not 10 <= seconds <= _DAY:
        raise _error("duration_range", "must be between 10s and 1d", value)
    return seconds


def _timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise _error("timezone", "must be an IANA time zone name such as Europe/Berlin", value)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; use an IANA name such as Europe/Berlin or UTC"
        raise _error("timezone", "unknown time zone" + hint, value) from None
    return value


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _name(value: Any) -> str:
    # Names end up in metric labels, rule names and file names: keep them to a safe alphabet.
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _error(
            "name", "must start with a letter or digit and use only letters, digits, '.', '_' and '-'", value
        )
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error("text", "must be a non-empty string", value)
    return value


_STATUS_RANGE = re.compile(r"([0-9]{3})\s*-\s*([0-9]{3})")
_STATUS_CLASS = re.compile(r"([1-5])xx", re.IGNORECASE)
_STATUS_HINT = "must be a status code (503), a range (500-599) or a class (5xx), within 100-599"


def _status_range(value: Any) -> tuple[int, int]:
    """One ``bad_status`` entry as an inclusive range: 429 -> (429, 429), "5xx" -> (500, 599)."""
    lo = hi = -1
    if isinstance(value, int) and not isinstance(value, bool):
        lo = hi = value
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            lo = hi = int(text)
        elif m := _STATUS_RANGE.fullmatch(text):
            lo, hi = int(m[1]), int(m[2])
        elif m := _STATUS_CLASS.fullmatch(text):
            lo, hi = int(m[1]) * 100, int(m[1]) * 100 + 99
    if not 100 <= lo <= hi <= 599:
        raise _error("status", _STATUS_HINT, value)
    return lo, hi


_T = typing.TypeVar("_T")


def _unique(values: tuple[_T, ...]) -> tuple[_T, ...]:
    for i, v in enumerate(values):
        if v in values[:i]:
            raise PydanticCustomError("duplicate", "lists {item} twice", {"item": _show(v)})
    return values


# --------------------------------------------------------------------------------------------------
# The file schema (pydantic): what users write.

#: Prefix of union tags; pydantic puts the tag into error locations and `_format_loc` drops it.
_TAG = "~"

_OBJECTIVE = _Number(low=0, high=100, hint=", a percentage such as 99.9")
_BUDGET_PERCENT = _Number(low=0, high=100, high_inclusive=True, hint=", a percentage of the error budget")
_FACTOR = _Number(low=0, hint=", a burn rate such as 14.4")
_THRESHOLD_MS = _Number(low=0, as_float=True, hint=", in milliseconds")
_PERCENTILE = _Number(low=0, high=100, as_float=True)

_PositiveDuration = Annotated[int, PlainValidator(_positive_duration)]
_NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
_PositiveInt = Annotated[StrictInt, Field(ge=1)]


def _default(cls: Any, name: str) -> Any:
    """The default of a core dataclass field: core.spec stays the one place defaults are decided."""
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


class _Schema(BaseModel):
    # Unknown keys are errors everywhere: a typo (objectve) must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SliModel(_Schema):
    type: Literal["availability", "latency"]
    threshold_ms: Annotated[float | None, PlainValidator(_THRESHOLD_MS)] = None
    bad_status: Annotated[
        tuple[Annotated[tuple[int, int], PlainValidator(_status_range)], ...], Field(min_length=1)
    ] = _default(Sli, "bad_status")


class _CalendarModel(_Schema):
    calendar: Literal["week", "month", "quarter", "year"]
    timezone: Annotated[str, PlainValidator(_timezone)] = "UTC"


def _window_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return _TAG + "rolling"
    if isinstance(value, dict):
        return _TAG + "calendar"
    return None


_Window = Annotated[
    Annotated[int, PlainValidator(_rolling_window), Tag(_TAG + "rolling")]
    | Annotated[_CalendarModel, Tag(_TAG + "calendar")],
    Discriminator(
        _window_kind,
        custom_error_type="window",
        custom_error_message="must be a rolling period such as 30d or a calendar period "
        "such as {calendar: month, timezone: Europe/Berlin}",
    ),
]


class _ResolutionModel(_Schema):
    fine: Annotated[int, PlainValidator(_fine_resolution)] = Resolution().fine
    coarse: Annotated[int, PlainValidator(_coarse_resolution)] = Resolution().coarse


class _ExportModel(_Schema):
    # Export only the k series with the highest 1h burn rate (plus every firing one); all stay in state.
    top_k: _PositiveInt | None = None


class _TierModel(_Schema):
    severity: Literal["page", "ticket"]
    long: _PositiveDuration
    short: _PositiveDuration
    budget_percent: Annotated[Fraction | None, PlainValidator(_BUDGET_PERCENT)] = None
    factor: Annotated[Fraction | None, PlainValidator(_FACTOR)] = None
    for_: Annotated[int | None, PlainValidator(_duration)] = Field(default=None, alias="for")
    min_events: _NonNegativeInt | None = None


class _AlertsModel(_Schema):
    min_events: _NonNegativeInt | None = None
    tiers: tuple[_TierModel, ...] | None = None


class _SloModel(_Schema):
    name: Annotated[str, PlainValidator(_name)]
    service: Annotated[str, PlainValidator(_text)]
    description: StrictStr = ""
    endpoints: Annotated[
        tuple[Annotated[str, PlainValidator(_text)], ...], Field(min_length=1), AfterValidator(_unique)
    ] = ()
    objective: Annotated[Fraction, PlainValidator(_OBJECTIVE)]
    sli: _SliModel
    window: _Window
    group_by: Annotated[tuple[Literal["endpoint", "customer"], ...], AfterValidator(_unique)] = ()
    max_series: _PositiveInt = _default(SloSpec, "max_series")
    series_ttl: _PositiveDuration | None = None
    resolution: _ResolutionModel = _ResolutionModel()
    alerts: _AlertsModel = _AlertsModel()
    export: _ExportModel = _ExportModel()


_LATENCY_DEFAULTS = LatencySpec()
_LatencyDimension = Literal["service", "endpoint", "customer"]


class _LatencyAlertModel(_Schema):
    percentile: Annotated[float, PlainValidator(_PERCENTILE)] = 99.0
    window: Annotated[int, PlainValidator(_latency_window)] = 5 * MINUTE
    threshold_ms: Annotated[float, PlainValidator(_THRESHOLD_MS)]
    severity: Literal["page", "ticket"] = "ticket"
    for_: Annotated[int, PlainValidator(_duration)] = Field(
        default=_default(LatencyAlert, "for_seconds"), alias="for"
    )
    min_events: _NonNegativeInt = 0
    match: dict[Annotated[str, PlainValidator(_text)], Annotated[str, PlainValidator(_text)]] = {}


class _LatencyModel(_Schema):
    group_by: Annotated[tuple[_LatencyDimension, ...], AfterValidator(_unique)] = typing.cast(
        "tuple[_LatencyDimension, ...]", _LATENCY_DEFAULTS.group_by
    )
    percentiles: Annotated[
        tuple[Annotated[float, PlainValidator(_PERCENTILE)], ...],
        Field(min_length=1),
        AfterValidator(_unique),
    ] = _LATENCY_DEFAULTS.percentiles
    windows: Annotated[
        tuple[Annotated[int, PlainValidator(_latency_window)], ...],
        Field(min_length=1),
        AfterValidator(_unique),
    ] = _LATENCY_DEFAULTS.windows
    resolution: Annotated[int, PlainValidator(_fine_resolution)] = _LATENCY_DEFAULTS.resolution
    max_groups: _PositiveInt = _LATENCY_DEFAULTS.max_groups
    significant_figures: Annotated[StrictInt, Field(ge=1, le=3)] = _LATENCY_DEFAULTS.significant_figures
    max_slots: _PositiveInt = _LATENCY_DEFAULTS.max_slots
    alerts: tuple[_LatencyAlertModel, ...] = ()


class _FileModel(_Schema):
    # Only the top-level shape: each SLO and the latency section are validated on their own so that a
    # broken one does not hide the problems of the others.
    api_version: Literal["sloguard/v1"] = Field(alias="apiVersion")
    slos: Annotated[list[Any], Field(min_length=1)]
    latency: Any = None


class _TableModel(_Schema):
    api_version: Literal["sloguard/v1"] = Field(alias="apiVersion")
    kind: Literal["AlertWindows"]
    period: _PositiveDuration
    tiers: Annotated[tuple[_TierModel, ...], Field(min_length=1)]


# --------------------------------------------------------------------------------------------------
# Error reporting

_Loc = tuple[str | int, ...]


def _format_loc(loc: _Loc) -> str:
    """``("alerts", "tiers", 0, "short")`` -> ``alerts.tiers[0].short`` (union tags dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(_TAG):
            out += f".{part}" if out else part
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The schema models an annotation can hold (through Annotated, unions, lists and tuples)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _allowed_keys(root: type[BaseModel], loc: _Loc) -> list[str]:
    """The keys the schema allows in the mapping at ``loc`` (for "did you mean" hints)."""
    models = [root]
    for part in loc:
        if isinstance(part, int) or part.startswith(_TAG):
            continue
        models = [
            m
            for model in models
            for name, info in model.model_fields.items()
            if (info.alias or name) == part
            for m in _models_in(info.annotation)
        ]
    return sorted({info.alias or name for model in models for name, info in model.model_fields.items()})


def _message(error: ErrorDetails, root: type[BaseModel]) -> str:
    """pydantic's error as a short "must ..." phrase."""
    kind, ctx, value = error["type"], error.get("ctx", {}), error["input"]
    got = f" (got {_show(value)})"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        allowed = _allowed_keys(root, error["loc"][:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        return (
            f"unknown field; did you mean {close[0]!r}?"
            if close
            else f"unknown field; allowed: {', '.join(allowed)}"
        )
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping" + got
    if kind in ("list_type", "tuple_type"):
        return "must be a list" + got
    if kind in ("string_type", "str_type"):
        return "must be a string" + got
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number" + got
    if kind == "literal_error":
        return f"must be {ctx['expected']}" + got
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}" + got
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}" + got
    if kind == "too_short":
        return "must not be empty"
    msg = error["msg"]  # our PydanticCustomErrors read as-is
    return msg[0].lower() + msg[1:] if msg[:1].isupper() else msg


class _Problems:
    """Collects ``file: where: field: message`` lines; raises them together as one SpecError."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, where: str, loc: _Loc, message: str) -> None:
        parts = [self.source, where, _format_loc(loc), message]
        self.lines.append(": ".join(p for p in parts if p))

    def add_validation(
        self, where: str, error: ValidationError, root: type[BaseModel], prefix: _Loc = ()
    ) -> None:
        for e in error.errors():
            if e["type"] == "too_short" and e["input"]:
                # pydantic counts items after validation: a list whose only item is invalid is also
                # "too short". The item's own error is the one to report.
                continue
            loc = tuple(e["loc"])
            if e["type"] == "invalid_key":
                # The key itself is the last part of loc, and it is not a name: report it on the mapping.
                key = _show(e["input"])
                hint = "; quote it (YAML reads yes/no/on/off as booleans)" if key in ("true", "false") else ""
                self.add(where, prefix + loc[:-1], f"key {key} is not a string{hint}")
                continue
            self.add(where, prefix + loc, _message(e, root))

    def raise_if_any(self) -> None:
        if self.lines:
            raise SpecError(self.lines)


# --------------------------------------------------------------------------------------------------
# Default alert tier tables (package data)


@functools.cache
def _load_table(name: str) -> _TableModel:
    source = f"sloguard/data/{name}"
    text = resources.files("sloguard").joinpath("data", name).read_text(encoding="utf-8")
    problems = _Problems(source)
    try:
        table = _TableModel.model_validate(_load_yaml(text, source))
    except ValidationError as exc:
        problems.add_validation("", exc, _TableModel)
        raise SpecError(problems.lines) from None
    for i, tier in enumerate(table.tiers):
        # Tables state how much budget a tier spends; the factor follows from each SLO's own period.
        if tier.budget_percent is None or tier.factor is not None:
            problems.add("", ("tiers", i), "a default tier needs budget_percent and no factor")
    problems.raise_if_any()
    return table


def _table_for(period: Period) -> tuple[str, _TableModel]:
    for name in DEFAULT_TABLES:
        table = _load_table(name)
        if table.period == period.nominal_seconds:
            return name, table
    return FALLBACK_TABLE, _load_table(FALLBACK_TABLE)


def default_tiers(period: Period, min_events: int = 0) -> tuple[AlertTier, ...]:
    """The default alert tiers for ``period``, from the package's alert tables.

    A 28-day period uses ``google-28d.yaml``, any other ``google-30d.yaml``; factors are
    ``workbook_factor(budget_percent, period.nominal_seconds, long)``, so 14.4 / 6 / 3 / 1 over 30 days.
    """
    _, table = _table_for(period)
    return tuple(_tier(t, period, min_events) for t in table.tiers)


def _tier(t: _TierModel, period: Period, min_events: int) -> AlertTier:
    if t.factor is not None:
        factor = t.factor
    else:
        assert t.budget_percent is not None  # checked before mapping
        factor = workbook_factor(t.budget_percent, period.nominal_seconds, t.long)
    return AlertTier(
        severity=Severity(t.severity),
        long_window=t.long,
        short_window=t.short,
        factor=factor,
        budget_percent=t.budget_percent if t.factor is None else None,
        min_events=min_events,
        for_seconds=t.for_ or 0,
    )


# --------------------------------------------------------------------------------------------------
# Mapping onto core.spec, with the checks that span fields

_Report = Callable[[_Loc, str], None]


def _period(window: int | _CalendarModel) -> Period:
    if isinstance(window, int):
        return RollingPeriod(window)
    return CalendarPeriod(window.calendar, window.timezone)


def _utc_offsets(timezone: str) -> list[int]:
    """UTC offsets (seconds) of a zone on the first of each month, 2020-2030: its current rules."""
    tz = ZoneInfo(timezone)
    offsets = set()
    for year in range(2020, 2031):
        for month in range(1, 13):
            offset = dt.datetime(year, month, 1, 12, tzinfo=tz).utcoffset()
            assert offset is not None  # ZoneInfo always knows its offset
            offsets.add(int(offset.total_seconds()))
    return sorted(offsets)


def _format_offset(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), HOUR)
    return f"{sign}{hours:02d}:{rest // MINUTE:02d}" + (f":{rest % MINUTE:02d}" if rest % MINUTE else "")


def _check_resolution(m: _SloModel, period: Period, report: _Report) -> None:
    fine, coarse = m.resolution.fine, m.resolution.coarse
    if coarse % fine:
        report(
            ("resolution", "coarse"),
            f"must be a multiple of resolution.fine ({format_duration(fine)}) "
            f"(got {format_duration(coarse)})",
        )
        return
    if isinstance(period, CalendarPeriod):
        # Calendar units start at local midnight: coarse buckets (aligned to UTC) must start there
        # too, so every UTC offset of the zone must be a whole number of coarse buckets.
        offsets = _utc_offsets(period.timezone)
        if any(o % coarse for o in offsets):
            fits = math.gcd(coarse, *offsets)
            hint = (
                f"; use coarse: {format_duration(fits)} or a divisor of it"
                if fits % fine == 0
                else "; no coarse resolution fits with this fine resolution"
            )
            report(
                ("resolution", "coarse"),
                f"{format_duration(coarse)} does not divide the UTC offsets of {period.timezone} "
                f"({', '.join(map(_format_offset, offsets))}), so buckets would not start at local "
                f"midnight{hint}",
            )


def _check_tier(t: _TierModel, period: Period, res: _ResolutionModel, report: _Report) -> None:
    """The rules of one tier; ``report`` receives field locations relative to the tier."""
    if (t.budget_percent is None) == (t.factor is None):
        report((), "give exactly one of budget_percent or factor")
    if t.short >= t.long:
        report(
            ("short",),
            f"must be shorter than long ({format_duration(t.long)}) (got {format_duration(t.short)})",
        )
    if t.long > period.nominal_seconds:
        report(
            ("long",),
            f"{format_duration(t.long)} is longer than the SLO period ({period.describe()}); "
            "shorten the window or lengthen the period",
        )
    for field, window in (("long", t.long), ("short", t.short)):
        # Windows up to 6h are summed from fine buckets, longer ones from coarse buckets: a window
        # must be a whole number of its buckets to be exact.
        if window <= FINE_HORIZON and window % res.fine:
            report(
                (field,),
                f"{format_duration(window)} is not a multiple of resolution.fine "
                f"({format_duration(res.fine)}), which windows up to 6h use",
            )
        elif window > FINE_HORIZON and window % res.coarse:
            report(
                (field,),
                f"{format_duration(window)} is not a multiple of resolution.coarse "
                f"({format_duration(res.coarse)}), which windows longer than 6h use",
            )


def _tiers(m: _SloModel, period: Period, report: _Report) -> tuple[AlertTier, ...]:
    alerts = m.alerts
    if alerts.tiers is None:
        table_name, table = _table_for(period)
        longest = max(table.tiers, key=lambda t: t.long)
        if longest.long > period.nominal_seconds:
            report(
                ("window",),
                f"{period.describe()} is shorter than the {format_duration(longest.long)} long window of the "
                f"default alert tiers ({table_name}); use a longer window or set alerts.tiers",
            )
        min_events = alerts.min_events if alerts.min_events is not None else 0
        return tuple(_tier(t, period, min_events) for t in table.tiers)

    seen: dict[tuple[str, int, int], int] = {}
    for i, t in enumerate(alerts.tiers):
        base: _Loc = ("alerts", "tiers", i)

        def at(loc: _Loc, message: str, base: _Loc = base) -> None:
            report(base + loc, message)

        _check_tier(t, period, m.resolution, at)
        key = (t.severity, t.long, t.short)
        if key in seen:
            at((), f"repeats alerts.tiers[{seen[key]}] (same severity and windows)")
        seen.setdefault(key, i)
    min_events_default = alerts.min_events if alerts.min_events is not None else 0
    return tuple(
        _tier(t, period, t.min_events if t.min_events is not None else min_events_default)
        for t in alerts.tiers
        if (t.budget_percent is None) != (t.factor is None)
    )


def _merge_ranges(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted, with overlapping and adjacent ranges joined: [500-599, 429, 503] -> (429, 429), (500, 599)."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _slo(m: _SloModel, report: _Report) -> SloSpec:
    if "resolution" not in m.model_fields_set and "customer" in m.group_by:
        # The customer default applies before any check, so every check sees the effective buckets.
        m = m.model_copy(
            update={"resolution": _ResolutionModel.model_validate({"fine": "1m", "coarse": "1h"})}
        )
    period = _period(m.window)
    if m.sli.type == "latency" and m.sli.threshold_ms is None:
        report(("sli", "threshold_ms"), "is required for type latency (good = latency <= threshold_ms)")
    if m.sli.type == "availability" and m.sli.threshold_ms is not None:
        report(("sli", "threshold_ms"), "only applies to type latency")
    if m.series_ttl is not None:
        if not m.group_by:
            report(("series_ttl",), "only applies to an SLO with group_by (one series per key)")
        elif m.series_ttl < m.resolution.coarse:
            report(
                ("series_ttl",),
                f"must be at least the coarse resolution ({format_duration(m.resolution.coarse)}): "
                "idleness is judged per coarse bucket",
            )
    _check_resolution(m, period, report)
    tiers = _tiers(m, period, report)
    return SloSpec(
        name=m.name,
        service=m.service,
        objective=m.objective / 100,
        sli=Sli(
            kind=m.sli.type,
            bad_status=_merge_ranges(m.sli.bad_status),
            threshold_ms=m.sli.threshold_ms if m.sli.type == "latency" else None,
        ),
        period=period,
        tiers=tiers,
        endpoints=m.endpoints,
        group_by=m.group_by,
        resolution=_resolution_for(m),
        max_series=m.max_series,
        description=m.description,
        export_top_k=m.export.top_k,
        series_ttl=m.series_ttl,
    )


#: Default buckets for SLOs grouped by customer (see `_slo`): thousands of series need 1-minute /
#: 1-hour buckets (~4 KB a series instead of ~43 KB); a per-customer page is at most a minute later.
def _resolution_for(m: _SloModel) -> Resolution:
    return Resolution(fine=m.resolution.fine, coarse=m.resolution.coarse)


def _latency(m: _LatencyModel, report: _Report) -> LatencySpec:
    for i, window in enumerate(m.windows):
        if window % m.resolution:
            report(
                ("windows", i),
                f"{format_duration(window)} is not a multiple of latency.resolution "
                f"({format_duration(m.resolution)})",
            )
    alerts: list[LatencyAlert] = []
    seen: dict[tuple[float, int, float, tuple[tuple[str, str], ...]], int] = {}
    for i, a in enumerate(m.alerts):
        ok = True
        if a.percentile not in m.percentiles:
            ok = False
            computed = ", ".join(f"{p:g}" for p in m.percentiles)
            report(("alerts", i, "percentile"), f"p{a.percentile:g} is not computed; percentiles: {computed}")
        if a.window not in m.windows:
            ok = False
            computed = ", ".join(map(format_duration, m.windows))
            where = ("alerts", i, "window")
            report(where, f"{format_duration(a.window)} is not computed; windows: {computed}")
        for key in a.match:
            if key not in m.group_by:
                ok = False
                report(
                    ("alerts", i, "match", key),
                    f"is not a latency group label; group_by: {', '.join(m.group_by) or 'none'}",
                )
        key_of = (a.percentile, a.window, a.threshold_ms, tuple(sorted(a.match.items())))
        if key_of in seen:
            ok = False
            report(
                ("alerts", i),
                f"repeats alerts[{seen[key_of]}] (same percentile, window, threshold and match)",
            )
        seen.setdefault(key_of, i)
        if ok:
            alerts.append(
                LatencyAlert(
                    percentile=a.percentile,
                    window=a.window,
                    threshold_ms=a.threshold_ms,
                    severity=Severity(a.severity),
                    for_seconds=a.for_,
                    min_events=a.min_events,
                    match=tuple(sorted(a.match.items())),
                )
            )
    return LatencySpec(
        group_by=m.group_by,
        percentiles=m.percentiles,
        windows=m.windows,
        max_slots=m.max_slots,
        resolution=m.resolution,
        max_groups=m.max_groups,
        significant_figures=m.significant_figures,
        alerts=tuple(alerts),
    )


def _slo_label(index: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"slos[{index}] ({name})" if isinstance(name, str) and name else f"slos[{index}]"


# --------------------------------------------------------------------------------------------------
# Public API


def parse_config(text: str, source: str = "<string>") -> Config:
    """Parse the text of a ``sloguard/v1`` SLO file into a :class:`~sloguard.core.spec.Config`.

    ``source`` names the file in error messages. Raises :class:`SpecError` listing every problem.
    """
    data = _load_yaml(text, source)
    problems = _Problems(source)
    if data is None:
        problems.add("", (), f"the file is empty; expected apiVersion: {API_VERSION} and a list of slos")
        problems.raise_if_any()
    if not isinstance(data, dict):
        problems.add("", (), f"must be a mapping with apiVersion: {API_VERSION} and slos (got {_show(data)})")
        problems.raise_if_any()
    version = data.get("apiVersion")
    if version is not None and version != API_VERSION:
        # Another version's fields would only produce noise: stop at the version.
        problems.add(
            "", ("apiVersion",), f"unsupported version {_show(version)}; this sloguard reads {API_VERSION}"
        )
        problems.raise_if_any()

    try:
        _FileModel.model_validate(data)
    except ValidationError as exc:
        problems.add_validation("", exc, _FileModel)

    slos: list[SloSpec] = []
    raw_slos = data.get("slos")
    first_use: dict[str, int] = {}
    for i, raw in enumerate(raw_slos if isinstance(raw_slos, list) else []):
        where = _slo_label(i, raw)

        def report(loc: _Loc, message: str, where: str = where) -> None:
            problems.add(where, loc, message)

        name = raw.get("name") if isinstance(raw, dict) else None
        if isinstance(name, str):
            if name in first_use:
                report(("name",), f"duplicate SLO name; slos[{first_use[name]}] already uses it")
            first_use.setdefault(name, i)
        try:
            model = _SloModel.model_validate(raw)
        except ValidationError as exc:
            problems.add_validation(where, exc, _SloModel)
            continue
        slos.append(_slo(model, report))

    latency = None
    if data.get("latency") is not None:
        try:
            latency_model = _LatencyModel.model_validate(data["latency"])
        except ValidationError as exc:
            problems.add_validation("", exc, _LatencyModel, prefix=("latency",))
        else:
            latency = _latency(latency_model, lambda loc, msg: problems.add("", ("latency", *loc), msg))

    problems.raise_if_any()
    return Config(slos=tuple(slos), latency=latency)


def load_config(path: str | Path) -> Config:
    """Read and parse an SLO file; errors name the file as given (e.g. ``config/slos.yaml``)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"{source}: no such file"]) from None
    except IsADirectoryError:
        raise SpecError([f"{source}: is a directory, not an SLO file"]) from None
    except OSError as exc:
        raise SpecError([f"{source}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([f"{source}: not UTF-8 text (byte {exc.start})"]) from None
    return parse_config(text, source)


# --------------------------------------------------------------------------------------------------
# describe(): the human summary printed by `sloguard check`


def _num(value: Fraction, digits: int = 6) -> str:
    """Exact decimal if it has one within ``digits`` significant digits, else ``~`` and the rounding."""
    rounded = Context(prec=digits).divide(Decimal(value.numerator), Decimal(value.denominator))
    text = format(rounded.normalize(), "f")
    return text if Fraction(rounded) == value else "~" + text


def _statuses(ranges: Sequence[tuple[int, int]]) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def _columns(rows: list[list[str]]) -> list[str]:
    """Rows of cells as left-aligned columns separated by two spaces."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _describe_slo(s: SloSpec) -> list[str]:
    if isinstance(s.period, CalendarPeriod):
        period = (
            f"{s.period.describe()}; burn rates use a nominal {format_duration(s.period.nominal_seconds)}"
        )
    else:
        period = f"{s.period.describe()} rolling"
    if s.sli.kind == "latency":
        sli = f"latency: bad = latency > {s.sli.threshold_ms:g} ms or status in {_statuses(s.sli.bad_status)}"
    else:
        sli = f"availability: bad = status in {_statuses(s.sli.bad_status)}"
    group = ", ".join(s.group_by) if s.group_by else "none (one series)"
    res = s.resolution
    lines = [f"SLO {s.name}"]
    rows = [
        ("service", s.service),
        ("description", s.description),
        ("endpoints", ", ".join(s.endpoints) if s.endpoints else "all"),
        ("objective", f"{_num(s.objective * 100)}% (error budget {_num(s.error_budget * 100)}% of events)"),
        ("period", period),
        (
            "group by",
            f"{group}; at most {s.max_series} series"
            + (f"; idle ones evicted after {format_duration(s.series_ttl)}" if s.series_ttl else "")
            + (f"; exports the {s.export_top_k} worst (1h burn) and any firing" if s.export_top_k else ""),
        ),
        ("SLI", sli),
        (
            "resolution",
            f"{format_duration(res.fine)} buckets for windows up to {format_duration(FINE_HORIZON)}, "
            f"{format_duration(res.coarse)} beyond",
        ),
        ("alert tiers", str(len(s.tiers)) if s.tiers else "none"),
    ]
    lines += [f"  {label:<12} {value}".rstrip() for label, value in rows if value]
    if s.tiers:
        table = [
            ["severity", "long", "short", "budget", "factor", "fires above error ratio", "for", "min_events"]
        ]
        for t in s.tiers:
            threshold = t.factor * s.error_budget  # the error ratio both windows must exceed
            table.append(
                [
                    t.severity.value,
                    format_duration(t.long_window),
                    format_duration(t.short_window),
                    f"{_num(t.budget_percent)}%" if t.budget_percent is not None else "-",
                    _num(t.factor),
                    f"{_num(threshold)} ({_num(threshold * 100)}%)",
                    format_duration(t.for_seconds),
                    str(t.min_events),
                ]
            )
        lines += ["    " + line for line in _columns(table)]
    return lines


def describe(config: Config) -> str:
    """A human summary of a loaded config: one block per SLO, then the latency section."""
    lines: list[str] = []
    for spec in config.slos:
        lines += [*_describe_slo(spec), ""]
    lat = config.latency
    if lat is None:
        lines.append("latency percentiles: none")
    else:
        lines += [
            "latency percentiles",
            f"  {'group by':<12} {', '.join(lat.group_by) if lat.group_by else 'none (one group)'}"
            f"; at most {lat.max_groups} groups",
            f"  {'percentiles':<12} {', '.join(f'p{p:g}' for p in lat.percentiles)}"
            f" ({lat.significant_figures} significant figures)",
            f"  {'windows':<12} {', '.join(map(format_duration, lat.windows))}"
            f" (resolution {format_duration(lat.resolution)}, at most {lat.max_slots} histogram slots each)",
        ]
        for a in lat.alerts:
            where = ", ".join(f"{k}={v}" for k, v in a.match) or "every group"
            guard = f", at least {a.min_events} events" if a.min_events else ""
            lines.append(
                f"  {'alert':<12} {a.severity.value}: p{a.percentile:g} over {format_duration(a.window)}"
                f" > {a.threshold_ms:g} ms for {format_duration(a.for_seconds)} ({where}{guard})"
            )
    return "\n".join(lines)
