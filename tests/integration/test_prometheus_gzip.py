"""The real Prometheus (Debian's package) scrapes a /metrics body served as many gzip members, the way the
daemon serves it (`text.Renderer`: one member per cached piece), and reads every sample of every member."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sloguard.broker import free_port
from sloguard.export.http import HttpServer
from sloguard.export.model import Family, SeriesLabels, block
from sloguard.export.text import Body, Renderer

PROMETHEUS = "/usr/bin/prometheus"
pytestmark = pytest.mark.skipif(not os.path.exists(PROMETHEUS), reason="needs Debian's prometheus package")

SERIES = 200


def _query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as r:
        result: list[dict[str, Any]] = json.load(r)["data"]["result"]
    return result


@dataclass(frozen=True, slots=True)
class _TwoFaced(Body):
    """Gzip members of one body, and the text of another (`text`: what a client without gzip gets)."""

    plain: Body

    def text(self) -> Iterator[bytes]:
        return self.plain.text()


def _bodies() -> tuple[Body, Body]:
    """The same samples rendered with ``value`` 1 and 2: the test serves the text of the first and the
    gzip members of the second, so the values Prometheus stores say which encoding it read."""
    series = SeriesLabels(("customer",), [(f"c-{j:04d}",) for j in range(SERIES)])
    out = []
    for value in (1.0, 2.0):
        values = np.arange(SERIES, dtype=np.float64) + value
        fam = Family("x_value", "Per customer.", "gauge", (block(series, (("slo", "s"),), values),))
        # One chunk a piece (no merging of changed chunks): many gzip members, which is what this reads.
        out.append(Renderer(chunk_rows=16, merged_chunks=1).render([fam]))
    return out[0], out[1]


def _start(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def test_prometheus_reads_every_member_of_a_multi_member_gzip_body(tmp_path: Path) -> None:
    plain, zipped = _bodies()
    assert len(zipped.members) > 10
    server = HttpServer("127.0.0.1", 0, health=lambda: True, ready=lambda: (True, ""))
    await server.start()
    server.set_metrics(_TwoFaced(zipped.pieces, plain.length, plain))
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: sloguard, static_configs: [{{targets: ['127.0.0.1:{server.port}']}}]}}\n"
    )
    args = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    prom = _start(args, tmp_path / "prometheus.log")
    try:
        got: list[dict[str, Any]] = []
        for _ in range(300):
            await asyncio.sleep(0.2)
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                got = await asyncio.to_thread(_query, port, 'x_value{job="sloguard"}')
            except OSError:
                continue
            if len(got) == SERIES:
                break
        values = {r["metric"]["customer"]: float(r["value"][1]) for r in got}
        # Every sample, from the first member to the last, and the gzip encoding's values (2.0 + j).
        assert values == {f"c-{j:04d}": 2.0 + j for j in range(SERIES)}
        up = await asyncio.to_thread(_query, port, 'up{job="sloguard"}')
        assert [float(r["value"][1]) for r in up] == [1.0]
    finally:
        await asyncio.to_thread(_stop, prom)
        await server.stop()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)
