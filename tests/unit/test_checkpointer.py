"""`Checkpointer` against a real `DirectoryStore` in a temp directory and a real `OffsetLedger`: what a
checkpoint holds, that its offsets are committed only after it is written, restore with seeks, and how
failing writes degrade to committing what the aggregator holds (and recover)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sloguard.checkpoint import DirectoryStore, load_latest
from sloguard.checkpointer import Checkpointer
from sloguard.clock import ManualClock
from sloguard.core.model import Event, EventBatch
from sloguard.core.state import AggregatorState
from sloguard.engine import Engine
from sloguard.ingest.offsets import OffsetLedger
from sloguard.specfile import parse_config
from sloguard.telemetry import Telemetry
from tests.unit.test_absorb import SLOS

NOW = 1_767_225_600_000
P0, P1 = ("requests", 0), ("requests", 1)


class BrokenStore(DirectoryStore):
    """A directory store whose writes fail while ``broken`` (a full or read-only volume)."""

    broken = True

    def save(self, data: bytes) -> str:
        if self.broken:
            raise OSError(28, "No space left on device")
        return super().save(data)


class Harness:
    def __init__(self, store: DirectoryStore) -> None:
        self.engine = Engine(parse_config(SLOS, "slos.yaml"))
        self.offsets = OffsetLedger()
        self.telemetry = Telemetry()
        self.commits: list[dict[tuple[str, int], int]] = []
        self.checkpointer = Checkpointer(
            store, self.engine, self.offsets, self.telemetry, ManualClock(NOW), self.commit, Path("slos.yaml")
        )

    async def commit(self) -> None:
        # What the source would commit: everything pending.
        self.commits.append(dict(self.offsets.pending))
        self.offsets.commit_succeeded(dict(self.offsets.pending))

    def ingest(self, n: int, offsets: dict[tuple[str, int], int]) -> None:
        events = [Event(NOW - 60_000 + i, "checkout", "GET /a", "c", 200, 1.0) for i in range(n)]
        self.engine.aggregator.ingest(EventBatch.from_events(events))
        self.offsets.ingested(offsets)

    def join(self, *partitions: tuple[str, int]) -> None:
        for tp, offset in self.offsets.assign(partitions).items():
            self.offsets.start_at_checkpoint(tp, offset, None)
        self.offsets.join(partitions)


async def test_offsets_are_committed_only_once_a_checkpoint_holds_them(tmp_path: Path) -> None:
    h = Harness(DirectoryStore(tmp_path))
    h.checkpointer.restore()
    h.join(P0, P1)
    h.ingest(10, {P0: 6, P1: 4})
    assert h.offsets.pending == {} and h.commits == []
    assert await h.checkpointer.checkpoint("interval")
    assert h.commits == [{P0: 6, P1: 4}] and h.offsets.committed == {P0: 6, P1: 4}
    found = load_latest(DirectoryStore(tmp_path), lambda name, why: None)
    assert found is not None
    _, cp = found
    assert cp.offsets == {P0: 6, P1: 4} and cp.state.events == 10
    assert cp.info == {"config": "slos.yaml", "reason": "interval"} and cp.created_ms == NOW
    assert h.telemetry.checkpoints_written == 1 and h.telemetry.checkpoint_bytes > 0


async def test_restore_loads_the_state_and_seeks_to_the_offsets(tmp_path: Path) -> None:
    first = Harness(DirectoryStore(tmp_path))
    first.checkpointer.restore()
    first.join(P0, P1)
    first.ingest(10, {P0: 6, P1: 4})
    await first.checkpointer.on_revoke()  # a rebalance checkpoint
    second = Harness(DirectoryStore(tmp_path))
    second.checkpointer.restore()
    assert second.engine.aggregator.snapshot(NOW).slos[0].events == 10
    assert second.offsets.checkpoint_offsets() == {P0: 6, P1: 4}  # not joined yet: what was restored
    assert second.offsets.assign({P0, P1}) == {P0: 6, P1: 4}


async def test_a_first_start_has_nothing_to_restore(tmp_path: Path) -> None:
    h = Harness(DirectoryStore(tmp_path / "new"))
    h.checkpointer.restore()
    assert (tmp_path / "new").is_dir() and h.checkpointer.error is None
    assert h.offsets.via_checkpoints and h.offsets.held == {}


async def test_an_unusable_directory_degrades_to_committing_what_is_held(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    h = Harness(DirectoryStore(tmp_path / "file"))
    h.checkpointer.restore()
    assert h.checkpointer.error is not None and not h.offsets.via_checkpoints
    h.join(P0)
    h.ingest(1, {P0: 1})
    assert h.offsets.pending == {P0: 1}


async def test_failing_writes_degrade_then_recover(tmp_path: Path) -> None:
    store = BrokenStore(tmp_path)
    h = Harness(store)
    h.checkpointer.restore()
    h.join(P0)
    h.ingest(3, {P0: 3})
    assert not await h.checkpointer.checkpoint("interval")
    assert h.checkpointer.error is not None and "No space left" in h.checkpointer.error
    assert h.telemetry.checkpoint_failures == 1 and h.commits == []
    # While checkpoints fail, what the aggregator holds is committable at once (at-least-once).
    h.ingest(2, {P0: 5})
    assert h.offsets.pending == {P0: 5}
    store.broken = False
    assert await h.checkpointer.checkpoint("interval")
    assert h.checkpointer.error is None and h.offsets.via_checkpoints
    h.ingest(1, {P0: 6})
    assert h.offsets.pending == {}  # back to waiting for a checkpoint


async def test_the_loop_checkpoints_every_interval_and_shutdown_writes_the_last(tmp_path: Path) -> None:
    h = Harness(DirectoryStore(tmp_path, keep=100))
    h.checkpointer.restore()
    stopping = asyncio.Event()
    loop = asyncio.create_task(h.checkpointer.run(0.01, stopping))
    for _ in range(500):
        if h.telemetry.checkpoints_written >= 2:
            break
        await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(loop, 1)
    written = h.telemetry.checkpoints_written
    assert written >= 2
    await h.checkpointer.shutdown(5)
    found = load_latest(DirectoryStore(tmp_path), lambda name, why: None)
    assert found is not None and found[1].info["reason"] == "shutdown"
    assert h.telemetry.checkpoints_written == written + 1


async def test_a_checkpoint_copies_the_state_in_a_worker_thread_with_the_offsets_it_holds(
    tmp_path: Path,
) -> None:
    """A checkpoint asked for while the tick copies the counts out waits for that copy; it then takes the
    offsets and copies the state (in a worker thread) with no batch absorbed in between, whichever of it and
    a batch waiting at the same gate goes first."""
    h = Harness(DirectoryStore(tmp_path))
    h.checkpointer.restore()
    h.join(P0, P1)
    h.ingest(10, {P0: 6, P1: 4})
    aggregator = h.engine.aggregator
    threads: list[bool] = []
    real = aggregator.export_state

    def export_state() -> AggregatorState:
        threads.append(threading.current_thread() is threading.main_thread())
        return real()

    aggregator.export_state = export_state  # type: ignore[method-assign]
    gate, release = h.engine.gate, threading.Event()
    copy = asyncio.create_task(gate.run_in_thread(lambda: release.wait(10)))
    await asyncio.sleep(0)
    checkpoint = asyncio.create_task(h.checkpointer.checkpoint("interval"))

    async def absorb() -> None:
        await gate.writable()
        h.ingest(5, {P0: 11, P1: 4})

    absorbing = asyncio.create_task(absorb())
    await asyncio.sleep(0.01)
    assert not checkpoint.done() and not absorbing.done() and aggregator.stats.events == 10
    release.set()
    assert await copy and await checkpoint
    await absorbing
    assert threads == [False] and aggregator.stats.events == 15
    found = load_latest(DirectoryStore(tmp_path), lambda name, why: None)
    assert found is not None
    _, cp = found
    assert (cp.offsets, cp.state.events) in (({P0: 6, P1: 4}, 10), ({P0: 11, P1: 4}, 15))
