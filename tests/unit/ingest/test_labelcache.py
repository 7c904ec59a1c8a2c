"""`LabelCache` on its own, against a dict: every lookup gives the id cached for exactly those bytes or -1,
through growth (more entries, longer labels), probing (crowded slots, the table's end), a vocabulary reset,
and lookups of every size in turn (their gathers reuse buffers: a returned array is never overwritten)."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from sloguard._types import U64, Intp
from sloguard.core.model import Vocab
from sloguard.ingest.labelcache import LABEL_WORDS, LabelCache, StrLabels


def scan(labels: list[bytes], extra_words: int = 1) -> tuple[list[U64], Intp]:
    """The fast path's view of the labels: words zero past each label's end, one word more than the
    longest needs (the scan reads the word holding the closing quote)."""
    n_words = max(-(-len(b) // 8) for b in labels) + extra_words
    buf = np.zeros((len(labels), 8 * n_words), np.uint8)
    for i, b in enumerate(labels):
        buf[i, : len(b)] = np.frombuffer(b, np.uint8)
    words = buf.view(np.uint64)
    return [words[:, k].copy() for k in range(n_words)], np.array([len(b) for b in labels], np.intp)


def cache_labels(cache: LabelCache, labels: list[bytes]) -> dict[bytes, int]:
    words, lengths = scan(labels)
    ids = cache.vocab.encode([b.decode() for b in labels])
    cache.add(cache.hashes(words, lengths), words, lengths, ids)
    return dict(zip(labels, ids.tolist(), strict=True))


def lookup(cache: LabelCache, labels: list[bytes], extra_words: int = 1) -> list[int]:
    words, lengths = scan(labels, extra_words)
    ids: list[int] = cache.lookup(words, lengths, cache.hashes(words, lengths)).tolist()
    return ids


def scan_hashed(cache: LabelCache, labels: list[bytes]) -> tuple[list[U64], Intp, U64]:
    words, lengths = scan(labels)
    return words, lengths, cache.hashes(words, lengths)


def label(rnd: random.Random) -> bytes:
    n = rnd.choice([1, 7, 8, 9, 15, 16, 17, 30, 8 * LABEL_WORDS])
    return bytes(rnd.choice(b"abc\x00") for _ in range(n))


@pytest.mark.parametrize("crowded", [False, True], ids=["spread", "crowded-slots"])
def test_lookups_give_exactly_the_cached_ids(monkeypatch: pytest.MonkeyPatch, crowded: bool) -> None:
    if crowded:
        # Hashes with 64 distinct high parts (the slot) and 4096 low ones: long probe runs, wrapping
        # round the table's end, and labels sharing a hash.
        real = LabelCache.hashes

        def crowd(words: list[U64], lengths: Intp) -> U64:
            out: U64 = real(words, lengths) & np.uint64(0xFC00_0000_0000_0FFF)
            return out

        monkeypatch.setattr(LabelCache, "hashes", staticmethod(crowd))
    rnd = random.Random(3)
    cache = LabelCache(Vocab())
    known: dict[bytes, int] = {}
    for step in range(30):
        fresh = list(dict.fromkeys(label(rnd) for _ in range(rnd.randrange(1, 200))) - known.keys())
        if fresh:
            known |= cache_labels(cache, fresh)
        asked = [
            label(rnd) if rnd.random() < 0.3 else rnd.choice(list(known))
            for _ in range(rnd.randrange(1, 1500))
        ]
        ids = cache.lookup(*scan_hashed(cache, asked))
        held = ids.tolist()
        want = [known.get(b, -1) for b in asked]
        if crowded:
            # A label whose hash another cached label has may be left out of the table: a miss, never
            # another label's id.
            labels = list(known)
            shared = Counter(cache.hashes(*scan(labels)).tolist())
            hashes = dict(zip(labels, cache.hashes(*scan(labels)).tolist(), strict=True))
            for b, got, w in zip(asked, held, want, strict=True):
                assert got == w or (got == -1 and shared[hashes[b]] > 1), step
        else:
            assert held == want, step
        # A later lookup (smaller, then larger) leaves the ids returned before as they were.
        lookup(cache, asked[:1])
        lookup(cache, asked * 2)
        assert ids.tolist() == held, step


def test_labels_longer_than_any_cached_and_padded_rows() -> None:
    cache = LabelCache(Vocab())
    known = cache_labels(cache, [b"a", b"b" * 8])
    assert lookup(cache, [b"a", b"b" * 8, b"b" * 9, b"b" * 8 + b"\x00", b"a" * 40]) == [
        known[b"a"],
        known[b"b" * 8],
        -1,
        -1,
        -1,
    ]
    # Rows read with more zero words than the cache keeps per label still match.
    assert lookup(cache, [b"a", b"b" * 8], extra_words=5) == [known[b"a"], known[b"b" * 8]]
    # A longer label widens the records; the earlier ones are still found.
    known |= cache_labels(cache, [b"c" * 100])
    assert lookup(cache, [b"c" * 100, b"a", b"b" * 8]) == [known[b"c" * 100], known[b"a"], known[b"b" * 8]]


def test_a_reset_vocabulary_empties_the_cache() -> None:
    vocab = Vocab()
    cache = LabelCache(vocab)
    cache_labels(cache, [b"x", b"y"])
    vocab.reset()
    assert lookup(cache, [b"x", b"y"]) == [-1, -1]
    known = cache_labels(cache, [b"y"])
    assert lookup(cache, [b"x", b"y"]) == [-1, known[b"y"]]


@pytest.mark.parametrize("nul", [False, True], ids=["no-nul", "a-label-holds-nul"])
def test_str_labels_read_each_label_whole(nul: bool) -> None:
    """`StrLabels` joins the labels with NULs and finds their lengths from those; a label holding a NUL
    itself takes the per-row lengths instead. Either way: the ids `Vocab.encode` gives."""
    rnd = random.Random(8)
    pool = [
        "",
        "a",
        "ab",
        *("x" * k for k in (7, 8, 9, 16, 8 * LABEL_WORDS)),
        *(f"c-{i:06d}" for i in range(40)),
    ]
    mine, ref = Vocab(), Vocab()
    labels = StrLabels(LabelCache(mine))
    for step in range(50):
        values = [rnd.choice(pool) for _ in range(rnd.randrange(1, 400))]
        if rnd.random() < 0.3:
            values[0] = values[-1] = ""
        if nul:
            values[rnd.randrange(len(values))] = rnd.choice(["\x00", "a\x00", "\x00b" * 3])
        got = labels.ids(values)
        assert got is not None, step
        assert got.tolist() == ref.encode(values).tolist(), step
        assert mine.names == ref.names, step
    assert labels.ids(["a", "y" * (8 * LABEL_WORDS + 1)]) is None
