"""Field validators of the SLO file schema: one value as written -> its exact meaning, or a refusal.

Each raises a PydanticCustomError (see `errors.refusal`) whose message reads as-is ("must be ..."), so the
schema's error lines need no translation. Durations come out in seconds, numbers as exact Fractions.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic_core import PydanticCustomError

from sloguard.core.spec import DAY, HOUR, MINUTE
from sloguard.specfile.errors import refusal, show


@dataclasses.dataclass(frozen=True, slots=True)
class Number:
    """Validator for a YAML number within bounds, kept exact (Fraction) unless ``as_float``."""

    low: int  # exclusive lower bound
    high: int | None = None
    high_inclusive: bool = False
    as_float: bool = False
    hint: str = ""

    def __call__(self, value: Any) -> Fraction | float:
        number = exact(value)
        if number is None:
            raise refusal("number_type", "must be a number" + self.hint, value)
        too_high = self.high is not None and (
            number > self.high if self.high_inclusive else number >= self.high
        )
        if number <= self.low or too_high:
            bound = f"greater than {self.low}"
            if self.high is not None:
                bound += f" and {'at most' if self.high_inclusive else 'less than'} {self.high}"
            raise refusal("number_range", "must be " + bound + self.hint, value)
        return float(number) if self.as_float else number


def exact(value: Any) -> Fraction | None:
    """An int or a decimal scalar (see `loader`) as an exact Fraction; None if it is not a finite number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    # The exponent guard keeps "1e999999999" from building a billion-digit integer.
    if isinstance(value, Decimal) and value.is_finite() and abs(value.adjusted()) <= 30:
        return Fraction(value)
    return None


_DURATION = re.compile(r"([0-9]+)(s|m|h|d|w)")
_UNIT_SECONDS = {"s": 1, "m": MINUTE, "h": HOUR, "d": DAY, "w": 7 * DAY}
_DURATION_HINT = "must be a duration such as 30s, 5m, 1h, 7d or 2w"


def parse_duration(value: Any) -> int | None:
    """``"90s"`` -> 90, ``"2w"`` -> 1209600, a bare ``0`` -> 0; None if ``value`` is not a duration."""
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return 0  # `for: 0` needs no unit
    if isinstance(value, str) and (m := _DURATION.fullmatch(value.strip())):
        return int(m[1]) * _UNIT_SECONDS[m[2]]
    return None


def duration(value: Any) -> int:
    seconds = parse_duration(value)
    if seconds is None:
        raise refusal("duration", _DURATION_HINT, value)
    return seconds


def positive_duration(value: Any) -> int:
    seconds = duration(value)
    if seconds <= 0:
        raise refusal("duration_range", "must be longer than 0s", value)
    return seconds


def rolling_window(value: Any) -> int:
    seconds = parse_duration(value)
    if seconds is None or seconds <= 0 or seconds % HOUR:
        raise refusal(
            "window",
            "must be a whole number of hours or days such as 30d, 28d or 12h, "
            "or a calendar period such as {calendar: month, timezone: Europe/Berlin}",
            value,
        )
    return seconds


def fine_resolution(value: Any) -> int:
    seconds = duration(value)
    if seconds < 1 or MINUTE % seconds:
        raise refusal(
            "resolution", "must be at least 1s and divide 1m evenly, e.g. 10s, 15s, 30s or 1m", value
        )
    return seconds


def coarse_resolution(value: Any) -> int:
    seconds = duration(value)
    if seconds < 1 or HOUR % seconds:
        raise refusal("resolution", "must be at least 1s and divide 1h evenly, e.g. 1m, 5m, 15m or 1h", value)
    return seconds


def time_slice(value: Any) -> int:
    seconds = duration(value)
    if seconds < 1 or HOUR % seconds:
        raise refusal("time_slice", "must be at least 1s and divide 1h evenly, e.g. 1m or 5m", value)
    return seconds


