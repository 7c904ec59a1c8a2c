"""End-to-end fixtures: the session broker of the integration tests, and daemons as processes."""

from __future__ import annotations

from tests.e2e.test_faults import daemons
from tests.integration.conftest import broker, new_topic

__all__ = ["broker", "daemons", "new_topic"]
