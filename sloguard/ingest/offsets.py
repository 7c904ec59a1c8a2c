"""The one owner of partition assignments and offsets, and of the rule that says what may be committed.

Pure bookkeeping: no asyncio, no aiokafka, no clock, so every rebalance case is a unit test with no broker
(tests/unit/ingest/test_offsets.py). Like aiokafka's ``SubscriptionState``, each method's docstring says
who calls it and what it changes. Two sides drive it:

* the group side, `KafkaSource` (ingest/kafka.py): fetches (`stamp`, `fetched`), rebalances (`assign`,
  `join`, `leave`, `revoked`, `lost`), checkpoint seeks (`start_at_checkpoint`) and commits (`to_commit`,
  `commit_succeeded`);
* the state side, the daemon (absorb.py, checkpointer.py): what the aggregator holds (`ingested`), what
  a checkpoint may record (`checkpoint_offsets`) and holds (`absorbed`), a restored checkpoint
  (`restored`).

Where delivery semantics live: the rules are here; kafka.py applies them against the broker (when a
commit is sent, how long it may take); app.py orders absorb, checkpoint and commit. The contract:

* Only *absorbed* offsets are committed (``pending``), never what was merely fetched. Without
  checkpoints, what the aggregator ingested is absorbed at once (at-least-once: a crash re-reads what
  was not committed). With working checkpoints (``via_checkpoints``), an offset is absorbed only once a
  checkpoint holds it, so a commit never runs ahead of durable state (exactly-once state).
* Offsets are stamped with the revocation ``epoch`` of their fetch (`Offsets`). A partition revoked or
  lost after the fetch refuses them: its new owner may be past them, or before them.
* A checkpoint records only offsets read in the current assignment, or restored from a checkpoint the
  source actually sought to in it: after a rebalance or a lost membership an older offset may be stale
  (another member moved on, or the broker lost the topic), and committing it would make the group skip
  or re-read records.
* A restored checkpoint's offset is sought to on the first assignment of its partition, unless the
  group's committed offset is further on (then another member owned the partition meanwhile and its
  state holds those events).
* A partition no longer assigned has its pending offset dropped, not committed: its owner resumes from
  the last commit, so the cost is a re-read, never a loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["TP", "OffsetLedger", "Offsets"]

TP = tuple[str, int]  # (topic, partition)


class Offsets(dict[TP, int]):
    """Next offset to commit per ``(topic, partition)``, stamped with the assignment epoch of the fetch.

    A plain dict to everyone else; `OffsetLedger.absorbed` uses ``epoch`` to refuse offsets of partitions
    revoked after the fetch (their new owner may already be past them, or before them).
    """

    __slots__ = ("epoch",)

    def __init__(self, epoch: int, items: Mapping[TP, int] | None = None) -> None:
        super().__init__(items or {})
        self.epoch = epoch


class OffsetLedger:
    """Assignment generations, positions and the offsets pending, held, checkpointed and committed.

    Attributes (read freely; change them only through the methods):

    * ``epoch``: bumped on every revocation or loss; a partition's offsets fetched in an older epoch than
      its last revocation (``revoked_at``) are stale.
    * ``assignments``: assignments received so far (1 after the first join; 0: never joined).
    * ``assignment``: the partitions owned; ``joined``: assigned since the last revocation.
    * ``positions``/``highwaters``: the next offset a fetch returns and the end of the log per partition
      (for lag).
    * ``held``: per partition, the next offset of the events in the aggregator, with the number of the
      assignment it was read in (0: restored from a checkpoint).
    * ``pending``: absorbed, not committed yet; ``committed``: last successful commit per partition.
    * ``sought``: partitions started at a checkpoint's offset: (offset, assignment number).
    * ``via_checkpoints``: whether ingested offsets wait for a checkpoint before they may be committed.
    """

    def __init__(self) -> None:
        self.epoch = 0
        self.revoked_at: dict[TP, int] = {}
        self.assignments = 0
        self.assignment: frozenset[TP] = frozenset()
        self.joined = False
        self.positions: dict[TP, int] = {}
        self.highwaters: dict[TP, int] = {}
        self.held: dict[TP, tuple[int, int]] = {}
        self.pending: dict[TP, int] = {}
        self.committed: dict[TP, int] = {}
        self.sought: dict[TP, tuple[int, int]] = {}
        self.via_checkpoints = False
        # Offsets from a restored checkpoint, to seek to on the partition's first assignment.
        self._start_offsets: dict[TP, int] = {}

    # -- fetching (KafkaSource.fetch) -----------------------------------------------------------------

    def stamp(self) -> Offsets:
        """An empty `Offsets` of the current epoch. `KafkaSource.fetch` takes it *before* waiting on the
        broker, so a revocation during the wait makes the fetch's offsets stale."""
        return Offsets(self.epoch)

    def fetched(
        self, owned: Iterable[TP], highwaters: Mapping[TP, int], fetched: Mapping[TP, int]
    ) -> list[TP]:
        """After a fetch, `KafkaSource` reports the consumer's assignment, the high watermarks it knows
        and the fetch's next offsets. Updates ``assignment``, ``highwaters`` and ``positions``; returns
        the partitions with a high watermark but no position yet (idle since assignment: ask the
        consumer and report it with `positioned`)."""
        self.assignment = frozenset(owned)
        unknown = []
        for tp, highwater in highwaters.items():
            self.highwaters[tp] = highwater
            if tp in fetched:
                self.positions[tp] = fetched[tp]
            elif tp not in self.positions:
                unknown.append(tp)
        return unknown

    def positioned(self, tp: TP, position: int) -> None:
        """`KafkaSource` learnt a partition's position from the consumer: sets ``positions``."""
        self.positions[tp] = position

    def past_end(self) -> list[tuple[TP, int, int]]:
        """Owned partitions whose position is past the end of the log, as (partition, position, high
        watermark): the topic was re-created or the broker lost data. `KafkaSource` resets them and then
        calls `forget_position`."""
        return [
            (tp, pos, self.highwaters[tp])
            for tp, pos in self.positions.items()
            if tp in self.highwaters and pos > self.highwaters[tp] and tp in self.assignment
        ]

    def forget_position(self, tp: TP) -> None:
        """`KafkaSource` reset the partition's position: it is unknown until the next fetch."""
        self.positions.pop(tp, None)

    def lag(self) -> dict[TP, int]:
        """Records behind the high watermark per owned partition (as of the last fetch); partitions not
        fetched from since their assignment are absent. Read by `KafkaSource.lag` for telemetry."""
        return {
            tp: max(0, self.highwaters[tp] - pos)
            for tp, pos in self.positions.items()
            if tp in self.highwaters and tp in self.assignment
        }

    # -- rebalancing (KafkaSource's listener) ---------------------------------------------------------

    def leave(self) -> None:
        """A rebalance began (or the source stopped): not ``joined`` until the next `join`."""
        self.joined = False

    def revoked(self, partitions: Iterable[TP]) -> None:
        """`KafkaSource` gave these partitions up (after committing what it could): a new epoch, so
        offsets fetched before it are refused; their pending offsets and positions are dropped."""
        self.epoch += 1
        for tp in partitions:
            self.revoked_at[tp] = self.epoch
            self.pending.pop(tp, None)
            self.positions.pop(tp, None)
            self.highwaters.pop(tp, None)

    def lost(self, partitions: Iterable[TP]) -> None:
        """The group moved on without us (membership lost, or a commit refused): these partitions and all
        with pending offsets may belong to another member. A new epoch; their pending offsets are dropped
        uncommitted (the new owner resumes from the last commit)."""
        self.joined = False
        self.epoch += 1
        for tp in set(partitions) | set(self.pending):
            self.revoked_at[tp] = self.epoch
            self.pending.pop(tp, None)

    def assign(self, partitions: Iterable[TP]) -> dict[TP, int]:
        """A new assignment begins (bumps ``assignments``). Returns, in partition order, the restored
        checkpoint offsets to seek to for these partitions (each only once, on its first assignment);
        `KafkaSource` asks `start_at_checkpoint` for each, then calls `join`."""
        self.assignments += 1
        wanted = set(partitions)
        return {tp: self._start_offsets.pop(tp) for tp in sorted(wanted & set(self._start_offsets))}

    def start_at_checkpoint(self, tp: TP, offset: int, committed: int | None) -> bool:
        """Whether `KafkaSource` seeks a newly assigned partition to its restored checkpoint ``offset``,
        given the group's ``committed`` offset (None: none, or it could not be read). If so, the restored
        offset becomes a valid checkpoint offset in this assignment (``sought``, `checkpoint_offsets`).

        With checkpoints, offsets are committed only after a checkpoint holds them, so a committed offset
        behind the checkpoint's means a crash came between checkpoint and commit (start at the checkpoint:
        those events are in the restored state), and one ahead of it means another member owned the
        partition meanwhile and its state holds those events (start at the commit).
        """
        if committed is not None and committed > offset:
            return False
        self.sought[tp] = (offset, self.assignments)
        return True

    def join(self, partitions: Iterable[TP]) -> None:
        """The assignment is in place: these partitions are owned and the source is ``joined``."""
        self.assignment = frozenset(partitions)
        self.joined = True

    # -- committing (KafkaSource.commit) --------------------------------------------------------------

    def current(self, offsets: Mapping[TP, int]) -> dict[TP, int]:
        """``offsets`` without the partitions revoked since the fetch that produced them (a plain mapping,
        without an epoch, is taken as current)."""
        epoch = offsets.epoch if isinstance(offsets, Offsets) else self.epoch
        return {tp: o for tp, o in offsets.items() if self.revoked_at.get(tp, -1) <= epoch}

    def absorbed(self, offsets: Mapping[TP, int]) -> None:
        """Mark offsets committable (``pending``): by `KafkaSource.absorbed`, by `ingested` without working
        checkpoints, and by the checkpointer for what a checkpoint holds. Offsets of partitions revoked
        since their fetch are ignored."""
        # Latest wins (not max): the app absorbs in fetch order, and if offsets ever go backwards (a
        # reset), committing the lower one re-reads records instead of skipping them.
        self.pending.update(self.current(offsets))

    def to_commit(self, partitions: Iterable[TP], owned: Iterable[TP]) -> dict[TP, int]:
        """What `KafkaSource` may commit of ``partitions`` now that the consumer owns ``owned``: their
        pending offsets. Pending offsets of partitions among ``partitions`` no longer owned are dropped
        (not ours any more: the owner resumes from the last commit, so they may only be read twice)."""
        wanted, mine = set(partitions), set(owned)
        for tp in wanted - mine:
            self.pending.pop(tp, None)
        return {tp: self.pending[tp] for tp in wanted & mine if tp in self.pending}

    def commit_succeeded(self, offsets: Mapping[TP, int]) -> None:
        """The broker took these offsets: they are ``committed`` and no longer pending, unless something
        newer was absorbed while the commit was in flight."""
        for tp, off in offsets.items():
            self.committed[tp] = off
            if self.pending.get(tp) == off:
                del self.pending[tp]

    # -- the aggregator's side (absorb, checkpoints) --------------------------------------------------

    def ingested(self, offsets: Mapping[TP, int]) -> None:
        """The absorb step put a fetch's events into the aggregator: ``held`` moves on (stamped with the
        current assignment; partitions revoked since the fetch are left out), and without working
        checkpoints the offsets become committable at once."""
        n = self.assignments
        self.held.update({tp: (o, n) for tp, o in self.current(offsets).items()})
        if not self.via_checkpoints:
            self.absorbed(offsets)

    def restored(self, offsets: Mapping[TP, int]) -> None:
        """The checkpointer restored a checkpoint at start-up: the aggregator holds the events before
        these offsets (assignment 0), and each partition seeks there on its first assignment unless the
        group committed further (`assign`)."""
        self._start_offsets = dict(offsets)
        self.held = {tp: (o, 0) for tp, o in offsets.items()}

    def checkpoint_offsets(self) -> dict[TP, int]:
        """The offsets a checkpoint taken now may record (the checkpointer calls it with the state export).

        Before the first assignment: everything held (what was restored). After it: only partitions
        owned and read in the current assignment, or restored and actually sought to in it.
        """
        current = self.assignments
        if current == 0:
            return {tp: o for tp, (o, _) in self.held.items()}
        return {
            tp: o
            for tp, (o, n) in self.held.items()
            if tp in self.assignment and (n == current or (n == 0 and self.sought.get(tp) == (o, current)))
        }
