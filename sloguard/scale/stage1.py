"""Stage 1, `sloguard run --stage partial`: input partitions -> decoded ranges -> partial records.

Stateless between ranges. It consumes the input topics in its own group (``<group_id>-partial``), keeps
per owned input partition a `Cutter` and the records fetched but not cut yet, and per fetch runs the
cut protocol of `sloguard.scale.cuts` for every range ready, all partitions together (one round trip
per step, not per range):

1. the ranges: each partition's next forced cut (from the cuts log, on assignment) or what is fetched,
   at most ``scale.range_max_records`` offsets;
2. their intents to the cuts topic (partition = input partition mod its count), acknowledged;
3. a commit of each partition's first range start (where it already is): accepted only if this member
   is still in the current generation, which fences every intent of step 2 (a zombie stops here);
4. decode each range, dead-letter its rejects, summarise it, split it by series, produce one piece per
   partials partition, wait for the acknowledgements; the range's end becomes committable.

Decoding is deterministic, as stage 2's duplicate detection needs (the same range gives the same
records): an event stamped later than the newest Kafka timestamp of its range + ``allowed_skew_seconds``
is refused as ``future_timestamp`` (the single process compares with its wall clock instead, which would
make a range's partial depend on when it was read). Late events are not judged here (stage 2 has no
per-event view either): ``sloguard_events_late_total`` stays 0 in stage 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace

from sloguard.core.model import EventBatch
from sloguard.core.spec import Config
from sloguard.ingest.decode import FUTURE_TIMESTAMP, Decoder
from sloguard.ingest.kafka import TP, DeadLetterError, KafkaSource
from sloguard.ingest.kafka_producer import BatchProducer
from sloguard.ingest.kafka_topics import PartitionReader, partition_counts
from sloguard.ingest.presets import effective_input
from sloguard.logs import RateLimiter, get_logger
from sloguard.scale import faults
from sloguard.scale.codec import encode_pieces
from sloguard.scale.cuts import Cutter, Intent, decode_intent, encode_intent, resume
from sloguard.scale.partials import InputRange, config_fingerprint, split, summarise
from sloguard.scale.view import OwnedCounts
from sloguard.settings import Settings
from sloguard.telemetry import Telemetry

__all__ = ["PartialStage", "decode_fingerprint"]

log = get_logger("sloguard.scale.partial")

#: Label vocabularies of the long-lived decoder are reset past this many values (as the aggregator does).
_VOCAB_LIMIT = 200_000
#: Records of the cuts log read per look back, doubled until the chain's start is found.
_CUTS_WINDOW = 1000
#: A free cut waits until the partition's oldest uncut record was fetched this long ago (or a range is
#: full): every range costs stage 2 one record per partials partition to apply whatever its size, so
#: cutting at every fetch (several a second per partition under light load) made stage 2 the bottleneck.
#: It bounds the delay stage 1 adds to freshness.
RANGE_LINGER_S = 0.3
#: While a partition is behind (records beyond those fetched are already in its log), a free cut waits
#: longer: stage 2 pays ~15-20 ms a record whatever the range's size (per SLO and ring, not per event),
#: so a backlog cut at the linger (62.5k-event ranges in bench-scale) cost it ~3 us an event, and
#: 250k-event ranges ~1 us. Freshness is lost anyway while behind. Bounded by the bytes held (all owned
#: partitions' buffers share `RANGE_BEHIND_BYTES`, each at least `RANGE_BEHIND_MIN_BYTES`) and by the
#: time a range may wait (`RANGE_BEHIND_MAX_S`: its input offsets are committed only once it is
#: produced). Once the partition is caught up, the linger alone decides again.
RANGE_BEHIND_BYTES = 128 << 20
RANGE_BEHIND_MIN_BYTES = 8 << 20
RANGE_BEHIND_MAX_S = 10.0
#: Behind: more than this many records in the log past those fetched (one may be the marker of the last
#: transaction of a transactional producer, which is never fetched as a record).
RANGE_BEHIND_LAG = 1


def decode_fingerprint(config: Config, settings: Settings) -> bytes:
    """The fingerprint stage 1 stamps and stage 2 requires: the SLO file and the input mapping in force
    (the file's ``input:`` or the ``SLOGUARD_INPUT__PRESET`` preset), which decides what a range holds."""
    mapping = effective_input(config.input, settings.input.preset)
    return config_fingerprint(config, extra=f"input={mapping!r}")


class _StoppedError(Exception):
    """Stopping while a range's rejects could not be dead-lettered."""


@dataclass
class _Buffer:
    """Records of one input partition fetched but not in a produced range yet."""

    offsets: list[int] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)
    #: When the oldest record held was fetched (`time.monotonic`).
    since: float = 0.0
    #: Bytes of the values held.
    size: int = 0

    def end(self) -> int:
        return self.offsets[-1] + 1 if self.offsets else -1

    def take(self, end: int) -> tuple[list[int], list[bytes | None]]:
        """Remove and return (timestamps, values) of the records before offset ``end``."""
        n = next((i for i, o in enumerate(self.offsets) if o >= end), len(self.offsets))
        ts, values = self.timestamps[:n], self.values[:n]
        del self.offsets[:n], self.timestamps[:n], self.values[:n]
        self.size -= sum(len(v) for v in values if v is not None)
        return ts, values


