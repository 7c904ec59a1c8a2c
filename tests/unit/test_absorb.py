"""The absorb step (`Absorber`) with a fake dead-letter topic and a real `OffsetLedger`: what is counted,
what is dead-lettered, and which offsets it hands to the ledger (none while dead letters cannot be written
and the daemon stops)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from sloguard import absorb as absorb_module
from sloguard.absorb import Absorber, _slices
from sloguard.clock import ManualClock
from sloguard.engine import Engine
from sloguard.ingest.decode import FUTURE_TIMESTAMP
from sloguard.ingest.kafka import DeadLetterError, Fetched
from sloguard.ingest.offsets import OffsetLedger
from sloguard.settings import load_settings
from sloguard.specfile import parse_config
from sloguard.telemetry import Telemetry

NOW = 1_767_225_600_000
P0 = ("requests", 0)
SLOS = (
    "apiVersion: sloguard/v1\n"
    "slos: [{name: checkout, service: checkout, objective: 99.9, sli: {type: availability}, window: 30d}]\n"
)


def record(ts_ms: int, status: int = 200) -> bytes:
    return (
        b'{"ts": %d, "service": "checkout", "endpoint": "GET /a", "customer": "c", "status": %d, '
        b'"latency_ms": 1}' % (ts_ms, status)
    )


class FakeDeadLetters:
    """Fails ``failures`` times, then writes; records longer than ``max_bytes`` are too large."""

    def __init__(self, failures: int = 0, max_bytes: int = 1 << 20) -> None:
        self.failures = failures
        self.max_bytes = max_bytes
        self.written: list[tuple[str, bytes]] = []
        self.tries = 0
        self._tried = asyncio.Event()

    async def tried(self, n: int) -> None:
        """Until ``n`` writes were tried in all."""
        while self.tries < n:
            self._tried.clear()
            await self._tried.wait()

    async def dead_letter(self, items: Sequence[tuple[str, bytes]]) -> int:
        self.tries += 1
        self._tried.set()
        if self.failures:
            self.failures -= 1
            raise DeadLetterError("dlq unreachable")
        fits = [(r, p) for r, p in items if len(p) <= self.max_bytes]
        self.written += fits
        return len(items) - len(fits)


def absorber(dead_letters: Any = None, *, dlq: bool = True, **ledger: Any) -> Absorber:
    kafka = {"dead_letter_topic": "dlq"} if dlq else {}
    settings = load_settings({"kafka": kafka, "late_after_seconds": 60, "allowed_skew_seconds": 10})
    offsets = OffsetLedger()
    offsets.via_checkpoints = ledger.get("via_checkpoints", False)
    return Absorber(
        Engine(parse_config(SLOS, "slos.yaml")),
        offsets,
        dead_letters if dead_letters is not None else FakeDeadLetters(),
        Telemetry(),
        ManualClock(NOW),
        settings,
        asyncio.Event(),
    )


async def test_good_late_and_future_events_are_counted_and_rejects_dead_lettered() -> None:
    dlq = FakeDeadLetters()
    a = absorber(dlq)
    future, bad = record(NOW + 11_000), b"{not json"
    await a.absorb(Fetched([record(NOW - 1000), record(NOW - 120_000, 500), future, bad], {P0: 4}))
    t = a.telemetry
    assert (t.records_consumed, t.events_processed, t.events_late, t.events_future) == (4, 2, 1, 1)
    assert t.invalid.counts[FUTURE_TIMESTAMP] == 1 and t.invalid.total == 2
    assert [p for _, p in dlq.written] == [future, bad] and t.dead_lettered == 2
    assert a.engine.aggregator.snapshot(NOW).slos[0].events == 2
    # Without checkpoints the offsets are committable at once.
    assert a.offsets.held == {P0: (4, 0)} and a.offsets.pending == {P0: 4}


async def test_with_checkpoints_the_offsets_wait_for_one() -> None:
    a = absorber(via_checkpoints=True)
    await a.absorb(Fetched([record(NOW - 1000)], {P0: 1}))
    assert a.offsets.held == {P0: (1, 0)} and a.offsets.pending == {}


async def test_without_a_dead_letter_topic_rejects_are_only_counted() -> None:
    dlq = FakeDeadLetters()
    a = absorber(dlq, dlq=False)
    await a.absorb(Fetched([b"{not json"], {P0: 1}))
    assert dlq.written == [] and a.telemetry.invalid.total == 1 and a.offsets.pending == {P0: 1}


async def test_a_failing_dead_letter_topic_is_retried_until_it_works() -> None:
    dlq = FakeDeadLetters(failures=1)
    a = absorber(dlq)
    await asyncio.wait_for(a.absorb(Fetched([b"{not json"], {P0: 1})), 5)
    assert len(dlq.written) == 1 and a.offsets.pending == {P0: 1}


async def test_stopping_with_the_dead_letter_topic_away_leaves_the_fetch_out() -> None:
    a = absorber(FakeDeadLetters(failures=1_000))
    a.stopping.set()
    await a.absorb(Fetched([record(NOW - 1000), b"{not json"], {P0: 2}))
    # Neither counted nor held nor committable: after a restart the records are read again, once.
    assert a.telemetry.events_processed == 0 and a.telemetry.dead_lettered == 0
    assert a.engine.aggregator.snapshot(NOW).slos[0].events == 0
    assert a.offsets.held == {} and a.offsets.pending == {}


async def test_while_the_dead_letter_topic_is_retried_the_gate_is_open_and_the_fetch_not_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tick and the checkpoint go on meanwhile (the gate is open) and find the fetch neither counted
    nor marked; once the rejects are written, both at once."""
    monkeypatch.setattr(absorb_module, "DEAD_LETTER_BACKOFF_S", (0.001, 0.001))
    dlq = FakeDeadLetters(failures=1_000)
    a = absorber(dlq)
    absorbing = asyncio.create_task(a.absorb(Fetched([record(NOW - 1000), b"{not json"], {P0: 2})))
    await asyncio.wait_for(dlq.tried(3), 5)
    await a.engine.gate.writable()
    assert a.engine.aggregator.snapshot(NOW).slos[0].events == 0 and a.offsets.held == {}
    assert a.telemetry.records_consumed == 2 and not absorbing.done()
    dlq.failures = 0
    await asyncio.wait_for(absorbing, 5)
    assert a.engine.aggregator.snapshot(NOW).slos[0].events == 1 and a.offsets.held == {P0: (2, 0)}
    assert a.telemetry.dead_lettered == 1 and a.telemetry.events_processed == 1


