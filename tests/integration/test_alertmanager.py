"""deploy/alertmanager/alertmanager.yml against amtool: the config loads, and the severities of the
alerts `sloguard rules` generates reach the intended receivers.

Fails (does not skip) without amtool on PATH (Debian package ``prometheus-alertmanager``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import require

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def amtool() -> str:
    return require("amtool")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([amtool(), *args], capture_output=True, text=True, timeout=60, check=False)


def test_check_config() -> None:
    # check-config does not read routing_key_file: the secret need not exist here.
    proc = run("check-config", str(CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
    assert " - 1 inhibit rules" in proc.stdout
    assert " - 2 receivers" in proc.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=SloguardErrorBudgetBurn", "severity=page", "slo=x"], "pager"),
        (["alertname=SloguardDown", "severity=page"], "pager"),
        (["alertname=SloguardErrorBudgetBurn", "severity=ticket", "slo=x"], "ticket"),
        (["alertname=SloguardSloNoData", "severity=ticket", "slo=x"], "ticket"),
        (["alertname=Other", "severity=info"], "ticket"),  # the root's fallback
    ],
)
def test_routes(labels: list[str], receiver: str) -> None:
    proc = run(
        "config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={receiver}", *labels
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receiver


def test_pager_and_inhibition() -> None:
    """What amtool cannot test: the page receiver's secret file and the inhibit rule."""
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    pager = receivers["pager"]["pagerduty_configs"][0]
    assert pager["routing_key_file"] == "/etc/alertmanager/secrets/pagerduty-routing-key"
    assert "routing_key" not in pager
    assert receivers["ticket"]["webhook_configs"][0]["url"].startswith("http")
    assert config["route"]["group_by"] == ["alertname", "slo"]
    assert config["inhibit_rules"] == [
        {"source_matchers": ['severity="page"'], "target_matchers": ['severity="ticket"'], "equal": ["slo"]}
    ]
