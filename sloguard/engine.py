"""The SLO config in force and what is built from it, replaced together when the SLO file is reloaded.

The aggregator holds all the state; the decoder writes label ids into that aggregator's vocabularies; the
exposition renders its snapshots. The absorb step, the checkpointer and the tick all read them from one
`Engine`, so a reload (`reconfigure`, synchronous on the event loop) switches every reader at once and no
slice of a fetch is half-absorbed across the switch (a fetch may be: its earlier slices are in the state
the new aggregator takes over, as the fetches before it are).

The tick copies the aggregator's counts out (`Aggregator.capture`, ~15 MB at 100k series) and, once a
minute, evicts idle series in a worker thread, so the event loop stays free for requests and the Kafka
client meanwhile. `CopyGate` keeps every writer of the aggregator out for that time: the absorb step awaits
`CopyGate.writable` before it decodes (the decoder interns into the aggregator's vocabularies) and
ingests, with no await in between; it holds the gate for a whole fetch (`CopyGate.writing`) while it
absorbs it a slice at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from sloguard import __version__
from sloguard.core.aggregator import Aggregator
from sloguard.core.spec import Config
from sloguard.core.state import RestoreReport
from sloguard.export.collector import Exposition
from sloguard.ingest.decode import Decoder
from sloguard.ingest.presets import effective_input
from sloguard.sla_live import LiveSlas

T = TypeVar("T")


class CopyGate:
    """Closed while a worker thread works on the live aggregator (`run_in_thread`: the tick's eviction of idle
    series and copy of the counts); writers on the event loop await `writable` and then write without
    awaiting anything before they are done.

    The checkpoint's ``export_state`` runs in a worker thread too (`run_in_thread`: the tick's ``advance``
    awaits `writable`). The other users of the aggregator on the loop need not wait: the UI's
    ``bucket_counts`` and a reload's ``export_state`` only read the rings' cells and the series, which a
    capture does not write (it moves the running span sums: `BucketRing.group_sums`); the first
    ``bucket_counts`` of a ring fills its per-slot sums from the cells (`BucketRing.slot_total`), which
    neither a capture nor ``export_state`` touches, on the loop like every write; and an eviction leaves
    an SLO's state as it is and replaces it whole in ``Aggregator.slos`` (a reader sees the SLO before or
    after it: the same events either way). A reload then replaces the aggregator; the work under way ends
    on the old one.

    Callers that take something on the loop that must match the state the thread sees (the checkpoint's
    offsets) await `writable` first, take it, then call `run_in_thread`: nothing runs in between.
    """

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        #: Clear while a write in steps (`writing`) is under way.
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def closed(self) -> bool:
        """A worker thread works on the aggregator."""
        return not self._open.is_set()

    async def writable(self) -> None:
        """Return once no worker thread works on the aggregator and no write in steps is under way (at once
        when none is)."""
        while not (self._open.is_set() and self._idle.is_set()):
            await self._open.wait()
            await self._idle.wait()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """Hold the aggregator for a write made in steps, the loop served between them (the absorb step,
        a slice of a fetch at a time): meanwhile `writable` waits, so no worker thread starts, and nobody
        takes the state and the offsets (the checkpoint) with part of a fetch ingested and its offsets not
        yet marked. Within it nothing else waits on the gate: no thread runs.

        It yields the loop once first, so that those who waited for the previous one run before it (the
        consumer may fetch its next batch without yielding), and not on the way out: what the writer does
        right after (the absorb step marks the fetch's offsets) is done before they run."""
        await asyncio.sleep(0)
        await self.writable()
        self._idle.clear()
        try:
            yield
        finally:
            self._idle.set()

    async def run_in_thread(self, work: Callable[[], T]) -> T:
        """Run ``work`` in a worker thread with the gate closed. Cancelled, it stays closed until the thread
        has ended (a thread cannot be stopped: writers must not start while it runs)."""
        await self.writable()  # one at a time (returns at once, without yielding, when open)
        self._open.clear()
        task = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._open.set()
            else:
                task.add_done_callback(self._reopen)

    def _reopen(self, task: asyncio.Future[Any]) -> None:
        self._open.set()
        if not task.cancelled():
            task.exception()  # retrieved: its caller was cancelled, nobody else will


class Engine:
    """``config`` and the ``aggregator``, ``decoder`` and ``exposition`` made for it."""

    def __init__(
        self, config: Config, *, sloth_compat: bool = False, input_preset: str | None = None
    ) -> None:
        self.sloth_compat = sloth_compat
        #: The preset the settings name, for SLO files without ``input:`` (the file's section wins).
        self.input_preset = input_preset
        self.config = config
        self.aggregator = Aggregator(config)
        #: The SLO file's SLAs, counted live (fed the batches the aggregator gets).
        self.slas = LiveSlas(config, background=True)
        self.decoder = self._decoder(config, self.aggregator)
        self.exposition = self._exposition(config)
        #: Writers wait here while the tick copies the counts out in a worker thread.
        self.gate = CopyGate()

    def _decoder(self, config: Config, aggregator: Aggregator) -> Decoder:
        return Decoder(vocabs=aggregator.vocabs, input=effective_input(config.input, self.input_preset))

    def _exposition(self, config: Config) -> Exposition:
        return Exposition(
            sloth_compat=self.sloth_compat,
            top_k={s.name: s.export_top_k for s in config.slos if s.export_top_k is not None},
            version=__version__,
        )

    def reconfigure(self, config: Config) -> RestoreReport:
        """Switch to ``config``: a fresh aggregator gets the state of every SLO whose spec did not change
        (the report says which were kept, started fresh, dropped), with its own decoder and exposition."""
        fresh = Aggregator(config)
        report = fresh.restore_state(self.aggregator.export_state())
        self.aggregator = fresh
        self.slas = LiveSlas(
            config, self.slas, background=True
        )  # keeps the SLAs whose SLA and SLO are unchanged
        # New vocabularies come with the new aggregator: the decoder must write ids into those (and the
        # file's input: mapping may have changed).
        self.decoder = self._decoder(config, fresh)
        self.config = config
        self.exposition = self._exposition(config)
        return report
