"""Logging setup (the only structlog importer): JSON lines in production, a console renderer on a TTY.

One line per significant event (start, assignment, commit failure, config error). Problems that can
happen once per event (a malformed record) go through `RateLimiter`, so a flood of bad input produces a
few lines a minute that say how many were suppressed — never one line per event.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import structlog


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured: a process that
    swaps it later (a test capturing output, an embedding program) must not leave every logger writing
    to a closed stream."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(fmt: str = "auto", level: str = "info") -> None:
    """Configure structlog for the process. ``fmt``: auto (console on a TTY, else JSON), json, console."""
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # Libraries (and sloguard.ingest.kafka) log through the standard library: render those records the
    # same way, so every line on stderr has one format.
    handler: logging.StreamHandler[Any] = logging.StreamHandler(_Stderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
        )
    )
    handler.addFilter(_LibraryFlood())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(getattr(logging, level.upper()))
    # aiokafka logs every failed reconnect while a broker is down; sloguard's source reports the outage
    # (and the recovery) once, and /readyz shows it.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)


class _LibraryFlood(logging.Filter):
    """Rate-limits library records (aiokafka logs every failed reconnect at ERROR, thousands a minute
    while a broker is down): per logger and message template, a few lines a minute, the next one
    saying how many were suppressed."""

    def __init__(self) -> None:
        super().__init__()
        self._limiter = RateLimiter(interval=60.0, burst=3)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("sloguard"):
            return True
        ok, suppressed = self._limiter.allow(f"{record.name}|{record.msg}", time.monotonic())
        if ok and suppressed:
            record.msg = f"{record.msg} ({suppressed} similar lines suppressed)"
        return ok


def get_logger(name: str = "sloguard") -> Any:
    """A bound structlog logger (typed Any: structlog's BoundLogger protocol is loose)."""
    return structlog.get_logger(name)


@dataclass
class RateLimiter:
    """Allows ``burst`` log lines per key per ``interval`` seconds; counts what it suppresses.

    Time is passed in (``now`` in seconds, monotonic), so tests need no clock.
    """

    interval: float = 60.0
    burst: int = 5
    _window_start: dict[str, float] = field(default_factory=dict)
    _used: dict[str, int] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)

    def allow(self, key: str, now: float) -> tuple[bool, int]:
        """Whether to log now, and how many lines for ``key`` were suppressed since the last allowed one."""
        start = self._window_start.get(key)
        if start is None or now - start >= self.interval:
            self._window_start[key] = now
            self._used[key] = 0
        if self._used[key] < self.burst:
            self._used[key] += 1
            return True, self._suppressed.pop(key, 0)
        self._suppressed[key] = self._suppressed.get(key, 0) + 1
        return False, 0
