"""`sloguard report sla --checkpoint`: the live SLA counters a daemon checkpoint holds, as `SlaCounter`s.

The daemon checkpoints each SLA's counts of its current period with the offsets they cover
(`sloguard.checkpointer`), the same per-customer, per-slice cells the report counts from logs
(`sloguard.report_sla.run`). So a checkpoint gives the report of that period as of the checkpoint: the
same figures as the logs the daemon had read by then. Refused, saying why, when the checkpoint holds no
counts of an SLA, counts of another definition of it, or of another period than ``--month``.
"""

from __future__ import annotations

from pathlib import Path

from sloguard.checkpoint import Checkpoint, CheckpointError, DirectoryStore, decode, load_latest
from sloguard.core.sla import SlaCounter, SlaSpec, month_range
from sloguard.core.sla_live import sla_fingerprint
from sloguard.core.spec import Config
from sloguard.report import rfc3339


class CheckpointReportError(Exception):
    """The checkpoint cannot give this report (the message says why)."""


def read(path: str) -> tuple[str, Checkpoint]:
    """The checkpoint ``path`` names: a file, or the newest good one of a checkpoint directory."""
    p = Path(path)
    if p.is_dir():
        refused: list[str] = []
        found = load_latest(DirectoryStore(p), lambda name, why: refused.append(f"{name}: {why}"))
        if found is None:
            why = f" (refused: {'; '.join(refused)})" if refused else ""
            raise CheckpointReportError(f"{p}: no usable checkpoint in this directory{why}")
        return str(p / found[0]), found[1]
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CheckpointReportError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        return str(p), decode(data)
    except CheckpointError as exc:
        raise CheckpointReportError(f"{p}: {exc}") from None


def counters(
    where: str, cp: Checkpoint, config: Config, specs: list[SlaSpec], month: tuple[int, int] | None
) -> list[SlaCounter]:
    """A counter per SLA of ``specs`` holding the checkpoint's counts (its period: ``month`` if given)."""
    slos = {s.name: s for s in config.slos}
    out = []
    for sla in specs:
        slo = slos[sla.slo]
        state = cp.slas.get(sla.name)
        if state is None:
            raise CheckpointReportError(
                f"{where} holds no SLA state for {sla.name} (the daemon had not counted it, or the "
                "checkpoint predates SLA state); run the report from the request logs"
            )
        if state.fingerprint != sla_fingerprint(sla, slo, config.exclusions):
            raise CheckpointReportError(
                f"{where}: {sla.name} was counted for another definition (the SLA, its SLO or their "
                "maintenance windows differ from this SLO file's); give the SLO file the daemon ran with"
            )
        c = state.counter
        if month is not None and month_range(*month, sla.period.timezone) != (c.start_ms, c.end_ms):
            raise CheckpointReportError(
                f"{where} holds no SLA state for {sla.name} in {month[0]:04d}-{month[1]:02d}: its counts "
                f"are of {rfc3339(c.start_ms)} to {rfc3339(c.end_ms)}"
            )
        counter = SlaCounter(sla, slo, c.start_ms, c.end_ms, config.exclusions)
        try:
            counter.load(c)
        except ValueError as exc:
            raise CheckpointReportError(f"{where}: {sla.name}'s counts are unusable: {exc}") from None
        out.append(counter)
    return out
