"""Stage 2, `sloguard run --stage merge`: partials partitions -> exactly-once state -> /metrics.

It consumes the partials topic in its own group (``<group_id>-merge``). Per owned partials partition:

* **on assignment**, before anything of it is applied, its latest checkpoint is restored (the state, the
  applied ranges and the partials offset are one checkpoint record, so they agree) and the partition is
  sought to that offset; with none, it starts at the beginning of the partials log. /readyz is 503
  meanwhile. Among the newest few complete checkpoints the one with the highest partials offset wins (a
  zombie's late checkpoint is self-consistent but may be behind);
* each record is decoded and offered to the partition's `Merger`: new ranges are applied, duplicates
  dropped and counted (``sloguard_partials_duplicate_total``), conflicts refused and counted; a record of
  another SLO file or layout stops that partition (logged, /readyz 503) rather than skip it;
* every ``checkpoint.interval`` (and on revocation and shutdown) each changed partition is checkpointed,
  and only then is its partials offset committed;
* on revocation (aiokafka revokes every partition at a rebalance): checkpoint, commit, and drop the
  partition's state, so its series stop being exported here.

Checkpoints go to the Kafka topic ``<input>-sloguard-checkpoints`` (`KafkaCheckpointStore`, one key per
partials partition) or, with ``checkpoint.dir`` set, to ``<dir>/<partials topic>-<partition>/`` on a volume
every replica mounts.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace

from sloguard import __version__
from sloguard.checkpoint import Checkpoint, CheckpointError, CheckpointStore, DirectoryStore, decode, encode
from sloguard.clock import Clock, SystemClock
from sloguard.core.aggregator import Aggregator
from sloguard.core.snapshot import Snapshot
from sloguard.core.spec import Config
from sloguard.ingest.kafka import TP, KafkaSource
from sloguard.ingest.kafka_store import KafkaCheckpointStore
from sloguard.ingest.kafka_topics import partition_counts
from sloguard.logs import get_logger
from sloguard.scale import faults
from sloguard.scale.applied import Applied, Verdict
from sloguard.scale.codec import decode_piece
from sloguard.scale.merger import Merger, Refused, held_bytes_each
from sloguard.scale.stage1 import decode_fingerprint
from sloguard.scale.view import OwnedCounts, ViewCache, owned_counts
from sloguard.settings import Settings
from sloguard.telemetry import Telemetry

__all__ = ["MergeStage", "Owned"]

log = get_logger("sloguard.scale.merge")

#: Complete checkpoints looked at on restore (the one with the highest partials offset wins).
_RESTORE_CANDIDATES = 3
#: Seconds of applying after which `MergeStage.step` lets other tasks run (the tick, /metrics).
_APPLY_SLICE_S = 0.05
#: Slices of one fetch's records in a row after which the stage is applying a backlog (`behind`).
_BEHIND_SLICES = 10
#: Slices within which a fetch is applied once the stage has caught up (`behind` is then False).
_CAUGHT_UP_SLICES = 2
#: Records known to wait past the last fetch in a partition beyond which the stage is behind (as stage
#: 1's `RANGE_BEHIND_LAG`: a log's end may be one past its last record).
_BEHIND_LAG = 1


@dataclass
class Owned:
    """One owned partials partition: its merger, the next partials offset, and whether it changed since
    its last checkpoint or was stopped by a refused record."""

    merger: Merger
    offset: int
    dirty: bool = False
    refused: str | None = None


def _raise_in_loop(task: asyncio.Task[None]) -> None:
    """A failed background checkpoint is not lost: the loop's exception handler reports it."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        asyncio.get_running_loop().call_exception_handler(
            {"message": "checkpoint task failed", "exception": exc, "task": task}
        )


