"""The route normaliser: templates segment by segment, automatic ids, query strings dropped."""

from __future__ import annotations

import pytest

from sloguard.core.inputspec import RouteSpec
from sloguard.ingest.routes import RouteNormaliser

TEMPLATES = ("/v1/orders/{id}", "/v1/orders/{id}/items/{item}", "/v1/orders/export")


@pytest.mark.parametrize(
    ("raw", "route"),
    [
        ("/v1/orders/4711", "/v1/orders/{id}"),
        ("/v1/orders/4711?expand=items#top", "/v1/orders/{id}"),
        ("/v1/orders/a-b-c/items/sku-9", "/v1/orders/{id}/items/{item}"),
        ("/v1/orders/export", "/v1/orders/export"),  # the most specific template wins
        ("/v1/orders", "/v1/orders"),
        ("/v1/orders/", "/v1/orders/"),  # an empty segment matches no placeholder
        ("/v2/users/123", "/v2/users/123"),  # no template, auto ids off: kept (query dropped)
    ],
)
def test_templates(raw: str, route: str) -> None:
    assert RouteNormaliser(RouteSpec(templates=TEMPLATES)).normalise(raw) == route


@pytest.mark.parametrize(
    ("raw", "route"),
    [
        ("/v2/users/123/orders/9", "/v2/users/{id}/orders/{id}"),
        ("/v2/files/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "/v2/files/{id}"),
        ("/v2/blobs/9f86d081884c7d65", "/v2/blobs/{id}"),  # hex with a digit, 8+ characters
        ("/v2/blobs/deadbeef", "/v2/blobs/deadbeef"),  # a hex word without digits stays
        ("/v2/blobs/abc123", "/v2/blobs/abc123"),  # too short for an id
        ("/v2/items/sku-1?x=1", "/v2/items/sku-1"),
        ("/v2/٣", "/v2/٣"),  # only ASCII digits make a number
    ],
)
def test_auto_ids(raw: str, route: str) -> None:
    assert RouteNormaliser(RouteSpec(auto_ids=True)).normalise(raw) == route


def test_templates_before_auto_ids_and_endpoints() -> None:
    n = RouteNormaliser(RouteSpec(templates=("/v1/stock/{sku}",), auto_ids=True))
    assert n.normalise("/v1/stock/12345") == "/v1/stock/{sku}"
    assert n.normalise("/v1/orders/12345") == "/v1/orders/{id}"
    assert n.normalise_endpoint("GET /v1/orders/12345?x") == "GET /v1/orders/{id}"
    assert n.normalise_endpoint("/v1/orders/77") == "/v1/orders/{id}"
    assert n.normalise_endpoint("checkout") == "checkout"


def test_cache_is_bounded() -> None:
    n = RouteNormaliser(RouteSpec(auto_ids=True))
    for i in range(70_000):
        assert n.normalise(f"/v1/orders/{i}") == "/v1/orders/{id}"
    assert len(n._cache) <= 1 << 16
