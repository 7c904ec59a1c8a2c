"""Why the decoder rejects a line: the reasons, and which one a line with several problems is counted under.

The order of `Reason` is the precedence, and nothing else states it: a line with several problems is
counted (and dead-lettered) under its first reason in that order. The first five follow the stages of
reading a line (size, encoding, JSON syntax, shape, fields present), each of which presupposes the ones
before; the rest are checks of the values, in an order chosen once and kept for compatibility.

The reason strings are part of the self-metrics and dead-letter contract (`sloguard_events_invalid_total`
labels, the `sloguard-reason` header): do not rename them. The decoder hands them out as plain `str`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final

import numpy as np

from sloguard._types import Bools, Intp


class Reason(StrEnum):
    """A rejection reason. Declaration order is precedence: the first that applies to a line wins."""

    TOO_LARGE = "too_large"
    BAD_ENCODING = "bad_encoding"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_STATUS = "bad_status"
    NEGATIVE_LATENCY = "negative_latency"
    BAD_LATENCY = "bad_latency"
    EMPTY_LABEL = "empty_label"
    LABEL_TOO_LONG = "label_too_long"


#: Every reason's string, in precedence order.
REASONS: Final[tuple[str, ...]] = tuple(reason.value for reason in Reason)

# The strings as plain `str` constants, what the decoder emits, counts and dead-letters; bound in `Reason`
# order (tests/unit/ingest/test_reasons.py pins each name to its member).
(
    TOO_LARGE,
    BAD_ENCODING,
    MALFORMED_JSON,
    NOT_AN_OBJECT,
    MISSING_FIELD,
    BAD_TYPE,
    BAD_TIMESTAMP,
    BAD_STATUS,
    NEGATIVE_LATENCY,
    BAD_LATENCY,
    EMPTY_LABEL,
    LABEL_TOO_LONG,
) = REASONS

#: Not a `Reason`: whether an event is "in the future" depends on the decoder's caller
#: (`Decoder.decode_many(max_ts_ms=...)`), not on the line, so it has no place in the precedence.
FUTURE_TIMESTAMP: Final = "future_timestamp"

_RANK: Final = {reason: rank for rank, reason in enumerate(REASONS)}


def first_reason(failed: Iterable[str]) -> str | None:
    """The reason of `failed` (any order) a line is counted under; None when there is none."""
    return min(failed, key=_RANK.__getitem__, default=None)


def first_reasons(failed: Mapping[str, Bools | None], n: int) -> tuple[Intp, list[str]]:
    """Vectorised `first_reason`: the rows any mask of `failed` flags, and each one's first reason.

    `failed` maps reasons to row masks over `n` rows (None: no row fails that check).
    """
    codes = np.zeros(n, np.int8)  # 0: no reason, else 1 + rank
    for rank in range(len(REASONS) - 1, -1, -1):  # lowest precedence first, overwritten by higher
        mask = failed.get(REASONS[rank])
        if mask is not None:
            codes[mask] = rank + 1
    rows = np.flatnonzero(codes)
    return rows, [REASONS[code - 1] for code in codes[rows].tolist()]
