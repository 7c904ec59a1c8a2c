"""Restore and save time of `KafkaCheckpointStore` for a stage-2 process owning 12 partials partitions.

``python -m benchmarks.kafka_store [--partitions 12] [--checkpoint-partitions 4] [--rounds 3]``

Starts a local Tansu broker (`sloguard.broker.LocalBroker`), then per round, as `MergeStage._on_assign`
does: one store per partials partition (key ``<partials>/<p>`` on checkpoint partition
``p % checkpoint-partitions``), each restored side by side in a worker thread (``names()`` and ``read``
of the newest 3), timed as a whole; then every store saves one checkpoint, side by side, timed as a whole;
then the stores are closed (so the next round starts its clients again, as after a restart). Round 1
restores from an empty topic ("no checkpoint"), later rounds find the previous rounds' checkpoints.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

from sloguard.broker import LocalBroker
from sloguard.ingest.kafka import KafkaConfig
from sloguard.ingest.kafka_store import KafkaCheckpointStore

PARTIALS = "requests-sloguard-partials"
TOPIC = "requests-sloguard-checkpoints"


def restore(store: KafkaCheckpointStore) -> int:
    return sum(len(store.read(name)) for name in store.names()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--checkpoint-partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkpoint-bytes", type=int, default=200_000)
    args = parser.parse_args()
    with LocalBroker(stop_timeout_s=3.0) as broker:
        broker.create_topics([TOPIC], args.checkpoint_partitions)
        kafka = KafkaConfig(broker.bootstrap, (TOPIC,))
        pool = ThreadPoolExecutor(args.partitions)
        for r in range(1, args.rounds + 1):
            stores = [
                KafkaCheckpointStore(kafka, TOPIC, p % args.checkpoint_partitions, f"{PARTIALS}/{p}")
                for p in range(args.partitions)
            ]
            started = time.perf_counter()
            restored = list(pool.map(restore, stores))
            restore_s = time.perf_counter() - started
            data = os.urandom(args.checkpoint_bytes)
            started = time.perf_counter()
            list(pool.map(KafkaCheckpointStore.save, stores, [data] * len(stores)))
            save_s = time.perf_counter() - started
            started = time.perf_counter()
            for s in stores:
                s.close()
            close_s = time.perf_counter() - started
            print(
                f"round {r}: restore {restore_s * 1000:.0f} ms ({sum(1 for n in restored if n)} partitions "
                f"found a checkpoint), save {save_s * 1000:.0f} ms, close {close_s * 1000:.0f} ms",
                flush=True,
            )
        pool.shutdown()


if __name__ == "__main__":
    main()
