"""The HTTP server on real sockets (127.0.0.1, port 0): routes, gzip, HEAD, keep-alive, hostile clients."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import resource
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from sloguard.export.http import (
    _MAX_REQUESTS_PER_CONNECTION as MAX_REQUESTS,
)
from sloguard.export.http import (
    LINGERING,
    RESPONDING,
    WAITING,
    HttpServer,
    _accepts_gzip,
    connection_limits,
)
from sloguard.export.http import Response as RouteResponse
from sloguard.export.text import CONTENT_TYPE, Body, gzip_member
from tests.unit.export.httpclient import State, exchange, get, parse_response, serving, until

BODY = b"# HELP x_total X.\n# TYPE x_total counter\nx_total 1.0\n" * 500
#: More than the socket buffers hold: a client that does not read keeps the server mid-response.
HUGE = [BODY] * 400


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
async def server(state: State) -> AsyncIterator[HttpServer]:
    async with serving(state, read_timeout=2.0) as srv:
        yield srv


# -- routes -----------------------------------------------------------------------------------------


async def test_metrics_before_the_first_render_is_503(server: HttpServer) -> None:
    r = await get(server.port, "/metrics")
    assert r.status == 503
    assert b"no snapshot" in r.body


async def test_metrics_serves_the_cached_bytes(server: HttpServer) -> None:
    server.set_metrics(BODY)
    r = await get(server.port, "/metrics")
    assert (r.status, r.body) == (200, BODY)
    assert r.headers["content-type"] == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert r.headers["content-length"] == str(len(BODY))
    assert "content-encoding" not in r.headers
    server.set_metrics(b"x_total 2.0\n")
    assert (await get(server.port, "/metrics?name[]=x")).body == b"x_total 2.0\n"


@pytest.mark.parametrize(
    "accept",
    ["gzip", "gzip, deflate, br", "deflate;q=0.5, GZIP;q=0.8", "*", "identity;q=1, *;q=0.1"],
)
async def test_metrics_gzip(server: HttpServer, accept: str) -> None:
    server.set_metrics(BODY)
    r = await get(server.port, "/metrics", f"Accept-Encoding: {accept}")
    assert r.status == 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["vary"] == "Accept-Encoding"
    assert len(r.body) < len(BODY) // 10
    assert gzip.decompress(r.body) == BODY


async def test_gzip_copy_is_made_once_per_body(server: HttpServer) -> None:
    server.set_metrics(BODY)
    first, second = await asyncio.gather(
        get(server.port, "/metrics", "Accept-Encoding: gzip"),
        get(server.port, "/metrics", "Accept-Encoding: gzip"),
    )
    assert first.body == second.body
    payload = server._metrics
    assert payload is not None
    assert payload._gzip is not None
    cached = payload._gzip.result()
    await get(server.port, "/metrics", "Accept-Encoding: gzip")
    assert payload._gzip.result() is cached
    server.set_metrics(b"y 1.0\n")  # a new render: a new gzip copy
    r = await get(server.port, "/metrics", "Accept-Encoding: gzip")
    assert gzip.decompress(r.body) == b"y 1.0\n"


@pytest.mark.parametrize("accept", ["", "identity", "gzip;q=0", "br", "*;q=0", "gzip;q=zero"])
async def test_metrics_without_gzip(server: HttpServer, accept: str) -> None:
    server.set_metrics(BODY)
    r = await get(server.port, "/metrics", f"Accept-Encoding: {accept}")
    assert r.body == BODY
    assert "content-encoding" not in r.headers


@pytest.mark.parametrize(
    "header,expected",
    [
        ("gzip", True),
        ("x-gzip", True),
        ("GZip ; q=0.001", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),  # an explicit refusal wins over the wildcard
        ("*", True),
        ("*;q=0", False),
        ("deflate", False),
        ("", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert _accepts_gzip(header) is expected


async def test_head_has_the_headers_and_no_body(server: HttpServer) -> None:
    server.set_metrics(BODY)
    r = await get(server.port, "/metrics", method="HEAD")
    assert r.status == 200
    assert r.headers["content-length"] == str(len(BODY))
    assert r.body == b""


async def test_healthz(server: HttpServer, state: State) -> None:
    r = await get(server.port, "/healthz")
    assert (r.status, r.body) == (200, b"ok\n")
    state.healthy = False
    assert (await get(server.port, "/healthz")).status == 503
    state.healthy, state.raise_in_checks = True, True
    assert (await get(server.port, "/healthz")).status == 503


async def test_readyz_says_why(server: HttpServer, state: State) -> None:
    assert (await get(server.port, "/readyz")).status == 200
    state.ready = (False, "no snapshot published yet")
    r = await get(server.port, "/readyz")
    assert (r.status, r.body) == (503, b"no snapshot published yet\n")
    state.raise_in_checks = True
    r = await get(server.port, "/readyz")
    assert r.status == 503
    assert b"RuntimeError" in r.body


async def test_query_strings_and_absolute_targets(server: HttpServer) -> None:
    assert (await get(server.port, "/healthz?verbose=1")).status == 200
    assert (await get(server.port, "http://127.0.0.1/healthz")).status == 200
    assert (await get(server.port, "http://127.0.0.1")).status == 404


async def test_unknown_path_is_404_and_other_methods_405(server: HttpServer) -> None:
    assert (await get(server.port, "/")).status == 404
    assert (await get(server.port, "/metricsx")).status == 404
    r = await get(server.port, "/metrics", method="DELETE")
    assert r.status == 405
    assert r.headers["allow"] == "GET, HEAD"


async def test_urllib_in_a_thread(server: HttpServer) -> None:
    server.set_metrics(BODY)

    def fetch() -> tuple[int, str, bytes]:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()

    assert await asyncio.to_thread(fetch) == (200, CONTENT_TYPE, BODY)


# -- connections ------------------------------------------------------------------------------------


async def test_keep_alive_serves_several_requests_on_one_connection(server: HttpServer) -> None:
    server.set_metrics(BODY)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        writer.write(b"HEAD /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(5):
            data = await reader.read()  # the server closes after the third
    finally:
        writer.close()
        await writer.wait_closed()
    first, rest = parse_response(data)
    second, rest = parse_response(rest)
    third, rest = parse_response(rest, head_only=True)
    assert (first.status, first.body, first.headers["connection"]) == (200, BODY, "keep-alive")
    assert (second.status, second.body) == (200, b"ok\n")
    assert (third.status, third.headers["connection"], rest) == (200, "close", b"")


async def test_http_10_closes_unless_asked(server: HttpServer) -> None:
    r = await exchange(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert (r.status, r.headers["connection"]) == (200, "close")


GARBAGE = {
    "binary": b"\x00\xff\xfe\x01garbage\r\n\r\n",
    "tls-client-hello": bytes.fromhex("16030100a5010000a10303") + b"\x00" * 40 + b"\r\n\r\n",
    "no-target": b"GET\r\n\r\n",
    "too-many-parts": b"GET / x HTTP/1.1\r\n\r\n",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "bad-header": b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
    "space-before-colon": b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",
    "lf-only-garbage": b"\n\n\nhello world\n\n",
}


@pytest.mark.parametrize("raw", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_gets_4xx_and_the_server_lives_on(server: HttpServer, raw: bytes) -> None:
    server.set_metrics(BODY)
    r = await exchange(server.port, raw)
    assert r.status in (400, 505)
    assert r.headers["connection"] == "close"
    assert (await get(server.port, "/metrics")).body == BODY


async def test_bare_lf_requests_are_understood(server: HttpServer) -> None:
    r = await exchange(server.port, b"GET /healthz HTTP/1.1\nConnection: close\n\n")
    assert (r.status, r.body) == (200, b"ok\n")


async def test_oversized_head_is_431(server: HttpServer) -> None:
    long_line = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    assert (await exchange(server.port, long_line)).status == 431
    many = b"GET /metrics HTTP/1.1\r\n" + b"X-A: 12345678901234567890\r\n" * 1000 + b"\r\n"
    assert (await exchange(server.port, many)).status == 431
    assert (await get(server.port, "/healthz")).status == 200


async def test_slow_client_is_cut_off(state: State) -> None:
    async with serving(state, read_timeout=0.2) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
        await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # closed by the server, without a word
        writer.close()
        await writer.wait_closed()
        assert (await get(srv.port, "/healthz")).status == 200


async def test_client_that_vanishes_mid_response(server: HttpServer) -> None:
    server.set_metrics(BODY * 200)  # ~30 MB: more than the socket buffers hold
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        writer.transport.abort()
    assert (await get(server.port, "/healthz")).status == 200


async def open_response(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that asked for /metrics and does not read yet: it stays mid-response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    return reader, writer


async def read_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Everything the server sends until it closes (a reset counts as the end)."""
    try:
        async with asyncio.timeout(30):
            return await reader.read()
    except ConnectionResetError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def states(srv: HttpServer, waiting: int = 0, responding: int = 0, lingering: int = 0) -> Callable[[], bool]:
    want = {WAITING: waiting, RESPONDING: responding, LINGERING: lingering}
    return lambda: srv.open_connections() == want