def latency_window(value: Any) -> int:
    seconds = duration(value)
    if not 10 <= seconds <= DAY:
        raise refusal("duration_range", "must be between 10s and 1d", value)
    return seconds


def time_zone(value: Any) -> str:
    if not isinstance(value, str):
        raise refusal("timezone", "must be an IANA time zone name such as Europe/Berlin", value)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; use an IANA name such as Europe/Berlin or UTC"
        raise refusal("timezone", "unknown time zone" + hint, value) from None
    return value


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _not_text(value: Any) -> PydanticCustomError:
    """The refusal of a value YAML did not read as a string, with how to make it one.

    ``name: 2024`` is refused rather than taken as "2024": YAML has already turned the text into a number,
    and the number does not say how it was written (``012`` is 10, ``1_000`` is 1000, ``1e3`` is 1E+3,
    ``1:30`` is 90), so turning it back into a string would name the SLO something the user never wrote.
    """
    if isinstance(value, bool):
        return refusal(
            "text", "must be a string; YAML reads yes/no/on/off/true/false as booleans: quote it", value
        )
    if isinstance(value, int | float | Decimal):
        return refusal(
            "text", f'must be a string; YAML reads {value} as a number: quote it ("{value}")', value
        )
    return refusal("text", "must be a non-empty string", value)


def _matching(value: Any, pattern: re.Pattern[str], kind: str, message: str) -> str:
    """``value`` if it is a string ``pattern`` matches whole, else a refusal saying ``message``."""
    if not isinstance(value, str) or not value:
        raise _not_text(value)
    if not pattern.fullmatch(value):
        raise refusal(kind, message, value)
    return value


def slo_name(value: Any) -> str:
    # Names end up in metric labels, rule names and file names: keep them to a safe alphabet.
    return _matching(
        value,
        _NAME,
        "name",
        "must start with a letter or digit and use only letters, digits, '.', '_' and '-'",
    )


def non_empty_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _not_text(value)
    return value


_LITERAL_HINT = "; to match a literal '[', '*' or '?' write '[[]', '[*]' or '[?]'"


def endpoint_glob(value: Any) -> str:
    """An ``endpoints`` entry: a glob as `fnmatch` reads it (``*``, ``?``, ``[...]``, ``[!...]``), checked.

    fnmatch never fails: an unclosed ``[`` silently becomes a literal, a backwards range ``[z-a]`` matches
    nothing and a backslash is an ordinary character. Each of these is almost always a typo or an escape
    from another glob dialect, so it is refused with the position (1-based) of the mistake.
    """
    glob = non_empty_text(value)
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "\\":
            raise refusal(
                "glob", f"'\\' at character {i + 1} does not escape in a glob{_LITERAL_HINT}", value
            )
        if c != "[":
            i += 1
            continue
        # As fnmatch.translate reads a set: an optional '!', then a ']' right after is a member.
        j = i + 1
        j += glob[j : j + 1] == "!"
        j += glob[j : j + 1] == "]"
        end = glob.find("]", j)
        if end < 0:
            raise refusal("glob", f"'[' at character {i + 1} is never closed by ']'{_LITERAL_HINT}", value)
        members = glob[i + 1 : end].removeprefix("!")
        for k in range(1, len(members) - 1):
            lo, hi = members[k - 1], members[k + 1]
            if members[k] == "-" and lo > hi:
                at = i + 1 + (glob[i + 1] == "!") + k
                raise refusal(
                    "glob", f"range '{lo}-{hi}' at character {at} is backwards (matches nothing)", value
                )
        i = end + 1
    return glob


_STATUS_RANGE = re.compile(r"([0-9]{3})\s*-\s*([0-9]{3})")
_STATUS_CLASS = re.compile(r"([1-5])xx", re.IGNORECASE)
_STATUS_HINT = "must be a status code (503), a range (500-599) or a class (5xx), within 100-599"


def status_range(value: Any) -> tuple[int, int]:
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
        raise refusal("status", _STATUS_HINT, value)
    return lo, hi


_T = typing.TypeVar("_T")


