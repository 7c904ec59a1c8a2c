"""`decode_many(max_ts_ms=...)`: events from the future are rejected with their own bytes."""

from __future__ import annotations

from sloguard.core.model import Rejections
from sloguard.ingest.decode import FUTURE_TIMESTAMP, Decoder

T = 1_767_225_600_000


def line(ts: int, customer: str = "c") -> bytes:
    return (
        b'{"ts": %d, "service": "s", "endpoint": "e", "customer": "%s", "status": 200, "latency_ms": 1}'
        % (ts, customer.encode())
    )


def test_future_lines_are_rejected_with_their_bytes_small_and_fast_path() -> None:
    for n in (5, 3000):  # msgspec path and the byte-level path (buffers over 160 KiB)
        lines = [line(T + (10_000 if i % 7 == 3 else 0), f"c{i}") for i in range(n)]
        record = b"\n".join([b"{bad", *lines, b""])
        single = line(T + 99_999)
        rejections = Rejections()
        rejected: list[tuple[str, bytes]] = []
        batch = Decoder().decode_many([record, single], rejections, rejected, max_ts_ms=T + 5_000)
        future = [x for i, x in enumerate(lines) if i % 7 == 3]
        assert len(batch) == n - len(future)
        assert int(batch.ts_ms.max()) == T
        assert rejections.counts == {"malformed_json": 1, FUTURE_TIMESTAMP: len(future) + 1}
        assert rejected == [
            ("malformed_json", b"{bad"),
            *((FUTURE_TIMESTAMP, x) for x in future),
            (FUTURE_TIMESTAMP, single),  # a one-line record: the whole record
        ]
