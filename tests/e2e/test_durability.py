"""The daemon as a process when its surroundings fail: checkpoint directory read-only or full, the
broker gone for a minute, and the SLO file changed under it (SIGHUP and the file watch)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sloguard.broker import LocalBroker
from tests.e2e.test_faults import (
    PARTITIONS,
    SLOS,
    Daemons,
    compare,
    consumed_all,
    make_events,
    send,
    state_in,
    wait,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``path`` (root only: CI runs as root), unmounted at the end."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"mounting a tmpfs needs root (as in CI): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def ready_body(d: object) -> tuple[int, str]:
    return d.status("/readyz")  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_checkpoint_directory_unwritable_degrades_then_recovers(
    daemons: Daemons, tmp_path: Path, fault: str
) -> None:
    with tmpfs(tmp_path / "ckpt", "16m") as ckpt:
        first = make_events(20_000, seed=21, customers=5_000)
        send(daemons.broker.bootstrap, daemons.topic, first)
        proc = daemons.start(ckpt)
        expected = sum(1 for e in first if e.service == "checkout")
        wait(lambda: consumed_all(proc, expected), 120, "consumption", proc)
        wait(lambda: any(ckpt.glob("checkpoint-*")), 30, "a checkpoint", proc)

        filler = ckpt / "filler"
        if fault == "read-only":
            remount(ckpt, "ro")
        else:
            # Leave less room than one checkpoint needs.
            with contextlib.suppress(OSError), filler.open("wb") as f:
                while True:
                    f.write(b"\0" * 65536)
        wait(lambda: ready_body(proc)[0] == 503, 30, "readyz to report degraded durability", proc)
        _, body = ready_body(proc)
        assert "checkpoints failing" in body, body
        # Still serving and still counting.
        second = make_events(5_000, seed=22, customers=500)
        send(daemons.broker.bootstrap, daemons.topic, second)
        expected += sum(1 for e in second if e.service == "checkout")
        wait(lambda: consumed_all(proc, expected), 60, "consumption while degraded", proc)
        m = proc.scrape()
        assert m[("sloguard_checkpoint_failures_total", ())] > 0
        assert proc.popen.poll() is None

        if fault == "read-only":
            remount(ckpt, "rw")
        else:
            filler.unlink()
        wait(lambda: ready_body(proc)[0] == 200, 30, "readyz back to 200", proc)
        assert proc.terminate(25) == 0, proc.tail()
        lines = [json.loads(x) for x in proc.tail(2_000_000).splitlines() if x.startswith("{")]
        failed = [x for x in lines if x.get("event") == "checkpoint_failed"]
        assert failed and str(ckpt) in failed[0]["dir"], failed
        assert any(x.get("event") == "checkpoint_recovered" for x in lines)
        diff = compare([state_in(ckpt)], first + second)
        print(f"checkpoint dir {fault}: {diff}")
        assert (diff.lost, diff.doubled) == (0, 0)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_broker_gone_for_a_minute(tmp_path: Path) -> None:
    """Broker killed for 60 s: the daemon stays up (same process), readyz goes false and back to true,
    memory stays flat while disconnected, and consumption resumes on the restarted (empty) broker."""
    with LocalBroker(stop_timeout_s=3.0) as own:
        own.create_topics(["requests"], PARTITIONS)
        d = Daemons(own, "requests", "g-outage", tmp_path)
        try:
            events = make_events(10_000, seed=31, customers=1_000)
            send(own.bootstrap, "requests", events)
            proc = d.start(tmp_path / "ckpt", SLOGUARD_KAFKA__READY_AFTER_S="3")
            expected = sum(1 for e in events if e.service == "checkout")
            wait(lambda: consumed_all(proc, expected), 120, "consumption", proc)
            pid = proc.popen.pid
            own.kill()
            wait(lambda: ready_body(proc)[0] == 503, 30, "not ready while the broker is down", proc)
            samples = []
            started = time.monotonic()
            while time.monotonic() - started < 60:
                assert proc.popen.poll() is None, proc.tail()
                samples.append(rss_kib(pid))
                assert proc.status("/healthz")[0] == 200
                time.sleep(5)
            own.start()
            own.create_topics(["requests"], PARTITIONS, exist_ok=True)  # memory storage: all gone
            wait(lambda: ready_body(proc)[0] == 200, 90, "ready again", proc)
            more = make_events(2_000, seed=32, customers=100)
            send(own.bootstrap, "requests", more)
            expected += sum(1 for e in more if e.service == "checkout")
            wait(lambda: consumed_all(proc, expected), 120, "consumption after the outage", proc)
            assert proc.popen.pid == pid and proc.popen.poll() is None
            growth = (max(samples) - samples[0]) / 1024
            print(f"broker down 60 s: RSS {samples[0] / 1024:.1f} -> max {max(samples) / 1024:.1f} MiB")
            assert growth < 32, samples
            assert proc.terminate(25) == 0, proc.tail()
        finally:
            d.stop_all()


def test_sighup_and_file_change_reload_the_slo_file(daemons: Daemons) -> None:
    ckpt = daemons.tmp / "ckpt"
    events = make_events(5_000, seed=41, customers=200)
    send(daemons.broker.bootstrap, daemons.topic, events)
    proc = daemons.start(ckpt, SLOGUARD_RELOAD_INTERVAL_SECONDS="0.5")
    expected = sum(1 for e in events if e.service == "checkout")
    wait(lambda: consumed_all(proc, expected), 120, "consumption", proc)
    slos = daemons.tmp / "slos.yaml"

    def exported_slos() -> set[str]:
        return {
            dict(lab)["slo"]
            for (name, lab), _ in proc.scrape().items()
            if name == "sloguard_slo_objective_ratio"
        }

    assert exported_slos() == {"by-endpoint", "by-customer"}
    # Invalid: refused with file and field named; the old config keeps running.
    slos.write_text(SLOS.replace("objective: 99.9", "objective: 100"))
    proc.popen.send_signal(signal.SIGHUP)
    wait(lambda: proc.scrape()[("sloguard_config_last_reload_successful", ())] == 0, 30, "refusal", proc)
    assert exported_slos() == {"by-endpoint", "by-customer"}
    lines = [json.loads(x) for x in proc.tail(200_000).splitlines() if x.startswith("{")]
    refused = [x for x in lines if x.get("event") == "reload_refused"]
    assert refused and any("slos[0] (by-endpoint): objective" in p for p in refused[0]["problems"]), refused
    # Valid, picked up by the file watch (no signal): by-customer removed, by-endpoint keeps its state.
    slos.write_text(SLOS.split("  - name: by-customer")[0] + SLOS[SLOS.index("latency:") :])
    wait(lambda: exported_slos() == {"by-endpoint"}, 30, "the reload", proc)
    m = proc.scrape()
    assert m[("sloguard_config_last_reload_successful", ())] == 1
    period = sum(
        v for (name, lab), v in m.items() if name == "sloguard_slo_events" and dict(lab)["window"] == "period"
    )
    assert period == expected
    assert proc.terminate(25) == 0, proc.tail()
    assert os.path.exists(ckpt)
