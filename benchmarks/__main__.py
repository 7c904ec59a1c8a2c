"""``python -m benchmarks`` (``make bench``): sloguard replay against mtail on the same request log.

1. Generate (or reuse from ``benchmarks/out/``) two request logs of ``--events`` NDJSON lines each, the
   same events: ``plain`` (the configured keys in order, nothing else) and ``realistic`` (extra fields, a
   nested request object, long user agents with escapes and UTF-8, keys shuffled per line; mtail gets a
   program with one regex per field, ``benchmarks/mtail/realistic/``). Steps 2-4 run per file.
2. Run ``sloguard replay FILE --config benchmarks/slos.bench.yaml --format json`` as a child process.
3. If mtail is installed (as root, an ``apt-get install`` is tried once), run
   ``mtail --one_shot`` with ``benchmarks/mtail/requests.mtail`` on the same file and check that it
   counted every line.
4. Print events per CPU-second for each (CPU = user + system of that child alone, from ``wait4``),
   wall time, peak RSS, the lines each decode path read (byte fast path, msgspec bulk, msgspec per
   line: any fallback shows) and the replay/mtail ratio against the target (5x; goal 8x), per file.

Before timing, sloguard's modules are byte-compiled, as installing a wheel does: an editable checkout
compiles them on first import, and not at all into files when PYTHONDONTWRITEBYTECODE is set (as in some
CI and sandboxes), so that every timed run would compile sloguard's source again (~30 ms of CPU here).
``--no-compile`` skips this step.

With ``--repeat K`` each tool runs K times and the run with the least CPU is kept (as timeit does).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import datagen, measure, mtail_tool
from benchmarks.harness import tail
from benchmarks.measure import Row

HERE = Path(__file__).resolve().parent
OUT = datagen.OUT_DIR
CONFIG = HERE / "slos.bench.yaml"
TARGET, GOAL = 5.0, 8.0


def _byte_compile() -> None:
    """Write the .pyc files of sloguard's modules (beside them, in __pycache__, as any import would)."""
    import compileall

    if not compileall.compile_dir(str(HERE.parent / "sloguard"), quiet=1):
        print("WARNING: could not byte-compile sloguard", file=sys.stderr)


def _best(runs: list[measure.Child]) -> measure.Child:
    return min(runs, key=lambda c: c.cpu_s)


def _run(name: str, argv: list[str], repeat: int) -> measure.Child | None:
    """Run ``argv`` ``repeat`` times (output in benchmarks/out/<name>.out/.err); None if it failed."""
    runs = []
    for i in range(repeat):
        print(f"running {name} ({i + 1}/{repeat}): {' '.join(argv)}", file=sys.stderr)
        child = measure.run(argv, OUT / f"{name}.out", OUT / f"{name}.err", cwd=OUT)
        if child.returncode != 0:
            print(f"{name} failed with exit status {child.returncode}:", file=sys.stderr)
            print(tail(OUT / f"{name}.err", 20), file=sys.stderr)
            return None
        runs.append(child)
    return _best(runs)


def _check_replay(events: int) -> None:
    """Warn unless replay's report says it took every line as a valid event."""
    try:
        report = json.loads((OUT / "replay.out").read_bytes())
    except ValueError as exc:
        print(f"WARNING: replay output is not JSON ({exc})", file=sys.stderr)
        return
    seen = report.get("events")
    invalid = {reason: n for reason, n in (report.get("invalid") or {}).items() if n}
    if seen != events or invalid:
        print(f"WARNING: replay reports events={seen}, invalid={invalid}; the file has {events} lines")


def _check_mtail(events: int) -> None:
    """Warn unless mtail's counter and histogram both saw every line."""
    try:
        requests, observed = mtail_tool.counted(OUT / "mtail.out")
    except (ValueError, KeyError, TypeError) as exc:
        print(f"WARNING: cannot read mtail's metrics dump ({exc})")
        return
    if requests != events or observed != events:
        print(
            f"WARNING: mtail counted requests_total={requests}, latency observations={observed}; "
            f"the file has {events} lines: its regex missed lines, the comparison is not fair"
        )


