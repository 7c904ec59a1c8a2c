"""The aggregator's state as plain values: what a checkpoint stores and what a reload carries over.

`Aggregator.export_state` produces an `AggregatorState`; `Aggregator.restore_state` puts one back. Only
non-empty cells are kept (a ring's cells as flat ``slot · rows + row`` indices with their counts, a
latency slot as its sparse HDR cells), so a checkpoint is proportional to the data, not to the
configured windows.

Each SLO's state carries the ``fingerprint`` of the spec it was built for (``repr`` of the frozen
`SloSpec`): ring lengths, resolutions, caps and the SLI all follow from the spec, so state is only
restored into an SLO whose spec is identical. A changed SLO starts empty; the others keep their state.
"""

from __future__ import annotations

from dataclasses import dataclass

from sloguard._types import I64
from sloguard.core.spec import LatencySpec, SloSpec

#: Bumped whenever the meaning of a field below changes; older states are refused, never misread.
STATE_VERSION = 1


def fingerprint(spec: SloSpec | LatencySpec) -> str:
    """Identity of a spec for state restore: equal fingerprints mean identical ring shapes and SLIs."""
    return repr(spec)


@dataclass(frozen=True, slots=True)
class RingState:
    """Non-empty cells of a `BucketRing` (see `sloguard.core.windows`)."""

    res_ms: int
    n: int
    head: int | None
    low: int | None
    rows: int
    #: Flat indices ``slot · rows + row`` of the cells with a non-zero total.
    cells: I64
    total: I64
    bad: I64


@dataclass(frozen=True, slots=True)
class HistRingState:
    """Non-empty slots of a `HistRing` (see `sloguard.core.histring`)."""

    slot_ms: int
    n: int
    head: int | None
    low: int | None
    #: Absolute slot numbers of the non-empty slots, and how many cells each holds.
    buckets: I64
    lengths: I64
    #: Concatenated sparse cells (``row · counts_len + hdr_index``) and counts of those slots.
    keys: I64
    counts: I64


@dataclass(frozen=True, slots=True)
class SeriesState:
    """Series keys in row order (row i is ``keys[i]``) and the events each row received."""

    keys: tuple[tuple[str, ...], ...]
    row_events: I64


@dataclass(frozen=True, slots=True)
class SloState:
    fingerprint: str
    series: SeriesState
    fine: RingState
    coarse: RingState
    too_old: int
    events: int


@dataclass(frozen=True, slots=True)
class LatencyState:
    fingerprint: str
    series: SeriesState
    rings: tuple[HistRingState, ...]
    too_old: int


@dataclass(frozen=True, slots=True)
class AggregatorState:
    """Everything an `Aggregator` holds but its config and label vocabularies (rebuilt on use)."""

    slos: dict[str, SloState]
    latency: LatencyState | None
    events: int
    newest_ms: int | None
    oldest_ms: int | None
    version: int = STATE_VERSION


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What `Aggregator.restore_state` did, per SLO name: for a log line."""

    restored: tuple[str, ...]
    #: In the config but not restored: new, or its spec changed since the state was taken.
    fresh: tuple[str, ...]
    #: In the state but no longer configured: dropped.
    dropped: tuple[str, ...]
    latency_restored: bool
