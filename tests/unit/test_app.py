"""The composition root's process-level setup."""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest

from sloguard.app import raise_open_file_limit


@pytest.fixture
def restore_nofile() -> Iterator[tuple[int, int]]:
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield limits
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_soft_open_file_limit_rises_to_the_hard_one(restore_nofile: tuple[int, int]) -> None:
    _, hard = restore_nofile
    low = 256 if hard == resource.RLIM_INFINITY else min(256, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    expected = (1 << 20) if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
    assert raise_open_file_limit() == max(low, expected)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (max(low, expected), hard)
