"""`sloguard report sla --checkpoint`: the report from a daemon checkpoint equals the report from the
logs the daemon had read (JSON and CSV), and every case it cannot serve is refused, saying why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sloguard.checkpoint import DirectoryStore
from sloguard.checkpointer import Checkpointer
from sloguard.clock import ManualClock
from sloguard.core.model import Rejections
from sloguard.engine import Engine
from sloguard.ingest.offsets import OffsetLedger
from sloguard.ingest.source import FileSource
from sloguard.specfile import load_config
from sloguard.telemetry import Telemetry
from tests.unit.test_report_sla import SLOS, T0, files, run
from tests.unit.test_sla_checkpoint import OLD

__all__ = ["files"]  # the fixture, used by name

TAKEN = T0 + 2 * 86_400_000 + 30_000  # 2026-11-03T00:00:30Z, after the 2 days of logs


async def daemon_checkpoint(slo: Path, logs: Path, directory: Path, taken_ms: int = TAKEN) -> None:
    """What the daemon does with these logs: decode, absorb (aggregator and live SLAs), checkpoint."""
    engine = Engine(load_config(str(slo)))
    ledger = OffsetLedger()

    async def commit() -> None:
        ledger.commit_succeeded(dict(ledger.pending))

    clock = ManualClock(taken_ms)
    cp = Checkpointer(DirectoryStore(directory), engine, ledger, Telemetry(), clock, commit)
    cp.restore()
    invalid = Rejections()
    for record in FileSource([str(logs)]).records():
        batch = engine.decoder.decode(record, invalid)
        engine.aggregator.ingest(batch)
        engine.slas.ingest(batch, clock.now_ms())
    assert await cp.checkpoint("shutdown")


async def test_the_report_from_a_checkpoint_equals_the_report_from_the_logs(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slo, logs = files
    await daemon_checkpoint(slo, logs, tmp_path / "ck")
    capsys.readouterr()  # the daemon's log lines
    now = "2026-11-03T00:00:00Z"
    for fmt in ("json", "csv"):
        common = ("--slo", str(slo), "--month", "2026-11", "--now", now, "--format", fmt)
        status, from_logs, _ = run(capsys, *common, str(logs))
        assert status == 0
        status, from_checkpoint, err = run(capsys, *common, "--checkpoint", str(tmp_path / "ck"))
        assert (status, err) == (0, "")
        if fmt == "json":
            doc = json.loads(from_checkpoint)
            assert doc == json.loads(from_logs)
            compute = doc["slas"][0]["customers"][0]
            assert (compute["customer"], compute["total"], compute["good"]) == ("acme", 2880, 2850)
        else:
            assert from_checkpoint == from_logs
    # Without --now or --month: the period the checkpoint holds, as of when it was taken; a file works too.
    (name,) = DirectoryStore(tmp_path / "ck").names()
    status, out, _ = run(capsys, "--slo", str(slo), "--checkpoint", str(tmp_path / "ck" / name))
    doc = json.loads(out)
    assert status == 0 and doc["slas"][0]["now"] == "2026-11-03T00:00:30Z"
    assert doc["slas"][0]["start"] == "2026-11-01T00:00:00Z" and doc["slas"][0]["elapsed_slices"] == 2 * 1440


async def test_what_a_checkpoint_cannot_report_is_refused(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slo, logs = files
    ck = tmp_path / "ck"
    await daemon_checkpoint(slo, logs, ck)
    capsys.readouterr()

    def refused(*args: str) -> str:
        status, out, err = run(capsys, *args)
        assert status == 2 and out == ""
        return err

    assert "holds no SLA state for compute in 2026-10" in refused(
        "--slo", str(slo), "--month", "2026-10", "--checkpoint", str(ck)
    )
    assert "give no request-log files" in refused("--slo", str(slo), "--checkpoint", str(ck), str(logs))
    assert "cannot read: No such file" in refused("--slo", str(slo), "--checkpoint", str(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    assert "no usable checkpoint" in refused("--slo", str(slo), "--checkpoint", str(tmp_path / "empty"))
    changed = tmp_path / "changed.yaml"
    changed.write_text(SLOS.replace("objective: 99.9", "objective: 99.5"))
    assert "counted for another definition" in refused("--slo", str(changed), "--checkpoint", str(ck))
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(OLD, old / "checkpoint-000000000001.sgc")
    assert "holds no SLA state for compute" in refused("--slo", str(slo), "--checkpoint", str(old))
    (tmp_path / "junk.sgc").write_bytes(b"not a checkpoint")
    assert "truncated" in refused("--slo", str(slo), "--checkpoint", str(tmp_path / "junk.sgc"))
