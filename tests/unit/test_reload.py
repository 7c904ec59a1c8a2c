"""Hot reload of the SLO file (`Reloader`, `Daemon.reload`): refused when invalid, state kept for unchanged
SLOs, and a changed file picked up by the watch without a signal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sloguard.app import Daemon
from sloguard.clock import ManualClock
from sloguard.core.model import Event, EventBatch
from sloguard.engine import Engine
from sloguard.reloader import Reloader
from sloguard.settings import load_settings
from sloguard.specfile import load_config
from sloguard.telemetry import Telemetry

T0 = 1_767_225_600_000

SLO = """\
  - name: {name}
    service: checkout
    objective: {objective}
    sli: {{type: availability}}
    window: 30d
    group_by: [endpoint]
"""


def write(path: Path, *slos: tuple[str, float]) -> None:
    path.write_text(
        "apiVersion: sloguard/v1\nslos:\n" + "".join(SLO.format(name=n, objective=o) for n, o in slos)
    )


@pytest.fixture
def daemon(tmp_path: Path) -> Daemon:
    path = tmp_path / "slos.yaml"
    write(path, ("kept", 99.9), ("changed", 99.9), ("removed", 99.0))
    settings = load_settings({"config": str(path), "listen": "127.0.0.1:0"})
    d = Daemon(settings, load_config(path), clock=ManualClock(T0))
    events = [
        Event(T0 - 3_600_000 + i, "checkout", "GET /a", "c", 500 if i % 10 == 0 else 200, 1.0)
        for i in range(100)
    ]
    d.engine.aggregator.ingest(EventBatch.from_events(events))
    return d


def events_by_slo(d: Daemon) -> dict[str, int]:
    return {s.spec.name: s.events for s in d.engine.aggregator.snapshot(T0).slos}


def test_valid_reload_keeps_unchanged_state_and_drops_removed(daemon: Daemon, tmp_path: Path) -> None:
    write(tmp_path / "slos.yaml", ("kept", 99.9), ("changed", 99.5), ("added", 99.0))
    assert daemon.reload("test")
    assert events_by_slo(daemon) == {"kept": 100, "changed": 0, "added": 0}
    assert [s.name for s in daemon.engine.config.slos] == ["kept", "changed", "added"]
    assert daemon.telemetry.reloads == 1 and daemon.telemetry.last_reload_ok
    # The decoder writes into the new aggregator's vocabularies: new events land.
    batch = daemon.engine.decoder.decode_many(
        [
            b'{"ts": %d, "service": "checkout", "endpoint": "GET /b", "customer": "c", "status": 200, '
            b'"latency_ms": 1}' % (T0 - 1000)
        ],
        daemon.telemetry.invalid,
    )
    daemon.engine.aggregator.ingest(batch)
    assert events_by_slo(daemon)["kept"] == 101
    body = b"".join(
        daemon.engine.exposition.render_chunks(
            daemon.engine.aggregator.snapshot(T0), daemon.telemetry.snapshot()
        )
    )
    assert b'slo="removed"' not in body and b'slo="added"' in body


def test_invalid_reload_is_refused_and_the_old_config_keeps_running(
    daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = daemon.engine.config
    (tmp_path / "slos.yaml").write_text(
        "apiVersion: sloguard/v1\nslos:\n" + SLO.format(name="kept", objective=100)
    )
    assert not daemon.reload("test")
    assert daemon.engine.config is before
    assert events_by_slo(daemon)["kept"] == 100
    assert daemon.telemetry.reload_failures == 1 and not daemon.telemetry.last_reload_ok
    out = capsys.readouterr()
    assert "slos.yaml: slos[0] (kept): objective" in out.out + out.err


def test_unchanged_file_is_a_no_op(daemon: Daemon) -> None:
    aggregator = daemon.engine.aggregator
    assert daemon.reload("test")
    assert daemon.engine.aggregator is aggregator and daemon.telemetry.reloads == 0


def test_reload_without_a_file_path_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "slos.yaml"
    write(path, ("kept", 99.9))
    engine = Engine(load_config(path))
    telemetry = Telemetry()
    assert not Reloader(None, engine, telemetry).reload("SIGHUP")
    assert telemetry.reloads == telemetry.reload_failures == 0


async def test_the_watch_reloads_a_changed_file_and_ignores_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "slos.yaml"
    write(path, ("kept", 99.9))
    engine = Engine(load_config(path))
    telemetry = Telemetry()
    stopping = asyncio.Event()
    watch = asyncio.create_task(Reloader(path, engine, telemetry).watch(0.01, stopping))
    await asyncio.sleep(0.05)
    assert telemetry.reloads == 0  # unchanged content: no reload
    path.unlink()  # mid-swap (a ConfigMap's symlink flip): nothing to read is no change
    await asyncio.sleep(0.05)
    assert telemetry.reloads == telemetry.reload_failures == 0
    write(path, ("kept", 99.9), ("added", 99.0))
    for _ in range(500):  # the watch polls every 10 ms
        if telemetry.reloads:
            break
        await asyncio.sleep(0.01)
    assert [s.name for s in engine.config.slos] == ["kept", "added"]
    stopping.set()
    await asyncio.wait_for(watch, 1)
