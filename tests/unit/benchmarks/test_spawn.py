"""The harness's children: output files, stopping on the way out, and the scraper against sloguard's
own HTTP server."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from benchmarks import harness

SLEEPER = [sys.executable, "-c", "import sys, time; print('up', flush=True); time.sleep(60)"]
ECHO = [sys.executable, "-c", "import sys; [print(l.strip().upper(), flush=True) for l in sys.stdin]"]


@pytest.fixture(autouse=True)
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(harness, "OUT", tmp_path)
    return tmp_path


def test_a_child_is_terminated_on_the_way_out(out: Path) -> None:
    with harness.spawn(SLEEPER, "sleeper") as proc:
        deadline = time.monotonic() + 30
        while not (out / "sleeper.out").read_text() and time.monotonic() < deadline:
            harness.check_alive(proc, "sleeper")
            time.sleep(0.01)
    assert proc.returncode == -signal.SIGTERM
    assert (out / "sleeper.out").read_text() == "up\n"
    with pytest.raises(RuntimeError, match="sleeper exited with status -15"):
        harness.check_alive(proc, "sleeper")


def test_a_piped_child_stops_at_the_end_of_its_input(out: Path) -> None:
    with harness.spawn(ECHO, "echo", pipes=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"ping\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"PING\n"
    assert proc.returncode == 0
    assert (out / "echo.err").exists() and not (out / "echo.out").exists()


async def test_scrape_sloguard_http_server() -> None:
    from sloguard.export.http import HttpServer

    body = b'# TYPE a counter\na_total 3.0\nb{x="1"} 1.5\nb{x="2"} 2.5\nc 9.0\n'
    server = HttpServer("127.0.0.1", 0, health=lambda: True, ready=lambda: (True, "ok"))
    await server.start()
    try:
        server.set_metrics(body)
        got = await harness.scrape(server.port, ["b"], families=True)
        assert got.values == {"b": 4.0}
        assert got.content_length == len(body)
        assert await harness.http_status(server.port, "/readyz") == 200
    finally:
        await server.stop()