async def test_a_slice_whose_vocabulary_was_reset_before_its_ingest_is_decoded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fetch is decoded whole before it is ingested; the ingest of one slice may reset a vocabulary
    grown past its limit, and the later slices' ids with it: they are decoded again, counted once."""
    by_customer = SLOS.replace("window: 30d}", "window: 30d, group_by: [customer]}")
    a = absorber()
    a.slice_bytes = 1  # a record a slice
    a.engine = Engine(parse_config(by_customer, "slos.yaml"))
    a.engine.aggregator.vocab_limit = 1
    customers = ["a", "b", "c", "a"]
    records = [
        record(NOW - 1000).replace(b'"customer": "c"', b'"customer": "%s"' % c.encode()) for c in customers
    ]
    await a.absorb(Fetched([*records, b"{not json"], {P0: 5}))
    snap = a.engine.aggregator.snapshot(NOW).slos[0]
    assert snap.events == 4 and a.engine.aggregator.vocab_resets > 0
    per_customer = {labels[-1]: int(n) for labels, n in zip(snap.labels, snap.total[-1], strict=True)}
    assert per_customer == {"a": 2, "b": 1, "c": 1}
    assert a.telemetry.invalid.total == 1 and a.telemetry.events_processed == 4
    assert a.offsets.held == {P0: (5, 0)}


