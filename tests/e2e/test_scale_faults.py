"""The two stages as real processes against Tansu, killed at named points (docs/scaling.md, issue 10).

A seeded data set over 12 input partitions (NDJSON records of 1-4 lines, event times out of order, four
SLOs, one by customer, a latency group by service and endpoint) is produced in three waves. The
reference is one `sloguard run` process (no ``--stage``) fed the same topic in its own group. Meanwhile
the two stages run as processes in a scenario of faults (`sloguard.scale.faults` names the points):

1. 1 partial + 2 merge processes; the partial SIGKILLs itself after producing a round before committing
   it, its successor in the middle of producing a range, the next one after its intents before the
   commit; a merge process SIGKILLs itself during a checkpoint round. Each is replaced.
2. Scale up to 3 partial + 3 merge processes; one merge process is SIGSTOPped while data flows until its
   session expired and the other two own every partials partition, then resumed: a zombie that still
   believes it owns its partitions.
3. Scale down to 1 partial + 2 merge processes (SIGTERM).

Once both groups have caught up, every ``sloguard_slo_*``/``sloguard_latency_*`` series is exported by
exactly one merge process, with the reference's value, and some merge process dropped duplicate partial
records (``sloguard_partials_duplicate_total`` > 0: the duplicate path ran).

Event times are 8 to 10 hours old, so whatever second the processes are scraped at, no event crosses the
edge of a window (windows up to 6 h hold none, 1 d, 3 d and the period all; the latency windows are 12 h
and 1 d): the reference and the stages can be compared although each reads its own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sloguard.broker import LocalBroker, free_port
from sloguard.ingest.kafka import KafkaConfig
from sloguard.ingest.kafka_producer import BatchProducer
from tests.e2e.test_faults import DaemonProc
from tests.integration.test_stages import CONSTANTS, Sample, assert_identical, make_records, samples
from tests.integration.test_stages import SLOS as STAGES_SLOS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SLOS = STAGES_SLOS.replace("windows: [5m, 1h]", "windows: [12h, 1d]")
INPUT_PARTITIONS = 12
PARTIALS = 4
HOUR_MS = 3_600_000
SESSION_TIMEOUT_MS = 3000
#: Where the partial processes kill themselves, in turn (`sloguard.scale.faults`).
STAGE1_POINTS = (
    "stage1.after_produce_before_commit",
    "stage1.mid_produce",
    "stage1.after_intent_before_commit",
)
#: Self-metrics named like series but counted per process (stage 2: per partition): sums must agree.
PER_PROCESS = ("sloguard_excluded_events_total",)
COUNTERS = (
    "sloguard_partials_applied_total",
    "sloguard_partials_duplicate_total",
    "sloguard_partials_conflict_total",
    "sloguard_partials_refused_total",
)


def records_for(seed: int, n: int) -> list[bytes]:
    now = int(time.time() * 1000)
    return make_records(now - 8 * HOUR_MS, seed, n)


def produce(bootstrap: str, topic: str, records: list[bytes], batches: int = 1, pause_s: float = 0.0) -> None:
    """Record ``i`` to partition ``i % INPUT_PARTITIONS``, in ``batches`` steps."""

    async def main() -> None:
        async with BatchProducer(KafkaConfig(bootstrap, (topic,))) as producer:
            step = -(-len(records) // batches)
            for lo in range(0, len(records), step):
                futures = []
                for p in range(INPUT_PARTITIONS):
                    chunk = [
                        r for i, r in enumerate(records[lo : lo + step], lo) if i % INPUT_PARTITIONS == p
                    ]
                    futures += await producer.send(topic, p, chunk)
                await asyncio.gather(*futures)
                if pause_s:
                    await asyncio.sleep(pause_s)

    asyncio.run(main())


@dataclass
class Proc:
    name: str
    stage: str
    daemon: DaemonProc
    #: Highest value seen of each stage-2 counter (a killed process takes its counters with it).
    seen: dict[str, float] = field(default_factory=dict)
    #: SIGSTOPped: not scraped meanwhile.
    stopped: bool = False

    @property
    def alive(self) -> bool:
        return self.daemon.popen.poll() is None

    def text(self) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.daemon.port}/metrics", timeout=10) as resp:
            body: bytes = resp.read()
            return body


@dataclass
class Cluster:
    broker: LocalBroker
    topic: str
    tmp: Path
    procs: list[Proc] = field(default_factory=list)

    def env(self, group: str) -> dict[str, str]:
        return {
            **os.environ,
            "SLOGUARD_KAFKA__BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "SLOGUARD_KAFKA__TOPICS": self.topic,
            "SLOGUARD_KAFKA__GROUP_ID": group,
            "SLOGUARD_KAFKA__SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "SLOGUARD_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
            "SLOGUARD_KAFKA__MAX_RECORDS": "200",
            "SLOGUARD_COMMIT_INTERVAL_SECONDS": "0.5",
            "SLOGUARD_CHECKPOINT__INTERVAL": "0.5",
            "SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS": "20",
            "SLOGUARD_TICK_SECONDS": "0.5",
            "SLOGUARD_LOG_FORMAT": "json",
            "SLOGUARD_LOG_LEVEL": "debug",
            "SLOGUARD_SCALE__PARTIALS_PARTITIONS": str(PARTIALS),
            "SLOGUARD_SCALE__CHECKPOINTS_PARTITIONS": "2",
            "SLOGUARD_SCALE__RANGE_MAX_RECORDS": "25",
        }

    def slo_file(self) -> Path:
        path = self.tmp / "slos.yaml"
        path.write_text(SLOS)
        return path

    def create_topics(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "sloguard", "topics", "create"],
            env=self.env("unused"),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr.decode()

    def start(self, name: str, stage: str, fault: str | None = None) -> Proc:
        port = free_port()
        log_path = self.tmp / f"{name}.log"
        log = log_path.open("wb")
        env = self.env("ref" if stage == "single" else "stages")
        if fault is not None:
            env["SLOGUARD_FAULT"] = fault
        args = [sys.executable, "-m", "sloguard", "run", "--config", str(self.slo_file())]
        args += ["--listen", f"127.0.0.1:{port}", "--stage", stage]
        if stage == "single":
            args.append("--no-ui")
        popen = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        proc = Proc(name, stage, DaemonProc(popen, port, log_path, log))
        self.procs.append(proc)
        return proc

    def live(self, stage: str) -> list[Proc]:
        return [p for p in self.procs if p.stage == stage and p.alive]

    def observe(self) -> None:
        """Scrape every live stage process; keep the highest stage-2 counters each showed."""
        for p in self.procs:
            if p.stage != "merge" or not p.alive or p.stopped:
                continue
            with contextlib.suppress(OSError):
                for family in text_string_to_metric_families(p.text().decode()):
                    for s in family.samples:
                        if s.name.startswith("sloguard_partials_"):
                            p.seen[s.name] = max(p.seen.get(s.name, 0.0), s.value)

    def stop_all(self) -> None:
        """SIGTERM what still runs (their last words are in the logs), SIGKILL what does not stop."""
        for p in self.procs:
            if p.alive:
                p.daemon.popen.send_signal(signal.SIGCONT)
                p.daemon.popen.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.daemon.popen.wait(25)
            except subprocess.TimeoutExpired:
                p.daemon.popen.kill()
                p.daemon.popen.wait(30)
            p.daemon.log.close()


@pytest.fixture
def cluster(broker: LocalBroker, tmp_path: Path) -> Iterator[Cluster]:
    topic = f"scale-{uuid.uuid4().hex[:8]}"
    broker.create_topics([topic], INPUT_PARTITIONS)
    c = Cluster(broker, topic, tmp_path)
    try:
        yield c
    finally:
        c.stop_all()


def until(
    cond: Callable[[], bool], limit_s: float, what: str, cluster: Cluster, detail: list[str] | None = None
) -> None:
    """Poll ``cond`` until true; on timeout fail with every process's log tail and ``detail``."""
    deadline = time.monotonic() + limit_s
    while True:
        cluster.observe()
        with contextlib.suppress(OSError, ValueError):
            if cond():
                return
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.daemon.tail(1500)}" for p in cluster.procs)
            raise AssertionError(f"timed out waiting for {what}: {detail or ''}\n{tails}")
        time.sleep(0.3)


