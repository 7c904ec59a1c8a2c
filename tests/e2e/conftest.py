"""End-to-end fixtures: the session broker of the integration tests, shared here too."""

from __future__ import annotations

from tests.integration.conftest import broker, new_topic

__all__ = ["broker", "new_topic"]
