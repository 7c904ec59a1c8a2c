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
    rules = sub.add_parser("rules", help="print Prometheus alerting rules for an SLO file")
    rules.add_argument("file", nargs="?", help="SLO file (apiVersion: sloguard/v1); or --config")
    rules.add_argument("--config", "-c", dest="config", help="SLO file (same as the positional FILE)")
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

    run = sub.add_parser("run", help="the daemon: consume request logs from Kafka, serve /metrics")
    run.add_argument("--config", "-c", help="SLO file (default: $SLOGUARD_CONFIG)")
    run.add_argument("--listen", help="HOST:PORT for /metrics, /healthz, /readyz (default 0.0.0.0:9464)")
    run.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (default localhost:9092)")
    run.add_argument("--topics", help="comma-separated topics to consume (default: requests)")
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

    # Its options live in sloguard.loadgen, imported only when used: it pulls in aiokafka, which would
    # slow every other command's start (replay's benchmark counts start-up CPU).
    lg = sub.add_parser(
        "loadgen", help="produce realistic request-log events to Kafka (--help for options)", add_help=False
    )
    lg.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `sloguard replay ... | head`: the reader left; that is not an error of ours.
        sys.stderr.close()
        return 0


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["loadgen"]:
        from sloguard.loadgen import cli_main

        return cli_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "rules":
        if (args.file is None) == (args.config is None):
            parser.error("rules: give the SLO file once, as FILE or as --config FILE")
        args.file = args.file or args.config
    if args.command == "run":
        return _run(args)
    from sloguard.specfile import SpecError, describe, load_config

    try:
        config = load_config(args.config if args.command == "replay" else args.file)
    except SpecError as exc:
        print(f"sloguard: invalid SLO file:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        print(describe(config))
        return 0
    if args.command == "rules":
        return _rules(args, config)
    return _replay(args, config)


#: `run`'s flags over the settings: flag -> (settings section, or "" for the top level; key).
_RUN_FLAGS = {
    "config": ("", "config"),
    "listen": ("", "listen"),
    "tick_seconds": ("", "tick_seconds"),
    "sloth_compat": ("", "sloth_compat"),
    "log_format": ("", "log_format"),
    "ui": ("", "ui"),
    "bootstrap_servers": ("kafka", "bootstrap_servers"),
    "topics": ("kafka", "topics"),
    "group_id": ("kafka", "group_id"),
    "dead_letter_topic": ("kafka", "dead_letter_topic"),
    "checkpoint_dir": ("checkpoint", "dir"),
    "checkpoint_interval": ("checkpoint", "interval"),
}


def _run_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The flags given on the command line, shaped like the settings (they win over the environment)."""
    overrides: dict[str, object] = {}
    for flag, (section, key) in _RUN_FLAGS.items():
        value = getattr(args, flag)
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
        print(f"sloguard: invalid SLO file:\n{exc}", file=sys.stderr)
        return 2
    from sloguard.app import run
    from sloguard.ingest.kafka import TopicsMissingError

    try:
        return asyncio.run(run(settings, config))
    except TopicsMissingError as exc:
        log.error("topics_missing", error=str(exc))
        print(f"sloguard: {exc}", file=sys.stderr)
        return 2


def _rules(args: argparse.Namespace, config: object) -> int:
    from pathlib import Path

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
    text = to_yaml(doc)
    if args.output is None or args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


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
