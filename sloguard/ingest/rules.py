"""What a valid event is: the decoder's options, and each validity rule, stated once for every decode path.

The decoder reads lines three ways (the byte-level fast path, the vectorised msgspec path, row by row for
small batches) and explains failed lines a fourth way; all of them take their limits from here:

* status: an integer in [`STATUS_MIN`, `STATUS_MAX`] (`bad_status`);
* latency: converted to milliseconds by `LatencyScale`, then not negative (`negative_latency`) and at most
  `MAX_LATENCY_MS` (`bad_latency`; NaN and infinities included);
* labels: service, endpoint and customer (after `default_customer`) non-empty (`empty_label`) and at most
  `DecodeOptions.max_label_length` characters (`label_too_long`);
* timestamps: see `sloguard.ingest.timestamps` (formats and the accepted window).

Which failure a line is counted under is `sloguard.ingest.reasons`' business: the checks here only say
what fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from sloguard._types import F64, I64, Bools
from sloguard.ingest.reasons import (
    BAD_LATENCY,
    BAD_STATUS,
    BAD_TIMESTAMP,
    EMPTY_LABEL,
    LABEL_TOO_LONG,
    NEGATIVE_LATENCY,
)

__all__ = [
    "DEFAULT_OPTIONS",
    "FIELDS",
    "MAX_LATENCY_MS",
    "STATUS_MAX",
    "STATUS_MIN",
    "DecodeOptions",
    "LatencyScale",
    "LatencyUnit",
    "int64_column",
    "label_failures",
    "value_failure_masks",
    "value_failures",
]

LatencyUnit = Literal["ms", "s", "us"]

STATUS_MIN: Final = 100
STATUS_MAX: Final = 599
MAX_LATENCY_MS: Final = 86_400_000.0  # "absurd": a request that took more than a day


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How to read a request-log event: JSON field names, latency unit, defaults and limits.

    The six `*_field` attributes name the JSON keys holding the event's fields. `latency_unit` is the
    unit of the latency field in the input; the decoded column is always float milliseconds.
    `default_customer` replaces a missing, `null` or empty customer; with `None` a missing or `null`
    customer is `missing_field` and an empty one `empty_label`. A line longer than `max_record_bytes`
    is rejected unread (`too_large`); service, endpoint and customer longer than `max_label_length`
    characters are `label_too_long`.
    """

    ts_field: str = "ts"
    service_field: str = "service"
    endpoint_field: str = "endpoint"
    customer_field: str = "customer"
    status_field: str = "status"
    latency_field: str = "latency_ms"
    latency_unit: LatencyUnit = "ms"
    default_customer: str | None = "unknown"
    max_record_bytes: int = 1 << 20
    max_label_length: int = 256

    def __post_init__(self) -> None:
        names = self.field_names()
        if any(not n for n in names) or len(set(names)) != len(names):
            raise ValueError(f"field names must be non-empty and distinct, got {names}")
        if self.latency_unit not in ("ms", "s", "us"):
            raise ValueError(f"latency_unit must be 'ms', 's' or 'us', got {self.latency_unit!r}")
        if self.max_record_bytes < 1 or self.max_label_length < 1:
            raise ValueError("max_record_bytes and max_label_length must be positive")
        dc = self.default_customer
        if dc is not None and not 0 < len(dc) <= self.max_label_length:
            raise ValueError("default_customer must be non-empty and at most max_label_length long")

    def field_names(self) -> tuple[str, str, str, str, str, str]:
        """JSON keys of ts, service, endpoint, customer, status and latency, in that order."""
        return (
            self.ts_field,
            self.service_field,
            self.endpoint_field,
            self.customer_field,
            self.status_field,
            self.latency_field,
        )


#: The event's fields, in the order of `DecodeOptions.field_names()` (the decoding Struct's attributes).
FIELDS: Final = ("ts", "service", "endpoint", "customer", "status", "latency")

#: The default options (`ts`, `service`, `endpoint`, `customer`, `status`, `latency_ms` in ms).
DEFAULT_OPTIONS: Final = DecodeOptions()


class LatencyScale:
    """Input latency unit -> milliseconds: ``value * mul / div``.

    Seconds multiply by 1000; microseconds divide by 1000, because division by 1000 is correctly rounded
    and multiplying by 0.001 (inexact) is not. A factor of 1 is an exact no-op, which the array form skips.
    """

    __slots__ = ("div", "mul")

    def __init__(self, unit: LatencyUnit) -> None:
        self.mul: Final = 1000.0 if unit == "s" else 1.0
        self.div: Final = 1000.0 if unit == "us" else 1.0

    def to_ms(self, value: float) -> float:
        """One latency in milliseconds."""
        return value * self.mul / self.div

    def to_ms_inplace(self, values: F64) -> None:
        """`to_ms` on every element of `values`, in place (overflow is inf: rejected as `bad_latency`)."""
        with np.errstate(over="ignore"):
            if self.mul != 1.0:
                values *= self.mul
            if self.div != 1.0:
                values /= self.div


def int64_column(values: list[int]) -> I64:
    """JSON integers as int64; those beyond int64 become -1, which no rule accepts (status, timestamp)."""
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        lim = 1 << 62
        return np.array([v if -lim < v < lim else -1 for v in values], dtype=np.int64)


def label_failures(labels: tuple[str, str, str], max_length: int) -> list[str]:
    """The label rules that service, endpoint and customer (default applied) fail."""
    service, endpoint, customer = labels  # unpacked: all() and max() cost a microsecond a row here
    failed = []
    if not (service and endpoint and customer):
        failed.append(EMPTY_LABEL)
    if len(service) > max_length or len(endpoint) > max_length or len(customer) > max_length:
        failed.append(LABEL_TOO_LONG)
    return failed


def value_failures(
    ts_ok: bool, status: float | None, latency_ms: float, labels: tuple[str, str, str], max_label: int
) -> list[str]:
    """The value rules one event fails, in no particular order (status None: beyond any number)."""
    failed = label_failures(labels, max_label)
    if not ts_ok:
        failed.append(BAD_TIMESTAMP)
    if status is None or not STATUS_MIN <= status <= STATUS_MAX:
        failed.append(BAD_STATUS)
    if latency_ms < 0.0:
        failed.append(NEGATIVE_LATENCY)
    elif not latency_ms <= MAX_LATENCY_MS:
        failed.append(BAD_LATENCY)
    return failed


def value_failure_masks(ts_ok: Bools, status: I64, latency_ms: F64) -> dict[str, Bools]:
    """`value_failures` for columns, labels aside: per rule, the rows that fail it."""
    negative = latency_ms < 0.0
    return {
        BAD_TIMESTAMP: ~ts_ok,
        BAD_STATUS: (status < STATUS_MIN) | (status > STATUS_MAX),
        NEGATIVE_LATENCY: negative,
        BAD_LATENCY: ~(latency_ms <= MAX_LATENCY_MS) & ~negative,  # written so that NaN is bad
    }
