"""The web UI's route table, mounted on `sloguard.export.http.HttpServer` (a `Routes` callable).

Pages (`/`, `/slo/<name>`, `/customers`) are static shells from ``sloguard/ui/static/``; their scripts
read `/api/v1/...`. Everything is read-only and answered from the latest published `Snapshot`: what is
derived from a snapshot (the encoded SLO list, each SLO's series order and label index, the customer
ranking, detail bodies) is computed lazily on the first request that needs it and kept until the next
snapshot, so a request never scans every series. Only a detail page reads one series' buckets from the
live aggregator (`api.History`), once per snapshot and series (a bounded cache).

Every response carries a strict Content-Security-Policy (no inline script or style, nothing from
elsewhere), ``nosniff`` and ``no-referrer``; pages are bounded by the pagination cap.
"""

from __future__ import annotations

import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np

from sloguard._types import I64, Intp
from sloguard.core.snapshot import SloSnapshot, Snapshot
from sloguard.export.http import Response
from sloguard.ui import api

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
#: Items per page of any list: the default, and the most one request may ask for.
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
#: Detail bodies kept per snapshot (SLOs and series looked at since the last tick).
DETAIL_CACHE = 256

JSON_TYPE = "application/json; charset=utf-8"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_PAGES = {"/": "index.html", "/customers": "customers.html"}


class BadRequest(ValueError):
    """A query the API refuses; the message says which parameter and why."""


def _load_static() -> dict[str, tuple[bytes, str]]:
    root = resources.files("sloguard.ui") / "static"
    out = {}
    for item in root.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in _TYPES:
            out[item.name] = (item.read_bytes(), _TYPES[suffix])
    return out


def _params(query: str, allowed: set[str]) -> dict[str, str]:
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, max_num_fields=32)
    except ValueError:
        raise BadRequest("too many query parameters") from None
    out: dict[str, str] = {}
    for k, v in pairs:
        if k not in allowed:
            raise BadRequest(f"unknown parameter {k!r} (allowed: {', '.join(sorted(allowed)) or 'none'})")
        if k in out:
            raise BadRequest(f"parameter {k!r} given twice")
        out[k] = v
    return out


