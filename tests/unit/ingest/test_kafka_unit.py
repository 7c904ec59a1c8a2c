"""`sloguard.ingest.kafka` and `sloguard.loadgen` without a broker: settings, the offset bookkeeping
around rebalances (with a fake consumer standing in for aiokafka's), and the event generator.

The real-broker behaviour is in tests/integration/test_kafka_source.py.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError

from sloguard.core.model import Rejections
from sloguard.ingest.decode import Decoder
from sloguard.ingest.kafka import (
    REASON_HEADER,
    DeadLetterError,
    KafkaConfig,
    KafkaSource,
    KafkaStartError,
    TopicsMissingError,
    _stop_consumer,
)
from sloguard.ingest.kafka_producer import partition_for_key
from sloguard.loadgen import ENDPOINTS, EventGenerator, Scenario, _Batcher, add_arguments

T = "requests"
P0, P1 = (T, 0), (T, 1)


def cfg(**overrides: Any) -> KafkaConfig:
    base: dict[str, Any] = {"bootstrap_servers": "kafka:9092", "topics": (T,), "commit_timeout_s": 0.2}
    return KafkaConfig(**{**base, **overrides})


# -- settings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"topics": ()}, "topics"),
        ({"topics": (T, T)}, "topics"),
        ({"dead_letter_topic": T}, "dead_letter_topic"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"security_protocol": "SASL_SSL"}, "sasl_mechanism"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512"}, "sasl_username"),
        ({"sasl_username": "u", "sasl_password": "p"}, "SASL settings given"),
        ({"ssl_cafile": "/ca.pem"}, "SSL files given"),
        ({"security_protocol": "SSL", "ssl_keyfile": "/k.pem"}, "ssl_keyfile needs ssl_certfile"),
        ({"auto_offset_reset": "none"}, "auto_offset_reset"),
        ({"commit_timeout_s": 0}, "timeouts"),
        ({"heartbeat_interval_ms": 10_000, "session_timeout_ms": 10_000}, "heartbeat_interval_ms"),
    ],
    ids=[
        "no-topics",
        "duplicate-topics",
        "dlq-is-input",
        "bad-protocol",
        "sasl-no-mechanism",
        "sasl-no-credentials",
        "sasl-fields-without-sasl",
        "ssl-files-without-ssl",
        "key-without-cert",
        "offset-reset-none",
        "zero-timeout",
        "heartbeat-not-below-session",
    ],
)
def test_config_refuses_bad_settings(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cfg(**overrides)


def test_sasl_ssl_options_reach_aiokafka_and_the_password_stays_out_of_repr() -> None:
    c = cfg(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="sloguard",
        sasl_password="s3cret-pw",
    )
    options = c.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_username"] == "sloguard"
    assert options["sasl_plain_password"] == "s3cret-pw"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert "s3cret-pw" not in repr(c)
    assert "s3cret-pw" not in repr(KafkaSource(c))


def test_plaintext_options_have_no_security_extras() -> None:
    options = cfg().client_options()
    assert options["security_protocol"] == "PLAINTEXT"
    assert not {"ssl_context", "sasl_mechanism", "sasl_plain_password"} & options.keys()


def test_partition_for_key_is_stable_and_in_range() -> None:
    parts = [partition_for_key(f"cust-{i:04d}".encode(), 6) for i in range(1, 200)]
    assert parts == [partition_for_key(f"cust-{i:04d}".encode(), 6) for i in range(1, 200)]
    assert set(parts) == set(range(6))


# -- a fake aiokafka consumer --------------------------------------------------------------------------


class FakeConsumer:
    """Just enough of AIOKafkaConsumer for KafkaSource; `rebalance()` drives the listener like aiokafka."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.existing = {T, "dlq"}
        self.assigned: set[TopicPartition] = set()
        self.listener: Any = None
        self.commits: list[dict[TopicPartition, int]] = []
        self.commit_error: BaseException | None = None
        self.commit_hangs = False
        self.batches: list[Any] = []
        self.highwaters: dict[TopicPartition, int] = {}
        self.positions: dict[TopicPartition, int] = {}
        self._coordinator = SimpleNamespace(generation=1)
        self.group_offsets: dict[TopicPartition, int] = {}
        self.seeks: list[tuple[TopicPartition, int | str]] = []
        self.stopped = False

    async def start(self) -> None:
        pass

    async def topics(self) -> set[str]:
        return set(self.existing)

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.commit_hangs:
            await asyncio.sleep(3600)  # what aiokafka does with a retriable error and no broker
        if self.commit_error is not None:
            raise self.commit_error
        self.commits.append(dict(offsets))

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        if not self.batches:
            return {}
        batch = self.batches.pop(0)
        if isinstance(batch, BaseException):
            raise batch
        return dict(batch)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.group_offsets.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.seeks.append((tp, "beginning"))

    async def stop(self) -> None:
        self.stopped = True

    async def rebalance(self, new: set[tuple[str, int]]) -> None:
        await self.listener.on_partitions_revoked(set(self.assigned))
        self.assigned = {TopicPartition(*tp) for tp in new}
        await self.listener.on_partitions_assigned(set(self.assigned))


