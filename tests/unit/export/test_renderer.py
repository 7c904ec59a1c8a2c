"""The daemon's renderer (`text.Renderer`): pieces reused across renders, the same bytes as the reference
renderer and prometheus_client every time, and a gzip encoding (one member per piece) of those bytes."""

from __future__ import annotations

import gzip
import random

import numpy as np
import pytest
from prometheus_client import generate_latest

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.core.spec import LatencySpec
from sloguard.export.collector import Exposition
from sloguard.export.model import Family, SeriesLabels, block, present
from sloguard.export.text import Body, Renderer, render
from tests.support.specs import config
from tests.unit.export.scrape import TELEMETRY
from tests.unit.export.snapshots import AGGREGATED_SPECS, NASTY, T0


def _text(body: Body) -> bytes:
    whole = b"".join(body.text())
    # The members are a valid (multi-member) gzip stream of exactly the text.
    assert gzip.decompress(b"".join(body.members)) == whole
    assert len(whole) == body.length
    return whole


def _families(series: SeriesLabels, a: np.ndarray, b: np.ndarray) -> list[Family]:
    """A family with a dense block (``a``) and one with NaN rows left out (``b``), over ``series``."""
    rows = present(b)
    return [
        Family("x_events", "Dense.", "gauge", (block(series, (("slo", "s"),), a),)),
        Family(
            "x_eta",
            "Sparse.",
            "gauge",
            (block(series, (("w", "1h"),), b if rows is None else b[rows], rows),),
        ),
    ]


def test_pieces_are_reused_only_where_nothing_changed() -> None:
    renderer = Renderer(chunk_rows=4, merged_chunks=1)
    names = [(f"c{j}", NASTY[j % len(NASTY)]) for j in range(18)]
    series = SeriesLabels(("customer", "note"), names)
    a = np.arange(18, dtype=np.float64)
    b = np.full(18, np.nan)
    b[[1, 7, 12]] = [0.5, 1e7, -0.0]

    def check(fams: list[Family]) -> None:
        assert _text(renderer.render(fams)) == render(fams)

    check(_families(series, a, b))
    assert (renderer.rendered, renderer.reused) == (10, 0)  # 5 chunks of 4 rows per block, none cached
    check(_families(series, a.copy(), b.copy()))
    assert (renderer.rendered, renderer.reused) == (0, 10)
    a2, b2 = a.copy(), b.copy()
    a2[5] = 1.5  # chunk 1 of the dense block
    b2[17] = 3.0  # a new sample in the last chunk of the sparse one
    b2[12] = 0.0  # -0.0 -> 0.0 changes the text: chunk 3
    check(_families(series, a2, b2))
    assert (renderer.rendered, renderer.reused) == (3, 7)
    # Series appended, same lineage: whole chunks of the old rows are kept; the cut one is not.
    more = SeriesLabels.follow(series, ("customer", "note"), [*names, ("c18", "x"), ("c19", "y")])
    assert more is not series and more.lineage is series.lineage
    a3, b3 = np.append(a2, [7.0, 8.0]), np.append(b2, [np.nan, 2.0])
    check(_families(more, a3, b3))
    assert (renderer.rendered, renderer.reused) == (2, 8)
    # Other labels: a new lineage, nothing reused, even with the same values.
    other = SeriesLabels(("customer", "note"), [(f"d{j}", "") for j in range(20)])
    check(_families(other, a3, b3))
    assert (renderer.rendered, renderer.reused) == (10, 0)


def test_changed_chunks_are_rendered_together_and_split_back_when_quieter() -> None:
    # Chunks that changed side by side make one piece (up to merged_chunks); a merged piece is reused
    # only when none of its chunks changed, and its unchanged chunks are then rendered one by one.
    renderer = Renderer(chunk_rows=4, merged_chunks=3)
    series = SeriesLabels(("customer", "note"), [(f"c{j}", NASTY[j % len(NASTY)]) for j in range(30)])
    a, b = np.arange(30, dtype=np.float64), np.full(30, np.nan)
    b[[2, 9, 21]] = [0.5, 1e7, -0.0]

    def body(a: np.ndarray, b: np.ndarray) -> Body:
        fams = _families(series, a, b)
        out = renderer.render(fams)
        assert _text(out) == render(fams)
        return out

    # 8 chunks a block: pieces of 3, 3 and 2 chunks, after each family's header (a piece of its own);
    # the sparse block's last piece has no sample (no piece in the body).
    first = body(a, b)
    assert (renderer.rendered, renderer.reused) == (16, 0)
    assert len(first.pieces) == (1 + 3) + (1 + 2)
    again = body(a.copy(), b.copy())
    assert (renderer.rendered, renderer.reused) == (0, 16)
    assert [p for p in again.pieces if p in first.pieces] == [first.pieces[i] for i in (1, 2, 3, 5, 6)]
    a2 = a.copy()
    a2[5] = 1.5  # chunk 1: the first piece (chunks 0-2) is rendered again, one piece a chunk
    second = body(a2, b)
    assert (renderer.rendered, renderer.reused) == (3, 13)
    a3 = a2.copy()
    a3[1] = 2.5  # chunk 0 alone now: chunks 1 and 2 are reused
    body(a3, b)
    assert (renderer.rendered, renderer.reused) == (1, 15)
    assert len(second.pieces) == len(first.pieces) + 2
    a4 = a3 + 1  # everything: merged again
    body(a4, b)
    assert (renderer.rendered, renderer.reused) == (8, 8)


