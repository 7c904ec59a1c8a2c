"""Stage 1 → partials → stage 2 gives exactly one process's state, whatever the cuts, replays and order.

The real core `Aggregator` on both sides: the reference is one aggregator fed every event; the scaled
side cuts each input partition into ranges, summarises and splits each range, encodes it into records
(sometimes capped small, so ranges span several records), delivers each partials partition's records
with ranges of different input partitions interleaved and records replayed (a crash between produce and
commit, a zombie), and applies them with one `Merger` per partials partition. Counts must be
integer-equal and HDR cells identical, series by series and bucket by bucket; every series must live in
exactly one partition; every replayed record must be counted as a duplicate.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloguard.core.aggregator import Aggregator
from sloguard.core.latency import HdrLayout
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import DAY, LatencySpec, RollingPeriod
from sloguard.scale.applied import Verdict
from sloguard.scale.codec import decode_piece, encode_pieces
from sloguard.scale.merger import Merger
from sloguard.scale.partials import InputRange, config_fingerprint, split, summarise
from tests.support.specs import config, slo
from tests.unit.scale.canon import comparable

T0 = 1_767_225_600_000
CONFIG = config(
    slo(group_by=("endpoint",)),
    slo(
        name="lat", kind="latency", threshold_ms=100.0, group_by=("customer",), period=RollingPeriod(7 * DAY)
    ),
    slo(name="both", group_by=("endpoint", "customer"), fine=60, coarse=3600),
    slo(name="search-all", service="search"),
    latency=LatencySpec(group_by=("service", "endpoint")),
)
FP = config_fingerprint(CONFIG)
assert CONFIG.latency is not None
COUNTS_LEN = HdrLayout.create(
    int(CONFIG.latency.highest_ms * 1000), CONFIG.latency.significant_figures
).counts_len

events_strategy = st.lists(
    st.builds(
        Event,
        # Mostly within three days; some a month and more older (dropped by the 7-day SLO's ring).
        ts_ms=st.one_of(
            st.integers(T0, T0 + 3 * DAY * 1000), st.integers(T0 - 40 * DAY * 1000, T0 - 6 * DAY * 1000)
        ),
        service=st.sampled_from(["checkout", "search", "unknown"]),
        endpoint=st.sampled_from(["GET /a", "POST /b", "GET /c"]),
        customer=st.sampled_from([f"c{i}" for i in range(6)]),
        status=st.sampled_from([200, 404, 500, 503]),
        latency_ms=st.floats(0, 5000, allow_nan=False).map(lambda x: round(x, 3)),
    ),
    min_size=1,
    max_size=150,
)


def assert_partition_matches(m: Merger, expected: dict[str, Any]) -> None:
    """Each partition on its own: the reference's rings (heads and lows included, so it keeps exactly
    the buckets the single process keeps) restricted to the series it owns."""
    got = comparable(m.aggregator.export_state(), COUNTS_LEN)
    for spec in CONFIG.slos:
        name = f"slo {spec.name}"
        for ring in ("fine", "coarse"):
            mine, ref = got[name][ring], expected[name][ring]
            assert (mine["head"], mine["low"]) == (ref["head"], ref["low"])
            owned = {c: v for c, v in ref["cells"].items() if m.owns(spec.name, c[0])}
            assert mine["cells"] == owned
    assert got["latency"]["heads"] == expected["latency"]["heads"]
    owned = {c: v for c, v in expected["latency"]["cells"].items() if m.owns(None, c[2])}
    assert got["latency"]["cells"] == owned


def ranges_of(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    points = sorted({c % n for c in cuts if c % n > 0} | {0, n})
    return list(itertools.pairwise(points))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=events_strategy,
    inputs=st.integers(1, 3),
    partitions=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    replays=st.integers(0, 12),
    small_records=st.booleans(),
)
def test_any_cuts_replays_and_interleaving_give_the_single_process_state(
    events: list[Event], inputs: int, partitions: int, seed: int, replays: int, small_records: bool
) -> None:
    rnd = random.Random(seed)
    reference = Aggregator(CONFIG)
    reference.ingest(EventBatch.from_events(events))

    # Stage 1: each input partition's records, cut into contiguous ranges, each summarised and split.
    streams: list[list[Event]] = [[] for _ in range(inputs)]
    for e in events:
        streams[rnd.randrange(inputs)].append(e)
    per_partition: list[list[list[bytes]]] = [[[] for _ in range(inputs)] for _ in range(partitions)]
    for ip, stream in enumerate(streams):
        if not stream:
            continue
        for a, b in ranges_of(len(stream), [rnd.randrange(1, 200) for _ in range(rnd.randrange(4))]):
            rng = InputRange("requests", ip, 1000 + a, 1000 + b)
            state = summarise(CONFIG, [EventBatch.from_events(stream[a:b])])
            for p, piece in enumerate(split(CONFIG, state, partitions)):
                cap = 2500 if small_records else 900 * 1024
                per_partition[p][ip] += encode_pieces(CONFIG, rng, FP, p, partitions, piece, max_bytes=cap)

    # Delivery: input partitions interleaved, order within each kept; then records replayed later.
    mergers = [Merger(CONFIG, FP, p, partitions) for p in range(partitions)]
    duplicates = 0
    for p, merger in enumerate(mergers):
        queues = [list(q) for q in per_partition[p] if q]
        delivered: list[bytes] = []
        while queues:
            q = rnd.choice(queues)
            delivered.append(q.pop(0))
            if not q:
                queues.remove(q)
        for _ in range(replays if delivered else 0):
            at = rnd.randrange(len(delivered))
            delivered.insert(rnd.randrange(at + 1, len(delivered) + 1), delivered[at])
            duplicates += 1
        for record in delivered:
            assert merger.offer(decode_piece(record)) is not Verdict.CONFLICT

    assert sum(m.counts.get("duplicate", 0) for m in mergers) == duplicates
    assert all(not m.applied.pending for m in mergers)
    # Every series lives in exactly one partition (ungrouped SLOs have their row everywhere, empty).
    for name in ("checkout-availability", "lat", "both"):
        seen: dict[tuple[str, ...], int] = {}
        for m in mergers:
            st_ = m.aggregator.export_state().slos[name]
            for k, e in zip(st_.series.keys, st_.series.row_events.tolist(), strict=True):
                if e:
                    assert k not in seen, (name, k)
                    seen[k] = m.partition
                    assert m.owns(name, k)
    expected = comparable(reference.export_state(), COUNTS_LEN)
    for m in mergers:
        assert_partition_matches(m, expected)
    merged = Aggregator(CONFIG)
    for m in mergers:
        merged.merge(m.aggregator)
    assert comparable(merged.export_state(), COUNTS_LEN) == expected
    now = max(e.ts_ms for e in events) + 60_000
    snap_a, snap_b = merged.snapshot(now), reference.snapshot(now)
    for sa, sb in zip(snap_a.slos, snap_b.slos, strict=True):
        order = {k: i for i, k in enumerate(sa.labels)}
        perm = [order[k] for k in sb.labels]
        assert np.array_equal(sa.total[:, perm], sb.total)
        assert np.array_equal(sa.bad[:, perm], sb.bad)
        assert np.array_equal(sa.period_total[perm], sb.period_total)
