"""An aggregator state in a form that does not depend on row numbers or ring slots: for comparing the
state of the scaled pipeline with one process's, series by series and bucket by bucket."""

from __future__ import annotations

from typing import Any

import numpy as np

from sloguard.core.state import AggregatorState, RingState


def _ring(r: RingState, keys: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    slots, rows = np.divmod(r.cells, max(r.rows, 1))
    cells = {}
    if r.head is not None:
        buckets = r.head - (r.head - slots) % r.n
        for row, b, t, bad in zip(
            rows.tolist(), buckets.tolist(), r.total.tolist(), r.bad.tolist(), strict=True
        ):
            cells[(keys[row], b)] = (t, bad)
    return {"head": r.head, "low": r.low, "cells": cells}


def canonical(state: AggregatorState) -> dict[str, Any]:
    """Every count keyed by (series key, absolute bucket); ``too_old`` left out (it depends on arrival
    order in every mode, see `sloguard.scale.partials`)."""
    out: dict[str, Any] = {"events": state.events, "newest": state.newest_ms, "oldest": state.oldest_ms}
    for name, s in state.slos.items():
        keys = s.series.keys
        out[f"slo {name}"] = {
            "fine": _ring(s.fine, keys),
            "coarse": _ring(s.coarse, keys),
            "events": s.events,
            "row_events": {k: e for k, e in zip(keys, s.series.row_events.tolist(), strict=True) if e},
        }
    lat = state.latency
    if lat is not None:
        keys = lat.series.keys
        rings = []
        for r in lat.rings:
            cells: dict[tuple[Any, ...], int] = {}
            ends = np.cumsum(r.lengths).tolist()
            for b, a, e in zip(r.buckets.tolist(), [0, *ends][:-1], ends, strict=True):
                for k, c in zip(r.keys[a:e].tolist(), r.counts[a:e].tolist(), strict=True):
                    cells[(b, k)] = c
            rings.append({"head": r.head, "low": r.low, "cells": cells})
        out["latency"] = {
            "rings": rings,
            "keys": keys,
            "row_events": {k: e for k, e in zip(keys, lat.series.row_events.tolist(), strict=True) if e},
        }
    return out


def latency_by_key(state: AggregatorState, counts_len: int) -> dict[tuple[Any, ...], int]:
    """Latency cells keyed by (ring, bucket, group key, HDR index): row numbers resolved."""
    lat = state.latency
    out: dict[tuple[Any, ...], int] = {}
    if lat is None:
        return out
    for i, r in enumerate(lat.rings):
        ends = np.cumsum(r.lengths).tolist()
        for b, a, e in zip(r.buckets.tolist(), [0, *ends][:-1], ends, strict=True):
            for k, c in zip(r.keys[a:e].tolist(), r.counts[a:e].tolist(), strict=True):
                row, cell = divmod(k, counts_len)
                out[(i, b, lat.series.keys[row], cell)] = c
    return out


def comparable(state: AggregatorState, counts_len: int) -> dict[str, Any]:
    """`canonical` with latency cells keyed by group key instead of row."""
    out = canonical(state)
    if "latency" in out:
        lat = out["latency"]
        out["latency"] = {
            "heads": [(r["head"], r["low"]) for r in lat["rings"]],
            "cells": latency_by_key(state, counts_len),
            "row_events": lat["row_events"],
        }
    return out
