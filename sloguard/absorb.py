"""The absorb step: one fetched batch into the aggregator, and its rejects to the dead-letter topic.

decode (rejects counted, optionally kept with their original bytes; events from the future refused) ->
dead-letter the rejects (retried with backoff until written or stopping) -> ``Aggregator.ingest`` and the
offsets ingested into the `OffsetLedger` together, which decides when they may be committed (at once, or
once a checkpoint holds them: see `sloguard.ingest.offsets`).

A fetch is absorbed a slice at a time (`SLICE_BYTES`), the event loop served between slices, so that no
request waits for a whole fetch's absorb per turn of the loop it takes. Decoding and ingesting wait while
the tick copies the counts out in a worker thread, and the checkpoint and the tick wait for the whole fetch
(`CopyGate.writing`): the decoder interns into the aggregator's vocabularies, the ingest writes its rings.

The invariant: whoever takes the state and the offsets together (the checkpoint, on the loop once the gate
is open) finds a fetch either wholly ingested with its offsets marked, or not ingested and unmarked;
and a fetch's rejects are written to the dead-letter topic before either. So the fetch's counts enter
the state, and its offsets the ledger, in one hold of the gate, after its rejects are written: a
checkpoint taken while the dead-letter topic is retried holds neither the counts nor the offsets, a stop
meanwhile leaves both out (the records are read again after a restart and counted once), and a crash at
any point re-delivers (a rejected record may reach the dead-letter topic twice), never loses or counts
twice. The decoded slices wait for the write outside the gate; their label ids stay valid (a reload's new
aggregator re-codes them, and a slice whose vocabulary was reset meanwhile is decoded again).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sloguard.clock import Clock
from sloguard.core.model import EventBatch, Rejections
from sloguard.engine import Engine
from sloguard.ingest.decode import FUTURE_TIMESTAMP
from sloguard.ingest.kafka import DeadLetterError, Fetched
from sloguard.ingest.offsets import OffsetLedger
from sloguard.logs import RateLimiter, get_logger
from sloguard.settings import Settings
from sloguard.telemetry import Telemetry

# The daemon's logger: the log lines are the same as before the absorb step had its own module.
log = get_logger("sloguard.app")

#: Record bytes absorbed in one turn of the event loop (at least one record): ~12k events of 170 bytes,
#: ~25 ms. A fetch under a backlog is up to 1 MiB a partition. Smaller slices cost more CPU per event
#: (measured in-process against whole 4 MB fetches at 100k series: 2 MiB +1-5 %, 1 MiB +12-17 %,
#: 256 KiB +24 %), larger ones make requests wait longer per turn.
SLICE_BYTES = 2 << 20
#: Seconds between tries of an unreachable dead-letter topic: the first wait, doubled up to the last.
DEAD_LETTER_BACKOFF_S = (0.5, 10.0)


def _slices(records: Sequence[bytes], limit: int) -> Iterator[Sequence[bytes]]:
    """``records`` in runs of at most ``limit`` bytes (a longer record alone)."""
    start = size = 0
    for i, record in enumerate(records):
        if size and size + len(record) > limit:
            yield records[start:i]
            start, size = i, 0
        size += len(record)
    if start < len(records):
        yield records[start:]


@dataclass(frozen=True, slots=True)
class _Slice:
    """A decoded slice waiting to be ingested: its records, its batch, and the generations of the batch's
    vocabularies when it was decoded (its label ids are valid while they are unchanged)."""

    records: Sequence[bytes]
    batch: EventBatch
    generations: tuple[int, int, int]


def _generations(batch: EventBatch) -> tuple[int, int, int]:
    return (batch.service.vocab.generation, batch.endpoint.vocab.generation, batch.customer.vocab.generation)


class DeadLetters(Protocol):
    """Where rejected records go (`KafkaSource.dead_letter`): returns how many were too large to ever
    be written; raises `DeadLetterError` when they could not be written now."""

    async def dead_letter(self, items: Sequence[tuple[str, bytes]]) -> int: ...


@dataclass
class Absorber:
    """Absorbs fetched batches into ``engine.aggregator``; counts everything in ``telemetry``.

    ``stopping``: once set, a dead-letter topic that cannot be reached no longer holds the batch up (its
    offsets are left unmarked, so the records are read again after a restart).
    """

    engine: Engine
    offsets: OffsetLedger
    dead_letters: DeadLetters
    telemetry: Telemetry
    clock: Clock
    settings: Settings
    stopping: asyncio.Event
    #: Record bytes absorbed per turn of the loop (`SLICE_BYTES`): the daemon lowers it while a scrape is
    #: expected (`sloguard.app.SCRAPE_SLICE_BYTES`).
    slice_bytes: int = SLICE_BYTES
    _limiter: RateLimiter = field(default_factory=RateLimiter)

    async def absorb(self, fetched: Fetched) -> None:
        """Decode, dead-letter what is rejected, then ingest and mark the offsets ingested together."""
        t = self.telemetry
        dead_letter = self.settings.kafka.dead_letter_topic is not None
        rejected: list[tuple[str, bytes]] | None = [] if dead_letter else None
        before = t.invalid.total
        now = self.clock.now_ms()
        # Events stamped beyond now + the allowed skew are refused like malformed ones (counted,
        # dead-lettered with their bytes): the rings keep one minute of room past now.
        horizon = now + int(self.settings.allowed_skew_seconds * 1000)
        # A slice at a time, the loop served between slices: a fetch under a backlog is megabytes (tens
        # of ms to absorb), and every request, /metrics included, waits a whole turn of the loop per
        # step it takes. Not while the tick copies the counts out in a worker thread, and nobody takes the
        # state and the offsets before the whole fetch is ingested and its offsets marked
        # (`CopyGate.writing`). Within a slice nothing is awaited; a reload between slices switches the
        # decoder and the aggregator together (the slices decoded before it are re-coded).
        async with self.engine.gate.writing():
            slices = await self._decode(fetched.records, rejected, horizon)
            if not rejected:
                await self._ingest(slices, fetched, horizon, now)
        if t.invalid.total > before:
            self._log_invalid(t.invalid.total - before)
        if rejected:
            # The rejects are written before the fetch is counted or its offsets marked: until then a
            # checkpoint holds neither, and a stop or a crash re-delivers the whole fetch.
            dropped = await self._dead_letter(rejected)
            if dropped is None:
                return  # stopping with the dead-letter topic unreachable: nothing ingested, nothing marked
            t.dead_lettered += len(rejected) - dropped
            t.dead_letter_dropped += dropped
            async with self.engine.gate.writing():
                await self._ingest(slices, fetched, horizon, self.clock.now_ms())

    async def _decode(
        self, records: Sequence[bytes], rejected: list[tuple[str, bytes]] | None, horizon: int
    ) -> list[_Slice]:
        """Decode ``records`` a slice at a time (the loop served between slices; under the gate)."""
        t = self.telemetry
        out = []
        for i, part in enumerate(_slices(records, self.slice_bytes)):
            if i:
                await asyncio.sleep(0)
            future_before = t.invalid.counts.get(FUTURE_TIMESTAMP, 0)
            batch = self.engine.decoder.decode_many(part, t.invalid, rejected, max_ts_ms=horizon)
            t.events_future += t.invalid.counts.get(FUTURE_TIMESTAMP, 0) - future_before
            t.records_consumed += len(part)
            out.append(_Slice(part, batch, _generations(batch)))
        return out

    async def _ingest(self, slices: list[_Slice], fetched: Fetched, horizon: int, now: int) -> None:
        """Ingest the decoded slices (the loop served between them; under the gate), then mark the
        fetch's offsets ingested: nobody waiting on the gate sees one without the other."""
        t = self.telemetry
        late_before = now - int(self.settings.late_after_seconds * 1000)
        for i, s in enumerate(slices):
            # The first slice follows the decoding in the same turn (or the gate's own yield).
            if i:
                await asyncio.sleep(0)
            engine = self.engine
            batch = s.batch
            if _generations(batch) != s.generations:
                # A vocabulary of the batch was reset since it was decoded (by the ingest of an earlier
                # slice): its ids mean nothing now. Decoding is deterministic (same horizon), so the
                # same events come out; their rejects were counted and dead-lettered the first time.
                batch = engine.decoder.decode_many(s.records, Rejections(), None, max_ts_ms=horizon)
            if len(batch):
                t.events_late += int((batch.ts_ms < late_before).sum())
                engine.aggregator.ingest(batch)
                engine.slas.ingest(batch, now)
                t.events_processed += len(batch)
        self.offsets.ingested(fetched.offsets)

    async def _dead_letter(self, rejected: list[tuple[str, bytes]]) -> int | None:
        """Publish to the dead-letter topic, retrying with backoff until it works or we stop.

        Returns how many records were too large to ever be written (skipped, logged), or None when
        stopping before it worked.
        """
        delay, longest = DEAD_LETTER_BACKOFF_S
        while True:
            try:
                dropped = await self.dead_letters.dead_letter(rejected)
                if dropped:
                    log.error(
                        "dead_letter_too_large",
                        records=dropped,
                        limit_bytes=self.settings.kafka.dead_letter_max_bytes,
                        largest_bytes=max(len(p) for _, p in rejected),
                        hint="raise SLOGUARD_KAFKA__DEAD_LETTER_MAX_BYTES and the topic's max.message.bytes",
                    )
                return dropped
            except DeadLetterError as exc:
                ok, suppressed = self._limiter.allow("dead_letter", time.monotonic())
                if ok:
                    log.error(
                        "dead_letter_failed",
                        error=str(exc),
                        records=len(rejected),
                        suppressed_lines=suppressed,
                    )
            if self.stopping.is_set():
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            delay = min(delay * 2, longest)

    def _log_invalid(self, n: int) -> None:
        ok, suppressed = self._limiter.allow("invalid", time.monotonic())
        if ok:
            log.warning(
                "invalid_events",
                count=n,
                by_reason=dict(self.telemetry.invalid.counts),
                suppressed_lines=suppressed,
            )
