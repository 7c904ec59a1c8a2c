"""Outside tools the suite runs for real: a missing one fails the test with how to install it."""

from __future__ import annotations

import shutil

import pytest

#: tool -> how to get it
INSTALL = {
    "promtool": "install the Debian package `prometheus` "
    "(apt-get install --no-install-recommends prometheus)",
    "amtool": "install the Debian package `prometheus-alertmanager` "
    "(apt-get install --no-install-recommends prometheus-alertmanager)",
    "kubectl": "these tests render deploy/kubernetes with `kubectl kustomize`",
    "node": "install Node.js 20+ with npm (Debian packages nodejs, npm), then run `make node-deps`",
}


def require(tool: str) -> str:
    """Path of ``tool``; fails (never skips) when it is not on PATH."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not on PATH: {INSTALL[tool]}")
    return path
