"""Settings from the environment and flags; bad settings named; secrets never echoed."""

from __future__ import annotations

import pytest

from sloguard.logs import RateLimiter
from sloguard.settings import SettingsError, load_settings, parse_listen


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.listen_address() == ("0.0.0.0", 9464)
    assert s.kafka.topics == ["requests"]
    assert s.tick_seconds == 1.0


def test_environment_nested_with_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOGUARD_KAFKA__BOOTSTRAP_SERVERS", "broker-1:9093,broker-2:9093")
    monkeypatch.setenv("SLOGUARD_KAFKA__TOPICS", "requests, requests-eu")
    monkeypatch.setenv("SLOGUARD_KAFKA__GROUP_ID", "slo-prod")
    monkeypatch.setenv("SLOGUARD_LISTEN", "127.0.0.1:9999")
    monkeypatch.setenv("SLOGUARD_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SLOGUARD_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("SLOGUARD_KAFKA__SASL_USERNAME", "sloguard")
    monkeypatch.setenv("SLOGUARD_KAFKA__SASL_PASSWORD", "hunter2")
    s = load_settings()
    cfg = s.kafka.to_config()
    assert cfg.bootstrap_servers == "broker-1:9093,broker-2:9093"
    assert cfg.topics == ("requests", "requests-eu")
    assert cfg.group_id == "slo-prod"
    assert cfg.sasl_password == "hunter2"
    assert s.listen_address() == ("127.0.0.1", 9999)
    assert "hunter2" not in repr(s) and "hunter2" not in repr(cfg)


def test_flags_override_environment_and_merge_nested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOGUARD_KAFKA__BOOTSTRAP_SERVERS", "from-env:9092")
    monkeypatch.setenv("SLOGUARD_KAFKA__GROUP_ID", "env-group")
    s = load_settings({"listen": "127.0.0.1:1234", "kafka": {"group_id": "flag-group"}})
    assert s.listen == "127.0.0.1:1234"
    assert s.kafka.group_id == "flag-group"
    assert s.kafka.bootstrap_servers == "from-env:9092"


@pytest.mark.parametrize(
    "var,value,field",
    [
        ("SLOGUARD_LISTEN", "nowhere", "listen"),
        ("SLOGUARD_TICK_SECONDS", "-1", "tick_seconds"),
        ("SLOGUARD_KAFKA__MAX_RECORDS", "zero", "kafka.max_records"),
        ("SLOGUARD_KAFKA__SECURITY_PROTOCOL", "TLS", "kafka.security_protocol"),
    ],
    ids=["listen", "tick", "max-records", "protocol"],
)
def test_bad_settings_name_the_field_and_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, field: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert field in str(exc.value) and var in str(exc.value)


def test_secret_is_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOGUARD_KAFKA__SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("SLOGUARD_KAFKA__MAX_RECORDS", "-5")
    with pytest.raises(SettingsError) as exc:
        load_settings({"kafka": {"sasl_password": ["hunter3"]}})
    message = str(exc.value)
    assert "kafka.sasl_password" in message and "kafka.max_records" in message
    assert "hunter2" not in message and "hunter3" not in message


def test_parse_listen() -> None:
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    assert parse_listen(":9464") == ("0.0.0.0", 9464)
    with pytest.raises(ValueError):
        parse_listen("host:99999")


def test_rate_limiter_counts_what_it_suppresses() -> None:
    rl = RateLimiter(interval=60, burst=2)
    assert rl.allow("malformed_json", 0.0) == (True, 0)
    assert rl.allow("malformed_json", 1.0) == (True, 0)
    assert rl.allow("malformed_json", 2.0) == (False, 0)
    assert rl.allow("malformed_json", 3.0) == (False, 0)
    assert rl.allow("other", 3.0) == (True, 0)
    assert rl.allow("malformed_json", 61.0) == (True, 2)