def records(tp: tuple[str, int], offsets: Sequence[int], value: bytes | None = b"x") -> Any:
    return TopicPartition(*tp), [SimpleNamespace(offset=o, value=value) for o in offsets]


async def started(
    config: KafkaConfig | None = None, on_revoke: Any = None
) -> tuple[KafkaSource, FakeConsumer]:
    made: list[FakeConsumer] = []

    def factory(**options: Any) -> FakeConsumer:
        made.append(FakeConsumer(**options))
        return made[-1]

    source = KafkaSource(config or cfg(), on_revoke, consumer_factory=factory)
    await source.start()
    consumer = made[0]
    await consumer.rebalance({P0, P1})
    return source, consumer


def committed(consumer: FakeConsumer) -> list[dict[tuple[str, int], int]]:
    return [{(tp.topic, tp.partition): off for tp, off in c.items()} for c in consumer.commits]


# -- KafkaSource bookkeeping ---------------------------------------------------------------------------


async def test_consumer_is_built_for_manual_commits() -> None:
    source, consumer = await started(cfg(group_id="slo", auto_offset_reset="latest"))
    assert consumer.options["enable_auto_commit"] is False
    assert consumer.options["group_id"] == "slo"
    assert consumer.options["auto_offset_reset"] == "latest"
    await source.stop()


async def test_start_refuses_missing_topics_and_closes_the_consumer() -> None:
    made: list[FakeConsumer] = []

    def factory(**options: Any) -> FakeConsumer:
        made.append(FakeConsumer(**options))
        made[-1].existing = {"other"}
        return made[-1]

    source = KafkaSource(cfg(dead_letter_topic="dlq"), consumer_factory=factory)
    with pytest.raises(TopicsMissingError, match="dlq, requests") as err:
        await source.start()
    assert err.value.missing == ("dlq", "requests")
    assert made[0].stopped and made[0].listener is None


async def test_start_reports_an_unreachable_broker() -> None:
    class Unreachable(FakeConsumer):
        async def start(self) -> None:
            raise KafkaConnectionError("Unable to bootstrap from kafka:9092")

    source = KafkaSource(cfg(), consumer_factory=Unreachable)
    with pytest.raises(KafkaStartError, match="kafka:9092"):
        await source.start()


async def test_fetch_returns_values_and_next_offsets_and_skips_tombstones() -> None:
    source, consumer = await started()
    consumer.batches = [dict([records(P0, [0, 1, 2]), records(P1, [7], value=None)])]
    f = await source.fetch()
    assert f.records == [b"x", b"x", b"x"]
    assert f.offsets == {P0: 3, P1: 8}
    await source.stop()


async def test_fetch_swallows_kafka_errors() -> None:
    source, consumer = await started(cfg(fetch_timeout_ms=0))
    consumer.batches = [KafkaConnectionError("broker gone")]
    f = await source.fetch()
    assert f.records == [] and f.offsets == {}
    await source.stop()


async def test_commit_sends_only_absorbed_offsets() -> None:
    source, consumer = await started()
    consumer.batches = [dict([records(P0, [0, 1]), records(P1, [0])]), dict([records(P0, [2])])]
    first = await source.fetch()
    await source.fetch()  # fetched, never absorbed
    assert await source.commit()  # nothing absorbed: nothing sent
    assert consumer.commits == []
    source.absorbed(first.offsets)
    assert await source.commit()
    assert committed(consumer) == [{P0: 2, P1: 1}]
    assert source.committed == {P0: 2, P1: 1}
    assert await source.commit()  # nothing new
    assert len(consumer.commits) == 1
    await source.stop()


async def test_a_hanging_commit_times_out_and_keeps_the_offsets() -> None:
    source, consumer = await started(cfg(commit_timeout_s=0.05))
    source.absorbed({P0: 5})
    consumer.commit_hangs = True
    assert await asyncio.wait_for(source.commit(), 1.0) is False
    assert source.commit_failures == 1
    consumer.commit_hangs = False
    assert await source.commit()
    assert committed(consumer) == [{P0: 5}]
    await source.stop()


