"""Why a line failed the decoder's typed decode: the reason it is counted and dead-lettered under.

Slow, and only for bad lines: the line is re-read with the stdlib `json` module, keeping numbers as their
literal text (1e400 or a 5000-digit integer are values, not errors, here) and every occurrence of a
repeated key (msgspec's typed decode fails on the first bad one, while the last occurrence wins).
"""

from __future__ import annotations

import json
from typing import Any, Final

import msgspec
import numpy as np

from sloguard.ingest.reasons import BAD_TYPE, MALFORMED_JSON, MISSING_FIELD, NOT_AN_OBJECT, first_reason
from sloguard.ingest.rules import FIELDS, DecodeOptions, LatencyScale, value_failures
from sloguard.ingest.timestamps import parse_timestamps

__all__ = ["DECODE_ERRORS", "Explainer"]

# What msgspec (and the UTF-8 check) raise on bad input. ValueError covers msgspec.DecodeError,
# ValidationError and UnicodeDecodeError; RecursionError is how msgspec reports too-deep nesting.
DECODE_ERRORS: Final = (msgspec.MsgspecError, ValueError, RecursionError)

_FLOAT_MAX: Final = float(np.finfo(np.float64).max)


class _IntLit(str):
    """A JSON integer literal, as text (no size limit)."""

    __slots__ = ()


class _FloatLit(str):
    """A JSON number literal with a fraction or exponent, as text."""

    __slots__ = ()


def _type_ok(attr: str, value: Any) -> bool:
    """Whether a JSON value has a type the typed decode accepts for ``attr``."""
    if attr == "ts":
        return isinstance(value, str)  # a string, or a number literal (also a str subclass)
    if attr in ("service", "endpoint"):
        return type(value) is str
    if attr == "customer":
        return value is None or type(value) is str
    if attr == "status":
        return type(value) is _IntLit
    return type(value) in (_IntLit, _FloatLit)  # latency


def _representable(attr: str, value: Any) -> bool:
    """Whether a right-typed value fits what the typed decode holds it in (a double for latency)."""
    if not isinstance(value, _IntLit | _FloatLit):
        return True  # strings, null
    number = _number(value)
    return number is not None and not (attr == "latency" and abs(number) > _FLOAT_MAX)


def _number(value: Any) -> int | float | None:
    """A number literal's value: an int, a finite float; None when it is beyond a float or too long."""
    try:
        if type(value) is _IntLit:
            return int(value)
        if type(value) is _FloatLit:
            f = float(value)
            return f if abs(f) <= _FLOAT_MAX else None
    except ValueError:  # an integer longer than Python's int-from-text limit (4300 digits)
        return None
    return None


def _ts_ok(ts: Any) -> bool:
    if isinstance(ts, _FloatLit | _IntLit):
        number = _number(ts)
        return number is not None and bool(parse_timestamps([number])[1][0])
    return bool(parse_timestamps([ts])[1][0])


class Explainer:
    """Gives the reason a line (valid UTF-8, not blank) that the typed decode refused is rejected for."""

    __slots__ = (
        "_customer_required",
        "_default_customer",
        "_fields",
        "_max_label",
        "_names",
        "_raw",
        "_scale",
    )

    def __init__(self, options: DecodeOptions) -> None:
        self._names = options.field_names()
        self._default_customer = options.default_customer
        self._customer_required = options.default_customer is None
        self._max_label = options.max_label_length
        self._scale = LatencyScale(options.latency_unit)
        self._raw = msgspec.json.Decoder(msgspec.Raw)
        self._fields = msgspec.json.Decoder(dict[str, msgspec.Raw])

    def explain(self, line: bytes) -> str:
        """The reason `line` is rejected: the first that applies in precedence order."""
        try:
            self._raw.decode(line)  # syntax only: does not range-check numbers
        except DECODE_ERRORS:
            return MALFORMED_JSON
        try:
            self._fields.decode(line)
        except msgspec.ValidationError:
            return NOT_AN_OBJECT
        except DECODE_ERRORS:
            return MALFORMED_JSON
        pairs = json.loads(line, object_pairs_hook=list, parse_int=_IntLit, parse_float=_FloatLit)
        occurrences: dict[str, list[Any]] = {}
        for key, value in pairs:
            occurrences.setdefault(key, []).append(value)
        # A missing field or a wrong type leaves no value to judge: they end the explanation.
        values = self._last_values(occurrences)
        if values is None:
            return MISSING_FIELD
        if not self._types_ok(occurrences):
            return BAD_TYPE
        customer = values.get("customer")
        labels = (
            values["service"],
            values["endpoint"],
            "" if customer == "" else customer or self._default_customer or "",
        )
        latency_ms = self._scale.to_ms(float(values["latency"]))
        failed = value_failures(
            _ts_ok(values["ts"]), _number(values["status"]), latency_ms, labels, self._max_label
        )
        # Every value is right: the typed decode failed on something it cannot hold.
        return first_reason(failed) or BAD_TYPE

    def _last_values(self, occurrences: dict[str, list[Any]]) -> dict[str, Any] | None:
        """Each field's value (its last occurrence; customer may be absent), None if a field is missing."""
        values: dict[str, Any] = {}
        for attr, name in zip(FIELDS, self._names, strict=True):
            occ = occurrences.get(name)
            if not occ:
                if attr == "customer" and not self._customer_required:
                    continue
                return None
            values[attr] = occ[-1]
        if self._customer_required and values["customer"] is None:
            return None
        return values

    def _types_ok(self, occurrences: dict[str, list[Any]]) -> bool:
        """Whether every occurrence of every field has a type the typed decode accepts."""
        for attr, name in zip(FIELDS, self._names, strict=True):
            occ = occurrences.get(name, [])
            if any(not _type_ok(attr, v) for v in occ):
                return False
            # An earlier occurrence of a repeated key that the typed decode cannot hold (1e400 before the
            # last value wins) fails that decode as a type error.
            if any(not _representable(attr, v) for v in occ[:-1]):
                return False
        return True
