"""`KafkaSource`, `BatchProducer` and the load generator against a real (Tansu) broker.

No mocks: records go through a real broker, and what was committed is read back with a separate admin
client. Group timers are short (Tansu makes a new group wait half the session timeout before assigning)
so each test runs in a few seconds; every test is bounded by `asyncio.timeout`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from sloguard.broker import LocalBroker
from sloguard.core.model import Rejections
from sloguard.ingest.decode import Decoder
from sloguard.ingest.kafka import (
    REASON_HEADER,
    Fetched,
    KafkaConfig,
    KafkaSource,
    TopicsMissingError,
)
from sloguard.ingest.kafka_producer import BatchProducer
from sloguard.loadgen import run_loadgen

pytestmark = pytest.mark.kafka

NewTopic = Callable[..., str]

# Short group timers: joining takes ~1 s instead of 5 s on Tansu.
FAST: dict[str, Any] = {
    "session_timeout_ms": 2000,
    "heartbeat_interval_ms": 300,
    "fetch_timeout_ms": 200,
    "commit_timeout_s": 3.0,
    "ready_after_s": 3.0,
}


def config(broker: LocalBroker, *topics: str, group: str | None = None, **overrides: Any) -> KafkaConfig:
    return KafkaConfig(
        broker.bootstrap,
        topics,
        group_id=group or f"g-{uuid.uuid4().hex[:8]}",
        **{**FAST, **overrides},
    )


async def produce(bootstrap: str, topic: str, values: Mapping[int, Sequence[bytes]]) -> None:
    """Write ``values[partition]`` to each partition, in order, and wait for the acks."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, v, partition=p) for p, vs in values.items() for v in vs]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    """The group's committed offset per partition (None: never committed), read by an outsider."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # Tansu cannot answer OffsetFetch without an explicit partition list.
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    return {tp.partition: (om.offset if om.offset >= 0 else None) for tp, om in offsets.items()}


