"""`OffsetLedger` with no broker: every rebalance case the integration and e2e tests drive through Tansu
(tests/integration/test_kafka_source.py, test_daemon.py, tests/e2e/test_faults.py, test_durability.py),
played as the sequence of calls `KafkaSource` and the daemon make."""

from __future__ import annotations

import pytest

from sloguard.ingest.offsets import TP, OffsetLedger, Offsets

T = "requests"
P0, P1, P2 = (T, 0), (T, 1), (T, 2)


def joined(*partitions: TP, ledger: OffsetLedger | None = None) -> OffsetLedger:
    """A ledger after a rebalance that assigned ``partitions`` (what `KafkaSource._on_assigned` does)."""
    ledger = ledger if ledger is not None else OffsetLedger()
    for tp, offset in ledger.assign(partitions).items():
        ledger.start_at_checkpoint(tp, offset, None)
    ledger.join(partitions)
    return ledger


def rebalance(ledger: OffsetLedger, *new: TP) -> None:
    """A clean rebalance: everything revoked (eager protocol, as aiokafka does), then ``new`` assigned."""
    ledger.leave()
    ledger.revoked(ledger.assignment)
    joined(*new, ledger=ledger)


def fetch(ledger: OffsetLedger, **offsets: int) -> Offsets:
    """A fetch's next offsets, stamped before the wait (``p0=3`` is partition 0's next offset 3)."""
    out = ledger.stamp()
    out.update({(T, int(k[1:])): v for k, v in offsets.items()})
    return out


# -- committing what was absorbed ------------------------------------------------------------------------


def test_only_absorbed_offsets_are_committed_and_only_once() -> None:
    ledger = joined(P0, P1)
    first, second = fetch(ledger, p0=2, p1=1), fetch(ledger, p0=3)
    assert ledger.to_commit(ledger.pending, {P0, P1}) == {}  # fetched, never absorbed
    ledger.absorbed(first)
    sent = ledger.to_commit(set(ledger.pending), {P0, P1})
    assert sent == {P0: 2, P1: 1}
    ledger.commit_succeeded(sent)
    assert ledger.committed == {P0: 2, P1: 1} and ledger.pending == {}
    assert second  # never absorbed: never committable


def test_an_offset_absorbed_during_a_commit_stays_pending() -> None:
    ledger = joined(P0)
    ledger.absorbed(fetch(ledger, p0=5))
    in_flight = ledger.to_commit(set(ledger.pending), {P0})
    ledger.absorbed(fetch(ledger, p0=9))  # while the commit waits on the broker
    ledger.commit_succeeded(in_flight)
    assert ledger.committed == {P0: 5} and ledger.pending == {P0: 9}


def test_a_failed_commit_keeps_the_offsets_pending() -> None:
    ledger = joined(P0)
    ledger.absorbed(fetch(ledger, p0=5))
    assert ledger.to_commit(set(ledger.pending), {P0}) == {P0: 5}
    # The commit timed out: nothing reported, the next commit sends the same offsets.
    assert ledger.to_commit(set(ledger.pending), {P0}) == {P0: 5}


def test_latest_absorbed_offset_wins_even_backwards() -> None:
    ledger = joined(P0)
    ledger.absorbed(fetch(ledger, p0=10))
    ledger.absorbed(fetch(ledger, p0=4))  # a reset: re-read rather than skip
    assert ledger.pending == {P0: 4}


def test_offsets_of_partitions_no_longer_owned_are_dropped_not_committed() -> None:
    ledger = joined(P0, P1)
    ledger.absorbed(fetch(ledger, p0=3, p1=4))
    assert ledger.to_commit({P0, P1}, owned={P1}) == {P1: 4}
    assert ledger.pending == {P1: 4}


# -- rebalances ------------------------------------------------------------------------------------------


def test_revoke_mid_batch_commits_what_on_revoke_absorbed_then_drops_the_partition() -> None:
    ledger = joined(P0, P1)
    in_flight = fetch(ledger, p0=2, p1=3)
    ledger.leave()
    ledger.absorbed(in_flight)  # on_revoke: the app absorbs what it holds, before the commit
    revoked = {P0, P1}
    assert ledger.to_commit(revoked & set(ledger.pending), {P0, P1}) == {P0: 2, P1: 3}
    ledger.commit_succeeded({P0: 2, P1: 3})
    ledger.revoked(revoked)
    joined(P1, ledger=ledger)
    assert ledger.joined and ledger.assignment == {P1} and ledger.committed == {P0: 2, P1: 3}