async def test_commit_failed_means_partitions_lost() -> None:
    source, consumer = await started()
    consumer.batches = [dict([records(P0, [0])])]
    in_flight = await source.fetch()
    source.absorbed({P1: 4})
    consumer.commit_error = CommitFailedError()
    assert await source.commit() is False
    assert source.commit_failures == 1
    consumer.commit_error = None
    # Neither the dropped offsets nor those of an older fetch come back.
    source.absorbed(in_flight.offsets)
    assert await source.commit()
    assert consumer.commits == []
    await source.stop()


async def test_revocation_absorbs_in_flight_then_commits_the_revoked_partitions() -> None:
    calls: list[str] = []
    holder: dict[str, Any] = {}

    async def on_revoke() -> None:
        calls.append("on_revoke")
        holder["source"].absorbed(holder["in_flight"].offsets)  # the app absorbs what it holds

    source, consumer = await started(on_revoke=on_revoke)
    holder["source"] = source
    consumer.batches = [dict([records(P0, [0, 1]), records(P1, [0, 1, 2])])]
    holder["in_flight"] = await source.fetch()
    await consumer.rebalance({P1})
    assert calls == ["on_revoke"]
    assert committed(consumer) == [{P0: 2, P1: 3}]
    assert source.ready()[0]
    await source.stop()


async def test_offsets_fetched_before_a_revocation_are_not_committed_after_it() -> None:
    source, consumer = await started()
    consumer.batches = [dict([records(P0, [0, 1]), records(P1, [0])])]
    stale = await source.fetch()
    await consumer.rebalance({P0, P1})  # revoked and given back: the fetch is from an old epoch
    source.absorbed(stale.offsets)
    assert await source.commit()
    assert consumer.commits == []
    consumer.batches = [dict([records(P0, [2])])]
    fresh = await source.fetch()
    source.absorbed(fresh.offsets)
    assert await source.commit()
    assert committed(consumer) == [{P0: 3}]
    await source.stop()


async def test_revocation_after_lost_membership_commits_nothing() -> None:
    source, consumer = await started()
    source.absorbed({P0: 9})
    consumer._coordinator.generation = -1  # aiokafka's reset after "member id not recognized"
    await consumer.rebalance({P0})
    assert consumer.commits == []
    assert await source.commit()
    assert consumer.commits == []
    await source.stop()


async def test_stop_commits_absorbed_offsets_then_stops() -> None:
    source, consumer = await started()
    source.absorbed({P0: 3, P1: 4})
    await source.stop()
    assert committed(consumer) == [{P0: 3, P1: 4}]
    assert consumer.stopped
    assert source.ready() == (False, "Kafka source stopped")
    assert (await source.fetch()).records == []


async def test_stop_is_bounded_when_the_commit_hangs() -> None:
    source, consumer = await started(cfg(commit_timeout_s=0.05))
    source.absorbed({P0: 3})
    consumer.commit_hangs = True
    await asyncio.wait_for(source.stop(), 1.0)
    assert consumer.stopped and source.commit_failures == 1


async def test_lag_is_highwater_minus_position() -> None:
    source, consumer = await started()
    tp0, tp1 = TopicPartition(*P0), TopicPartition(*P1)
    consumer.highwaters = {tp0: 10, tp1: 4}
    consumer.positions = {tp1: 4}
    consumer.batches = [dict([records(P0, [0, 1, 2])])]
    await source.fetch()
    assert source.lag() == {P0: 7, P1: 0}
    await source.stop()


async def test_ready_explains_itself() -> None:
    source = KafkaSource(cfg())
    assert source.ready() == (False, "Kafka source new")
    made: list[FakeConsumer] = []

    def factory(**options: Any) -> FakeConsumer:
        made.append(FakeConsumer(**options))
        return made[-1]

    source = KafkaSource(cfg(ready_after_s=60), consumer_factory=factory)
    await source.start()
    ok, why = source.ready()
    assert not ok and "joining consumer group" in why
    await made[0].rebalance({P0})
    assert source.ready() == (True, "consuming 1 partitions in group 'sloguard'")
    source._last_contact -= 120  # as if the broker had been silent for two minutes
    ok, why = source.ready()
    assert not ok and "no answer from Kafka" in why
    await source.stop()


