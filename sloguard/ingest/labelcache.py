"""The fast path's label ids: label bytes -> `Vocab` id without a Python object per row.

`LabelCache` is an open-addressing hash table held in numpy arrays, keyed by a label's length and its
8-byte words; `LabelScan` is one label column of a scanned buffer, resolved against the cache and, for
the labels it does not know yet, against the `Vocab` (interning new labels in order of first appearance,
exactly as the msgspec path does).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from sloguard._types import U64, Intp
from sloguard.core.model import Vocab
from sloguard.ingest.swar import N32, Run, low_bytes

__all__ = ["LABEL_WORDS", "LabelCache", "LabelScan", "StrLabels"]

LABEL_WORDS: Final = 16  # labels of up to 16 * 8 bytes take the fast path

# Odd 64-bit multipliers of the label hash (any will do: the cache verifies every hit).
_HASH_MULS: Final = [
    np.uint64((0x9E37_79B9_7F4A_7C15 * (2 * k + 1)) & low_bytes(8) | 1) for k in range(LABEL_WORDS + 2)
]
_HASH_MIX: Final = np.uint64(0xBF58_476D_1CE4_E5B9)


class LabelCache:
    """Label bytes -> `Vocab` id for the fast path: an open-addressing hash table in numpy arrays.

    Only a cache: a hit is verified byte for byte (length and every word), a miss is resolved through the
    `Vocab` in Python, then cached. Hash collisions can cost time, never correctness.
    """

    __slots__ = (
        "_gen",
        "_hashes",
        "_ids",
        "_lengths",
        "_n",
        "_shift",
        "_slot_entry",
        "_slot_hash",
        "_word_rows",
        "_words",
        "vocab",
    )

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self._clear()

    def _clear(self) -> None:
        self._gen = self.vocab.generation
        self._n = 0
        self._words = np.zeros((LABEL_WORDS + 1, 64), np.uint64)  # [k, entry]
        self._word_rows = 0  # rows of `_words` ever written (labels of up to 8 * this many bytes)
        self._lengths = np.zeros(64, np.intp)
        self._ids = np.zeros(64, np.intp)
        self._hashes = np.zeros(64, np.uint64)
        self._resize(256)

    def _resize(self, slots: int) -> None:
        self._shift = 64 - (slots.bit_length() - 1)
        self._slot_entry = np.full(slots, -1, np.intp)
        self._slot_hash = np.zeros(slots, np.uint64)
        self._place(np.arange(self._n, dtype=np.intp))

    def _place(self, entries: Intp) -> None:
        """Put entries in their slots (linear probing, all at once). An entry meeting a cached one with
        the same hash is left out: its label stays a miss, resolved by its bytes each time."""
        mask = len(self._slot_entry) - 1
        h = self._hashes[entries]
        slot = (h >> np.uint64(self._shift)).astype(np.intp)
        while len(entries):
            free = self._slot_entry[slot] < 0
            settled = ~free & (self._slot_hash[slot] == h)
            candidates = np.flatnonzero(free)
            if len(candidates):
                # Of the entries reaching the same free slot, the first takes it; the others probe on.
                _, first = np.unique(slot[candidates], return_index=True)
                won = candidates[first]
                self._slot_entry[slot[won]] = entries[won]
                self._slot_hash[slot[won]] = h[won]
                settled[won] = True
            slot = np.where(free, slot, (slot + 1) & mask)
            keep = ~settled
            entries, h, slot = entries[keep], h[keep], slot[keep]

    @staticmethod
    def hashes(words: list[U64], lengths: Intp) -> U64:
        """The hash of each row's label, from its length and its words (zero past its end)."""
        h = lengths.astype(np.uint64)
        h *= _HASH_MULS[0]
        for k, w in enumerate(words):
            h += w * _HASH_MULS[k + 1]
        h ^= h >> N32
        h *= _HASH_MIX
        return h

    def lookup(self, words: list[U64], lengths: Intp, h: U64) -> Intp:
        """Ids of the rows' labels, -1 where the label is not cached."""
        if self.vocab.generation != self._gen:
            self._clear()  # the vocabulary was reset: its ids changed meaning
        if self._n == 0:
            return np.full(len(h), -1, np.intp)
        slot = (h >> np.uint64(self._shift)).astype(np.intp)
        entry = self._slot_entry.take(slot)
        hit = self._slot_hash.take(slot) == h
        probing = np.flatnonzero((entry >= 0) & ~hit)
        mask = len(self._slot_entry) - 1
        while len(probing):  # linear probing, for the few rows whose slot holds another hash
            slot_p = (slot[probing] + 1) & mask
            slot[probing] = slot_p
            e_p = self._slot_entry[slot_p]
            h_p = self._slot_hash[slot_p] == h[probing]
            entry[probing] = e_p
            hit[probing] = h_p
            probing = probing[(e_p >= 0) & ~h_p]
        # An empty slot's entry is -1: take() reads the last entry there, and `hit & entry >= 0` drops it.
        hit &= entry >= 0
        hit &= self._lengths.take(entry) == lengths
        for k, w in enumerate(words):
            hit &= self._words[k].take(entry) == w
        ids: Intp = np.where(hit, self._ids.take(entry), -1)
        return ids

    def add(self, h: U64, words: list[U64], lengths: Intp, ids: Intp) -> None:
        """Cache labels (their hashes, words and lengths as `hashes` saw them) as vocabulary `ids`."""
        n0, n1 = self._n, self._n + len(h)
        if n1 > len(self._ids):
            grow = max(n1, 2 * len(self._ids)) - len(self._ids)
            # Only the rows written so far are copied: the others stay calloc'd zeros, never resident
            # (17 rows of 8 bytes per label otherwise: ~18 MiB at 100k names of 8 bytes).
            grown = np.zeros((len(self._words), self._words.shape[1] + grow), np.uint64)
            grown[: self._word_rows, :n0] = self._words[: self._word_rows, :n0]
            self._words = grown
            self._lengths = np.concatenate([self._lengths, np.zeros(grow, np.intp)])
            self._ids = np.concatenate([self._ids, np.zeros(grow, np.intp)])
            self._hashes = np.concatenate([self._hashes, np.zeros(grow, np.uint64)])
        for k, w in enumerate(words):
            self._words[k, n0:n1] = w
        self._word_rows = max(self._word_rows, len(words))
        self._lengths[n0:n1] = lengths
        self._ids[n0:n1] = ids
        self._hashes[n0:n1] = h
        self._n = n1
        slots = len(self._slot_entry)
        if n1 * 4 > slots:
            while n1 * 4 > slots:
                slots *= 2
            self._resize(slots)
        else:
            self._place(np.arange(n0, n1, dtype=np.intp))


