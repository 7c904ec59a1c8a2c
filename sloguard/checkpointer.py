"""When the daemon checkpoints and restores (the file format and stores are `sloguard.checkpoint`).

* On start (`Checkpointer.restore`) the newest good checkpoint's state goes into the aggregator (and its
  live SLA counters into the engine's `LiveSlas`, when of the same SLA and period) and its
  offsets into the `OffsetLedger`, which has each partition seek back to them on its first assignment:
  after a crash nothing is lost or counted twice.
* Every ``checkpoint.interval`` (`Checkpointer.run`), on partition revocation (`on_revoke`, before the
  source commits the revoked partitions for their next owner) and on shutdown (`shutdown`) a checkpoint
  is written (state + the offsets it holds), and only then are those offsets marked for commit and
  committed: a commit never runs ahead of durable state.
* While writes fail (``error``), the ledger commits what the aggregator holds directly (at-least-once, as
  without checkpoints) and /readyz says state would be lost on restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sloguard import __version__
from sloguard.checkpoint import Checkpoint, DirectoryStore, encode, load_latest
from sloguard.clock import Clock
from sloguard.engine import Engine
from sloguard.ingest.offsets import OffsetLedger
from sloguard.logs import RateLimiter, get_logger
from sloguard.telemetry import Telemetry

# The daemon's logger: the log lines are the same as before checkpointing had its own module.
log = get_logger("sloguard.app")


@dataclass
class Checkpointer:
    """Checkpoints ``engine``'s state with ``offsets``' checkpoint offsets into ``store``.

    ``commit`` is awaited after each checkpoint (the daemon's commit: the source commits what the ledger
    marked). ``config_path`` is recorded in each checkpoint for people. ``error`` says why the last
    write failed (None: it worked, or none was tried yet).
    """

    store: DirectoryStore
    engine: Engine
    offsets: OffsetLedger
    telemetry: Telemetry
    clock: Clock
    commit: Callable[[], Awaitable[None]]
    config_path: Path | None = None
    error: str | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _limiter: RateLimiter = field(default_factory=RateLimiter, init=False)

    def __post_init__(self) -> None:
        self._failing(None)

    def _failing(self, error: str | None) -> None:
        """Record why checkpoints fail (None: they work). While they fail, offsets are committed as soon
        as the aggregator holds them: a commit cannot wait for a checkpoint that never comes."""
        self.error = error
        self.offsets.via_checkpoints = error is None

    def restore(self) -> None:
        """Load the newest good checkpoint (start-up): state into the aggregator, offsets to seek to."""
        where = self.store.describe()
        try:
            self.store.prepare()
        except OSError as exc:
            self._failing(f"{where}: {exc.strerror or exc}")
            log.error("checkpoint_dir_unusable", dir=where, error=str(exc))
            return
        found = load_latest(
            self.store, lambda name, why: log.error("checkpoint_refused", dir=where, file=name, reason=why)
        )
        if found is None:
            log.info("no_checkpoint", dir=where, hint="starting with empty state")
            return
        name, cp = found
        report = self.engine.aggregator.restore_state(cp.state)
        slas = self.engine.slas.restore_state(cp.slas, self.clock.now_ms())
        self.offsets.restored(cp.offsets)
        log.info(
            "checkpoint_restored",
            dir=where,
            file=name,
            taken_at_ms=cp.created_ms,
            events=cp.state.events,
            offsets={f"{t}/{p}": o for (t, p), o in sorted(cp.offsets.items())},
            restored=list(report.restored),
            fresh=list(report.fresh),
            dropped=list(report.dropped),
            slas_restored=list(slas.restored),
            slas_fresh=list(slas.fresh),
        )
        for sla, why in sorted(slas.dropped.items()):
            log.info("checkpoint_sla_dropped", file=name, sla=sla, reason=why, hint="counting it afresh")

    async def checkpoint(self, reason: str) -> bool:
        """Write a checkpoint of the current state and offsets, then mark those offsets for commit and
        commit. False if the write failed (counted, logged, ``error`` set)."""
        store = self.store
        async with self._lock:
            started = time.perf_counter()
            # Taken together, between two absorbs: the state holds exactly the events before these
            # offsets, and so do the live SLA counters. The offsets and the counters are taken on the loop
            # once no worker thread works on the aggregator; the aggregator's state is copied in a worker
            # thread (~35 ms at 100k series, more with weeks of data), the absorb step waiting meanwhile
            # (`CopyGate`: nothing runs between taking the offsets and closing it). Exporting copies, so
            # ingesting goes on while the thread writes.
            gate = self.engine.gate
            await gate.writable()
            offsets = self.offsets.checkpoint_offsets()
            slas = self.engine.slas.export_state()
            state = await gate.run_in_thread(self.engine.aggregator.export_state)
            cp = Checkpoint(
                state=state,
                slas=slas,
                offsets=offsets,
                created_ms=self.clock.now_ms(),
                sloguard_version=__version__,
                info={"config": str(self.config_path or ""), "reason": reason},
            )

            def write() -> tuple[str, int]:
                data = encode(cp)
                return store.save(data), len(data)

            try:
                name, size = await asyncio.to_thread(write)
            except OSError as exc:
                self._failed(exc, reason)
                return False
            if self.error is not None:
                log.info("checkpoint_recovered", dir=store.describe())
            self._failing(None)
            t = self.telemetry
            t.checkpoints_written += 1
            t.checkpoint_bytes = size
            t.checkpoint_duration_seconds = time.perf_counter() - started
            t.checkpoint_last_success_seconds = cp.created_ms / 1000
            log.debug("checkpoint_written", file=name, bytes=size, reason=reason)
            self.offsets.absorbed(offsets)
        # Commit at once: until then a new owner of these partitions (after a crash of this process)
        # would start before offsets this checkpoint already holds.
        await self.commit()
        return True

    def _failed(self, exc: OSError, reason: str) -> None:
        t = self.telemetry
        t.checkpoint_failures += 1
        first = self.error is None
        self._failing(f"{self.store.describe()}: {exc.strerror or exc}")
        ok, suppressed = self._limiter.allow("checkpoint", time.monotonic())
        if ok or first:
            log.error(
                "checkpoint_failed",
                dir=self.store.describe(),
                error=str(exc),
                reason=reason,
                failures=t.checkpoint_failures,
                suppressed_lines=suppressed,
            )

    async def on_revoke(self) -> None:
        """`KafkaSource`'s revocation callback: partitions are about to go to another member, so make our
        state for them durable first; the source then commits the offsets this checkpoint holds."""
        await self.checkpoint("rebalance")

    async def run(self, interval_s: float, stopping: asyncio.Event) -> None:
        """Checkpoint every ``interval_s`` until ``stopping`` is set."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval_s)
            if not stopping.is_set():
                await self.checkpoint("interval")

    async def shutdown(self, timeout_s: float) -> None:
        """The last checkpoint, bounded by ``timeout_s`` (logged when it runs out)."""
        try:
            await asyncio.wait_for(self.checkpoint("shutdown"), timeout_s)
        except TimeoutError:
            log.error("shutdown_checkpoint_timeout", timeout_s=timeout_s)
