"""Live SLAs: `LiveSlas` (period roll, settle, throttle, reload) and the ``sloguard_sla_*`` families."""

from __future__ import annotations

from fractions import Fraction

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sloguard import sla_live
from sloguard.core.model import Event, EventBatch, Vocabs
from sloguard.core.snapshot import Snapshot
from sloguard.core.spec import Config
from sloguard.export.collector import render
from sloguard.export.sla import sla_families
from sloguard.sla_live import SETTLE_MS, LiveSlas
from sloguard.specfile import parse_config

T0 = 1_790_812_800_000  # 2026-10-01T00:00:00Z, a 31-day month
MONTH_MIN = 31 * 24 * 60
SLOS = """\
apiVersion: sloguard/v1
slos:
  - {name: api, service: api, objective: 99.9, sli: {type: availability}, window: {calendar: month},
     max_series: MAX}
slas:
  - {name: api-sla, slo: api, preset: aws-compute}
"""


def config(max_series: int = 100) -> Config:
    return parse_config(SLOS.replace("MAX", str(max_series)), "slos.yaml")


def ev(minute: int, customer: str, status: int = 200) -> Event:
    return Event(T0 + minute * 60_000 + 1_000, "api", "GET /", customer, status, 5.0)


def batch(events: list[Event]) -> EventBatch:
    return EventBatch.from_events(events)


def at_minute(m: int) -> int:
    return T0 + m * 60_000 + SETTLE_MS


def test_minutes_down_live_and_exported() -> None:
    live = LiveSlas(config())
    # acme: minutes 0..9, minute 3 and 7 down (all bad); globex: one good event.
    events = [ev(m, "acme", 500 if m in (3, 7) else 200) for m in range(10)] + [ev(0, "globex")]
    live.ingest(batch(events), at_minute(10))
    (result,) = live.results(at_minute(10), force=True)
    assert result.since_ms == at_minute(10)
    r = result.result
    assert r.elapsed == 10 and r.start_ms == T0
    acme, globex = r.customers
    assert acme.attainment == Fraction(8, 10) and globex.attainment == 1
    assert acme.credit_percent == 100  # 80 % is below 95 %
    # The projection (1 day back, only 10 minutes elapsed): the rest goes 2 down in 10.
    rest = MONTH_MIN - 10
    assert acme.projected == 1 - (2 + Fraction(2, 10) * rest) / MONTH_MIN
    text = render(tuple(sla_families((result,))))
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text.decode())
        for s in f.samples
    }
    lab = (("customer", "acme"), ("sla", "api-sla"))
    assert got[("sloguard_sla_attainment_ratio", lab)] == 0.8
    assert got[("sloguard_sla_credit_percent", lab)] == 100
    assert got[("sloguard_sla_projected_attainment_ratio", lab)] == float(acme.projected)
    assert got[("sloguard_sla_projected_credit_percent", lab)] == 100
    glab = (("customer", "globex"), ("sla", "api-sla"))
    assert got[("sloguard_sla_credit_percent", glab)] == 0
    assert got[("sloguard_sla_period_start_timestamp_seconds", (("sla", "api-sla"),))] == T0 / 1000
    assert (
        got[("sloguard_sla_counted_until_timestamp_seconds", (("sla", "api-sla"),))] == (T0 + 600_000) / 1000
    )


def test_settle_and_throttle_and_insufficient_data() -> None:
    live = LiveSlas(config())
    live.ingest(batch([ev(5, "acme", 500)]), at_minute(5))
    # 4 s after minute 5 closed: minute 5 is not counted yet, acme has no event before it.
    (r,) = live.results(T0 + 6 * 60_000 + SETTLE_MS - 1_000, force=True)
    assert r.result.elapsed == 5 and r.result.customers[0].status == "INSUFFICIENT_DATA"
    text = render(tuple(sla_families((r,)))).decode()
    assert "sloguard_sla_attainment_ratio{" not in text and "sloguard_sla_credit_percent{" not in text
    (r,) = live.results(at_minute(6), force=True)
    assert r.result.customers[0].attainment == Fraction(5, 6)
    # Nothing new, same slice: the same figures, not re-evaluated.
    assert live.results(at_minute(6))[0] is r