@pytest.mark.parametrize("stale", [False, True], ids=["current", "fetched-before-a-rebalance"])
async def test_offsets_of_a_batch_fetched_before_a_rebalance_are_not_held(stale: bool) -> None:
    a = absorber()
    offsets = a.offsets.stamp()
    offsets[P0] = 1
    if stale:
        a.offsets.revoked({P0})
    await a.absorb(Fetched([record(NOW - 1000)], offsets))
    assert a.offsets.held == ({} if stale else {P0: (1, 0)})


async def test_records_too_large_for_the_dead_letter_topic_are_dropped_and_counted() -> None:
    dlq = FakeDeadLetters(max_bytes=16)
    a = absorber(dlq)
    await a.absorb(Fetched([b"{not json", b"{" + b"x" * 100], {P0: 2}))
    assert (a.telemetry.dead_lettered, a.telemetry.dead_letter_dropped) == (1, 1)
    assert a.offsets.pending == {P0: 2}


async def test_absorb_waits_while_the_counts_are_copied_out() -> None:
    """While the tick reads the aggregator in a worker thread (`CopyGate`), a batch is neither decoded nor
    ingested; it is once the read is done."""
    a = absorber()
    gate = a.engine.gate
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    def read() -> None:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)

    copy = asyncio.create_task(gate.run_in_thread(read))
    await asyncio.sleep(0)
    assert gate.closed
    absorbing = asyncio.create_task(a.absorb(Fetched([record(NOW - 1000)], {P0: 1})))
    await asyncio.sleep(0.01)
    assert a.telemetry.records_consumed == 0 and not absorbing.done()
    release.set()
    await copy
    await absorbing
    assert a.telemetry.events_processed == 1
    assert a.engine.aggregator.snapshot(NOW).slos[0].events == 1


def test_slices_hold_at_most_the_limit_and_every_record_once() -> None:
    records = [b"a" * n for n in (3, 4, 10, 1, 1, 2)]
    assert [list(map(len, s)) for s in _slices(records, 5)] == [[3], [4], [10], [1, 1, 2]]
    assert list(_slices([], 5)) == []
    assert [b"".join(s) for s in _slices(records, 1 << 20)] == [b"".join(records)]


async def test_a_large_fetch_is_absorbed_a_slice_at_a_time_and_whole_for_the_gate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between slices the loop serves others; the checkpoint (and the tick) waiting on the gate see the
    whole fetch ingested and its offsets marked, never part of it."""
    a = absorber()
    a.slice_bytes = 1  # a record a slice
    records = [record(NOW - 1000), record(NOW - 2000), record(NOW - 120_000, 500), record(NOW - 3000)]
    absorbing = asyncio.create_task(a.absorb(Fetched(records, {P0: 4})))
    seen: list[tuple[int, dict[tuple[str, int], int]]] = []

    async def checkpoint() -> None:
        await a.engine.gate.writable()
        seen.append((a.telemetry.events_processed, dict(a.offsets.pending)))

    await asyncio.sleep(0)
    await asyncio.sleep(0)
    mid = a.telemetry.records_consumed
    assert 0 < mid < 4  # part of the fetch absorbed, and the loop served this task
    await asyncio.gather(absorbing, checkpoint())
    assert seen == [(4, {P0: 4})]
    t = a.telemetry
    assert (t.records_consumed, t.events_processed, t.events_late) == (4, 4, 1)
    assert a.engine.aggregator.snapshot(NOW).slos[0].events == 4


async def test_those_waiting_on_the_gate_go_before_the_next_fetch() -> None:
    """The consumer may fetch again without yielding: the tick waiting on the gate is not starved."""
    a = absorber()
    order: list[str] = []

    async def consume() -> None:
        for i in range(3):
            await a.absorb(Fetched([record(NOW - 1000)], {P0: i + 1}))
            order.append("absorbed")

    async def tick() -> None:
        await a.engine.gate.writable()
        order.append("tick")

    consuming = asyncio.create_task(consume())
    await asyncio.sleep(0)  # the first absorb holds the gate
    await asyncio.gather(consuming, tick())
    assert order.index("tick") < 2