def unique(values: tuple[_T, ...]) -> tuple[_T, ...]:
    for i, v in enumerate(values):
        if v in values[:i]:
            raise PydanticCustomError("duplicate", "lists {item} twice", {"item": show(v)})
    return values


_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def severity(value: Any) -> str:
    """A tier's severity: a token Alertmanager can route on (``page``, ``critical``, ``pageteam``)."""
    return _matching(
        value,
        _TOKEN,
        "severity",
        "must be a word of at most 64 letters, digits, '.', '_' or '-' (such as page, ticket or critical), "
        "starting with a letter or digit",
    )


def alert_name(value: Any) -> str:
    """An alert rule name as Prometheus accepts it (``CheckoutAvailabilityBurn``)."""
    return _matching(
        value,
        _LABEL_NAME,
        "alert_name",
        "must start with a letter or '_' and use only ASCII letters, digits and '_'",
    )


#: Labels sloguard writes on an SLO's series, its info series and the Sloth-compatible series, and the
#: labels Prometheus or Alertmanager own, with why an SLO's static label must not use them.
SERIES_LABELS = {
    "slo": "names the SLO",
    "window": "names the window of a series",
    "severity": "is the severity of a tier",
    "long_window": "is a tier's long window",
    "short_window": "is a tier's short window",
    "service": "is on sloguard_slo_info",
    "sli": "is on sloguard_slo_info",
    "period": "is on sloguard_slo_info",
    "endpoint": "is an event dimension (group_by)",
    "customer": "is an event dimension (group_by)",
    "job": "is a Prometheus target label",
    "instance": "is a Prometheus target label",
    "alertname": "is the name of an alert",
    "alertstate": "is the state of an alert",
    "le": "is a histogram bucket label",
    "quantile": "is a summary quantile label",
}
#: Labels an alert rule's own labels must not set: the burn-rate alert's identity, and the labels its
#: series carry (overwriting them would merge the alerts of different series or targets).
ALERT_LABELS = {
    name: why
    for name, why in SERIES_LABELS.items()
    if name not in {"service", "sli", "period", "le", "quantile"}
}


@dataclasses.dataclass(frozen=True, slots=True)
class LabelMap:
    """Validator for a mapping of label names to non-empty strings, kept in file order as pairs.

    ``reserved`` names the labels sloguard owns (refused with why); ``series`` marks labels of exported
    series (``sloth_*`` is then refused too: the ``--sloth-compat`` series' names); ``annotations`` marks
    annotation templates (whose ``{{``/``}}`` must pair up: promtool refuses the rule file otherwise).
    """

    reserved: typing.Mapping[str, str]
    series: bool = False
    annotations: bool = False

    def __call__(self, value: Any) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict):
            raise refusal("labels", "must be a mapping of names to strings", value)
        pairs: list[tuple[str, str]] = []
        for name, text in value.items():
            if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
                raise refusal(
                    "label_name",
                    "names must start with a letter or '_' and use only ASCII letters, digits and '_' "
                    "('__' starts names Prometheus reserves)",
                    name,
                )
            if why := self.reserved.get(name):
                raise PydanticCustomError(
                    "label_name",
                    "{name}: sloguard sets this label ({why}); use another name",
                    {"name": name, "why": why},
                )
            if name.startswith("sloth_") and self.series:
                raise PydanticCustomError(
                    "label_name",
                    "{name}: names starting with sloth_ are the Sloth-compatible series' (--sloth-compat)",
                    {"name": name},
                )
            try:
                text = non_empty_text(text)
            except PydanticCustomError as exc:
                raise PydanticCustomError(
                    "label_value", "{name}: {problem}", {"name": name, "problem": exc.message()}
                ) from None
            if self.annotations and text.count("{{") != text.count("}}"):
                raise PydanticCustomError(
                    "template", "{name}: the '{{' and '}}' of its template do not pair up", {"name": name}
                )
            pairs.append((name, text))
        return tuple(pairs)
