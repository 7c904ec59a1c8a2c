"""The route table: pages, assets, the API's paths, parameters, pagination, caching and headers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sloguard.core.snapshot import Snapshot
from sloguard.export.http import Response
from sloguard.ui import api, index, routes
from sloguard.ui.routes import CSP, MAX_LIMIT, Ui
from tests.unit.ui.conftest import XSS, World


def ui_for(world: World) -> Ui:
    return Ui(lambda: world.snapshot, world.history)


def get(ui: Ui, path: str, query: str = "") -> Response:
    r = ui(path, query)
    assert r is not None, path
    return r


def body(r: Response) -> Any:
    assert r.content_type.startswith("application/json"), r.content_type
    return json.loads(r.body)


def assert_secure(r: Response) -> None:
    h = dict(r.headers)
    assert h["Content-Security-Policy"] == CSP
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("path", "query", "status", "ctype"),
    [
        ("/", "", 200, "text/html"),
        ("/slo/checkout-availability", "endpoint=GET+%2Fv1%2Fcart", 200, "text/html"),
        ("/customers", "", 200, "text/html"),
        ("/static/common.js", "", 200, "text/javascript"),
        ("/static/style.css", "", 200, "text/css"),
        ("/favicon.ico", "", 200, "image/svg+xml"),
        ("/api/v1/slos", "", 200, "application/json"),
        ("/api/v1/slos/checkout-availability", "", 200, "application/json"),
        ("/api/v1/slos/checkout-availability/series", "", 200, "application/json"),
        ("/api/v1/customers", "", 200, "application/json"),
        ("/api/v1/slos", "limit=0", 400, "application/json"),
        ("/api/v1/slos/nope", "", 404, "application/json"),
        ("/api/v2/slos", "", 404, "application/json"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_every_response_is_typed_and_carries_the_security_headers(
    world: World, path: str, query: str, status: int, ctype: str
) -> None:
    r = get(ui_for(world), path, query)
    assert r.status == status and r.content_type.startswith(ctype)
    assert_secure(r)


@pytest.mark.parametrize(
    "path", ["/nope", "/static/nope.js", "/static/../routes.py", "/static/", "/slo/", "/slo/a/b", "/metricsx"]
)
def test_paths_that_are_not_ours_are_left_to_the_server(world: World, path: str) -> None:
    assert ui_for(world)(path, "") is None


def test_before_the_first_snapshot_the_api_says_so(world: World) -> None:
    ui = Ui(lambda: None)
    r = get(ui, "/api/v1/slos")
    assert r.status == 503 and "no snapshot" in body(r)["error"]
    assert get(ui, "/").status == 200


def test_slo_list_pages_and_caps(world: World) -> None:
    ui = ui_for(world)
    first = body(get(ui, "/api/v1/slos", "limit=2"))
    assert (first["total"], first["offset"], first["limit"], first["next_offset"]) == (3, 0, 2, 2)
    rest = body(get(ui, "/api/v1/slos", "limit=2&offset=2"))
    assert rest["next_offset"] is None and len(rest["items"]) == 1
    names = [r["name"] for r in first["items"] + rest["items"]]
    everything = body(get(ui, "/api/v1/slos"))["items"]
    assert names == [r["name"] for r in everything]
    assert body(get(ui, "/api/v1/slos", "offset=99"))["items"] == []
    assert get(ui, "/api/v1/slos", f"limit={MAX_LIMIT}").status == 200
    too_many = get(ui, "/api/v1/slos", f"limit={MAX_LIMIT + 1}")
    assert too_many.status == 400 and "limit" in body(too_many)["error"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("limit=-1", "limit"),
        ("offset=x", "offset"),
        ("color=red", "unknown parameter 'color'"),
        ("q=a&q=b", "twice"),
        ("&".join(f"q{i}=1" for i in range(40)), "too many"),
    ],
    ids=["negative", "not-a-number", "unknown", "twice", "too-many"],
)
def test_bad_parameters_are_refused_by_name(world: World, query: str, words: str) -> None:
    r = get(ui_for(world), "/api/v1/slos", query)
    assert r.status == 400 and words in body(r)["error"]


def test_slo_list_filters(world: World) -> None:
    ui = ui_for(world)
    got = body(get(ui, "/api/v1/slos", "service=search"))
    assert got["total"] == 1 and got["items"][0]["name"] == "search-latency"
    assert body(get(ui, "/api/v1/slos", "label=customer"))["items"][0]["name"] == "checkout-per-customer"
    assert body(get(ui, "/api/v1/slos", "q=LATENCY"))["total"] == 1


def test_series_list_is_worst_first_and_filters_by_label(world: World) -> None:
    ui = ui_for(world)
    got = body(get(ui, "/api/v1/slos/checkout-per-customer/series", "limit=3"))
    assert got["total"] == 4 and got["next_offset"] == 3
    budgets = [i["budget_remaining"] for i in got["items"]]
    assert budgets == sorted(budgets)
    one = body(get(ui, "/api/v1/slos/checkout-per-customer/series", "customer=" + XSS))
    assert one["total"] == 1 and one["items"][0]["labels"] == {"customer": XSS}
    none = body(get(ui, "/api/v1/slos/checkout-per-customer/series", "customer=nobody"))
    assert none["total"] == 0 and none["items"] == []
    bad = get(ui, "/api/v1/slos/checkout-per-customer/series", "endpoint=x")
    assert bad.status == 400


def test_series_detail_by_labels(world: World) -> None:
    ui = ui_for(world)
    r = get(ui, "/api/v1/slos/checkout-per-customer", "customer=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert r.status == 200 and b"<img" not in r.body
    d = body(r)
    assert d["series"] == {"customer": XSS} and d["burn_down"] is not None
    assert get(ui, "/api/v1/slos/checkout-per-customer", "customer=nobody").status == 404
    missing = get(ui, "/api/v1/slos/checkout-availability", "customer=acme")
    assert missing.status == 400


def test_slo_names_are_percent_decoded(world: World) -> None:
    r = get(ui_for(world), "/api/v1/slos/checkout%2Davailability")
    assert body(r)["slo"]["name"] == "checkout-availability"


def test_derived_data_is_computed_once_per_snapshot(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"summary": 0, "detail": 0, "customers": 0}

    def counting(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            calls[name] += 1
            return fn(*a, **k)

        return wrapper

    monkeypatch.setattr(api, "slo_summary", counting("summary", api.slo_summary))
    monkeypatch.setattr(api, "detail", counting("detail", api.detail))
    monkeypatch.setattr(
        index.Indexes, "customer_ranking", counting("customers", index.Indexes.customer_ranking)
    )
    current: list[Snapshot] = [world.snapshot]
    ui = Ui(lambda: current[0], world.history)
    for _ in range(3):
        get(ui, "/api/v1/slos")
        get(ui, "/api/v1/slos", "limit=1&offset=1")
        get(ui, "/api/v1/slos/checkout-availability")
        get(ui, "/api/v1/customers")
    assert calls == {"summary": 3, "detail": 1, "customers": 1}
    # A new snapshot (the next tick): computed again, once.
    current[0] = Snapshot(**{f: getattr(world.snapshot, f) for f in world.snapshot.__dataclass_fields__})
    get(ui, "/api/v1/slos")
    get(ui, "/api/v1/slos/checkout-availability")
    assert calls == {"summary": 6, "detail": 2, "customers": 1}


def test_detail_cache_is_bounded(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "DETAIL_CACHE", 2)
    ui = ui_for(world)
    for c in ("acme", "globex", "initech", "acme"):
        assert get(ui, "/api/v1/slos/checkout-per-customer", f"customer={c}").status == 200
    assert ui._cache is not None and len(ui._cache.details) == 2


def test_customers_page_through_the_ranking(world: World) -> None:
    ui = ui_for(world)
    got = body(get(ui, "/api/v1/customers", "limit=2"))
    assert got["total"] == 4 and got["next_offset"] == 2 and len(got["items"]) == 2
    consumed = [c["worst_budget_consumed"] for c in got["items"]]
    assert consumed == sorted(consumed, reverse=True)
