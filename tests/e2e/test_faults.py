"""Fault tests: the daemon as a process against a real Tansu broker, killed and disturbed on purpose.

Every scenario ends by comparing the daemon's state (the checkpoint it wrote on its final, clean stop,
restored into a fresh aggregator) with the ground truth computed independently from the events the
test produced: per SLO series, the period's total and bad counts must be equal. Any event lost or
counted twice would show as a difference; the tests report both (`lost`, `doubled`) and require 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sloguard.broker import LocalBroker, free_port
from sloguard.checkpoint import DirectoryStore, load_latest
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event
from sloguard.core.spec import Config
from sloguard.ingest.kafka import KafkaConfig
from sloguard.ingest.kafka_producer import BatchProducer
from sloguard.specfile import parse_config
from tests.integration.test_daemon import encode
from tests.support import groundtruth as gt

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SLOS = """\
apiVersion: sloguard/v1
slos:
  - name: by-endpoint
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [endpoint]
  - name: by-customer
    service: checkout
    objective: 99
    sli: {type: latency, threshold_ms: 200}
    window: 30d
    group_by: [customer]
    max_series: 200000
    export: {top_k: 10}
latency:
  group_by: [service, endpoint]
  windows: [5m, 1h]
"""
CONFIG = parse_config(SLOS, "slos.yaml")
PARTITIONS = 3
HOUR_MS = 3_600_000


def make_events(n: int, seed: int, customers: int, endpoint_of_partition: bool = False) -> list[Event]:
    """Events 2 to 4 hours old (inside every period, whatever the buckets' alignment), many customers."""
    rnd = random.Random(seed)
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        out.append(
            Event(
                ts_ms=now - 2 * HOUR_MS - rnd.randrange(2 * HOUR_MS),
                service=rnd.choice(("checkout", "checkout", "checkout", "search")),
                endpoint=f"GET /p{i % PARTITIONS}"
                if endpoint_of_partition
                else rnd.choice(("GET /v1/cart", "POST /v1/orders", "GET /v1/orders")),
                customer=f"cust-{rnd.randrange(customers):06d}",
                status=rnd.choice((200, 200, 200, 200, 500, 503, 404)),
                latency_ms=round(rnd.lognormvariate(4.5, 1.0), 3),
            )
        )
    return out


def send(bootstrap: str, topic: str, events: list[Event], batches: int = 1, pause_s: float = 0.0) -> None:
    """Produce ``events[i]`` to partition ``i % PARTITIONS`` in ``batches`` steps."""

    async def main() -> None:
        async with BatchProducer(KafkaConfig(bootstrap, (topic,))) as producer:
            step = -(-len(events) // batches)
            for lo in range(0, len(events), step):
                futures = []
                chunk = list(enumerate(events))[lo : lo + step]
                for p in range(PARTITIONS):
                    values = [encode(e) for i, e in chunk if i % PARTITIONS == p]
                    futures += await producer.send(topic, p, values)
                await producer.flush()
                await asyncio.gather(*futures)
                if pause_s:
                    await asyncio.sleep(pause_s)

    asyncio.run(main())


# -- the daemon as a process --------------------------------------------------------------------------


@dataclass
class DaemonProc:
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path
    log: IO[bytes]

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def status(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode()

    def tail(self, n: int = 4000) -> str:
        self.log.flush()
        return self.log_path.read_bytes()[-n:].decode(errors="replace")

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(30)

    def terminate(self, bound_s: float) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(bound_s)


@dataclass
class Daemons:
    broker: LocalBroker
    topic: str
    group: str
    tmp: Path
    started: list[DaemonProc] = field(default_factory=list)

    def start(self, checkpoint_dir: Path, **env: str) -> DaemonProc:
        port = free_port()
        log_path = self.tmp / f"daemon-{len(self.started)}.log"
        log = log_path.open("wb")
        environment = {
            **os.environ,
            "SLOGUARD_KAFKA__BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "SLOGUARD_KAFKA__TOPICS": self.topic,
            "SLOGUARD_KAFKA__GROUP_ID": self.group,
            "SLOGUARD_KAFKA__SESSION_TIMEOUT_MS": "3000",
            "SLOGUARD_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
            "SLOGUARD_KAFKA__MAX_RECORDS": "2000",
            "SLOGUARD_COMMIT_INTERVAL_SECONDS": "0.5",
            "SLOGUARD_CHECKPOINT__DIR": str(checkpoint_dir),
            "SLOGUARD_CHECKPOINT__INTERVAL": "0.2",
            "SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS": "20",
            "SLOGUARD_TICK_SECONDS": "0.5",
            "SLOGUARD_LOG_FORMAT": "json",
            **env,
        }
        slos = self.tmp / "slos.yaml"
        slos.write_text(SLOS)
        popen = subprocess.Popen(
            [sys.executable, "-m", "sloguard", "run", "--config", str(slos), "--listen", f"127.0.0.1:{port}"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc = DaemonProc(popen, port, log_path, log)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for p in self.started:
            if p.popen.poll() is None:
                p.popen.kill()
                p.popen.wait(30)
            p.log.close()


@pytest.fixture
def daemons(broker: LocalBroker, tmp_path: Path) -> Iterator[Daemons]:
    topic = f"faults-{os.getpid()}-{random.randrange(1 << 30)}"
    broker.create_topics([topic], PARTITIONS)
    d = Daemons(broker, topic, f"g-{topic}", tmp_path)
    try:
        yield d
    finally:
        d.stop_all()


def wait(cond: object, limit_s: float, what: str, proc: DaemonProc | None = None) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        with contextlib.suppress(OSError, KeyError, ValueError):
            if cond():  # type: ignore[operator]
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f"\n{proc.tail()}" if proc else ""))
        time.sleep(0.1)


def consumed_all(proc: DaemonProc, expected_checkout: int) -> bool:
    """All partitions read to the end and the by-endpoint period holds every checkout event."""
    m = proc.scrape()
    lag = [v for (name, _), v in m.items() if name == "sloguard_consumer_lag"]
    period = sum(
        v
        for (name, lab), v in m.items()
        if name == "sloguard_slo_events"
        and dict(lab).get("slo") == "by-endpoint"
        and dict(lab)["window"] == "period"
    )
    return len(lag) == PARTITIONS and not any(lag) and period >= expected_checkout


# -- comparing state with the ground truth --------------------------------------------------------------


@dataclass
class Diff:
    lost: int = 0
    doubled: int = 0
    series: int = 0

    def __str__(self) -> str:
        return f"{self.series} series compared, {self.lost} events lost, {self.doubled} counted twice"


def state_in(checkpoint_dir: Path, config: Config = CONFIG) -> tuple[Aggregator, int]:
    found = load_latest(DirectoryStore(checkpoint_dir), lambda name, why: None)
    assert found is not None, f"no checkpoint in {checkpoint_dir}"
    agg = Aggregator(config)
    agg.restore_state(found[1].state)
    return agg, found[1].created_ms


def compare(aggs: list[tuple[Aggregator, int]], events: list[Event], config: Config = CONFIG) -> Diff:
    """Period totals and bad counts of every series, summed over ``aggs``, against the ground truth."""
    diff = Diff()
    for i, spec in enumerate(config.slos):
        got: dict[tuple[str, ...], list[int]] = {}
        for agg, now in aggs:
            snap = agg.snapshot(now).slos[i]
            for r, labels in enumerate(snap.labels):
                c = got.setdefault(labels, [0, 0])
                c[0] += int(snap.period_total[r])
                c[1] += int(snap.period_bad[r])
        start, end = gt.period_bounds(spec, min(now for _, now in aggs))
        want = gt.counts(spec, events, start, end)
        for key in set(want) | set(got):
            w = want.get(key, (0, 0))
            g = got.get(key, [0, 0])
            diff.series += 1
            for gv, wv in zip(g, w, strict=True):
                diff.lost += max(0, wv - gv)
                diff.doubled += max(0, gv - wv)
    return diff


# -- scenarios -------------------------------------------------------------------------------------------


def test_sigkill_at_random_points_then_restart_loses_and_doubles_nothing(daemons: Daemons) -> None:
    """Seven SIGKILLs while events stream in (two of them while a checkpoint file is being written),
    a restart after each; the final state equals the ground truth exactly."""
    rnd = random.Random(20261128)
    ckpt = daemons.tmp / "ckpt"
    events = make_events(140_000, seed=11, customers=40_000)
    rounds = 7
    chunks = [events[r::rounds] for r in range(rounds)]
    caught_mid_write = 0
    for r, chunk in enumerate(chunks):
        proc = daemons.start(ckpt)
        producer = threading.Thread(
            target=send, args=(daemons.broker.bootstrap, daemons.topic, chunk, 10, 0.15)
        )
        producer.start()
        if r in (2, 5):
            # Kill while a checkpoint is being written: a temp file exists between open and rename.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.popen.poll() is None:
                if any(name.startswith(".tmp-") for name in os.listdir(ckpt) if ckpt.exists()):
                    proc.kill()
                    caught_mid_write += 1
                    break
        else:
            time.sleep(rnd.uniform(0.5, 4.0))
        if proc.popen.poll() is None:
            proc.kill()
        producer.join(60)
        assert proc.popen.returncode == -signal.SIGKILL, proc.tail()
    assert caught_mid_write == 2, "never saw a checkpoint mid-write"

    final = daemons.start(ckpt)
    expected = sum(1 for e in events if e.service == "checkout")
    wait(lambda: consumed_all(final, expected), 120, "the restarted daemon to catch up", final)
    assert final.terminate(30) == 0, final.tail()
    diff = compare([state_in(ckpt)], events)
    print(f"SIGKILL x{rounds} ({caught_mid_write} mid-checkpoint): {diff}")
    assert (diff.lost, diff.doubled) == (0, 0), diff


def test_sigterm_exits_0_with_final_checkpoint_and_commit(daemons: Daemons) -> None:
    ckpt = daemons.tmp / "ckpt"
    events = make_events(30_000, seed=12, customers=5_000)
    send(daemons.broker.bootstrap, daemons.topic, events)
    proc = daemons.start(ckpt)
    expected = sum(1 for e in events if e.service == "checkout")
    wait(lambda: consumed_all(proc, expected), 120, "consumption", proc)
    started = time.monotonic()
    assert proc.terminate(25) == 0, proc.tail()
    took = time.monotonic() - started
    found = load_latest(DirectoryStore(ckpt), lambda name, why: None)
    assert found is not None
    # The last checkpoint is the shutdown one and holds every offset; the group committed the same.
    assert found[1].info["reason"] == "shutdown"
    per_partition = [len(events[p::PARTITIONS]) for p in range(PARTITIONS)]
    assert found[1].offsets == {(daemons.topic, p): n for p, n in enumerate(per_partition)}
    committed = asyncio.run(committed_offsets(daemons))
    assert committed == found[1].offsets
    diff = compare([state_in(ckpt)], events)
    print(f"SIGTERM: exit 0 after {took:.2f} s (bound 20 s); {diff}")
    assert (diff.lost, diff.doubled) == (0, 0)


async def committed_offsets(daemons: Daemons) -> dict[tuple[str, int], int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=daemons.broker.bootstrap, group_id=daemons.group)
    await consumer.start()
    try:
        out = {}
        for p in range(PARTITIONS):
            value = await consumer.committed(TopicPartition(daemons.topic, p))
            if value is not None:
                out[(daemons.topic, p)] = value
        return out
    finally:
        await consumer.stop()


@pytest.mark.parametrize("leave", ["sigterm", "sigkill"])
def test_second_daemon_joins_and_leaves_each_partition_counted_once(daemons: Daemons, leave: str) -> None:
    """A second daemon joins the group mid-stream, then leaves (cleanly or killed). Each daemon's durable
    state (its last checkpoint) plus the other's covers every partition's events exactly once."""
    events = make_events(60_000, seed=13, customers=3_000, endpoint_of_partition=True)
    thirds = [events[i::3] for i in range(3)]
    ckpt_a, ckpt_b = daemons.tmp / "a", daemons.tmp / "b"
    a = daemons.start(ckpt_a)
    send(daemons.broker.bootstrap, daemons.topic, thirds[0], 5, 0.1)
    b = daemons.start(ckpt_b)
    wait(lambda: b.status("/readyz")[0] == 200 and bool(b.scrape()), 60, "b ready", b)
    send(daemons.broker.bootstrap, daemons.topic, thirds[1], 10, 0.1)
    gap: list[Event] = []
    if leave == "sigterm":
        assert b.terminate(25) == 0, b.tail()
    else:
        b.kill()
        # Until the session times out (3 s) nobody owns b's partitions: its last commit is what a
        # takes over from. Events between that commit and b's last checkpoint are the only ones both
        # can hold (a crash between a checkpoint's write and its commit, a window of one commit).
        committed = asyncio.run(committed_offsets(daemons))
        found = load_latest(DirectoryStore(ckpt_b), lambda name, why: None)
        in_partition = [thirds[0][p::PARTITIONS] + thirds[1][p::PARTITIONS] for p in range(PARTITIONS)]
        if found is not None:
            for (_, p), offset in found[1].offsets.items():
                gap += in_partition[p][committed.get((daemons.topic, p), 0) : offset]
    send(daemons.broker.bootstrap, daemons.topic, thirds[2], 5, 0.1)
    sent = thirds[0] + thirds[1] + thirds[2]
    expected_total = sum(1 for e in sent if e.service == "checkout")

    def caught_up() -> bool:
        # a alone now owns every partition; its state plus b's last checkpoint holds every event.
        m = a.scrape()
        lag = [v for (name, _), v in m.items() if name == "sloguard_consumer_lag"]
        return len(lag) == PARTITIONS and not any(lag)

    wait(caught_up, 120, "a to own every partition and catch up", a)
    assert a.terminate(25) == 0, a.tail()
    states = [state_in(ckpt_a)]
    if any(ckpt_b.glob("checkpoint-*")):
        states.append(state_in(ckpt_b))
    diff = compare(states, sent)
    # by-endpoint has one series per partition (endpoint GET /p<partition>): per-partition counts.
    # Each checkout event of the gap is in both SLOs, so it counts twice in `doubled` per SLO.
    explained = 2 * sum(1 for e in gap if e.service == "checkout")
    print(
        f"group change ({leave}): {diff}; {expected_total} checkout events; checkpoint-commit gap {len(gap)}"
    )
    assert diff.lost == 0, diff
    assert diff.doubled == explained, (diff, len(gap))
