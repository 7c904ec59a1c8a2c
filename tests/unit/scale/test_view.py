"""What a stage-2 process exports (`owned_snapshot`): its partitions' series, each computed as in one
process; all merge processes together export exactly the single process's samples."""

from __future__ import annotations

import gzip as gzip_module
import random
from dataclasses import replace
from fractions import Fraction

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import Config, Timeslices
from sloguard.export.collector import Exposition
from sloguard.export.self_metrics import SELF_METRICS, Sources
from sloguard.export.text import Body
from sloguard.scale.codec import decode_piece, encode_pieces
from sloguard.scale.merger import Merger
from sloguard.scale.partials import InputRange, apply, config_fingerprint, split, summarise
from sloguard.scale.view import OwnedCounts, ViewCache, owned_counts, owned_snapshot
from sloguard.telemetry import TelemetrySnapshot
from tests.support.specs import config, slo
from tests.unit.scale.test_exactly_once import CONFIG, FP, T0

PARTITIONS = 3
NOW = T0 + 3_600_000


def _events(n: int) -> list[Event]:
    rnd = random.Random(7)
    return [
        Event(
            ts_ms=NOW - rnd.randrange(3_000_000),
            service=rnd.choice(("checkout", "search")),
            endpoint=rnd.choice(("GET /a", "POST /b", "GET /c")),
            customer=f"c{rnd.randrange(6)}",
            status=rnd.choice((200, 200, 500)),
            latency_ms=float(rnd.randrange(1, 900)),
        )
        for _ in range(n)
    ]


def _samples(text: bytes) -> set[str]:
    return {
        line
        for line in text.decode().splitlines()
        if line.startswith(("sloguard_slo_", "sloguard_latency_s"))
    }


def test_merge_processes_together_export_the_single_process_samples() -> None:
    events = _events(600)
    ref = Aggregator(CONFIG)
    ref.ingest(EventBatch.from_events(events))
    mergers = [Merger(CONFIG, FP, p, PARTITIONS) for p in range(PARTITIONS)]
    for i in range(0, len(events), 100):
        state = summarise(CONFIG, [EventBatch.from_events(events[i : i + 100])])
        for p, piece in enumerate(split(CONFIG, state, PARTITIONS)):
            apply(mergers[p].aggregator, piece)
    exposition = Exposition(version="t")
    telemetry = TelemetrySnapshot()
    single = _samples(exposition.render(ref.snapshot(NOW), telemetry))
    # Two "processes": partitions {0} and {1, 2}; and one that owns none exports no series at all.
    a = _samples(exposition.render(owned_snapshot(Aggregator(CONFIG), mergers[:1], NOW), telemetry))
    b = _samples(exposition.render(owned_snapshot(Aggregator(CONFIG), mergers[1:], NOW), telemetry))
    none = owned_snapshot(Aggregator(CONFIG), [], NOW)
    assert all(s.series == 0 for s in none.slos) and none.latency is not None and not none.latency.labels
    assert a | b == single
    constant = (
        "sloguard_slo_info",
        "sloguard_slo_objective",
        "sloguard_slo_period",
        "sloguard_slo_burn_rate_thr",
    )
    assert all(line.startswith(constant) for line in a & b)


def test_time_slice_counts_are_joined_over_partitions_as_the_counts_are() -> None:
    """Time-slice SLOs (both methods, grouped and not): each part's slice sums are joined over the
    partitions a process owns (`_slices`) column for column with its counts, so two processes (one
    partition, the other two) export together what one owning all three exports, and a tick's counts
    reused through a `ViewCache` render as counts made afresh."""
    specs = [
        replace(slo(name=f"ts-{i}", group_by=by, coarse=60), budgeting=Timeslices(60, ratio))
        for i, (by, ratio) in enumerate(
            [(("endpoint",), Fraction(9, 10)), (("customer",), None), ((), Fraction(1, 2))]
        )
    ]
    cfg = config(*specs)
    fp = config_fingerprint(cfg)
    events = _events(600)
    mergers = [Merger(cfg, fp, p, PARTITIONS) for p in range(PARTITIONS)]
    for i in range(0, len(events), 100):
        state = summarise(cfg, [EventBatch.from_events(events[i : i + 100])])
        for p, piece in enumerate(split(cfg, state, PARTITIONS)):
            apply(mergers[p].aggregator, piece)
    exposition, telemetry = Exposition(version="t"), TelemetrySnapshot()

    def samples(owned: list[Merger], cache: ViewCache | None = None) -> set[str]:
        counts = owned_counts(Aggregator(cfg), owned, NOW, cache)
        return _samples(exposition.render(counts.evaluate(), telemetry))

    every = samples(mergers)
    assert {line.split("{")[0] for line in every} >= {
        "sloguard_slo_time_slices",
        "sloguard_slo_bad_time_slices",
    }
    assert samples(mergers[:1]) | samples(mergers[1:]) == every
    cache = ViewCache()
    for owned in (mergers[:1], mergers[1:], mergers, mergers):
        assert samples(owned, cache) == samples(owned)


