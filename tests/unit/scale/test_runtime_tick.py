"""The stage process's tick while a backlog is applied: the series are refreshed every
`BEHIND_REFRESH_S` only, the self-metrics every tick, and at once when the stage caught up; a tick's
counts are evaluated only when its /metrics body is asked for."""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Awaitable
from types import SimpleNamespace

import pytest

from sloguard.core.aggregator import Aggregator
from sloguard.core.snapshot import Snapshot
from sloguard.export.collector import Exposition
from sloguard.export.text import Body
from sloguard.scale.merger import Merger
from sloguard.scale.runtime import BEHIND_REFRESH_S, StageProcess
from sloguard.scale.stage1 import PartialStage
from sloguard.scale.stage2 import MergeStage, Owned
from sloguard.scale.view import OwnedCounts, ViewCache, owned_counts
from sloguard.settings import load_settings
from tests.unit.scale.test_exactly_once import CONFIG, FP, T0
from tests.unit.scale.test_view import NOW, PARTITIONS, _events, _offer

SETTINGS = {"stage": "partial", "kafka": {"bootstrap_servers": "127.0.0.1:9", "topics": ["requests"]}}


class Scripted(PartialStage):
    """A stage-1 stage (no series) whose `behind` answers are scripted and whose exports are counted."""

    answers: list[bool]
    exported: int = 0

    def behind(self) -> bool:
        return self.answers.pop(0)

    def export_counts(self, now_ms: int) -> OwnedCounts:
        self.exported += 1
        return super().export_counts(now_ms)


async def test_tick_refreshes_series_every_refresh_interval_while_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (Async: the Kafka clients want a running loop; nothing connects.)
    stage = Scripted(load_settings(SETTINGS), CONFIG)
    stage.answers = [True, True, True, False, True, True]
    proc = StageProcess(load_settings(SETTINGS), CONFIG, stage)
    now = [0.0]
    # The module's clock only: the event loop's stays the real one.
    fake = SimpleNamespace(monotonic=lambda: now[0], perf_counter=time.perf_counter)
    monkeypatch.setattr("sloguard.scale.runtime.time", fake)
    published: list[object] = []
    monkeypatch.setattr(proc.http, "set_metrics", published.append)
    exported: list[int] = []
    latest: list[OwnedCounts | None] = []
    r = int(BEHIND_REFRESH_S)
    seconds = (0, 1, r - 1, r, r + 1, 2 * r + 1)
    for second in seconds:
        now[0] = float(second)
        stage.telemetry.partials_produced = second  # the self-metrics of this tick
        await proc.tick()
        exported.append(stage.exported)
        latest.append(proc.counts)
    # 0 s: nothing published yet, refreshed though behind; 1 s, r - 1: behind, the last counts again;
    # r: caught up, refreshed at once; r + 1: behind, 1 s after; 2r + 1: behind, r + 1 after: refreshed.
    assert exported == [1, 1, 1, 2, 2, 3]
    assert latest[1] is latest[0] and latest[2] is latest[0] and latest[4] is latest[3]
    assert proc.ticks == 6
    # The self-metrics are those of every tick, with the counts the tick kept.
    assert [(b.args[0], b.args[1].partials_produced) for b in published] == list(  # type: ignore[attr-defined]
        zip(latest, seconds, strict=True)
    )


