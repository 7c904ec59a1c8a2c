"""The absorb step: one fetched batch into the aggregator, and its rejects to the dead-letter topic.

decode (rejects counted, optionally kept with their original bytes) -> refuse events from the future ->
``Aggregator.ingest`` -> dead-letter the rejects (retried with backoff until written or stopping) -> the
offsets are ingested into the `OffsetLedger`, which decides when they may be committed (at once, or once a
checkpoint holds them: see `sloguard.ingest.offsets`).

A fetch is absorbed a slice at a time (`SLICE_BYTES`), the event loop served between slices, so that no
request waits for a whole fetch's absorb per turn of the loop it takes. Decoding and ingesting wait while
the tick copies the counts out in a worker thread, and the checkpoint and the tick wait for the whole fetch
(`CopyGate.writing`): the decoder interns into the aggregator's vocabularies, the ingest writes its rings.

Dead-lettering comes before the offsets are marked: a crash in between re-delivers, never loses.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sloguard.clock import Clock
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
    _limiter: RateLimiter = field(default_factory=RateLimiter)

    async def absorb(self, fetched: Fetched) -> None:
        """Decode, dead-letter what is rejected, ingest, then mark the offsets ingested."""
        t = self.telemetry
        dead_letter = self.settings.kafka.dead_letter_topic is not None
        rejected: list[tuple[str, bytes]] | None = [] if dead_letter else None
        before = t.invalid.total
        now = self.clock.now_ms()
        # Events stamped beyond now + the allowed skew are refused like malformed ones (counted,
        # dead-lettered with their bytes): the rings keep one minute of room past now.
        horizon = now + int(self.settings.allowed_skew_seconds * 1000)
        late_before = now - int(self.settings.late_after_seconds * 1000)
        # A slice at a time, the loop served between slices: a fetch under a backlog is megabytes (tens
        # of ms to absorb), and every request, /metrics included, waits a whole turn of the loop per
        # step it takes. Not while the tick copies the counts out in a worker thread, and nobody takes the
        # state and the offsets before the whole fetch is ingested (`CopyGate.writing`). Within a slice
        # nothing is awaited; a reload between slices switches the decoder and the aggregator together.
        async with self.engine.gate.writing():
            for i, records in enumerate(_slices(fetched.records, SLICE_BYTES)):
                if i:
                    await asyncio.sleep(0)
                engine = self.engine
                future_before = t.invalid.counts.get(FUTURE_TIMESTAMP, 0)
                batch = engine.decoder.decode_many(records, t.invalid, rejected, max_ts_ms=horizon)
                t.events_future += t.invalid.counts.get(FUTURE_TIMESTAMP, 0) - future_before
                t.records_consumed += len(records)
                if len(batch):
                    t.events_late += int((batch.ts_ms < late_before).sum())
                    engine.aggregator.ingest(batch)
                    engine.slas.ingest(batch, now)
                    t.events_processed += len(batch)
        if rejected:
            # Dead-letter before marking absorbed: a crash in between re-delivers, never loses.
            dropped = await self._dead_letter(rejected)
            if dropped is None:
                return  # stopping with the dead-letter topic unreachable: leave these offsets uncommitted
            t.dead_lettered += len(rejected) - dropped
            t.dead_letter_dropped += dropped
        if t.invalid.total > before:
            self._log_invalid(t.invalid.total - before)
        self.offsets.ingested(fetched.offsets)

    async def _dead_letter(self, rejected: list[tuple[str, bytes]]) -> int | None:
        """Publish to the dead-letter topic, retrying with backoff until it works or we stop.

        Returns how many records were too large to ever be written (skipped, logged), or None when
        stopping before it worked.
        """
        delay = 0.5
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
            delay = min(delay * 2, 10.0)

    def _log_invalid(self, n: int) -> None:
        ok, suppressed = self._limiter.allow("invalid", time.monotonic())
        if ok:
            log.warning(
                "invalid_events",
                count=n,
                by_reason=dict(self.telemetry.invalid.counts),
                suppressed_lines=suppressed,
            )
