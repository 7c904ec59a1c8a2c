"""Daemon settings: the only reader of the environment (pydantic-settings).

Environment variables use the prefix ``SLOGUARD_`` and ``__`` for nesting, e.g.
``SLOGUARD_KAFKA__BOOTSTRAP_SERVERS=broker:9092``, ``SLOGUARD_KAFKA__TOPICS=requests,requests-eu`` (or the
JSON list ``["requests","requests-eu"]``),
``SLOGUARD_LISTEN=0.0.0.0:9464``. Command-line flags override the environment. Settings are read once
by the composition root and passed down as plain values (`KafkaConfig` etc.).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sloguard.ingest.presets import PRESET_NAMES, PRESETS

if TYPE_CHECKING:  # imported when used: aiokafka costs `check` and `replay` ~0.15 s of start-up CPU
    from sloguard.ingest.kafka import KafkaConfig

ENV_PREFIX = "SLOGUARD_"


class SettingsError(ValueError):
    """Settings that cannot be used; the message names each bad setting and its variable."""


#: A Kafka topic name (Kafka's own rule: ``Topic.validate``); "." and ".." are refused too.
_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_TOPIC_RULE = "1 to 249 of a-z, A-Z, 0-9, '.', '_', '-', and not '.' or '..'"


def _topic_list(value: Any) -> Any:
    """``requests,requests-eu`` or pydantic-settings' JSON form ``["requests", "requests-eu"]`` -> a list.

    The field opts out of pydantic-settings' JSON decoding (NoDecode) so that the comma form works; the
    JSON form is decoded here, so neither ends up as one topic named ``["requests"]``.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text.startswith("["):
        return [part.strip() for part in text.split(",") if part.strip()]
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"starts with '[' but is not a JSON list ({exc.msg} at character {exc.pos + 1}); "
            'write ["requests", "requests-eu"] or requests,requests-eu'
        ) from None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(
            'a JSON list of topic names must hold only strings, e.g. ["requests", "requests-eu"]'
        )
    return items


def _check_topic(name: str) -> str:
    if len(name) > 249:
        raise ValueError(f"a topic name is at most 249 characters long (Kafka's limit), not {len(name)}")
    if not _TOPIC.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"{name!r} is not a valid Kafka topic name ({_TOPIC_RULE})")
    return name


def _check_topics(names: list[str]) -> list[str]:
    for i, name in enumerate(names):
        _check_topic(name)
        if name in names[:i]:
            raise ValueError(f"lists {name!r} twice")
    return names


def _optional_topic(value: Any) -> Any:
    # An empty value (SLOGUARD_KAFKA__DEAD_LETTER_TOPIC= , or "" in Helm values) means "not set".
    if isinstance(value, str) and not value.strip():
        return None
    return value


