"""The two stages against a real Tansu broker (docs/scaling.md): numbers identical to one aggregator.

A seeded data set over 16 input partitions (event times out of order over two hours, several SLOs, a
latency group, one SLO by customer, realistic lines with extra and nested fields and any key order) is
the reference when fed to one `Aggregator` in-process. Then 1 partial + 1 merge stage, and then 2 + 2 (so
partitions rebalance while they work), run as asyncio tasks, and every SLO and latency sample the merge
stages export at the same ``now`` must equal the reference's, each series exported by exactly one merge
stage.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sloguard.broker import LocalBroker
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Rejections
from sloguard.core.snapshot import Snapshot
from sloguard.core.spec import Config
from sloguard.export.collector import Exposition
from sloguard.ingest.decode import Decoder
from sloguard.ingest.kafka import KafkaConfig
from sloguard.ingest.kafka_producer import BatchProducer
from sloguard.scale.merger import held_bytes_each
from sloguard.scale.stage1 import PartialStage
from sloguard.scale.stage2 import MergeStage
from sloguard.scale.topics import create_topics
from sloguard.settings import Settings, load_settings
from sloguard.specfile import parse_config
from sloguard.telemetry import TelemetrySnapshot

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
    endpoints: ["POST /v1/orders"]
    objective: 99
    sli: {type: latency, threshold_ms: 300}
    window: 28d
  - name: search-per-customer
    service: search
    objective: 99.5
    sli: {type: latency, threshold_ms: 250}
    window: 30d
    group_by: [customer]
    resolution: {fine: 1m, coarse: 1h}
  - name: search-availability
    service: search
    objective: 99.5
    sli: {type: availability, bad_status: [5xx, 429]}
    window: 30d
latency:
  group_by: [service, endpoint]
  percentiles: [50, 90, 99]
  windows: [5m, 1h]
"""

INPUT_PARTITIONS = 16
PARTIALS = 4
Sample = tuple[str, tuple[tuple[str, str], ...]]
#: Per-SLO families that are the same in every process (from the SLO file, not the events).
CONSTANTS = (
    "sloguard_slo_info",
    "sloguard_slo_objective_ratio",
    "sloguard_slo_period_seconds",
    "sloguard_slo_burn_rate_threshold",
)


def make_records(now: int, seed: int, n: int) -> list[bytes]:
    """NDJSON records of 1-4 lines: extra and nested fields, shuffled key order, escapes."""
    rnd = random.Random(seed)
    records = []
    for _ in range(n):
        lines = []
        for _ in range(rnd.randint(1, 4)):
            service = rnd.choice(("checkout", "checkout", "search", "auth"))
            fields = {
                "ts": now - rnd.randrange(2 * 3_600_000),
                "service": service,
                "endpoint": rnd.choice(("GET /v1/cart", "POST /v1/orders", "GET /v1/search?q=\\u00e9")),
                "customer": rnd.choice(("acme", "globex", "initech", "umbrella", 'quo"ted')),
                "status": rnd.choice((200, 200, 200, 201, 429, 500, 503)),
                "latency_ms": round(rnd.lognormvariate(5.0, 0.8), 3),
                "trace_id": uuid.UUID(int=rnd.getrandbits(128)).hex,
                "http": {"method": "GET", "headers": {"user-agent": "curl/8.5"}},
            }
            items = list(fields.items())
            rnd.shuffle(items)
            lines.append(json.dumps(dict(items)))
        records.append("\n".join(lines).encode())
    return records


def reference(config: Config, records: Sequence[bytes]) -> Aggregator:
    agg = Aggregator(config)
    decoder = Decoder(vocabs=agg.vocabs)
    agg.ingest(decoder.decode_many(list(records), Rejections()))
    return agg


def samples(text: bytes) -> dict[Sample, float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            # Series samples only: the self-metrics about the latency state are per process, and
            # too_old depends on arrival order in every mode (docs/scaling.md).
            if s.name.startswith(("sloguard_slo_", "sloguard_latency_")) and not s.name.startswith(
                ("sloguard_latency_groups", "sloguard_latency_overflow", "sloguard_latency_too_old")
            ):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def render(snapshot: Snapshot) -> dict[Sample, float]:
    return samples(Exposition(version="test").render(snapshot, TelemetrySnapshot()))


def settings_for(bootstrap: str, topic: str, group: str, stage: str, tmp: Path | None) -> Settings:
    return load_settings(
        {
            "listen": "127.0.0.1:0",
            "stage": stage,
            "commit_interval_seconds": 0.5,
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topics": [topic],
                "group_id": group,
                "session_timeout_ms": 3000,
                "heartbeat_interval_ms": 500,
                "max_records": 300,
            },
            "checkpoint": {"interval": 0.5, **({"dir": str(tmp)} if tmp else {})},
            "scale": {"partials_partitions": PARTIALS, "checkpoints_partitions": 2, "range_max_records": 50},
        }
    )


async def produce(bootstrap: str, topic: str, records: list[bytes]) -> None:
    async with BatchProducer(KafkaConfig(bootstrap, (topic,))) as producer:
        futures = []
        for p in range(INPUT_PARTITIONS):
            futures += await producer.send(topic, p, records[p::INPUT_PARTITIONS])
        await asyncio.gather(*futures)


async def loop(stage: PartialStage | MergeStage, stopping: asyncio.Event) -> None:
    await stage.start()
    try:
        while not stopping.is_set():
            await stage.step(stopping)
    finally:
        await stage.close()