def _stages(data: Path, events: int, repeat: int) -> tuple[list[Row], dict[str, int]]:
    """In-process decode-only and aggregate-only rows (skipped if those modules are not there), and the
    lines each decode path read."""
    argv = [sys.executable, "-m", "benchmarks.stages", str(data), str(CONFIG)]
    runs: list[dict[str, Any]] = []
    for _ in range(repeat):
        child = measure.run(argv, OUT / "stages.out", OUT / "stages.err", cwd=HERE.parent)
        if child.returncode == 3:  # sloguard's decode/aggregate pieces are not importable
            print(f"(decode/aggregate rows skipped: {tail(OUT / 'stages.err', 1)})", file=sys.stderr)
            return [], {}
        if child.returncode != 0:
            print(f"decode/aggregate rows failed (exit {child.returncode}):", file=sys.stderr)
            print(tail(OUT / "stages.err", 10), file=sys.stderr)
            return [], {}
        runs.append(json.loads((OUT / "stages.out").read_text()))
    s = min(runs, key=lambda r: r["decode_cpu_s"] + r["ingest_cpu_s"])
    rows = [
        Row("  decode only", events, s["decode_cpu_s"], s["decode_wall_s"]),
        Row(
            "  aggregate only",
            events,
            s["ingest_cpu_s"] + s["snapshot_cpu_s"],
            s["ingest_wall_s"] + s["snapshot_wall_s"],
        ),
    ]
    return rows, dict(s.get("paths") or {})


