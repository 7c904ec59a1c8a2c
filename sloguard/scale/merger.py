"""Stage 2's state for one partials partition: the aggregator of its series and the ranges applied.

Pure: `Merger.offer` takes a decoded `Piece` and says what it did with it; the stage-2 runtime consumes,
checkpoints (`Merger.aggregator`'s state, `Merger.applied` and the partials offset, together) and exports
the series this partition owns (`owns`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sloguard._types import Bools
from sloguard.core.aggregator import Aggregator
from sloguard.core.snapshot import SloCounts
from sloguard.core.spec import Config
from sloguard.scale.applied import Applied, RangeKey, Verdict
from sloguard.scale.codec import Piece
from sloguard.scale.partials import apply, latency_partition, series_partition

__all__ = ["Merger", "Refused"]


@dataclass(frozen=True, slots=True)
class Refused:
    """A piece this partition must not apply: made for another SLO file or another partition layout.

    Not recorded as applied: the runtime should stop applying this partition (and say so in the log and
    /readyz) until both stages run the same SLO file, rather than skip events."""

    reason: str


@dataclass
class Merger:
    """The series of partials partition ``partition`` (of ``partitions``) under SLO file ``fingerprint``."""

    config: Config
    fingerprint: bytes
    partition: int
    partitions: int
    aggregator: Aggregator = field(init=False)
    applied: Applied = field(default_factory=Applied)
    #: Records per verdict (and refused), for self-metrics.
    counts: dict[str, int] = field(default_factory=dict)
    #: Per SLO (None: latency groups): the key list last seen (the index's own, append-only) and which
    #: of its keys this partition owns, so `owned_mask` hashes each key once, not at every tick.
    _owned: dict[str | None, tuple[Sequence[tuple[str, ...]], list[bool], Bools]] = field(
        default_factory=dict, repr=False, compare=False
    )
    #: Pieces applied so far: what changed the aggregator (`sloguard.scale.view` reuses a capture of
    #: it while this and ``now`` aligned to the SLO's fine resolution are unchanged). Change the
    #: aggregator only through `offer`.
    version: int = field(default=0, compare=False)
    #: Per SLO index: ``(version, fine bucket of now)`` and the counts captured then.
    captured: dict[int, tuple[tuple[int, int], SloCounts]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.aggregator = Aggregator(self.config)

    def offer(self, piece: Piece) -> Verdict | Refused:
        """Apply ``piece`` unless it is a duplicate, a conflict, or refused (see `Verdict`, `Refused`)."""
        outcome = self._judge(piece)
        name = outcome.value if isinstance(outcome, Verdict) else "refused"
        self.counts[name] = self.counts.get(name, 0) + 1
        return outcome

    def _judge(self, piece: Piece) -> Verdict | Refused:
        if piece.fingerprint != self.fingerprint:
            return Refused(
                f"SLO file fingerprint {piece.fingerprint.hex()}, this process has {self.fingerprint.hex()}"
            )
        if (piece.partition, piece.partitions) != (self.partition, self.partitions):
            return Refused(
                f"made for partition {piece.partition} of {piece.partitions}, "
                f"read from partition {self.partition} of {self.partitions}"
            )
        r = piece.range
        key = RangeKey((r.topic, r.partition), r.start, r.end, piece.index, piece.count)
        verdict = self.applied.check(key)
        if verdict is Verdict.NEW:
            apply(self.aggregator, piece.state)
            self.applied.record(key)
            self.version += 1
        return verdict

    def owns(self, slo: str | None, key: tuple[str, ...]) -> bool:
        """Whether this partition exports series ``key`` of SLO ``slo`` (None: a latency group). Every
        partition's aggregator has the one series of an ungrouped SLO; only its owner exports it."""
        if slo is None:
            return latency_partition(key, self.partitions) == self.partition
        return series_partition(slo, key, self.partitions) == self.partition

    def owned_mask(self, slo: str | None, keys: Sequence[tuple[str, ...]]) -> Bools:
        """`owns` of each of ``keys`` (a series index's key list: it only grows, and a new index has a
        new list), computed once per key."""
        seen = self._owned.get(slo)
        if seen is None or seen[0] is not keys:
            seen = (keys, [], np.zeros(0, np.bool_))
        flags, mask = seen[1], seen[2]
        if len(mask) != len(keys):
            flags.extend(self.owns(slo, k) for k in keys[len(flags) :])
            mask = np.array(flags, np.bool_)
        self._owned[slo] = (keys, flags, mask)
        return mask
