"""Where replay's CPU goes: the replay loop (read -> decode -> aggregate -> snapshot) run in this process,
with CPU time taken around each stage. File reading, start-up and the report are in neither stage.

``python -m benchmarks.stages FILE CONFIG`` prints one JSON object on stdout; exit status 3 means the
sloguard modules it needs are not importable, and the harness skips these rows.
"""

from __future__ import annotations

import gc
import json
import sys
import time

try:
    from sloguard.core.aggregator import Aggregator
    from sloguard.core.model import Rejections
    from sloguard.ingest.decode import Decoder
    from sloguard.ingest.source import FileSource
    from sloguard.replay import keep_freed_memory
    from sloguard.specfile import load_config
except ImportError as exc:
    MISSING: ImportError | None = exc
else:
    MISSING = None


def measure(path: str, config_path: str) -> dict[str, object]:
    """Decode and ingest every chunk of ``path``, then take one snapshot; CPU and wall per stage, and how
    many lines each decode path read (`DecodeStats`: byte fast path, msgspec bulk, msgspec per line).

    Set up as `sloguard.replay.replay` does: malloc keeps freed memory, the decoder interns labels into
    the aggregator's vocabularies, and the cyclic GC is paused."""
    keep_freed_memory()
    agg = Aggregator(load_config(config_path))
    decoder, invalid = Decoder(vocabs=agg.vocabs), Rejections()
    gc.disable()
    events = 0
    decode_cpu = ingest_cpu = decode_wall = ingest_wall = 0.0
    for record in FileSource([path]).records():
        c0, w0 = time.process_time(), time.perf_counter()
        batch = decoder.decode(record, invalid)
        c1, w1 = time.process_time(), time.perf_counter()
        agg.ingest(batch)
        c2, w2 = time.process_time(), time.perf_counter()
        events += len(batch)
        decode_cpu += c1 - c0
        decode_wall += w1 - w0
        ingest_cpu += c2 - c1
        ingest_wall += w2 - w1
    c0, w0 = time.process_time(), time.perf_counter()
    agg.snapshot(agg.default_now() or 0)
    snapshot_cpu, snapshot_wall = time.process_time() - c0, time.perf_counter() - w0
    return {
        "events": events,
        "invalid": invalid.total,
        "decode_cpu_s": decode_cpu,
        "decode_wall_s": decode_wall,
        "ingest_cpu_s": ingest_cpu,
        "ingest_wall_s": ingest_wall,
        "snapshot_cpu_s": snapshot_cpu,
        "snapshot_wall_s": snapshot_wall,
        "paths": decoder.stats.as_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m benchmarks.stages FILE CONFIG", file=sys.stderr)
        return 2
    if MISSING is not None:
        print(f"stages unavailable: {MISSING}", file=sys.stderr)
        return 3
    print(json.dumps(measure(args[0], args[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
