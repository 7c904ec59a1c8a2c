"""The route normaliser: raw request paths to route templates, so that ids cannot explode cardinality.

``/v1/orders/4711?expand=items`` becomes ``/v1/orders/{id}``:

1. the query string (from ``?``) and the fragment (from ``#``) are dropped;
2. the configured templates are matched segment by segment: a ``{name}`` segment matches any one
   non-empty segment, any other segment only itself; of those that match, the most specific is the
   route (literal segments beat placeholders, left to right, as web frameworks route:
   ``/v1/stock/reserve`` before ``/v1/stock/{sku}``; ties go to the first listed);
3. otherwise, with ``auto_ids``, each segment that is a decimal number, a UUID (8-4-4-4-12 hex digits)
   or a hexadecimal string of at least 8 characters holding a digit (object ids, hashes) becomes
   ``{id}``; other segments are kept.

A path matched by no template with ``auto_ids`` off is kept as it is (query dropped). Results are cached
per raw path (bounded), since the same paths repeat.
"""

from __future__ import annotations

import re
from typing import Final

from sloguard.core.inputspec import RouteSpec

__all__ = ["ID", "RouteNormaliser"]

ID: Final = "{id}"
_CACHE_MAX: Final = 1 << 16
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX: Final = re.compile(r"[0-9a-fA-F]{8,}")


def _is_id(segment: str) -> bool:
    if segment.isdecimal() and segment.isascii():
        return True
    if len(segment) == 36 and _UUID.fullmatch(segment):
        return True
    return _HEX.fullmatch(segment) is not None and any(c.isdigit() for c in segment)


def _is_placeholder(segment: str) -> bool:
    return len(segment) > 2 and segment[0] == "{" and segment[-1] == "}"


class RouteNormaliser:
    """`normalise` raw paths by ``spec`` (see the module docstring)."""

    __slots__ = ("_auto", "_cache", "_templates")

    def __init__(self, spec: RouteSpec) -> None:
        # Per template: its segments, None where any one segment matches; the most specific first (a
        # literal segment before a placeholder, left to right; ties keep the file's order).
        parsed = [(t, [None if _is_placeholder(s) else s for s in t.split("/")]) for t in spec.templates]
        self._templates = sorted(parsed, key=lambda tp: [p is None for p in tp[1]])
        self._auto = spec.auto_ids
        self._cache: dict[str, str] = {}

    def normalise(self, path: str) -> str:
        """The route of ``path``."""
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        route = self._route(path)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[path] = route
        return route

    def normalise_endpoint(self, endpoint: str) -> str:
        """``"METHOD /path"`` with its path normalised (an endpoint read as one field)."""
        method, sep, path = endpoint.partition(" ")
        return (
            f"{method} {self.normalise(path)}" if sep and path.startswith("/") else self.normalise(endpoint)
        )

    def _route(self, path: str) -> str:
        cut = min((i for i in (path.find("?"), path.find("#")) if i >= 0), default=len(path))
        path = path[:cut]
        segments = path.split("/")
        for template, parts in self._templates:
            if len(parts) == len(segments) and all(
                s if p is None else p == s for p, s in zip(parts, segments, strict=True)
            ):
                return template
        if self._auto:
            return "/".join(ID if _is_id(s) else s for s in segments)
        return path