async def read_topic(bootstrap: str, topic: str, partitions: int, n: int) -> list[Any]:
    """The first ``n`` records of a topic, with no consumer group (nothing committed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        records: list[Any] = []
        while len(records) < n:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def fetch_records(source: KafkaSource, n: int, *, absorb: bool = False) -> list[Fetched]:
    """Fetch until ``n`` records arrived (absorbing each fetch if asked)."""
    fetched: list[Fetched] = []
    while sum(len(f.records) for f in fetched) < n:
        f = await source.fetch()
        if f.offsets:
            fetched.append(f)
            if absorb:
                source.absorbed(f.offsets)
    return fetched


def values_of(fetched: Sequence[Fetched]) -> list[bytes]:
    return [r for f in fetched for r in f.records]


def numbered(partitions: int, per_partition: int, start: int = 0) -> dict[int, list[bytes]]:
    return {p: [f"p{p}-{i}".encode() for i in range(start, start + per_partition)] for p in range(partitions)}


# -- consuming and committing --------------------------------------------------------------------------


async def test_fetches_each_record_once_commits_only_absorbed_and_resumes(
    broker: LocalBroker, new_topic: NewTopic
) -> None:
    async with asyncio.timeout(30):
        topic = new_topic(3)
        sent = numbered(3, 20)
        await produce(broker.bootstrap, topic, sent)
        cfg = config(broker, topic, max_records=7)

        source = KafkaSource(cfg)
        await source.start()
        try:
            fetched = await fetch_records(source, 60)
            # Every record exactly once, nothing more arrives.
            assert Counter(values_of(fetched)) == Counter(v for vs in sent.values() for v in vs)
            assert not (await source.fetch()).records
            # Only the first fetch is absorbed: only its offsets may be committed.
            source.absorbed(fetched[0].offsets)
            assert await source.commit()
            assert source.committed == fetched[0].offsets
            assert source.commit_failures == 0
            outside = await committed(broker.bootstrap, cfg.group_id, topic, 3)
            assert outside == {p: fetched[0].offsets.get((topic, p)) for p in range(3)}
        finally:
            await source.stop()
        assert await committed(broker.bootstrap, cfg.group_id, topic, 3) == outside

        # A new member of the group resumes exactly from the committed offsets.
        source = KafkaSource(cfg)
        await source.start()
        try:
            expected = [v for p, vs in sent.items() for v in vs[outside[p] or 0 :]]
            again = await fetch_records(source, len(expected))
            assert Counter(values_of(again)) == Counter(expected)
        finally:
            await source.stop()


async def test_stop_commits_what_was_absorbed(broker: LocalBroker, new_topic: NewTopic) -> None:
    async with asyncio.timeout(20):
        topic = new_topic(2)
        await produce(broker.bootstrap, topic, numbered(2, 10))
        cfg = config(broker, topic)
        source = KafkaSource(cfg)
        await source.start()
        try:
            await fetch_records(source, 20, absorb=True)  # absorbed, never committed by hand
        finally:
            await source.stop()
        assert await committed(broker.bootstrap, cfg.group_id, topic, 2) == {0: 10, 1: 10}
        assert source.committed == {(topic, 0): 10, (topic, 1): 10}


async def test_lag_is_highwater_minus_position(broker: LocalBroker, new_topic: NewTopic) -> None:
    async with asyncio.timeout(20):
        topic = new_topic(1)
        await produce(broker.bootstrap, topic, numbered(1, 100))
        source = KafkaSource(config(broker, topic, max_records=30))
        await source.start()
        try:
            fetched = await fetch_records(source, 1)
            got = len(values_of(fetched))
            assert source.lag() == {(topic, 0): 100 - got}
            await fetch_records(source, 100 - got)
            assert source.lag() == {(topic, 0): 0}
        finally:
            await source.stop()


async def test_missing_topics_fail_clearly_and_are_not_created(
    broker: LocalBroker, new_topic: NewTopic
) -> None:
    async with asyncio.timeout(20):
        topic = new_topic(1)
        ghost = f"ghost-{uuid.uuid4().hex[:8]}"
        ghost_dlq = f"ghost-dlq-{uuid.uuid4().hex[:8]}"
        source = KafkaSource(config(broker, topic, ghost, dead_letter_topic=ghost_dlq))
        with pytest.raises(TopicsMissingError) as err:
            await source.start()
        assert err.value.missing == tuple(sorted((ghost, ghost_dlq)))
        assert ghost in str(err.value) and ghost_dlq in str(err.value)
        assert isinstance(err.value, ValueError)
        with pytest.raises(TopicsMissingError):
            await BatchProducer(config(broker, ghost)).start()
        # The check itself must not have auto-created them.
        assert not {ghost, ghost_dlq} & broker.topics()


# -- dead letters --------------------------------------------------------------------------------------


async def test_dead_letters_are_byte_identical_with_the_reason(
    broker: LocalBroker, new_topic: NewTopic
) -> None:
    async with asyncio.timeout(20):
        topic, dlq = new_topic(1), new_topic(1, prefix="dlq")
        good = (
            b'{"ts": "2026-01-01T00:00:00Z", "service": "a", "endpoint": "b", "status": 200, "latency_ms": 1}'
        )
        records = [
            good,
            b"{not json",
            b"\xff\xfe binary \x00",
            good + b"\n" + b'{"ts": 1, "service": "a"}\r\n',  # one good line, one bad line
            good.replace(b'"latency_ms": 1', b'"latency_ms": -1'),
        ]
        await produce(broker.bootstrap, topic, {0: records})
        source = KafkaSource(config(broker, topic, dead_letter_topic=dlq))
        await source.start()
        try:
            fetched = await fetch_records(source, len(records))
            rejected: list[tuple[str, bytes]] = []
            batch = Decoder().decode_many(values_of(fetched), Rejections(), rejected)
            assert len(batch) == 2 and len(rejected) == 4
            await source.dead_letter(rejected)
            assert source.dead_lettered == 4
        finally:
            await source.stop()
        out = await read_topic(broker.bootstrap, dlq, 1, len(rejected))
        assert [(dict(r.headers)[REASON_HEADER].decode(), r.value) for r in out] == rejected


# -- rebalancing ---------------------------------------------------------------------------------------


async def test_two_sources_split_partitions_and_revocation_commits(
    broker: LocalBroker, new_topic: NewTopic
) -> None:
    async with asyncio.timeout(40):
        topic = new_topic(4)
        await produce(broker.bootstrap, topic, numbered(4, 25))
        cfg = config(broker, topic)
        revoked = 0

        async def on_revoke() -> None:
            nonlocal revoked
            revoked += 1

        first, second = KafkaSource(cfg, on_revoke=on_revoke), KafkaSource(cfg)
        await first.start()
        try:
            # The first member absorbs everything but never commits by hand ...
            await fetch_records(first, 100, absorb=True)
            assert first.committed == {}
            await second.start()
            # ... so when the second joins, the revocation must commit it: nobody re-reads anything.
            seen: dict[str, list[bytes]] = {"first": [], "second": []}

            async def pump(source: KafkaSource, name: str, until: Callable[[], bool]) -> None:
                while not until():
                    f = await source.fetch()
                    seen[name] += f.records
                    source.absorbed(f.offsets)

            def both_ready() -> bool:
                return first.ready()[0] and second.ready()[0]

            await asyncio.gather(pump(first, "first", both_ready), pump(second, "second", both_ready))
            assert revoked == 1
            assert first.committed == {(topic, p): 25 for p in range(4)}
            assert seen == {"first": [], "second": []}
            mine, theirs = first.ready()[1], second.ready()[1]
            assert "consuming 2 partitions" in mine and "consuming 2 partitions" in theirs

            # New records are split between them, each read once, by the partition's owner.
            await produce(broker.bootstrap, topic, numbered(4, 10, start=25))

            def all_new() -> bool:
                return len(seen["first"]) + len(seen["second"]) >= 40

            await asyncio.gather(pump(first, "first", all_new), pump(second, "second", all_new))
            assert Counter(seen["first"] + seen["second"]) == Counter(
                v for vs in numbered(4, 10, start=25).values() for v in vs
            )
            assert seen["first"] and seen["second"]
            assert {v.split(b"-")[0] for v in seen["first"]}.isdisjoint(
                v.split(b"-")[0] for v in seen["second"]
            )
            assert await first.commit() and await second.commit()
        finally:
            await first.stop()
            await second.stop()
        assert await committed(broker.bootstrap, cfg.group_id, topic, 4) == {p: 35 for p in range(4)}


# -- outage --------------------------------------------------------------------------------------------


async def test_broker_restart_under_a_running_source() -> None:
    async with asyncio.timeout(60):
        # Its own broker: taking the session broker away would disturb the other tests.
        with LocalBroker(stop_timeout_s=3.0) as broker:
            broker.create_topics(["requests"], 2)
            await produce(broker.bootstrap, "requests", numbered(2, 5))
            cfg = config(broker, "requests", commit_timeout_s=1.5, ready_after_s=2.0)
            source = KafkaSource(cfg)
            await source.start()
            try:
                assert await source.wait_ready(10)
                await fetch_records(source, 10, absorb=True)

                broker.kill()
                # fetch() keeps returning (empty) while the broker is away, and readiness drops.
                t0 = time.monotonic()
                while source.ready()[0]:
                    assert not (await source.fetch()).records
                    assert time.monotonic() - t0 < 10, "ready() stayed true with the broker down"
                assert "no answer from Kafka" in source.ready()[1]
                # A commit with the broker down fails within its timeout instead of hanging.
                t0 = time.monotonic()
                assert await source.commit() is False
                assert time.monotonic() - t0 < cfg.commit_timeout_s + 1.0
                assert source.commit_failures == 1

                broker.start()  # same port, empty: the topics are created again at once
                broker.create_topics(["requests"], 2, exist_ok=True)
                assert await source.wait_ready(20), source.ready()[1]
                # Fetching works again; what is produced now is read.
                await produce(broker.bootstrap, "requests", {0: [b"after-0"], 1: [b"after-1"]})
                fetched = await fetch_records(source, 2, absorb=True)
                assert sorted(values_of(fetched)) == [b"after-0", b"after-1"]
                assert await source.commit()

                # Stopping with the broker gone again: bounded, and nothing left open (aiokafka's
                # consumer.stop() leaks a CancelledError here; KafkaSource works around it).
                broker.kill()
                for _ in range(3):  # let the fetcher run into the dead broker
                    assert not (await source.fetch()).records
                source.absorbed({("requests", 0): 1})
            finally:
                t0 = time.monotonic()
                await source.stop()
                assert time.monotonic() - t0 < cfg.commit_timeout_s + 5.0
            assert source.commit_failures == 2  # the final commit could not reach the broker


# -- load generator ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ndjson_batch", "key"), [(1, "customer"), (10, "none")], ids=["single-keyed", "ndjson-rr"]
)
async def test_loadgen_paces_and_its_events_decode(
    broker: LocalBroker, new_topic: NewTopic, ndjson_batch: int, key: str
) -> None:
    async with asyncio.timeout(30):
        topic = new_topic(2)
        before_ms = time.time_ns() // 1_000_000
        stats = await run_loadgen(
            broker.bootstrap,
            topic,
            4000,
            None,
            "customer-errors",
            ndjson_batch,
            events=4000,
            key=key,
            incident_at_s=0.0,
        )
        assert stats.events == 4000
        assert stats.messages == (4000 if ndjson_batch == 1 else pytest.approx(400, abs=2))
        # 4000 events at 4000/s: about one second.
        assert 0.7 < stats.elapsed_s < 3.0
        records = await read_topic(broker.bootstrap, topic, 2, stats.messages)
        assert sum(len(r.value) for r in records) == stats.bytes
        rejections = Rejections()
        batch = Decoder().decode_many([r.value for r in records], rejections)
        assert rejections.total == 0
        assert len(batch) == 4000
        events = batch.events()
        assert all(before_ms - 1000 <= e.ts_ms <= time.time_ns() // 1_000_000 for e in events)
        # The scenario: cust-0001 (the busiest customer) fails on every request.
        theirs = [e for e in events if e.customer == "cust-0001"]
        assert theirs and all(e.status == 500 for e in theirs)
        if key == "customer":  # keyed by customer: one customer, one partition
            partitions_of = {(r.key, r.partition) for r in records}
            assert len({k for k, _ in partitions_of}) == len(partitions_of)
