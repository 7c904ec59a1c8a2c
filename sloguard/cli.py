"""Command line: `sloguard check FILE`, `sloguard replay FILE... --config SLOS.yaml`."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence

import msgspec

from sloguard import __version__


def _parse_now(text: str) -> int:
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--now: not an RFC 3339 time: {text!r}") from exc
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--now: needs a time zone (Z or +HH:MM): {text!r}")
    return int(t.timestamp() * 1000)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sloguard", description="Streaming SLO monitoring.")
    p.add_argument("--version", action="version", version=f"sloguard {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate an SLO file and print a summary")
    check.add_argument("file")

    rp = sub.add_parser("replay", help="evaluate SLOs over NDJSON request-log files")
    rp.add_argument("files", nargs="+", help="NDJSON files (.gz too), or - for stdin")
    rp.add_argument("--config", "-c", required=True, help="SLO file (apiVersion: sloguard/v1)")
    rp.add_argument(
        "--now",
        type=_parse_now,
        help="evaluation time, RFC 3339 (default: end of the bucket holding the newest event)",
    )
    rp.add_argument("--format", choices=("json", "table"), default="table")
    rp.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr for large files (auto: when stderr is a terminal)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `sloguard replay ... | head`: the reader left; that is not an error of ours.
        sys.stderr.close()
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    from sloguard.specfile import SpecError, describe, load_config

    try:
        config = load_config(args.config if args.command == "replay" else args.file)
    except SpecError as exc:
        print(f"sloguard: invalid SLO file:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        print(describe(config))
        return 0
    return _replay(args, config)


def _replay(args: argparse.Namespace, config: object) -> int:
    from sloguard import report
    from sloguard.core.spec import Config
    from sloguard.ingest.decode import REASONS
    from sloguard.ingest.source import FileSource
    from sloguard.replay import ProgressBar, replay, wants_progress

    assert isinstance(config, Config)
    bar = ProgressBar("replay") if wants_progress(args.files, args.progress) else None
    try:
        result = replay(FileSource(args.files, on_progress=bar), config, now_ms=args.now)
    except FileNotFoundError as exc:
        print(f"sloguard: {exc.filename}: no such file", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    if args.format == "json":
        sys.stdout.buffer.write(
            msgspec.json.encode(report.to_dict(result.snapshot, result.invalid, result.after_now, REASONS))
        )
        sys.stdout.buffer.write(b"\n")
    else:
        print(report.to_table(result.snapshot, result.invalid))
    return 0
