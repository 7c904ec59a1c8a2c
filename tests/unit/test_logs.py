"""Logging: library floods (aiokafka while a broker is down) are rate-limited, sloguard's own lines not."""

from __future__ import annotations

import io
import logging
import sys

import pytest
import structlog

from sloguard import logs


def test_library_lines_are_rate_limited_own_lines_are_not(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json", "info")
    try:
        noisy = logging.getLogger("aiokafka.conn")
        for _ in range(1000):
            noisy.error("Unable connect to node with id %s: %s", 1, "refused")
        own = logging.getLogger("sloguard.ingest.kafka")
        for i in range(10):
            own.warning("commit %d failed", i)
        err = capsys.readouterr().err.splitlines()
    finally:
        # configure() bound structlog and the root handler to this test's captured stderr.
        logging.getLogger().handlers = []
        structlog.reset_defaults()
    assert sum("Unable connect" in line for line in err) == 3
    assert sum("commit" in line for line in err) == 10


def test_lines_go_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configured while one stream was sys.stderr, logging writes to whichever is sys.stderr later (a
    closed earlier stream would make every later line raise)."""
    first, later = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logs.configure("json", "info")
    try:
        first.close()
        monkeypatch.setattr(sys, "stderr", later)
        logs.get_logger("sloguard.test").info("own_line")
        logging.getLogger("sloguard.ingest.kafka").warning("library line")
    finally:
        logging.getLogger().handlers = []
        structlog.reset_defaults()
    assert "own_line" in later.getvalue() and "library line" in later.getvalue()
