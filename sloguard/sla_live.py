"""Live SLAs in the daemon: one `SlaCounter` per SLA over its current calendar period (docs/sla.md).

The absorb step feeds every batch it gives the aggregator (`LiveSlas.ingest`, with the absorb's ``now``:
the counter covers the period holding ``now``); the tick asks for `LiveSlas.results` and puts them in
the published snapshot, which the exposition turns into ``sloguard_sla_*`` (`sloguard.export.sla`).

In the daemon (``background``) the tick hands the evaluation to a worker thread and publishes it on
the first tick that finds it done; batches absorbed meanwhile are held and counted when it is (the
counters are live state: only one side touches them at a time). It runs only
when the figures can have changed: a slice closed, or a batch brought events into a slice already
counted (late events); events of the slice in progress change nothing until it closes. It is also
throttled: no sooner than ``_IDLE_FACTOR`` times the last evaluation's duration after it ended, so SLAs
take at most about a tenth of a core. Between evaluations the previous figures are published again.

A slice is counted once it is over: at ``now - SETTLE_MS`` aligned down to a slice, so events arriving
within ``SETTLE_MS`` after their slice closed are still in the first figures that include the slice.

Checkpointed with the aggregator (`export_state`, `restore_state`, called by `sloguard.checkpointer` at
the same point as the aggregator's state): a restart carries on counting the period from the counts
the checkpoint holds, and the events after its offsets are read again and counted once. An SLA that
changed, or whose period ended, starts empty (the slices before the restart count as without traffic,
see ``since_ms``); a reload keeps the counters of SLAs whose SLA and SLO did not change.
A new period starts empty; events of a past period arriving after it ended are not counted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from sloguard.core.model import EventBatch, LabelColumn, Vocab
from sloguard.core.sla_live import LiveSla, PeriodCounter, SlaState
from sloguard.core.spec import Config

#: Events of a slice arriving this long after it closed still count in the first figures with it.
SETTLE_MS = 5_000
#: After an evaluation that took d seconds, the next one waits at least this times d.
_IDLE_FACTOR = 9.0


class LiveSlas:
    """The live SLAs of one config: feed batches with `ingest`, read figures with `results`.

    ``background``: `results` runs the evaluation in a worker thread and publishes it on the next call
    that finds it done (the daemon); batches that arrive meanwhile are held, then counted. Without it,
    `results` evaluates at once (tests, tools).
    """

    def __init__(self, config: Config, previous: LiveSlas | None = None, *, background: bool = False) -> None:
        if previous is not None:
            previous._settle()  # an evaluation in flight reads the counters handed over below
        slos = {s.name: s for s in config.slos}
        kept = previous._live if previous is not None else {}
        self._live: dict[str, PeriodCounter] = {}
        for sla in config.slas:
            old = kept.get(sla.name)
            key = (sla, slos[sla.slo], config.exclusions)
            same = old is not None and (old.sla, old.slo, old.exclusions) == key
            self._live[sla.name] = old if same and old is not None else PeriodCounter(*key)
        self.background = background
        self._dirty = True
        #: The earliest end of the slices counted in ``_results``: an event before it changes them.
        self._counted_until = 0
        self._results: tuple[LiveSla, ...] = ()
        self._slices: tuple[int, ...] = ()
        self._next_at = 0.0
        self._running: Future[tuple[LiveSla, ...]] | None = None
        self._held: list[tuple[EventBatch, int]] = []
        #: Seconds the last evaluation took.
        self.evaluate_seconds = 0.0

    def __bool__(self) -> bool:
        return bool(self._live)

    def ingest(self, batch: EventBatch, now_ms: int) -> None:
        """Count ``batch`` in every SLA's current period (events outside it are left out)."""
        if not self._live or not len(batch):
            return
        if self._running is not None:
            self._held.append((_pinned(batch), now_ms))
            return
        for live in self._live.values():
            live.ingest(batch, now_ms)
        if int(batch.ts_ms.min()) < self._counted_until:
            self._dirty = True

    def results(self, now_ms: int, *, force: bool = False) -> tuple[LiveSla, ...]:
        """The figures at ``now_ms - SETTLE_MS`` when due (see the module docstring), else the last ones;
        in the background, the last ones until the evaluation started here is done. ``force``:
        evaluate now, in this thread."""
        if not self._live:
            return ()
        self._collect(wait=force)
        if self._running is not None:
            return self._results
        at = now_ms - SETTLE_MS
        counters = [live.at(now_ms) for live in self._live.values()]
        slices = tuple((at - c.start_ms) // c.slice_ms for c in counters)
        due = self._dirty or slices != self._slices
        if not force and (not due or time.monotonic() < self._next_at):
            return self._results
        self._dirty, self._slices = False, slices
        self._counted_until = min(c.start_ms + n * c.slice_ms for c, n in zip(counters, slices, strict=True))
        lives = tuple(self._live.values())
        if self.background and not force:
            self._running = _WORKER.submit(self._evaluate, lives, at, now_ms)
            return self._results
        self._results = self._evaluate(lives, at, now_ms)
        return self._results

    def _evaluate(self, lives: tuple[PeriodCounter, ...], at: int, now_ms: int) -> tuple[LiveSla, ...]:
        started = time.perf_counter()
        out = tuple(live.evaluate(at, now_ms) for live in lives)
        self.evaluate_seconds = time.perf_counter() - started
        self._next_at = time.monotonic() + _IDLE_FACTOR * self.evaluate_seconds
        return out

    def _collect(self, *, wait: bool) -> None:
        """Publish a finished background evaluation (``wait``: wait for it) and count the held batches."""
        running = self._running
        if running is None or not (wait or running.done()):
            return
        self._running = None
        self._results = running.result()
        held, self._held = self._held, []
        for batch, now_ms in held:
            self.ingest(batch, now_ms)

    def _settle(self) -> None:
        self._collect(wait=True)

    def export_state(self) -> dict[str, SlaState]:
        """Every SLA's counts of its current period, as of every batch ingested so far (waits for the
        evaluation in flight, which reads the counters, and counts the batches held meanwhile)."""
        self._settle()
        states = {name: live.dump() for name, live in self._live.items()}
        return {name: s for name, s in states.items() if s is not None}

    def restore_state(self, states: Mapping[str, SlaState], now_ms: int) -> SlaRestoreReport:
        """Put checkpointed counts back into these fresh counters (start-up): each SLA whose state is of
        the same definition and of the period holding ``now_ms`` (the others start empty)."""
        restored: list[str] = []
        refused: dict[str, str] = {}
        for name, state in states.items():
            live = self._live.get(name)
            why = "no longer configured" if live is None else live.restore(state, now_ms)
            if why is None:
                restored.append(name)
            else:
                refused[name] = why
        self._dirty = True
        fresh = tuple(n for n in self._live if n not in restored)
        return SlaRestoreReport(tuple(restored), fresh, refused)


@dataclass(frozen=True, slots=True)
class SlaRestoreReport:
    """What `LiveSlas.restore_state` did, for the log line: SLAs restored, started empty, and each
    checkpointed SLA dropped with the reason."""

    restored: tuple[str, ...]
    fresh: tuple[str, ...]
    dropped: dict[str, str]


#: The one thread background evaluations run in (one at a time, whichever config they belong to).
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sloguard-sla")


def _pinned(batch: EventBatch) -> EventBatch:
    """``batch`` with label columns that keep their values if the aggregator resets its vocabularies
    before the batch is counted (`Vocab.reset` replaces the name list; a copy sharing it keeps it)."""

    def pin(column: LabelColumn) -> LabelColumn:
        vocab = Vocab()
        vocab.ids, vocab.names, vocab.generation = (
            column.vocab.ids,
            column.vocab.names,
            column.vocab.generation,
        )
        return LabelColumn(column.codes, vocab)

    return EventBatch(
        batch.ts_ms,
        batch.status,
        batch.latency_ms,
        pin(batch.service),
        pin(batch.endpoint),
        pin(batch.customer),
    )
