"""`make run` for now: a synthetic request log replayed through the SLO engine.

Generates (once, cached) a realistic two-day request log with error bursts and a latency regression,
checks the example SLO file, replays the log with it and prints the per-series table, worst budget
first. The live Kafka daemon (`sloguard run`) will replace this as `make run`'s main job.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks import datagen
from sloguard.cli import main as sloguard

CONFIG = Path(__file__).resolve().parent.parent / "config" / "slos.example.yaml"
EVENTS = 300_000


def main() -> int:
    log = datagen.ensure(EVENTS, seed=7)
    print(f"request log: {log} ({EVENTS:,} events)\n", flush=True)
    if rc := sloguard(["check", str(CONFIG)]):
        return rc
    print(f"\n$ sloguard replay {log.name} --config {CONFIG.name}\n", flush=True)
    return sloguard(["replay", str(log), "--config", str(CONFIG), "--progress", "always"])


if __name__ == "__main__":
    sys.exit(main())
