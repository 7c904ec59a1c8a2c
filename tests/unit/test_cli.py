"""The command line in-process: check, replay progress, exit codes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from sloguard.cli import main
from sloguard.replay import PROGRESS_MIN_BYTES, ProgressBar, wants_progress

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "slos.example.yaml"


def test_check_prints_every_slo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "checkout-availability" in out and "14.4" in out


def test_check_refuses_a_bad_file_naming_file_slo_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "slos.yaml"
    bad.write_text(
        "apiVersion: sloguard/v1\nslos:\n  - name: api\n    service: api\n    objective: 99.9\n"
        "    sli: {type: latency}\n    window: 30d\n"
    )
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "api" in err and "threshold_ms" in err


def test_progress_bar_draws_fraction_and_rate() -> None:
    out = io.StringIO()
    bar = ProgressBar("replay", out)
    bar._last = -1e9  # draw immediately
    bar(50, 100)
    bar.close()
    text = out.getvalue()
    assert "replay [" in text and " 50.0%" in text and "MiB/s" in text


def test_progress_only_for_big_files(tmp_path: Path) -> None:
    small = tmp_path / "small.ndjson"
    small.write_bytes(b"{}\n")
    big = tmp_path / "big.ndjson"
    big.write_bytes(b"\n" * PROGRESS_MIN_BYTES)
    assert not wants_progress([str(small)], "always")
    assert wants_progress([str(big)], "always")
    assert not wants_progress([str(big)], "never")
    assert not wants_progress(["-"], "always")


def test_rules_command_writes_a_rule_file(tmp_path: Path) -> None:
    out = tmp_path / "rules.yaml"
    assert main(["rules", str(EXAMPLE), "-o", str(out), "--runbook-url", "https://runbooks/{alert}"]) == 0
    text = out.read_text()
    assert "SloguardErrorBudgetBurn" in text and "sloguard-checkout-availability" in text
    assert "https://runbooks/SloguardErrorBudgetBurn" in text


# -- user mistakes end in one line and exit 2, never a traceback -----------------------------------------

LINE = (
    b'{"ts":"2026-01-01T00:00:00Z","service":"checkout","endpoint":"POST /v1/orders","customer":"acme",'
    b'"status":200,"latency_ms":12.5,"trace":{"id":"a1"}}\n'
)


def one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("sloguard: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert all(n in err for n in needles), err
    return err


def test_check_takes_the_file_as_config_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", str(EXAMPLE)]) == 0
    assert "checkout-availability" in capsys.readouterr().out
    assert main(["check", "--config", str(EXAMPLE)]) == 0
    with pytest.raises(SystemExit) as exit_:
        main(["check", str(EXAMPLE), "-c", str(EXAMPLE)])
    assert exit_.value.code == 2


def test_run_and_loadgen_share_flag_spellings() -> None:
    import argparse

    from sloguard.cli import _parser
    from sloguard.loadgen import add_arguments

    for flags in (
        ["--bootstrap-servers", "k:9092", "--topics", "t"],
        ["--bootstrap", "k:9092", "--topic", "t"],
    ):
        run = _parser().parse_args(["run", *flags])
        assert (run.bootstrap_servers, run.topics) == ("k:9092", "t")
        lg = argparse.ArgumentParser()
        add_arguments(lg)
        args = lg.parse_args(flags)
        assert (args.bootstrap, args.topic) == ("k:9092", "t")


def test_rules_into_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "missing" / "dir" / "x.yaml"
    assert main(["rules", str(EXAMPLE), "-o", str(out)]) == 2
    one_line_error(capsys, str(out), "does not exist")
    assert main(["rules", str(EXAMPLE), "-o", str(tmp_path)]) == 2
    one_line_error(capsys, str(tmp_path), "is a directory")


@pytest.mark.parametrize("command", ["check", "rules", "replay"])
def test_an_unreadable_slo_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    from pathlib import Path as P

    events = tmp_path / "e.ndjson"
    events.write_bytes(LINE)
    argv = {"check": [command], "rules": [command], "replay": [command, str(events)]}[command]
    assert main([*argv, "-c", str(tmp_path)]) == 2  # a directory
    one_line_error(capsys, str(tmp_path), "directory")

    real_open = P.open

    def denied(self: P, *args: Any, **kwargs: Any) -> Any:
        if self == EXAMPLE:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(P, "open", denied)  # tests run as root: chmod 000 would not stop us
    assert main([*argv, "-c", str(EXAMPLE)]) == 2
    one_line_error(capsys, str(EXAMPLE), "ermission denied")


def test_replay_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import gzip

    cfg = ["-c", str(EXAMPLE)]
    assert main(["replay", str(tmp_path), *cfg]) == 2
    one_line_error(capsys, str(tmp_path), "is a directory")
    truncated = tmp_path / "t.ndjson.gz"
    truncated.write_bytes(gzip.compress(LINE * 1000)[:-50])
    assert main(["replay", str(truncated), *cfg]) == 2
    one_line_error(capsys, str(truncated), "truncated gzip")
    good = tmp_path / "good.ndjson"
    good.write_bytes(LINE)
    assert main(["replay", str(good), str(tmp_path / "nope.ndjson"), *cfg]) == 2
    one_line_error(capsys, "nope.ndjson", "no such file")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "the input is empty"),
        (b"\x00\x01garbage\n{not json\n", "no valid event"),
        (LINE.replace(b'"checkout"', b'"Checkout"'), "matched an SLO"),
    ],
    ids=["empty", "garbage", "no-slo-matches"],
)
def test_replay_of_nothing_usable_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, needle: str
) -> None:
    from sloguard.cli import EXIT_NO_DATA

    path = tmp_path / "e.ndjson"
    path.write_bytes(data)
    assert main(["replay", str(path), "-c", str(EXAMPLE)]) == EXIT_NO_DATA == 3
    captured = capsys.readouterr()
    assert needle in captured.err and str(path) in captured.err
    assert captured.out.startswith("now ")  # the report is still printed


def test_replay_reports_unmatched_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    path = tmp_path / "e.ndjson"
    path.write_bytes(LINE + LINE.replace(b'"checkout"', b'"Checkout"'))
    assert main(["replay", str(path), "-c", str(EXAMPLE)]) == 0
    assert "matched no SLO 1" in capsys.readouterr().out
    assert main(["replay", str(path), "-c", str(EXAMPLE), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["unmatched"] == 1


def test_run_refuses_an_unreachable_broker_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sloguard.app
    from sloguard.ingest.kafka import KafkaStartError

    async def unreachable(*args: object, **kwargs: object) -> int:
        raise KafkaStartError("cannot reach Kafka at kafka:9092: KafkaConnectionError")

    monkeypatch.setattr(sloguard.app, "run", unreachable)
    assert main(["run", "-c", str(EXAMPLE), "--bootstrap-servers", "kafka:9092", "--log-format", "json"]) == 2
    assert "sloguard: cannot reach Kafka at kafka:9092" in capsys.readouterr().err


def test_the_default_now_rule_in_help_matches_the_code() -> None:
    from sloguard import replay
    from sloguard.cli import DEFAULT_NOW_HELP

    assert replay.OUTLIER_GAP_MS == 86_400_000 and "1 day" in DEFAULT_NOW_HELP
    assert replay.OUTLIER_SHARE == 1000 and "0.1%%" in DEFAULT_NOW_HELP
    assert f"at least {replay.OUTLIER_MIN}," in DEFAULT_NOW_HELP
    assert f"at most {replay.OUTLIER_MAX} " in DEFAULT_NOW_HELP


@pytest.mark.parametrize("now", ["9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2026-01-01T00:00:00"])
def test_replay_refuses_a_now_it_cannot_evaluate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], now: str
) -> None:
    path = tmp_path / "e.ndjson"
    path.write_bytes(LINE)
    with pytest.raises(SystemExit) as exit_:
        main(["replay", str(path), "-c", str(EXAMPLE), "--now", now])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--now" in err and now in err and "Traceback" not in err


class FullDisk(io.StringIO):
    def write(self, s: str) -> int:
        raise OSError(28, "No space left on device")


def test_a_full_disk_on_stdout_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        monkeypatch.setattr("sys.stdout", FullDisk())
        monkeypatch.setattr("sys.stderr", err := io.StringIO())
        assert main(["check", str(EXAMPLE)]) == 2
    assert err.getvalue() == "sloguard: cannot write to standard output: No space left on device\n"


def test_ctrl_c_is_no_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sloguard.replay

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sloguard.replay, "replay", interrupted)
    path = tmp_path / "e.ndjson"
    path.write_bytes(LINE)
    assert main(["replay", str(path), "-c", str(EXAMPLE)]) == 130
