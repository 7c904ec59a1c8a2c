"""Logging: library floods (aiokafka while a broker is down) are rate-limited, sloguard's own lines not."""

from __future__ import annotations

import logging

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
