"""Command line: `sloguard check`, `replay`, `rules`, `convert`, `run`, `report sla`, `loadgen`.

A user's mistake (a missing, unreadable or corrupt file, a bad flag or SLO file) ends in one line
``sloguard: PATH: what is wrong`` on stderr and exit status 2, never a traceback. `replay` exits 3 when
it read nothing usable: no valid event, or no event selected by any SLO (`EXIT_NO_DATA`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence

import msgspec

from sloguard import __version__
from sloguard.ingest.source import os_problem as _os_problem
from sloguard.report_sla import cli as report_sla


def _parse_now(text: str) -> int:
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--now: not an RFC 3339 time: {text!r}") from exc
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--now: needs a time zone (Z or +HH:MM): {text!r}")
    from sloguard.ingest.timestamps import MAX_TS_MS, MIN_TS_MS

    ms = int(t.timestamp() * 1000)
    if not MIN_TS_MS <= ms < MAX_TS_MS:  # the events' accepted range: a calendar period must exist
        raise argparse.ArgumentTypeError(f"--now: must be in 2000-01-01 .. 2099-12-31 (UTC): {text!r}")
    return ms


#: The rule of `sloguard.replay.OutlierHold`, for `--help` (here: building the parser imports no numpy).
DEFAULT_NOW_HELP = (
    "default: the end of the bucket holding the newest event, far-future outliers left out: the newest "
    "events (at most 0.1%%, at least 10, at most 1000 of them) when more than 1 day separates them "
    "from the rest; they are counted as after_now"
)

#: `replay` read no valid event, or none that any SLO selects: its report would be all 100 % budgets.
EXIT_NO_DATA = 3

_REPLAY_EPILOG = """exit status:
  0  the report is printed
  2  a usage error, or an input or SLO file that cannot be read (stderr names it)
  3  no valid event before now, or none matched any SLO (the report is still printed; stderr says why)"""


def _slo_file_args(p: argparse.ArgumentParser) -> None:
    """The SLO file as a positional FILE or as --config/-c FILE (every command takes both)."""
    p.add_argument("file", nargs="?", help="SLO file (apiVersion: sloguard/v1); or --config")
    p.add_argument("--config", "-c", dest="config", help="SLO file (same as the positional FILE)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sloguard", description="Streaming SLO monitoring.")
    p.add_argument("--version", action="version", version=f"sloguard {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    _slo_file_args(sub.add_parser("check", help="validate an SLO file and print a summary"))
    _replay_parser(sub)
    _rules_parser(sub)
    convert = sub.add_parser("convert", help="write the SLOs of an SLO file in another format (OpenSLO v1)")
    _slo_file_args(convert)
    convert.add_argument("--to", required=True, choices=("openslo",), help="openslo: OpenSLO v1 documents")
    convert.add_argument("--output", "-o", help="write the result here (default: stdout)")
    _run_parser(sub)
    report_sla.add_parser(sub)
    topics = sub.add_parser("topics", help="manage sloguard's internal Kafka topics (scaled-out mode)")
    topics.add_argument("action", choices=("create",), help="create the partials, cuts, checkpoints topics")
    topics.add_argument("--bootstrap-servers", "--bootstrap", help="Kafka bootstrap servers")
    topics.add_argument("--topics", "--topic", help="the input topics (their names give the defaults)")
    topics.add_argument("--partials-partitions", type=int, help="partials topic partitions (default 12)")
    topics.add_argument("--checkpoints-partitions", type=int, help="partitions of the checkpoints topic")
    # Its options live in sloguard.loadgen, imported only when used: it pulls in aiokafka, which would
    # slow every other command's start (replay's benchmark counts start-up CPU).
    lg = sub.add_parser(
        "loadgen", help="produce realistic request-log events to Kafka (--help for options)", add_help=False
    )
    lg.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _replay_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rp = sub.add_parser(
        "replay",
        help="evaluate SLOs over NDJSON request-log files",
        epilog=_REPLAY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rp.add_argument("files", nargs="+", help="NDJSON files, plain or gzip (any name), or - for stdin")
    rp.add_argument("--config", "-c", required=True, help="SLO file (apiVersion: sloguard/v1)")
    rp.add_argument("--now", type=_parse_now, help=f"evaluation time, RFC 3339 ({DEFAULT_NOW_HELP})")
    rp.add_argument("--format", choices=("json", "table"), default="table")
    rp.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr for large files (auto: when stderr is a terminal)",
    )


def _rules_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = sub.add_parser("rules", help="print Prometheus alerting rules for an SLO file")
    _slo_file_args(rules)
    rules.add_argument("--output", "-o", help="write the rule file here (default: stdout)")
    rules.add_argument(
        "--runbook-url", default="", help="runbook_url annotation of every alert; {alert} is the alert name"
    )
    rules.add_argument("--dashboard-url", default="", help="dashboard_url annotation of every alert")
    rules.add_argument(
        "--format",
        choices=("rules", "prometheusrule"),
        default="rules",
        help="rules: a Prometheus rule file; prometheusrule: a prometheus-operator PrometheusRule resource",
    )
    rules.add_argument("--namespace", help="metadata.namespace of the PrometheusRule (default: none)")
    rules.add_argument("--name", help="metadata.name of the PrometheusRule (default: sloguard-slos)")


def _run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="the daemon: consume request logs from Kafka, serve /metrics")
    run.add_argument("--config", "-c", help="SLO file (default: $SLOGUARD_CONFIG)")
    run.add_argument("--listen", help="HOST:PORT for /metrics, /healthz, /readyz (default 0.0.0.0:9464)")
    # --bootstrap and --topic: loadgen's spellings, accepted by both commands.
    run.add_argument(
        "--bootstrap-servers", "--bootstrap", help="Kafka bootstrap servers (default localhost:9092)"
    )
    run.add_argument("--topics", "--topic", help="comma-separated topics to consume (default: requests)")
    run.add_argument("--group-id", help="consumer group (default: sloguard)")
    run.add_argument("--dead-letter-topic", help="re-publish rejected records here, original bytes")
    run.add_argument("--tick-seconds", type=float, help="evaluation/render period (default 1)")
    run.add_argument(
        "--sloth-compat", action="store_true", default=None, help="also export Sloth's metric names"
    )
    run.add_argument("--log-format", choices=("auto", "json", "console"))
    run.add_argument("--checkpoint-dir", help="write checkpoints here and restore from them (default: none)")
    run.add_argument("--checkpoint-interval", type=float, help="seconds between checkpoints (default 30)")
    run.add_argument(
        "--no-ui", dest="ui", action="store_false", default=None, help="do not serve the web UI and /api/v1"
    )
    run.add_argument(
        "--stage",
        choices=("single", "partial", "merge"),
        help="scaled out (docs/scaling.md): partial = stage 1, merge = stage 2 (default: single process)",
    )


def fail(message: str, status: int = 2) -> int:
    """Print ``sloguard: message`` to stderr and return the exit status (2: a usage or input error)."""
    print(f"sloguard: {message}", file=sys.stderr)
    return status


def spec_error(exc: Exception) -> int:
    """An SLO file's problems: one line when there is one (each names the file and field)."""
    text = str(exc)
    return fail(text if "\n" not in text else f"invalid SLO file:\n{text}")


