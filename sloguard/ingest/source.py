"""Where raw records come from. `FileSource` reads NDJSON files (plain or gzip, or stdin) in large
chunks cut at line ends, so one decode call handles many thousands of events."""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol, cast

# Each chunk is one decode and one aggregator ingest, whose fixed costs (numpy calls per buffer, per SLO)
# are paid per chunk: 8 MiB is ~13k realistic lines (~600 bytes each) or ~57k short ones. Measured on 1M
# realistic lines: 0.4-0.5 s less CPU than 4 MiB chunks, for ~35 MiB more peak RSS.
CHUNK_BYTES = 8 << 20
_PEEK_BYTES = 4096

GZIP_MAGIC = b"\x1f\x8b"
#: Compressions people feed by mistake, by their magic bytes: refused by name instead of being decoded
#: as lines of garbage.
OTHER_MAGIC = {
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}
_SNIFF_BYTES = max(len(m) for m in (GZIP_MAGIC, *OTHER_MAGIC))


class SourceError(Exception):
    """An input that cannot be read: ``str()`` is one line naming the path and what is wrong."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{'standard input' if path == '-' else path}: {problem}")
        self.path = path
        self.problem = problem


class EventSource(Protocol):
    """Anything that yields raw records (bytes): a file, a Kafka partition, a list in a test."""

    def records(self) -> Iterator[bytes]: ...


def os_problem(exc: OSError) -> str:
    """What is wrong, in a few words, for an `OSError` from opening or reading a path."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)


def check_paths(paths: Iterable[str]) -> None:
    """Raise `SourceError` for the first path that cannot be read, before anything is read (a typo in
    the last of several large files fails at once). FIFOs and devices are only looked up: opening a
    FIFO would wait for its writer."""
    for path in paths:
        if path == "-":
            continue
        try:
            mode = os.stat(path).st_mode
            if stat.S_ISDIR(mode):
                raise SourceError(path, "is a directory, not a file (give the files in it: DIR/*.ndjson.gz)")
            if stat.S_ISREG(mode):
                with open(path, "rb"):
                    pass
        except OSError as exc:
            raise SourceError(path, os_problem(exc)) from None


class _Prefixed:
    """A stream whose first bytes were already read (to sniff its format), put back in front of it."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest
        self.mode = "rb"

    def read(self, n: int = -1) -> bytes:
        head, self._head = self._head, b""
        if n < 0:
            return head + self._rest.read()
        if n <= len(head):
            self._head = head[n:]
            return head[:n]
        return head + self._rest.read(n - len(head))

    def close(self) -> None:
        if self._rest is not sys.stdin.buffer:
            self._rest.close()


def compression(head: bytes) -> str | None:
    """``"gzip"``, another compression's name, or None for plain text, from a stream's first bytes."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    return next((name for magic, name in OTHER_MAGIC.items() if head.startswith(magic)), None)


@dataclass
class _Opened:
    stream: IO[bytes]
    #: What `tell()` reports progress on: the file itself, under any decompression.
    raw: object
    size: int | None
    gzip: bool


