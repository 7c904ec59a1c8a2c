"""Live SLA counters through a daemon checkpoint: exact across a restart (counted once, against an
independent count and one uninterrupted run), dropped when the SLA or the period changed, and a
checkpoint written before SLA state existed still restores."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np

from sloguard.checkpoint import Checkpoint, DirectoryStore, decode, encode, load_latest
from sloguard.checkpointer import Checkpointer
from sloguard.clock import ManualClock
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import Config
from sloguard.engine import Engine
from sloguard.ingest.offsets import OffsetLedger
from sloguard.sla_live import LiveSlas
from sloguard.specfile import parse_config
from sloguard.telemetry import Telemetry
from tests.unit.test_sla_live import SLOS, T0, at_minute, config

OLD = Path(__file__).parent / "checkpoint" / "data" / "before-sla-state.sgc"
CUSTOMERS = ("acme", "globex", "initech", "umbrella", "hooli")


def events(seed: int, minutes: range, n: int) -> list[Event]:
    """``n`` events over ``minutes``, some minutes of some customers mostly failing."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m = int(rng.choice(minutes))
        customer = str(rng.choice(CUSTOMERS))
        failing = m % 11 == 0 and customer != "hooli"
        status = int(rng.choice([500, 503])) if failing or rng.random() < 0.01 else 200
        ts = T0 + m * 60_000 + int(rng.integers(0, 60_000))
        out.append(Event(ts, "api", "GET /", customer, status, 5.0))
    # Another service's events: not the SLO's, never counted.
    out.append(Event(T0 + minutes[0] * 60_000, "web", "GET /", "acme", 500, 5.0))
    return out


def through_checkpoint(live: LiveSlas) -> Checkpoint:
    cp = Checkpoint(Aggregator(config()).export_state(), {}, at_minute(0), slas=live.export_state())
    return decode(encode(cp))


