"""Label ids through `StrLabels` (a big vocabulary): the same ids and the same vocabulary, in the same
order, as `Vocab.encode`; and whole decodes equal to those of a decoder that never uses it."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sloguard.core.model import Rejections, Vocab, Vocabs
from sloguard.ingest.columns import Columns, Pending
from sloguard.ingest.decode import Decoder
from sloguard.ingest.framing import PIECE_BYTES
from sloguard.ingest.labelcache import LABEL_WORDS, LabelCache, StrLabels
from tests.fuzz.generator import Fuzzer

BIG = StrLabels.MIN_NAMES + 100


def prefilled(n: int = BIG) -> Vocabs:
    vocabs = Vocabs()
    for dim in ("service", "endpoint", "customer"):
        vocabs[dim].encode([f"{dim}-{i:06d}" for i in range(n)])
    return vocabs


def odd_labels(rnd: random.Random) -> list[str]:
    """Labels around the 8-byte word boundaries, sharing prefixes, with NULs, empty, too long for the
    cache, non-ASCII, and already known ones."""
    pool = [
        "",
        "\x00",
        "a",
        "a\x00",
        "a\x00\x00",
        *("x" * k for k in range(1, 8 * LABEL_WORDS + 2)),
        *(f"c-{rnd.randrange(50):06d}" for _ in range(20)),
        "customer-000007",
        "é",
        "a\ud800",  # a lone surrogate (JSON "\\ud800"): not encodable
        "\x7f\x01",
    ]
    return [rnd.choice(pool) for _ in range(rnd.randrange(1, 300))]


def test_ids_equal_vocab_encode() -> None:
    rnd = random.Random(5)
    mine, ref = Vocab(), Vocab()
    labels = StrLabels(LabelCache(mine))
    for step in range(300):
        if rnd.random() < 0.02:
            mine.reset()
            ref.reset()
        values = odd_labels(rnd)
        got = labels.ids(values)
        want = ref.encode(values)
        if got is None:  # not ASCII or too long: the caller encodes through the dict
            assert any(not v.isascii() or len(v) > 8 * LABEL_WORDS for v in values), step
            got = mine.encode(values)
        assert got.tolist() == want.tolist(), step
        assert mine.names == ref.names, step


def test_packed_ids_equal_ids() -> None:
    # What `Assembler.batch` does with the pieces' `Pending` customers: one call on their packed strings,
    # the same ids and vocabulary as `ids` on the list (and `Vocab.encode`); a piece with a NUL in a
    # customer stays a list, read back as it was.
    rnd = random.Random(8)
    mine, ref = Vocab(), Vocab()
    labels = StrLabels(LabelCache(mine))
    for step in range(300):
        pieces = [Pending.of(odd_labels(rnd)) for _ in range(rnd.randrange(1, 4))]
        values = [v for p in pieces for v in p.names()]
        want = ref.encode(values)
        if all(p.values is None for p in pieces):
            assert all("\x00" not in v for v in values), step
            got = labels.ids_packed("\x00".join(p.packed for p in pieces), sum(len(p) for p in pieces))
            if got is None:
                assert any(not v.isascii() or len(v) > 8 * LABEL_WORDS for v in values), step
                got = mine.encode(values)
        else:
            assert any("\x00" in v for v in values), step
            got = mine.encode(values)
        assert got.tolist() == want.tolist(), step
        assert mine.names == ref.names, step


@pytest.mark.parametrize("values", [[], [""], ["", ""], ["a\x00"], ["\x00", "b"], ["a", "b"]])
def test_pending_keeps_every_customer(values: list[str]) -> None:
    pending = Pending.of(values)
    assert len(pending) == len(values) and pending.names() == values
    assert (pending.values is None) == (bool(values) and not any("\x00" in v for v in values))


def test_hash_collisions_keep_labels_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every label hashes alike: the cache must tell them apart by their bytes.
    same = staticmethod(lambda words, lengths: lengths.astype("uint64") * 0)
    monkeypatch.setattr(LabelCache, "hashes", same)
    mine, ref = Vocab(), Vocab()
    labels = StrLabels(LabelCache(mine))
    rnd = random.Random(2)
    for _ in range(30):
        values = [f"k{rnd.randrange(40)}" for _ in range(rnd.randrange(1, 100))]
        got = labels.ids(values)
        assert got is not None
        assert got.tolist() == ref.encode(values).tolist()
        assert mine.names == ref.names


def ascii_records(n: int) -> list[bytes]:
    """Messages of the benchmark's shape (ASCII labels, new and known customers), some lines bad: a
    missing, empty, null or too long customer, a bad status."""
    rnd = random.Random(9)
    out = []
    for i in range(n):
        lines = []
        for j in range(rnd.randrange(1, 120)):
            customer = rnd.choice(
                [f'"customer-{rnd.randrange(BIG):06d}"', f'"c-{rnd.randrange(3000)}"', f'"c-{j}"']
                + ['""', "null", '"' + "z" * 300 + '"'] * (rnd.random() < 0.02)
            )
            status = 200 if rnd.random() < 0.99 else 700
            lines.append(
                b'{"ts": %d, "service": "s%d", "endpoint": "GET /e%d", "customer": %s, "status": %d,'
                b' "latency_ms": 12.5, "trace": {"id": "%x"}}'
                % (1_767_225_600_000 + i, rnd.randrange(3), rnd.randrange(5), customer.encode(), status, j)
            )
        out.append(b"\n".join(lines))
    return out


@pytest.mark.parametrize("fast_path", [False, True])
@pytest.mark.parametrize("corpus", ["fuzz", "ascii"])
def test_decodes_equal_a_decoder_without_it(
    monkeypatch: pytest.MonkeyPatch, fast_path: bool, corpus: str
) -> None:
    # Messages joined into buffers of a few hundred KiB too, so that the bulk and fast paths take part.
    records = [r.data for r in Fuzzer(seed=14).records(3000)] if corpus == "fuzz" else ascii_records(3000)
    calls = [records[i : i + k] for i, k in zip(range(0, 3000, 60), [1, 5, 60] * 20, strict=False)]
    calls.append([b"\n".join(records * 3)])

    def run() -> tuple[list[object], Vocabs, dict[str, int], list[tuple[str, bytes]]]:
        vocabs = prefilled()
        decoder = Decoder(vocabs=vocabs, fast_path=fast_path)
        rejections = Rejections()
        rejected: list[tuple[str, bytes]] = []
        out: list[object] = []
        for call in calls:
            b = decoder.decode_many(call, rejections, rejected)
            out.append(
                (
                    b.ts_ms.tolist(),
                    b.status.tolist(),
                    b.latency_ms.tolist(),
                    b.service.codes.tolist(),
                    b.endpoint.codes.tolist(),
                    b.customer.codes.tolist(),
                )
            )
        return out, vocabs, rejections.counts, rejected

    with monkeypatch.context() as m:
        m.setattr(StrLabels, "MIN_NAMES", 10**12)  # never
        want, want_vocabs, want_counts, want_rejected = run()
    got, got_vocabs, got_counts, got_rejected = run()
    assert got == want
    for dim in ("service", "endpoint", "customer"):
        assert got_vocabs[dim].names == want_vocabs[dim].names
    assert got_counts == want_counts
    assert got_rejected == want_rejected


def test_vocabulary_crossing_the_limit_within_a_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    # A buffer of many pieces whose new customers take the vocabulary past `MIN_NAMES` in its middle:
    # the first pieces' customers are interned as they are read, the later ones' once for the run
    # (`Columns.pending`); same ids and vocabulary order as a decoder that never defers.
    rnd = random.Random(4)
    buf = b"\n".join(
        b'{"ts": %d, "service": "s1", "endpoint": "GET /e", "customer": "c-%d", "status": 200,'
        b' "latency_ms": 1.5, "trace": {"id": "%x"}}' % (1_767_225_600_000 + i, rnd.randrange(9000), i)
        for i in range(20_000)
    )
    assert len(buf) > 4 * PIECE_BYTES
    mixed: list[bool] = []
    concat = Columns.concat
    start = StrLabels.MIN_NAMES - 2000

    def spy(parts: list[Columns]) -> Columns:
        mixed.append(len(parts[0].customer) > 0 and len(parts[-1].pending) > 0)
        return concat(parts)

    def run() -> tuple[list[int], list[str], dict[str, int]]:
        vocabs = prefilled(start)
        decoder = Decoder(vocabs=vocabs, fast_path=False)
        rejections = Rejections()
        batch = decoder.decode_many([buf], rejections)
        return batch.customer.codes.tolist(), vocabs.customer.names, rejections.counts

    with monkeypatch.context() as m:
        m.setattr(StrLabels, "MIN_NAMES", 10**12)  # never
        want = run()
    monkeypatch.setattr(Columns, "concat", staticmethod(spy))
    assert run() == want
    assert any(mixed)


def test_concat_refuses_ids_after_pending_customers() -> None:
    def part(ids: list[int], pending: list[str]) -> Columns:
        n = len(ids) + len(pending)
        zeros = np.zeros(n, np.intp)
        labels = (zeros, zeros, np.array(ids, np.intp))
        held = [Pending.of(pending)] if pending else []
        return Columns([0] * n, np.zeros(n, np.int64), np.zeros(n), labels, None, None, held)

    joined = Columns.concat([part([1, 2], []), part([3], ["a"]), part([], ["b", "c"])])
    assert joined.customer.tolist() == [1, 2, 3]
    assert [v for p in joined.pending for v in p.names()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="pending"):
        Columns.concat([part([], ["a"]), part([1], [])])