class LabelScan:
    """One label column of a scanned buffer: where each row's label sits, its words, hash and id."""

    __slots__ = ("cache", "hashes", "ids", "length", "start", "words")

    def __init__(
        self, cache: LabelCache, start: Intp, length: Intp, words: list[U64], hashes: U64, ids: Intp
    ) -> None:
        self.cache = cache
        self.start = start
        self.length = length
        self.words = words  # word k of every row's label, zero past its end
        self.hashes = hashes
        self.ids = ids  # -1 until resolved

    def resolve(self, buf: bytes, r0: int, r1: int) -> None:
        """Give ids to the labels of rows `r0:r1` the cache did not know, interning new ones in row order
        (first appearance, the order in which the msgspec path interns them)."""
        miss = np.flatnonzero(self.ids[r0:r1] < 0)
        if len(miss) == 0:
            return
        miss += r0
        cache, vocab = self.cache, self.cache.vocab
        # Group the misses by hash. If every row of a group has its group's bytes (checked exactly), a
        # group is one label. Otherwise (a hash collision) group them by their bytes, in Python.
        _, first, inverse = np.unique(self.hashes[miss], return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        reps = miss[first]
        same = self.length[miss] == self.length[reps][inverse]
        for w in self.words:
            same &= w[miss] == w[reps][inverse]
        if not bool(same.all()):
            # Rows sharing a hash but not their bytes: keep each label's first row, by bytes.
            first_rows: dict[bytes, int] = {}
            for r, s, n in zip(
                miss.tolist(), self.start[miss].tolist(), self.length[miss].tolist(), strict=True
            ):
                first_rows.setdefault(buf[s : s + n], r)
            reps = np.array(list(first_rows.values()), np.intp)
            first = np.arange(len(reps))
        # Intern the new labels in order of first appearance, then cache them all at once.
        order = np.argsort(first)
        ids = np.empty(len(reps), np.intp)
        intern = vocab.intern
        ids[order] = [
            intern(buf[s : s + n].decode("ascii"))
            for s, n in zip(self.start[reps[order]].tolist(), self.length[reps[order]].tolist(), strict=True)
        ]
        cache.add(self.hashes[reps], [w[reps] for w in self.words], self.length[reps], ids)
        if bool(same.all()):
            self.ids[miss] = ids[inverse]
        else:
            by_label = {
                buf[s : s + n]: vid
                for s, n, vid in zip(
                    self.start[reps].tolist(), self.length[reps].tolist(), ids.tolist(), strict=True
                )
            }
            self.ids[miss] = [
                by_label[buf[s : s + n]]
                for s, n in zip(self.start[miss].tolist(), self.length[miss].tolist(), strict=True)
            ]


# Byte masks keeping the first r bytes of a word, r = 0 .. 8.
_KEEP_BYTES: Final = np.array([low_bytes(r) for r in range(9)], np.uint64)


class StrLabels:
    """Vocabulary ids of decoded label strings through a `LabelCache`, for a big vocabulary.

    A dict lookup per row costs a few cache misses once the vocabulary's dict outgrows the CPU caches
    (~90 ns a row at 1k names, ~320 ns at 100k, in-process), and Python does them one after the other;
    the cache's numpy gathers overlap them (~125 ns a row at 1k, ~180 ns at 100k). `ids` is therefore
    only used from `MIN_NAMES` names on. The rows are joined into one byte buffer and read like the fast
    path's label columns (`LabelScan`): same ids, new labels interned in order of first appearance, as
    `Vocab.encode` does.
    """

    MIN_NAMES: Final = 16_384  # measured crossover ~10k names

    __slots__ = ("_primed", "cache")

    def __init__(self, cache: LabelCache) -> None:
        self.cache = cache
        self._primed = -1  # the vocabulary generation whose names were put in the cache at once

    def ids(self, values: list[str]) -> Intp | None:
        """Ids of `values` (interning new ones), or None when a value is not ASCII or longer than the
        cache's labels (the caller then uses `Vocab.encode`)."""
        vocab = self.cache.vocab
        if self._primed != vocab.generation:
            # The names interned before (by the dict, below `MIN_NAMES`): cached now in one go rather
            # than missed one batch at a time (a miss costs ~10x a hit). Known names: nothing interned.
            self._primed = vocab.generation
            limit = 8 * LABEL_WORDS
            known = [v for v in vocab.names if len(v) <= limit and v.isascii()]
            for i in range(0, len(known), 65_536):
                self._ids(known[i : i + 65_536])
        return self._ids(values)

    def _ids(self, values: list[str]) -> Intp | None:
        n = len(values)
        if n == 0:
            return None
        lengths = np.fromiter(map(len, values), np.intp, n)
        top = int(lengths.max())
        if top > 8 * LABEL_WORDS:
            return None
        try:
            joined = "".join(values).encode("ascii")  # ASCII: one byte per character
        except UnicodeEncodeError:
            return None
        starts = np.zeros(n, np.intp)
        np.cumsum(lengths[:-1], out=starts[1:])
        # Zero padding: a row's words are read up to `top` bytes past its start.
        arr = np.zeros(-(-len(joined) // 8) * 8 + 8 * (LABEL_WORDS + 2), np.uint8)
        arr[: len(joined)] = np.frombuffer(joined, np.uint8)
        run = Run(arr.view(np.uint64), starts)
        words: list[U64] = []
        for k in range(-(-top // 8)):
            w = run.next()
            w &= _KEEP_BYTES.take(np.clip(lengths - 8 * k, 0, 8))
            words.append(w)
        h = self.cache.hashes(words, lengths)
        scan = LabelScan(self.cache, starts, lengths, words, h, self.cache.lookup(words, lengths, h))
        scan.resolve(joined, 0, n)
        return scan.ids
