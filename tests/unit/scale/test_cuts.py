"""Cut intents: whatever crashes, rebalances and zombies do, the ranges ever produced for an input partition
are pairwise identical or disjoint, and together they cover the partition without a hole.

The simulation models what docs/scaling.md relies on, each as tested against Tansu: the cuts log keeps
order and acknowledged appends, a commit from a stale generation is refused, and a new owner reads the
log and the committed offset after its generation began. Owners advance by single steps (append an
intent, probe-commit, produce), interleaved at random; a rebalance hands the partition to a new owner
and leaves the old one running as a zombie until its next commit is refused.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.scale.cuts import Cutter, Intent, decode_intent, encode_intent, resume
from sloguard.scale.partials import InputRange

END = 400  # records in the partition


@dataclass
class Owner:
    cutter: Cutter
    fetched: int
    step: str = "choose"
    rng: InputRange | None = None
    alive: bool = True


def test_resume_follows_the_chain_and_the_highest_generation() -> None:
    log = [
        Intent("t", 0, 0, 10, 1),
        Intent("t", 0, 10, 30, 1),
        Intent("t", 0, 10, 25, 2),  # a later owner, who did not see the first (it was never acted on)
        Intent("t", 0, 25, 40, 2),
        Intent("t", 0, 10, 12, 1),  # a zombie's late append: a lower generation never wins
    ]
    assert resume(10, log) == [25, 40]
    assert resume(0, log) == [10, 25, 40]
    assert resume(40, log) == []
    assert resume(5, log) == []


def test_intent_records_round_trip_and_refuse_garbage() -> None:
    i = Intent("requests-é", 11, 1 << 40, (1 << 40) + 5, 7)
    assert decode_intent(encode_intent(i)) == i
    with pytest.raises(ValueError, match="bad magic"):
        decode_intent(b"x" * 40)
    with pytest.raises(ValueError, match="shorter"):
        decode_intent(b"SLGCUT1\n")


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_ranges_produced_are_identical_or_disjoint_and_cover(seed: int) -> None:
    rnd = random.Random(seed)
    log: list[Intent] = []
    committed, generation = 0, 0
    produced: set[tuple[int, int]] = set()

    def join() -> Owner:
        # The new owner reads the committed offset and the log after its generation began.
        c = Cutter("t", 0, generation, committed, resume(committed, log))
        return Owner(c, fetched=committed)

    owners = [join()]
    for _ in range(3000):
        if committed >= END and all(o.step == "choose" for o in owners if o.alive):
            break
        if rnd.random() < 0.03:  # rebalance (or a crash: the old owner simply never steps again)
            generation += 1
            if rnd.random() < 0.5:
                owners = [o for o in owners if o.alive][-1:]  # crashed: gone; else a zombie
            owners.append(join())
            continue
        o = rnd.choice([o for o in owners if o.alive])
        c = o.cutter
        if o.step == "choose":
            o.fetched = min(END, max(o.fetched, c.start) + rnd.randrange(0, 60))
            o.rng = c.next_range(o.fetched, max_records=rnd.randrange(1, 80))
            if o.rng is None and c.start == END and c.generation == generation:
                committed = max(committed, END)  # an idle owner commits the end of its last range
            o.step = "intent" if o.rng is not None else "choose"
        elif o.step == "intent":
            assert o.rng is not None
            log.append(c.intent(o.rng))
            o.step = "probe"
        elif o.step == "probe":
            assert o.rng is not None
            if c.generation != generation:  # refused: a stale generation (this zombie stops)
                o.alive = False
                continue
            committed = o.rng.start
            o.step = "produce"
        else:
            assert o.rng is not None
            produced.add((o.rng.start, o.rng.end))
            c.produced(o.rng)
            o.step = "choose"
    ranges = sorted(produced)
    for (a1, b1), (a2, b2) in itertools.pairwise(ranges):
        assert b1 <= a2, f"ranges [{a1}, {b1}) and [{a2}, {b2}) overlap without being the same"
    covered = set().union(*(set(range(a, b)) for a, b in ranges))
    if ranges:
        assert covered == set(range(ranges[-1][1])), "a hole: some offsets never produced"
