"""`make run`'s main job as a process: broker, traffic with an outage, daemon, live summary."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sloguard.broker import free_port

pytestmark = pytest.mark.kafka


def test_demo_pages_on_the_outage_and_stops_everything() -> None:
    port = free_port()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "sloguard.demo",
            "--duration",
            "25",
            "--incident-at",
            "5",
            "--rate",
            "1000",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    out = res.stdout.decode()
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert f"http://127.0.0.1:{port}/metrics" in out
    last = out.rsplit("sloguard demo", 1)[-1]
    row = next(line for line in last.splitlines() if line.startswith("checkout-availability"))
    assert "POST /v1/checkout" in row and "page-1h-5m" in row
    assert out.rstrip().endswith("stopped: daemon, traffic generator and broker")
