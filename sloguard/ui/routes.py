"""The web UI's route table, mounted on `sloguard.export.http.HttpServer` (a `Routes` callable).

Pages (`/`, `/slo/<name>`, `/customers`) are static shells from ``sloguard/ui/static/``; their scripts
read `/api/v1/...`. Everything is read-only and answered from the latest published `Snapshot`, on the
event loop (so every request must be cheap: ms, not 100s of ms, at 100k series). What is derived from a
snapshot (the encoded SLO list, the customer ranking, detail bodies) is computed lazily on the first
request that needs it and kept until the next snapshot; label codes are kept across snapshots and only
extended (`sloguard.ui.index`), and pages are picked by partial sorts, so no request runs a Python loop
over every series. Only a detail page reads buckets from the live aggregator (`api.History`), once per
snapshot and series (a bounded cache); an SLO as a whole reads the rings' per-slot sums.

Every response carries a strict Content-Security-Policy (no inline script or style, nothing from
elsewhere), ``nosniff`` and ``no-referrer``; pages are bounded by the pagination cap.
"""

from __future__ import annotations

import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from sloguard.core.snapshot import SloSnapshot, Snapshot
from sloguard.export.http import Response
from sloguard.ui import api
from sloguard.ui.index import CustomerRanking, Indexes, SloIndex, smallest

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


#: The pages: file served -> (title, ``data-page``, scripts after common.js, nav link it is). Each is
#: ``shell.html`` (the shared head and header) around its ``<data-page>.main.html``.
PAGES: dict[str, tuple[str, str, tuple[str, ...], str | None]] = {
    "index.html": ("SLOs", "list", ("list.js",), "/"),
    "slo.html": ("SLO", "slo", ("charts.js", "slo.js"), None),
    "customers.html": ("Customers", "customers", ("customers.js",), "/customers"),
}
_NAV = (("/", "SLOs"), ("/customers", "Customers"), ("/metrics", "/metrics"))


def page_html(
    shell: str, main: str, title: str, page: str, scripts: Sequence[str], current: str | None
) -> str:
    """One page: the shell with its title, scripts, nav and ``<main>`` content (put in last, so nothing
    in it is taken for a placeholder)."""
    current_attr = ' aria-current="page"'
    nav = "".join(
        f'<a href="{href}"{current_attr if href == current else ""}>{text}</a>' for href, text in _NAV
    )
    tags = "\n".join(f'<script src="/static/{js}" defer></script>' for js in scripts)
    out = shell.replace("{title}", title).replace("{scripts}", tags).replace("{page}", page)
    return out.replace("{nav}", nav).replace("{main}", main)


def _load_static() -> dict[str, tuple[bytes, str]]:
    """The assets by name, and the pages assembled from the shell (once, at start)."""
    root = resources.files("sloguard.ui") / "static"
    out: dict[str, tuple[bytes, str]] = {}
    for item in root.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in _TYPES:
            out[item.name] = (item.read_bytes(), _TYPES[suffix])
    shell = out.pop("shell.html")[0].decode()
    for name, (title, page, scripts, current) in PAGES.items():
        main = out.pop(f"{page}.main.html")[0].decode()
        out[name] = (page_html(shell, main, title, page, scripts, current).encode(), _TYPES[".html"])
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
    """One SLO in one snapshot: its label index (kept across snapshots by `index.Indexes`)."""

    def __init__(self, s: SloSnapshot, indexes: Indexes) -> None:
        self.s = s
        self._indexes = indexes
        self._index: SloIndex | None = None

    def index(self) -> SloIndex:
        if self._index is None:
            self._index = self._indexes.of(self.s)
        return self._index

    def col(self, key: tuple[str, ...]) -> int | None:
        cols = self.index().match(dict(zip(self.s.spec.group_by, key, strict=True)))
        return int(cols[0]) if len(cols) else None

    def page(self, wanted: dict[str, str], offset: int, limit: int) -> tuple[int, list[int]]:
        """(how many series have every ``wanted`` label, the columns of page ``offset``, worst first)."""
        budget = self.s.budget_remaining
        if not wanted:
            return self.s.series, smallest(budget, offset + limit)[offset:].tolist()
        cols = self.index().match(wanted)
        return len(cols), cols[smallest(budget[cols], offset + limit)[offset:]].tolist()


class _SnapshotCache:
    """What the UI derives from one snapshot, each part computed on first use."""

    def __init__(self, snap: Snapshot, indexes: Indexes) -> None:
        self.snap = snap
        self.by_name = {s.spec.name: s for s in snap.slos}
        self._indexes = indexes
        indexes.start(snap.slos)
        self._list: list[tuple[api.Json, bytes]] | None = None
        self._slos: dict[str, _SloCache] = {}
        self._customers: CustomerRanking | None = None
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
            cached = self._slos[name] = _SloCache(s, self._indexes)
        return cached

    def customers(self) -> CustomerRanking:
        if self._customers is None:
            self._customers = self._indexes.customer_ranking(self.snap.slos)
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
        self._indexes = Indexes()
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
            self._cache = _SnapshotCache(snap, self._indexes)
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
        limit = _int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _int(params, "offset", 0, 0, 10**12)
        total, cols = slo.page({k: v for k, v in params.items() if k in dims}, offset, limit)
        page = _page(params, total)
        items = api.encode(api.series_rows(slo.s, cols))[1:-1]  # one encode for the page: "[...]"
        return _list(cache.snap, total, page, [items] if cols else [])

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
        shown = ranked.page(page[0], page[1], api.CUSTOMER_SERIES)
        return _list(cache.snap, len(ranked), page, [api.encode(api.customer_row(*c)) for c in shown])
