"""The UI is on by default and can be switched off: SLOGUARD_UI=false, or `sloguard run --no-ui`."""

from __future__ import annotations

import argparse

import pytest

from sloguard.app import Daemon
from sloguard.cli import _parser, _run_overrides
from sloguard.settings import load_settings
from sloguard.specfile import parse_config
from sloguard.ui.routes import Ui
from tests.unit.ui.conftest import SLOS


def run_args(*flags: str) -> argparse.Namespace:
    return _parser().parse_args(["run", "--config", "slos.yaml", *flags])


def test_no_ui_flag_turns_the_setting_off() -> None:
    assert _run_overrides(run_args("--no-ui"))["ui"] is False
    assert "ui" not in _run_overrides(run_args())


def test_environment_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().ui is True
    monkeypatch.setenv("SLOGUARD_UI", "false")
    assert load_settings().ui is False


@pytest.mark.parametrize("ui", [True, False], ids=["on", "off"])
def test_daemon_mounts_the_routes_only_when_on(ui: bool) -> None:
    config = parse_config(SLOS, "slos.yaml")
    daemon = Daemon(load_settings({"listen": "127.0.0.1:0", "ui": ui}), config)
    assert isinstance(daemon.http.routes, Ui) is ui
    if ui:
        assert daemon.http.routes is not None
        r = daemon.http.routes("/api/v1/slos", "")
        assert r is not None and r.status == 503  # no tick yet