async def test_merge_stage_is_behind_while_records_wait_or_a_fetch_is_in_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stage 2 is behind (its tick skips the series' refresh) while more than one record of a partition
    it applies is known to wait past the last fetch (or no fetch answered for it yet), or while a fetch
    is applied in slices; a stopped partition's lag does not count (it never shrinks); never while the
    partitions owned are not those its last export had (a revoked one's series must go at once)."""
    settings = load_settings({**SETTINGS, "stage": "merge"})
    stage = MergeStage(settings, CONFIG)
    topic = stage.partials_topic
    lag: dict[tuple[str, int], int] = {}
    monkeypatch.setattr(stage.source, "lag", lambda: lag)
    stage.owned = {p: Owned(Merger(CONFIG, FP, p, 3), 0) for p in range(3)}
    # Partitions that came (an assignment) are published like any change: no fetch answered for them yet,
    # their ends are not known: behind. (Published at once, they cost a copy of every series applied so
    # far whenever the tick fell between two apply slices of the backlog's first fetch.)
    assert stage.behind()
    stage.export_counts(T0)
    assert stage.behind()  # no fetch answered for them yet: their ends are not known
    lag.update({(topic, 0): 1, (topic, 1): 0, (topic, 2): 0})  # an end may be one past the last record
    assert not stage.behind()
    lag[(topic, 2)] = 40
    assert stage.behind()
    stage.owned[2].refused = "another SLO file"
    assert not stage.behind()
    stage._applying = True
    assert stage.behind()
    # A rebalance took partition 1 away: the next tick publishes without its series, behind or not.
    del stage.owned[1]
    assert not stage.behind()
    stage.export_counts(T0)
    assert stage.behind()
    # Partition 1 came back (with others gone meanwhile: published at once; with none gone: not).
    stage.owned[1] = Owned(Merger(CONFIG, FP, 1, 3), 0)
    assert stage.behind()
    del stage.owned[0]
    assert not stage.behind()


async def test_a_skipped_tick_is_followed_as_soon_as_the_stage_caught_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tick that kept the last snapshot (behind) wakes the tick loop once a step leaves the stage
    caught up, rather than waiting for the next whole second; a tick that refreshed does not."""
    stage = Scripted(load_settings(SETTINGS), CONFIG)
    proc = StageProcess(load_settings(SETTINGS), CONFIG, stage)
    monkeypatch.setattr(proc.http, "set_metrics", lambda body: None)
    steps: list[None] = []

    async def step(stopping: object) -> None:
        steps.append(None)
        proc.stopping.set()  # one step per `_consume`

    async def close() -> None:
        pass

    monkeypatch.setattr(stage, "step", step)
    monkeypatch.setattr(stage, "close", close)
    stage.answers = [True, True, True, False]
    await proc.tick()  # nothing published yet: evaluated
    await proc.tick()  # behind: the last snapshot kept
    await proc._consume()  # still behind after this step: no wake
    assert not proc._wake.is_set()
    proc.stopping.clear()
    await proc._consume()  # caught up
    assert proc._wake.is_set() and len(steps) == 2


async def test_a_tick_is_evaluated_only_when_its_body_is_asked_for_and_shows_its_own_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tick copies the counts out and publishes a body source: the counts are evaluated when /metrics
    asks for that body (ticks nobody scrapes cost no evaluation), once, and the body is the full render
    of the counts as they were at the tick, whatever was applied since."""
    events = sorted(_events(300), key=lambda e: e.service)
    mergers = [Merger(CONFIG, FP, p, PARTITIONS) for p in range(PARTITIONS)]
    base, view = Aggregator(CONFIG), ViewCache()

    class Owning(Scripted):
        def export_counts(self, now_ms: int) -> OwnedCounts:
            return owned_counts(base, mergers, now_ms, view)

    stage = Owning(load_settings(SETTINGS), CONFIG)
    stage.answers = [False] * 3
    proc = StageProcess(load_settings(SETTINGS), CONFIG, stage)
    now = NOW
    monkeypatch.setattr(proc.clock, "now_ms", lambda: now)
    published: list[functools.partial[Awaitable[Body]]] = []
    monkeypatch.setattr(proc.http, "set_metrics", published.append)
    evaluated: list[OwnedCounts] = []
    evaluate = OwnedCounts.evaluate

    def counted(self: OwnedCounts) -> Snapshot:
        evaluated.append(self)
        return evaluate(self)

    monkeypatch.setattr(OwnedCounts, "evaluate", counted)
    fresh: list[bytes] = []
    for i, step in enumerate((0, 4_000, 1_000)):  # the third tick: nothing applied since the second
        now += step
        if i < 2:
            _offer(mergers, events, 150 * i, 150 * (i + 1))
        await proc.tick()
        # What a full render of this tick's state shows (made afresh: no cache, its own exposition).
        telemetry = published[-1].args[1]
        fresh.append(Exposition().render(evaluate(_fresh_counts(mergers, now)), telemetry))
    assert evaluated == [] and proc.ticks == 3
    # The first tick's body, asked for after two more pieces were applied: its own counts.
    first = await published[0]()
    assert b"".join(first.text()) == fresh[0] and evaluated == [published[0].args[0]]
    for source, want in zip(published[1:], fresh[1:], strict=True):
        assert b"".join((await source()).text()) == want
    assert len(evaluated) == 3
    await published[2]()  # the same tick asked again: its snapshot is kept
    assert len(evaluated) == 3


def _fresh_counts(mergers: list[Merger], now_ms: int) -> OwnedCounts:
    """The counts of every partition's series at ``now_ms``, made afresh (no `ViewCache`)."""
    return owned_counts(Aggregator(CONFIG), mergers, now_ms)


async def test_what_start_up_made_is_frozen_while_the_stage_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the stage has started, what start-up made is frozen (a full collection no longer scans it, as
    in `sloguard.app`), and unfrozen when the process stops."""
    settings = load_settings({**SETTINGS, "listen": "127.0.0.1:0"})
    stage = Scripted(settings, CONFIG)
    stage.answers = [False] * 10
    proc = StageProcess(settings, CONFIG, stage)
    frozen: list[int] = []

    async def start() -> None:
        frozen.append(gc.get_freeze_count())

    async def step(stopping: object) -> None:
        frozen.append(gc.get_freeze_count())
        proc.stop()

    async def close() -> None:
        pass

    monkeypatch.setattr(stage, "start", start)
    monkeypatch.setattr(stage, "step", step)
    monkeypatch.setattr(stage, "close", close)
    gc.unfreeze()
    assert await proc.run() == 0
    assert frozen[0] == 0 and frozen[1] > 0 and gc.get_freeze_count() == 0
