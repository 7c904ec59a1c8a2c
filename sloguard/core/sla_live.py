"""An SLA counted live: the `SlaCounter` of the calendar period holding ``now`` (docs/sla.md, "Live").

Pure, like the rest of the core: ``now`` is an argument. `sloguard.sla_live` feeds it from the daemon.

`PeriodCounter.dump` and `PeriodCounter.restore` carry the counts through a daemon checkpoint
(`SlaState`): restored only into the same SLA, SLO and maintenance windows (`sla_fingerprint`) and the
same period; otherwise the counter starts empty.
"""

from __future__ import annotations

from dataclasses import dataclass

from sloguard.core.exclusions import Exclusion
from sloguard.core.model import EventBatch
from sloguard.core.sla import SlaCounter, SlaCounterState, SlaResult, SlaSpec
from sloguard.core.spec import SloSpec


@dataclass(frozen=True, slots=True)
class LiveSla:
    """One SLA's figures at an instant, and since when its period has been counted."""

    result: SlaResult
    #: Counting started here: the period start, or later when the process started within the period
    #: with no checkpointed counts of it (slices before it hold no events).
    since_ms: int


@dataclass(frozen=True, slots=True)
class SlaState:
    """One live SLA's counts in a checkpoint: what they were counted for, since when, and the cells."""

    fingerprint: str
    since_ms: int
    counter: SlaCounterState


def sla_fingerprint(sla: SlaSpec, slo: SloSpec, exclusions: tuple[Exclusion, ...]) -> str:
    """Identity of what an SLA's counts mean: the SLA, its SLO and the maintenance windows that apply
    to it (their events were left out). Equal fingerprints: the counts can be carried over."""
    mine = tuple(x for x in exclusions if x.applies_to(slo))
    return repr((sla, slo, mine))


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

    def dump(self) -> SlaState | None:
        """The counts of the current period (None: nothing counted yet)."""
        if self.counter is None:
            return None
        return SlaState(
            sla_fingerprint(self.sla, self.slo, self.exclusions), self.since_ms, self.counter.dump()
        )

    def restore(self, state: SlaState, now_ms: int) -> str | None:
        """Take ``state``'s counts if they are of this SLA as configured and of the period holding
        ``now_ms``; else keep counting afresh and say why (for a log line)."""
        if state.fingerprint != sla_fingerprint(self.sla, self.slo, self.exclusions):
            return "the SLA, its SLO or their maintenance windows changed"
        start, end = self.sla.period.bounds(now_ms)
        if (state.counter.start_ms, state.counter.end_ms) != (start, end):
            return "the counts are of another period"
        counter = SlaCounter(self.sla, self.slo, start, end, self.exclusions)
        try:
            counter.load(state.counter)
        except ValueError as exc:
            return f"unusable counts: {exc}"
        self.counter, self.since_ms = counter, min(state.since_ms, now_ms)
        return None