def ready(procs: list[Proc]) -> bool:
    """/readyz 200 (serving, so its SIGTERM handler is installed; assigned; restored)."""
    return all(p.daemon.status("/readyz")[0] == 200 for p in procs)


def killed_at(proc: Proc, point: str) -> bool:
    if proc.alive:
        return False
    assert proc.daemon.popen.returncode == -signal.SIGKILL, proc.daemon.tail()
    assert f"fault_point_reached {point}" in proc.daemon.tail(100_000), proc.daemon.tail()
    return True


def lag_of(proc: Proc) -> dict[str, float]:
    return {
        s.labels["partition"]: s.value
        for family in text_string_to_metric_families(proc.text().decode())
        for s in family.samples
        if s.name == "sloguard_consumer_lag"
    }


def lag_zero(proc: Proc, partitions: int) -> bool:
    lag = lag_of(proc)
    return len(lag) == partitions and not any(lag.values())


def owned(proc: Proc) -> int:
    return sum(
        int(s.value)
        for family in text_string_to_metric_families(proc.text().decode())
        for s in family.samples
        if s.name == "sloguard_partitions_owned"
    )


def series_of(text: bytes) -> dict[Sample, float]:
    """The series samples of an exposition; per-process counters named like series are summed apart."""
    return {k: v for k, v in samples(text).items() if not k[0].startswith(PER_PROCESS)}