async def test_restored_offsets_are_sought_unless_the_group_committed_further() -> None:
    made: list[FakeConsumer] = []

    def factory(**options: Any) -> FakeConsumer:
        made.append(FakeConsumer(**options))
        return made[-1]

    source = KafkaSource(cfg(), consumer_factory=factory)
    source.offsets.restored({P0: 10, P1: 10})
    await source.start()
    consumer = made[0]
    consumer.group_offsets = {TopicPartition(*P0): 8, TopicPartition(*P1): 12}
    await consumer.rebalance({P0, P1})
    assert consumer.seeks == [(TopicPartition(*P0), 10)]
    assert source.offsets.sought == {P0: (10, 1)}
    await consumer.rebalance({P0, P1})  # only on the first assignment
    assert len(consumer.seeks) == 1
    await source.stop()


async def test_a_position_past_the_end_of_the_log_is_reset() -> None:
    source, consumer = await started()
    tp0 = TopicPartition(*P0)
    consumer.highwaters = {tp0: 5}
    consumer.batches = [dict([records(P0, [7])])]  # next offset 8 on a log that now ends at 5
    await source.fetch()
    assert consumer.seeks == [(tp0, "beginning")]
    assert source.lag() == {}  # position unknown until the next fetch
    await source.stop()


# -- dead letters --------------------------------------------------------------------------------------


