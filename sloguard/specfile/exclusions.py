"""The ``exclusions:`` section of an SLO file (maintenance windows) -> `core.exclusions.Exclusion`s.

```yaml
exclusions:
  - name: release-4-2
    start: 2026-03-03T22:00:00Z
    end: 2026-03-03T23:30:00Z          # or duration: 90m
    reason: release 4.2, approved CHG-1234
    slos: [checkout-availability]
  - name: os-patching
    start: 2026-01-04T02:00:00         # wall time in `timezone`
    timezone: Europe/Berlin
    duration: 1h
    rrule: FREQ=WEEKLY;BYDAY=SU        # iCal RRULE (RFC 5545), expanded by python-dateutil
    reason: Sunday patch window
    match: {team: payments}            # every SLO whose labels include these
```

The one home of python-dateutil: the RRULE is parsed here, and the core gets a `core.exclusions.Recurrence`
that expands it. Occurrences repeat the start's wall time in ``timezone`` (a weekly 02:00 window stays at
02:00 local across a DST change); a wall time that a DST change skips is read with the offset before the
change (Python's ``fold=0``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr
from pydantic import Field, PlainValidator

from sloguard.core.exclusions import Exclusion, Recurrence
from sloguard.core.spec import SloSpec, format_duration
from sloguard.specfile.errors import Loc, Problems, named_items, refusal, validated
from sloguard.specfile.schema import _Schema
from sloguard.specfile.validators import positive_duration, slo_name, time_zone

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


def _instant(value: Any) -> dt.datetime:
    """An ISO 8601 date-time (YAML may have read it as a timestamp); naive: wall time in ``timezone``."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            pass
    raise refusal("datetime", "must be an ISO 8601 date-time such as 2026-03-01T02:00:00Z", value)


_Instant = Annotated[dt.datetime, PlainValidator(_instant)]


class ExclusionModel(_Schema):
    """One item of ``exclusions:`` (Nobl9's BudgetAdjustment, Datadog's SLO correction)."""

    name: Annotated[str, PlainValidator(slo_name)]
    start: _Instant
    end: _Instant | None = None
    duration: Annotated[int, PlainValidator(positive_duration)] | None = None
    timezone: Annotated[str, PlainValidator(time_zone)] = "UTC"
    rrule: str | None = None
    reason: str = ""
    slos: Annotated[tuple[Annotated[str, PlainValidator(slo_name)], ...], Field(min_length=1)] | None = None
    match: Annotated[dict[str, str], Field(min_length=1)] | None = None


def epoch_ms(when: dt.datetime) -> int:
    """Milliseconds since the epoch, exactly (an aware datetime)."""
    return (when - _EPOCH) // _MS


def recurrence(rule: rrule) -> Recurrence:
    """The core's view of an expanded RRULE: occurrence starts (epoch ms) in ``[lo_ms, hi_ms)``."""

    def starts(lo_ms: int, hi_ms: int) -> Iterator[int]:
        lo, hi = _EPOCH + lo_ms * _MS, _EPOCH + hi_ms * _MS
        for when in rule.xafter(lo, inc=True):
            if when >= hi:
                return
            yield epoch_ms(when)

    return starts


def parse_exclusions(raw: Any, slos: tuple[SloSpec, ...], problems: Problems) -> tuple[Exclusion, ...]:
    """The ``exclusions:`` section validated and mapped; problems name ``exclusions[i] (name): field``."""
    if not isinstance(raw, list):
        problems.add("", ("exclusions",), "must be a list of maintenance windows")
        return ()
    out: list[Exclusion] = []
    for it in named_items(raw, "exclusions", "exclusion", problems):
        if (model := validated(ExclusionModel, it, problems)) is None:
            continue
        x = _exclusion(model, slos, it.report)
        if x is not None:
            out.append(x)
    return tuple(out)


def _exclusion(
    m: ExclusionModel, slos: tuple[SloSpec, ...], report: Callable[[Loc, str], None]
) -> Exclusion | None:
    start = m.start if m.start.tzinfo is not None else m.start.replace(tzinfo=ZoneInfo(m.timezone))
    if (m.end is None) == (m.duration is None):
        report(("duration",), "give exactly one of duration and end")
        return None
    if m.end is not None:
        end = m.end if m.end.tzinfo is not None else m.end.replace(tzinfo=ZoneInfo(m.timezone))
        duration_ms = epoch_ms(end) - epoch_ms(start)
        if duration_ms <= 0:
            report(("end",), "must be after start")
            return None
    else:
        assert m.duration is not None
        duration_ms = m.duration * 1000
    if (m.slos is None) == (m.match is None):
        report(("slos",), "give exactly one of slos (names) and match (SLO labels)")
        return None
    names = {s.name for s in slos}
    for j, name in enumerate(m.slos or ()):
        if name not in names:
            report(("slos", j), f"no SLO named {name!r} in this file")
    match = tuple(sorted((m.match or {}).items()))
    x = Exclusion(m.name, epoch_ms(start), duration_ms, m.reason, m.rrule, m.slos or (), match)
    if m.match is not None and not any(x.applies_to(s) for s in slos):
        report(("match",), "no SLO in this file has all of these labels")
    if m.rrule is None:
        return x
    text = m.rrule.removeprefix("RRULE:")
    try:
        # DTSTART comes from start (with its time zone), so the text may not carry one.
        rule = rrulestr(text, dtstart=start.astimezone(ZoneInfo(m.timezone)))
    except (ValueError, TypeError) as exc:
        report(("rrule",), f"not an iCal RRULE: {exc}")
        return None
    if not isinstance(rule, rrule):
        report(("rrule",), "must be one RRULE (no DTSTART, RDATE or EXDATE lines)")
        return None
    return Exclusion(
        m.name, epoch_ms(start), duration_ms, m.reason, m.rrule, m.slos or (), match, recurrence(rule)
    )


def describe_exclusions(exclusions: tuple[Exclusion, ...]) -> list[str]:
    """`sloguard check`'s lines for the ``exclusions:`` section (none without one)."""
    if not exclusions:
        return []
    lines = ["", "exclusions:"]
    for x in exclusions:
        first = dt.datetime.fromtimestamp(x.start_ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")
        repeat = f", {x.rrule}" if x.rrule else ""
        scope = ", ".join(x.slos) or "SLOs labelled " + ", ".join(f"{k}={v}" for k, v in x.match)
        reason = f"; {x.reason}" if x.reason else ""
        lines.append(
            f"  {x.name}: from {first} for {format_duration(x.duration_ms // 1000)}{repeat}; {scope}{reason}"
        )
    return lines
