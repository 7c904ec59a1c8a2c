"""Where stage 1 cuts an input partition into ranges, so that every owner, ever, cuts it the same way.

Stage 2 recognises a replayed range only if it is the *same* range (`sloguard.scale.applied`). A new owner
of an input partition re-reads from the committed offset after a crash, with other fetch sizes, so left to
itself it would cut differently. So the cut is made durable before the range is produced: an **intent**
``(topic, partition, start, end, generation)`` is appended to the cuts topic (one partition per input
partition) and acknowledged first. Per range, the protocol of stage 1 is (docs/scaling.md has the proof):

1. choose the next range ``[start, end)``: the first intent `resume` returned, if any is left (the
   previous owner may have produced it), else everything fetched so far;
2. append its `Intent`, stamped with the group generation, and wait for the acknowledgement;
3. commit offset ``start`` in the group (this finalises the previous range) and go on only if the
   broker accepts it: a commit from a stale generation is refused (tests/integration/
   test_broker_semantics.py), so a zombie stops here, before producing anything it announced late;
4. produce the range's partial records, wait for their acknowledgements; back to 1.

On assignment, a new owner reads the tail of its cuts partition and calls `resume` with the committed
offset: the chain of intents from there is what earlier owners may have produced, and it cuts there.

Commit metadata would be the natural place for an intent (Kafka keeps up to 4 KB with each commit, and
fences it by generation), but Tansu drops it (test_broker_semantics.py), hence the topic.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from sloguard.scale.partials import InputRange

__all__ = ["Cutter", "Intent", "decode_intent", "encode_intent", "resume"]

_MAGIC = b"SLGCUT1\n"
_FIXED = struct.Struct("<8sIQQqH")


@dataclass(frozen=True, slots=True)
class Intent:
    """Owner of ``generation`` will produce (or has produced) the partial of ``[start, end)``."""

    topic: str
    partition: int
    start: int
    end: int
    generation: int


def encode_intent(intent: Intent) -> bytes:
    topic = intent.topic.encode()
    fixed = _FIXED.pack(_MAGIC, intent.partition, intent.start, intent.end, intent.generation, len(topic))
    return fixed + topic


def decode_intent(data: bytes) -> Intent:
    """Parse a cuts record; raises ValueError saying what is wrong."""
    if len(data) < _FIXED.size:
        raise ValueError(f"cut intent of {len(data)} bytes, shorter than its header")
    magic, partition, start, end, generation, tlen = _FIXED.unpack_from(data)
    if magic != _MAGIC:
        raise ValueError("not a sloguard cut intent (bad magic)")
    if len(data) != _FIXED.size + tlen or not start < end:
        raise ValueError("malformed cut intent")
    return Intent(data[_FIXED.size :].decode(), partition, start, end, generation)


def resume(committed: int, intents: Iterable[Intent]) -> list[int]:
    """The cut points (range ends, in order) a new owner must follow from ``committed``, given the intents
    of its partition in log order.

    At one start offset, the intent of the highest generation wins (on a tie, the later one): an owner
    that acted on an intent (its commit of step 3 was accepted) wrote it before any later generation
    began, and every later owner read it and followed it, so no intent of a higher generation at that
    start can exist unless the earlier one was never acted upon."""
    best: dict[int, Intent] = {}
    for i in intents:
        seen = best.get(i.start)
        if seen is None or i.generation >= seen.generation:
            best[i.start] = i
    cuts: list[int] = []
    pos = committed
    while pos in best:
        pos = best[pos].end
        cuts.append(pos)
    return cuts


@dataclass
class Cutter:
    """Stage 1's cut bookkeeping for one owned input partition, from its assignment on (pure)."""

    topic: str
    partition: int
    generation: int
    #: The next range starts here (the committed offset on assignment).
    start: int
    #: Ends still to follow, from `resume`.
    forced: list[int] = field(default_factory=list)

    def next_range(self, fetched_end: int, max_records: int | None = None) -> InputRange | None:
        """The next range, given records fetched up to ``fetched_end`` (exclusive); None while the next
        forced cut is not fetched yet or nothing is. ``max_records`` bounds a free cut."""
        if self.forced:
            end = self.forced[0]
            return InputRange(self.topic, self.partition, self.start, end) if fetched_end >= end else None
        end = fetched_end if max_records is None else min(fetched_end, self.start + max_records)
        return InputRange(self.topic, self.partition, self.start, end) if end > self.start else None

    def intent(self, rng: InputRange) -> Intent:
        """The record of step 2 for ``rng``."""
        return Intent(rng.topic, rng.partition, rng.start, rng.end, self.generation)

    def produced(self, rng: InputRange) -> None:
        """Step 4 done: the next range starts at ``rng.end``."""
        if self.forced and self.forced[0] == rng.end:
            self.forced.pop(0)
        self.start = rng.end
