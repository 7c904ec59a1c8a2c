"""The UI's fast paths against plain Python references: partial sorts, label codes kept across
snapshots (new series, an eviction's renumbering, a bound on codes), the customer ranking with ties,
and series rows read column-wise."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import numpy as np
import pytest

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.snapshot import SloSnapshot, Snapshot
from sloguard.specfile import parse_config
from sloguard.ui import api, index
from sloguard.ui.index import Codes, Indexes, NameOrder, SloIndex, smallest
from sloguard.ui.routes import Ui
from tests.unit.ui.conftest import NOW, XSS, World

SLOS = """\
apiVersion: sloguard/v1
slos:
  - name: by-customer
    service: checkout
    objective: 99
    sli: {type: availability}
    window: 30d
    group_by: [customer]
    series_ttl: 1h
  - name: by-endpoint-and-customer
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [endpoint, customer]
"""


def customers_world(n: int, seed: int, hours_ago: int = 0, tag: str = "c") -> list[Event]:
    """``n`` events of customers with ids of varied length (ties: most have no bad event)."""
    rnd = random.Random(seed)
    ids = [f"{tag}{i}" * (1 + i % 3) for i in range(60)] + [XSS, "Zeta", "alpha", "ünïcode", "a" * 40]
    return [
        Event(
            ts_ms=NOW - hours_ago * 3_600_000 - rnd.randrange(600_000),
            service="checkout",
            endpoint=rnd.choice(("GET /a", "POST /b", "PUT /c")),
            customer=rnd.choice(ids),
            status=503 if rnd.random() < 0.02 else 200,
            latency_ms=10.0,
        )
        for _ in range(n)
    ]


def reference_ranking(slos: Sequence[SloSnapshot]) -> list[tuple[str, list[tuple[float, str, int]], int]]:
    """The ranking as the UI first computed it: every series in Python, sorted."""
    found: dict[str, list[tuple[float, str, int]]] = {}
    for s in slos:
        if "customer" not in s.spec.group_by:
            continue
        ci = s.spec.group_by.index("customer")
        for col, key in enumerate(s.labels):
            found.setdefault(key[ci], []).append((float(s.budget_consumed[col]), s.spec.name, col))
    for entries in found.values():
        entries.sort(key=lambda e: (-e[0], e[1], e[2]))
    ranked = sorted(found.items(), key=lambda kv: (-kv[1][0][0], kv[0]))
    return [(c, e[: api.CUSTOMER_SERIES], len(e)) for c, e in ranked]


@pytest.mark.parametrize("k", [0, 1, 5, 37, 199, 200, 500], ids=lambda k: f"k={k}")
@pytest.mark.parametrize("with_secondary", [False, True], ids=["by index", "by secondary"])
def test_smallest_is_a_stable_sorts_prefix(k: int, with_secondary: bool) -> None:
    rng = np.random.default_rng(k)
    primary = rng.integers(0, 6, 200).astype(np.float64) / 4  # many ties
    secondary = rng.permutation(200).astype(np.int64) if with_secondary else None
    want = np.lexsort((np.arange(200) if secondary is None else secondary, primary))[:k]
    assert smallest(primary, k, secondary).tolist() == want.tolist()


def test_name_order_follows_new_names_of_any_length() -> None:
    codes = Codes()
    order = NameOrder(codes)
    seen: list[str] = []
    # Longer names after shorter ones: the sorted array must widen, not cut them ("bb" -> "b").
    for batch in (["m", "b"], ["bb", "ba"], ["bab"], ["zz" * 30, "a"], [], ["ab", "é", XSS, "b" * 50, "m"]):
        codes.encode(batch)
        seen.extend(v for v in batch if v not in seen)
        rank = order.update()
        assert [codes.names[c] for c in np.argsort(rank)] == sorted(seen)
    assert codes.names == seen


def test_slo_index_extends_and_matches_like_a_scan() -> None:
    customers = Codes()
    idx = SloIndex(("endpoint", "customer"), customers)
    labels = tuple((f"e{i % 3}", f"c{i % 7}") for i in range(30))
    assert idx.extend(labels[:10]) and idx.extend(labels)
    assert idx.match({"endpoint": "e1", "customer": "c3"}).tolist() == [
        i for i, k in enumerate(labels) if k == ("e1", "c3")
    ]
    assert idx.match({"customer": "c6"}).tolist() == [i for i, k in enumerate(labels) if k[1] == "c6"]
    assert idx.match({"customer": "nobody"}).tolist() == []
    assert idx.match({}).tolist() == list(range(30))
    # Renumbered (an eviction): refused, so the caller builds a new index.
    assert not idx.extend((*labels[1:], ("e9", "c9")))


def build(events: list[Event]) -> Aggregator:
    agg = Aggregator(parse_config(SLOS, "slos.yaml"))
    agg.ingest(EventBatch.from_events(events))
    agg.advance(NOW)
    return agg


def all_pages(ui: Ui, path: str, query: str = "", limit: int = 7) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    offset: int | None = 0
    while offset is not None:
        r = ui(path, f"{query}&limit={limit}&offset={offset}".lstrip("&"))
        assert r is not None and r.status == 200
        got = json.loads(r.body)
        items.extend(got["items"])
        offset = got["next_offset"]
    return items


def check_against_references(ui: Ui, snap: Snapshot) -> None:
    """Customers, series pages and filters of ``snap`` through the UI equal the Python references."""
    want = reference_ranking(snap.slos)
    got = all_pages(ui, "/api/v1/customers")
    assert [(c["customer"], c["series_total"]) for c in got] == [(c, n) for c, _, n in want]
    for row, (_, entries, _) in zip(got, want, strict=True):
        assert row["worst_budget_consumed"] == entries[0][0]
        series = row["series"]
        assert isinstance(series, list)
        assert [(e["budget_consumed"], e["slo"]) for e in series] == [(c, n) for c, n, _ in entries]
    for s in snap.slos:
        path = f"/api/v1/slos/{s.spec.name}/series"
        order = np.argsort(s.budget_remaining, kind="stable").tolist()
        assert [i["labels"] for i in all_pages(ui, path)] == [api.labels_of(s, c) for c in order]
        ci = s.spec.group_by.index("customer")
        for who in ("c1", XSS, "nobody"):
            query = "customer=" + who.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")
            cols = [c for c in order if s.labels[c][ci] == who]
            assert [i["labels"] for i in all_pages(ui, path, query)] == [api.labels_of(s, c) for c in cols]


def test_customers_series_and_filters_equal_the_references_across_ticks_and_an_eviction() -> None:
    agg = build(customers_world(3000, 1, hours_ago=3))
    current: list[Snapshot] = [agg.snapshot(NOW)]
    ui = Ui(lambda: current[0])
    check_against_references(ui, current[0])
    # The next tick: new series at the end (codes extended, not rebuilt).
    agg.ingest(EventBatch.from_events(customers_world(500, 2, tag="n") + customers_world(30, 3)))
    current[0] = agg.snapshot(NOW)
    check_against_references(ui, current[0])
    # Series idle for an hour are evicted and the rest renumbered: the index is rebuilt.
    evicted = agg.evict_idle(NOW)
    assert evicted
    current[0] = agg.snapshot(NOW)
    check_against_references(ui, current[0])


def test_codes_start_afresh_when_they_hold_too_many_gone_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "SPARE_CODES", 3)
    indexes = Indexes()
    agg = build(customers_world(2000, 4))
    snap = agg.snapshot(NOW)
    first = indexes.customers
    indexes.start(snap.slos)
    indexes.customer_ranking(snap.slos)
    assert len(first) == 65
    small = build(customers_world(20, 5))
    indexes.start(small.snapshot(NOW).slos)
    assert indexes.customers is not first and len(indexes.customers) == 0
    ranking = indexes.customer_ranking(small.snapshot(NOW).slos)
    assert len(ranking) == len(reference_ranking(small.snapshot(NOW).slos))


def test_series_rows_read_column_wise_equal_the_per_series_rows(world: World) -> None:
    for s in world.snapshot.slos:
        cols = list(range(s.series))[::-1]
        assert api.series_rows(s, cols) == [api.series_row(s, c) for c in cols]
        assert api.encode(api.series_rows(s, cols)) == api.encode([api.series_row(s, c) for c in cols])
