"""The ``otlp-proto`` preset end to end: `sloguard loadgen --format otlp-proto` writes protobuf
``ExportTraceServiceRequest`` messages into a real Tansu topic, with unparsable ones among them; the
in-process daemon reads them through the SLO file's ``input: {preset: otlp-proto}``. Every SLO gauge and
latency quantile equals the ground truth computed from the topic's bytes with the generated ``trace_pb2``
classes (not sloguard's reader), and the dead-letter topic gets the bad messages byte for byte."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from sloguard.app import Daemon
from sloguard.broker import LocalBroker
from sloguard.clock import ManualClock
from sloguard.core.model import Event
from sloguard.ingest.kafka import KafkaConfig, KafkaSource
from sloguard.loadgen import run_loadgen
from sloguard.specfile import parse_config
from tests.integration.test_daemon import NOW, assert_metrics_match, dlq_settings, produce, scrape, wait_for

pytestmark = pytest.mark.kafka

SLOS = """\
apiVersion: sloguard/v1
input: {preset: otlp-proto}
slos:
  - name: checkout-availability
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [endpoint]
  - name: search-latency
    service: search
    objective: 99
    sli: {type: latency, threshold_ms: 100}
    window: 7d
latency:
  group_by: [service, endpoint]
  percentiles: [50, 99]
  windows: [5m, 1h]
"""


def oracle(message: bytes) -> list[Event]:
    """The events of one message, read with the generated classes: server spans only."""
    events = []
    for rs in ExportTraceServiceRequest.FromString(message).resource_spans:
        service = {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"]
        for ss in rs.scope_spans:
            for span in ss.spans:
                if span.kind != Span.SPAN_KIND_SERVER:
                    continue
                attrs = {a.key: a.value for a in span.attributes}
                method, route = attrs["http.request.method"], attrs["http.route"]
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                events.append(
                    Event(
                        ts_ms=start // 1_000_000,
                        service=service,
                        endpoint=f"{method.string_value} {route.string_value}",
                        customer=attrs["customer"].string_value,
                        status=attrs["http.response.status_code"].int_value,
                        latency_ms=(end - start) / 1e6,
                    )
                )
    return events


async def read_all(bootstrap: str, topic: str, n: int) -> list[bytes]:
    reader = KafkaSource(KafkaConfig(bootstrap, (topic,), group_id=f"r-{topic}"))
    await reader.start()
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < n and time.monotonic() < deadline:
            got += (await reader.fetch()).records
    finally:
        await reader.stop()
    return got


async def test_daemon_reads_otlp_proto_messages_from_kafka_exactly(
    broker: LocalBroker, new_topic: Callable[..., str]
) -> None:
    topic, dlq = new_topic(partitions=2), new_topic(prefix="dlq")
    stats = await run_loadgen(
        broker.bootstrap,
        topic,
        rate=0,
        duration_s=None,
        scenario="outage",
        ndjson_batch=5,
        seed=5,
        start_ms=NOW - 120_000,
        events=2000,
        service="checkout",
        incident_at_s=0.0,
        line_format="otlp-proto",
    )
    assert stats.events == 2000
    good = await read_all(broker.bootstrap, topic, stats.messages)
    assert len(good) == stats.messages >= 400  # 5 events a message (a lingering rest goes shorter)
    valid = ExportTraceServiceRequest(
        resource_spans=ExportTraceServiceRequest.FromString(good[0]).resource_spans
    )
    bad = [b"\x0a\xff\xff\xff", valid.SerializeToString()[:-7], b'{"resourceSpans": []} not protobuf']
    await produce(broker.bootstrap, topic, bad, 1)

    events = [e for message in good for e in oracle(message)]
    assert len(events) == 2000 and sum(e.status >= 500 for e in events) > 100

    config = parse_config(SLOS, "slos.yaml")
    daemon = Daemon(dlq_settings(broker.bootstrap, topic, dlq), config, clock=ManualClock(NOW))
    task = asyncio.create_task(daemon.run())
    try:
        total = len(good) + len(bad)
        await wait_for(lambda: daemon.telemetry.records_consumed == total, 60, "all records")
        ticks = daemon.ticks
        await wait_for(lambda: daemon.ticks > ticks + 1, 10, "a tick after the last record")
        metrics = await asyncio.to_thread(scrape, daemon.http.port)
        await wait_for(lambda: daemon.telemetry.dead_lettered == len(bad), 30, "dead letters")
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 30) == 0

    assert dict(daemon.telemetry.invalid.counts) == {"malformed_json": len(bad)}
    assert_metrics_match(metrics, config, events, NOW)
    assert sorted(await read_all(broker.bootstrap, dlq, len(bad))) == sorted(bad)
