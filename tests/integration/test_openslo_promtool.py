"""Rules generated from an OpenSLO v1 stream (`sloguard rules` as a process) pass `promtool check rules`,
and are the very rules of the same SLOs written as a sloguard file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import require

pytestmark = pytest.mark.promtool

OPENSLO = Path(__file__).resolve().parents[1] / "testdata" / "openslo"


def _rules(config: Path, out: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "sloguard", "rules", str(config), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return out.read_text()


def test_openslo_rules_pass_promtool(tmp_path: Path) -> None:
    rules = tmp_path / "openslo-rules.yaml"
    text = _rules(OPENSLO / "checkout.yaml", rules)
    proc = subprocess.run(
        [require("promtool"), "check", "rules", "--lint=all", "--lint-fatal", str(rules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # 2 + 4 burn-rate tiers, plus 2 rules per SLO and sloguard's own 4.
    assert "SUCCESS: 14 rules found" in proc.stdout
    assert "severity: page" in text and "for: 2m" in text  # the AlertCondition's severity and alertAfter
    assert text == _rules(OPENSLO / "checkout.sloguard.yaml", tmp_path / "sloguard-rules.yaml")