def _open(path: str) -> _Opened:
    """Open ``path`` (``-``: standard input) and sniff it: gzip by its magic bytes, whatever its name."""
    if path == "-":
        stdin = sys.stdin.buffer
        head = stdin.read(_SNIFF_BYTES)
        raw: IO[bytes] = cast(IO[bytes], _Prefixed(head, stdin))
        size = None
    else:
        try:
            # Unbuffered: a large read() lands straight in the bytes it returns (no copy through a buffer).
            fio = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by FileSource.records
        except OSError as exc:
            raise SourceError(path, os_problem(exc)) from None
        if stat.S_ISREG(os.fstat(fio.fileno()).st_mode):
            head, raw, size = os.pread(fio.fileno(), _SNIFF_BYTES, 0), fio, os.fstat(fio.fileno()).st_size
        else:  # a FIFO (`<(zcat ...)`): what is read to sniff is put back
            buffered = io.BufferedReader(fio)
            head, size = buffered.read(_SNIFF_BYTES), None
            raw = cast(IO[bytes], _Prefixed(head, buffered))
    kind = compression(head)
    if kind == "gzip":
        import gzip  # only for compressed input: its import is start-up time of every replay

        return _Opened(cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")), raw, size, True)
    if kind is not None:
        raw.close()
        raise SourceError(path, f"{kind}-compressed; only gzip is read (decompress it and give - for stdin)")
    return _Opened(raw, raw, size, False)


@dataclass
class FileSource:
    """NDJSON files read as chunks of whole lines; ``-`` reads standard input. Gzip is recognised by its
    magic bytes (files of any name, and stdin). ``on_progress(done, total)`` is called per chunk, in
    bytes as stored (compressed) over every file: ``total`` is None when an input has no size (stdin,
    a pipe). Unreadable, truncated or corrupt input raises `SourceError`; ``notes`` collects what the
    user may want to know but is not an error (a ``.gz`` name on a plain file)."""

    paths: Iterable[str]
    chunk_bytes: int = CHUNK_BYTES
    on_progress: Callable[[int, int | None], None] | None = None
    notes: list[str] = field(default_factory=list)

    def records(self) -> Iterator[bytes]:
        paths = list(self.paths)
        sizes = [os.path.getsize(p) if p != "-" and os.path.isfile(p) else None for p in paths]
        total = None if None in sizes else sum(s or 0 for s in sizes)
        before = 0
        for path, size in zip(paths, sizes, strict=True):
            opened = _open(path)
            if not opened.gzip and path.endswith((".gz", ".gzip")):
                self.notes.append(f"{path}: named .gz but not gzip-compressed; read as plain text")
            try:
                yield from self._records(path, opened, before, total)
            finally:
                opened.stream.close()
                if opened.raw is not opened.stream:
                    cast(IO[bytes], opened.raw).close()
            before += size or 0

    def _records(self, path: str, opened: _Opened, before: int, total: int | None) -> Iterator[bytes]:
        stream, raw = opened.stream, opened.raw
        if stream is raw and isinstance(stream, io.RawIOBase) and stream.seekable():
            chunks = self._seekable_chunks(stream)
        else:
            chunks = self._chunks(stream)
        errors: tuple[type[BaseException], ...] = (OSError, EOFError)
        if opened.gzip:
            import zlib

            errors = (*errors, zlib.error)
        try:
            for chunk in chunks:
                yield chunk
                if self.on_progress is not None and isinstance(raw, io.IOBase):
                    self.on_progress(before + raw.tell(), total)
        except errors as exc:
            raise SourceError(path, _read_problem(exc, opened.gzip)) from None

    def _seekable_chunks(self, stream: io.RawIOBase) -> Iterator[bytes]:
        """The chunks `_chunks` makes, from a plain file without copying them to cut them.

        Each chunk ends at the last newline before the next multiple of ``chunk_bytes``. That newline
        is found by peeking back from there (``os.pread``), then the chunk is read to exactly its end:
        one read per chunk, where `_chunks` joins a carried-over tail to each read and cuts the result
        (two copies of every byte, each into freshly allocated pages).
        """
        fd = stream.fileno()
        size = os.fstat(fd).st_size
        start = grid = stream.tell()
        while True:
            grid += self.chunk_bytes
            end = _last_line_end(fd, start, min(grid, size))
            if end < 0 and grid < size:
                continue  # a line longer than a chunk: on to the next multiple
            if end < 0:
                end = size  # the end of the file: the last line has no newline
            block = _read_exactly(stream, end - start)
            if not block:
                return
            yield block
            start += len(block)

    def _chunks(self, stream: IO[bytes]) -> Iterator[bytes]:
        """Chunks of any stream (gzip, stdin): a read, cut after its last newline; the rest of the read
        starts the next chunk."""
        tail = b""
        while True:
            block = stream.read(self.chunk_bytes)
            if not block:
                break
            block = tail + block
            cut = block.rfind(b"\n")
            if cut < 0:
                tail = block
                continue
            tail = block[cut + 1 :]
            yield block[: cut + 1]
        if tail:
            yield tail


def _read_problem(exc: BaseException, gz: bool) -> str:
    """What went wrong while reading: a truncated or corrupt gzip stream, or the file system's error."""
    if isinstance(exc, EOFError):
        return "truncated gzip: the file ends before the end-of-stream marker"
    if gz:
        import gzip

        if isinstance(exc, gzip.BadGzipFile) or not isinstance(exc, OSError):  # or a zlib.error
            return f"corrupt gzip data ({exc})"
    return os_problem(exc) if isinstance(exc, OSError) else str(exc)


def _last_line_end(fd: int, start: int, end: int) -> int:
    """Just past the last newline of bytes ``[start, end)`` of file ``fd``, or -1 if there is none."""
    while end > start:
        begin = max(start, end - _PEEK_BYTES)
        data = os.pread(fd, end - begin, begin)
        newline = data.rfind(b"\n")
        if newline >= 0:
            return begin + newline + 1
        end = begin
    return -1


def _read_exactly(stream: io.RawIOBase, n: int) -> bytes:
    """``n`` bytes (fewer only at the end of the file)."""
    block = stream.read(n) or b""
    while 0 < len(block) < n:  # a short read (the file changed meanwhile)
        more = stream.read(n - len(block))
        if not more:
            break
        block += more
    return block