class KafkaSettings(BaseModel):
    """Where request logs come from (and where rejected records go)."""

    model_config = ConfigDict(extra="forbid")

    bootstrap_servers: str = "localhost:9092"
    topics: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["requests"], min_length=1)
    group_id: str = "sloguard"
    client_id: str = "sloguard"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    dead_letter_topic: str | None = None
    max_records: int = Field(default=10_000, ge=1)
    fetch_timeout_ms: int = Field(default=500, ge=1)
    commit_timeout_s: float = Field(default=10.0, gt=0)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    session_timeout_ms: int = Field(default=10_000, ge=1)
    heartbeat_interval_ms: int = Field(default=3_000, ge=1)
    request_timeout_ms: int = Field(default=30_000, ge=1)
    dead_letter_timeout_s: float = Field(default=10.0, gt=0)
    dead_letter_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    #: /readyz turns false when the broker has not answered for this long.
    ready_after_s: float = Field(default=15.0, gt=0)

    _split_topics = field_validator("topics", mode="before")(_topic_list)
    _valid_topics = field_validator("topics")(_check_topics)
    _unset_dead_letter = field_validator("dead_letter_topic", mode="before")(_optional_topic)

    @field_validator("dead_letter_topic")
    @classmethod
    def _valid_dead_letter(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if value in info.data.get("topics", ()):
            # Rejected records would be consumed again, rejected again, ... forever.
            raise ValueError(
                f"{value!r} is also a consumed topic (SLOGUARD_KAFKA__TOPICS); use another topic"
            )
        return _check_topic(value)

    def to_config(self) -> KafkaConfig:
        from sloguard.ingest.kafka import KafkaConfig

        return KafkaConfig(
            bootstrap_servers=self.bootstrap_servers,
            topics=tuple(self.topics),
            group_id=self.group_id,
            client_id=self.client_id,
            security_protocol=self.security_protocol,
            sasl_mechanism=self.sasl_mechanism,
            sasl_username=self.sasl_username,
            sasl_password=self.sasl_password.get_secret_value() if self.sasl_password else None,
            ssl_cafile=self.ssl_cafile,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
            dead_letter_topic=self.dead_letter_topic,
            max_records=self.max_records,
            fetch_timeout_ms=self.fetch_timeout_ms,
            commit_timeout_s=self.commit_timeout_s,
            auto_offset_reset=self.auto_offset_reset,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            request_timeout_ms=self.request_timeout_ms,
            dead_letter_timeout_s=self.dead_letter_timeout_s,
            dead_letter_max_bytes=self.dead_letter_max_bytes,
            ready_after_s=self.ready_after_s,
        )


class CheckpointSettings(BaseModel):
    """Where and how often the daemon writes checkpoints (state + offsets); see sloguard.checkpoint."""

    model_config = ConfigDict(extra="forbid")

    #: Local directory (a PersistentVolume in Kubernetes). None: no checkpoints, state lost on restart.
    dir: Path | None = None
    #: Seconds between checkpoints (one is also written on shutdown and when partitions are revoked).
    interval: float = Field(default=30.0, gt=0)
    #: Checkpoints kept; older ones are deleted after each successful write.
    keep: int = Field(default=3, ge=1)


class ScaleSettings(BaseModel):
    """Scaled-out mode (``stage`` partial/merge, docs/scaling.md): the internal topics, which
    ``sloguard topics create`` makes (never auto-created), and how stage 1 cuts ranges."""

    model_config = ConfigDict(extra="forbid")

    #: Defaults: ``<first input topic>-sloguard-partials`` / ``-cuts`` / ``-checkpoints``.
    partials_topic: str | None = None
    cuts_topic: str | None = None
    checkpoints_topic: str | None = None
    #: Partition counts for ``sloguard topics create`` (the cuts topic gets the input's count).
    partials_partitions: int = Field(default=12, ge=1)
    checkpoints_partitions: int = Field(default=3, ge=1)
    #: Stage 1: at most this many input records per range.
    range_max_records: int = Field(default=100_000, ge=1)
    #: Largest partial record; bigger pieces are cut by series (below the topic's max.message.bytes).
    max_record_bytes: int = Field(default=900 * 1024, ge=4096)

    _unset_topics = field_validator("partials_topic", "cuts_topic", "checkpoints_topic", mode="before")(
        _optional_topic
    )

    @field_validator("partials_topic", "cuts_topic", "checkpoints_topic")
    @classmethod
    def _valid_internal_topic(cls, value: str | None) -> str | None:
        return None if value is None else _check_topic(value)

    def topics(self, input_topic: str) -> tuple[str, str, str]:
        """(partials, cuts, checkpoints) topic names, the defaults derived from ``input_topic``."""
        return (
            self.partials_topic or f"{input_topic}-sloguard-partials",
            self.cuts_topic or f"{input_topic}-sloguard-cuts",
            self.checkpoints_topic or f"{input_topic}-sloguard-checkpoints",
        )


def _preset_name(value: Any) -> Any:
    # An empty value (SLOGUARD_INPUT__PRESET=, or "" in Helm values) means "not set".
    if isinstance(value, str) and not value.strip():
        return None
    if value is not None and value not in PRESETS:
        raise ValueError(f"must be one of {', '.join(PRESET_NAMES)}")
    return value


class InputSettings(BaseModel):
    """The input mapping when the SLO file has none: the file's ``input:`` section wins (docs/input.md)."""

    model_config = ConfigDict(extra="forbid")

    #: A preset (`sloguard.ingest.presets`) for SLO files without ``input:``; None: sloguard's own shape.
    preset: str | None = None

    _valid_preset = field_validator("preset", mode="before")(_preset_name)


class Settings(BaseSettings):
    """Everything `sloguard run` needs besides the SLO file's content."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    config: Path | None = None
    listen: str = "0.0.0.0:9464"
    tick_seconds: float = Field(default=1.0, gt=0)
    commit_interval_seconds: float = Field(default=5.0, gt=0)
    #: Events stamped later than now + this are refused as `future_timestamp` (clock skew allowance).
    #: At most a minute: the aggregator's rings keep one minute of room past `now`.
    allowed_skew_seconds: float = Field(default=60.0, ge=0, le=60)
    #: Events whose time is more than this behind the wall clock are counted as late (still absorbed).
    late_after_seconds: float = Field(default=60.0, ge=0)
    shutdown_timeout_seconds: float = Field(default=20.0, gt=0)
    #: Seconds between checks of the SLO file for changes (a Kubernetes ConfigMap update); 0: only on
    #: SIGHUP.
    reload_interval_seconds: float = Field(default=10.0, ge=0)
    sloth_compat: bool = False
    #: Serve the web UI (`/`, `/slo/...`, `/customers`) and its JSON API (`/api/v1/...`), read-only.
    ui: bool = True
    #: single: one process does everything; partial / merge: the two stages of docs/scaling.md.
    stage: Literal["single", "partial", "merge"] = "single"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    kafka: KafkaSettings = Field(default_factory=lambda: KafkaSettings())
    checkpoint: CheckpointSettings = Field(default_factory=lambda: CheckpointSettings())
    input: InputSettings = Field(default_factory=lambda: InputSettings())
    scale: ScaleSettings = Field(default_factory=lambda: ScaleSettings())

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Environment first, then ``overrides`` (command-line flags; nested dicts merge) on top."""
    try:
        # pydantic-settings deep-merges init arguments over the environment, nested models included.
        settings = Settings(**(overrides or {}))
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    try:
        # The Kafka client's rules across fields (SASL needs a mechanism, a user and a password; SSL
        # files need SSL): refused here, before `run` would meet them as a traceback.
        settings.kafka.to_config()
    except ValueError as exc:
        raise SettingsError(f"setting kafka ({ENV_PREFIX}KAFKA__*): {exc}") from None
    return settings


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = [str(p) for p in err["loc"]]
        var = ENV_PREFIX + "__".join(p.upper() for p in path)
        # Never echo a secret's value back.
        got = repr(err.get("input"))
        got = got if len(got) <= 80 else got[:77] + "..."
        shown = "" if any("password" in p for p in path) else f" (got {got})"
        # Our validators' ValueErrors read as-is; pydantic prefixes them with "Value error, ".
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"setting {'.'.join(path)} ({var}): {message}{shown}")
    return "\n".join(lines)


class _InputEnvironment(BaseSettings):
    """Only ``SLOGUARD_INPUT__*``: what `check` and `replay` read, whatever else the environment holds."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

    input: InputSettings = Field(default_factory=lambda: InputSettings())


def input_preset() -> str | None:
    """The preset ``SLOGUARD_INPUT__PRESET`` names (None: not set); raises `SettingsError` if unknown."""
    try:
        return _InputEnvironment().input.preset
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