def _int(params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise BadRequest(f"{name} must be a whole number from {lo} to {hi}, got {raw[:40]!r}")
    return int(raw)


def _page(params: dict[str, str], total: int) -> tuple[int, int, int | None]:
    """(offset, limit, next offset or None) of a paginated list of ``total`` items."""
    limit = _int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int(params, "offset", 0, 0, 10**12)
    return offset, limit, offset + limit if offset + limit < total else None


def _list(snap: Snapshot, total: int, page: tuple[int, int, int | None], items: list[bytes]) -> Response:
    """A page of a list: its place in the whole, then the items (each encoded once, maybe cached)."""
    offset, limit, nxt = page
    head = api.encode(
        {"api": api.API_VERSION, "now_ms": snap.now_ms, "total": total, "offset": offset, "limit": limit}
    )
    body = head[:-1] + b',"next_offset":' + api.encode(nxt) + b',"items":[' + b",".join(items) + b"]}"
    return Response(200, JSON_TYPE, body, SECURITY_HEADERS)


class _SloCache:
    """One SLO's derived data for one snapshot: series by budget (worst first), and a label index."""

    def __init__(self, s: SloSnapshot) -> None:
        self.s = s
        self.order: I64 = api.series_order(s)
        self._cols: dict[tuple[str, ...], int] | None = None
        #: dim -> value -> positions in `order` (ascending), built on the first filtered request.
        self._index: dict[str, dict[str, list[int]]] | None = None

    def col(self, key: tuple[str, ...]) -> int | None:
        if self._cols is None:
            self._cols = {k: i for i, k in enumerate(self.s.labels)}
        return self._cols.get(key)

    def positions(self, wanted: dict[str, str]) -> Intp:
        """Positions in `order` of the series with every ``wanted`` label value."""
        if not wanted:
            return np.arange(len(self.order))
        if self._index is None:
            self._index = {}
            labels = self.s.labels
            for i, d in enumerate(self.s.spec.group_by):
                groups: dict[str, list[int]] = {}
                for pos, col in enumerate(self.order.tolist()):
                    groups.setdefault(labels[col][i], []).append(pos)
                self._index[d] = groups
        result: Intp | None = None
        for d, v in wanted.items():
            hit = np.array(self._index[d].get(v, ()), np.intp)
            result = hit if result is None else np.intersect1d(result, hit, assume_unique=True)
        assert result is not None
        return result


class _SnapshotCache:
    """What the UI derives from one snapshot, each part computed on first use."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.by_name = {s.spec.name: s for s in snap.slos}
        self._list: list[tuple[api.Json, bytes]] | None = None
        self._slos: dict[str, _SloCache] = {}
        self._customers: list[tuple[str, api.CustomerSeries]] | None = None
        self.details: OrderedDict[tuple[str, int | None], bytes] = OrderedDict()

    def summaries(self) -> list[tuple[api.Json, bytes]]:
        """The SLO list, worst budget first, each row with its encoded bytes."""
        if self._list is None:
            rows = api.list_order([api.slo_summary(s) for s in self.snap.slos])
            self._list = [(r, api.encode(r)) for r in rows]
        return self._list

    def slo(self, name: str) -> _SloCache | None:
        cached = self._slos.get(name)
        if cached is None:
            s = self.by_name.get(name)
            if s is None:
                return None
            cached = self._slos[name] = _SloCache(s)
        return cached

    def customers(self) -> list[tuple[str, api.CustomerSeries]]:
        if self._customers is None:
            self._customers = api.customer_index(self.snap.slos)
        return self._customers


def _json(status: int, obj: Any) -> Response:
    return Response(status, JSON_TYPE, api.encode(obj), SECURITY_HEADERS)


class Ui:
    """The route table: ``Ui(latest, history)(path, query)`` → a `Response`, or None (not ours: 404).

    ``latest()`` returns the last published snapshot (None before the first tick); ``history`` reads one
    series' buckets (`Aggregator.bucket_counts`), or is None (no burn-down, no 6 h chart).
    """

    def __init__(self, latest: Callable[[], Snapshot | None], history: api.History | None = None) -> None:
        self._latest = latest
        self._history = history
        self._cache: _SnapshotCache | None = None
        self._static = _load_static()

    def __call__(self, path: str, query: str) -> Response | None:
        if path.startswith("/api/"):
            try:
                return self._api(path, query)
            except BadRequest as e:
                return _json(400, {"error": str(e)})
        page = _PAGES.get(path)
        if page is None and path.startswith("/slo/") and len(path) > 5 and "/" not in path[5:]:
            page = "slo.html"
        if page is not None:
            return self._asset(page)
        if path.startswith("/static/"):
            return self._asset(path[len("/static/") :])
        if path == "/favicon.ico":
            return self._asset("favicon.svg")
        return None

    def _asset(self, name: str) -> Response | None:
        found = self._static.get(name)
        if found is None:
            return None
        body, content_type = found
        return Response(200, content_type, body, SECURITY_HEADERS)

    def _snapshot(self) -> _SnapshotCache | None:
        snap = self._latest()
        if snap is None:
            return None
        if self._cache is None or self._cache.snap is not snap:
            self._cache = _SnapshotCache(snap)
        return self._cache

    def _api(self, path: str, query: str) -> Response:
        parts = [urllib.parse.unquote(p) for p in path.split("/")[3:]]
        if path.split("/")[2:3] != [api.API_VERSION] or not parts or parts[0] not in ("slos", "customers"):
            return _json(404, {"error": f"no such API path; this is API {api.API_VERSION} (see docs/api.md)"})
        cache = self._snapshot()
        if cache is None:
            return _json(503, {"error": "no snapshot published yet; try again in a second"})
        if parts == ["slos"]:
            return self._slo_list(cache, query)
        if parts == ["customers"]:
            return self._customer_list(cache, query)
        if parts[0] != "slos" or len(parts) > 3 or (len(parts) == 3 and parts[2] != "series"):
            return _json(404, {"error": "no such API path (see docs/api.md)"})
        slo = cache.slo(parts[1])
        if slo is None:
            return _json(404, {"error": f"no SLO named {parts[1][:200]!r}"})
        if len(parts) == 3:
            return self._series_list(cache, slo, query)
        return self._detail(cache, slo, query)

    def _slo_list(self, cache: _SnapshotCache, query: str) -> Response:
        params = _params(query, {"limit", "offset", "service", "label", "q"})
        rows = cache.summaries()
        service, label, text = params.get("service"), params.get("label"), params.get("q")
        if service or label or text:
            rows = [r for r in rows if api.matches_filter(r[0], service, label, text)]
        page = _page(params, len(rows))
        return _list(cache.snap, len(rows), page, [b for _, b in rows[page[0] : page[0] + page[1]]])

    def _series_list(self, cache: _SnapshotCache, slo: _SloCache, query: str) -> Response:
        dims = set(slo.s.spec.group_by)
        params = _params(query, {"limit", "offset", *dims})
        positions = slo.positions({k: v for k, v in params.items() if k in dims})
        page = _page(params, len(positions))
        cols = slo.order[positions[page[0] : page[0] + page[1]]].tolist()
        return _list(cache.snap, len(positions), page, [api.encode(api.series_row(slo.s, c)) for c in cols])

    def _detail(self, cache: _SnapshotCache, slo: _SloCache, query: str) -> Response:
        dims = slo.s.spec.group_by
        params = _params(query, set(dims))
        col: int | None = None
        if params:
            missing = [d for d in dims if d not in params]
            if missing:
                raise BadRequest(f"a series needs every label of group_by; missing: {', '.join(missing)}")
            col = slo.col(tuple(params[d] for d in dims))
            if col is None:
                return _json(404, {"error": "no such series in this SLO (never seen, or evicted as idle)"})
        key = (slo.s.spec.name, col)
        body = cache.details.get(key)
        if body is None:
            snap = cache.snap
            body = api.encode(api.detail(slo.s, col, snap.now_ms, snap.latency, self._history))
            cache.details[key] = body
            while len(cache.details) > DETAIL_CACHE:
                cache.details.popitem(last=False)
        return Response(200, JSON_TYPE, body, SECURITY_HEADERS)

    def _customer_list(self, cache: _SnapshotCache, query: str) -> Response:
        params = _params(query, {"limit", "offset"})
        ranked = cache.customers()
        page = _page(params, len(ranked))
        shown = ranked[page[0] : page[0] + page[1]]
        return _list(cache.snap, len(ranked), page, [api.encode(api.customer_row(c, e)) for c, e in shown])
