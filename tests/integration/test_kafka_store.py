"""`KafkaCheckpointStore` against a real (Tansu) broker: chunked round trip, newest complete wins, a
torn write falls back to the previous checkpoint, keys sharing a partition stay apart, the scan bound; the
stores of a process share one `KafkaCheckpointClient` (one thread, closed with the last store), saves run
side by side, and a scan is remembered per checkpoint partition (later scans read only new records)."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiokafka import AIOKafkaProducer

from sloguard.broker import LocalBroker
from sloguard.checkpoint import Checkpoint, decode, encode, load_latest
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.ingest.kafka import KafkaConfig
from sloguard.ingest.kafka_store import KafkaCheckpointClient, KafkaCheckpointStore, chunk_records
from tests.support.specs import config, slo

pytestmark = pytest.mark.kafka

NewTopic = Callable[..., str]
T0 = 1_767_225_600_000


@pytest.fixture
def stores(broker: LocalBroker, new_topic: NewTopic) -> Iterator[Callable[..., KafkaCheckpointStore]]:
    topic = new_topic(2, prefix="requests-sloguard-checkpoints")
    made: list[KafkaCheckpointStore] = []

    def make(key: str = "requests-sloguard-partials/1", **options: object) -> KafkaCheckpointStore:
        kafka = KafkaConfig(broker.bootstrap, (topic,))
        store = KafkaCheckpointStore(kafka, topic, 1, key, timeout_s=20.0, **options)  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for s in made:
        s.close()


def a_checkpoint(n: int) -> bytes:
    agg = Aggregator(config(slo(group_by=("customer",))))
    agg.ingest(
        EventBatch.from_events(
            Event(T0 + i * 1000, "checkout", "GET /a", f"cust-{i % 997}", 500 if i % 7 else 200, 1.0)
            for i in range(n)
        )
    )
    return encode(Checkpoint(agg.export_state(), {("requests-sloguard-partials", 1): n}, created_ms=T0))


def test_round_trip_in_chunks_newest_first(stores: Callable[..., KafkaCheckpointStore]) -> None:
    store = stores(chunk_bytes=4096)
    first, second = a_checkpoint(3000), a_checkpoint(5000)
    assert len(second) > 3 * 4096, "spans several chunks"
    n1, n2 = store.save(first), store.save(second)
    assert n2 > n1
    reader = stores(chunk_bytes=4096)  # another replica, after a rebalance
    assert reader.names()[:2] == [n2, n1]
    assert reader.read(n2) == second
    found = load_latest(reader, lambda name, why: pytest.fail(f"{name}: {why}"))
    assert found is not None and found[1].offsets == {("requests-sloguard-partials", 1): 5000}
    assert decode(reader.read(n1)).offsets == {("requests-sloguard-partials", 1): 3000}


def test_a_torn_write_falls_back_to_the_previous_checkpoint(
    broker: LocalBroker, stores: Callable[..., KafkaCheckpointStore]
) -> None:
    store = stores(chunk_bytes=4096)
    good = store.save(a_checkpoint(3000))
    torn = chunk_records(a_checkpoint(4000), uuid.uuid4().bytes, 4096)
    assert len(torn) > 2

    write(broker, store, torn[:-1])
    assert stores(chunk_bytes=4096).names() == [good]


def write(broker: LocalBroker, store: KafkaCheckpointStore, records: list[bytes]) -> int:
    """Write raw chunk records as ``store``'s key (as a crashed replica would have); the last offset."""

    async def go() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        await producer.start()
        try:
            offset = -1
            for r in records:
                sent = await producer.send(store.tp.topic, r, key=store.key, partition=store.tp.partition)
                offset = (await sent).offset
            return offset
        finally:
            await producer.stop()

    return asyncio.run(go())


def test_chunks_straddling_two_scans_make_a_checkpoint(
    broker: LocalBroker, stores: Callable[..., KafkaCheckpointStore]
) -> None:
    """What a scan saw of a checkpoint not complete yet is kept: the next scan reads only the rest."""
    store = stores(chunk_bytes=4096)
    data = a_checkpoint(4000)
    records = chunk_records(data, uuid.uuid4().bytes, 4096)
    write(broker, store, records[:2])
    assert store.names() == []
    last = write(broker, store, records[2:])
    assert store.names() == [f"offset-{last:012d}"]
    assert store.read(f"offset-{last:012d}") == data
    assert store.client.records_read == len(records)


def test_keys_sharing_a_partition_see_only_their_own(stores: Callable[..., KafkaCheckpointStore]) -> None:
    mine, other = stores("requests-sloguard-partials/1"), stores("requests-sloguard-partials/5")
    a = mine.save(b"mine")
    b = other.save(b"other")
    assert mine.names() == [a] and other.names() == [b]
    assert mine.read(a) == b"mine"


