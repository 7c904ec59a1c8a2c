"""The shared harness: the /metrics reader (against an in-process server), the /proc readers (on this
process), the children's command lines."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from benchmarks import harness
from benchmarks.harness import SampleFilter

BODY = b"""# HELP sloguard_events_processed_total Events.
# TYPE sloguard_events_processed_total counter
sloguard_events_processed_total 1234.0
sloguard_snapshot_timestamp_seconds 1700000000.5
sloguard_consumer_lag{partition="0"} 10.0
sloguard_consumer_lag{partition="1"} 5.0
sloguard_slo_events{slo="marker",window="5m"} 7.0
sloguard_slo_events{slo="other",window="5m"} 9.0
"""


def feed_all(f: SampleFilter, body: bytes) -> int:
    """Feed ``body`` line by line; the number of lines read."""
    for n, line in enumerate(body.splitlines(keepends=True), 1):
        if f.feed(line):
            return n
    return len(body.splitlines())


def test_series_are_kept_as_written_and_reading_stops_once_all_are_seen() -> None:
    f = SampleFilter(["sloguard_events_processed_total", 'sloguard_consumer_lag{partition="1"}'])
    assert feed_all(f, BODY) == 7  # the sample after the last wanted one
    assert f.values == {
        "sloguard_events_processed_total": 1234.0,
        'sloguard_consumer_lag{partition="1"}': 5.0,
    }


def test_families_are_summed_over_label_sets() -> None:
    f = SampleFilter(["sloguard_consumer_lag", "sloguard_snapshot_timestamp_seconds"], families=True)
    assert feed_all(f, BODY) == 7  # the first sample of another family once both were seen
    assert f.values == {"sloguard_consumer_lag": 15.0, "sloguard_snapshot_timestamp_seconds": 1700000000.5}


def test_a_missing_family_reads_to_the_end() -> None:
    f = SampleFilter(["sloguard_consumer_lag", "sloguard_absent"], families=True)
    assert feed_all(f, BODY) == len(BODY.splitlines())
    assert f.values == {"sloguard_consumer_lag": 15.0}


Server = tuple[int, list[bytes], dict[bytes, bytes]]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """An HTTP server on a free port answering every path with `BODY`, status by path (/metrics 200,
    /readyz 503, others 404; the test may change them); its port, the request lines it saw, the
    statuses."""
    seen: list[bytes] = []
    statuses = {b"/metrics": b"200 OK", b"/readyz": b"503 Service Unavailable"}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        seen.append(request)
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        status = statuses.get(request.split()[1], b"404 Not Found")
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield port, seen, statuses


async def test_scrape(server: Server) -> None:
    port, seen, _ = server
    got = await harness.scrape(port, ("sloguard_snapshot_timestamp_seconds", harness.EVENTS))
    assert got.values == {"sloguard_snapshot_timestamp_seconds": 1700000000.5, harness.EVENTS: 1234.0}
    assert got.content_length == len(BODY)
    got = await harness.scrape(port, ["sloguard_slo_events"], families=True)
    assert got.values == {"sloguard_slo_events": 16.0}
    assert seen[0] == b"GET /metrics HTTP/1.1\r\n"


async def test_http_status(server: Server) -> None:
    port, seen, _ = server
    assert await harness.http_status(port, "/readyz") == 503
    assert await harness.http_status(port, "/nowhere") == 404
    assert seen == [b"GET /readyz HTTP/1.1\r\n", b"GET /nowhere HTTP/1.1\r\n"]


async def test_scrape_refuses_anything_but_200(server: Server) -> None:
    port, _, statuses = server
    statuses[b"/metrics"] = b"503 Service Unavailable"
    with pytest.raises(ValueError, match="answered 503"):
        await harness.scrape(port, ["x"])


def test_proc_readers_on_this_process() -> None:
    rss, hwm = harness.rss_kib()
    assert 0 < rss <= hwm
    assert harness.rss_kib(os.getpid())[1] >= rss // 2
    assert harness.peak_rss_kib(os.getpid()) > 0
    assert harness.status_kib("self", "VmRSS", "NoSuchField")[1] == 0
    assert harness.cpu_seconds("self") > 0
    assert harness.cpu_seconds_or_nan(os.getpid()) > 0
    assert harness.runq_wait_s(os.getpid()) >= 0
    assert harness.meminfo_kib("MemTotal") > 0


def test_proc_readers_on_no_process() -> None:
    gone = 2**22 + 1  # above pid_max's default: never a live process
    assert harness.status_kib(gone, "VmRSS") == (0,)
    assert harness.cpu_seconds_or_nan(gone) != harness.cpu_seconds_or_nan(gone)  # NaN
    assert harness.cpu_seconds_or_nan(None) != harness.cpu_seconds_or_nan(None)
    assert harness.runq_wait_s(gone) != harness.runq_wait_s(gone)
    with pytest.raises(OSError):
        harness.cpu_seconds(gone)
    assert harness.child_pid("/no/such/binary") is None


def test_interp_clamps_at_the_ends() -> None:
    samples = [(10.0, 1.0), (20.0, 3.0)]
    assert harness.interp(samples, 15.0) == 2.0
    assert harness.interp(samples, 0.0) == 1.0
    assert harness.interp(samples, 99.0) == 3.0


def test_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.err"
    log.write_text("a\nb\nc\n")
    assert harness.tail(log, 2) == "b\nc"
    assert harness.tail(tmp_path / "missing") == ""


def test_command_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOGUARD_LOG_LEVEL", "debug")
    monkeypatch.setenv("SLOGUARD_HTTP__PORT", "1")
    env = harness.sloguard_env("127.0.0.1:9092", "t", "g")
    assert {k: v for k, v in env.items() if k.startswith("SLOGUARD_")} == {
        "SLOGUARD_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "SLOGUARD_KAFKA__TOPICS": "t",
        "SLOGUARD_KAFKA__GROUP_ID": "g",
        "SLOGUARD_LOG_FORMAT": "json",
        "SLOGUARD_LOG_LEVEL": "warning",
    }
    assert harness.daemon_argv(Path("s.yaml"), 8000)[1:] == [
        "-m", "sloguard", "run", "--config", "s.yaml", "--listen", "127.0.0.1:8000",
    ]  # fmt: skip
    argv = harness.loadgen_argv("b:1", "t", "50000.0", "68.0")
    assert argv[0] == sys.executable
    assert argv[1:4] == ["-m", "sloguard", "loadgen"]
    assert argv[4:] == ["--bootstrap", "b:1", "--topic", "t", "--rate", "50000.0", "--duration", "68.0",
                        "--scenario", "steady"]  # fmt: skip


class Running:
    """Stands in for a live child process (`check_alive` asks only ``poll``)."""

    returncode = None

    def poll(self) -> int | None:
        return None


async def test_wait_ready(server: Server) -> None:
    port, _, statuses = server
    statuses[b"/readyz"] = b"200 OK"
    proc = cast("subprocess.Popen[bytes]", Running())
    assert 0 <= await harness.wait_ready(proc, "fake", port, 5) < 5
    statuses[b"/readyz"] = b"503 Service Unavailable"
    with pytest.raises(TimeoutError, match=r"fake not ready after 0\.2 s"):
        await harness.wait_ready(proc, "fake", port, 0.2)