def per_process(texts: list[bytes]) -> dict[Sample, float]:
    """The per-process ``sloguard_slo_*`` counters, summed over processes."""
    out: dict[Sample, float] = {}
    for text in texts:
        for k, v in samples(text).items():
            if k[0].startswith(PER_PROCESS):
                out[k] = out.get(k, 0.0) + v
    return out


def exported(merges: list[Proc]) -> list[dict[Sample, float]]:
    return [series_of(p.text()) for p in merges]


def test_stages_as_processes_with_faults_export_the_single_process_numbers(cluster: Cluster) -> None:
    started = time.monotonic()
    bootstrap, topic = cluster.broker.bootstrap, cluster.topic
    cluster.create_topics()
    waves = [records_for(seed, 1000) for seed in (1, 2, 3)]
    waves[0] += [b"{not json", b'{"ts": "yesterday", "service": "a"}']
    ref = cluster.start("reference", "single")

    # 1. One partial, two merges; the partials die at three named points in turn, a merge during a
    # checkpoint round; each is replaced.
    partial = cluster.start("partial-1", "partial", f"{STAGE1_POINTS[0]}:2")
    merges = [cluster.start("merge-1", "merge", "stage2.mid_checkpoint:2"), cluster.start("merge-2", "merge")]
    produce(bootstrap, topic, waves[0])
    for i, point in enumerate(STAGE1_POINTS):
        dying = partial
        until(functools.partial(killed_at, dying, point), 90, f"{dying.name} to die at {point}", cluster)
        following = STAGE1_POINTS[i + 1] if i + 1 < len(STAGE1_POINTS) else None
        partial = cluster.start(f"partial-{i + 2}", "partial", following and f"{following}:2")
        if following is not None:
            # Data for the next one to cut, produce and die on.
            produce(bootstrap, topic, waves[1][i * 100 : (i + 1) * 100])
    until(lambda: killed_at(merges[0], "stage2.mid_checkpoint"), 90, "merge-1 to die", cluster)
    merges.append(cluster.start("merge-3", "merge"))

    # 2. Scale to 3 + 3 while wave 2 streams in; merge-2 is stopped past its session timeout, resumed.
    feeder = threading.Thread(target=produce, args=(bootstrap, topic, waves[1][200:], 8, 0.5))
    feeder.start()
    partials = [partial, cluster.start("partial-5", "partial"), cluster.start("partial-6", "partial")]
    merges.append(cluster.start("merge-4", "merge"))
    zombie = merges[1]
    scaled = [*partials, *merges[1:]]
    until(lambda: ready(scaled), 90, "3 partial and 3 merge processes ready", cluster)
    until(lambda: bool(series_of(zombie.text())), 60, "merge-2 to export", cluster)
    zombie.daemon.popen.send_signal(signal.SIGSTOP)
    zombie.stopped = True
    # Stopped until its session expired and the other two took its partitions over.
    others = merges[2:]
    time.sleep(SESSION_TIMEOUT_MS / 1000)
    until(lambda: sum(owned(m) for m in others) == PARTIALS, 60, "merge-3/4 to take over", cluster)
    zombie.daemon.popen.send_signal(signal.SIGCONT)
    zombie.stopped = False
    feeder.join(120)

    # 3. Back to 1 partial and 2 merges while wave 3 arrives.
    produce(bootstrap, topic, waves[2], 4, 0.3)
    for p in (partials[1], partials[2], merges[3]):
        assert p.daemon.terminate(30) == 0, p.daemon.tail()
    final_partial, final_merges = partials[0], [merges[1], merges[2]]

    # Caught up: every process at the end of its input, the stages' series equal the reference's.
    until(lambda: lag_zero(ref, INPUT_PARTITIONS), 120, "the reference to catch up", cluster)
    until(lambda: lag_zero(final_partial, INPUT_PARTITIONS), 120, "stage 1 to catch up", cluster)
    want = series_of(ref.text())
    assert want, "the reference exports nothing"

    last: list[str] = []

    def same() -> bool:
        parts = [owned(m) for m in final_merges]
        if sum(parts) != PARTIALS:
            last[:] = [f"partials partitions owned: {parts}"]
            return False
        if not all(lag_zero(m, owned(m)) for m in final_merges):
            last[:] = [f"merge lag: {[lag_of(m) for m in final_merges]}"]
            return False
        try:
            assert_identical(want, exported(final_merges))
        except AssertionError as exc:
            last[:] = [str(exc)[:3000]]
            return False
        return True

    until(same, 120, "the merge stages to export the reference's numbers", cluster, last)
    got = exported(final_merges)
    assert_identical(want, got)  # every series from exactly one merge process, with the same value
    assert_identical(series_of(ref.text()), [want])  # the reference did not move meanwhile
    assert per_process([m.text() for m in final_merges]) == per_process([ref.text()])
    owners = [len([k for k in g if not k[0].startswith(CONSTANTS)]) for g in got]
    assert all(owners), f"a final merge process exports no series: {owners}"

    cluster.observe()
    merge_procs = [p for p in cluster.procs if p.stage == "merge"]
    total = {k: sum(p.seen.get(k, 0.0) for p in merge_procs) for k in COUNTERS}
    assert total["sloguard_partials_duplicate_total"] > 0, total
    assert total["sloguard_partials_conflict_total"] == 0, total
    assert total["sloguard_partials_refused_total"] == 0, total
    # The zombie was one: the group had moved on when it woke up.
    assert "consumer group membership lost" in zombie.daemon.tail(10_000_000), zombie.daemon.tail()
    for p in (final_partial, *final_merges, ref):
        assert p.daemon.terminate(30) == 0, p.daemon.tail()
    print(
        f"scaled stages under faults: {len(want)} samples equal to the single process's, "
        f"series per final merge process {owners}, counters {total}, "
        f"{time.monotonic() - started:.1f} s"
    )
