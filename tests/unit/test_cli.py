"""The command line in-process: check, replay progress, exit codes."""

from __future__ import annotations

import io
from pathlib import Path

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
