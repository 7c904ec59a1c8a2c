"""Large responses written from a thread (`sloguard.export.bulk`): exact bytes, sent while the event loop is
busy, keep-alive after them, and slow or vanished readers bounded as by the loop's writes."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time

import pytest

from sloguard.export import bulk
from sloguard.export.http import RESPONDING, HttpServer
from sloguard.export.text import Body, gzip_member
from tests.unit.export.httpclient import State, get, parse_response, serving, until

PIECE = b"# TYPE x_total counter\n" + b"".join(b'x_total{c="%06d"} %d\n' % (i, i) for i in range(2000))
#: ~60 MB of text in 1,500 pieces (more buffers than one sendmsg takes), ~5 MB gzipped.
PIECES = [PIECE] * 1500


def senders() -> int:
    return sum(t.name == "http-send" for t in threading.enumerate())


async def mid_response(port: int) -> asyncio.StreamWriter:
    """A connection that asked for /metrics (a large body) and does not read: its sender thread runs."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    await until(lambda: senders() == 1, "the sender thread")
    return writer


def body_of(pieces: list[bytes]) -> Body:
    return Body.of_members([gzip_member(p) for p in pieces], sum(map(len, pieces)))


def fetch_blocking(port: int, request: bytes, got: threading.Event, out: list[bytes]) -> None:
    """A client in a thread, so it reads while the event loop is busy; reads until the server closes."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request)
        data = bytearray()
        end = None
        while chunk := s.recv(1 << 20):
            data += chunk
            if end is None and (at := data.find(b"\r\n\r\n")) >= 0:
                length = int(data[:at].lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                end = at + 4 + length
            if end is not None and len(data) >= end:
                got.set()
        out.append(bytes(data))


@pytest.mark.parametrize("gzipped", [True, False])
async def test_a_large_body_arrives_whole_while_the_loop_is_busy(gzipped: bool) -> None:
    body = body_of(PIECES)
    async with serving(State()) as srv:
        srv.set_metrics(body)
        got, out = threading.Event(), list[bytes]()
        enc = b"Accept-Encoding: gzip\r\n" if gzipped else b""
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + enc + b"Connection: close\r\n\r\n"
        client = threading.Thread(target=fetch_blocking, args=(srv.port, request, got, out))
        client.start()
        await until(lambda: senders() == 1, "the sender thread")
        # One long turn of the loop (as an absorb step holding the GIL, in Python): the whole body
        # arrives meanwhile. Written by the loop, at most the socket buffers would.
        deadline = time.monotonic() + 30
        while not got.is_set() and time.monotonic() < deadline:
            pass
        assert got.is_set()
        await asyncio.to_thread(client.join)
    response, rest = parse_response(out[0])
    assert rest == b""
    # The members as they are (gzip.decompress of 1,500 members takes seconds).
    assert response.body == (b"".join(body.members) if gzipped else b"".join(PIECES))
    assert response.headers["content-length"] == str(len(response.body))


async def test_keep_alive_goes_on_after_a_threaded_response() -> None:
    async with serving(State()) as srv:
        srv.set_metrics(body_of(PIECES[:200]))
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        two = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"
        writer.write(two * 2 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(30):
            data = await reader.read()
        writer.close()
        await writer.wait_closed()
    text = b"".join(PIECES[:200])
    for _ in range(2):
        response, data = parse_response(data)
        assert response.headers["connection"] == "keep-alive"
        assert gzip.decompress(response.body) == text
    response, data = parse_response(data)
    assert (response.status, response.body, data) == (200, b"ok\n", b"")


async def test_head_and_small_bodies_stay_on_the_loop() -> None:
    async with serving(State()) as srv:
        srv.set_metrics(body_of(PIECES[:200]))
        r = await get(srv.port, "/metrics", method="HEAD")
        assert (r.status, r.body) == (200, b"")
        assert int(r.headers["content-length"]) == 200 * len(PIECE)
        srv.threaded_send_min = None  # all by the loop: the same bytes
        r = await get(srv.port, "/metrics")
        assert r.body == b"".join(PIECES[:200])


async def test_a_reader_that_stops_reading_is_cut_off_after_write_timeout() -> None:
    async with serving(State(), write_timeout=0.5) as srv:
        srv.set_metrics(body_of(PIECES))
        writer = await mid_response(srv.port)
        started = time.monotonic()
        await until(lambda: srv.open_connections()[RESPONDING] == 0, "the slow reader cut off")
        assert time.monotonic() - started < 3
        await until(lambda: senders() == 0, "the sender thread ended")
        assert (await get(srv.port, "/healthz")).status == 200
        writer.transport.abort()


async def test_a_reader_that_vanishes_ends_its_sender() -> None:
    async with serving(State()) as srv:
        srv.set_metrics(body_of(PIECES))
        for _ in range(3):
            writer = await mid_response(srv.port)
            writer.transport.abort()
            await until(lambda: senders() == 0, "the sender thread ended")
        assert (await get(srv.port, "/healthz")).status == 200


async def test_stop_ends_a_response_in_progress() -> None:
    srv = HttpServer("127.0.0.1", 0, lambda: True, lambda: (True, ""))
    await srv.start()
    srv.set_metrics(body_of(PIECES))
    writer = await mid_response(srv.port)
    started = time.monotonic()
    await srv.stop()
    assert time.monotonic() - started < 2
    await until(lambda: senders() == 0, "the sender thread ended")
    writer.transport.abort()


def test_partial_sends_are_resumed_where_they_stopped() -> None:
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    a.setblocking(False)
    chunks = [bytes([i % 256]) * (100 + 37 * i % 900) for i in range(2500)]  # more than one sendmsg takes
    received = bytearray()

    def read() -> None:
        while data := b.recv(7000):
            received.extend(data)
            time.sleep(0.0001)  # slower than the sender: its sends are partial

    reader = threading.Thread(target=read)
    reader.start()
    sender = socket.socket(fileno=a.detach())
    bulk._send_blocking(sender, chunks, time.monotonic() + 60, threading.Event())
    assert not sender.getblocking()  # as the loop wants it back
    sender.close()
    reader.join()
    b.close()
    assert bytes(received) == b"".join(chunks)
