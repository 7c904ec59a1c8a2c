"""Decode and ingest cost per event at N customer series, in-process, wired as `sloguard run` wires them
(`Engine`: the decoder writes ids into the aggregator's vocabularies), on the lines of
`benchmarks.cardinality` (Zipf over N customers, every customer once first; 100 events a message).

``python -m benchmarks.decode_cardinality --sizes 1k,100k --events 1500000 --per-call 80``

Calls of ``--per-call`` messages (80: ~8k events, a getmany's worth) are decoded then ingested; the first
N events (and two calls) warm up. Times are thread CPU time (the box is shared). ``--ab`` alternates the
big-vocabulary label lookup (`StrLabels`) on and off call by call in the same run; ``--profile`` prints
cProfile's top functions of the decode instead.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time

from benchmarks.cardinality import SWEEP_SLOS, _size, backlog_parts
from sloguard.core.model import Rejections
from sloguard.engine import Engine
from sloguard.ingest.labelcache import StrLabels
from sloguard.specfile import parse_config


def run(n: int, events: int, per_call: int, ab: bool, profile: bool) -> str:
    msgs = [m for part in backlog_parts(n, events, int(time.time() * 1000)) for m in part]
    engine = Engine(parse_config(SWEEP_SLOS.format(cap=2 * n), "bench.yaml"))
    decoder, aggregator = engine.decoder, engine.aggregator
    rejections = Rejections()
    calls = [msgs[i : i + per_call] for i in range(0, len(msgs), per_call)]
    warm = (n // 100) // per_call + 2
    for call in calls[:warm]:
        aggregator.ingest(decoder.decode_many(call, rejections))
    rest = calls[warm:]
    gc.collect()
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        for call in rest:
            decoder.decode_many(call, rejections)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return ""
    decode = {True: 0.0, False: 0.0}
    rows = {True: 0, False: 0}
    ingest = 0.0
    default = StrLabels.MIN_NAMES
    try:
        for i, call in enumerate(rest):
            on = not ab or (i // 2) % 2 == 0
            StrLabels.MIN_NAMES = default if on else 10**12  # type: ignore[misc]  # A/B switch
            t0 = time.thread_time()
            batch = decoder.decode_many(call, rejections)
            t1 = time.thread_time()
            aggregator.ingest(batch)
            ingest += time.thread_time() - t1
            decode[on] += t1 - t0
            rows[on] += len(batch)
    finally:
        StrLabels.MIN_NAMES = default  # type: ignore[misc]
    total = rows[True] + rows[False]
    line = f"{n:>7} customers: decode {decode[True] / rows[True] * 1e9:6.0f} ns/ev"
    if ab:
        line += f" (without StrLabels {decode[False] / rows[False] * 1e9:.0f})"
    line += f", ingest {ingest / total * 1e9:6.0f} ns/ev, paths {decoder.stats.as_dict()}"
    return line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.decode_cardinality")
    p.add_argument("--sizes", default="1k,100k")
    p.add_argument("--events", type=int, default=1_500_000)
    p.add_argument("--per-call", type=int, default=80, help="messages (of 100 events) per decode call")
    p.add_argument("--ab", action="store_true", help="alternate StrLabels on/off call by call")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    for size in args.sizes.split(","):
        print(run(_size(size), args.events, args.per_call, args.ab, args.profile), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
