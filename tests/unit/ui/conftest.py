"""A snapshot with realistic traffic for the UI tests: three SLOs (ungrouped, by endpoint, by customer),
a latency section, an outage on one endpoint, and an attacker-chosen customer id."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from sloguard.core.aggregator import Aggregator
from sloguard.core.history import BucketCounts
from sloguard.core.model import Event, EventBatch
from sloguard.core.snapshot import Snapshot
from sloguard.core.spec import Config, SloSpec
from sloguard.specfile import parse_config

XSS = "<img src=x onerror=alert(1)>"
NOW = 1_767_225_600_000 + 10 * 86_400_000 + 4_321
SLOS = """\
apiVersion: sloguard/v1
slos:
  - name: checkout-availability
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [endpoint]
  - name: checkout-per-customer
    service: checkout
    objective: 99
    sli: {type: availability}
    window: 30d
    group_by: [customer]
  - name: search-latency
    service: search
    description: Search answers within 200 ms
    objective: 99
    sli: {type: latency, threshold_ms: 200}
    window: 28d
latency:
  group_by: [service, endpoint]
  percentiles: [50, 99]
  windows: [5m, 1h]
"""


def make_events(n: int, seed: int = 1) -> list[Event]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        # A fifth of the traffic in the last hour, so its windows are busy.
        t = NOW - rnd.randrange(3_600_000 if rnd.random() < 0.2 else 10 * 86_400_000)
        ep = rnd.choice(("GET /v1/cart", "POST /v1/checkout"))
        outage = ep == "POST /v1/checkout" and t > NOW - 3_600_000
        bad = rnd.random() < (0.3 if outage else 0.002)
        out.append(
            Event(
                ts_ms=t,
                service=rnd.choice(("checkout", "checkout", "search")),
                endpoint=ep,
                customer=rnd.choice(("acme", "globex", "initech", XSS)),
                status=rnd.choice((500, 503)) if bad else rnd.choice((200, 201, 404)),
                latency_ms=round(rnd.lognormvariate(4, 1), 3),
            )
        )
    return out


@dataclass
class World:
    config: Config
    events: list[Event]
    aggregator: Aggregator
    snapshot: Snapshot

    def spec(self, name: str) -> SloSpec:
        return next(s for s in self.config.slos if s.name == name)

    def history(
        self, spec: SloSpec, key: tuple[str, ...] | None, start: int, end: int, fine: bool
    ) -> BucketCounts | None:
        return self.aggregator.bucket_counts(spec, key, start, end, fine=fine)


@pytest.fixture(scope="module")
def world() -> World:
    config = parse_config(SLOS, "slos.yaml")
    events = make_events(20_000)
    agg = Aggregator(config)
    agg.ingest(EventBatch.from_events(events))
    agg.advance(NOW)
    return World(config, events, agg, agg.snapshot(NOW))
