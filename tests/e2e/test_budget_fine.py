"""The daemon's budget moves with the fine buckets (issue 12, item 5): in the same scrape in which an
outage's first bad event shows in the 5m window (which ends at the fine bucket of now), it shows in the
period and the budget left too. Before, the period ended at the coarse bucket (1 h for per-customer
SLOs), and "budget left" read 100 % for up to an hour of outage. No timing is asserted: the test waits
for the event to show in the 5m window and compares the two within one exposition.

Marked ``kafka`` and ``slow``: a real broker and a daemon process (`tests/e2e/test_faults.py`).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sloguard.core.model import Event
from tests.e2e.test_faults import Daemons, send, wait

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def value(m: Scrape, name: str, window: str | None = None) -> float:
    labels = {"customer": "acme", "slo": "by-customer", **({"window": window} if window else {})}
    return m[(name, tuple(sorted(labels.items())))]


def test_budget_reacts_in_the_fine_bucket_the_outage_starts(daemons: Daemons, tmp_path: Path) -> None:
    proc = daemons.start(tmp_path / "checkpoints")
    start = int(time.time() * 1000) - 600_000
    # by-customer is a latency SLO (good: <= 200 ms) with the per-customer buckets: 1m fine, 1h coarse.
    healthy = [Event(start + i * 1000, "checkout", "GET /a", "acme", 200, 10.0) for i in range(300)]
    send(daemons.broker.bootstrap, daemons.topic, healthy)
    wait(lambda: value(proc.scrape(), "sloguard_slo_events", "period") == 300, 90, "the healthy events", proc)
    assert value(proc.scrape(), "sloguard_slo_error_budget_remaining_ratio") == 1.0
    send(
        daemons.broker.bootstrap,
        daemons.topic,
        [Event(int(time.time() * 1000), "checkout", "GET /a", "acme", 200, 5000.0)],
    )
    seen: Scrape = {}

    def in_the_5m_window() -> bool:
        m = proc.scrape()
        seen.clear()
        seen.update(m)
        return value(m, "sloguard_slo_bad_events", "5m") == 1

    wait(in_the_5m_window, 150, "the slow request in the 5m window", proc)
    assert value(seen, "sloguard_slo_bad_events", "period") == 1
    assert value(seen, "sloguard_slo_events", "period") == 301
    assert value(seen, "sloguard_slo_error_budget_remaining_ratio") < 1.0
