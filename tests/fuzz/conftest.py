"""Fuzz fixtures: the session broker of the integration tests (for the dead-letter fuzz)."""

from __future__ import annotations

from tests.integration.conftest import broker, new_topic

__all__ = ["broker", "new_topic"]