def test_a_batch_fetched_before_a_rebalance_is_never_committed_after_it() -> None:
    ledger = joined(P0, P1)
    stale = fetch(ledger, p0=2, p1=1)
    rebalance(ledger, P0, P1)  # revoked and given back: the fetch is from an old epoch
    ledger.absorbed(stale)
    assert ledger.pending == {}
    assert ledger.current(stale) == {}
    fresh = fetch(ledger, p0=3)
    ledger.absorbed(fresh)
    assert ledger.pending == {P0: 3}


def test_a_revocation_drops_pending_offsets_and_lag_of_the_revoked_partitions() -> None:
    ledger = joined(P0, P1)
    ledger.fetched([P0, P1], {P0: 10, P1: 10}, fetch(ledger, p0=4, p1=6))
    ledger.absorbed({P0: 4, P1: 6})
    ledger.leave()
    ledger.revoked({P0})
    assert ledger.pending == {P1: 6}
    assert P0 not in ledger.positions and P0 not in ledger.highwaters
    assert not ledger.joined


def test_lost_membership_drops_every_pending_offset_and_refuses_older_fetches() -> None:
    ledger = joined(P0, P1)
    old = fetch(ledger, p0=7)
    ledger.absorbed({P0: 3, P2: 9})  # P2: absorbed from a partition the loss does not name
    ledger.lost({P0, P1})
    assert ledger.pending == {} and not ledger.joined
    ledger.absorbed(old)
    ledger.absorbed({P2: 1})  # a plain mapping is taken as current
    assert ledger.pending == {P2: 1}


def test_a_plain_mapping_is_taken_as_current() -> None:
    ledger = joined(P0)
    rebalance(ledger, P0)
    ledger.absorbed({P0: 5})
    assert ledger.pending == {P0: 5}


# -- checkpoints: what a checkpoint may record -----------------------------------------------------------


def test_without_checkpoints_ingested_offsets_are_committable_at_once() -> None:
    ledger = joined(P0)
    ledger.ingested(fetch(ledger, p0=4))
    assert ledger.pending == {P0: 4} and ledger.held == {P0: (4, 1)}


def test_with_checkpoints_offsets_wait_for_a_checkpoint_that_holds_them() -> None:
    ledger = OffsetLedger()
    ledger.via_checkpoints = True
    joined(P0, P1, ledger=ledger)
    ledger.ingested(fetch(ledger, p0=4, p1=2))
    assert ledger.pending == {}
    offsets = ledger.checkpoint_offsets()
    assert offsets == {P0: 4, P1: 2}
    ledger.absorbed(offsets)  # the checkpoint was written
    assert ledger.pending == {P0: 4, P1: 2}


def test_a_stale_batch_ingested_after_a_rebalance_is_not_held() -> None:
    ledger = OffsetLedger()
    ledger.via_checkpoints = True
    joined(P0, ledger=ledger)
    stale = fetch(ledger, p0=8)
    rebalance(ledger, P0)
    ledger.ingested(stale)
    assert ledger.held == {} and ledger.checkpoint_offsets() == {}


def test_before_the_first_assignment_a_checkpoint_records_what_was_restored() -> None:
    ledger = OffsetLedger()
    ledger.restored({P0: 100, P1: 50})
    assert ledger.checkpoint_offsets() == {P0: 100, P1: 50}


def test_a_restored_offset_counts_once_the_source_has_sought_to_it() -> None:
    ledger = OffsetLedger()
    ledger.restored({P0: 100, P1: 50})
    seeks = ledger.assign({P0, P1})
    assert seeks == {P0: 100, P1: 50}
    assert ledger.start_at_checkpoint(P0, 100, committed=90)  # a crash came between checkpoint and commit
    # P1: the group committed further than the checkpoint, so no seek: another member's state holds
    # those events, and recording 50 would make the group re-read them.
    assert not ledger.start_at_checkpoint(P1, 50, committed=60)
    ledger.join({P0, P1})
    assert ledger.checkpoint_offsets() == {P0: 100}
    ledger.ingested(fetch(ledger, p1=70))
    assert ledger.checkpoint_offsets() == {P0: 100, P1: 70}


