"""The absorb step and the checkpointer together, with a dead-letter topic that is away for a while: a
checkpoint taken meanwhile, a crash or a stop meanwhile, then a restart from that checkpoint that reads
the partition again from its offset. Nothing is lost and nothing counted twice, in every order.

A real `Absorber`, `Checkpointer`, `DirectoryStore` and `OffsetLedger`; the partition is a list of
records, re-delivered from the restored offset as a real source would after the seek."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sloguard import absorb as absorb_module
from sloguard.absorb import Absorber
from sloguard.checkpoint import DirectoryStore, load_latest
from sloguard.checkpointer import Checkpointer
from sloguard.ingest.kafka import Fetched
from tests.unit.test_absorb import NOW, P0, FakeDeadLetters, absorber, record

BAD = b"{not json"
#: One partition: 3 good records, then a fetch of 2 good, a reject and 2 good.
LOG = [record(NOW - 5000 + i) for i in range(3)] + [record(NOW - 1000), record(NOW - 900), BAD]
LOG += [record(NOW - 800), record(NOW - 700)]
GOOD = len(LOG) - 1


class Daemon:
    """One process's lifetime: an absorber and a checkpointer sharing its engine and ledger."""

    def __init__(self, store: Path, dlq: FakeDeadLetters) -> None:
        self.dlq = dlq
        self.absorber: Absorber = absorber(dlq)
        self.commits: list[dict[tuple[str, int], int]] = []
        a = self.absorber
        self.checkpointer = Checkpointer(
            DirectoryStore(store), a.engine, a.offsets, a.telemetry, a.clock, self.commit
        )

    async def commit(self) -> None:
        self.commits.append(dict(self.absorber.offsets.pending))
        self.absorber.offsets.commit_succeeded(dict(self.absorber.offsets.pending))

    def start(self) -> int:
        """Restore, join P0; the offset it reads from (the restored checkpoint's, else 0)."""
        self.checkpointer.restore()
        offsets = self.absorber.offsets
        start = offsets.assign([P0]).get(P0, 0)
        if start:
            assert offsets.start_at_checkpoint(P0, start, None)
        offsets.join([P0])
        return start

    async def absorb(self, start: int, end: int) -> None:
        await self.absorber.absorb(Fetched(LOG[start:end], {P0: end}))

    @property
    def events(self) -> int:
        return self.absorber.engine.aggregator.snapshot(NOW).slos[0].events


async def retrying(d: Daemon, absorbing: asyncio.Task[None]) -> None:
    """Until the absorb step has failed to write its rejects twice (and so waits to try again)."""
    await asyncio.wait_for(d.dlq.tried(d.dlq.tries + 2), 5)
    assert not absorbing.done()


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(absorb_module, "DEAD_LETTER_BACKOFF_S", (0.001, 0.002))


@pytest.mark.parametrize("end", ["crash", "stop", "written-then-crash"])
async def test_a_checkpoint_while_dead_letters_are_retried_then_a_restart_counts_every_event_once(
    tmp_path: Path, end: str
) -> None:
    first = Daemon(tmp_path, FakeDeadLetters(failures=1_000))
    assert first.start() == 0
    await first.absorb(0, 3)
    absorbing = asyncio.create_task(first.absorb(3, len(LOG)))
    await retrying(first, absorbing)
    # The checkpoint is not held up by the retries, and holds the first fetch only: counts and offsets.
    assert await asyncio.wait_for(first.checkpointer.checkpoint("interval"), 5)
    found = load_latest(DirectoryStore(tmp_path), lambda name, why: None)
    assert found is not None
    assert found[1].offsets == {P0: 3} and found[1].state.events == 3
    assert first.commits == [{P0: 3}]
    if end == "crash":
        absorbing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await absorbing
    elif end == "stop":
        first.absorber.stopping.set()
        await asyncio.wait_for(absorbing, 5)
        assert first.events == 3 and first.absorber.offsets.held == {P0: (3, 1)}
        await first.checkpointer.shutdown(5)  # the last checkpoint: still the first fetch only
        found = load_latest(DirectoryStore(tmp_path), lambda name, why: None)
        assert found is not None and found[1].offsets == {P0: 3} and found[1].state.events == 3
    else:
        first.dlq.failures = 0
        await asyncio.wait_for(absorbing, 5)
        assert first.events == GOOD and first.absorber.offsets.held == {P0: (len(LOG), 1)}
        assert first.dlq.written == [("malformed_json", BAD)]
        # Crash before the next checkpoint: the restart reads the second fetch again.

    second = Daemon(tmp_path, FakeDeadLetters())
    start = second.start()
    assert start == 3 and second.events == 3
    await second.absorb(start, len(LOG))
    assert second.events == GOOD
    assert [p for _, p in second.dlq.written] == [BAD]
    assert second.absorber.offsets.held == {P0: (len(LOG), 1)}


async def test_a_checkpoint_after_the_dead_letters_are_written_holds_the_whole_fetch(tmp_path: Path) -> None:
    first = Daemon(tmp_path, FakeDeadLetters(failures=1_000))
    first.start()
    absorbing = asyncio.create_task(first.absorb(0, len(LOG)))
    await retrying(first, absorbing)
    first.dlq.failures = 0
    await asyncio.wait_for(absorbing, 5)
    assert await first.checkpointer.checkpoint("interval")
    assert first.commits == [{P0: len(LOG)}]
    second = Daemon(tmp_path, FakeDeadLetters())
    assert second.start() == len(LOG) and second.events == GOOD
