"""Live SLAs in the daemon: one `SlaCounter` per SLA over its current calendar period (docs/sla.md).

The absorb step feeds every batch it gives the aggregator (`LiveSlas.ingest`, with the absorb's ``now``:
the counter covers the period holding ``now``); the tick asks for `LiveSlas.results` and puts them in
the published snapshot, which the exposition turns into ``sloguard_sla_*`` (`sloguard.export.sla`).

Evaluation runs on the event loop (the counters are live state, like the aggregator's buckets), only
when the figures can have changed: a slice closed, or a batch brought events into a slice already
counted (late events); events of the slice in progress change nothing until it closes. It is also
throttled: no sooner than ``_IDLE_FACTOR`` times the last evaluation's duration after it ended, so SLAs
take at most about a tenth of the loop. Between evaluations the previous figures are published again.

A slice is counted once it is over: at ``now - SETTLE_MS`` aligned down to a slice, so events arriving
within ``SETTLE_MS`` after their slice closed are still in the first figures that include the slice.

Not checkpointed: a restart starts each SLA's counts empty (the slices before the restart count as
without traffic), see ``since_ms``; a reload keeps the counters of SLAs whose SLA and SLO did not change.
A new period starts empty; events of a past period arriving after it ended are not counted.
"""

from __future__ import annotations

import time

from sloguard.core.model import EventBatch
from sloguard.core.sla_live import LiveSla, PeriodCounter
from sloguard.core.spec import Config

#: Events of a slice arriving this long after it closed still count in the first figures with it.
SETTLE_MS = 5_000
#: After an evaluation that took d seconds, the next one waits at least this times d.
_IDLE_FACTOR = 9.0


class LiveSlas:
    """The live SLAs of one config: feed batches with `ingest`, read figures with `results`."""

    def __init__(self, config: Config, previous: LiveSlas | None = None) -> None:
        slos = {s.name: s for s in config.slos}
        kept = previous._live if previous is not None else {}
        self._live: dict[str, PeriodCounter] = {}
        for sla in config.slas:
            old = kept.get(sla.name)
            same = old is not None and old.sla == sla and old.slo == slos[sla.slo]
            self._live[sla.name] = old if same and old is not None else PeriodCounter(sla, slos[sla.slo])
        self._dirty = True
        #: The earliest end of the slices counted in ``_results``: an event before it changes them.
        self._counted_until = 0
        self._results: tuple[LiveSla, ...] = ()
        self._slices: tuple[int, ...] = ()
        self._next_at = 0.0
        #: Seconds the last evaluation took (on the event loop).
        self.evaluate_seconds = 0.0

    def __bool__(self) -> bool:
        return bool(self._live)

    def ingest(self, batch: EventBatch, now_ms: int) -> None:
        """Count ``batch`` in every SLA's current period (events outside it are left out)."""
        for live in self._live.values():
            live.ingest(batch, now_ms)
        if self._live and len(batch) and int(batch.ts_ms.min()) < self._counted_until:
            self._dirty = True

    def results(self, now_ms: int, *, force: bool = False) -> tuple[LiveSla, ...]:
        """Every SLA evaluated at ``now_ms - SETTLE_MS`` when due (see the module docstring), else the
        last figures."""
        if not self._live:
            return ()
        at = now_ms - SETTLE_MS
        counters = [live.at(now_ms) for live in self._live.values()]
        slices = tuple((at - c.start_ms) // c.slice_ms for c in counters)
        due = self._dirty or slices != self._slices
        if not force and (not due or time.monotonic() < self._next_at):
            return self._results
        started = time.perf_counter()
        self._results = tuple(live.evaluate(at, now_ms) for live in self._live.values())
        self._dirty, self._slices = False, slices
        self._counted_until = min(c.start_ms + n * c.slice_ms for c, n in zip(counters, slices, strict=True))
        self.evaluate_seconds = time.perf_counter() - started
        self._next_at = time.monotonic() + _IDLE_FACTOR * self.evaluate_seconds
        return self._results
