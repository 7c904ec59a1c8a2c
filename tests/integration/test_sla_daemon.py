"""Live SLA metrics of the real daemon (in process, ManualClock) reading a Tansu topic: every
``sloguard_sla_*`` sample equals the figures computed here, independently, from the events produced."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from fractions import Fraction

import pytest

from sloguard.app import Daemon
from sloguard.broker import LocalBroker
from sloguard.clock import ManualClock
from sloguard.core.model import Event
from sloguard.settings import load_settings
from sloguard.sla_live import SETTLE_MS
from sloguard.specfile import parse_config
from tests.integration.test_daemon import encode, produce, scrape, wait_for

pytestmark = pytest.mark.kafka

MONTH = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MONTH_MIN = 31 * 24 * 60
NOW = MONTH + 3 * 86_400_000 + 123_456
SLOS = """\
apiVersion: sloguard/v1
slos:
  - {name: api, service: api, objective: 99.9, sli: {type: availability}, window: {calendar: month}}
slas:
  - {name: api-sla, slo: api, preset: aws-compute}
"""
#: aws-compute: a minute is down when more than 5 % of its requests failed; (below %, credit %).
TIERS = ((Fraction(9999, 100), 10), (Fraction(99), 30), (Fraction(95), 100))


def traffic(seed: int) -> list[Event]:
    """Per customer: sparse good traffic over the month so far, and its own outage minutes."""
    rnd = random.Random(seed)
    elapsed = (NOW - SETTLE_MS - MONTH) // 60_000
    out: list[Event] = []

    def minute(customer: str, m: int, good: int, bad: int, service: str = "api") -> None:
        for i in range(good + bad):
            ts = MONTH + m * 60_000 + rnd.randrange(60_000)
            out.append(Event(ts, service, "GET /v1/x", customer, 500 if i < bad else 200, 12.0))

    outages = {
        "acme": [],  # never down
        "globex": [100],  # one minute: below 99.99 -> 10 %
        "initech": list(range(elapsed - 30, elapsed)),  # 30 in the last day: 10 % now, heading for 30 %
        "umbrella": list(range(1000, 1300)),  # 300 minutes: below 95 -> 100 %
    }
    for customer, down in outages.items():
        for m in sorted(set(rnd.sample(range(elapsed), 400)) - set(down)):
            minute(customer, m, rnd.randint(1, 4), 0)
        for m in down:
            minute(customer, m, rnd.randint(0, 3), rnd.randint(1, 3))
    minute("acme", 7, 19, 1)  # exactly 5 % bad: not down
    minute("acme", 8, 0, 2, service="web")  # another service: not the SLO's
    minute("hooli", elapsed, 0, 5)  # only in the minute not counted yet: INSUFFICIENT_DATA
    out.append(Event(MONTH - 1, "api", "GET /v1/x", "acme", 500, 1.0))  # last month: not counted
    rnd.shuffle(out)
    return out


def expected(events: list[Event]) -> dict[str, dict[str, float]]:
    """The SLA figures at NOW, counted from the events with plain Python and `Fraction`s."""
    elapsed = (NOW - SETTLE_MS - MONTH) // 60_000
    total: Counter[tuple[str, int]] = Counter()
    bad: Counter[tuple[str, int]] = Counter()
    for e in events:
        m = (e.ts_ms - MONTH) // 60_000
        if e.service == "api" and e.ts_ms >= MONTH and m < elapsed:
            total[e.customer, m] += 1
            bad[e.customer, m] += e.status >= 500
    width = min(elapsed, 1440)

    def credit(a: Fraction) -> float:
        return max((c for below, c in TIERS if a * 100 < below), default=0)

    out = {}
    for customer in sorted({c for c, _ in total}):
        down = [m for (c, m), n in total.items() if c == customer and bad[c, m] * 20 > n]
        attainment = Fraction(elapsed - len(down), elapsed)
        recent = sum(m >= elapsed - width for m in down)
        projected = 1 - (len(down) + Fraction(recent, width) * (MONTH_MIN - elapsed)) / MONTH_MIN
        out[customer] = {
            "sloguard_sla_attainment_ratio": float(attainment),
            "sloguard_sla_credit_percent": credit(attainment),
            "sloguard_sla_projected_attainment_ratio": float(projected),
            "sloguard_sla_projected_credit_percent": credit(projected),
        }
    return out


def assert_customer_samples(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], want: dict[str, dict[str, float]]
) -> None:
    """The per-customer ``sloguard_sla_*`` samples are exactly ``want`` (customer -> name -> value)."""
    got = {
        (name, dict(labels)["customer"]): value
        for (name, labels), value in metrics.items()
        if name.startswith("sloguard_sla_") and "customer" in dict(labels)
    }
    assert got == {(name, c): v for c, figures in want.items() for name, v in figures.items()}


async def test_daemon_exports_sla_figures(broker: LocalBroker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=2)
    events = traffic(seed=12)
    await produce(broker.bootstrap, topic, [encode(e) for e in events], 2)
    settings = load_settings(
        {
            "listen": "127.0.0.1:0",
            "tick_seconds": 0.1,
            "kafka": {"bootstrap_servers": broker.bootstrap, "topics": [topic], "group_id": f"g-{topic}"},
        }
    )
    daemon = Daemon(settings, parse_config(SLOS, "slos.yaml"), clock=ManualClock(NOW))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_for(lambda: daemon.telemetry.records_consumed == len(events), 60, "all records")
        until = MONTH + (NOW - SETTLE_MS - MONTH) // 60_000 * 60_000
        counted = sum(e.service == "api" and MONTH <= e.ts_ms < until for e in events)

        def published() -> bool:  # the evaluation runs in a worker: wait until a tick published it
            snap = daemon.latest
            if snap is None or not snap.slas:
                return False
            return sum(c.total for c in snap.slas[0].result.customers) == counted

        await wait_for(published, 10, "a tick publishing every event")
        metrics = await asyncio.to_thread(scrape, daemon.http.port)
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 30) == 0

    want = expected(events)
    assert set(want) == {"acme", "globex", "initech", "umbrella"}
    # Every tier is reached, and initech is heading for a higher one (what the alert rule looks for).
    assert [want[c]["sloguard_sla_credit_percent"] for c in sorted(want)] == [0, 10, 10, 100]
    assert want["initech"]["sloguard_sla_projected_credit_percent"] == 30
    assert_customer_samples(metrics, want)
    sla = (("sla", "api-sla"),)
    elapsed = (NOW - SETTLE_MS - MONTH) // 60_000
    assert metrics[("sloguard_sla_counted_until_timestamp_seconds", sla)] == (MONTH + elapsed * 60_000) / 1000
    assert metrics[("sloguard_sla_period_start_timestamp_seconds", sla)] == MONTH / 1000
    assert metrics[("sloguard_sla_period_end_timestamp_seconds", sla)] == (MONTH + MONTH_MIN * 60_000) / 1000
    assert metrics[("sloguard_sla_counted_since_timestamp_seconds", sla)] == NOW / 1000
    assert metrics[("sloguard_sla_overflow_customers", sla)] == 0
    assert elapsed == 4321  # 3 days, 2 min 3.456 s in, less the 5 s settle time
