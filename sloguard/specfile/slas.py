"""The ``slas:`` section of an SLO file -> `core.sla.SlaSpec`s (docs/sla.md).

```yaml
slas:
  - {name: api-sla, slo: api-availability, per: customer, preset: aws-compute}
  - name: storage-sla
    slo: api-availability
    measure: {interval_error_rate: {interval: 5m}}   # or {minutes_down: {error_rate_above: 0.05}}
    period: {calendar: month, timezone: UTC}
    credits: [{below: 99.9, percent: 10}, {below: 99, percent: 25}, {below: 95, percent: 100}]
```

A ``preset`` (`sla_presets`) supplies ``measure``, ``period`` and ``credits``; a key written next to it
replaces the preset's. Without a preset, ``measure`` and ``credits`` are required.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, StrictInt, ValidationError

from sloguard.core.sla import (
    CreditTier,
    IntervalErrorRate,
    Measure,
    MinutesDown,
    Occurrences,
    SlaSpec,
    measure_name,
)
from sloguard.core.spec import DAY, HOUR, MINUTE, CalendarPeriod, SloSpec, format_duration
from sloguard.specfile.errors import Loc, Problems, named_items, number, refusal
from sloguard.specfile.schema import CalendarModel, _Schema
from sloguard.specfile.sla_presets import PRESETS
from sloguard.specfile.validators import Number, positive_duration, slo_name

_RATE = Number(low=0, high=1, hint=", a ratio such as 0.05")
_PERCENT = Number(low=0, high=100, high_inclusive=True, hint=", a percentage")
_Rate = Annotated[Fraction, PlainValidator(_RATE)]
_MinEvents = Annotated[StrictInt, Field(ge=1)]


def _slice(value: Any) -> int:
    seconds = positive_duration(value)
    if HOUR % seconds:
        raise refusal("slice", "must divide an hour (1m, 5m, 10m, 1h, ...)", value)
    return seconds


_Slice = Annotated[int, PlainValidator(_slice)]


class MinutesDownModel(_Schema):
    """``measure: {minutes_down: ...}``: the share of slices (1m) that were not down."""

    error_rate_above: _Rate
    slice: _Slice = MINUTE
    min_events: _MinEvents = 1


class IntervalErrorRateModel(_Schema):
    """``measure: {interval_error_rate: ...}``: 1 − the mean error rate of the intervals (S3)."""

    interval: _Slice = 5 * MINUTE
    down_above: _Rate = IntervalErrorRate().down_above
    min_events: _MinEvents = 1


class OccurrencesModel(_Schema):
    """``measure: {occurrences: ...}``: good / total events."""

    slice: _Slice = 5 * MINUTE
    down_above: _Rate = Occurrences().down_above
    min_events: _MinEvents = 1


class MeasureModel(_Schema):
    """Exactly one of the three measures."""

    minutes_down: MinutesDownModel | None = None
    interval_error_rate: IntervalErrorRateModel | None = None
    occurrences: OccurrencesModel | None = None


class CreditModel(_Schema):
    """``{below: 99.99, percent: 10}``: attainment under ``below`` percent earns ``percent``."""

    below: Annotated[Fraction, PlainValidator(_PERCENT)]
    percent: Annotated[Fraction, PlainValidator(_PERCENT)]


class SlaModel(_Schema):
    """One item of ``slas:``."""

    name: Annotated[str, PlainValidator(slo_name)]
    slo: Annotated[str, PlainValidator(slo_name)]
    per: Literal["customer"] = "customer"
    preset: Literal["aws-compute", "aws-s3", "gcp-compute", "azure-vm"] | None = None
    measure: MeasureModel | None = None
    period: CalendarModel | None = None
    credits: Annotated[tuple[CreditModel, ...], Field(min_length=1)] | None = None
    min_events: _MinEvents = 1
    projection: Annotated[int, PlainValidator(positive_duration)] = DAY


def parse_slas(raw: Any, slos: tuple[SloSpec, ...], problems: Problems) -> tuple[SlaSpec, ...]:
    """The ``slas:`` section validated and mapped; problems are named ``slas[i] (name): field``."""
    if not isinstance(raw, list):
        problems.add("", ("slas",), "must be a list of SLAs")
        return ()
    names = {s.name for s in slos}
    out: list[SlaSpec] = []
    for it in named_items(raw, "slas", "SLA", problems):
        spec = _sla(it.raw, names, it.report, problems, it.label)
        if spec is not None:
            out.append(spec)
    return tuple(out)


def _sla(
    item: Any, slos: set[str], report: Callable[[Loc, str], None], problems: Problems, label: str
) -> SlaSpec | None:
    preset = item.get("preset") if isinstance(item, dict) else None
    base = PRESETS.get(preset, {}) if isinstance(preset, str) else {}
    merged = {**base, **item} if isinstance(item, dict) else item
    try:
        model = SlaModel.model_validate(merged)
    except ValidationError as exc:
        problems.add_validation(label, exc, SlaModel)
        return None
    if model.slo not in slos:
        report(("slo",), f"no SLO named {model.slo!r} in this file")
    if model.measure is None:
        report(("measure",), "is required without a preset")
    if model.credits is None:
        report(("credits",), "is required without a preset")
    if model.measure is None or model.credits is None:
        return None
    measure = _measure(model.measure, report)
    belows = [c.below for c in model.credits]
    if len(set(belows)) != len(belows):
        report(("credits",), "two tiers have the same below")
    if measure is None:
        return None
    period = model.period or CalendarModel(calendar="month")
    return SlaSpec(
        name=model.name,
        slo=model.slo,
        measure=measure,
        credits=tuple(
            sorted((CreditTier(c.below, c.percent) for c in model.credits), key=lambda t: -t.below)
        ),
        period=CalendarPeriod(period.calendar, period.timezone),
        per=model.per,
        min_events=model.min_events,
        preset=model.preset,
        projection_seconds=model.projection,
    )


def _measure(m: MeasureModel, report: Callable[[Loc, str], None]) -> Measure | None:
    given = [k for k in ("minutes_down", "interval_error_rate", "occurrences") if getattr(m, k) is not None]
    if len(given) != 1:
        report(("measure",), "must name exactly one of minutes_down, interval_error_rate, occurrences")
        return None
    if m.minutes_down is not None:
        md = m.minutes_down
        return MinutesDown(md.error_rate_above, md.slice, md.min_events)
    if m.interval_error_rate is not None:
        ie = m.interval_error_rate
        return IntervalErrorRate(ie.interval, ie.down_above, ie.min_events)
    assert m.occurrences is not None
    oc = m.occurrences
    return Occurrences(oc.slice, oc.down_above, oc.min_events)


def describe_slas(slas: tuple[SlaSpec, ...]) -> list[str]:
    """`sloguard check`'s lines for the ``slas:`` section (none without one)."""
    if not slas:
        return []
    lines = ["", "slas:"]
    for s in slas:
        m = s.measure
        rule = f"{measure_name(m)}, {format_duration(m.slice_seconds)} slices"
        down = "down" if isinstance(m, MinutesDown) else "downtime listed"
        rule += f", {down} above {number(m.down_above * 100)} %"
        tiers = ", ".join(f"below {number(t.below)} % {number(t.percent)} %" for t in s.credits)
        preset = f", preset {s.preset}" if s.preset else ""
        lines.append(
            f"  {s.name}: {s.slo} per {s.per}{preset}; {rule}; {s.period.describe()}; credits {tiers}; "
            f"insufficient data under {s.min_events} events"
        )
    return lines
