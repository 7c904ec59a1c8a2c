"""Where stage 2's CPU goes, in-process, on real partial records: cold (every series new), then warm.

``python -m benchmarks.merge_parts [--events 2M] [--span-minutes 20] [--partials 12] [--repeat 2]``

1. A local Tansu broker gets `benchmarks.scale`'s backlog: ``--events`` events at 50 services x 40
   endpoints x 5000 customers, stamped evenly over the ``--span-minutes`` before now (2M over 20 minutes
   is bench-scale's density: 1M over ten), for bench-scale's SLO file.
2. One ``sloguard run --stage partial`` (a process, as in bench-scale) turns it into partial records, on a
   partials topic of ``--partials`` partitions (default 12, as `sloguard topics create`), which are read
   back. One merge process owns them all here: ``--partials 1`` against 12 tells what holding a partition
   apiece costs (an aggregator each).
3. In this process, what a merge process does with them, per partials partition (`Merger`), timed with
   CPU time: each partition's records in offset order, cut into a first and a second half. Each half is
   decoded, offered and flushed (`Merger.offer`, `Merger.aggregator`). Then every partition's counts are
   copied out (`owned_counts`), evaluated, and rendered (gzip) once: what a scrape asks for. The second
   half meets the series the first one made: the steady state of a merge tier. ``--repeat`` runs it anew
   on fresh mergers and keeps each part's minimum.

Prints CPU ms per part for each half, per 1M input events, and the total as a share of bench-scale's
stage-1 cost given by ``--stage1-us`` (its last run: 3.21 µs an event), for reading against the goal
of docs/scaling.md (stage 2 at most 10 % of stage 1's CPU per event). The records are those of this
run: compare the parts within it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from dataclasses import dataclass

from benchmarks.cardinality import PARTITIONS, _size
from benchmarks.harness import EVENTS, OUT, say
from benchmarks.scale import backlog, produce, scale_slos, stage_env, started, topic_records, until

PARTS = ("decode", "offer + flush", "capture", "evaluate", "render")


@dataclass(frozen=True)
class Records:
    """The partial records of a backlog: (partials partition, value) in offset order per partition."""

    events: int
    partitions: int
    records: list[tuple[int, bytes]]
    now_ms: int


async def partials(events: int, span_ms: int, partitions: int) -> Records:
    """Run stage 1 on a fresh broker, with a partials topic of ``partitions``, and read its partial
    records back."""
    from sloguard.broker import LocalBroker

    config = OUT / "merge-parts-slos.yaml"
    config.write_text(scale_slos())
    with LocalBroker() as broker:
        topic = "merge-parts"
        broker.create_topics([topic], PARTITIONS)
        now = time.time_ns() // 1_000_000
        messages = backlog(events, now, span_ms=span_ms)
        say(f"backlog: {events:,} events in {len(messages):,} messages over {span_ms / 60_000:g} minutes")
        await produce(broker.bootstrap, topic, messages)
        extra = {"SLOGUARD_SCALE__PARTIALS_PARTITIONS": str(partitions)}
        env = stage_env(broker.bootstrap, topic, "merge-parts", "stage 1", extra)
        with started(config, "partial", "merge-parts-stage1", env, None) as p:
            await until([p], EVENTS, events, 120 + events / 10_000)
        count, records = await topic_records(broker.bootstrap, f"{topic}-sloguard-partials")
    say(f"stage 1: {len(records):,} partial records, {sum(len(v) for _, v in records) / 1e6:.1f} MB")
    return Records(events, count, records, now)


def halves(data: Records) -> list[list[tuple[int, bytes]]]:
    """Each partition's records cut in two, in offset order: the first halves, then the second ones."""
    by = [[v for p, v in data.records if p == part] for part in range(data.partitions)]
    return [
        [(p, v) for p, vs in enumerate(by) for v in vs[: len(vs) // 2]],
        [(p, v) for p, vs in enumerate(by) for v in vs[len(vs) // 2 :]],
    ]


def apply(data: Records) -> list[dict[str, float]]:
    """One run on fresh mergers: CPU seconds per part, for each half."""
    from sloguard.core.aggregator import Aggregator
    from sloguard.export.collector import Exposition
    from sloguard.scale.codec import decode_piece
    from sloguard.scale.merger import Merger, held_bytes_each
    from sloguard.scale.stage1 import decode_fingerprint
    from sloguard.scale.view import ViewCache, owned_counts
    from sloguard.settings import Settings
    from sloguard.specfile import load_config
    from sloguard.telemetry import Telemetry

    config = load_config(OUT / "merge-parts-slos.yaml")
    fp = decode_fingerprint(config, Settings())
    base = Aggregator(config)
    mergers = [Merger(config, fp, p, data.partitions) for p in range(data.partitions)]
    for m in mergers:  # (as a merge process owning them all sets them)
        m.held_limit = held_bytes_each(data.partitions)
    view = ViewCache()
    exposition = Exposition(sloth_compat=False, top_k={}, version="bench")
    telemetry = Telemetry().snapshot()
    clock = time.process_time
    now = data.now_ms + 5_000
    out = []
    for half in halves(data):
        took: dict[str, float] = {}
        t = clock()
        pieces = [(p, decode_piece(v)) for p, v in half]
        took["decode"] = clock() - t
        t = clock()
        for p, piece in pieces:
            mergers[p].offer(piece)
        for m in mergers:
            m.aggregator  # noqa: B018 - the flush of what is held
        took["offer + flush"] = clock() - t
        t = clock()
        counts = owned_counts(base, mergers, now, view)
        took["capture"] = clock() - t
        t = clock()
        snapshot = counts.evaluate()
        took["evaluate"] = clock() - t
        t = clock()
        exposition.render_body(snapshot, telemetry, gzip=True)
        took["render"] = clock() - t
        out.append(took)
        now += 1_000
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.merge_parts", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=_size, default=2_000_000, help="backlog events (default 2M)")
    p.add_argument("--span-minutes", type=float, default=20.0, help="event times spread (default 20)")
    p.add_argument("--repeat", type=int, default=2, help="runs on fresh mergers (default 2; min kept)")
    p.add_argument(
        "--partials", type=int, default=12, help="partials partitions, all owned here (default 12)"
    )
    p.add_argument("--stage1-us", type=float, default=3.21, help="stage 1's CPU per event, µs (3.21)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    OUT.mkdir(parents=True, exist_ok=True)
    data = asyncio.run(partials(args.events, int(args.span_minutes * 60_000), args.partials))
    gc.collect()
    gc.freeze()  # as both stages do after start-up
    gc.disable()
    runs = [apply(data) for _ in range(args.repeat)]
    per_m = 1e6 / (args.events / 2) * 1e3  # seconds of a half -> ms per 1M input events
    print()
    print(
        f"stage 2 in-process on {len(data.records):,} partial records of {args.events:,} events "
        f"({data.partitions} partials partitions); CPU ms per 1M input events, min of {args.repeat}"
    )
    head = f"{'half':<26}" + "".join(f"{k:>15}" for k in PARTS) + f"{'total':>10}{'of stage 1':>12}"
    print(head)
    print("-" * len(head))
    for i, name in enumerate(("first (cold)", "second (warm)")):
        parts = [min(r[i][k] for r in runs) * per_m for k in PARTS]
        total = sum(parts)
        share = total / 1e3 / args.stage1_us * 100  # ms per 1M events = ns an event
        print(f"{name:<26}" + "".join(f"{v:>15.0f}" for v in parts) + f"{total:>10.0f}{share:>11.0f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
