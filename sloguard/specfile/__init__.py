"""The SLO file: a versioned YAML schema (``apiVersion: sloguard/v1``), validated and mapped onto `core.spec`."""

from sloguard.specfile.parser import (
    API_VERSION,
    SpecError,
    default_tiers,
    describe,
    load_config,
    parse_config,
)

__all__ = ["API_VERSION", "SpecError", "default_tiers", "describe", "load_config", "parse_config"]
