"""What the broker really does, asserted before the scale-out design relies on it (issue 10).

Each test states what Tansu does today, with a comment on what real Kafka guarantees; docs/scaling.md
cites these. If a Tansu upgrade changes an answer, the test fails and the design note must be revisited.

The stale-generation tests send OffsetCommit requests through aiokafka's group coordinator with a
generation or member id we set by hand: that is exactly what a zombie (a member frozen past its session
timeout) sends, without having to freeze a process.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import IllegalGenerationError, KafkaError, UnknownMemberIdError
from aiokafka.structs import OffsetAndMetadata

from sloguard.broker import LocalBroker

pytestmark = pytest.mark.kafka

NewTopic = Callable[..., str]

GROUP_TIMERS: dict[str, Any] = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 300}


@asynccontextmanager
async def member(
    broker: LocalBroker, topic: str, group: str, **options: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **{**GROUP_TIMERS, **options},
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def until_assigned(*consumers: AIOKafkaConsumer) -> None:
    """Poll every consumer until each owns something (a rebalance needs all of them polling)."""
    while not all(c.assignment() for c in consumers):
        for c in consumers:
            await c.getmany(timeout_ms=100)


async def committed_with_metadata(broker: LocalBroker, group: str, tp: TopicPartition) -> OffsetAndMetadata:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        found: dict[TopicPartition, OffsetAndMetadata] = await admin.list_consumer_group_offsets(
            group, partitions=[tp]
        )
    finally:
        await admin.close()
    return found[tp]


async def commit_as(consumer: AIOKafkaConsumer, generation: int, member_id: str, offset: int) -> None:
    """Commit ``offset`` for the consumer's first partition as if we were (generation, member_id)."""
    coordinator = consumer._coordinator
    real = coordinator.generation, coordinator.member_id
    coordinator.generation, coordinator.member_id = generation, member_id
    try:
        assignment = consumer._subscription.subscription.assignment
        tp = min(consumer.assignment())
        await coordinator._do_commit_offsets(assignment, {tp: OffsetAndMetadata(offset, "")})
    finally:
        coordinator.generation, coordinator.member_id = real


async def test_commit_metadata_is_dropped(broker: LocalBroker, new_topic: NewTopic) -> None:
    """Tansu keeps the committed offset but returns empty metadata. Real Kafka keeps up to
    ``offset.metadata.max.bytes`` (4096) of metadata with the offset: there, the next cut could ride in
    the commit itself. Here it cannot, so stage 1 writes its cut intents to a topic (docs/scaling.md)."""
    topic, group = new_topic(1), f"g-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic, 0)
    async with asyncio.timeout(30), member(broker, topic, group) as consumer:
        await until_assigned(consumer)
        await consumer.commit({tp: (7, "cut:7-19")})
        assert await consumer.committed(tp) == 7
        seen = await committed_with_metadata(broker, group, tp)
    assert seen == OffsetAndMetadata(7, "")


async def test_commit_from_a_stale_generation_or_unknown_member_is_refused(
    broker: LocalBroker, new_topic: NewTopic
) -> None:
    """After a rebalance, a commit carrying the previous generation is refused (ILLEGAL_GENERATION), so is
    one from a member the group does not know (UNKNOWN_MEMBER_ID: a zombie removed after its session
    timed out) and a group-less commit (generation -1) while the group has members. Real Kafka does the
    same (GroupCoordinator.handleCommitOffsets); it does not check that the committer owns the partition,
    only that it is a current member of the current generation. The refused commits change nothing."""
    topic, group = new_topic(2), f"g-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic, 0)
    async with asyncio.timeout(60), member(broker, topic, group) as first:
        await until_assigned(first)
        await first.commit({tp: 5})
        old_generation, member_id = first._coordinator.generation, first._coordinator.member_id
        async with member(broker, topic, group) as second:
            await until_assigned(first, second)
            assert first._coordinator.generation > old_generation
            with pytest.raises(IllegalGenerationError):
                await commit_as(first, old_generation, member_id, 3)
            with pytest.raises(UnknownMemberIdError):
                await commit_as(first, first._coordinator.generation, f"gone-{member_id}", 3)
            with pytest.raises(UnknownMemberIdError):
                await commit_as(first, -1, "", 3)
            mine = min(first.assignment())
            assert (await committed_with_metadata(broker, group, mine)).offset in (5, -1)


async def test_generation_grows_even_after_the_group_empties(
    broker: LocalBroker, new_topic: NewTopic
) -> None:
    """Every new generation is numbered above the last one, also after all members left. Kafka keeps the
    generation in the group's metadata as long as the group exists (its offsets are retained). The cut
    intents of stage 1 are ordered by it."""
    topic, group = new_topic(1), f"g-{uuid.uuid4().hex[:8]}"
    generations = []
    async with asyncio.timeout(60):
        for _ in range(3):
            async with member(broker, topic, group) as consumer:
                await until_assigned(consumer)
                generations.append(consumer._coordinator.generation)
    assert generations == sorted(set(generations)), generations


async def consume_all(broker: LocalBroker, topic: str, partition: int, n: int, **options: Any) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", **options)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        records: list[Any] = []
        while len(records) < n:
            records.extend((await consumer.getmany(tp, timeout_ms=500)).get(tp, []))
        return records
    finally:
        await consumer.stop()


async def test_order_within_a_partition_and_headers_are_kept(
    broker: LocalBroker, new_topic: NewTopic
) -> None:
    """One producer, ``acks=all``, many sends in flight: a partition returns them in send order, with
    their headers byte for byte. Kafka guarantees the order per partition for one producer (with
    retries, only with idempotence or one request in flight; aiokafka sends one batch per partition at
    a time)."""
    topic = new_topic(3)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
    async with asyncio.timeout(30):
        await producer.start()
        try:
            futures = [
                await producer.send(topic, f"{i}".encode(), partition=i % 3, headers=[("n", f"{i}".encode())])
                for i in range(600)
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        for p in range(3):
            records = await consume_all(broker, topic, p, 200)
            assert [int(r.value) for r in records] == list(range(p, 600, 3))
            assert [r.headers for r in records] == [(("n", r.value),) for r in records]


async def test_idempotent_producer_is_not_supported(broker: LocalBroker, new_topic: NewTopic) -> None:
    """Tansu answers InitProducerId with an error, so ``enable_idempotence=True`` cannot start. Real Kafka
    supports it (and transactions on top); sloguard must not need either: duplicates are recognised by
    the offset ranges the partials carry (docs/scaling.md)."""
    topic = new_topic(1)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=True)
    async with asyncio.timeout(30):
        try:
            with pytest.raises(KafkaError):
                await producer.start()
                await (await producer.send(topic, b"x", partition=0))
        finally:
            await producer.stop()


async def test_large_records_are_accepted(broker: LocalBroker, new_topic: NewTopic) -> None:
    """A 16 MiB record is accepted and read back whole. Real Kafka refuses records over the topic's
    ``max.message.bytes`` (default 1 MiB + 12 bytes) with RecordTooLargeError, so sloguard's own cap on
    partial and checkpoint records (below 1 MiB by default) is what keeps them portable."""
    topic = new_topic(1)
    size = 16 * 1024 * 1024
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", max_request_size=size + 4096)
    async with asyncio.timeout(60):
        await producer.start()
        try:
            await (await producer.send(topic, b"x" * size, partition=0))
        finally:
            await producer.stop()
        (record,) = await consume_all(broker, topic, 0, 1, max_partition_fetch_bytes=2 * size)
    assert len(record.value) == size
