"""Hot reload of the SLO file (`Daemon.reload`): refused when invalid, state kept for unchanged SLOs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloguard.app import Daemon
from sloguard.clock import ManualClock
from sloguard.core.model import Event, EventBatch
from sloguard.settings import load_settings
from sloguard.specfile import load_config

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
    d.aggregator.ingest(EventBatch.from_events(events))
    return d


def events_by_slo(d: Daemon) -> dict[str, int]:
    return {s.spec.name: s.events for s in d.aggregator.snapshot(T0).slos}


def test_valid_reload_keeps_unchanged_state_and_drops_removed(daemon: Daemon, tmp_path: Path) -> None:
    write(tmp_path / "slos.yaml", ("kept", 99.9), ("changed", 99.5), ("added", 99.0))
    assert daemon.reload("test")
    assert events_by_slo(daemon) == {"kept": 100, "changed": 0, "added": 0}
    assert [s.name for s in daemon.config.slos] == ["kept", "changed", "added"]
    assert daemon.telemetry.reloads == 1 and daemon.telemetry.last_reload_ok
    # The decoder writes into the new aggregator's vocabularies: new events land.
    batch = daemon.decoder.decode_many(
        [
            b'{"ts": %d, "service": "checkout", "endpoint": "GET /b", "customer": "c", "status": 200, '
            b'"latency_ms": 1}' % (T0 - 1000)
        ],
        daemon.telemetry.invalid,
    )
    daemon.aggregator.ingest(batch)
    assert events_by_slo(daemon)["kept"] == 101
    body = b"".join(
        daemon.exposition.render_chunks(daemon.aggregator.snapshot(T0), daemon.telemetry.snapshot())
    )
    assert b'slo="removed"' not in body and b'slo="added"' in body


def test_invalid_reload_is_refused_and_the_old_config_keeps_running(
    daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = daemon.config
    (tmp_path / "slos.yaml").write_text(
        "apiVersion: sloguard/v1\nslos:\n" + SLO.format(name="kept", objective=100)
    )
    assert not daemon.reload("test")
    assert daemon.config is before
    assert events_by_slo(daemon)["kept"] == 100
    assert daemon.telemetry.reload_failures == 1 and not daemon.telemetry.last_reload_ok
    out = capsys.readouterr()
    assert "slos.yaml: slos[0] (kept): objective" in out.out + out.err


def test_unchanged_file_is_a_no_op(daemon: Daemon) -> None:
    aggregator = daemon.aggregator
    assert daemon.reload("test")
    assert daemon.aggregator is aggregator and daemon.telemetry.reloads == 0