def test_the_scan_is_bounded(stores: Callable[..., KafkaCheckpointStore]) -> None:
    """Checkpoints older than the last ``scan_records`` records are not looked at (documented bound),
    also those an earlier scan saw; ``keep`` bounds how many `names` lists."""
    store = stores(scan_records=3, keep=5)
    names = [store.save(os.urandom(100)) for _ in range(2)]
    assert store.names() == names[::-1]
    names += [store.save(os.urandom(100)) for _ in range(3)]
    assert store.names() == names[::-1][:3]
    kept = stores(keep=2)
    assert kept.names() == names[::-1][:2]


def ckpt_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ckpt-kafka"]


def test_stores_share_one_client_save_side_by_side_and_close_it(
    broker: LocalBroker, new_topic: NewTopic
) -> None:
    """12 stores (keys on 2 checkpoint partitions) made like stage 2 makes them: one client, one thread;
    saves from 12 threads at once each land under their own key; closing the last store stops it all."""
    topic = new_topic(2, prefix="requests-sloguard-checkpoints")
    kafka = KafkaConfig(broker.bootstrap, (topic,))
    assert ckpt_threads() == []
    made = [
        KafkaCheckpointStore(kafka, topic, p % 2, f"requests-sloguard-partials/{p}", chunk_bytes=4096)
        for p in range(12)
    ]
    client = made[0].client
    assert all(s.client is client for s in made)
    data = [a_checkpoint(1000 + 300 * p) for p in range(12)]
    with ThreadPoolExecutor(12) as pool:
        saved = list(pool.map(KafkaCheckpointStore.save, made, data))
        assert len(ckpt_threads()) == 1
        listed = list(pool.map(KafkaCheckpointStore.names, made))
        assert listed == [[name] for name in saved]
        assert list(pool.map(KafkaCheckpointStore.read, made, saved)) == data
    # Every record was read once, however many keys share its partition.
    assert client.records_read == sum(len(chunk_records(d, b"0" * 16, 4096)) for d in data)
    for s in made[:-1]:
        s.close()
    assert len(ckpt_threads()) == 1 and made[-1].names() == [saved[-1]]
    made[-1].close()
    made[-1].close()  # idempotent: the reference is given back once
    assert ckpt_threads() == []
    again = KafkaCheckpointStore(kafka, topic, 1, "requests-sloguard-partials/1", chunk_bytes=4096)
    try:
        assert again.client is not client and again.names() == [saved[1]]
    finally:
        again.close()
    assert ckpt_threads() == []


def test_a_scan_is_remembered_and_sees_other_replicas_writes(
    broker: LocalBroker, new_topic: NewTopic
) -> None:
    """Keys sharing a checkpoint partition: the second key's "none" costs no re-read; a checkpoint another
    process wrote since is found by reading only its records. Views leave their client open."""
    topic = new_topic(2, prefix="requests-sloguard-checkpoints")
    kafka = KafkaConfig(broker.bootstrap, (topic,))
    client = KafkaCheckpointClient(kafka, chunk_bytes=4096, timeout_s=20.0)
    other = KafkaCheckpointClient(kafka, chunk_bytes=4096, timeout_s=20.0)  # another replica
    try:
        mine, yours = client.store(topic, 1, "p/1"), client.store(topic, 1, "p/3")
        x, y = a_checkpoint(2000), a_checkpoint(3000)
        nx = mine.save(x)
        assert mine.names() == [nx] and client.records_read == len(chunk_records(x, b"0" * 16, 4096))
        assert yours.names() == []
        assert client.records_read == len(chunk_records(x, b"0" * 16, 4096))
        ny = other.store(topic, 1, "p/3").save(y)
        yours.close()  # a view: the client stays
        assert client.store(topic, 1, "p/3").read(ny) == y
        assert client.records_read == len(chunk_records(x, b"0" * 16, 4096)) + len(
            chunk_records(y, b"0" * 16, 4096)
        )
        assert mine.names() == [nx] and mine.read(nx) == x
    finally:
        client.close()
        other.close()
    assert ckpt_threads() == []
    with pytest.raises(OSError, match="closed"):
        mine.names()


def test_an_unreachable_broker_is_an_oserror(broker: LocalBroker, new_topic: NewTopic) -> None:
    kafka = KafkaConfig("127.0.0.1:1", ("x",), request_timeout_ms=1000)
    store = KafkaCheckpointStore(kafka, "x", 0, "k", timeout_s=3.0)
    try:
        with pytest.raises(OSError, match="kafka topic x"):
            store.save(b"data")
    finally:
        store.close()