def test_counts_across_a_checkpoint_equal_one_run_and_an_independent_count() -> None:
    first, second = events(1, range(300), 4000), events(2, range(250, 600), 4000)  # late ones too
    before = LiveSlas(config())
    before.ingest(EventBatch.from_events(first), at_minute(300))
    cp = through_checkpoint(before)
    after = LiveSlas(config())
    report = after.restore_state(cp.slas, at_minute(300))
    assert report.restored == ("api-sla",) and report.dropped == {}
    after.ingest(EventBatch.from_events(second), at_minute(600))
    (got,) = after.results(at_minute(600), force=True)

    once = LiveSlas(config())
    once.ingest(EventBatch.from_events(first), at_minute(300))
    once.ingest(EventBatch.from_events(second), at_minute(600))
    (want,) = once.results(at_minute(600), force=True)
    assert got == want
    assert got.since_ms == at_minute(300)  # when counting started, not the restart

    # Independently: per customer, events and bad events; minutes down (aws-compute: error rate > 0).
    api = [e for e in first + second if e.service == "api"]
    total = Counter(e.customer for e in api)
    bad = Counter(e.customer for e in api if e.status >= 500)
    per_minute: dict[tuple[str, int], list[int]] = {}
    for e in api:
        per_minute.setdefault((e.customer, (e.ts_ms - T0) // 60_000), []).append(e.status)
    assert got.result.elapsed == 600
    for c in got.result.customers:
        assert (c.total, c.total - c.good) == (total[c.customer], bad[c.customer])
        down = sum(1 for (name, _), st in per_minute.items() if name == c.customer and max(st) >= 500)
        assert c.attainment == Fraction(600 - down, 600)


def test_overflow_customers_survive_the_checkpoint() -> None:
    capped = config(max_series=2)
    evs = events(3, range(100), 2000)
    before = LiveSlas(capped)
    before.ingest(EventBatch.from_events(evs[:1000]), at_minute(100))
    after = LiveSlas(capped)
    after.restore_state(through_checkpoint(before).slas, at_minute(100))
    after.ingest(EventBatch.from_events(evs[1000:]), at_minute(100))
    once = LiveSlas(capped)
    once.ingest(EventBatch.from_events(evs[:1000]), at_minute(100))
    once.ingest(EventBatch.from_events(evs[1000:]), at_minute(100))
    (got,), (want,) = after.results(at_minute(100), force=True), once.results(at_minute(100), force=True)
    assert got == want and got.result.overflow_customers == 3 and got.result.warnings


def test_a_changed_sla_or_another_period_starts_empty() -> None:
    live = LiveSlas(config())
    live.ingest(EventBatch.from_events(events(4, range(10), 100)), at_minute(10))
    states = through_checkpoint(live).slas
    changed = LiveSlas(_changed())
    report = changed.restore_state(states, at_minute(10))
    assert report.restored == () and report.fresh == ("api-sla",)
    assert "changed" in report.dropped["api-sla"]
    next_month = T0 + 31 * 86_400_000 + 60_000
    later = LiveSlas(config())
    report = later.restore_state(states, next_month)
    assert report.dropped == {"api-sla": "the counts are of another period"}
    gone = LiveSlas(_without_sla())
    assert gone.restore_state(states, at_minute(10)).dropped == {"api-sla": "no longer configured"}


def _changed() -> Config:
    return parse_config(SLOS.replace("MAX", "100").replace("aws-compute", "aws-s3"), "slos.yaml")


def _without_sla() -> Config:
    text = SLOS.replace("MAX", "100").split("slas:")[0]
    return parse_config(text, "slos.yaml")


def test_a_checkpoint_from_before_sla_state_still_loads() -> None:
    # Written by the checkpoint module of 78d5ec0 (before SLA counters were checkpointed).
    cp = decode(OLD.read_bytes())
    assert cp.slas == {} and cp.state.events == 60 and cp.offsets == {("requests", 0): 60}
    assert cp.sloguard_version == "before-sla-state"
    live = LiveSlas(config())
    assert live.restore_state(cp.slas, at_minute(40)).fresh == ("api-sla",)


class Daemon:
    """The daemon's checkpoint wiring (`Checkpointer` over an `Engine`) with a manual clock."""

    def __init__(self, directory: Path, now_ms: int) -> None:
        self.engine = Engine(config())
        self.offsets = OffsetLedger()
        self.clock = ManualClock(now_ms)
        self.checkpointer = Checkpointer(
            DirectoryStore(directory), self.engine, self.offsets, Telemetry(), self.clock, self.commit
        )

    async def commit(self) -> None:
        self.offsets.commit_succeeded(dict(self.offsets.pending))

    def absorb(self, evs: list[Event], offset: int) -> None:
        batch = EventBatch.from_events(evs)
        self.engine.aggregator.ingest(batch)
        self.engine.slas.ingest(batch, self.clock.now_ms())
        self.offsets.ingested({("requests", 0): offset})


async def test_the_checkpointer_saves_and_restores_the_counters(tmp_path: Path) -> None:
    evs = events(5, range(120), 3000)
    first = Daemon(tmp_path, at_minute(60))
    first.checkpointer.restore()
    first.absorb(evs[:1500], 1500)
    # A background evaluation in flight and a batch held meanwhile: the checkpoint still holds both.
    first.engine.slas.results(at_minute(60))
    first.absorb(evs[1500:2000], 2000)
    assert await first.checkpointer.checkpoint("interval")
    found = load_latest(DirectoryStore(tmp_path), lambda name, why: None)
    assert found is not None and found[1].offsets == {("requests", 0): 2000}

    second = Daemon(tmp_path, at_minute(90))
    second.checkpointer.restore()
    assert second.offsets.checkpoint_offsets() == {("requests", 0): 2000}
    second.absorb(evs[2000:], 3000)  # read again from the checkpoint's offset
    (got,) = second.engine.slas.results(at_minute(120), force=True)
    once = LiveSlas(config())
    once.ingest(EventBatch.from_events(evs[:1500]), at_minute(60))
    once.ingest(EventBatch.from_events(evs[1500:]), at_minute(90))
    (want,) = once.results(at_minute(120), force=True)
    assert got == want and got.since_ms == at_minute(60)


async def test_the_checkpointer_restores_an_old_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "checkpoint-000000000001.sgc").write_bytes(OLD.read_bytes())
    d = Daemon(tmp_path, at_minute(40))
    d.checkpointer.restore()
    assert d.engine.aggregator.stats.events == 60
    assert d.offsets.checkpoint_offsets() == {("requests", 0): 60}
    d.absorb(events(6, range(31, 40), 10), 70)
    (got,) = d.engine.slas.results(at_minute(40), force=True)
    assert got.result.events == 10 and got.since_ms == at_minute(40)
