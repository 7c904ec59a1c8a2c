"""DEFLATE streams through ISA-L (the ``isal`` package), this package's one home of that library.

ISA-L reads and writes the same zlib (RFC 1950) and gzip (RFC 1952) streams as the standard library's
``zlib``, about 2x faster to decompress and 3-5x faster to compress at its fast levels (0-3; its level
numbers are not zlib's). Decompressing is exact whatever made the stream, so anything zlib wrote reads
here and the reverse. Its compressed bytes are not zlib's, though, and may differ between CPUs (it
dispatches on CPU features): where the compressed bytes themselves must be the same on every host (a
partial record's size decides how it is cut, `sloguard.scale.codec`), compress with ``zlib``.
"""

from __future__ import annotations

from typing import cast

from isal import isal_zlib

__all__ = ["DeflateError", "compress", "decompress", "isal_zlib"]

#: What `decompress` raises for a damaged or truncated stream.
DeflateError = cast("type[Exception]", isal_zlib.error)  # (the stub calls it an instance)


def compress(data: bytes, level: int) -> bytes:
    """``data`` as a zlib stream, at ISA-L ``level`` (0-3)."""
    return isal_zlib.compress(data, level)


def decompress(data: bytes) -> bytes:
    """The content of the zlib stream ``data``; raises `DeflateError` if it is damaged or truncated."""
    return isal_zlib.decompress(data)
