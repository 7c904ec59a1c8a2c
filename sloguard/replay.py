"""`sloguard replay`: files of request logs -> decoder -> aggregator -> one snapshot."""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from sloguard._types import I64
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import EventBatch, LabelColumn, Rejections, Vocabs
from sloguard.core.snapshot import Snapshot
from sloguard.core.spec import DAY, Config
from sloguard.ingest.decode import Decoder
from sloguard.ingest.presets import effective_input
from sloguard.ingest.source import EventSource

PROGRESS_MIN_BYTES = 8 << 20

#: The default ``now`` leaves out the newest events when a gap of more than this separates them from
#: the rest (see `OutlierHold`).
OUTLIER_GAP_MS = DAY * 1000
#: ... and only if they are few: at most this share of the events (but at least `OUTLIER_MIN` events,
#: and never more than `OUTLIER_MAX`).
OUTLIER_SHARE = 1000  # 1 in 1000 = 0.1 %
OUTLIER_MIN = 10
OUTLIER_MAX = 1000


@dataclass
class ReplayResult:
    snapshot: Snapshot
    invalid: Rejections
    aggregator: Aggregator
    #: Valid events at or after ``now`` (not in any window, not ingested): after an explicit ``now``, or
    #: the far-future outliers the default ``now`` left out.
    after_now: int = 0
    #: The oldest of those outliers (None: the default ``now`` left none out, or ``now`` was given).
    outliers_from_ms: int | None = None

    @property
    def unmatched(self) -> int:
        """Valid events (before ``now``) selected by no SLO."""
        return self.aggregator.stats.unmatched


def replay(
    source: EventSource,
    config: Config,
    now_ms: int | None = None,
    decoder: Decoder | None = None,
    input_preset: str | None = None,
) -> ReplayResult:
    """Feed every record of ``source`` through the decoder and one aggregator; evaluate at ``now_ms``
    (default: the end of the bucket holding the newest event, far-future outliers left out: `OutlierHold`).
    The decoder reads the SLO file's ``input:`` mapping, else the preset ``input_preset``."""
    keep_freed_memory()
    agg = Aggregator(config)
    decoder = decoder or Decoder(vocabs=agg.vocabs, input=effective_input(config.input, input_preset))
    invalid = Rejections()
    hold = OutlierHold() if now_ms is None else None
    # A replay allocates millions of short-lived objects and creates no cycles worth collecting:
    # pausing the cyclic GC saves ~8 % of the CPU (re-enabled as soon as the loop ends).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        after_now = _ingest_all(source, agg, decoder, invalid, now_ms, hold)
    finally:
        if gc_was_enabled:
            gc.enable()
    outliers_from = None
    if hold is not None:
        kept, after_now, outliers_from = hold.finish()
        agg.ingest(kept)
    if now_ms is None:
        now_ms = agg.default_now() or 0
    return ReplayResult(agg.snapshot(now_ms), invalid, agg, after_now, outliers_from)


class OutlierHold:
    """Keeps far-future outliers (one event stamped 2030 in a log of 2026) out of the aggregator, so
    that the default ``now`` is not moved years ahead by them, making every real event too old.

    The rule, on the event times of the whole input sorted oldest first: the candidates are the newest
    ``k`` events, ``k = min(max(n // 1000, 10), 1000, n - 1)``; the first candidate (oldest first) more
    than `OUTLIER_GAP_MS` after the event before it, and every newer event, are outliers.

    Streaming, without keeping every time: only the 1001 newest times are kept (every candidate and
    the event just below them). An outlier is later than ``q + gap``, where ``q`` is the 1001st newest
    time of the whole input; ``q`` only grows as events arrive, so an outlier is also later than that
    bound computed on what has been read so far. Events later than the current bound are therefore held
    back (a few: they are among the 1000 newest so far), and released into the aggregator once the
    bound passes them; the rest are ingested at once. The order of ingestion does not change any
    window: a ring counts exactly the events within its retention of its newest bucket, whatever the
    order (only how many were counted `too_old` on the way may differ).
    """

    def __init__(self) -> None:
        self._top = np.empty(0, np.int64)  # the OUTLIER_MAX + 1 newest times so far (unordered)
        self._held: list[EventBatch] = []
        self.events = 0

    def _bound(self) -> int | None:
        """Events later than this may be outliers (None: any event may be, too few read yet)."""
        if len(self._top) <= OUTLIER_MAX:
            return None
        return int(self._top.min()) + OUTLIER_GAP_MS

    def admit(self, batch: EventBatch) -> EventBatch:
        """The events of ``batch`` (and of those held before) that cannot be outliers; holds the rest."""
        if not len(batch):
            return batch
        self.events += len(batch)
        ts = batch.ts_ms
        keep = OUTLIER_MAX + 1
        floor = self._bound()
        fresh = ts if floor is None else ts[ts > int(self._top.min())]
        if len(fresh):
            top = np.concatenate([self._top, fresh])
            self._top = np.partition(top, len(top) - keep)[-keep:] if len(top) > keep else top
        bound = self._bound()
        if bound is None:
            self._held.append(_detached(batch))
            return EventBatch.empty()
        later = ts > bound
        parts = [batch.take(np.flatnonzero(~later))] if later.any() else [batch]
        if later.any():
            self._held.append(_detached(batch.take(np.flatnonzero(later))))
        if self._held and min(int(b.ts_ms.min()) for b in self._held) <= bound:
            held = EventBatch.concat(self._held)
            release = held.ts_ms <= bound
            parts.append(held.take(np.flatnonzero(release)))
            rest = held.take(np.flatnonzero(~release))
            self._held = [rest] if len(rest) else []
        return parts[0] if len(parts) == 1 else EventBatch.concat(parts)

    def finish(self) -> tuple[EventBatch, int, int | None]:
        """At the end of the input: (the held events that are not outliers, how many are, the oldest
        outlier's time or None)."""
        held = EventBatch.concat(self._held) if self._held else EventBatch.empty()
        self._held = []
        cut = outlier_cut(self._top, self.events)
        if cut is None:
            return held, 0, None
        out = held.ts_ms >= cut
        return held.take(np.flatnonzero(~out)), int(np.count_nonzero(out)), cut