def _grows(buf: _Buffer, lag: int, now: float, behind_bytes: int) -> bool:
    """Whether a free cut of ``buf`` waits: younger than `RANGE_LINGER_S`, or its partition is behind
    (``lag`` records in the log past those fetched, more than `RANGE_BEHIND_LAG`) and it holds less
    than ``behind_bytes`` and is younger than `RANGE_BEHIND_MAX_S`."""
    age = now - buf.since
    if age < RANGE_LINGER_S:
        return True
    return lag > RANGE_BEHIND_LAG and buf.size < behind_bytes and age < RANGE_BEHIND_MAX_S


class PartialStage:
    """Stage 1 (see the module docstring). ``telemetry`` counts what it did."""

    def __init__(self, settings: Settings, config: Config) -> None:
        self.settings = settings
        self.config = config
        base = settings.kafka.to_config()
        self.partials_topic, self.cuts_topic, _ = settings.scale.topics(base.topics[0])
        self.kafka = replace(base, group_id=f"{base.group_id}-partial")
        self.source = KafkaSource(self.kafka, self._on_revoke, by_partition=True)
        record_cap = settings.scale.max_record_bytes
        internal = replace(base, topics=(self.partials_topic, self.cuts_topic), dead_letter_topic=None)
        self.producer = BatchProducer(internal, acks="all", max_batch_bytes=record_cap + 64 * 1024)
        self.reader = PartitionReader(base)
        # The same mapping as the single process (`sloguard.engine`): the file's input: or the preset.
        self.decoder = Decoder(input=effective_input(config.input, settings.input.preset))
        self.fingerprint = decode_fingerprint(config, settings)
        self.telemetry = Telemetry(stage="partial")
        self.partitions = 0
        self.cuts_partitions = 0
        self.cutters: dict[TP, Cutter] = {}
        self.buffers: dict[TP, _Buffer] = {}
        self._lock = asyncio.Lock()
        self._last_commit = time.monotonic()
        self._limiter = RateLimiter()
        #: Per partition, the offset last sought back to (`_refetch`).
        self._refetched: dict[TP, int] = {}

    async def start(self) -> None:
        counts = await partition_counts(self.kafka, [self.partials_topic, self.cuts_topic])
        self.partitions, self.cuts_partitions = counts[self.partials_topic], counts[self.cuts_topic]
        await self.producer.start()
        await self.reader.start()
        await self.source.start()
        log.info("partial_stage_started", partials=self.partials_topic, partitions=self.partitions)

    async def close(self) -> None:
        async with self._lock:
            await self.source.stop()  # commits the ends of produced ranges
        await self.producer.stop()
        await self.reader.stop()

    def ready(self) -> tuple[bool, str]:
        return self.source.ready()

    def behind(self) -> bool:
        """Never: stage 1 exports no series, so its ticks are cheap anyway."""
        return False

    def export_counts(self, now_ms: int) -> OwnedCounts:
        """Nothing per SLO, not even the constants (objective, info, thresholds): the rules' no-data
        ticket is ``absent(sloguard_slo_objective_ratio{slo=...})``, which must fire when every merge
        process is down, whatever the stage-1 processes still export. Only self-metrics."""
        return OwnedCounts(now_ms=now_ms, slos=(), latency=None, events=0, newest_event_ms=None)

    async def _on_revoke(self) -> None:
        # Wait for the step in flight (its produced ends become committable), then forget every cut:
        # the next owner, maybe us, resumes from the committed offset and the cuts log.
        async with self._lock:
            self.cutters.clear()
            self.buffers.clear()

    # -- one step -----------------------------------------------------------------------------------

    async def step(self, stopping: asyncio.Event) -> None:
        fetched = await self.source.fetch()
        async with self._lock:
            current = self.source.offsets.current(fetched.offsets)
            owned = self.source.assignment
            for tp, (offsets, timestamps, values) in fetched.parts.items():
                if tp not in current or tp not in owned:
                    continue
                if tp not in self.cutters:
                    await self._assigned(tp, offsets[0])
                buf = self.buffers.setdefault(tp, _Buffer())
                expected = buf.end() if buf.offsets else self.cutters[tp].start
                if offsets[0] > expected and self._refetch(tp, expected, offsets[0]):
                    continue
                keep = [i for i, o in enumerate(offsets) if o >= expected]
                if keep and not buf.offsets:
                    buf.since = time.monotonic()
                buf.offsets += [offsets[i] for i in keep]
                buf.timestamps += [timestamps[i] for i in keep]
                kept = [values[i] for i in keep]
                buf.values += kept
                buf.size += sum(len(v) for v in kept if v is not None)
                self.telemetry.records_consumed += len(keep)
            ranges = self._ranges()
            if ranges:
                await self._produce_round(ranges, stopping)
        if time.monotonic() - self._last_commit >= self.settings.commit_interval_seconds:
            self._last_commit = time.monotonic()
            await self.source.commit()

    def _refetch(self, tp: TP, expected: int, got: int) -> bool:
        """Records ``[expected, got)`` of ``tp`` were fetched but dropped (a fetch that spanned a
        rebalance): seek back and read them again rather than cut a range without them. True: skip these
        records; False (go on with the gap, logged) if the same gap comes back: the records are gone."""
        if self._refetched.get(tp) == expected:
            log.error("input_gap", partition=f"{tp[0]}/{tp[1]}", expected=expected, got=got)
            return False
        self._refetched[tp] = expected
        log.info("refetching", partition=f"{tp[0]}/{tp[1]}", expected=expected, got=got)
        self.source.seek(tp, expected)  # False: not ours any more; skip the records either way
        return True

    def _ranges(self) -> list[InputRange]:
        out = []
        cap = self.settings.scale.range_max_records
        now = time.monotonic()
        lag = self.source.lag()
        behind_bytes = max(RANGE_BEHIND_MIN_BYTES, RANGE_BEHIND_BYTES // max(1, len(self.cutters)))
        for tp, cutter in self.cutters.items():
            buf = self.buffers.get(tp)
            if buf is None or not buf.offsets:
                continue
            if (
                not cutter.forced
                and len(buf.offsets) < cap
                and _grows(buf, lag.get(tp, 0), now, behind_bytes)
            ):
                continue  # a free cut of a young buffer, or of one behind: let it grow
            # Several ranges may be ready (forced cuts): walk them on the cutter, then put it back;
            # `produced` moves it on for real once they are acknowledged.
            saved = cutter.start, list(cutter.forced)
            while (rng := cutter.next_range(buf.end(), cap)) is not None:
                out.append(rng)
                cutter.produced(rng)
            cutter.start, cutter.forced = saved
        return out

    async def _assigned(self, tp: TP, first: int) -> None:
        """A newly owned partition: where the group committed, and the cuts the previous owners made."""
        committed = await self.source.committed_offset(tp)
        start = committed if committed is not None else first
        if committed is None and self.kafka.auto_offset_reset == "earliest":
            # Where a group without commits starts: the log's start, whatever this fetch began with.
            start, _ = await self.reader.bounds(tp[0], tp[1])
        intents = await self._read_intents(tp, start)
        forced = resume(start, intents)
        self.cutters[tp] = Cutter(tp[0], tp[1], self.source.generation(), start, forced)
        if forced:
            log.info("following_cuts", partition=f"{tp[0]}/{tp[1]}", start=start, cuts=len(forced))
        log.debug("assigned_partition", partition=tp[1], committed=committed, first=first, forced=forced)

    async def _read_intents(self, tp: TP, committed: int) -> list[Intent]:
        """Intents of ``tp`` from the cuts log's tail: looking further back until one ends at or before
        ``committed`` (every intent of the chain from there was appended after it) or the log starts."""
        part = tp[1] % self.cuts_partitions
        begin, end = await self.reader.bounds(self.cuts_topic, part)
        window = _CUTS_WINDOW
        while True:
            lo = max(begin, end - window)
            values = await self.reader.read(self.cuts_topic, part, lo, end)
            intents = []
            for v in values:
                with contextlib.suppress(ValueError):
                    i = decode_intent(v)
                    if (i.topic, i.partition) == tp:
                        intents.append(i)
            if lo == begin or any(i.end <= committed for i in intents):
                return intents
            window *= 2

    async def _produce_round(self, ranges: list[InputRange], stopping: asyncio.Event) -> None:
        log.debug("round", ranges=" ".join(f"{r.partition}[{r.start},{r.end})" for r in ranges))
        # Step 2: the intents, acknowledged.
        by_cut: dict[int, list[bytes]] = {}
        for rng in ranges:
            intent = self.cutters[(rng.topic, rng.partition)].intent(rng)
            by_cut.setdefault(rng.partition % self.cuts_partitions, []).append(encode_intent(intent))
        acks = [f for p, vs in by_cut.items() for f in await self.producer.send(self.cuts_topic, p, vs)]
        await asyncio.gather(*acks)
        faults.point("stage1.after_intent_before_commit")
        # Step 3: commit each partition's first start; refused -> we are not the owner any more.
        firsts: dict[TP, int] = {}
        for rng in ranges:
            firsts.setdefault((rng.topic, rng.partition), rng.start)
        self.source.absorbed(firsts)
        if not await self.source.commit():
            log.warning("cut_commit_refused", partitions=len(firsts), hint="rebalanced; not producing")
            self.cutters.clear()
            self.buffers.clear()
            return
        # Step 4: the ranges' pieces, acknowledged; then each end is committable.
        futures = []
        try:
            for rng in ranges:
                futures += await self._produce_range(rng, stopping)
        except _StoppedError:
            # Stopping with rejects not dead-lettered: produce nothing more; the ranges' intents are
            # durable, so whoever reads them next cuts them the same way.
            self.cutters.clear()
            self.buffers.clear()
            return
        await asyncio.gather(*futures)
        faults.point("stage1.after_produce_before_commit")
        for rng in ranges:
            tp = (rng.topic, rng.partition)
            self.cutters[tp].produced(rng)
            self.source.absorbed({tp: rng.end})

    async def _produce_range(self, rng: InputRange, stopping: asyncio.Event) -> list[asyncio.Future[object]]:
        tp = (rng.topic, rng.partition)
        timestamps, values = self.buffers[tp].take(rng.end)
        if len(values) != rng.end - rng.start:
            log.debug("range_records", partition=rng.partition, start=rng.start, end=rng.end, n=len(values))
        batch = await self._decode(timestamps, [v for v in values if v is not None], stopping)
        state = summarise(self.config, [batch])
        futures: list[asyncio.Future[object]] = []
        cap = self.settings.scale.max_record_bytes
        for p, piece in enumerate(split(self.config, state, self.partitions)):
            records = encode_pieces(self.config, rng, self.fingerprint, p, self.partitions, piece, cap)
            futures += await self.producer.send(self.partials_topic, p, records)
            self.telemetry.partials_produced += len(records)
            if p == 0:
                await faults.point_after("stage1.mid_produce", futures)
        self.telemetry.partial_ranges += 1
        self.telemetry.events_processed += len(batch)
        return futures

    async def _decode(
        self, timestamps: list[int], values: list[bytes], stopping: asyncio.Event
    ) -> EventBatch:
        """Decode a range deterministically (see the module docstring) and dead-letter its rejects."""
        t = self.telemetry
        # Bound the decoder's vocabularies before decoding, never after: the batch returned carries ids
        # into them, and `summarise` reads its labels through them (a reset after decoding left the
        # batch's ids pointing past an emptied vocabulary: an IndexError on the first range past the limit).
        for vocab in (
            self.decoder.vocabs.service,
            self.decoder.vocabs.endpoint,
            self.decoder.vocabs.customer,
        ):
            if len(vocab) > _VOCAB_LIMIT:
                vocab.reset()
        newest = max(timestamps, default=0)
        # A record without a timestamp (-1) gives no horizon: nothing is refused as future then.
        horizon = newest + int(self.settings.allowed_skew_seconds * 1000) if newest > 0 else None
        rejected: list[tuple[str, bytes]] | None = [] if self.kafka.dead_letter_topic else None
        future_before = t.invalid.counts.get(FUTURE_TIMESTAMP, 0)
        batch = self.decoder.decode_many(values, t.invalid, rejected, max_ts_ms=horizon)
        t.events_future += t.invalid.counts.get(FUTURE_TIMESTAMP, 0) - future_before
        if rejected:
            await self._dead_letter(rejected, stopping)
        return batch

    async def _dead_letter(self, rejected: list[tuple[str, bytes]], stopping: asyncio.Event) -> None:
        """Until written (the range's end is committed only after this), with backoff; on stop, give up:
        nothing of this range is committable then, so it is read again."""
        delay = 0.5
        while True:
            try:
                dropped = await self.source.dead_letter(rejected)
                self.telemetry.dead_lettered += len(rejected) - dropped
                self.telemetry.dead_letter_dropped += dropped
                return
            except DeadLetterError as exc:
                ok, suppressed = self._limiter.allow("dead_letter", time.monotonic())
                if ok:
                    log.error("dead_letter_failed", error=str(exc), suppressed_lines=suppressed)
            if stopping.is_set():
                raise _StoppedError
            await asyncio.sleep(delay)
            delay = min(2 * delay, 10.0)