@pytest.mark.parametrize("large", [False, True], ids=["text-kept", "packed"])
def test_gzip_members_are_made_once_per_piece(large: bool) -> None:
    # A small body keeps its text and is gzipped only when asked (a gzip scrape), each piece once, the
    # member kept with the piece; a body at least text_kept_below bytes long is gzipped by its render
    # and kept only so. The bytes are the same either way.
    renderer = Renderer(chunk_rows=4, text_kept_below=0 if large else 1 << 20, merged_chunks=1)
    series = SeriesLabels(("customer", "note"), [(f"c{j}", NASTY[j % len(NASTY)]) for j in range(18)])
    a, b = np.arange(18, dtype=np.float64), np.full(18, 0.25)
    first = renderer.render(_families(series, a, b))
    assert first.gzipped is large
    assert all((p.text is None) is large for p in first.pieces)
    members = first.members  # gzips what was not gzipped
    assert first.gzipped and first.members == members
    assert _text(first) == render(_families(series, a, b))
    a2 = a.copy()
    a2[5] = 1.5
    second = renderer.render(_families(series, a2, b))
    reused = [p for p in second.pieces if p in first.pieces]
    assert len(reused) == 9 and all(p.gz is not None for p in reused)  # 10 cached pieces, one rendered
    assert second.gzipped is large
    assert _text(second) == render(_families(series, a2, b))
    assert gzip.decompress(b"".join(Body.of_members(second.members, second.length).members)) == _text(second)
    # Asked to gzip at once (the daemon does when its latest scrape asked for gzip): every piece has its
    # member, and a small body keeps its text too.
    third = renderer.render(_families(series, a2 + 1, b), gzip=True)
    assert third.gzipped and all((p.text is None) is large for p in third.pieces)
    assert _text(third) == render(_families(series, a2 + 1, b))


def test_a_body_reaching_the_limit_mid_render_is_packed_whole() -> None:
    # Pieces are packed from the moment the body reaches the limit, those before it included.
    series = SeriesLabels(("customer",), [(f"c{j}",) for j in range(40)])
    fams = _families(series, np.arange(40, dtype=np.float64), np.full(40, 0.5))
    body = Renderer(chunk_rows=4, text_kept_below=300, merged_chunks=1).render(fams)
    assert len(body.pieces) > 10 and all(p.text is None for p in body.pieces)
    assert _text(body) == render(fams)


def test_follow_keeps_what_it_can() -> None:
    names = ("a", "b")
    first = SeriesLabels(names, (("1", 'q"'), ("2", "n\n")))
    run = first.run((0, 1))
    assert SeriesLabels.follow(first, names, (("1", 'q"'), ("2", "n\n"))) is first
    grown = SeriesLabels.follow(first, names, (("1", 'q"'), ("2", "n\n"), ("3", "\\")))
    assert grown.lineage is first.lineage
    assert grown.run((0, 1)) == [*run, 'a="3",b="\\\\"']
    assert grown.run((1,)) == SeriesLabels(names, grown.values).run((1,))
    for changed in ((("1", 'q"'), ("9", "n\n")), (("1", 'q"'),), ()):
        assert SeriesLabels.follow(first, names, changed).lineage is not first.lineage
    assert SeriesLabels.follow(first, ("a", "c"), first.values).lineage is not first.lineage
    assert SeriesLabels.follow(None, names, first.values).lineage is not first.lineage


def _events(rnd: random.Random, start_ms: int, n: int, customers: int) -> EventBatch:
    endpoints = ("GET /v1/orders", "POST /v1/orders", "POST /v1/pay")
    return EventBatch.from_events(
        [
            Event(
                ts_ms=start_ms + rnd.randrange(60_000),
                service=rnd.choice(("checkout", "search")),
                endpoint=rnd.choice(endpoints),
                customer=f"cust-{min(int(rnd.paretovariate(0.8)), customers):04d}",
                status=503 if rnd.random() < 0.02 else 200,
                latency_ms=round(rnd.lognormvariate(3, 1), 3),
            )
            for _ in range(n)
        ]
    )


@pytest.mark.parametrize("merged", [1, 3], ids=["chunk-pieces", "merged-pieces"])
@pytest.mark.parametrize("top_k", [None, {"search-latency": 5}], ids=["all", "top-k"])
@pytest.mark.parametrize("sloth", [False, True], ids=["native", "sloth-compat"])
def test_tick_after_tick_the_body_is_generate_latest(
    sloth: bool, top_k: dict[str, int] | None, merged: int
) -> None:
    # A live aggregator over a few minutes: new customers, late events, windows moving, series growing.
    rnd = random.Random(7)
    agg = Aggregator(config(*AGGREGATED_SPECS, latency=LatencySpec()))
    exposition = Exposition(sloth_compat=sloth, top_k=top_k)
    exposition.renderer = Renderer(chunk_rows=8, merged_chunks=merged)
    reused = 0
    for tick in range(12):
        now = T0 + 3_600_000 + tick * 20_000
        agg.ingest(_events(rnd, now - 90_000, 40 if tick % 3 else 400, 20 + tick * 10))
        agg.advance(now)
        body = exposition.render_body(agg.snapshot(now), TELEMETRY)
        assert _text(body) == generate_latest(exposition.registry)
        reused += exposition.renderer.reused
    assert reused > 0