def outlier_cut(newest: I64, n: int) -> int | None:
    """The time from which events are outliers (see `OutlierHold`), given at least the ``k + 1`` newest
    of the ``n`` event times; None when there are none."""
    k = min(max(n // OUTLIER_SHARE, OUTLIER_MIN), OUTLIER_MAX, n - 1)
    if k <= 0:
        return None
    top = np.sort(newest)[-(k + 1) :]
    gaps = np.flatnonzero(np.diff(top) > OUTLIER_GAP_MS)
    return None if not len(gaps) else int(top[gaps[0] + 1])


def _detached(batch: EventBatch) -> EventBatch:
    """``batch`` with labels of its own: the aggregator may reset the shared vocabularies (`Vocab.reset`)
    while it is held."""
    vocabs = Vocabs()
    return EventBatch(
        ts_ms=batch.ts_ms,
        status=batch.status,
        latency_ms=batch.latency_ms,
        service=LabelColumn.of(batch.service.tolist(), vocabs.service),
        endpoint=LabelColumn.of(batch.endpoint.tolist(), vocabs.endpoint),
        customer=LabelColumn.of(batch.customer.tolist(), vocabs.customer),
    )


def keep_freed_memory() -> None:
    """Ask glibc's malloc to keep freed memory mapped instead of handing it back to the system at once.

    A replay allocates and frees numpy temporaries of a few hundred KiB thousands of times a second.
    By default glibc returns the top of its heap whenever more than 128 KiB of it is free (and maps big
    blocks separately), so the next allocation page-faults afresh: measured ~40 ms of CPU per million
    events. With both thresholds raised the pages are reused (peak RSS about unchanged, measured:
    nothing more is allocated, it is only kept). The setting is process-wide and stays: freed memory
    goes back to the system at exit rather than as it is freed. No-op where the C library has no
    `mallopt`.
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 256 << 20)


def _ingest_all(
    source: EventSource,
    agg: Aggregator,
    decoder: Decoder,
    invalid: Rejections,
    now_ms: int | None,
    hold: OutlierHold | None,
) -> int:
    """Decode and absorb every record; returns how many valid events were at or after ``now_ms``."""
    after_now = 0
    for record in source.records():
        batch = decoder.decode(record, invalid)
        if hold is not None:
            batch = hold.admit(batch)
        if now_ms is not None and len(batch):
            # Events at or after `now` are in no window at `now`; letting them move the rings'
            # head would only evict what `now` still needs.
            later = batch.ts_ms >= now_ms
            if later.any():
                after_now += int(later.sum())
                batch = batch.take(np.nonzero(~later)[0])
        agg.ingest(batch)
    return after_now


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most a few times a second, and always at the end.

    Progress is in bytes as stored (compressed for gzip) over every file. Throttling alone used to skip
    the last update (it came within 0.2 s of the one before), leaving the bar at e.g. 77 %: an update
    that reaches the total is always drawn, and `finish` draws 100 % once the input is read.
    """

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._start = time.monotonic()
        self._done = 0
        self._total: int | None = None

    def __call__(self, done: int, total: int | None) -> None:
        self._done, self._total = done, total
        now = time.monotonic()
        if not total or (now - self._last < 0.2 and done < total):
            return
        self._last = now
        self._draw(done, total, now)

    def _draw(self, done: int, total: int, now: float) -> None:
        frac = min(done / total, 1.0)
        width = 30
        fill = int(frac * width)
        rate = done / max(now - self._start, 1e-9) / 2**20
        print(
            f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {frac * 100:5.1f}% {rate:6.1f} MiB/s",
            end="",
            file=self.stream,
            flush=True,
        )

    def finish(self) -> None:
        """The input is read to its end: draw 100 % (a gzip reader's position can stop short of the
        file's size by its trailer)."""
        if self._total:
            self._draw(self._total, self._total, time.monotonic())

    def close(self) -> None:
        print(file=self.stream)


def wants_progress(paths: Iterable[str], mode: str) -> bool:
    if mode == "never":
        return False
    big = any(p != "-" and os.path.isfile(p) and os.path.getsize(p) >= PROGRESS_MIN_BYTES for p in paths)
    return big and (mode == "always" or sys.stderr.isatty())
