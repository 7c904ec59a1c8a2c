"""`FileSource`: gzip recognised by its magic bytes (any name, stdin, a pipe), and every way a file can
be unreadable ends in one `SourceError` naming the path, never a traceback."""

from __future__ import annotations

import gzip
import io
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from sloguard.ingest import source as source_module
from sloguard.ingest.source import FileSource, SourceError, check_paths, compression

# Realistic lines: extra fields, any key order, escapes, a nested object.
LINES = (
    b'{"ts":"2026-01-01T00:00:00.250Z","service":"checkout","endpoint":"POST /v1/orders","customer":"acme",'
    b'"status":200,"latency_ms":12.5,"trace":{"id":"4bf92f3577b34da6","sampled":true}}\n'
    b'{"latency_ms":830,"status":503,"customer":"glob\\"ex","endpoint":"GET /v1/cart","service":"checkout",'
    b'"ts":1767225601000,"user_agent":"curl/8.5.0 (x86_64)"}\n'
) * 500


def read(paths: list[str], **kw: Any) -> bytes:
    return b"".join(FileSource(paths, **kw).records())


class FakeStdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BufferedReader(io.BytesIO(data))


@pytest.mark.parametrize("name", ["events.ndjson", "events.log", "events.ndjson.gz"])
def test_gzip_is_recognised_by_its_bytes_whatever_the_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(LINES))
    source = FileSource([str(path)])
    assert b"".join(source.records()) == LINES
    assert source.notes == []


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_stdin_is_sniffed_too(monkeypatch: pytest.MonkeyPatch, packed: bool) -> None:
    monkeypatch.setattr("sys.stdin", FakeStdin(gzip.compress(LINES) if packed else LINES))
    assert read(["-"]) == LINES


def test_a_pipe_is_sniffed_without_losing_its_first_bytes(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as w:
            w.write(gzip.compress(LINES))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert read([str(fifo)]) == LINES
    finally:
        writer.join()


def test_a_gz_name_on_a_plain_file_is_read_as_text_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(LINES)
    source = FileSource([str(path)])
    assert b"".join(source.records()) == LINES
    assert source.notes == [f"{path}: named .gz but not gzip-compressed; read as plain text"]


def test_a_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(gzip.compress(LINES)[:-100])
    with pytest.raises(SourceError, match="truncated gzip") as err:
        read([str(path)])
    assert str(err.value).startswith(f"{path}: ")


def test_corrupt_gzip_data_names_the_file(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(LINES))
    packed[len(packed) // 2 : len(packed) // 2 + 40] = b"\x00" * 40
    path = tmp_path / "events.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(SourceError, match="corrupt gzip data") as err:
        read([str(path)])
    assert str(err.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("magic", "kind"),
    [(b"BZh91AY&SY", "bzip2"), (b"\xfd7zXZ\x00\x00", "xz"), (b"\x28\xb5\x2f\xfd\x00", "zstd")],
)
def test_other_compressions_are_refused_by_name(tmp_path: Path, magic: bytes, kind: str) -> None:
    assert compression(magic) == kind
    path = tmp_path / "events.ndjson"
    path.write_bytes(magic + b"\x00" * 100)
    with pytest.raises(SourceError, match=f"{kind}-compressed"):
        read([str(path)])


def test_unreadable_paths_are_refused_before_anything_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "a.ndjson"
    good.write_bytes(LINES)
    with pytest.raises(SourceError, match="no such file") as err:
        check_paths([str(good), str(tmp_path / "nope.ndjson")])
    assert str(err.value) == f"{tmp_path / 'nope.ndjson'}: no such file"
    with pytest.raises(SourceError, match="is a directory"):
        check_paths([str(tmp_path)])
    with pytest.raises(SourceError, match="is a directory"):
        read([str(tmp_path)])  # and when read without the check

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(source_module, "open", denied, raising=False)  # we run as root in CI
    with pytest.raises(SourceError, match="permission denied"):
        check_paths([str(good)])
    with pytest.raises(SourceError, match="permission denied"):
        read([str(good)])


def test_progress_counts_every_file_and_ends_at_the_total(tmp_path: Path) -> None:
    paths = []
    for i, data in enumerate((LINES, gzip.compress(LINES), LINES[:700])):
        path = tmp_path / f"{i}.ndjson"
        path.write_bytes(data)
        paths.append(str(path))
    calls: list[tuple[int, int | None]] = []
    read(paths, chunk_bytes=4096, on_progress=lambda done, total: calls.append((done, total)))
    total = sum(os.path.getsize(p) for p in paths)
    assert {t for _, t in calls} == {total}
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls[-1][0] == total
