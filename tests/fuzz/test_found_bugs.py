"""Minimal reproductions of what the fuzz tests found. Each fails until its bug is fixed.

* Precedence: a line with several problems must be counted under the first in `REASONS` order, but when
  one field holds a number no double holds (``1e400``, a 400-digit integer), the decoder names that
  field's problem first (its per-line explanation returns early).
* A JSON integer of more than 4300 digits as ``status`` is ``bad_type``, though it is an integer (out of
  range: ``bad_status``, as 2**64 is).
* Whether a nested line is valid depends on the caller: msgspec stops at the interpreter's recursion
  limit less the current stack depth (so the fuzz generator nests its "too deep" lines 5000+ levels).
* A customer (or endpoint) literally named ``__overflow__`` is counted as cardinality overflow.
* A record over 1 MiB (``too_large``) never reaches the dead-letter topic: the dead-letter producer's
  request limit is aiokafka's default 1 MiB, so the daemon retries forever and stops consuming.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from types import FrameType

import pytest
from aiokafka import AIOKafkaProducer

from sloguard.app import Daemon
from sloguard.broker import LocalBroker
from sloguard.clock import ManualClock
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch, Rejections
from sloguard.ingest.decode import (
    BAD_STATUS,
    BAD_TIMESTAMP,
    BAD_TYPE,
    MALFORMED_JSON,
    MAX_DEPTH,
    TOO_LARGE,
    Decoder,
)
from sloguard.ingest.kafka import REASON_HEADER
from sloguard.settings import load_settings
from sloguard.specfile import parse_config
from tests.integration.test_daemon import NOW, SLOS, wait_for
from tests.integration.test_kafka_source import read_topic
from tests.support.specs import config, slo

GOOD_TS = '"2026-01-01T00:00:00Z"'


def line(
    ts: str = GOOD_TS, status: str = "200", latency: str = "5", before: str = "", after: str = ""
) -> bytes:
    return (
        f'{{{before}"ts": {ts}, "service": "s", "endpoint": "e", "customer": "c", "status": {status}, '
        f'"latency_ms": {latency}{after}}}'
    ).encode()


def reasons(record: bytes) -> dict[str, int]:
    rejections = Rejections()
    Decoder().decode(record, rejections)
    return rejections.counts


HUGE = "1" + "0" * 400  # an integer beyond any double
PRECEDENCE = [
    pytest.param(
        line(ts='"2026-13-01T00:00:00Z"', latency="1e400"), BAD_TIMESTAMP, id="ts-then-latency-1e400"
    ),
    pytest.param(line(ts='"yesterday"', latency=HUGE), BAD_TIMESTAMP, id="ts-then-latency-10e400"),
    pytest.param(line(status="600", latency="1e400"), BAD_STATUS, id="status-then-latency-1e400"),
    pytest.param(line(status="600", latency="-1e400"), BAD_STATUS, id="status-then-latency-minus-1e400"),
    pytest.param(line(ts="1e400", before='"latency_ms": "12", '), BAD_TYPE, id="repeated-type-then-ts"),
    pytest.param(
        line(latency="1e400", before='"service": 5, '), BAD_TYPE, id="repeated-key-type-then-latency"
    ),
    pytest.param(line(ts="1e400", after=', "customer": 1e400'), BAD_TYPE, id="customer-type-then-ts-1e400"),
]


@pytest.mark.parametrize(("record", "reason"), PRECEDENCE)
def test_first_reason_wins_when_a_number_is_out_of_range(record: bytes, reason: str) -> None:
    assert reasons(record) == {reason: 1}
    # Among good lines (the vectorised path), the same.
    assert reasons(b"\n".join([line()] * 40 + [record] + [line()] * 40)) == {reason: 1}


def test_status_integer_of_more_than_4300_digits_is_bad_status() -> None:
    assert reasons(line(status=str(2**64))) == {BAD_STATUS: 1}  # as it is for smaller huge integers
    assert reasons(line(status="9" * 4301)) == {BAD_STATUS: 1}


def test_nesting_verdict_does_not_depend_on_the_callers_stack() -> None:
    """msgspec's own limit is the recursion limit less the caller's stack depth, so a line could be
    valid for one caller and malformed for another; the decoder's fixed MAX_DEPTH decides instead."""
    # The event object is level 1: "x" holds MAX_DEPTH - 1 more levels at most.
    ok = line(after=', "x": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    deep = line(after=', "x": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH)
    tricky = line(after=', "x": "' + "[" * 500 + '"')  # brackets inside a string do not nest

    def at_depth(n: int, record: bytes) -> dict[str, int]:
        return at_depth(n - 1, record) if n else reasons(record)

    for depth in (0, sys.getrecursionlimit() - 200 - len(_stack())):
        assert at_depth(depth, ok) == {}
        assert at_depth(depth, tricky) == {}
        assert at_depth(depth, deep) == {MALFORMED_JSON: 1}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 5000)
    try:
        assert reasons(deep) == {MALFORMED_JSON: 1}
        assert reasons(b"\n".join([line()] * 40 + [deep] + [line()] * 40)) == {MALFORMED_JSON: 1}
    finally:
        sys.setrecursionlimit(limit)


def _stack() -> list[object]:
    frames: list[object] = []
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return frames


def test_a_customer_named_overflow_is_not_cardinality_overflow() -> None:
    aggregator = Aggregator(config(slo("s", service="checkout", group_by=("customer",), max_series=10)))
    t0 = 1_767_225_600_000
    events = [Event(t0, "checkout", "GET /", c, 200, 1.0) for c in ("acme", "__overflow__", "__overflow__")]
    aggregator.ingest(EventBatch.from_events(events, aggregator.vocabs))
    snapshot = aggregator.snapshot(t0 + 60_000).slos[0]
    assert snapshot.series == 2  # far below max_series: nothing overflowed
    assert snapshot.overflow_events == 0


@pytest.mark.kafka
async def test_a_too_large_record_reaches_the_dead_letter_topic(
    broker: LocalBroker, new_topic: Callable[..., str]
) -> None:
    topic, dlq = new_topic(), new_topic(prefix="dlq")
    huge = b'{"pad": "' + b"p" * (1 << 20) + b'"}'  # over max_record_bytes (1 MiB): too_large
    small = b"{not json"
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", max_request_size=4 << 20)
    await producer.start()
    try:
        for value in (huge, small):
            await (await producer.send(topic, value, partition=0))
    finally:
        await producer.stop()
    settings = load_settings(
        {
            "listen": "127.0.0.1:0",
            "tick_seconds": 0.2,
            "kafka": {
                "bootstrap_servers": broker.bootstrap,
                "topics": [topic],
                "group_id": f"g-{topic}",
                "dead_letter_topic": dlq,
            },
        }
    )
    daemon = Daemon(settings, parse_config(SLOS, "slos.yaml"), clock=ManualClock(NOW))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_for(lambda: daemon.telemetry.invalid.counts.get(TOO_LARGE) == 1, 30, "the huge record")
        # Stuck here: each retry fails with MessageSizeTooLargeError (and re-sends the small one).
        await wait_for(lambda: daemon.telemetry.dead_lettered == 2, 20, "both dead letters")
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 60)
    out = await read_topic(broker.bootstrap, dlq, 1, 2)
    assert [(dict(r.headers)[REASON_HEADER].decode(), r.value) for r in out] == [
        (TOO_LARGE, huge),
        ("malformed_json", small),
    ]
