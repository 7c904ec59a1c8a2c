"""Writing a large response from a thread, so that its transfer does not wait for turns of the event loop.

Why: while the daemon consumes a backlog, each turn of its loop absorbs a Kafka fetch (tens of ms), and the
kernel takes at most its send buffer (~4 MiB, autotuned) per write. Written by the loop, a 22 MB gzip
``/metrics`` needs a turn per few MB, so its transfer takes several absorb steps. A thread in a blocking
``sendmsg`` holds no GIL: the kernel copies while the client reads and the loop absorbs, and the thread
needs the GIL only between calls (one per `_IOV_MAX` buffers or `_BATCH_BYTES`).

How: the asyncio transport is made idle first (its write buffer empty, reading paused), so that the loop
does not touch the socket meanwhile. A duplicate of the descriptor is switched to blocking (O_NONBLOCK
belongs to the open file, so asyncio's descriptor is blocking too: harmless while the transport is idle)
and written with ``sendmsg``; then it is non-blocking again, the loop closes the duplicate and reading
resumes.

Bounded like the loop's writes: the caller's timeout, or its cancellation, shuts the socket down, which
ends a blocked ``sendmsg`` at once; ``SO_SNDTIMEO`` makes each call return within `_POLL_S` anyway, and
the thread then stops once past its own deadline or abandoned. So a slow reader holds a thread no longer
than it holds the response's in-flight slot (plus `_POLL_S`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Iterable

#: Buffers per ``sendmsg`` (the kernel refuses more than IOV_MAX, 1024 on Linux).
_IOV_MAX = min(1024, os.sysconf("SC_IOV_MAX")) if hasattr(os, "sysconf") else 16
#: Bytes gathered per ``sendmsg``: a plain body's pieces are decompressed as they are sent, so a batch
#: is what is held at once.
_BATCH_BYTES = 8 << 20
#: Longest a blocked ``sendmsg`` waits before the thread looks at its deadline and whether it is abandoned.
_POLL_S = 0.25


def can_hand_over(writer: asyncio.StreamWriter) -> bool:
    """Whether `send_off_loop` may take this connection now: a socket transport, open, nothing buffered."""
    transport = writer.transport
    return (
        isinstance(transport, asyncio.Transport)  # it reads too: reading is paused meanwhile
        and transport.get_extra_info("socket") is not None
        and not transport.is_closing()
        and transport.get_write_buffer_size() == 0
    )


async def send_off_loop(writer: asyncio.StreamWriter, chunks: Iterable[bytes], limit_s: float) -> None:
    """Write ``chunks`` (iterated in the thread) to the writer's socket from a thread; return once all are
    sent. Only when `can_hand_over`. Raises what the send raised (``OSError``), ``TimeoutError`` past
    ``limit_s`` seconds; on any error or cancellation the socket is shut down (the connection is lost)."""
    transport = writer.transport
    assert isinstance(transport, asyncio.Transport)  # `can_hand_over`
    raw = transport.get_extra_info("socket")
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    abandoned = threading.Event()
    deadline = time.monotonic() + limit_s
    # Closed on the loop (`finish`), not by the thread: the loop may shut it down until then, and must
    # never reach a descriptor number that was closed and reused meanwhile.
    sock = socket.socket(fileno=os.dup(raw.fileno()))
    reading = transport.is_reading()
    if reading:
        transport.pause_reading()  # the loop must not read from a blocking descriptor

    def finish(error: BaseException | None) -> None:
        sock.close()
        if done.done() or abandoned.is_set():  # the caller gave up on it
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def work() -> None:
        error: BaseException | None = None
        try:
            _send_blocking(sock, chunks, deadline, abandoned)
        except Exception as e:  # noqa: BLE001 - handed to the loop, which raises it
            error = e
        try:
            loop.call_soon_threadsafe(finish, error)
        except RuntimeError:  # the loop is closed: nobody else uses the socket any more
            sock.close()

    threading.Thread(target=work, name="http-send", daemon=True).start()
    try:
        async with asyncio.timeout(limit_s):
            await done
    except BaseException:
        abandoned.set()
        if sock.fileno() != -1:  # the thread still sends: this ends a blocked sendmsg at once
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        raise
    if reading and not transport.is_closing():
        transport.resume_reading()


def _send_blocking(
    sock: socket.socket, chunks: Iterable[bytes], deadline: float, abandoned: threading.Event
) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, int(_POLL_S * 1e6)))
        sock.setblocking(True)
        batch: list[bytes] = []
        size = 0
        for chunk in chunks:
            if not chunk:
                continue
            batch.append(chunk)
            size += len(chunk)
            if len(batch) == _IOV_MAX or size >= _BATCH_BYTES:
                _send_all(sock, batch, deadline, abandoned)
                batch, size = [], 0
        if batch:
            _send_all(sock, batch, deadline, abandoned)
    finally:
        with contextlib.suppress(OSError):
            sock.setblocking(False)  # before the loop may use the socket again


def _send_all(sock: socket.socket, batch: list[bytes], deadline: float, abandoned: threading.Event) -> None:
    """``sendmsg`` until the whole batch is sent (a blocking call sends it all unless interrupted)."""
    bufs: list[bytes | memoryview] = list(batch)
    first = 0
    while first < len(bufs):
        if abandoned.is_set():
            raise ConnectionAbortedError("send abandoned")
        if time.monotonic() > deadline:
            raise TimeoutError("send timed out")
        try:
            n = sock.sendmsg(bufs[first : first + _IOV_MAX])
        except BlockingIOError:  # SO_SNDTIMEO passed with nothing sent: a slow reader
            continue
        while n:
            head = bufs[first]
            if n >= len(head):
                n -= len(head)
                first += 1
            else:
                bufs[first] = memoryview(head)[n:]
                n = 0