def _table(rows: list[Row]) -> str:
    head = f"{'tool':<28} {'events':>10} {'CPU s':>8} {'wall s':>8} {'events/CPU-s':>13} {'peak RSS MiB':>13}"
    lines = [head, "-" * len(head)]
    for r in rows:
        wall = f"{r.wall_s:8.2f}" if r.wall_s is not None else f"{'-':>8}"
        rss = f"{r.peak_rss_kib / 1024:13.1f}" if r.peak_rss_kib is not None else f"{'-':>13}"
        lines.append(f"{r.tool:<28} {r.events:>10,} {r.cpu_s:8.2f} {wall} {r.events_per_cpu_s:>13,.0f} {rss}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=1_000_000, help="lines in the generated log (default 1M)")
    p.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    p.add_argument("--repeat", type=int, default=1, help="runs per tool; the least CPU is kept")
    p.add_argument("--no-mtail", action="store_true", help="skip the mtail baseline")
    p.add_argument("--no-stages", action="store_true", help="skip the in-process decode/aggregate rows")
    p.add_argument(
        "--files",
        choices=("both", "plain", "realistic"),
        default="both",
        help="which request log(s) to run on (default both; see the module docstring)",
    )
    p.add_argument("--json", action="store_true", help=f"also write {OUT / 'results.json'}")
    p.add_argument("--check", action="store_true", help="exit 1 if the ratio is below the 5x target")
    p.add_argument(
        "--no-compile",
        action="store_true",
        help="do not byte-compile sloguard before timing (see the module docstring)",
    )
    return p


def _data(events: int, seed: int, realistic: bool) -> Path:
    """The request log: reused from the cache, or generated into it."""
    OUT.mkdir(parents=True, exist_ok=True)
    data = datagen.cached_path(events, seed, realistic)
    if data.exists():
        print(f"reusing {data}", file=sys.stderr)
    else:
        print(f"generating {events:,} events -> {data}", file=sys.stderr)
        t0 = time.perf_counter()
        datagen.generate(events, data, seed, realistic)
        print(f"  done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return data


def _mtail(args: argparse.Namespace, data: Path, progs: Path) -> tuple[Row | None, str | None, str]:
    """mtail's row (None if skipped or failed), its version, and the verdict should there be no row."""
    verdict = "SKIPPED (--no-mtail)" if args.no_mtail else "SKIPPED (mtail not installed)"
    binary = None if args.no_mtail else mtail_tool.find()
    if binary is None:
        return None, None, verdict
    version = mtail_tool.version(binary)
    mtail = _run("mtail", mtail_tool.argv(binary, data, progs), args.repeat)
    if mtail is None:
        return None, version, "SKIPPED (mtail failed)"
    _check_mtail(args.events)
    label = "mtail " + (version.split()[2] if len(version.split()) > 2 else "")
    return Row(label.strip(), args.events, mtail.cpu_s, mtail.wall_s, mtail.peak_rss_kib), version, verdict


def _compare(name: str, replay: Row, mtail: Row | None, verdict: str) -> tuple[float | None, str]:
    """Print replay / mtail events per CPU-second against the target; (the ratio, the verdict)."""
    if mtail is None:
        print(f"\n{name}: replay / mtail: {verdict}")
        return None, verdict
    ratio = replay.events_per_cpu_s / mtail.events_per_cpu_s
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    goal = "goal met" if ratio >= GOAL else f"goal {GOAL:g}x not met"
    print(
        f"{name}: replay / mtail events per CPU-second: {ratio:.2f}x  {verdict}"
        f" (target >= {TARGET:g}x; {goal})"
    )
    return ratio, verdict


class Result:
    """One request log's rows, ratio and verdict."""

    def __init__(self, name: str, data: Path, rows: list[Row], paths: dict[str, int]) -> None:
        self.name, self.data, self.rows, self.paths = name, data, rows, paths
        self.ratio: float | None = None
        self.verdict = ""
        self.mtail_version: str | None = None


def _write_json(args: argparse.Namespace, results: list[Result]) -> None:
    out: dict[str, Any] = {
        "events": args.events,
        "seed": args.seed,
        "repeat": args.repeat,
        "byte_compiled": not args.no_compile,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "target": TARGET,
        "goal": GOAL,
        "files": {
            r.name: {
                "file": str(r.data),
                "mtail_version": r.mtail_version,
                "rows": [
                    {**asdict(row), "tool": row.tool.strip(), "events_per_cpu_s": row.events_per_cpu_s}
                    for row in r.rows
                ],
                "decode_paths": r.paths,
                "ratio": r.ratio,
                "verdict": r.verdict,
            }
            for r in results
        },
    }
    (OUT / "results.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT / 'results.json'}")


def _one_file(args: argparse.Namespace, name: str) -> Result | None:
    """Replay, the stages and mtail on one request log (None if replay failed)."""
    realistic = name == "realistic"
    data = _data(args.events, args.seed, realistic)
    replay_argv = [sys.executable, "-m", "sloguard", "replay", str(data), "--config", str(CONFIG)]
    replay = _run("replay", [*replay_argv, "--format", "json"], args.repeat)
    if replay is None:
        return None
    _check_replay(args.events)
    rows = [Row("sloguard replay", args.events, replay.cpu_s, replay.wall_s, replay.peak_rss_kib)]
    paths: dict[str, int] = {}
    if not args.no_stages:
        stage_rows, paths = _stages(data, args.events, args.repeat)
        rows += stage_rows
    result = Result(name, data, rows, paths)
    progs = mtail_tool.PROGS / "realistic" if realistic else mtail_tool.PROGS
    mtail_row, result.mtail_version, result.verdict = _mtail(args, data, progs)
    if mtail_row is not None:
        rows.append(mtail_row)
    return result


def _print(args: argparse.Namespace, result: Result, mtail_row: Row | None) -> None:
    size = result.data.stat().st_size / 2**20
    print(f"\n{result.name}: {result.data.name}, {args.events:,} events, {size:.0f} MiB")
    print(_table(result.rows))
    if result.paths:
        p = result.paths
        print(f"decode paths (lines): fast {p['fast']:,}, bulk {p['bulk']:,}, per-line {p['per_line']:,}")
    result.ratio, result.verdict = _compare(result.name, result.rows[0], mtail_row, result.verdict)


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.repeat < 1 or args.events < 1:
        p.error("--events and --repeat must be at least 1")
    if not args.no_compile:
        _byte_compile()
    names = ("plain", "realistic") if args.files == "both" else (args.files,)
    results = []
    for name in names:
        result = _one_file(args, name)
        if result is None:
            return 1
        results.append(result)
    print(
        f"\nbest of {args.repeat}; python {platform.python_version()}, {os.cpu_count()} CPUs"
        f"{'; sloguard not byte-compiled beforehand' if args.no_compile else ''}"
    )
    for result in results:
        mtail_row = result.rows[-1] if result.rows[-1].tool.startswith("mtail") else None
        _print(args, result, mtail_row)
    if args.events < 1_000_000:
        print("(the target is set for 1M events: on small files start-up time dominates)")
    if args.json:
        _write_json(args, results)
    return 1 if args.check and any(r.verdict == "FAIL" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
