"""Live SLA counts across a real daemon restart (in process, ManualClock, a Tansu topic, a checkpoint
directory): the second daemon carries on from the first one's checkpoint, every event counted once, so
its ``sloguard_sla_*`` samples equal the figures computed independently from all the events; counting
started when the first one did. ``report sla --checkpoint`` on that directory equals the report from
the same events as logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sloguard.app import Daemon
from sloguard.broker import LocalBroker
from sloguard.cli import main
from sloguard.clock import ManualClock
from sloguard.settings import load_settings
from sloguard.sla_live import SETTLE_MS
from sloguard.specfile import parse_config
from tests.integration.test_daemon import encode, produce, scrape, wait_for
from tests.integration.test_sla_daemon import (
    MONTH,
    NOW,
    SLOS,
    assert_customer_samples,
    expected,
    traffic,
)

pytestmark = pytest.mark.kafka

FIRST_NOW = NOW - 3_600_000  # the first daemon runs an hour earlier in the same month


async def run_daemon(
    broker: LocalBroker, topic: str, ckpt: Path, now_ms: int, records: int, counted: int | None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One daemon until it consumed ``records`` (and published ``counted`` SLA events); its metrics."""
    settings = load_settings(
        {
            "listen": "127.0.0.1:0",
            "tick_seconds": 0.1,
            "kafka": {"bootstrap_servers": broker.bootstrap, "topics": [topic], "group_id": f"g-{topic}"},
            "checkpoint": {"dir": str(ckpt), "interval": 3600},
        }
    )
    daemon = Daemon(settings, parse_config(SLOS, "slos.yaml"), clock=ManualClock(now_ms))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_for(lambda: daemon.telemetry.records_consumed == records, 60, "the records")

        def published() -> bool:
            snap = daemon.latest
            if snap is None or not snap.slas:
                return False
            return counted is None or sum(c.total for c in snap.slas[0].result.customers) == counted

        await wait_for(published, 10, "a tick publishing the SLA")
        metrics = await asyncio.to_thread(scrape, daemon.http.port)
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 30) == 0
    return metrics


async def test_sla_counts_survive_a_daemon_restart(
    broker: LocalBroker,
    new_topic: Callable[..., str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = new_topic(partitions=2)
    events = traffic(seed=13)
    # The first daemon's clock refuses events from after it (future_timestamp): it gets half of those
    # before it; the second gets the rest, late ones included.
    early = {i for i, e in enumerate(events) if e.ts_ms < FIRST_NOW and i % 2 == 0}
    first = [e for i, e in enumerate(events) if i in early]
    second = [e for i, e in enumerate(events) if i not in early]
    ckpt = tmp_path / "ckpt"
    await produce(broker.bootstrap, topic, [encode(e) for e in first], 2)
    await run_daemon(broker, topic, ckpt, FIRST_NOW, len(first), None)
    await produce(broker.bootstrap, topic, [encode(e) for e in second], 2)
    until = MONTH + (NOW - SETTLE_MS - MONTH) // 60_000 * 60_000
    counted = sum(e.service == "api" and MONTH <= e.ts_ms < until for e in events)
    # Only the second part is read again: the first is in the checkpoint, and counted once.
    metrics = await run_daemon(broker, topic, ckpt, NOW, len(second), counted)

    assert_customer_samples(metrics, expected(events))
    sla = (("sla", "api-sla"),)
    assert metrics[("sloguard_sla_counted_since_timestamp_seconds", sla)] == FIRST_NOW / 1000

    # The report from the second daemon's shutdown checkpoint equals the report from the logs.
    logs = tmp_path / "requests.ndjson"
    logs.write_bytes(b"".join(encode(e) + b"\n" for e in events))
    (tmp_path / "slos.yaml").write_text(SLOS)
    capsys.readouterr()
    common = ["report", "sla", "--slo", str(tmp_path / "slos.yaml"), "--month", "2026-01", "--now"]
    common.append("2026-01-04T00:02:00Z")
    assert main([*common, str(logs)]) == 0
    from_logs = json.loads(capsys.readouterr().out)
    assert main([*common, "--checkpoint", str(ckpt)]) == 0
    from_checkpoint = json.loads(capsys.readouterr().out)
    assert from_checkpoint == from_logs and from_logs["slas"][0]["customers"]