def _offer(
    mergers: list[Merger], events: list[Event], start: int, end: int, cfg: Config = CONFIG, fp: bytes = FP
) -> None:
    """Events ``[start, end)`` as stage 1 sends them: one range's pieces, offered to their partitions."""
    state = summarise(cfg, [EventBatch.from_events(events[start:end])])
    rng = InputRange("requests", 0, start, end)
    for p, piece in enumerate(split(cfg, state, PARTITIONS)):
        for record in encode_pieces(cfg, rng, fp, p, PARTITIONS, piece):
            mergers[p].offer(decode_piece(record))


def test_reused_captures_equal_fresh_ones_between_pieces() -> None:
    """A tick reuses a partition's capture of an SLO no piece changed since (same fine bucket of now),
    and the joined counts and their evaluation of an SLO none of whose parts changed (`ViewCache`):
    every tick's samples equal those of a capture made afresh, as pieces touching some SLOs and not
    others come in (ranges of one service at a time) and now moves within and across fine buckets."""
    events = sorted(_events(400), key=lambda e: e.service)  # a range touches one service's SLOs
    mergers = [Merger(CONFIG, FP, p, PARTITIONS) for p in range(PARTITIONS)]
    exposition, telemetry = Exposition(version="t"), TelemetrySnapshot()
    base = Aggregator(CONFIG)
    cache = ViewCache()
    now, reused = NOW, 0
    for i in range(0, len(events), 50):
        _offer(mergers, events, i, i + 50)
        for step in (0, 3_000, 9_000):
            now += step
            counts = owned_counts(base, mergers, now, cache)
            cached = exposition.render(counts.evaluate(), telemetry)
            again = owned_counts(base, mergers, now, cache)  # nothing changed: the same counts objects
            reused += sum(a is b for a, b in zip(counts.slos, again.slos, strict=True))
            for m in mergers:
                m.captured.clear()
            fresh = _samples(exposition.render(owned_snapshot(base, mergers, now), telemetry))
            assert _samples(cached) == fresh
            assert _samples(exposition.render(again.evaluate(), telemetry)) == fresh
    assert reused > 0


def _text(body: Body) -> bytes:
    return b"".join(body.text())


def test_idle_ticks_serve_the_last_families_and_every_body_is_a_full_render() -> None:
    """Stage 2's body at each tick (`Exposition.render_body` of `owned_counts` with a `ViewCache`) is
    byte for byte a full render of a snapshot made afresh: as pieces come in, now moves within and
    across fine buckets and slots, the self-metrics change every tick, and a partition is revoked. A
    tick with nothing applied and now in the same fine bucket keeps the SLO and latency snapshots (the
    same objects) and serves the last body's pieces after the self-metrics again; with gzip too."""
    events = sorted(_events(400), key=lambda e: e.service)
    mergers = [Merger(CONFIG, FP, p, PARTITIONS) for p in range(PARTITIONS)]
    exposition = Exposition(version="t")
    base = Aggregator(CONFIG)
    cache = ViewCache()
    now, idle, produced = NOW, 0, 0

    def tick(owned: list[Merger], gzip: bool = False) -> tuple[OwnedCounts, Body]:
        nonlocal produced
        produced += 1
        telemetry = TelemetrySnapshot(stage="merge", partials_produced=produced)
        counts = owned_counts(base, owned, now, cache)
        body = exposition.render_body(counts.evaluate(), telemetry, gzip=gzip)
        fresh = Exposition(version="t").render(owned_snapshot(Aggregator(CONFIG), owned, now), telemetry)
        assert _text(body) == fresh
        if gzip:
            assert gzip_module.decompress(b"".join(body.members)) == fresh
        return counts, body

    for i in range(0, len(events), 100):
        _offer(mergers, events, i, i + 100)
        for step in (0, 1_000, 1_000, 9_000, 61_000):
            now += step
            first, body = tick(mergers)
            again, body2 = tick(mergers, gzip=step == 1_000)
            # Nothing applied, same now: the same snapshots, and the same pieces after the self-metrics.
            assert all(a is b for a, b in zip(first.slos, again.slos, strict=True))
            assert again.evaluate().latency is first.evaluate().latency
            assert all(a is b for a, b in zip(body.pieces[1:], body2.pieces[1:], strict=True))
            idle += 1
    # A revoked partition: its series go at once. A process owning no series of an SLO keeps that
    # SLO's counts too while idle (partition 0 alone has none of "search-all").
    assert any(not s.labels for s in owned_counts(base, mergers[:1], now).slos)
    for owned in (mergers[1:], mergers[:1]):
        first, body = tick(owned)
        now += 1  # (the same fine bucket)
        cache.last = None  # (as if something else had been applied: the per-SLO caches answer)
        again, body2 = tick(owned)
        assert all(a is b for a, b in zip(first.slos, again.slos, strict=True))
        assert all(a is b for a, b in zip(body.pieces[1:], body2.pieces[1:], strict=True))
    assert idle > 0