def test_new_period_starts_empty_and_reload_keeps_counts() -> None:
    cfg = config()
    live = LiveSlas(cfg)
    live.ingest(batch([ev(0, "acme", 500)]), at_minute(1))
    kept = LiveSlas(cfg, live)
    (r,) = kept.results(at_minute(1), force=True)
    assert r.result.customers[0].attainment == 0
    changed = LiveSlas(config(max_series=5), live)  # the SLO changed: counted afresh
    (r,) = changed.results(at_minute(1), force=True)
    assert r.result.customers == ()
    nov = T0 + 31 * 86_400_000
    (r,) = kept.results(nov + 60_000 + SETTLE_MS, force=True)
    assert r.result.start_ms == nov and r.since_ms == nov and r.result.customers == ()


def test_overflow_customers_share_one_row() -> None:
    live = LiveSlas(config(max_series=2))
    live.ingest(batch([ev(0, c, 500 if c == "c3" else 200) for c in ("c1", "c2", "c3", "c4")]), at_minute(1))
    (r,) = live.results(at_minute(1), force=True)
    names = [c.customer for c in r.result.customers]
    assert "__overflow__" in names and r.result.overflow_customers >= 1
    assert "c1" in names and "c3" not in names and "c4" not in names
    assert sum(c.total for c in r.result.customers) == 4


def test_no_slas_no_families() -> None:
    cfg = parse_config(SLOS.split("slas:")[0].replace("MAX", "10"), "slos.yaml")
    live = LiveSlas(cfg)
    assert not live and live.results(T0) == ()
    assert tuple(sla_families(())) == ()
    assert Snapshot(T0, (), None, 0, None).slas == ()


def test_evaluates_only_when_the_figures_can_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sla_live, "_IDLE_FACTOR", 0.0)  # no throttle: only the "due" rule
    live = LiveSlas(config())
    live.ingest(batch([ev(0, "acme", 500)]), at_minute(3))
    first = live.results(at_minute(3))
    assert first[0].result.customers[0].attainment == Fraction(2, 3)
    live.ingest(batch([ev(3, "acme", 500)]), at_minute(3))  # the slice in progress: nothing changes
    assert live.results(at_minute(3)) is first
    live.ingest(batch([ev(1, "acme", 500)]), at_minute(3))  # late, into a counted slice: re-evaluated
    late = live.results(at_minute(3))
    assert late is not first and late[0].result.customers[0].attainment == Fraction(1, 3)
    closed = live.results(at_minute(4))  # a slice closed
    assert closed[0].result.customers[0].attainment == Fraction(1, 4)


def test_background_evaluation_holds_batches_until_it_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sla_live, "_IDLE_FACTOR", 0.0)
    vocabs = Vocabs()
    live = LiveSlas(config(), background=True)
    live.ingest(EventBatch.from_events([ev(0, "acme", 500)], vocabs), at_minute(2))
    assert live.results(at_minute(2)) == ()  # started in the worker: nothing published yet
    running = live._running
    assert running is not None
    # Absorbed while it runs: held, and their label values survive a reset of the vocabularies.
    live.ingest(EventBatch.from_events([ev(1, "globex", 500)], vocabs), at_minute(2))
    for vocab in (vocabs.service, vocabs.endpoint, vocabs.customer):
        vocab.reset()
    running.result()
    (first,) = live.results(at_minute(2))  # done: published; the held batch is counted now (late: due)
    assert [(c.customer, c.attainment) for c in first.result.customers] == [("acme", Fraction(1, 2))]
    live.results(at_minute(2))
    assert live._running is not None
    # A reload waits for the evaluation in flight, then takes the counters over.
    reloaded = LiveSlas(config(), live, background=True)
    (r,) = reloaded.results(at_minute(2), force=True)
    assert [(c.customer, c.attainment) for c in r.result.customers] == [
        ("acme", Fraction(1, 2)),
        ("globex", Fraction(1, 2)),
    ]
