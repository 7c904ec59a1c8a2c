"""`sloguard report sla`: the command's flags and what it does (docs/sla.md).

Light at import (argparse only): `sloguard.cli` builds every command's parser at start-up; the decoder
and numpy are imported when the command runs.

With --checkpoint DIR_OR_FILE (a daemon checkpoint directory: its newest good checkpoint), the report
is of the period the checkpoint's live SLA counters hold, as of the checkpoint (--now: another time in
that period); --month only checks that it is that month. The SLO file must be the one the daemon ran.

Exit status: 0 the report is written; 2 a usage error, an unreadable input, SLO file or checkpoint,
an SLO file without the SLA asked for, or a checkpoint without that SLA's counts (of that month); 3 no
event of any reported SLA in the range.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sloguard.core.sla import SlaSpec
    from sloguard.core.spec import Config
    from sloguard.report_sla.run import SlaReport

#: No event of any SLA's SLO in the range: every customer would be missing, not 100 %.
EXIT_NO_DATA = 3

CHECKPOINT_USAGE = (
    "report sla --checkpoint: the report is of the period the checkpoint holds; give no request-log files "
    "and no --from/--to (--month checks the month)"
)


def _month(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if not m or not 1 <= int(m[2]) <= 12 or not 2000 <= int(m[1]) <= 2099:
        raise argparse.ArgumentTypeError(f"--month: expected YYYY-MM such as 2026-11, got {text!r}")
    return int(m[1]), int(m[2])


def _instant(text: str) -> int:
    """RFC 3339 with a zone, or a date (midnight UTC), as epoch ms."""
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time or a date: {text!r}") from exc
    if t.tzinfo is None and len(text) > 10:
        raise argparse.ArgumentTypeError(f"needs a time zone (Z or +HH:MM): {text!r}")
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="reports over request logs (sla: per-customer SLA credits)")
    kinds = report.add_subparsers(dest="report", required=True)
    p = kinds.add_parser(
        "sla",
        help="per customer and SLA: attainment, downtime periods, credit tier (JSON, CSV or HTML)",
        epilog=__doc__.split("\n\n")[-1] if __doc__ else None,
    )
    p.add_argument("files", nargs="*", help="NDJSON request-log files, plain or gzip, or - for stdin")
    p.add_argument("--slo", "--config", "-c", dest="slo_file", required=True, help="SLO file with slas:")
    p.add_argument("--sla", action="append", help="report this SLA only (repeatable; default: all)")
    p.add_argument("--month", type=_month, help="a calendar month, YYYY-MM, in each SLA's time zone")
    p.add_argument("--from", dest="start", type=_instant, help="range start, RFC 3339 or a date (UTC)")
    p.add_argument("--to", dest="end", type=_instant, help="range end (exclusive)")
    p.add_argument(
        "--now", type=_instant, help="evaluate at this time (default: the clock), clipped to the range end"
    )
    p.add_argument("--format", choices=("json", "csv", "html"), default="json")
    p.add_argument("--output", "-o", help="write the report here (default: stdout)")
    p.add_argument(
        "--checkpoint",
        help="a daemon checkpoint directory (its newest) or file instead of logs: the period it holds",
    )


def command(args: argparse.Namespace) -> int:
    from sloguard.cli import fail, spec_error

    if args.checkpoint is not None:
        if args.files or args.start is not None or args.end is not None:
            return fail(CHECKPOINT_USAGE)
    elif not args.files:
        return fail("report sla: give the request-log files to read (or - for stdin)")
    elif (args.month is None) == (args.start is None and args.end is None):
        return fail("report sla: give either --month YYYY-MM or --from and --to")
    elif args.month is None and (args.start is None or args.end is None or args.end <= args.start):
        return fail("report sla: --from and --to are both needed, --to after --from")
    from sloguard.specfile import SpecError, load_config

    try:
        config = load_config(args.slo_file)
    except SpecError as exc:
        return spec_error(exc)
    slas = [s for s in config.slas if not args.sla or s.name in args.sla]
    missing = sorted(set(args.sla or ()) - {s.name for s in config.slas})
    if missing or not slas:
        known = ", ".join(s.name for s in config.slas) or "none"
        what = f"no SLA named {', '.join(missing)}" if missing else "no slas: section"
        return fail(f"{args.slo_file}: {what} (SLAs in the file: {known})")
    return _report(args, config, slas)


def _from_checkpoint(
    args: argparse.Namespace, config: Config, specs: list[SlaSpec]
) -> tuple[SlaReport, int] | str:
    """The SLAs evaluated from the checkpoint's counters and the time they were evaluated at (``--now``,
    default when the checkpoint was taken), or why not."""
    from sloguard.core.model import Rejections
    from sloguard.report_sla import from_checkpoint
    from sloguard.report_sla.run import SlaReport

    try:
        where, cp = from_checkpoint.read(args.checkpoint)
        counters = from_checkpoint.counters(where, cp, config, specs, args.month)
    except from_checkpoint.CheckpointReportError as exc:
        return f"report sla: {exc}"
    now = args.now if args.now is not None else cp.created_ms
    results = [c.evaluate(min(now, c.end_ms)) for c in counters]
    # Records the daemon refused are in its metrics, not in a checkpoint.
    return SlaReport(results, Rejections(), cp.state.events), now


def _report(args: argparse.Namespace, config: Config, specs: list[SlaSpec]) -> int:
    import msgspec

    from sloguard.cli import fail
    from sloguard.cli import write_output as write
    from sloguard.report import rfc3339
    from sloguard.report_sla import html, render

    got = (_from_checkpoint if args.checkpoint is not None else _from_logs)(args, config, specs)
    if isinstance(got, str):
        return fail(got)
    result, now = got
    doc = render.to_dict(result.results, result.invalid.counts, result.events)
    for r in result.results:
        for w in r.warnings:
            print(f"sloguard: warning: {r.spec.name}: {w}", file=sys.stderr)
    if args.format == "json":
        text = msgspec.json.encode(doc).decode() + "\n"
    elif args.format == "csv":
        text = render.to_csv(result.results)
    else:
        text = html.to_html(doc, rfc3339(now))
    status = write(text, args.output, "SLA report")
    if status == 0 and not any(r.events for r in result.results):
        return fail("report sla: no event of the SLAs' SLOs in the range", EXIT_NO_DATA)
    return status


def _from_logs(args: argparse.Namespace, config: Config, specs: list[SlaSpec]) -> tuple[SlaReport, int] | str:
    """The SLAs evaluated over the request logs and the time they were evaluated at, or why not."""
    from sloguard.ingest.source import FileSource, SourceError, check_paths
    from sloguard.report_sla.run import Range, run
    from sloguard.settings import SettingsError, input_preset

    span = Range(month=args.month) if args.month else Range(start_ms=args.start, end_ms=args.end)
    try:
        for sla in specs:
            start, end = span.bounds(sla)
            if (end - start) % (sla.measure.slice_seconds * 1000):
                return f"report sla: the range is not a whole number of {sla.name}'s slices"
        preset = input_preset()
        check_paths(args.files)
        now = args.now if args.now is not None else int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        result = run(FileSource(args.files), config, specs, span, now, preset)
    except SourceError as exc:
        return str(exc)
    except SettingsError as exc:
        return f"invalid settings: {exc}"
    return result, now