def caught_up(merges: Sequence[MergeStage], topic: str, sizes: dict[int, int]) -> bool:
    """Every partials partition owned once, and each has applied every input partition up to its end."""
    owned = [p for m in merges for p in m.owned]
    if sorted(owned) != list(range(PARTIALS)):
        return False
    for m in merges:
        for o in m.owned.values():
            done = o.merger.applied.next_offsets()
            if any(done.get((topic, p), 0) < n for p, n in sizes.items()) or o.merger.applied.pending:
                return False
    return True


async def wait(cond: Callable[[], bool], tasks: Sequence[asyncio.Task[None]], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        for t in tasks:
            if t.done():
                t.result()  # a stage that died: its exception
        assert time.monotonic() < deadline, "stages did not catch up"
        await asyncio.sleep(0.2)


async def run_stages(
    settings: list[Settings],
    config: Config,
    topic: str,
    sizes: dict[int, int],
    now: int,
    replay: Settings | None,
) -> tuple[list[MergeStage], list[Snapshot]]:
    """Run the stages until caught up (then, with ``replay``, a stage 1 in another group that re-reads
    everything: it follows the cuts log, so stage 2 must drop every record it makes as a duplicate);
    returns the merge stages and their snapshots at ``now``."""
    stopping = asyncio.Event()
    stages: list[PartialStage | MergeStage] = [
        PartialStage(s, config) if s.stage == "partial" else MergeStage(s, config) for s in settings
    ]
    merges = [s for s in stages if isinstance(s, MergeStage)]
    tasks = [asyncio.create_task(loop(s, stopping)) for s in stages]
    try:
        await wait(lambda: caught_up(merges, topic, sizes), tasks, 150)
        # Each owned partition holds at most its share of the process's held bodies.
        limits = [
            (o.merger.held_limit, held_bytes_each(len(m.owned))) for m in merges for o in m.owned.values()
        ]
        assert limits and all(got == want for got, want in limits), limits
        if replay is not None:
            again = PartialStage(replay, config)
            tasks.append(asyncio.create_task(loop(again, stopping)))
            total = sum(sizes.values())
            t = again.telemetry

            def replayed() -> bool:
                dups = sum(m.telemetry.partials_duplicate for m in merges)
                return t.records_consumed == total and t.partials_produced == dups > 0

            await wait(replayed, tasks, 150)
    finally:
        stopping.set()
        # Snapshot before closing: closing revokes and drops the partitions' state.
        snapshots = [m.export_snapshot(now) for m in merges]
        await asyncio.gather(*tasks)
    return merges, snapshots


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def assert_identical(ref: dict[Sample, float], exported: list[dict[Sample, float]]) -> None:
    union: dict[Sample, float] = {}
    for one in exported:
        for key, value in one.items():
            if key in union:
                # Only the per-SLO constants (objective, info, thresholds) may come from several.
                assert union[key] == value, key
                assert key[0].startswith(CONSTANTS), key
            union[key] = value
    missing = ref.keys() - union.keys()
    extra = union.keys() - ref.keys()
    assert not missing and not extra, (sorted(missing)[:5], sorted(extra)[:5])
    # NaN (no events in a window) equals NaN here.
    wrong = {
        k: (union[k], v) for k, v in ref.items() if union[k] != v and not (v != v and union[k] != union[k])
    }
    assert not wrong, list(wrong.items())[:5]


@pytest.mark.parametrize("shape", [(1, 1), (2, 2)], ids=["1partial-1merge", "2partial-2merge"])
async def test_stages_export_the_single_process_numbers(
    broker: LocalBroker, tmp_path: Path, shape: tuple[int, int]
) -> None:
    topic = f"req-{uuid.uuid4().hex[:8]}"
    broker.create_topics([topic], INPUT_PARTITIONS)
    now = (int(time.time() * 1000) // 60_000) * 60_000
    records = make_records(now, seed=sum(shape), n=1600)
    records += [b"{not json", b'{"ts": "yesterday", "service": "a"}']
    config = parse_config(SLOS, "slos.yaml")
    group = f"g-{uuid.uuid4().hex[:6]}"
    partial = settings_for(broker.bootstrap, topic, group, "partial", None)
    # `sloguard topics create`'s work; the checkpoints go to the Kafka topic (1+1) or a directory (2+2).
    lines = await create_topics(partial)
    assert [line.split(":")[0] for line in lines] == [
        f"{topic}-sloguard-{k}" for k in ("partials", "cuts", "checkpoints")
    ]
    await produce(broker.bootstrap, topic, records)
    sizes = {p: len(records[p::INPUT_PARTITIONS]) for p in range(INPUT_PARTITIONS)}
    ckdir = tmp_path if shape == (2, 2) else None
    merge = settings_for(broker.bootstrap, topic, group, "merge", ckdir)
    n_partial, n_merge = shape
    # 1+1: afterwards a stage 1 that lost its group's commits re-reads everything (the duplicate path).
    replay = (
        settings_for(broker.bootstrap, topic, group + "-again", "partial", None) if shape == (1, 1) else None
    )
    stages = [partial] * n_partial + [merge] * n_merge
    merges, snapshots = await run_stages(stages, config, topic, sizes, now, replay)
    ref = render(reference(config, records).snapshot(now))
    assert_identical(ref, [render(s) for s in snapshots])
    assert sum(m.telemetry.partials_refused + m.telemetry.partials_conflict for m in merges) == 0
    if replay is not None:
        assert sum(m.telemetry.partials_duplicate for m in merges) > 0
