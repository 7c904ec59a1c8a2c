"""`sloguard.replay`: the default `now` is robust to far-future outliers, and the progress bar ends at
100 %."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.core.model import Event, EventBatch, Vocabs
from sloguard.core.spec import DAY
from sloguard.replay import (
    OUTLIER_GAP_MS,
    OUTLIER_MAX,
    OutlierHold,
    ProgressBar,
    ReplayResult,
    outlier_cut,
    replay,
)
from tests.support.specs import config, slo

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
Y2030 = 1_893_456_000_000
CONFIG = config(slo(group_by=("endpoint",)), slo(name="search", service="search"))


class Records:
    """An `EventSource` of NDJSON chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def records(self) -> Iterator[bytes]:
        return iter(self.chunks)


def line(ts: int, service: str = "checkout", status: int = 200) -> bytes:
    return (
        b'{"ts":%d,"service":"%s","endpoint":"POST /v1/orders","customer":"acme","status":%d,'
        b'"latency_ms":12.5,"extra":{"k":[1,2]}}\n' % (ts, service.encode(), status)
    )


def offline_cut(times: list[int]) -> int | None:
    """The rule, written out on the whole sorted list."""
    t = sorted(times)
    n = len(t)
    k = min(max(n // 1000, 10), 1000, n - 1)
    for i in range(n - k, n):
        if i > 0 and t[i] - t[i - 1] > OUTLIER_GAP_MS:
            return t[i]
    return None


def test_one_event_years_ahead_is_an_outlier() -> None:
    times = [T0 + i * 1000 for i in range(5000)] + [Y2030]
    assert outlier_cut(np.array(times, np.int64), len(times)) == Y2030


def test_a_gap_of_exactly_a_day_is_not_one() -> None:
    times = [T0 + i * 1000 for i in range(50)]
    times.append(times[-1] + OUTLIER_GAP_MS)
    assert outlier_cut(np.array(times, np.int64), len(times)) is None
    times[-1] += 1
    assert outlier_cut(np.array(times, np.int64), len(times)) == times[-1]


def test_only_the_newest_few_can_be_outliers() -> None:
    # 5000 events: at most 10 outliers (0.1 % is 5, at least 10); 11 far ahead are not left out.
    base = [T0 + i * 1000 for i in range(5000)]
    assert outlier_cut(np.array(base + [Y2030] * 10, np.int64), 5010) == Y2030
    assert outlier_cut(np.array(base + [Y2030] * 11, np.int64), 5011) is None
    # A single event or two: the oldest is never an outlier.
    assert outlier_cut(np.array([Y2030], np.int64), 1) is None
    assert outlier_cut(np.array([T0, Y2030], np.int64), 2) == Y2030


def batches_of(times: list[int], sizes: list[int]) -> list[EventBatch]:
    vocabs, out, at = Vocabs(), [], 0
    for size in [*sizes, len(times)]:
        part = times[at : at + size]
        at += len(part)
        out.append(
            EventBatch.from_events([Event(t, "checkout", "GET /", "acme", 200, 1.0) for t in part], vocabs)
        )
        if at >= len(times):
            break
    return out


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3000),
    far=st.lists(st.integers(1, 40 * DAY * 1000), max_size=15),
    order=st.sampled_from(["random", "sorted", "reversed"]),
    sizes=st.lists(st.integers(1, 900), max_size=12),
    seed=st.integers(0, 1000),
)
def test_streaming_hold_equals_the_rule_on_the_whole_input(
    n: int, far: list[int], order: str, sizes: list[int], seed: int
) -> None:
    rnd = random.Random(seed)
    times = [T0 + rnd.randrange(3 * DAY * 1000) for _ in range(n)]
    times += [T0 + 3 * DAY * 1000 + f for f in far]  # some within a day of the rest, some far beyond
    if order == "random":
        rnd.shuffle(times)
    else:
        times.sort(reverse=order == "reversed")
    hold = OutlierHold()
    admitted = [int(t) for b in batches_of(times, sizes) for t in hold.admit(b).ts_ms.tolist()]
    kept, outliers, cut = hold.finish()
    admitted += kept.ts_ms.tolist()
    assert cut == offline_cut(times)
    assert sorted(admitted) == sorted(t for t in times if cut is None or t < cut)
    assert outliers == sum(cut is not None and t >= cut for t in times)


def test_held_events_are_few_once_enough_were_read() -> None:
    hold = OutlierHold()
    times = [T0 + i * 100 for i in range(20_000)]  # time-sorted: every batch holds the newest times
    for b in batches_of(times, [997] * 30):
        hold.admit(b)
        assert sum(len(h) for h in hold._held) <= OUTLIER_MAX


def snapshot_numbers(result: ReplayResult) -> list[object]:
    s = result.snapshot
    return [s.now_ms, *[(x.labels, x.total.tolist(), x.bad.tolist(), x.too_old_events) for x in s.slos]]


def test_a_2030_event_moves_neither_now_nor_any_count() -> None:
    lines = [line(T0 + i * 37_000, status=503 if i % 50 == 0 else 200) for i in range(4000)]
    clean = replay(Records([b"".join(lines)]), CONFIG)
    lines.insert(1234, line(Y2030))
    dirty = replay(Records([b"".join(lines[:2000]), b"".join(lines[2000:])]), CONFIG)
    assert snapshot_numbers(dirty) == snapshot_numbers(clean)
    assert (clean.after_now, dirty.after_now) == (0, 1)
    assert dirty.outliers_from_ms == Y2030 and clean.outliers_from_ms is None
    assert dirty.snapshot.events == clean.snapshot.events == 4000


def test_an_explicit_now_is_not_second_guessed() -> None:
    chunk = b"".join(line(T0 + i * 1000) for i in range(100)) + line(Y2030)
    result = replay(Records([chunk]), CONFIG, now_ms=Y2030 + 60_000)
    assert (result.after_now, result.outliers_from_ms, result.snapshot.events) == (0, None, 101)


def test_unmatched_is_reported() -> None:
    chunk = b"".join([line(T0, "Checkout"), line(T0, "checkout"), line(T0, "search"), line(T0, "auth")])
    assert replay(Records([chunk]), CONFIG).unmatched == 2


def test_progress_bar_reaches_100_percent() -> None:
    out = io.StringIO()
    bar = ProgressBar("replay", out)
    for done in range(0, 101, 10):  # faster than the redraw period: only the first and the last drawn
        bar(done, 100)
    frames = out.getvalue().split("\r")[1:]
    assert len(frames) == 2 and "  0.0%" in frames[0] and "100.0%" in frames[1]
    out2 = io.StringIO()
    bar2 = ProgressBar("replay", out2)
    bar2(10, 100)
    bar2(95, 100)  # a gzip reader's last position, short of the size by the trailer
    bar2.finish()
    bar2.close()
    assert out2.getvalue().rsplit("\r", 1)[-1].startswith("replay [" + "#" * 30 + "] 100.0%")


def test_held_events_keep_their_labels_across_a_vocabulary_reset() -> None:
    vocabs = Vocabs()
    events = [Event(T0 + i, "checkout", f"GET /{i}", f"c{i}", 200, 1.0) for i in range(5)]
    hold = OutlierHold()
    assert len(hold.admit(EventBatch.from_events(events, vocabs))) == 0  # too few yet: all held
    vocabs.endpoint.reset()  # the aggregator resets a vocabulary that grew past its limit
    vocabs.endpoint.intern("something else")
    kept, outliers, _ = hold.finish()
    assert (kept.events(), outliers) == (events, 0)
