"""The listener under 500 slow clients on loopback: scrapes, probes and mounted routes keep answering 200.

The slow clients are the two shapes that used to fill the connection cap: request heads trickled a byte
at a time, and idle keep-alives. Held, they fit under the default cap; reconnecting past a lower cap,
they are the ones evicted. No timing is asserted: only that every good request is answered 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import Iterator

import pytest

from sloguard.export.http import WAITING, HttpServer
from sloguard.export.http import Response as RouteResponse
from tests.unit.export.httpclient import State, get, serving, until

SLOW = 500
#: Both ends of every slow connection live in this process, plus the good requests and the rest.
FDS_NEEDED = 2 * SLOW + 300
BODY = b"# HELP x_total X.\n# TYPE x_total counter\nx_total 1.0\n" * 2000
TRICKLE_HEAD = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "
IDLE_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(autouse=True)
def enough_file_descriptors() -> Iterator[None]:
    """Raise the soft RLIMIT_NOFILE (to the hard limit) if it is too low for both ends, then restore it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < FDS_NEEDED:
        if hard != resource.RLIM_INFINITY and hard < FDS_NEEDED:
            pytest.fail(f"RLIMIT_NOFILE hard limit {hard} < {FDS_NEEDED}: raise it (ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def slow_client(
    port: int, trickle: bool, reconnect: bool, stop: asyncio.Event, connecting: asyncio.Semaphore
) -> int:
    """Hold a connection that never completes a request head (``trickle``: sends a byte of it every
    0.25 s; else an idle keep-alive after one request). With ``reconnect``, comes back whenever the
    server closes it. Returns how many times it was closed by the server."""
    closed = 0
    while not stop.is_set():
        # A few connects at a time: 500 at once would overflow the listen backlog, and the kernel would
        # drop SYNs to be retried seconds later (slow, not what is tested here).
        async with connecting:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(TRICKLE_HEAD if trickle else IDLE_REQUEST)
            if not trickle:
                await reader.readuntil(b"ok\n")
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.25):
                        if not await reader.read(1):
                            break  # closed by the server
                if trickle:
                    writer.write(b"a")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        if stop.is_set():
            break
        closed += 1
        if not reconnect:
            break
        await asyncio.sleep(0.5)
    return closed


async def good_requests(srv: HttpServer) -> None:
    """A round of what Prometheus, the kubelet and the UI ask: every answer must be 200."""
    for path in ("/metrics", "/healthz", "/api/v1/slos", "/readyz"):
        r = await get(srv.port, path)
        assert r.status == 200, (path, r.status, r.body)
    assert (await get(srv.port, "/metrics")).body == BODY


@pytest.mark.parametrize(
    "max_connections,reconnect",
    [(None, False), (400, True)],
    ids=["held-under-the-default-cap", "reconnecting-past-the-cap"],
)
async def test_500_slow_connections_do_not_starve_scrapes_probes_or_routes(
    max_connections: int | None, reconnect: bool
) -> None:
    def routes(path: str, query: str) -> RouteResponse | None:
        return RouteResponse(200, "application/json", b"[]") if path == "/api/v1/slos" else None

    # A read timeout longer than the test: the slow clients stay until the cap evicts them.
    limits = {"max_connections": max_connections} if max_connections else {}
    async with serving(State(), read_timeout=120, routes=routes, **limits) as srv:
        srv.set_metrics(BODY)
        stop, connecting = asyncio.Event(), asyncio.Semaphore(50)
        clients = [
            asyncio.create_task(slow_client(srv.port, i % 2 == 0, reconnect, stop, connecting))
            for i in range(SLOW)
        ]
        try:
            cap = srv.max_connections
            await until(lambda: srv.open_connections()[WAITING] >= min(SLOW, cap), "the slow connections")
            # Past the cap: every slow client has connected, the excess by evicting older ones.
            await until(lambda: srv.connection_counts["accepted"] >= SLOW, "all slow clients connected")
            for _ in range(10):
                await good_requests(srv)
        finally:
            stop.set()
            closed = await asyncio.gather(*clients)
    counts = srv.connection_counts
    assert counts["rejected"] == counts["throttled"] == 0
    if reconnect:
        assert counts["evicted"] >= SLOW - srv.max_connections  # the slow ones made room
    else:
        assert counts["evicted"] == 0
        assert sum(closed) == 0