class _OutputError(Exception):
    """Standard output cannot be written (a full disk, a closed terminal)."""


def _out(data: str | bytes) -> None:
    """Write the command's result to standard output, flushed, so a failing write surfaces here
    (and not as a traceback at interpreter exit)."""
    try:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _OutputError(_os_problem(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `sloguard replay ... | head`: the reader left; that is not an error of ours.
        sys.stderr.close()
        return 0
    except _OutputError as exc:
        return fail(f"cannot write to standard output: {exc}")
    except KeyboardInterrupt:
        return 130  # Ctrl-C (128 + SIGINT), as a shell reports it; no traceback


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["loadgen"]:
        from sloguard.loadgen import cli_main

        return cli_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("check", "rules", "convert"):
        if (args.file is None) == (args.config is None):
            parser.error(f"{args.command}: give the SLO file once, as FILE or as --config FILE")
        args.file = args.file or args.config
    if args.command == "run":
        return _run(args)
    if args.command == "topics":
        return _topics(args)
    if args.command == "report":
        return report_sla.command(args)
    from sloguard.specfile import SpecError, describe, load_config

    path = args.config if args.command == "replay" else args.file
    try:
        config = load_config(path)
    except SpecError as exc:
        return spec_error(exc)
    except OSError as exc:  # what the SLO file loader does not word itself (permission denied, ...)
        return fail(f"{path}: {_os_problem(exc)}")
    preset = None
    # pydantic-settings only when a SLOGUARD_INPUT* variable exists: importing it is ~0.1 s of replay's
    # start-up, paid on every run for a variable almost no one sets.
    names_input = any(k.upper().startswith("SLOGUARD_INPUT") for k in os.environ)
    if args.command in ("check", "replay") and names_input:
        from sloguard.settings import SettingsError, input_preset

        try:
            preset = input_preset()  # used when the SLO file has no input: (its section wins)
        except SettingsError as exc:
            return fail(f"invalid settings: {exc}")
    if args.command == "check":
        _out(describe(config, input_preset=preset) + "\n")
        return 0
    if args.command == "rules":
        return _rules(args, config)
    if args.command == "convert":
        return _convert(args, config)
    return _replay(args, config, preset)


#: `run`'s flags over the settings: flag -> (settings section, or "" for the top level; key). A flag names
#: its setting, except the checkpoint ones (``--checkpoint-dir`` is ``checkpoint.dir``).
_RUN_FLAGS = {
    **{flag: ("", flag) for flag in ("config", "listen", "tick_seconds", "sloth_compat", "log_format")},
    **{flag: ("", flag) for flag in ("ui", "stage")},
    **{flag: ("kafka", flag) for flag in ("bootstrap_servers", "topics", "group_id", "dead_letter_topic")},
    **{flag: ("scale", flag) for flag in ("partials_partitions", "checkpoints_partitions")},
    "checkpoint_dir": ("checkpoint", "dir"),
    "checkpoint_interval": ("checkpoint", "interval"),
}


def _run_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The flags given on the command line, shaped like the settings (they win over the environment)."""
    overrides: dict[str, object] = {}
    for flag, (section, key) in _RUN_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        target = overrides if not section else overrides.setdefault(section, {})
        assert isinstance(target, dict)
        target[key] = value
    return overrides


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from sloguard import logs
    from sloguard.settings import SettingsError, load_settings
    from sloguard.specfile import SpecError, load_config

    overrides = _run_overrides(args)
    try:
        settings = load_settings(overrides)
    except SettingsError as exc:
        print(f"sloguard: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    log = logs.get_logger("sloguard")
    if settings.config is None:
        print("sloguard: run needs an SLO file: --config FILE or SLOGUARD_CONFIG", file=sys.stderr)
        return 2
    try:
        config = load_config(settings.config)
    except SpecError as exc:
        log.error("config_error", file=str(settings.config), problems=list(exc.problems))
        return spec_error(exc)
    from sloguard.app import run
    from sloguard.ingest.kafka import KafkaStartError, TopicsMissingError

    try:
        return asyncio.run(run(settings, config))
    except (TopicsMissingError, KafkaStartError) as exc:
        # Exit 2 as loadgen does: a wrong address or topic is a configuration error to fix.
        log.error("kafka_start_failed", error=str(exc))
        return fail(str(exc))


def _topics(args: argparse.Namespace) -> int:
    """`sloguard topics create`: the internal topics of the scaled-out mode (sloguard.scale.topics)."""
    import asyncio

    from sloguard.settings import SettingsError, load_settings

    try:
        settings = load_settings(_run_overrides(args))
    except SettingsError as exc:
        print(f"sloguard: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    from sloguard.ingest.kafka import KafkaStartError, TopicsMissingError
    from sloguard.scale.topics import create_topics

    try:
        lines = asyncio.run(create_topics(settings))
    except (TopicsMissingError, KafkaStartError, ValueError) as exc:
        return fail(str(exc))
    _out("".join(line + "\n" for line in lines))
    return 0


def _rules(args: argparse.Namespace, config: object) -> int:
    from sloguard.core.spec import Config
    from sloguard.rules import PROMETHEUS_RULE_NAME, generate, to_prometheus_rule, to_yaml

    assert isinstance(config, Config)
    if args.format != "prometheusrule" and (args.namespace is not None or args.name is not None):
        print("sloguard: --namespace and --name need --format prometheusrule", file=sys.stderr)
        return 2
    try:
        doc = generate(config, runbook_url=args.runbook_url, dashboard_url=args.dashboard_url)
    except ValueError as exc:
        print(f"sloguard: {args.file}: {exc}", file=sys.stderr)
        return 2
    if args.format == "prometheusrule":
        try:
            doc = to_prometheus_rule(doc, name=args.name or PROMETHEUS_RULE_NAME, namespace=args.namespace)
        except ValueError as exc:
            print(f"sloguard: {exc}", file=sys.stderr)
            return 2
    return write_output(to_yaml(doc), args.output, "rule file")


def write_output(text: str, output: str | None, what: str) -> int:
    """``text`` to standard output (no ``output``, or ``-``) or to the file ``output``."""
    from pathlib import Path

    if output is None or output == "-":
        _out(text)
        return 0
    out = Path(output)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        parent = out.parent
        problem = f"directory {parent} does not exist" if not parent.is_dir() else _os_problem(exc)
        return fail(f"{out}: cannot write the {what}: {problem}")
    return 0


def _convert(args: argparse.Namespace, config: object) -> int:
    from sloguard.core.spec import Config
    from sloguard.specfile.openslo.writer import dump, to_openslo

    assert isinstance(config, Config)
    docs, notes = to_openslo(config)
    for note in notes:
        print(f"sloguard: note: {args.file}: {note}", file=sys.stderr)
    return write_output(dump(docs), args.output, "OpenSLO file")


def _replay(args: argparse.Namespace, config: object, input_preset: str | None = None) -> int:
    from sloguard import report
    from sloguard.core.spec import Config
    from sloguard.ingest.decode import REASONS
    from sloguard.ingest.presets import effective_input, replay_refusal
    from sloguard.ingest.source import FileSource, SourceError, check_paths
    from sloguard.replay import ProgressBar, replay, wants_progress

    assert isinstance(config, Config)
    refusal = replay_refusal(effective_input(config.input, input_preset))
    if refusal is not None:  # binary records (otlp-proto): files are read as lines
        return fail(f"replay: {refusal}")
    bar = ProgressBar("replay") if wants_progress(args.files, args.progress) else None
    source = FileSource(args.files, on_progress=bar)
    try:
        check_paths(args.files)
        result = replay(source, config, now_ms=args.now, input_preset=input_preset)
        if bar is not None:
            bar.finish()
    except SourceError as exc:
        return fail(str(exc))
    finally:
        if bar is not None:
            bar.close()
    for note in source.notes:
        print(f"sloguard: note: {note}", file=sys.stderr)
    if result.outliers_from_ms is not None:
        since = report.rfc3339(result.outliers_from_ms)
        print(
            f"sloguard: note: {result.after_now} events stamped from {since} on, more than 1 day after the"
            " rest, are left out of the default --now (counted as after_now); give --now to include them",
            file=sys.stderr,
        )
    snap, unmatched = result.snapshot, result.unmatched
    if args.format == "json":
        doc = report.to_dict(snap, result.invalid, result.after_now, REASONS, unmatched=unmatched)
        _out(msgspec.json.encode(doc) + b"\n")
    else:
        _out(report.to_table(snap, result.invalid, after_now=result.after_now, unmatched=unmatched) + "\n")
    return _no_data(snap.events, unmatched, result.after_now, result.invalid.total, args.files)


def _no_data(events: int, unmatched: int, after_now: int, invalid: int, files: Sequence[str]) -> int:
    """0, or `EXIT_NO_DATA` with a line saying why when nothing usable was read: ``events`` valid
    events before now, ``unmatched`` of them in no SLO, ``after_now`` valid events left out."""
    inputs = ", ".join("standard input" if f == "-" else f for f in files)
    if events == 0 and after_now:
        return fail(f"all {after_now} valid events in {inputs} are at or after --now", EXIT_NO_DATA)
    if events == 0:
        why = f"{invalid} lines rejected, see 'invalid'" if invalid else "the input is empty"
        return fail(f"no valid event in {inputs} ({why})", EXIT_NO_DATA)
    if unmatched == events:
        return fail(
            f"none of the {events} valid events in {inputs} matched an SLO: check each SLO's service and "
            "endpoints against the events (names are case-sensitive)",
            EXIT_NO_DATA,
        )
    return 0
