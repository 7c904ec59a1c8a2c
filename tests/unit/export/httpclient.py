"""A raw HTTP/1.1 client for the HttpServer tests: exact bytes out, responses parsed by hand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sloguard.export.http import HttpServer


@dataclass
class State:
    """What the server's health and readiness callables answer."""

    healthy: bool = True
    ready: tuple[bool, str] = (True, "")
    raise_in_checks: bool = False

    def health(self) -> bool:
        if self.raise_in_checks:
            raise RuntimeError("boom")
        return self.healthy

    def readiness(self) -> tuple[bool, str]:
        if self.raise_in_checks:
            raise RuntimeError("boom")
        return self.ready


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    raw_head: bytes = field(repr=False, default=b"")


def parse_response(data: bytes, head_only: bool = False) -> tuple[Response, bytes]:
    """One response off the front of ``data``; returns it and what follows."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, f"no complete head in {data[:200]!r}"
    lines = head.decode("latin-1").split("\r\n")
    version, status, _ = lines[0].split(" ", 2)
    assert version == "HTTP/1.1"
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = 0 if head_only else int(headers["content-length"])
    return Response(int(status), headers, rest[:length], head), rest[length:]


async def exchange(port: int, raw: bytes, head_only: bool = False) -> Response:
    """Send raw bytes, read until the server closes, parse one response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(10):
            data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    response, rest = parse_response(data, head_only)
    assert rest == b""
    return response


async def get(port: int, path: str, *headers: str, method: str = "GET") -> Response:
    """One request on a new connection (``Connection: close``)."""
    extra = "".join(f"{h}\r\n" for h in headers)
    raw = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n".encode()
    return await exchange(port, raw, head_only=method == "HEAD")


@contextlib.asynccontextmanager
async def serving(state: State, **options: Any) -> AsyncIterator[HttpServer]:
    """A started server on a free port (``options``: HttpServer's limits), stopped on the way out."""
    srv = HttpServer("127.0.0.1", 0, health=state.health, ready=state.readiness, **options)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition()`` holds (the server's state has no event to await: this polls); fail
    naming ``what`` after a generous minute."""
    for _ in range(6000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never saw {what}")