@pytest.mark.parametrize(
    ("committed", "seek"),
    [(None, True), (99, True), (100, True), (101, False)],
    ids=["none", "behind", "equal", "ahead"],
)
def test_a_checkpoint_seek_is_skipped_only_when_the_group_committed_further(
    committed: int | None, seek: bool
) -> None:
    ledger = OffsetLedger()
    ledger.restored({P0: 100})
    assert ledger.assign({P0}) == {P0: 100}
    assert ledger.start_at_checkpoint(P0, 100, committed) is seek
    ledger.join({P0})
    assert ledger.checkpoint_offsets() == ({P0: 100} if seek else {})


def test_checkpoint_seeks_happen_on_the_first_assignment_of_each_partition_only() -> None:
    ledger = OffsetLedger()
    ledger.restored({P0: 100, P1: 50, P2: 10})
    seeks = ledger.assign({P1, P0})
    assert list(seeks.items()) == [(P0, 100), (P1, 50)]  # in partition order
    for tp, offset in seeks.items():
        ledger.start_at_checkpoint(tp, offset, None)
    ledger.join({P0, P1})
    rebalance(ledger, P0, P1, P2)
    assert ledger.sought == {P0: (100, 1), P1: (50, 1), P2: (10, 2)}
    assert ledger.assign({P0, P1, P2}) == {}


def test_a_restored_offset_sought_in_an_earlier_assignment_is_stale_after_a_rebalance() -> None:
    ledger = OffsetLedger()
    ledger.restored({P0: 100})
    joined(P0, ledger=ledger)
    assert ledger.checkpoint_offsets() == {P0: 100}
    rebalance(ledger, P0)  # someone else may have owned it meanwhile
    assert ledger.checkpoint_offsets() == {}


def test_checkpoint_offsets_come_only_from_the_current_assignment() -> None:
    """Second daemon joins: this one keeps P1 only; P0's old offset must not be checkpointed (and then
    committed), as the other member moves it on."""
    ledger = joined(P0, P1)
    ledger.ingested(fetch(ledger, p0=10, p1=20))
    rebalance(ledger, P1)
    assert ledger.checkpoint_offsets() == {}  # P1's offset is from the old assignment, P0 is not ours
    ledger.ingested(fetch(ledger, p1=25))
    assert ledger.checkpoint_offsets() == {P1: 25}
    rebalance(ledger, P0, P1)  # the other member left: P0 comes back, its old offset stays stale
    assert ledger.checkpoint_offsets() == {}


def test_after_a_lost_membership_old_offsets_are_not_checkpointed() -> None:
    """The broker restarted with memory storage: the topic is new, our old offsets point past its end."""
    ledger = joined(P0)
    ledger.ingested(fetch(ledger, p0=200))
    ledger.leave()
    ledger.lost({P0})
    ledger.revoked({P0})
    joined(P0, ledger=ledger)
    assert ledger.checkpoint_offsets() == {}


# -- positions, lag, past the end of the log -------------------------------------------------------------


def test_lag_is_highwater_minus_position_and_idle_partitions_are_asked_for() -> None:
    ledger = joined(P0, P1)
    unknown = ledger.fetched([P0, P1], {P0: 10, P1: 4}, fetch(ledger, p0=3))
    assert unknown == [P1]
    ledger.positioned(P1, 4)
    assert ledger.lag() == {P0: 7, P1: 0}
    assert ledger.fetched([P0, P1], {P0: 10, P1: 4}, {}) == []  # known now


def test_a_partition_without_a_high_watermark_has_no_lag_yet() -> None:
    ledger = joined(P0)
    assert ledger.fetched([P0], {}, {P0: 3}) == []
    assert ledger.lag() == {}


@pytest.mark.parametrize(("position", "past"), [(11, True), (10, False)], ids=["past-end", "at-end"])
def test_a_position_past_the_end_of_the_log_is_reported_until_reset(position: int, past: bool) -> None:
    ledger = joined(P0)
    ledger.fetched([P0], {P0: 10}, {P0: position})
    assert ledger.past_end() == ([(P0, position, 10)] if past else [])
    ledger.forget_position(P0)
    assert ledger.past_end() == [] and ledger.lag() == {}


def test_positions_of_partitions_not_owned_are_not_lag_nor_reset() -> None:
    ledger = joined(P0)
    ledger.fetched([P0], {P0: 10}, {P0: 20})
    ledger.fetched([], {}, {})  # the consumer's assignment is empty now (rebalancing)
    assert ledger.assignment == frozenset()
    assert ledger.lag() == {} and ledger.past_end() == []