class FakeProducer:
    def __init__(self, **options: Any) -> None:
        self.options = options
        self.sent: list[tuple[str, bytes, list[tuple[str, bytes]]]] = []
        self.fail = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(
        self, topic: str, *, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        self.sent.append((topic, value, headers))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail:
            fut.set_exception(KafkaConnectionError("gone"))
        else:
            fut.set_result(None)
        return fut


async def test_dead_letter_keeps_bytes_and_reason() -> None:
    producers: list[FakeProducer] = []

    def make_producer(**options: Any) -> FakeProducer:
        producers.append(FakeProducer(**options))
        return producers[-1]

    source = KafkaSource(
        cfg(dead_letter_topic="dlq"), consumer_factory=FakeConsumer, producer_factory=make_producer
    )
    await source.start()
    (producer,) = producers
    assert producer.options["acks"] == "all"
    await source.dead_letter([("malformed_json", b"{nope"), ("bad_encoding", b"\xff")])
    assert producer.sent == [
        ("dlq", b"{nope", [(REASON_HEADER, b"malformed_json")]),
        ("dlq", b"\xff", [(REASON_HEADER, b"bad_encoding")]),
    ]
    assert source.dead_lettered == 2
    producer.fail = True
    with pytest.raises(DeadLetterError, match="'dlq'"):
        await source.dead_letter([("malformed_json", b"{")])
    assert source.dead_letter_failures == 1
    await source.stop()


async def test_dead_letter_without_a_topic_does_nothing() -> None:
    source, _ = await started()
    await source.dead_letter([("malformed_json", b"{")])
    assert source.dead_lettered == 0
    await source.stop()


# -- the aiokafka stop() workaround --------------------------------------------------------------------


async def test_stop_consumer_finishes_when_aiokafka_leaks_a_cancellation() -> None:
    closed: list[str] = []

    async def sleeper() -> None:
        await asyncio.sleep(3600)

    pending = asyncio.create_task(sleeper())

    async def close_client() -> None:
        closed.append("client")

    class Leaky:
        _fetcher = SimpleNamespace(_pending_tasks={pending})
        _client = SimpleNamespace(close=close_client)

        async def stop(self) -> None:
            raise asyncio.CancelledError  # what Fetcher.close() lets out

    await _stop_consumer(Leaky())
    assert closed == ["client"] and pending.cancelled()


async def test_stop_consumer_does_not_swallow_a_real_cancellation() -> None:
    started_stop = asyncio.Event()

    class Slow:
        async def stop(self) -> None:
            started_stop.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(_stop_consumer(Slow()))
    await started_stop.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- load generator ------------------------------------------------------------------------------------

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def decoded(lines: list[str]) -> list[Any]:
    rejections = Rejections()
    batch = Decoder().decode_many([line.encode() for line in lines], rejections)
    assert rejections.total == 0
    return batch.events()


def test_generated_events_decode_cleanly_with_spread_times() -> None:
    lines, customers = EventGenerator(seed=1).generate(2000, T0_MS, T0_MS + 999, elapsed_s=0.0)
    events = decoded(lines)
    assert len(events) == 2000 == len(customers)
    assert events[0].ts_ms == T0_MS and events[-1].ts_ms == T0_MS + 999
    assert {e.service for e in events} == {s for s, *_ in ENDPOINTS}
    assert sum(e.status >= 500 for e in events) < 40  # ~0.1 % background
    assert max(e.customer for e in events) <= "cust-5000"
    assert lines[0].startswith('{"ts": "2026-01-01T00:00:00.000Z", "service": ')


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario("outage", service="payments", endpoint="POST /v1/payments"),
        Scenario("outage", service="auth"),
        Scenario("latency", service="search", latency_factor=5.0),
        Scenario("customer-errors", customer="cust-0002"),
    ],
    ids=["outage-endpoint", "outage-service", "latency", "customer-errors"],
)
def test_scenarios_hit_their_target_only_during_the_incident(scenario: Scenario) -> None:
    def run(elapsed_s: float) -> list[Any]:
        gen = EventGenerator(scenario, seed=3)
        return decoded(gen.generate(20_000, T0_MS, T0_MS + 1000, elapsed_s)[0])

    def hit(e: Any) -> bool:
        if scenario.name == "customer-errors":
            return bool(e.customer == scenario.customer)
        return e.service == scenario.service and scenario.endpoint in (None, e.endpoint)

    calm, incident = run(0.0), run(scenario.incident_at_s + 1)
    targets = [e for e in incident if hit(e)]
    assert targets
    if scenario.name == "latency":
        median = sorted(e.latency_ms for e in targets)[len(targets) // 2]
        median_calm = sorted(e.latency_ms for e in calm if hit(e))[len(targets) // 2]
        assert 3.5 < median / median_calm < 7
    else:
        assert all(e.status >= 500 for e in targets)
        assert sum(e.status >= 500 for e in calm if hit(e)) < len(targets) * 0.05
        others = [e for e in incident if not hit(e)]
        assert sum(e.status >= 500 for e in others) < len(others) * 0.01
    assert not Scenario(scenario.name, incident_at_s=5, incident_for_s=10).active(15.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "chaos"},
        {"service": "billing"},
        {"endpoint": "GET /v1/cart", "service": "auth"},
        {"customer": "acme"},
    ],
    ids=["scenario", "service", "endpoint-of-other-service", "customer"],
)
def test_scenario_refuses_unknown_targets(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Scenario(**kwargs)


def test_keyed_messages_go_to_their_customers_partition() -> None:
    lines, customers = EventGenerator(seed=5).generate(500, T0_MS, T0_MS, 0.0)
    out = _Batcher(4, 1, keyed=True).split(lines, customers, 0.0)
    assert sum(len(values) for values, _ in out.values()) == 500
    for p, (values, keys) in out.items():
        assert keys is not None and len(keys) == len(values)
        assert all(partition_for_key(k or b"", 4) == p for k in keys)
        assert all(
            f'"customer": "{(k or b"").decode()}"'.encode() in v for k, v in zip(keys, values, strict=True)
        )


def test_ndjson_lines_wait_for_a_full_message_then_flush() -> None:
    batcher = _Batcher(2, 10, keyed=False, linger_s=10.0)
    gen = EventGenerator(seed=5)
    first = batcher.split(*gen.generate(15, T0_MS, T0_MS, 0.0), now=0.0)
    assert [len(v.split(b"\n")) for values, _ in first.values() for v in values] == [10]
    second = batcher.split(*gen.generate(12, T0_MS, T0_MS, 0.0), now=1.0)  # 5 held + 12
    assert [len(v.split(b"\n")) for values, _ in second.values() for v in values] == [10]
    rest = batcher.flush()
    assert [len(v.split(b"\n")) for values, _ in rest.values() for v in values] == [7]
    assert batcher.flush() == {}
    # Round-robin over both partitions.
    assert {*first, *second, *rest} == {0, 1}


def test_ndjson_lines_do_not_wait_longer_than_the_linger() -> None:
    batcher = _Batcher(1, 100, keyed=True, linger_s=0.5)
    gen = EventGenerator(seed=5)
    assert batcher.split(*gen.generate(5, T0_MS, T0_MS, 0.0), now=0.0) == {}
    late = batcher.split(*gen.generate(5, T0_MS, T0_MS, 0.0), now=0.6)
    assert [len(v.split(b"\n")) for values, _ in late.values() for v in values] == [10]


def test_loadgen_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--scenario", "outage", "--rate", "500", "--events", "10", "--ndjson-batch", "5"]
    )
    assert (args.scenario, args.rate, args.events, args.ndjson_batch) == ("outage", 500.0, 10, 5)
    assert args.duration is None and args.key == "customer" and args.service == "checkout"
