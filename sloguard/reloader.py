"""Hot reload of the SLO file: on SIGHUP (the daemon's signal handler calls `Reloader.reload`) and when
the file's content changes (`Reloader.watch`, checked every ``reload_interval_seconds``).

An invalid file is refused with a log line naming file and field, and the running config stays; a valid
one replaces it (`Engine.reconfigure`): SLOs whose spec did not change keep their state, removed SLOs stop
being exported.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from sloguard.engine import Engine
from sloguard.logs import get_logger
from sloguard.specfile import SpecError, load_config
from sloguard.telemetry import Telemetry

log = get_logger("sloguard.app")


class Reloader:
    """Re-reads the SLO file at ``path`` into ``engine``; counts outcomes in ``telemetry``."""

    def __init__(self, path: Path | None, engine: Engine, telemetry: Telemetry) -> None:
        self.path = path
        self.engine = engine
        self.telemetry = telemetry

    def reload(self, why: str) -> bool:
        """Re-read the SLO file; apply it if valid, keeping the state of every unchanged SLO.

        Synchronous on the event loop, so no batch is half-absorbed across the switch. True when the file
        is valid (changed or not).
        """
        path = self.path
        if path is None:
            log.warning("reload_ignored", reason="no SLO file path (--config) to re-read", trigger=why)
            return False
        t = self.telemetry
        try:
            config = load_config(path)
        except SpecError as exc:
            t.reload_failures += 1
            t.last_reload_ok = False
            log.error("reload_refused", file=str(path), trigger=why, problems=list(exc.problems))
            return False
        t.last_reload_ok = True
        if config == self.engine.config:
            log.info("reload_unchanged", file=str(path), trigger=why)
            return True
        report = self.engine.reconfigure(config)
        t.reloads += 1
        log.info(
            "reloaded",
            file=str(path),
            trigger=why,
            kept=list(report.restored),
            new_or_changed=list(report.fresh),
            removed=list(report.dropped),
        )
        return True

    async def watch(self, interval_s: float, stopping: asyncio.Event) -> None:
        """Reload when the file's content changes (Kubernetes swaps ConfigMap files by symlink), until
        ``stopping`` is set."""
        if self.path is None:
            return
        last = _read_or_none(self.path)
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval_s)
            current = _read_or_none(self.path)
            if current is not None and current != last:
                last = current
                self.reload("file changed")


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
