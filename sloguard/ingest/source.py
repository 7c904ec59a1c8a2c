"""Where raw records come from. `FileSource` reads NDJSON files (plain, .gz, or stdin) in large
chunks cut at line ends, so one decode call handles many thousands of events."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Protocol, cast

CHUNK_BYTES = 4 << 20
_PEEK_BYTES = 4096


class EventSource(Protocol):
    """Anything that yields raw records (bytes): a file, a Kafka partition, a list in a test."""

    def records(self) -> Iterator[bytes]: ...


def _open(path: str) -> tuple[IO[bytes], int | None]:
    if path == "-":
        return sys.stdin.buffer, None
    size = os.path.getsize(path)
    # Unbuffered: a large read() lands straight in the bytes it returns (no copy through a buffer).
    raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller's context
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if path.endswith(".gz") or magic == b"\x1f\x8b":
        import gzip  # only for compressed input: its import is start-up time of every replay

        return cast(IO[bytes], gzip.GzipFile(fileobj=raw)), size
    return raw, size


@dataclass
class FileSource:
    """NDJSON files read as chunks of whole lines. ``on_progress(bytes_read_compressed, total)``
    is called per chunk (for a progress bar); ``-`` reads standard input."""

    paths: Iterable[str]
    chunk_bytes: int = CHUNK_BYTES
    on_progress: Callable[[int, int | None], None] | None = None

    def records(self) -> Iterator[bytes]:
        for path in self.paths:
            stream, size = _open(path)
            raw = getattr(stream, "fileobj", stream)
            try:
                if stream is raw and isinstance(stream, io.RawIOBase) and stream.seekable():
                    chunks = self._seekable_chunks(stream)
                else:
                    chunks = self._chunks(stream)
                for chunk in chunks:
                    yield chunk
                    if self.on_progress is not None and isinstance(raw, io.IOBase):
                        self.on_progress(raw.tell(), size)
            finally:
                if stream is not sys.stdin.buffer:
                    stream.close()
                    if raw is not stream:
                        raw.close()

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
