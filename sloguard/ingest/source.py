"""Where raw records come from. `FileSource` reads NDJSON files (plain, .gz, or stdin) in large
chunks cut at line ends, so one decode call handles many thousands of events."""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol, cast

CHUNK_BYTES = 4 << 20


class EventSource(Protocol):
    """Anything that yields raw records (bytes): a file, a Kafka partition, a list in a test."""

    def records(self) -> Iterator[bytes]: ...


@dataclass
class MemorySource:
    """Records held in memory (tests, fakes)."""

    items: list[bytes] = field(default_factory=list)

    def records(self) -> Iterator[bytes]:
        yield from self.items


def _open(path: str) -> tuple[IO[bytes], int | None]:
    if path == "-":
        return sys.stdin.buffer, None
    size = os.path.getsize(path)
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller's context
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if path.endswith(".gz") or magic == b"\x1f\x8b":
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
                yield from self._chunks(stream, raw, size)
            finally:
                if stream is not sys.stdin.buffer:
                    stream.close()
                    if raw is not stream:
                        raw.close()

    def _chunks(self, stream: IO[bytes], raw: object, size: int | None) -> Iterator[bytes]:
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
            if self.on_progress is not None and isinstance(raw, io.IOBase):
                self.on_progress(raw.tell(), size)
        if tail:
            yield tail
