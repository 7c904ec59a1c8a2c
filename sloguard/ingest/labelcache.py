"""The fast path's label ids: label bytes -> `Vocab` id without a Python object per row.

`LabelCache` is an open-addressing hash table held in numpy arrays, keyed by a label's length and its
8-byte words; `LabelScan` is one label column of a scanned buffer, resolved against the cache and, for
the labels it does not know yet, against the `Vocab` (interning new labels in order of first appearance,
exactly as the msgspec path does).
"""

from __future__ import annotations

from typing import ClassVar, Final

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
#: Columns of a `LabelCache` record: length, id and a label's first two words.
_RECORD: Final = 4


class LabelCache:
    """Label bytes -> `Vocab` id for the fast path: an open-addressing hash table in numpy arrays.

    Only a cache: a hit is verified byte for byte (length and every word), a miss is resolved through the
    `Vocab` in Python, then cached. Hash collisions can cost time, never correctness.

    Laid out for the gathers of a lookup, one random read per table a row: a slot is one row of
    ``_slots`` (its label's hash and its entry, -1: empty), an entry one row of ``_records`` (length, id
    and the first two words: labels of up to 15 bytes, and 16 with the zero word the scan reads past
    them), the words of longer labels a row of ``_more``, read only for rows that have them. With the
    hash, entry, length, id and each word in arrays of their own, a lookup of 8-byte labels gathered
    from 6 arrays, each a cache miss at 100k labels (4 MB tables). Measured in-process (the real absorb
    step, 2M Zipf events, fast-path lines, A/B in one run): the lookups cost 73-96 -> 50-72 ns an event
    at 100k customers, 33-36 -> 37-38 at 1k.
    """

    __slots__ = (
        "_gen",
        "_hashes",
        "_more",
        "_n",
        "_records",
        "_shift",
        "_slots",
        "vocab",
    )

    #: Slots per cached label, at least (16 bytes each: 16 MiB at 100k labels). Rows whose slot holds
    #: another label probe on, a numpy pass a step until the batch's longest run ends (~4.6 steps for
    #: a 1500-row batch with the table a quarter full): an eighth full cost 13-30 % less a row than a
    #: quarter (lookups alone, in-process), a sixteenth a little less again for twice the memory.
    SPREAD: ClassVar[int] = 8

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self._clear()

    def _clear(self) -> None:
        self._gen = self.vocab.generation
        self._n = 0
        self._records = np.zeros((64, _RECORD), np.int64)  # [entry]: length, id, words 0-1 (as int64)
        self._more = np.zeros((64, 0), np.int64)  # [entry]: words 2.. (as many as the longest label's)
        self._hashes = np.zeros(64, np.uint64)  # [entry], for placing entries again on a resize
        self._resize(256)

    def _resize(self, slots: int) -> None:
        self._shift = 64 - (slots.bit_length() - 1)
        self._slots = np.full((slots, 2), -1, np.int64)  # [slot]: hash (as int64), entry
        self._place(np.arange(self._n, dtype=np.intp))

    def _place(self, entries: Intp) -> None:
        """Put entries in their slots (linear probing, all at once). An entry meeting a cached one with
        the same hash is left out: its label stays a miss, resolved by its bytes each time."""
        mask = len(self._slots) - 1
        h = self._hashes[entries]
        hs = h.view(np.int64)
        slot = (h >> np.uint64(self._shift)).astype(np.intp)
        slot_hash, slot_entry = self._slots[:, 0], self._slots[:, 1]
        while len(entries):
            free = slot_entry[slot] < 0
            settled = ~free & (slot_hash[slot] == hs)
            candidates = np.flatnonzero(free)
            if len(candidates):
                # Of the entries reaching the same free slot, the first takes it; the others probe on.
                _, first = np.unique(slot[candidates], return_index=True)
                won = candidates[first]
                slot_entry[slot[won]] = entries[won]
                slot_hash[slot[won]] = hs[won]
                settled[won] = True
            slot = np.where(free, slot, (slot + 1) & mask)
            keep = ~settled
            entries, hs, slot = entries[keep], hs[keep], slot[keep]

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
        hs = h.view(np.int64)
        slot = (h >> np.uint64(self._shift)).view(np.intp)  # below 2**56: the same value
        slots = self._slots
        got = slots.take(slot, axis=0)
        entry = got[:, 1]
        # Rows whose slot holds another label probe on, to an empty slot (-1) or one with their hash.
        probing = np.flatnonzero((got[:, 0] != hs) & (entry >= 0))
        if len(probing):
            mask = len(slots) - 1
            slot_p, hs_p = slot[probing], hs[probing]
            while len(probing):
                slot_p += 1
                slot_p &= mask
                got_p = slots.take(slot_p, axis=0)
                e_p = got_p[:, 1]
                entry[probing] = e_p
                on = (got_p[:, 0] != hs_p) & (e_p >= 0)
                probing, slot_p, hs_p = probing[on], slot_p[on], hs_p[on]
        # The entry found is verified byte for byte (-1, none: take() reads the last record there, and
        # `entry >= 0` drops it).
        records = self._records.take(entry, axis=0)
        hit = records[:, 0] == lengths
        hit &= entry >= 0
        for k, w in enumerate(words[: _RECORD - 2]):
            hit &= records[:, 2 + k] == w.view(np.int64)
        # Words past those cached are zero in a row as long as a cached label (a longer one fails the
        # length test): only the cached words need comparing.
        more = words[_RECORD - 2 : _RECORD - 2 + self._more.shape[1]]
        if more:
            got_more = self._more.take(entry, axis=0)
            for k, w in enumerate(more):
                hit &= got_more[:, k] == w.view(np.int64)
        ids: Intp = np.where(hit, records[:, 1], -1)
        return ids

    def add(self, h: U64, words: list[U64], lengths: Intp, ids: Intp) -> None:
        """Cache labels (their hashes, words and lengths as `hashes` saw them) as vocabulary `ids`."""
        n0, n1 = self._n, self._n + len(h)
        cap = len(self._records)
        width = self._more.shape[1]
        if n1 > cap or len(words) - (_RECORD - 2) > width:
            # Grown by doubling; `_more` as wide as the longest label's words (a row's words, zero past
            # its end, are never fewer than its label's).
            cap = max(n1, 2 * cap) if n1 > cap else cap
            records = np.zeros((cap, _RECORD), np.int64)
            records[:n0] = self._records[:n0]
            self._records = records
            more = np.zeros((cap, max(width, len(words) - (_RECORD - 2))), np.int64)
            more[:n0, :width] = self._more[:n0]
            self._more = more
            hashes = np.zeros(cap, np.uint64)
            hashes[:n0] = self._hashes[:n0]
            self._hashes = hashes
        records = self._records[n0:n1]
        records[:, 0] = lengths
        records[:, 1] = ids
        for k, w in enumerate(words[: _RECORD - 2]):
            records[:, 2 + k] = w.view(np.int64)
        for k, w in enumerate(words[_RECORD - 2 :]):
            self._more[n0:n1, k] = w.view(np.int64)
        self._hashes[n0:n1] = h
        self._n = n1
        slots = len(self._slots)
        if n1 * self.SPREAD > slots:
            while n1 * self.SPREAD > slots:
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
        self._prime()
        return self._ids(values)

    def ids_packed(self, packed: str, n: int) -> Intp | None:
        """`ids` of the ``n`` values joined by NULs in `packed` (none of which holds a NUL)."""
        self._prime()
        if n == 0:
            return None
        return self._ids_joined(packed, n, None)

    def _prime(self) -> None:
        vocab = self.cache.vocab
        if self._primed != vocab.generation:
            # The names interned before (by the dict, below `MIN_NAMES`): cached now in one go rather
            # than missed one batch at a time (a miss costs ~10x a hit). Known names: nothing interned.
            self._primed = vocab.generation
            limit = 8 * LABEL_WORDS
            known = [v for v in vocab.names if len(v) <= limit and v.isascii()]
            for i in range(0, len(known), 65_536):
                self._ids(known[i : i + 65_536])

    def _ids(self, values: list[str]) -> Intp | None:
        if not values:
            return None
        return self._ids_joined("\x00".join(values), len(values), values)

    def _ids_joined(self, packed: str, n: int, values: list[str] | None) -> Intp | None:
        """Ids of the ``n`` labels joined by NULs in `packed`; `values` are those labels, needed only if
        one may hold a NUL."""
        try:
            # ASCII: one byte per character. NUL-separated, so that the lengths come from the
            # separators' places, found by numpy, rather than a len() per row in Python (~30-45 ns a
            # row at 100k distinct labels in-process, more than the lookup).
            joined = packed.encode("ascii")
        except UnicodeEncodeError:
            return None
        raw = np.frombuffer(joined, np.uint8)
        starts = np.zeros(n, np.intp)
        if joined.count(0) == n - 1:
            seps = np.flatnonzero(raw == 0)
            starts[1:] = seps + 1
            lengths = np.empty(n, np.intp)
            lengths[:-1] = seps - starts[:-1]
            lengths[-1] = len(joined) - starts[-1]
        else:  # a label holds a NUL
            if values is None:
                raise ValueError("packed labels must not hold a NUL")
            lengths = np.fromiter(map(len, values), np.intp, n)
            np.cumsum(lengths[:-1] + 1, out=starts[1:])
        top = int(lengths.max())
        if top > 8 * LABEL_WORDS:
            return None
        # Zero padding: a row's words are read up to `top` bytes past its start.
        arr = np.zeros(-(-len(joined) // 8) * 8 + 8 * (LABEL_WORDS + 2), np.uint8)
        arr[: len(joined)] = raw
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