class MergeStage:
    """Stage 2 (see the module docstring)."""

    def __init__(self, settings: Settings, config: Config, clock: Clock | None = None) -> None:
        self.settings = settings
        self.config = config
        self.clock: Clock = clock if clock is not None else SystemClock()
        base = settings.kafka.to_config()
        self.partials_topic, _, self.checkpoints_topic = settings.scale.topics(base.topics[0])
        self.kafka = replace(
            base, topics=(self.partials_topic,), group_id=f"{base.group_id}-merge", dead_letter_topic=None
        )
        self._store_kafka = replace(base, dead_letter_topic=None)
        self.source = KafkaSource(self.kafka, self._on_revoke, by_partition=True, on_assign=self._on_assign)
        self.fingerprint = decode_fingerprint(config, settings)
        self.telemetry = Telemetry(stage="merge")
        self.partitions = 0
        self.checkpoint_partitions = 0
        self.owned: dict[int, Owned] = {}
        self.stores: dict[int, CheckpointStore] = {}
        self.restoring = False
        self._base = Aggregator(config)
        #: What the ticks reuse from one to the next (`ViewCache`).
        self._view = ViewCache()
        self._lock = asyncio.Lock()
        self._last_checkpoint = time.monotonic()
        #: The interval checkpoint in flight (`step` starts it, `close` waits for it through the lock).
        self._saving: asyncio.Task[None] | None = None
        #: Per partition, the offset last sought back to (`_refetch`).
        self._refetched: dict[TP, int] = {}
        #: Whether a fetch took `_BEHIND_SLICES` slices to apply and none since took fewer than
        #: `_CAUGHT_UP_SLICES` (`behind`).
        self._behind = False
        #: Whether `step` is between two apply slices of a fetch (`behind`).
        self._applying = False
        #: The partitions whose series the last `export_counts` exported (`behind`).
        self._exported: frozenset[int] = frozenset()

    async def start(self) -> None:
        topics = [self.partials_topic]
        if self.settings.checkpoint.dir is None:
            topics.append(self.checkpoints_topic)
        counts = await partition_counts(self.kafka, topics)
        self.partitions = counts[self.partials_topic]
        self.checkpoint_partitions = counts.get(self.checkpoints_topic, 0)
        await self.source.start()
        log.info("merge_stage_started", partials=self.partials_topic, partitions=self.partitions)

    async def close(self) -> None:
        await self.checkpoint("shutdown")
        for p, o in sorted(self.owned.items()):
            log.debug("applied_at_close", partition=p, offset=o.offset, applied=o.merger.applied.to_rows())
        await self.source.stop()
        for store in self.stores.values():
            if isinstance(store, KafkaCheckpointStore):
                await asyncio.to_thread(store.close)

    def ready(self) -> tuple[bool, str]:
        if self.restoring:
            return False, "restoring partition checkpoints"
        refused = {p: o.refused for p, o in self.owned.items() if o.refused}
        if refused:
            p, why = min(refused.items())
            return False, f"partials partition {p} stopped: {why} (both stages must run the same SLO file)"
        return self.source.ready()

    def behind(self) -> bool:
        """Whether the stage is applying a backlog (the tick then refreshes the series every
        `runtime.BEHIND_REFRESH_S` only; the first tick once it is not refreshes them): a fetch took
        `_BEHIND_SLICES` apply slices and none since was applied within `_CAUGHT_UP_SLICES`; or the
        tick runs between two slices of a fetch, or more than `_BEHIND_LAG` records of a partition
        that is not stopped are known to wait past the last fetch, or may (`KafkaSource.lag` does not
        know the partition yet). In the last two
        cases the next record changes the counts anyway: a refresh then cost bench-scale's stage 2 an
        evaluation and a render of every owned series (~0.5 s) for a state already stale. Once
        caught up, the lag is 0 after every fetch and no fetch is in slices: refreshed every tick.
        Never behind while a partition last exported is not owned any more (a revoked one's series must
        stop being exported here within a tick). Partitions that only came are published like the
        others' changes: at the first tick the stage is not behind (the next tick once a fetch answered
        with no backlog for them), else within `runtime.BEHIND_REFRESH_S`."""
        if not self._exported.issubset(self.owned):
            # Partitions went (a rebalance): publish at once, so the series of a revoked one stop being
            # exported here within a tick, however far behind the others are. Partitions that only came
            # need not: publishing them at once cost bench-scale's stage 2 a second copy of every owned
            # series (a flush of the records applied so far and a capture, ~0.15 s of its ~0.7 s) when
            # the tick after the assignment fell between two apply slices of the backlog's first fetch.
            return False
        if self._behind or self._applying:
            return True
        lag = self.source.lag()
        # A partition no fetch answered for yet (just assigned) is taken as behind: its log's end is not
        # known, and on a restart it is where a backlog waits. An answer, records or not, tells it.
        return any(
            lag.get((self.partials_topic, p), _BEHIND_LAG + 1) > _BEHIND_LAG
            for p, o in self.owned.items()
            if o.refused is None
        )

    def export_counts(self, now_ms: int) -> OwnedCounts:
        mergers = [o.merger for _, o in sorted(self.owned.items())]
        self._exported = frozenset(self.owned)
        counts = owned_counts(self._base, mergers, now_ms, self._view)
        t = self.telemetry
        t.partitions_owned = len(self.owned)
        t.series_owned = counts.series
        return counts

    def export_snapshot(self, now_ms: int) -> Snapshot:
        """`export_counts` evaluated (on this thread)."""
        return self.export_counts(now_ms).evaluate()

    # -- the partitions' state ----------------------------------------------------------------------

    def _store(self, p: int) -> CheckpointStore:
        store = self.stores.get(p)
        if store is None:
            d = self.settings.checkpoint.dir
            if d is not None:
                store = DirectoryStore(d / f"{self.partials_topic}-{p}", self.settings.checkpoint.keep)
            else:
                part = p % self.checkpoint_partitions
                key = f"{self.partials_topic}/{p}"
                store = KafkaCheckpointStore(self._store_kafka, self.checkpoints_topic, part, key)
            self.stores[p] = store
        return store

    def _restore(self, p: int) -> tuple[Owned, str | None]:
        """The partition's state from its best checkpoint (in a worker thread: the stores block)."""
        store = self._store(p)
        if isinstance(store, DirectoryStore):
            store.prepare()
        best: tuple[int, Checkpoint, str] | None = None
        for name in store.names()[:_RESTORE_CANDIDATES]:
            try:
                cp = decode(store.read(name))
            except (CheckpointError, OSError) as exc:
                log.error("checkpoint_refused", store=store.describe(), name=name, reason=str(exc))
                continue
            offset = cp.offsets.get((self.partials_topic, p), 0)
            if best is None or offset > best[0]:
                best = (offset, cp, name)
        merger = Merger(self.config, self.fingerprint, p, self.partitions)
        if best is None:
            return Owned(merger, 0), None
        offset, cp, name = best
        report = merger.aggregator.restore_state(cp.state)
        if report.fresh or report.dropped:
            log.warning("checkpoint_for_other_slos", partition=p, fresh=report.fresh, dropped=report.dropped)
        merger.applied = Applied.from_rows(tuple(r) for r in json.loads(cp.info.get("applied", "[]")))
        return Owned(merger, offset), name

    async def _on_assign(self, assigned: set[TP]) -> dict[TP, int]:
        """Restore every newly assigned partition before anything of it is applied; where to start.

        The partitions are restored side by side (each store's reads are network round trips: client
        start-up, the ends of the checkpoint partition, the scan), so an assignment of many partitions
        costs about one restore, not one per partition. ``checkpoint_restore_seconds``: the whole
        assignment's."""
        self.restoring = True
        seeks: dict[TP, int] = {}
        try:
            tps = sorted(assigned)
            started = time.perf_counter()
            restored = await asyncio.gather(*(asyncio.to_thread(self._restore, tp[1]) for tp in tps))
            self.telemetry.checkpoint_restore_seconds = time.perf_counter() - started
            for tp, (owned, name) in zip(tps, restored, strict=True):
                # Seek now: the fetcher already reads the partition from the committed offset, which
                # may be past the checkpoint's (`step` would see a gap and seek back anyway).
                self.source.seek(tp, owned.offset)
                self.owned[tp[1]] = owned
                seeks[tp] = owned.offset
                log.info("partition_restored", partition=tp[1], checkpoint=name, offset=owned.offset)
            limit = held_bytes_each(len(self.owned))
            for owned in self.owned.values():
                owned.merger.held_limit = limit
        finally:
            self.restoring = False
        return seeks

    async def _on_revoke(self) -> None:
        await self.checkpoint("rebalance")
        self.owned.clear()  # stop exporting their series: the next owner restores them

    # -- applying -----------------------------------------------------------------------------------

    async def step(self, stopping: asyncio.Event) -> None:
        fetched = await self.source.fetch()
        current = self.source.offsets.current(fetched.offsets)
        slice_end = time.perf_counter() + _APPLY_SLICE_S
        slices = 0
        for tp, (offsets, _, values) in fetched.parts.items():
            owned = self.owned.get(tp[1])
            if tp not in current or owned is None:
                continue
            for offset, value in zip(offsets, values, strict=True):
                if time.perf_counter() > slice_end:
                    # Let the tick and /metrics in between records (a fetch may hold many); the state
                    # is whole between records. A rebalance meanwhile replaces `owned`: stop there.
                    slices += 1
                    self._behind |= slices >= _BEHIND_SLICES
                    self._applying = True
                    try:
                        await asyncio.sleep(0)
                    finally:
                        self._applying = False
                    slice_end = time.perf_counter() + _APPLY_SLICE_S
                    if self.owned.get(tp[1]) is not owned:
                        break
                if offset < owned.offset:
                    continue
                if owned.refused is not None:
                    break
                if offset > owned.offset and self._refetch(tp, owned.offset, offset):
                    break
                if value is not None and not self._offer(owned, value):
                    break
                owned.offset = offset + 1
                owned.dirty = True
        # Caught up once a fetch applies within `_CAUGHT_UP_SLICES` (an empty one included): under live
        # traffic that stage 2 keeps up with, fetches are small and the tick refreshes every second.
        # Between the two marks it stays as it was: a backlog's fetches vary in size.
        if slices >= _BEHIND_SLICES:
            self._behind = True
        elif slices < _CAUGHT_UP_SLICES:
            self._behind = False
        due = time.monotonic() - self._last_checkpoint >= self.settings.checkpoint.interval
        if due and (self._saving is None or self._saving.done()):
            # In its own task: applying goes on while the checkpoints are written.
            self._last_checkpoint = time.monotonic()
            self._saving = asyncio.create_task(self.checkpoint("interval"), name="sloguard-checkpoint")
            self._saving.add_done_callback(_raise_in_loop)

    def _refetch(self, tp: TP, expected: int, got: int) -> bool:
        """Partials ``[expected, got)`` were fetched but dropped (a fetch that spanned a rebalance, or
        before the partition's restore): seek back and read them again. True: skip these records; False
        (go on, logged) if the same gap comes back: the records are gone."""
        if self._refetched.get(tp) == expected:
            log.error("partials_gap", partition=tp[1], expected=expected, got=got)
            return False
        self._refetched[tp] = expected
        log.info("refetching", partition=tp[1], expected=expected, got=got)
        self.source.seek(tp, expected)  # False: not ours any more; skip the records either way
        return True

    def _offer(self, owned: Owned, value: bytes) -> bool:
        """Apply one record; False if it stops the partition (refused)."""
        t = self.telemetry
        try:
            piece = decode_piece(value)
            outcome = owned.merger.offer(piece)
        except CheckpointError as exc:
            outcome = Refused(f"undecodable partial record: {exc}")
        if isinstance(outcome, Refused):
            t.partials_refused += 1
            owned.refused = outcome.reason
            log.error("partials_refused", partition=owned.merger.partition, reason=outcome.reason)
            return False
        if outcome is Verdict.NEW:
            t.partials_applied += 1
        elif outcome is Verdict.DUPLICATE:
            t.partials_duplicate += 1
        else:
            t.partials_conflict += 1
            r = piece.range
            applied = owned.merger.applied.ranges.get((r.topic, r.partition))
            log.error(
                "partial_conflict",
                partition=owned.merger.partition,
                input=f"{r.topic}/{r.partition}",
                range=f"[{r.start}, {r.end})",
                record=f"{piece.index + 1} of {piece.count}",
                applied=str(list(applied) if applied is not None else []),
                hint="see docs/scaling.md",
            )
        return True

    async def checkpoint(self, reason: str) -> None:
        """Checkpoint every changed partition (state + applied + offset, one record), then commit.

        The states are copied out together on the event loop (so each is consistent with its applied
        set and offset); encoding and saving run in worker threads, all partitions at once, while
        `step` may go on applying (from the interval checkpoint's task, or during a rebalance's): each
        partition commits only the offset its checkpoint holds, and stays dirty if more came meanwhile.
        """
        async with self._lock:
            self._last_checkpoint = time.monotonic()
            taken = [
                (p, owned, owned.offset, self._take(p, owned, reason))
                for p, owned in list(self.owned.items())
                if owned.dirty
            ]
            started = time.perf_counter()
            done: dict[TP, int] = {}
            saves = [self._save(p, cp) for p, _, _, cp in taken]
            by_partition = {p: (owned, offset, cp) for p, owned, offset, cp in taken}
            for next_done in asyncio.as_completed(saves):
                p, size = await next_done
                if size is None:
                    continue
                owned, offset, cp = by_partition[p]
                owned.dirty = owned.offset != offset
                t = self.telemetry
                t.checkpoints_written += 1
                t.checkpoint_bytes = size
                t.checkpoint_duration_seconds = time.perf_counter() - started
                t.checkpoint_last_success_seconds = cp.created_ms / 1000
                done[(self.partials_topic, p)] = offset
                if len(done) == 1:
                    faults.point("stage2.mid_checkpoint")
            if done:
                faults.point("stage2.after_checkpoint_before_commit")
                self.source.absorbed(done)
                await self.source.commit()

    def _take(self, p: int, owned: Owned, reason: str) -> Checkpoint:
        """Partition ``p``'s checkpoint: its state, applied ranges and offset as they are now."""
        return Checkpoint(
            state=owned.merger.aggregator.export_state(),
            offsets={(self.partials_topic, p): owned.offset},
            created_ms=self.clock.now_ms(),
            sloguard_version=__version__,
            info={"applied": json.dumps(owned.merger.applied.to_rows()), "reason": reason},
        )

    async def _save(self, p: int, cp: Checkpoint) -> tuple[int, int | None]:
        """Encode and store ``cp`` in a worker thread; (partition, bytes written or None if it failed)."""
        store = self._store(p)

        def save() -> int:
            data = encode(cp)
            store.save(data)
            return len(data)

        try:
            return p, await asyncio.to_thread(save)
        except OSError as exc:
            self.telemetry.checkpoint_failures += 1
            log.error("checkpoint_failed", partition=p, store=store.describe(), error=str(exc))
            return p, None
