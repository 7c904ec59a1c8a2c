"""Metric families → text exposition format 0.0.4, byte-identical to prometheus_client's ``generate_latest``.

Why a hand-written renderer: prometheus_client's ``generate_latest`` builds one ``Sample`` (with a label
dict) per sample and formats each one separately, about 4 µs a sample; at 10k SLO series that is seconds
per render. Here each `Block` has one label layout and one value column, its label values are escaped
once per tick (`SeriesLabels`), and each sample is one f-string. The tests check the bytes against
``generate_latest`` on the same families yielded by `SnapshotCollector.collect`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import msgspec
import numpy as np
import numpy.typing as npt
from prometheus_client.utils import floatToGoString

from sloguard._types import F64, I64, Bools, Intp
from sloguard.deflate import isal_zlib
from sloguard.export.model import Block, Family, escape_label_value

#: Content type of what `render` produces (the classic text format; no OpenMetrics negotiation).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Level 1: an exposition shrinks ~10x at level 1 already; level 6 costs 2.5x the CPU for ~20 % fewer
#: bytes (measured on a 55 MB exposition: 0.11 s vs 0.28 s). The daemon's gzip members are made with ISA-L
#: (`gzip_member`), whose level 1 is ~3x faster than zlib's and ~10 % smaller (20 MB of exposition: 19 vs
#: 55 ms, 2.4 vs 2.7 MB). ISA-L's level 0 saved no CPU on 4096-row pieces (a 100k-series render, A/B)
#: for 62 % more bytes (28.6 vs 17.7 MB), slower to decompress for a plain scrape.
GZIP_LEVEL = 1

# prometheus_client's float formatting (untyped upstream): Go's spelling, e.g. 1.2e+06, +Inf, NaN.
_float_to_go = cast("Callable[[float], str]", floatToGoString)


def quantile_label(percentile: float) -> str:
    """Percentile → the ``quantile`` label value: 50 → "0.5", 99.9 → "0.999" (not 0.9990000000000001)."""
    return _float_to_go(float(f"{percentile / 100:.12g}"))


@functools.cache
def _integral() -> npt.NDArray[np.object_]:
    """How prometheus_client spells the integers 0 .. 2**16 - 1 as floats ("0.0", "1.0", ...: ``repr``).
    Counts, 0/1 flags and zero ratios are most of an exposition's values: a lookup is ~3x cheaper than
    ``repr``. Made on first use (~5 ms), not at import: a replay that renders nothing does not pay it."""
    return np.array([f"{i}.0" for i in range(1 << 16)], dtype=object)


def format_values(values: F64) -> list[str]:
    """Sample values as prometheus_client writes them (``floatToGoString``), for a whole column.

    Integral values in `_integral`'s range (not -0.0) are looked up. ``floatToGoString`` returns
    ``repr`` for every other finite value below 1e6 in magnitude; of those, the ones that ``repr``
    writes without an exponent (0 and 1e-4 <= |v| < 1e6) are spelled by msgspec's JSON encoder in one
    call for the column: its Ryu shortest round-trip digits are ``repr``'s (both the shortest digits
    that read back as the value, the nearest of them, ties to even; checked on 54M values and by the
    tests), and it writes that range without an exponent too, ~5x cheaper than ``repr`` per value.
    Only the rest (NaN, ±Inf, tiny values, and large ones, which Go writes with an exponent) go
    through the slow function.
    """
    return _spell(values, "", "")


#: Columns shorter than this get their spellings affixed one by one (~50 ns a value): the distinct-value
#: table's numpy calls cost ~10-20 µs a column, which small blocks (latency groups, tests) would pay.
_AFFIXED_ONE_BY_ONE = 256
#: Columns shorter than this are spelled by ``floatToGoString`` itself, a value at a time (~0.3-0.5 µs):
#: less than the column's numpy calls (most blocks of a small exposition hold 1 or 2 samples).
_SPELLED_ONE_BY_ONE = 16


def _spell(values: F64, before: str, after: str) -> list[str]:
    """`format_values`, each spelling written between ``before`` and ``after`` (`_lines` lays a line's
    value and the constant texts around it as one part). The affixed spellings of the integral values
    are made once per distinct value of the column (a few hundred at most, for counts), the others in
    the one string the encoder wrote for them."""
    if len(values) < _SPELLED_ONE_BY_ONE:
        return [before + _float_to_go(v) + after for v in values.tolist()]
    if (before or after) and len(values) < _AFFIXED_ONE_BY_ONE:
        return [before + t + after for t in _spell(values, "", "")]
    spellings = _integral()
    with np.errstate(invalid="ignore"):  # NaN and ±Inf cast to garbage: never looked up
        ints = values.astype(np.int64)
    # (a negative int is a huge uint64: one comparison checks both ends of the table)
    looked_up = (ints == values) & (ints.view(np.uint64) < len(spellings)) & ~np.signbit(values)
    every = bool(looked_up.all())
    keys = ints if every else np.where(looked_up, ints, 0)
    if before or after:
        seen = np.flatnonzero(np.bincount(keys))
        affixed = np.empty(len(seen), object)
        affixed[:] = [before + t + after for t in spellings[seen].tolist()]
        at = np.empty(int(seen[-1]) + 1, np.intp)  # only the seen values' entries are read
        at[seen] = np.arange(len(seen))
        table = affixed[at[keys]]
    else:
        table = spellings[keys]
    if every:
        out: list[str] = table.tolist()
        return out
    rest = np.flatnonzero(~looked_up)
    odd = values[rest]
    with np.errstate(invalid="ignore"):
        mag = np.abs(odd)
        positional = (mag < 1e6) & ((mag >= 1e-4) | (mag == 0))
    # An object array: assigning a list of str to ``table[rest]`` would go through a '<U' array.
    spelled = np.empty(len(rest), object)
    if positional.all():
        spelled[:] = _json_floats(odd, before, after)
    else:
        p = np.flatnonzero(positional)
        spelled[p] = _json_floats(odd[p], before, after)
        q = np.flatnonzero(~positional)
        spelled[q] = [before + _float_to_go(v) + after for v in odd[q].tolist()]
    table[rest] = spelled
    out = table.tolist()
    return out


def _json_floats(values: F64, before: str = "", after: str = "") -> list[str]:
    """Finite floats as msgspec writes them in JSON (``repr``'s digits; see `format_values`), each
    between ``before`` and ``after``: the affixes are put around the commas of the encoder's one string
    (a NUL marks where to split; label values are not expected to hold one, and if they do each
    spelling is affixed on its own)."""
    if not len(values):
        return []
    text = msgspec.json.encode(values.tolist()).decode()[1:-1]
    if not (before or after):
        return text.split(",")
    if "\0" in before or "\0" in after:
        return [before + t + after for t in text.split(",")]
    return (before + text.replace(",", after + "\0" + before) + after).split("\0")


def _layout(
    name: str, dims: tuple[str, ...], const: tuple[tuple[str, str], ...]
) -> tuple[list[str], list[tuple[int, ...]]]:
    """`_make_layout`, kept per (family name, label names, constant labels): a block's layout is the same
    at every tick, and making it (escaping and formatting its constant labels) was ~3 µs a block, for
    every small block a render renders again (~1,800 a stage-2 publish). The lists are shared: read only."""
    key = (name, dims, const)
    made = _LAYOUTS.get(key)
    if made is None:
        if len(_LAYOUTS) >= _LAYOUTS_KEPT:
            _LAYOUTS.clear()  # (a bound, not an LRU: the layouts in use are made again at the next render)
        made = _LAYOUTS[key] = _make_layout(name, dims, const)
    return made


#: `_layout`'s memo, and how many layouts it keeps at most (an exposition's distinct block layouts: a few
#: per SLO window, tier and family, whatever the number of series).
_LAYOUTS: dict[
    tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]], tuple[list[str], list[tuple[int, ...]]]
] = {}
_LAYOUTS_KEPT = 1 << 16


def _make_layout(
    name: str, dims: tuple[str, ...], const: tuple[tuple[str, str], ...]
) -> tuple[list[str], list[tuple[int, ...]]]:
    """Split one block's sample line into constant text and per-series runs of label pairs.

    prometheus_client writes labels sorted by name, so a block's constant labels (slo, window, ...) can
    fall between its per-series ones. The line is ``texts[0] + run_0 + texts[1] + ... + texts[-1] +
    value``, where ``run_k`` is the per-series text of adjacent per-series labels ``runs[k]``. The
    layout's shape depends on the label names only (`_shape`, made once per set of names): a block's
    texts are its templates filled with the family name and the escaped constant values.
    """
    try:
        templates, runs = _shape(dims, tuple(n for n, _ in const))
    except ValueError:
        raise ValueError(f"{name}: duplicate label names in {dims} and {const}") from None
    fields = (name, *(escape_label_value(v) for _, v in const))
    return [t.format(*fields) for t in templates], list(runs)


@functools.lru_cache(maxsize=1024)
def _shape(
    dims: tuple[str, ...], names: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    """`_layout` for per-series labels ``dims`` and constant labels ``names``: its texts as `str.format`
    templates (field 0 the family name, field ``i + 1`` the ``i``-th constant's escaped value) and its
    runs. An exposition's blocks share a few sets of label names (an SLO's windows, tiers, budget):
    ~3 µs a block were spent sorting and grouping the same names again."""
    if len(set(names)) != len(names) or set(names) & set(dims):
        raise ValueError("duplicate label names")
    ordered = sorted([*dims, *names])
    if not ordered:
        return ("{0} ",), ()
    index = {d: i for i, d in enumerate(dims)}
    at = {n: i + 1 for i, n in enumerate(names)}
    groups: list[list[str]] = []
    for n in ordered:
        if groups and (n in index) == (groups[-1][0] in index):
            groups[-1].append(n)
        else:
            groups.append([n])
    # (Label names are [a-zA-Z_][a-zA-Z0-9_]*, but a brace in one would be a field: doubled.)
    literal: Callable[[str], str] = lambda t: t.replace("{", "{{").replace("}", "}}")  # noqa: E731
    texts = ["{0}{{"]
    runs: list[tuple[int, ...]] = []
    for g, group in enumerate(groups):
        sep = "," if g else ""
        if group[0] in index:
            texts[-1] += sep
            runs.append(tuple(index[n] for n in group))
            texts.append("")
        else:
            texts[-1] += sep + ",".join(f'{literal(n)}="{{{at[n]}}}"' for n in group)
    texts[-1] += "}} "
    return tuple(texts), tuple(runs)


#: Samples rendered per string batch: bounds the transient Python strings to a few MB.
_SLICE = 32_768


def _render_block(name: str, block: Block, out: list[bytes]) -> None:
    texts, runs = _layout(name, block.series.names, block.const)
    values = _spell(block.values, *_affixes(texts, runs))
    for text in _block_lines(texts, runs, block, values, _lines):
        out.append(text.encode())


def _block_lines(
    texts: list[str],
    runs: list[tuple[int, ...]],
    block: Block,
    values: list[str],
    lines: Callable[[list[str], list[list[str]], list[str]], str],
) -> Iterator[str]:
    """The sample lines of ``block`` (laid out as ``texts``, ``runs``; its values spelled ``values``) by
    ``lines`` (`_lines` or `_plain_lines`), `_SLICE` samples a string."""
    cols = [block.series.run(r) for r in runs]
    if block.rows is not None:
        rows = block.rows.tolist()
        cols = [[c[j] for j in rows] for c in cols]
    for lo in range(0, len(values), _SLICE):
        hi = lo + _SLICE
        yield lines(texts, [c[lo:hi] for c in cols], values[lo:hi])


def _render_blocks(blocks: Sequence[tuple[str, Block]]) -> list[list[bytes]]:
    """`_render_block` of each (family name, block), their values spelled in one `_spell` call: its numpy
    calls cost ~10-20 µs a column, more than the spelling itself for a block of a few dozen series (an
    SLO's window, tier or budget block: bench-scale's body has ~2,300 of them, 40 samples each). A
    value's spelling does not depend on the column it is spelled in (`format_values`). The lines are
    laid out with the values as they are (`_plain_lines`): affixing them per block was more than the
    two more parts a line (in-process, bench-scale's small blocks: 13 vs 8 ms)."""
    if not blocks:
        return []
    spelled = _spell(np.concatenate([b.values for _, b in blocks]), "", "")
    out: list[list[bytes]] = []
    at = 0
    for name, block in blocks:
        series = block.series
        texts, runs = _layout(name, series.names, block.const)
        n = len(block.values)
        values = spelled[at : at + n]
        at += n
        if block.rows is None and n <= _SLICE:
            # (`_block_lines`' one slice, without its generator: most of these blocks hold a few dozen
            # samples, and the per-block calls were most of their cost)
            out.append([_plain_lines(texts, [series.run(r) for r in runs], values).encode()] if n else [])
            continue
        out.append([t.encode() for t in _block_lines(texts, runs, block, values, _plain_lines)])
    return out


def _affixes(texts: list[str], runs: list[tuple[int, ...]]) -> tuple[str, str]:
    """What `_lines` expects around each value of a layout (``texts``, ``runs``): with label runs, the
    line's last constant text before it and the line break and the next line's first text after it."""
    return (texts[-1], "\n" + texts[0]) if runs else ("", "")


def _lines(texts: list[str], cols: list[list[str]], values: list[str]) -> str:
    """The sample lines of ``values`` (laid out as ``texts``, with the label runs ``cols``), joined.

    Each line is ``texts[0] + cols[0][j] + texts[1] + ... + texts[-1] + value_j + "\n"``. With label
    runs, ``values`` come spelled between `_affixes` (``texts[-1] + value_j + "\n" + texts[0]``): a
    line's parts are then its runs, the texts between runs (none with one run), and its affixed value,
    laid side by side in one list, a column at a time by slice assignment, and joined once, the last
    value cut before the next line's text. No string or tuple is made per line, and two parts a line
    for a one-run layout (measured: ~2x less than a ``str.join`` per line, which was ~20 % less than
    an f-string per line; the affixed values, ~-30 % more against four parts a line).
    """
    n = len(values)
    if not n:
        return ""
    if not cols:  # (one join is less still)
        return texts[0] + ("\n" + texts[0]).join(values) + "\n"
    k = len(cols)
    stride = 2 * k
    parts: list[str] = [texts[1] if k > 1 else ""] * (n * stride + 1)
    parts[0] = texts[0]
    for i, col in enumerate(cols):
        parts[1 + 2 * i :: stride] = col
        if 2 <= i + 1 < k:
            parts[2 + 2 * i :: stride] = [texts[i + 1]] * n
    parts[stride::stride] = values
    last = values[-1]
    parts[-1] = last[: len(last) - len(texts[0])]
    return "".join(parts)


def _plain_lines(texts: list[str], cols: list[list[str]], values: list[str]) -> str:
    """`_lines` of ``values`` spelled without affixes: each line is ``texts[0] + cols[0][j] + texts[1] +
    ... + texts[-1] + value_j + "\n"``, its parts laid side by side as `_lines` lays them, the value and
    the line break (with the next line's first text) two parts of their own."""
    n = len(values)
    if not n:
        return ""
    if not cols:
        return texts[0] + ("\n" + texts[0]).join(values) + "\n"
    k = len(cols)
    stride = 2 * k + 2
    parts: list[str] = [texts[-1]] * (n * stride + 1)
    parts[0] = texts[0]
    for i, col in enumerate(cols):
        parts[1 + 2 * i :: stride] = col
        if i + 1 < k:
            parts[2 + 2 * i :: stride] = [texts[i + 1]] * n
    parts[stride - 1 :: stride] = values
    parts[stride::stride] = ["\n" + texts[0]] * n
    parts[-1] = "\n"
    return "".join(parts)


def _header(f: Family) -> bytes:
    doc = f.doc.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {f.name} {doc}\n# TYPE {f.name} {f.type}\n".encode()


def render_chunks(families: Sequence[Family]) -> list[bytes]:
    """The text exposition as a list of byte chunks (concatenated, exactly `render`'s bytes).

    The daemon serves the chunks as they are: no single copy of a body that can be hundreds of MB.
    """
    out: list[bytes] = []
    for f in families:
        out.append(_header(f))
        for block in f.blocks:
            _render_block(f.name, block, out)
    return out


def render(families: Sequence[Family]) -> bytes:
    """The text exposition (format 0.0.4) of ``families``: byte-identical to prometheus_client's
    ``generate_latest`` on the same families as yielded by `SnapshotCollector.collect`."""
    return b"".join(render_chunks(families))


# -- the daemon's renderer: what did not change is not rendered again ------------------------------------

#: Series of a block rendered, gzipped and cached together (~40 KB of text for an SLO's per-series block).
CHUNK_ROWS = 512
#: Chunks that changed rendered as one piece at most (`Renderer._plan`): 4096 rows, ~330 KB of text.
MERGED_CHUNKS = 8


def gzip_member(data: bytes) -> bytes:
    """``data`` as one gzip member (RFC 1952). Members concatenate into a valid gzip stream whose content
    is the concatenation of theirs: Go's ``gzip.Reader`` (Prometheus), Python's ``gzip`` and zcat read
    every member."""
    return isal_zlib.compress(data, GZIP_LEVEL, wbits=31)


#: Text kept next to (or instead of) its gzip members while a body is below this size: a plain scrape then
#: sends it as it is, and the gzip members are made only when a gzip scrape asks (`Body.members`), once per
#: piece. Above it (~20k series of a per-customer SLO), a render gzips its new pieces at once and keeps
#: only those: at 100k series that is ~21 MB a body instead of 323 MB of text.
TEXT_KEPT_BELOW = 64 << 20


class _Piece:
    """A run of the text: its length, and the text or its gzip member or both. `member` gzips it once (the
    member is kept); `pack` keeps only the member. Safe across threads: ``gz`` is set before ``text`` is
    dropped, and the readers read ``gz`` (or ``text``) first."""

    __slots__ = ("gz", "size", "text")

    def __init__(self, text: bytes | None, gz: bytes | None = None) -> None:
        self.size = len(text) if text is not None else 0  # 0: not known (`Body.of_members`)
        self.text = text
        self.gz = gz

    def plain(self) -> bytes:
        text = self.text
        if text is not None:
            return text
        assert self.gz is not None  # packed: the member was set before the text was dropped
        return isal_zlib.decompress(self.gz, wbits=31)

    def member(self) -> bytes:
        gz = self.gz
        if gz is None:
            text = self.text
            if text is None:  # packed meanwhile, by another thread
                assert self.gz is not None
                return self.gz
            gz = self.gz = gzip_member(text)
        return gz

    def pack(self) -> None:
        self.member()
        self.text = None


_EMPTY = _Piece(b"")


@dataclass(frozen=True, slots=True)
class Body:
    """A rendered exposition (`render`'s bytes, ``length`` of them) in pieces, each kept as text, as a gzip
    member, or both (see `TEXT_KEPT_BELOW`): `text` gives the text a piece at a time (decompressing a
    packed piece), `members` the gzip encoding (a multi-member stream), gzipping what is not yet."""

    pieces: tuple[_Piece, ...]
    length: int

    @classmethod
    def of_members(cls, members: Sequence[bytes], length: int) -> Body:
        """A body given as its gzip members (which decompress to ``length`` bytes of text)."""
        return cls(tuple(_Piece(None, m) for m in members), length)

    def text(self) -> Iterator[bytes]:
        """The text, one piece at a time."""
        for piece in self.pieces:
            yield piece.plain()

    @property
    def gzipped(self) -> bool:
        """Whether `members` is ready (no piece left to gzip): else it costs CPU (call it off the loop)."""
        return all(piece.gz is not None for piece in self.pieces)

    @property
    def members(self) -> tuple[bytes, ...]:
        """The gzip members (gzipping, once each, the pieces that have none yet)."""
        return tuple(piece.member() for piece in self.pieces)

    def after(self, text: bytes, *, gzip: bool = False) -> Body:
        """``text`` (a piece of its own) followed by this body, sharing its pieces (and so their gzip
        members); ``gzip``: every piece gzipped now."""
        pieces = (_Piece(text), *self.pieces) if text else self.pieces
        if gzip:
            for piece in pieces:
                piece.member()
        return Body(pieces, len(text) + self.length)


@dataclass(frozen=True, slots=True)
class _Rendered:
    """What `Renderer` keeps of one block for the next render: the values it showed per series row
    (their bit patterns, so NaN equals NaN and -0.0 differs from 0.0), which rows had a sample, and the
    pieces, each of a run of whole chunks of `CHUNK_ROWS` rows: ``pieces[first]`` = (the chunk after its
    last, the piece), by its first chunk."""

    lineage: object
    rows: int
    bits: I64
    present: Bools | None
    pieces: dict[int, tuple[int, _Piece]]


class _Out:
    """The body being assembled: cached pieces as they are, fresh text joined into a piece a run at a time.
    Once it reaches ``text_kept_below`` bytes, every piece is packed as it comes (so a large body's text
    is never all held at once)."""

    def __init__(self, text_kept_below: int) -> None:
        self.pieces: list[_Piece] = []
        self.length = 0
        self._fresh: list[bytes] = []
        self._limit = text_kept_below
        self._packed = 0  # pieces[:_packed] are packed

    def fresh(self, chunks: list[bytes]) -> None:
        self.length += sum(map(len, chunks))
        self._fresh += chunks

    def piece(self, piece: _Piece) -> None:
        if piece.size:
            self._flush()
            self.length += piece.size
            self.pieces.append(piece)
            self._pack()

    def _flush(self) -> None:
        if self._fresh:
            self.pieces.append(_Piece(b"".join(self._fresh)))
            self._fresh = []
            self._pack()

    def _pack(self) -> None:
        if self.length >= self._limit:
            for piece in self.pieces[self._packed :]:
                piece.pack()
            self._packed = len(self.pieces)

    def body(self, gzip: bool) -> Body:
        self._flush()
        if gzip:
            for piece in self.pieces:
                piece.member()
        return Body(tuple(self.pieces), self.length)


class Renderer:
    """`render_chunks` for a daemon that renders every tick: the same text, and its gzip encoding, at a cost
    that follows what changed.

    Each block with at least `CHUNK_ROWS` series is rendered in pieces of whole chunks of `CHUNK_ROWS`
    series rows (one chunk, or a run of up to `MERGED_CHUNKS` that changed: `_plan`), each kept (as
    text, or its gzip member, or both: `TEXT_KEPT_BELOW`) until the next render. A piece is reused when
    the block (family, position, constant labels) was in the previous render over series of the same
    lineage (`SeriesLabels.follow`: same labels for these rows), and none of its rows' values (bit for
    bit) or presence changed; else it is rendered again. The text is `render_chunks`' by construction:
    the same lines, cut at series rows. Smaller blocks keep their text while they are the same
    (`_small_blocks`); those that changed are rendered together, their values spelled in one call
    (`_render_blocks`); the headers are rendered every time; each run of them is one piece. A piece's
    gzip member, once made (by a gzip scrape of a small body, or by
    the render of a large one), is reused with the piece.

    One render at a time (a lock): the cache is the previous render's.
    """

    def __init__(
        self,
        chunk_rows: int = CHUNK_ROWS,
        text_kept_below: int = TEXT_KEPT_BELOW,
        merged_chunks: int = MERGED_CHUNKS,
    ) -> None:
        self.chunk_rows = chunk_rows
        self.text_kept_below = text_kept_below
        self.merged_chunks = merged_chunks
        self._cache: dict[tuple[object, ...], _Rendered] = {}
        #: Per small block of the last render (family, position, constant labels): its series object,
        #: its values' and rows' bytes, and its text (`_small_block`).
        self._small: dict[tuple[object, ...], tuple[object, bytes, bytes | None, list[bytes]]] = {}
        self._lock = threading.Lock()
        #: Chunks rendered and reused by the last `render` (for tests and the benchmark).
        self.rendered = self.reused = 0

    def render(self, families: Sequence[Family], *, gzip: bool = False) -> Body:
        """The body of ``families``; ``gzip``: every piece gzipped now (a large body always is)."""
        with self._lock:
            out = _Out(self.text_kept_below)
            cache: dict[tuple[object, ...], _Rendered] = {}
            small: dict[tuple[object, ...], tuple[object, bytes, bytes | None, list[bytes]]] = {}
            self.rendered = self.reused = 0
            # The small blocks first (`_small_blocks`), then the body in order; each run of headers and
            # small blocks' texts handed to ``out`` at once (~2,800 small blocks a stage-2 body).
            whole = [[self._small_one(block) for block in f.blocks] for f in families]
            texts = iter(self._small_blocks(families, whole, small))
            run: list[bytes] = []
            for f, flags in zip(families, whole, strict=True):
                run.append(_header(f))
                for i, (block, alone) in enumerate(zip(f.blocks, flags, strict=True)):
                    if alone:
                        run += next(texts)
                        continue
                    out.fresh(run)
                    run = []
                    key = (f.name, i, block.const)
                    cache[key] = self._block(f.name, block, self._cache.get(key), out)
            out.fresh(run)
            self._cache = cache
            self._small = small
            return out.body(gzip)

    def _small_one(self, block: Block) -> bool:
        """Whether ``block`` is rendered whole (too small to chunk, or rows out of order)."""
        return len(block.series) < self.chunk_rows or not _ascending(block.rows)

    def _small_blocks(
        self,
        families: Sequence[Family],
        whole: list[list[bool]],
        small: dict[tuple[object, ...], tuple[object, bytes, bytes | None, list[bytes]]],
    ) -> list[list[bytes]]:
        """The text of every block rendered whole (`_small_one`: ``whole``, per family and block), in body
        order; each kept in ``small`` by
        its key (family, position, constant labels) with its series object and its values' and rows'
        bytes. A block's text of the last render is served again when it is the same series object
        (`SeriesLabels.follow` keeps it while the labels are the same) with the same values and rows,
        bit for bit: the text is a function of the key, the series, the values and the rows, so a tick
        whose numbers moved only in a few SLOs renders only their blocks (stage 2 at a fine bucket's
        end: ~3k small blocks, ~0.1 s, were rendered again, most of them unchanged). The others are
        rendered together (`_render_blocks`)."""
        texts: list[list[bytes] | None] = []
        todo: list[tuple[int, tuple[object, ...], str, Block, bytes, bytes | None]] = []
        last = self._small
        for f, flags in zip(families, whole, strict=True):
            for i, (block, alone) in enumerate(zip(f.blocks, flags, strict=True)):
                if not alone:
                    continue
                key: tuple[object, ...] = (f.name, i, block.const)
                values = block.values.tobytes()
                rows = block.rows.tobytes() if block.rows is not None else None
                before = last.get(key)
                same = before is not None and before[0] is block.series
                if before is not None and same and before[1] == values and before[2] == rows:
                    small[key] = before
                    texts.append(before[3])
                    continue
                todo.append((len(texts), key, f.name, block, values, rows))
                texts.append(None)
        rendered = _render_blocks([(name, block) for _, _, name, block, _, _ in todo])
        for (at, key, _, block, values, rows), text in zip(todo, rendered, strict=True):
            small[key] = (block.series, values, rows, text)
            texts[at] = text
        return cast("list[list[bytes]]", texts)

    def _block(self, name: str, block: Block, before: _Rendered | None, out: _Out) -> _Rendered:
        c = self.chunk_rows
        n = len(block.series)
        values, rows = block.values, block.rows
        if rows is None:
            bits: I64 = values.view(np.int64).copy()
            present = None
        else:
            bits = np.zeros(n, np.int64)
            bits[rows] = values.view(np.int64)
            present = np.zeros(n, np.bool_)
            present[rows] = True
        k = -(-n // c)
        reuse = np.zeros(k, np.bool_)
        if before is not None and before.lineage is block.series.lineage:
            m = min(n, before.rows)
            changed = bits[:m] != before.bits[:m]
            if present is not None or before.present is not None:
                changed |= _presence(present, m) != _presence(before.present, m)
            same = np.ones(k, np.bool_)
            same[np.flatnonzero(changed) // c] = False
            # Chunks whole in both renders, and a last chunk cut at the same row in both.
            whole = m // c if m % c == 0 or n != before.rows else k
            reuse[:whole] = same[:whole]
        texts, runs = _layout(name, block.series.names, block.const)
        cols = [block.series.run(r) for r in runs]
        # The samples of chunk j: [starts[j], starts[j + 1]).
        bounds = np.arange(k + 1) * c
        starts_at: Intp = np.minimum(bounds, n) if rows is None else np.searchsorted(rows, bounds)
        starts: list[int] = starts_at.tolist()
        plan = self._plan(reuse, before.pieces if before is not None else {})
        fresh = np.ones(k, np.bool_)  # the chunks rendered again
        for j, e, piece in plan:
            if piece is not None:
                fresh[j:e] = False
        # The values of the chunks rendered again, spelled in one call: numpy's fixed costs once a block,
        # not once a chunk (most values are integral: looked up, a few ns each).
        spelled = _spell(values[np.repeat(fresh, np.diff(starts_at))], *_affixes(texts, runs))
        at = 0
        pieces: dict[int, tuple[int, _Piece]] = {}
        for j, e, piece in plan:
            if piece is not None:
                self.reused += e - j
            else:
                lo, hi = starts[j], starts[e]
                piece = _piece(texts, cols, rows, lo, hi, spelled[at : at + hi - lo])
                at += hi - lo
                self.rendered += e - j
            out.piece(piece)
            pieces[j] = (e, piece)
        return _Rendered(block.series.lineage, n, bits, present, pieces)

    def _plan(
        self, reuse: Bools, before: dict[int, tuple[int, _Piece]]
    ) -> list[tuple[int, int, _Piece | None]]:
        """The block's pieces, in order: (first chunk, the chunk after the last, the previous render's
        piece to reuse or None to render one).

        A piece of the previous render is reused when none of its chunks changed (``reuse``). A run of
        chunks that changed is rendered as one piece of up to `merged_chunks` chunks: under a backlog
        nearly every chunk changes every render, and each piece has fixed costs (Python calls, a gzip
        member's header and Huffman tables: ~10 % of a render at 512-row pieces). An unchanged chunk
        whose previous piece cannot be reused (one of its other chunks changed) is rendered alone, so
        that quieter renders split merged pieces back to chunks that can be reused one by one.
        """
        k = len(reuse)
        same: list[bool] = reuse.tolist()
        plan: list[tuple[int, int, _Piece | None]] = []
        j = 0
        while j < k:
            old = before.get(j)
            if old is not None and old[0] <= k and all(same[j : old[0]]):
                plan.append((j, old[0], old[1]))
                j = old[0]
                continue
            e = j + 1
            if not same[j]:
                while e < k and e - j < self.merged_chunks and not same[e]:
                    e += 1
            plan.append((j, e, None))
            j = e
        return plan


def _piece(
    texts: list[str], cols: list[list[str]], rows: Intp | None, lo: int, hi: int, values: list[str]
) -> _Piece:
    """Samples ``[lo, hi)`` of a block (laid out as ``texts``, with the label runs ``cols``, of its
    ``rows``), whose values are spelled ``values``."""
    if lo == hi:
        return _EMPTY
    if rows is None:
        labels = [col[lo:hi] for col in cols]
    else:
        picked = rows[lo:hi].tolist()
        labels = [[col[r] for r in picked] for col in cols]
    return _Piece(_lines(texts, labels, values).encode())


def _presence(present: Bools | None, m: int) -> Bools:
    return np.ones(m, np.bool_) if present is None else present[:m]


def _ascending(rows: Intp | None) -> bool:
    return rows is None or bool(np.all(rows[1:] > rows[:-1]))