async def test_the_last_keep_alive_response_says_close(server: HttpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * (MAX_REQUESTS + 1))
    await writer.drain()
    rest = await read_all(reader, writer)  # the server closes after its last response
    said = []
    while rest:
        r, rest = parse_response(rest)
        said.append((r.status, r.headers["connection"]))
    # The client is told which response is the last, so it never sends a request that is dropped.
    assert said == [(200, "keep-alive")] * (MAX_REQUESTS - 1) + [(200, "close")]


async def test_at_the_cap_the_longest_waiting_connection_is_evicted(state: State) -> None:
    async with serving(state, max_connections=3) as srv:
        srv.set_metrics(HUGE)
        busy = await open_response(srv.port)  # the oldest, but mid-response: never evicted
        await until(states(srv, responding=1), "a connection mid-response")
        idle = await asyncio.open_connection("127.0.0.1", srv.port)  # waits for its first request
        await until(states(srv, waiting=1, responding=1), "an idle connection")
        slow = await asyncio.open_connection("127.0.0.1", srv.port)
        slow[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # a head still arriving
        await until(states(srv, waiting=2, responding=1), "a slow connection")
        assert (await get(srv.port, "/healthz")).status == 200  # made room by evicting `idle`
        assert await read_all(*idle) == b""  # closed without a word
        slow[1].write(b"Connection: close\r\n\r\n")
        assert parse_response(await read_all(*slow))[0].status == 200  # younger: still served
        response, _ = parse_response(await read_all(*busy))
        assert response.body == b"".join(HUGE)
    assert srv.connection_counts == {"accepted": 4, "evicted": 1, "rejected": 0, "throttled": 0}


async def test_a_lingering_connection_is_evicted_when_none_waits(state: State) -> None:
    async with serving(state, max_connections=1, linger_timeout=60) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await reader.readuntil(b"ok\n")  # answered; the client does not close: the server lingers
        await until(states(srv, lingering=1), "a lingering connection")
        assert (await get(srv.port, "/healthz")).status == 200
        assert await read_all(reader, writer) == b""
    assert srv.connection_counts["evicted"] == 1


async def test_at_the_cap_with_every_connection_responding_a_new_one_is_rejected(state: State) -> None:
    async with serving(state, max_connections=1) as srv:
        srv.set_metrics(HUGE)
        busy = await open_response(srv.port)
        await until(states(srv, responding=1), "a connection mid-response")
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await read_all(reader, writer) == b""  # closed at once, without a word
        response, _ = parse_response(await read_all(*busy))
        assert response.body == b"".join(HUGE)
        await until(states(srv), "all closed")
        assert (await get(srv.port, "/healthz")).status == 200
    assert srv.connection_counts == {"accepted": 2, "evicted": 0, "rejected": 1, "throttled": 0}


async def test_responses_in_flight_are_bounded_and_probes_are_exempt(state: State) -> None:
    routes = lambda path, query: RouteResponse(200, "application/json", b"{}")  # noqa: E731
    async with serving(state, max_in_flight=1, routes=routes) as srv:
        srv.set_metrics(HUGE)
        busy = await open_response(srv.port)  # holds the only slot until it reads
        await until(states(srv, responding=1), "a connection mid-response")
        for path in ("/metrics", "/api/v1/slos"):
            r = await get(srv.port, path)
            assert (r.status, r.headers["retry-after"], r.headers["connection"]) == (503, "1", "close")
        # The kubelet's probes never wait for a slot.
        assert (await get(srv.port, "/healthz")).status == 200
        assert (await get(srv.port, "/readyz")).status == 200
        assert (await get(srv.port, "/metrics", method="DELETE")).status == 405
        assert parse_response(await read_all(*busy))[0].body == b"".join(HUGE)
        assert (await get(srv.port, "/api/v1/slos")).status == 200  # the slot is free again
    assert srv.connection_counts == {"accepted": 7, "evicted": 0, "rejected": 0, "throttled": 2}


async def test_open_connections_by_state(state: State) -> None:
    async with serving(state, linger_timeout=60) as srv:
        assert srv.open_connections() == {WAITING: 0, RESPONDING: 0, LINGERING: 0}
        srv.set_metrics(HUGE)
        busy = await open_response(srv.port)
        idle = await asyncio.open_connection("127.0.0.1", srv.port)
        kept = await asyncio.open_connection("127.0.0.1", srv.port)
        kept[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive: waits for more
        await kept[0].readuntil(b"ok\n")
        done = await asyncio.open_connection("127.0.0.1", srv.port)
        done[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await done[0].readuntil(b"ok\n")
        await until(states(srv, waiting=2, responding=1, lingering=1), "one connection in each state")
        await read_all(*busy)
        for _, writer in (idle, kept, done):
            writer.close()
            await writer.wait_closed()
        await until(states(srv), "all closed")
    assert srv.connection_counts == {"accepted": 4, "evicted": 0, "rejected": 0, "throttled": 0}


@pytest.mark.parametrize(
    "wanted,fd_limit,cap,backlog",
    [
        (1024, 1_048_576, 1024, 100),
        (1024, 1024, 1024 - 128 - 300, 100),
        (1024, 256, 256 - 128 - 96, 32),
        (1024, 100, 25, 12),  # a quarter of a limit too low for the reserve
        (1024, 1, 1, 8),
        (64, 4096, 64, 100),
        (1024, resource.RLIM_INFINITY, 1024, 100),
    ],
)
def test_the_cap_stays_clear_of_the_fd_limit(wanted: int, fd_limit: int, cap: int, backlog: int) -> None:
    assert connection_limits(wanted, fd_limit) == (cap, backlog)


async def test_errors_a_client_can_cause_are_logged_a_few_times_a_minute(
    state: State, caplog: pytest.LogCaptureFixture
) -> None:
    def routes(path: str, query: str) -> RouteResponse | None:
        raise RuntimeError("bug")

    async with serving(state, routes=routes) as srv:
        for _ in range(10):
            assert (await get(srv.port, "/api/v1/x")).status == 500
    lines = [r for r in caplog.records if r.getMessage().startswith("route failed")]
    assert len(lines) == 3
    assert lines[0].exc_info is not None


async def test_stop_ends_idle_connections_and_frees_the_port(state: State) -> None:
    srv = HttpServer("127.0.0.1", 0, health=state.health, ready=state.readiness, read_timeout=60)
    assert srv.port == 0
    await srv.start()
    port = srv.port
    assert port != 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive: the server waits for more
    await writer.drain()
    async with asyncio.timeout(5):
        await reader.readuntil(b"ok\n")
        await srv.stop()
        assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await srv.stop()  # idempotent
    again = HttpServer("127.0.0.1", port, health=state.health, ready=state.readiness)
    await again.start()  # the port is free again
    await again.stop()


async def test_chunked_body_is_served_whole_and_gzipped_identically(server: HttpServer) -> None:
    # A body bigger than one write slice, given as chunks: the client sees exactly their concatenation.
    chunks = [b"# HELP a x\n# TYPE a gauge\n", b"a 1.0\n" * 300_000, b"b 2.0\n" * 5]
    server.set_metrics(chunks)
    whole = b"".join(chunks)
    plain = await get(server.port, "/metrics")
    assert plain.status == 200 and plain.body == whole
    zipped = await get(server.port, "/metrics", "Accept-Encoding: gzip")
    assert gzip.decompress(zipped.body) == whole


async def test_a_body_with_its_gzip_members_is_served_as_they_are(server: HttpServer) -> None:
    chunks = (b"# HELP a x\n# TYPE a gauge\n", b"a 1.0\n" * 1000, b"b 2.0\n")
    members = (gzip_member(chunks[0] + chunks[1]), gzip_member(chunks[2]))
    server.set_metrics(Body.of_members(members, sum(map(len, chunks))))
    plain = await get(server.port, "/metrics")
    assert plain.body == b"".join(chunks)
    assert not server.last_scrape_gzip
    zipped = await get(server.port, "/metrics", "Accept-Encoding: gzip")
    assert zipped.headers["content-encoding"] == "gzip" and server.last_scrape_gzip
    assert zipped.body == b"".join(members)  # no compression per scrape
    assert gzip.decompress(zipped.body) == plain.body  # two members: one stream


async def test_a_body_source_is_rendered_once_when_first_asked_for(server: HttpServer) -> None:
    renders: list[int] = []

    def source(n: int) -> Callable[[], Awaitable[Body]]:
        async def render() -> Body:
            await asyncio.sleep(0.05)
            renders.append(n)
            text = f"a {n}.0\n".encode()
            return Body.of_members((gzip_member(text),), len(text))

        return render

    server.set_metrics(source(1))
    server.set_metrics(source(2))  # never asked for: never rendered
    assert renders == []
    both = await asyncio.gather(get(server.port, "/metrics"), get(server.port, "/metrics"))
    assert [r.body for r in both] == [b"a 2.0\n"] * 2 and renders == [2]  # one render, shared
    server.set_metrics(source(3))
    server.prerender()  # ahead of a scrape
    await until(lambda: renders == [2, 3], "the render ahead")
    # A rendered body young enough is served while the newest is not rendered, which starts rendering.
    server.metrics_max_age = 60.0
    server.set_metrics(source(4))
    assert (await get(server.port, "/metrics", "Accept-Encoding: gzip")).body == gzip_member(b"a 3.0\n")
    await until(lambda: renders == [2, 3, 4], "the render in the background")
    assert (await get(server.port, "/metrics")).body == b"a 4.0\n"
    server.metrics_max_age = 0.0  # none is young enough: wait for the newest
    server.set_metrics(source(5))
    assert (await get(server.port, "/metrics")).body == b"a 5.0\n"
    assert renders == [2, 3, 4, 5]
    assert len(server.scrape_times) == 5
    # Without `render_behind` (a daemon rendering ahead of each scrape), serving it renders nothing.
    server.metrics_max_age, server.render_behind = 60.0, False
    server.set_metrics(source(6))
    assert (await get(server.port, "/metrics")).body == b"a 5.0\n"
    await asyncio.sleep(0.1)
    assert renders == [2, 3, 4, 5]


async def test_a_scrape_waits_for_the_render_under_way_not_for_two(server: HttpServer) -> None:
    renders: list[int] = []
    started = asyncio.Event()

    def source(n: int) -> Callable[[], Awaitable[Body]]:
        async def render() -> Body:
            started.set()
            await asyncio.sleep(0.2)
            renders.append(n)
            return Body.of_members((gzip_member(f"a {n}.0\n".encode()),), len(f"a {n}.0\n"))

        return render

    server.metrics_max_age = 0.0
    server.set_metrics(source(1))
    server.prerender()  # ahead of a scrape, which comes before that render is done
    await started.wait()
    server.set_metrics(source(2))
    assert (await get(server.port, "/metrics")).body == b"a 1.0\n"
    assert renders == [1]  # the newest was not rendered behind it
    assert (await get(server.port, "/metrics")).body == b"a 2.0\n"  # the next scrape renders the newest
    assert renders == [1, 2]


async def test_mounted_routes_answer_with_their_query_and_headers() -> None:
    seen: list[tuple[str, str]] = []

    def routes(path: str, query: str) -> RouteResponse | None:
        seen.append((path, query))
        if path == "/boom":
            raise RuntimeError("bug")
        if path != "/api/v1/x":
            return None
        return RouteResponse(
            200, "application/json", b'{"ok":true}', (("X-Content-Type-Options", "nosniff"),)
        )

    server = HttpServer("127.0.0.1", 0, health=lambda: True, ready=lambda: (True, ""), routes=routes)
    await server.start()
    try:
        get = "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ok = await exchange(server.port, get.format("/api/v1/x?slo=a%20b&page=2").encode())
        missing = await exchange(server.port, get.format("/nope").encode())
        boom = await exchange(server.port, get.format("/boom").encode())
    finally:
        await server.stop()
    assert (ok.status, ok.body, ok.headers["x-content-type-options"]) == (200, b'{"ok":true}', "nosniff")
    assert ok.headers["content-type"] == "application/json"
    assert (missing.status, boom.status) == (404, 500)
    assert seen == [("/api/v1/x", "slo=a%20b&page=2"), ("/nope", ""), ("/boom", "")]