def test_pipeline_self_metrics_only_in_their_stage() -> None:
    snap = Aggregator(CONFIG).snapshot(NOW)
    names = {
        stage: {
            m.name for m in SELF_METRICS if m.field(Sources(snap, TelemetrySnapshot(stage=stage), (), "v"))
        }
        for stage in ("", "partial", "merge")
    }
    assert "sloguard_partials_duplicate_total" in names["merge"]
    assert "sloguard_partials_produced_total" in names["partial"]
    assert not {n for n in names[""] if "partial" in n or "stage" in n or "owned" in n}
    assert "sloguard_partials_duplicate_total" not in names["partial"]


def test_ratio_time_slices_equal_the_single_process_to_the_last_bit() -> None:
    """``ratio_timeslices`` sums per-slice float ratios: a partition holding a single series of the SLO
    (its slices one contiguous column, which numpy would sum pairwise) must add them in the order the
    single process does, so ``bad_time_slices`` and the error ratio are the same floats, not one ulp off
    (`sloguard.core.slices.column_sums`). Through the record codec, as stage 2 reads them."""
    spec = replace(slo(name="ts-1", group_by=("customer",), coarse=60), budgeting=Timeslices(60, None))
    cfg = config(spec)
    fp = config_fingerprint(cfg)
    events = _events(600)
    single = Aggregator(cfg)
    single.ingest(EventBatch.from_events(events))
    mergers = [Merger(cfg, fp, p, PARTITIONS) for p in range(PARTITIONS)]
    for i in range(0, len(events), 100):
        _offer(mergers, events, i, i + 100, cfg, fp)
    held = [len(m.aggregator.slos[0].series.keys) for m in mergers]
    assert 1 in held, f"the case needs a partition holding one series: {held}"
    exposition, telemetry = Exposition(version="t"), TelemetrySnapshot()
    expected = _samples(exposition.render(single.snapshot(NOW), telemetry))
    got = _samples(exposition.render(owned_snapshot(Aggregator(cfg), mergers, NOW), telemetry))
    assert any(line.startswith("sloguard_slo_bad_time_slices") for line in expected)
    assert got == expected


def test_kept_owned_flags_and_latency_labels_equal_those_made_afresh() -> None:
    """With a `ViewCache`, which partitions own series of each SLO (`_owns_any`) and the latency groups'
    labels (`_latency_labels`) are kept while the masks and key lists are the same: as pieces add
    series, every tick's SLO labels and latency labels equal those of `owned_counts` without a cache."""
    events = _events(400)
    mergers = [Merger(CONFIG, FP, p, PARTITIONS) for p in range(PARTITIONS)]
    base = Aggregator(CONFIG)
    cache = ViewCache()
    now = NOW
    for i in range(0, len(events), 40):
        _offer(mergers, events, i, i + 40)
        for step in (0, 1_000):
            now += step
            kept, fresh = owned_counts(base, mergers, now, cache), owned_counts(base, mergers, now)
            assert [s.labels for s in kept.slos] == [s.labels for s in fresh.slos]
            assert kept.latency is not None and fresh.latency is not None
            assert kept.latency.labels == fresh.latency.labels
    assert cache.owns and cache.latency_labels is not None
