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


@pytest.mark.parametrize(
    ("value", "topics"),
    [
        pytest.param('["requests"]', ["requests"], id="json-one"),
        pytest.param('[ "requests", "requests-eu" ]', ["requests", "requests-eu"], id="json-two"),
        pytest.param("requests,requests-eu", ["requests", "requests-eu"], id="comma"),
        pytest.param(" requests , requests.eu_2 ", ["requests", "requests.eu_2"], id="comma-spaces"),
        pytest.param("x" * 249, ["x" * 249], id="longest"),
    ],
)
def test_topics_as_json_list_or_comma_separated(
    monkeypatch: pytest.MonkeyPatch, value: str, topics: list[str]
) -> None:
    # pydantic-settings' usual form for a list is JSON; it used to become one topic named '["requests"]'.
    monkeypatch.setenv("SLOGUARD_KAFKA__TOPICS", value)
    assert load_settings().kafka.topics == topics


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("foo bar", "'foo bar' is not a valid Kafka topic name (1 to 249 of a-z", id="space"),
        pytest.param("requests,..", "'..' is not a valid Kafka topic name", id="dot-dot"),
        pytest.param(".", "'.' is not a valid Kafka topic name", id="dot"),
        pytest.param("logs/requests", "'logs/requests' is not a valid Kafka topic name", id="slash"),
        pytest.param(
            "x" * 250, "a topic name is at most 249 characters long (Kafka's limit), not 250", id="long"
        ),
        pytest.param("a,b,a", "lists 'a' twice", id="twice"),
        pytest.param('["requests"', "starts with '[' but is not a JSON list (Expecting", id="bad-json"),
        pytest.param(
            '["requests", 7]', "a JSON list of topic names must hold only strings", id="json-number"
        ),
        pytest.param("[]", "List should have at least 1 item", id="json-empty"),
        pytest.param(" , ", "List should have at least 1 item", id="comma-empty"),
    ],
)
def test_bad_topics_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("SLOGUARD_KAFKA__TOPICS", value)
    with pytest.raises(SettingsError) as exc:
        load_settings()
    (line,) = str(exc.value).splitlines()
    assert line.startswith(f"setting kafka.topics (SLOGUARD_KAFKA__TOPICS): {expected}"), line
    assert len(line) < 250  # a long value is shortened, not echoed whole


def test_topics_flag_is_checked_too() -> None:
    with pytest.raises(SettingsError, match=r"kafka\.topics .*'a b' is not a valid Kafka topic name"):
        load_settings({"kafka": {"topics": "a b"}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "rejected/requests", "'rejected/requests' is not a valid Kafka topic name", id="invalid"
        ),
        pytest.param(
            "requests",
            "'requests' is also a consumed topic (SLOGUARD_KAFKA__TOPICS); use another topic",
            id="loop",
        ),
    ],
)
def test_bad_dead_letter_topic_is_refused(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    monkeypatch.setenv("SLOGUARD_KAFKA__DEAD_LETTER_TOPIC", value)
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert str(exc.value).startswith(
        f"setting kafka.dead_letter_topic (SLOGUARD_KAFKA__DEAD_LETTER_TOPIC): {expected}"
    ), str(exc.value)


def test_empty_dead_letter_topic_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOGUARD_KAFKA__DEAD_LETTER_TOPIC", "")
    assert load_settings().kafka.dead_letter_topic is None
    monkeypatch.setenv("SLOGUARD_KAFKA__DEAD_LETTER_TOPIC", "requests-rejected")
    assert load_settings().kafka.to_config().dead_letter_topic == "requests-rejected"


def test_kafka_rules_across_fields_are_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Used to pass load_settings and fail in `run` as a ValueError traceback from KafkaConfig.
    monkeypatch.setenv("SLOGUARD_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert str(exc.value).startswith(
        "setting kafka (SLOGUARD_KAFKA__*): invalid Kafka settings: sasl_mechanism"
    )


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
