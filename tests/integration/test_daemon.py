"""The daemon against a real Tansu broker: in-process (ManualClock, exact numbers) and as a process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sloguard.app import Daemon
from sloguard.broker import LocalBroker, free_port
from sloguard.clock import ManualClock
from sloguard.core.model import Event
from sloguard.core.spec import Config, format_duration
from sloguard.ingest.kafka import KafkaConfig, KafkaSource
from sloguard.ingest.kafka_producer import BatchProducer
from sloguard.settings import Settings, load_settings
from sloguard.specfile import parse_config
from tests.support import groundtruth as gt

pytestmark = pytest.mark.kafka

SLOS = """\
apiVersion: sloguard/v1
slos:
  - name: checkout-availability
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [endpoint]
  - name: checkout-latency
    service: checkout
    objective: 99
    sli: {type: latency, threshold_ms: 200}
    window: 28d
    group_by: [customer]
latency:
  group_by: [service, endpoint]
  percentiles: [50, 99]
  windows: [5m, 1h]
"""

NOW = 1_767_225_600_000 + 3 * 86_400_000 + 123_456  # a fixed wall clock for the in-process daemon


def make_events(n: int, now: int, seed: int) -> list[Event]:
    rnd = random.Random(seed)
    return [
        Event(
            ts_ms=now - rnd.randrange(2 * 3_600_000),
            service=rnd.choice(("checkout", "checkout", "search")),
            endpoint=rnd.choice(("GET /v1/cart", "POST /v1/orders")),
            customer=rnd.choice(("acme", "globex", "initech")),
            status=rnd.choice((200, 200, 200, 500, 503)),
            latency_ms=round(rnd.lognormvariate(4.5, 1.0), 3),
        )
        for _ in range(n)
    ]


def encode(e: Event) -> bytes:
    return json.dumps(
        {
            "ts": e.ts_ms,
            "service": e.service,
            "endpoint": e.endpoint,
            "customer": e.customer,
            "status": e.status,
            "latency_ms": e.latency_ms,
        }
    ).encode()


async def produce(bootstrap: str, topic: str, values: list[bytes], partitions: int) -> None:
    async with BatchProducer(KafkaConfig(bootstrap, (topic,))) as producer:
        futures = []
        for p in range(partitions):
            futures += await producer.send(topic, p, values[p::partitions])
        await producer.flush()
        await asyncio.gather(*futures)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def wait_for(cond: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def assert_metrics_match(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    config: Config,
    events: list[Event],
    now: int,
) -> None:
    """Every SLO gauge equals the ground truth at ``now``; latency quantiles are the nearest-rank value's
    HDR slot top."""
    for spec in config.slos:
        keys = {gt.key(spec, e) for e in events if gt.matches(spec, e)}
        for key in keys:
            labels = {"slo": spec.name, **dict(zip(spec.group_by, key, strict=True))}
            for w in spec.windows:
                start, end = gt.window_bounds(spec, w, now)
                total, nbad = gt.counts(spec, events, start, end).get(key, (0, 0))
                lab = tuple(sorted({**labels, "window": format_duration(w)}.items()))
                assert metrics[("sloguard_slo_events", lab)] == total, (spec.name, key, w)
                assert metrics[("sloguard_slo_bad_events", lab)] == nbad
                assert metrics[("sloguard_slo_burn_rate", lab)] == gt.burn(nbad, total, spec.objective)
            ps, pe = gt.period_bounds(spec, now)
            total, nbad = gt.counts(spec, events, ps, pe).get(key, (0, 0))
            lab = tuple(sorted(labels.items()))
            assert metrics[("sloguard_slo_error_budget_remaining_ratio", lab)] == gt.remaining(
                nbad, total, spec.objective
            )
    # Latency quantiles: the exact nearest-rank value's HDR slot top (within HDR's precision of it).
    assert config.latency is not None
    for (name, lab), value in metrics.items():
        if name != "sloguard_latency_seconds":
            continue
        d = dict(lab)
        window = {"5m": 300, "1h": 3600}[d["window"]]
        slot = {"5m": 30_000, "1h": 300_000}[d["window"]]
        end = now // slot * slot
        inside = [
            e.latency_ms
            for e in events
            if (e.service, e.endpoint) == (d["service"], d["endpoint"])
            and end - window * 1000 <= e.ts_ms < end
        ]
        p = float(d["quantile"]) * 100
        assert value == gt.hdr_percentile(inside, p, config.latency) / 1000, (d, len(inside))
        assert gt.within_hdr_precision(
            value * 1000, gt.order_statistic(inside, p), config.latency.significant_figures
        )


def dlq_settings(bootstrap: str, topic: str, dlq: str) -> Settings:
    """Settings for an in-process daemon with a dead-letter topic: ephemeral port, quick ticks."""
    return load_settings(
        {
            "listen": "127.0.0.1:0",
            "tick_seconds": 0.1,
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topics": [topic],
                "group_id": f"g-{topic}",
                "dead_letter_topic": dlq,
            },
        }
    )


async def test_in_process_daemon_exports_ground_truth(
    broker: LocalBroker, new_topic: Callable[..., str]
) -> None:
    topic, dlq = new_topic(partitions=3), new_topic(prefix="dlq")
    events = make_events(3000, NOW, seed=1)
    bad = [b"{not json", b'{"ts": 1, "service": "checkout"}', b"\xff\xfe"]
    values = [encode(e) for e in events] + bad
    await produce(broker.bootstrap, topic, values, 3)

    config = parse_config(SLOS, "slos.yaml")
    settings = dlq_settings(broker.bootstrap, topic, dlq)
    daemon = Daemon(settings, config, clock=ManualClock(NOW))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_for(lambda: daemon.telemetry.records_consumed == len(values), 60, "all records")
        ticks = daemon.ticks
        await wait_for(lambda: daemon.ticks > ticks + 1, 10, "a tick after the last record")
        assert daemon.ready()[0], daemon.ready()[1]
        metrics = await asyncio.to_thread(scrape, daemon.http.port)
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 30) == 0

    assert daemon.telemetry.invalid.total == 3
    assert_metrics_match(metrics, config, events, NOW)
    # The HTTP listener's counts reach /metrics (copied at each tick; values depend on the ticks' timing).
    assert ("sloguard_http_connections_total", (("outcome", "accepted"),)) in metrics
    assert ("sloguard_http_open_connections", (("state", "waiting"),)) in metrics
    # Offsets: everything absorbed was committed on shutdown.
    assert sum(daemon.source.committed.values()) == len(values)


async def test_dead_letter_topic_gets_rejected_records_byte_for_byte(
    broker: LocalBroker, new_topic: Callable[..., str]
) -> None:
    topic, dlq = new_topic(), new_topic(prefix="dlq")
    bad = [
        b"{not json",
        b'{"ts": "yesterday", "service": "a", "endpoint": "b", "status": 200, "latency_ms": 1}',
    ]
    await produce(broker.bootstrap, topic, [encode(make_events(1, NOW, 2)[0]), *bad], 1)
    settings = dlq_settings(broker.bootstrap, topic, dlq)
    daemon = Daemon(settings, parse_config(SLOS, "slos.yaml"), clock=ManualClock(NOW))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_for(lambda: daemon.telemetry.dead_lettered == 2, 60, "dead letters")
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 30)
    reader = KafkaSource(KafkaConfig(broker.bootstrap, (dlq,), group_id=f"r-{dlq}"))
    await reader.start()
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline:
            got += (await reader.fetch()).records
    finally:
        await reader.stop()
    assert sorted(got) == sorted(bad)


@pytest.fixture
def slo_file(tmp_path: Path) -> Path:
    p = tmp_path / "slos.yaml"
    p.write_text(SLOS)
    return p


def test_daemon_process_serves_metrics_and_exits_0_on_sigterm(
    broker: LocalBroker, new_topic: Callable[..., str], slo_file: Path
) -> None:
    topic = new_topic(partitions=2)
    now = int(time.time() * 1000)
    # Older than the current 5-minute bucket, so the period (coarse buckets) holds all of them.
    events = make_events(500, now - 600_000, seed=3)
    asyncio.run(produce(broker.bootstrap, topic, [encode(e) for e in events], 2))
    port = free_port()
    env = {
        **os.environ,
        "SLOGUARD_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "SLOGUARD_KAFKA__TOPICS": topic,
        "SLOGUARD_KAFKA__GROUP_ID": f"g-{topic}",
        "SLOGUARD_LOG_FORMAT": "json",
    }
    err_bytes = b""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sloguard",
            "run",
            "--config",
            str(slo_file),
            "--listen",
            f"127.0.0.1:{port}",
            "--tick-seconds",
            "0.2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        expected = sum(1 for e in events if e.service == "checkout")
        deadline = time.monotonic() + 60
        got = -1.0
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, KeyError):
                m = scrape(port)
                got = sum(
                    v
                    for (name, lab), v in m.items()
                    if name == "sloguard_slo_events"
                    and dict(lab)["slo"] == "checkout-availability"
                    and dict(lab)["window"] == "period"
                )
                if got == expected:
                    break
            time.sleep(0.2)
        assert got == expected
        # Every gauge, against the ground truth at the daemon's own evaluation time.
        now_ms = round(m[("sloguard_snapshot_timestamp_seconds", ())] * 1000)
        assert_metrics_match(m, parse_config(SLOS, "slos.yaml"), events, now_ms)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        _, err_bytes = proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    err = err_bytes.decode()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "started" for line in lines), err
    assert any(line.get("event") == "stopped" for line in lines), err
    # The final commit covered everything: the group has nothing left to read.
    asyncio.run(assert_nothing_left(broker.bootstrap, topic, f"g-{topic}"))


async def assert_nothing_left(bootstrap: str, topic: str, group: str) -> None:
    source = KafkaSource(KafkaConfig(bootstrap, (topic,), group_id=group))
    await source.start()
    try:
        assert await source.wait_ready(30), source.ready()[1]
        for _ in range(4):
            assert not (await source.fetch()).records
        assert source.lag() and all(v == 0 for v in source.lag().values())
    finally:
        await source.stop()


def fast_settings(bootstrap: str, topic: str, group: str, **kafka: object) -> Settings:
    """Settings for tests: ephemeral port, quick ticks, quick group membership timers."""
    return load_settings(
        {
            "listen": "127.0.0.1:0",
            "tick_seconds": 0.1,
            "commit_interval_seconds": 0.5,
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topics": [topic],
                "group_id": group,
                "session_timeout_ms": 2000,
                "heartbeat_interval_ms": 300,
                **kafka,
            },
        }
    )


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


async def test_restart_resumes_from_committed_offsets(
    broker: LocalBroker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=2)
    config = parse_config(SLOS, "slos.yaml")
    first = [encode(e) for e in make_events(300, NOW, seed=4)]
    await produce(broker.bootstrap, topic, first, 2)
    settings = fast_settings(broker.bootstrap, topic, f"g-{topic}")
    one = Daemon(settings, config, clock=ManualClock(NOW))
    task = asyncio.create_task(one.run())
    await wait_for(lambda: one.telemetry.records_consumed == 300, 60, "first run")
    one.stop()
    assert await asyncio.wait_for(task, 30) == 0
    assert sum(one.source.committed.values()) == 300

    second_batch = [encode(e) for e in make_events(200, NOW, seed=5)]
    await produce(broker.bootstrap, topic, second_batch, 2)
    two = Daemon(settings, config, clock=ManualClock(NOW))
    task = asyncio.create_task(two.run())
    await wait_for(lambda: two.telemetry.records_consumed == 200, 60, "second run")
    await asyncio.sleep(1.0)  # nothing more arrives: the first 300 are not read again
    two.stop()
    assert await asyncio.wait_for(task, 30) == 0
    assert two.telemetry.records_consumed == 200
    assert sum(two.source.committed.values()) == 500


async def test_two_daemons_in_one_group_split_partitions(
    broker: LocalBroker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=4)
    config = parse_config(SLOS, "slos.yaml")
    settings = fast_settings(broker.bootstrap, topic, f"g-{topic}")
    a = Daemon(settings, config, clock=ManualClock(NOW))
    b = Daemon(settings, config, clock=ManualClock(NOW))
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:
        await wait_for(lambda: a.ready()[0] and b.ready()[0], 60, "both daemons ready")
        values = [encode(e) for e in make_events(1000, NOW, seed=6)]
        await produce(broker.bootstrap, topic, values, 4)
        await wait_for(lambda: a.telemetry.records_consumed + b.telemetry.records_consumed == 1000, 60, "all")
        assert a.telemetry.records_consumed > 0 and b.telemetry.records_consumed > 0
        for d in (a, b):
            assert await asyncio.to_thread(http_status, d.http.port, "/metrics") == 200
    finally:
        a.stop()
        b.stop()
        assert await asyncio.wait_for(asyncio.gather(*tasks), 60) == [0, 0]
    assert a.source.commit_failures == b.source.commit_failures == 0
    committed = {**a.source.committed, **b.source.committed}
    assert sum(committed.values()) == 1000


async def test_daemon_survives_a_broker_restart(new_topic: Callable[..., str]) -> None:
    with LocalBroker(stop_timeout_s=3.0) as own:
        own.create_topics(["requests"], 2)
        await produce(own.bootstrap, "requests", [encode(e) for e in make_events(200, NOW, seed=7)], 2)
        settings = fast_settings(
            own.bootstrap, "requests", "g-restart", ready_after_s=2.0, commit_timeout_s=2.0
        )
        daemon = Daemon(settings, parse_config(SLOS, "slos.yaml"), clock=ManualClock(NOW))
        task = asyncio.create_task(daemon.run())
        try:
            await wait_for(lambda: daemon.telemetry.records_consumed == 200, 60, "before the outage")
            await wait_for(lambda: daemon.ready()[0], 30, "ready")
            assert await asyncio.to_thread(http_status, daemon.http.port, "/readyz") == 200
            own.kill()
            await wait_for(lambda: not daemon.ready()[0], 30, "not ready while the broker is down")
            assert await asyncio.to_thread(http_status, daemon.http.port, "/readyz") == 503
            assert await asyncio.to_thread(http_status, daemon.http.port, "/healthz") == 200
            assert not task.done()
            own.restart()
            own.create_topics(["requests"], 2, exist_ok=True)  # memory storage: nothing survived
            await wait_for(lambda: daemon.ready()[0], 60, "ready again")
            await produce(own.bootstrap, "requests", [encode(e) for e in make_events(100, NOW, seed=8)], 2)
            await wait_for(lambda: daemon.telemetry.records_consumed == 300, 60, "consumption resumed")
            assert await asyncio.to_thread(http_status, daemon.http.port, "/readyz") == 200
        finally:
            daemon.stop()
            assert await asyncio.wait_for(task, 60) == 0
