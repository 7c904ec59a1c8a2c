"""``SLOGUARD_INPUT__PRESET``: a known preset or nothing, refused with the variable's name otherwise."""

from __future__ import annotations

import pytest

from sloguard.settings import SettingsError, input_preset, load_settings


def test_unset_and_empty_mean_no_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLOGUARD_INPUT__PRESET", raising=False)
    assert input_preset() is None and load_settings().input.preset is None
    monkeypatch.setenv("SLOGUARD_INPUT__PRESET", " ")
    assert input_preset() is None and load_settings().input.preset is None


@pytest.mark.parametrize("preset", ["envoy", "nginx-json", "otlp-json"])
def test_known_presets(monkeypatch: pytest.MonkeyPatch, preset: str) -> None:
    monkeypatch.setenv("SLOGUARD_INPUT__PRESET", preset)
    assert input_preset() == preset and load_settings().input.preset == preset


def test_unknown_preset_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOGUARD_INPUT__PRESET", "nginx")
    message = (
        "setting input.preset (SLOGUARD_INPUT__PRESET): must be one of envoy, nginx-json, otlp-json, "
        "otlp-proto (got 'nginx')"
    )
    for read in (input_preset, load_settings):
        with pytest.raises(SettingsError) as info:
            read()
        assert str(info.value) == message


def test_check_and_replay_read_only_the_input_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOGUARD_INPUT__PRESET", "envoy")
    monkeypatch.setenv("SLOGUARD_LISTEN", "not an address")  # run's business, not check's
    assert input_preset() == "envoy"
