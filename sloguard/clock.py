"""Clocks. The core never reads one (it lives outside `sloguard/core` for that reason): only the composition
root does, and passes `now` down."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in epoch milliseconds."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The real wall clock."""

    def now_ms(self) -> int:
        # The one wall-clock reader: the composition root injects it, the core only ever sees `now`.
        return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


class ManualClock:
    """A clock tests move by hand (never sleeps)."""

    def __init__(self, now_ms: int = 0) -> None:
        self._now = now_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, now_ms: int) -> None:
        self._now = now_ms

    def advance(self, ms: int) -> None:
        self._now += ms
