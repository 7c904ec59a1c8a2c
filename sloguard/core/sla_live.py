"""An SLA counted live: the `SlaCounter` of the calendar period holding ``now`` (docs/sla.md, "Live").

Pure, like the rest of the core: ``now`` is an argument. `sloguard.sla_live` feeds it from the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass

from sloguard.core.exclusions import Exclusion
from sloguard.core.model import EventBatch
from sloguard.core.sla import SlaCounter, SlaResult, SlaSpec
from sloguard.core.spec import SloSpec


@dataclass(frozen=True, slots=True)
class LiveSla:
    """One SLA's figures at an instant, and since when its period has been counted."""

    result: SlaResult
    #: Counting started here: the period start, or later when the process started within the period
    #: (slices before it hold no events: the daemon does not checkpoint SLA counts).
    since_ms: int


class PeriodCounter:
    """One SLA over its current period: a fresh `SlaCounter` each time ``now`` enters a new one."""

    def __init__(self, sla: SlaSpec, slo: SloSpec, exclusions: tuple[Exclusion, ...] = ()) -> None:
        self.sla, self.slo, self.exclusions = sla, slo, exclusions
        self.counter: SlaCounter | None = None
        self.since_ms = 0

    def at(self, now_ms: int) -> SlaCounter:
        """The counter of the period holding ``now_ms``."""
        c = self.counter
        if c is None or not c.start_ms <= now_ms < c.end_ms:
            start, end = self.sla.period.bounds(now_ms)
            self.since_ms = now_ms if c is None else start
            c = self.counter = SlaCounter(self.sla, self.slo, start, end, self.exclusions)
        return c

    def ingest(self, batch: EventBatch, now_ms: int) -> None:
        """Count ``batch``'s events of the period holding ``now_ms`` (others are left out)."""
        self.at(now_ms).ingest(batch)

    def evaluate(self, at_ms: int, now_ms: int) -> LiveSla:
        """The figures of the period holding ``now_ms`` with the slices before ``at_ms`` counted."""
        c = self.at(now_ms)
        return LiveSla(c.evaluate(max(at_ms, c.start_ms)), max(self.since_ms, c.start_ms))
