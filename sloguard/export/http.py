"""A small HTTP/1.1 server on asyncio streams: /metrics (cached bytes), /healthz, /readyz, and the routes
of whoever mounts more (`Routes`: the UI and its JSON API).

No framework: three fixed routes plus a read-only route table, GET and HEAD only, no request bodies.
`/metrics` serves the bytes the last tick rendered (`set_metrics`); nothing is computed per scrape
except, for a body published without its gzip encoding, that encoding, at most once per body (in a worker
thread, shared by concurrent scrapes).

Hostile or broken clients cost a bounded amount, and cannot starve the scrapes and probes of others:

- a request head must arrive within ``read_timeout`` and fit in ``max_header_bytes``; a response must
  be drained within ``write_timeout``; any error ends that one connection, never the server;
- at most ``max_in_flight`` responses (everything but the probes) are written at once; a request
  beyond that is answered 503 with ``Retry-After`` at once (Go promhttp's ``MaxRequestsInFlight``), so
  a flood of slow readers costs bounded buffers and leaves a slot to the next scrape within ``write_timeout``;
- ``/healthz`` and ``/readyz`` take no slot: they are a few bytes computed from memory, and a liveness
  probe must not fail because the server is busy;
- at most ``max_connections`` sockets are open (lowered to stay clear of the file descriptor limit).
  Open connections cost an idle coroutine, not a slot, so the cap is high; at the cap a new connection
  evicts the one that has waited longest for its request head (an idle keep-alive or a trickling client;
  else one lingering in its close), never one being answered. So slow clients cannot lock others out:
  they are the ones that make room.

A response of a MB or more (a large ``/metrics``) is written from a thread (`sloguard.export.bulk`), under
the same ``write_timeout``: written by the loop, it would take a turn of the loop per few MB the kernel
takes, and under a Kafka backlog a turn is as long as an absorb step.

Every socket is counted (`connection_counts`, `open_connections`: the daemon exports them), and the log
lines a connection can cause are rate-limited, so a flood of connections cannot flood the log.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gzip
import io
import itertools
import logging
import resource
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from sloguard.export.bulk import can_hand_over, send_off_loop
from sloguard.export.text import CONTENT_TYPE, GZIP_LEVEL, Body
from sloguard.logs import RateLimiter

log = logging.getLogger(__name__)

_TEXT = "text/plain; charset=utf-8"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
_WRITE_SLICE = 1 << 20  # bytes handed to the transport between drains
#: Bodies from this size on are written from a thread (`HttpServer.threaded_send_min`): about what the
#: kernel takes in one write, so smaller ones go out in a turn of the loop anyway.
_THREADED_SEND_MIN = 1 << 20
#: Keep-alive connections serve at most this many requests (the last response says close), so no client
#: holds one connection forever.
_MAX_REQUESTS_PER_CONNECTION = 100
#: File descriptors left to the rest of the process (Kafka, checkpoints, the loop) below the limit.
_FD_RESERVE = 128
#: The listen backlog, and so how many connections asyncio accepts in one turn of its loop (its default).
_BACKLOG = 100
#: Answered from memory in a few bytes, and never refused for being busy (the kubelet's probes).
_PROBES = ("/healthz", "/readyz")
#: What an open connection is doing: its position in `HttpServer.open_connections`.
WAITING, RESPONDING, LINGERING = "waiting", "responding", "lingering"
EVICTED = "evicted"  # closed by the server to make room; no longer open
#: Keys of `HttpServer.connection_counts` (see there).
CONNECTION_OUTCOMES = ("accepted", "evicted", "rejected", "throttled")


class _HttpError(Exception):
    """A request we answer with ``status`` and then close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]
    query: str = ""


@dataclass(frozen=True, slots=True)
class Response:
    """What a mounted route answers: a status (one of the server's known reasons), a body, headers."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


#: Mounted routes: ``(path, raw query string) -> Response``, or None when the path is not theirs (404).
#: Called on the event loop for every GET/HEAD that is not /metrics, /healthz or /readyz: it must answer
#: from precomputed state in well under a millisecond or so, never block, and never raise for bad input
#: (a raise is logged and answered 500).
Routes = Callable[[str, str], Response | None]


def _gzip_chunks(chunks: Sequence[bytes]) -> tuple[bytes, ...]:
    """gzip of the concatenated chunks, without concatenating them (same bytes as gzip.compress)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz:
        for chunk in chunks:
            gz.write(chunk)
    return (out.getvalue(),)


def _gzip_body(body: tuple[bytes, ...] | Body) -> tuple[bytes, ...]:
    return body.members if isinstance(body, Body) else _gzip_chunks(body)


#: Renders a body when it is first asked for (`HttpServer.set_metrics`).
BodySource = Callable[[], Awaitable[Body]]


class _Payload:
    """One body (as chunks, or a `Body`) and its gzip encoding: given (a `Body` whose pieces are all
    gzipped), or made once a client asks for it (once, off the loop; for a `Body`, only the pieces not
    gzipped yet). A `BodySource` is rendered by the first request that
    needs it, or by `start`; once, shared by every request waiting for it."""

    __slots__ = ("_gzip", "_members", "_source", "_task", "chunks", "length", "published")
    #: The text: ``chunks``, or a `Body`'s ``text`` (a packed piece decompressed as it is sent).

    def __init__(self, body: bytes | Sequence[bytes] | Body | BodySource) -> None:
        self._gzip: asyncio.Future[tuple[bytes, ...]] | None = None
        self._members: tuple[bytes, ...] | None = None
        self._task: asyncio.Future[None] | None = None
        self._source: BodySource | None = None
        self.chunks: tuple[bytes, ...] | Body = ()
        self.length = 0
        self.published = time.monotonic()
        if callable(body):
            self._source = body
        else:
            self._set(body)

    def _set(self, body: bytes | Sequence[bytes] | Body) -> None:
        if isinstance(body, Body):
            self.chunks = body
            if body.gzipped:
                self._members = body.members
            self.length = body.length
        else:
            self.chunks = (body,) if isinstance(body, bytes) else tuple(body)
            self.length = sum(len(c) for c in self.chunks)

    @property
    def rendered(self) -> bool:
        return self._source is None

    def start(self) -> asyncio.Future[None]:
        """Render now (if not rendered or rendering yet); the future of that render."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._render())
        return self._task

    async def _render(self) -> None:
        assert self._source is not None
        self._set(await self._source())
        self._source = None

    async def ready(self) -> None:
        """Wait until the body is there (rendering it if nobody has started)."""
        if self._source is not None:
            # Shielded: a client that goes away must not cancel a render others are waiting for.
            await asyncio.shield(self.start())

    async def gzipped(self) -> tuple[bytes, ...]:
        if self._members is not None:
            return self._members
        if self._gzip is None:
            # zlib releases the GIL while compressing, so the event loop keeps serving meanwhile. A `Body`
            # gzips only its pieces that have no member yet (those a gzip scrape of an earlier body made
            # are kept with the piece).
            self._gzip = asyncio.ensure_future(asyncio.to_thread(_gzip_body, self.chunks))
        return await asyncio.shield(self._gzip)


def _accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (``gzip`` or ``*`` with a non-zero q)."""
    star = False
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            star = q > 0
    return star


def connection_limits(wanted: int, fd_limit: int) -> tuple[int, int]:
    """The connection cap (``wanted``, or fewer) and listen backlog for a soft file descriptor limit.

    Past the limit accept() fails, and asyncio logs and retries every second while nobody is served; below
    it, the cap evicts idle connections instead. The cap must leave room for more than the open
    connections: asyncio accepts up to ``backlog`` sockets in one turn of the loop before any handler runs
    (so before any eviction), and evicted sockets close only at the next turn; three backlogs cover both
    (measured: two were not enough under a reconnecting flood). The rest of the process keeps
    ``_FD_RESERVE``. A limit too low for all that gets a quarter of it, with a smaller backlog.
    """
    if fd_limit <= 0:  # RLIM_INFINITY
        return wanted, _BACKLOG
    backlog = max(8, min(_BACKLOG, fd_limit // 8))
    room = fd_limit - _FD_RESERVE - 3 * backlog
    return max(1, min(wanted, room if room > 0 else fd_limit // 4)), backlog


@dataclass(eq=False, slots=True)
class _Connection:
    """An open connection: its handler, its writer, and what it is doing (`WAITING`, ...)."""

    task: asyncio.Task[None]
    writer: asyncio.StreamWriter
    state: str = WAITING


class HttpServer:
    """Serves ``/metrics`` (the last `set_metrics` body), ``/healthz``, ``/readyz`` and ``routes``.

    ``health()`` → 200 "ok" or 503; ``ready()`` → ``(ready, why)``: 200 "ok" or 503 with the reason.
    Either callable raising counts as a 503. `port` is the bound port once started (so port 0 works).
    The limits are described in the module docstring.
    """

    def __init__(
        self,
        host: str,
        port: int,
        health: Callable[[], bool],
        ready: Callable[[], tuple[bool, str]],
        *,
        read_timeout: float = 10.0,
        write_timeout: float = 30.0,
        max_header_bytes: int = 16 * 1024,
        max_connections: int = 1024,
        max_in_flight: int = 16,
        linger_timeout: float = 1.0,
        routes: Routes | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self._health = health
        self._ready = ready
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.max_header_bytes = max_header_bytes
        fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.max_connections, self._backlog = connection_limits(max_connections, fd_limit)
        self.linger_timeout = linger_timeout
        self.routes = routes
        self._metrics: _Payload | None = None
        #: The newest body whose render is done, the one rendering in the background, and how old (since
        #: published) a rendered body may be to be served while the newest is not rendered (`set_metrics`).
        self._rendered: _Payload | None = None
        self._rendering: _Payload | None = None
        self.metrics_max_age = 0.0
        #: Whether a scrape served an older rendered body starts rendering the newest in the background, for
        #: the next scrape. A daemon that renders ahead of each expected scrape (`prerender`) turns it off:
        #: that render would run during the transfer and be replaced before the next scrape.
        self.render_behind = True
        #: Called on the loop when a /metrics request has been read, before it is answered.
        self.on_scrape: Callable[[], None] | None = None
        #: When /metrics requests arrived (monotonic), the latest last: `scrape_times`.
        self._scrapes: collections.deque[float] = collections.deque(maxlen=8)
        #: Whether the latest /metrics request accepted gzip (Prometheus's do): a render may then gzip
        #: its body at once, for the next scrape.
        self.last_scrape_gzip = False
        self._server: asyncio.Server | None = None
        self._in_flight = asyncio.Semaphore(max_in_flight)
        #: Open connections by state, each in the order it entered that state (oldest first).
        self._open: dict[str, dict[_Connection, None]] = {s: {} for s in (WAITING, RESPONDING, LINGERING)}
        #: Handlers of evicted connections, until they have ended (`stop` waits for them too).
        self._evicted: set[asyncio.Task[None]] = set()
        #: Sockets by what became of them: ``accepted``; of those, ``evicted`` (closed to make room for a
        #: newer one) and ``throttled`` (answered 503 and closed: max_in_flight responses in progress);
        #: ``rejected``: closed at once, at the cap with nothing to evict (never accepted).
        self.connection_counts: dict[str, int] = dict.fromkeys(CONNECTION_OUTCOMES, 0)
        self._limiter = RateLimiter(interval=60.0, burst=3)
        #: Responses of at least this many bytes are written from a thread (`sloguard.export.bulk`); None:
        #: all by the loop.
        self.threaded_send_min: int | None = _THREADED_SEND_MIN

    @property
    def port(self) -> int:
        """The bound port once started (the one the OS picked when 0 was given), else the one asked for."""
        if self._server is not None and self._server.sockets:
            port: int = self._server.sockets[0].getsockname()[1]
            return port
        return self._port

    def open_connections(self) -> dict[str, int]:
        """Open connections now, by state: ``waiting`` for a request head (idle or still arriving),
        ``responding``, ``lingering`` (closing: reading what the client still sends)."""
        return {state: len(conns) for state, conns in self._open.items()}

    def set_metrics(self, body: bytes | Sequence[bytes] | Body | BodySource) -> None:
        """Publish a new exposition; scrapes from now on get it. A `Body` gzips the pieces it has no member
        for, other bodies gzip whole, on the first gzip scrape (in a worker thread). A `BodySource` is
        rendered on demand: by the first scrape (which waits for it), or ahead of one by `prerender`; a
        source never asked for is never rendered. While it is not, a scrape gets the newest rendered body
        if that one was published at most ``metrics_max_age`` seconds ago (0: never), and (`render_behind`)
        the newest starts rendering in the background (unless a background render is running), for the
        next scrape. Else, while a background render runs, the scrape waits for that one (never for two
        renders, one after the other); else it renders the newest. On the loop."""
        self._metrics = _Payload(body)

    def prerender(self) -> None:
        """Start rendering the published body now, so the next scrape need not wait for it."""
        if self._metrics is not None:
            self._background(self._metrics)

    def _background(self, payload: _Payload) -> None:
        if payload.rendered or (self._rendering is not None and not self._rendering.rendered):
            return
        self._rendering = payload
        payload.start().add_done_callback(lambda _: self._done(payload))

    def _done(self, payload: _Payload) -> None:
        if payload.rendered and (self._rendered is None or payload.published >= self._rendered.published):
            self._rendered = payload

    @property
    def scrape_times(self) -> tuple[float, ...]:
        """When the last few /metrics requests arrived (``time.monotonic``), oldest first."""
        return tuple(self._scrapes)

    async def _metrics_payload(self) -> _Payload | None:
        """The body a scrape gets (see `set_metrics`)."""
        metrics, rendered = self._metrics, self._rendered
        if metrics is None or metrics.rendered:
            return metrics
        if rendered is not None and time.monotonic() - rendered.published <= self.metrics_max_age:
            if self.render_behind:
                self._background(metrics)
            return rendered
        rendering = self._rendering
        if rendering is not None and not rendering.rendered:
            # A render is under way (`prerender`, ahead of this scrape): the newest would render after it
            # (one render at a time), and this scrape would wait for both. It gets the body ready soonest.
            await rendering.ready()
            self._done(rendering)
            return rendering
        await metrics.ready()
        self._done(metrics)
        return metrics

    async def start(self) -> None:
        """Bind and start accepting connections (returns once listening)."""
        if self._server is not None:
            raise RuntimeError("HttpServer already started")
        # The stream limit bounds a single line of the request head (a longer one is refused).
        self._server = await asyncio.start_server(
            self._connection, self.host, self._port, limit=self.max_header_bytes, backlog=self._backlog
        )

    async def stop(self) -> None:
        """Stop listening, end open connections, and wait until they are gone."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        # Aborting the sockets ends each handler on its own (its reads see EOF, its writes fail);
        # cancelling is only the fallback for one that does not notice in time.
        conns = [conn for by_state in self._open.values() for conn in by_state]
        for conn in conns:
            conn.writer.transport.abort()
        tasks = [conn.task for conn in conns] + list(self._evicted)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    # -- one connection ----------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if not self._make_room():
            self.connection_counts["rejected"] += 1
            writer.transport.abort()
            return
        self.connection_counts["accepted"] += 1
        conn = _Connection(task, writer)
        self._open[WAITING][conn] = None
        clean = False
        try:
            await self._serve(conn, reader, writer)
            clean = True
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # the client was too slow or went away: nothing to answer
        except asyncio.CancelledError:
            # Only `stop` and eviction cancel these tasks, and nothing awaits their result. Ending
            # normally keeps Python 3.11's start_server callback from logging every one as an error.
            pass
        except Exception:
            # A bug in a handler must end this connection, not the server.
            if (tail := self._allow_log("http connection failed")) is not None:
                log.exception("http connection failed%s", tail)
        finally:
            # The connection stays registered while it lingers in `_close`, so that `stop` aborts it and
            # waits for it too (a lingering handler left behind would hold its socket past the loop).
            try:
                if clean:
                    self._set_state(conn, LINGERING)
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._close(reader, writer)
                else:
                    writer.transport.abort()
            finally:
                if conn.state in self._open:
                    del self._open[conn.state][conn]
                self._evicted.discard(task)

    def _make_room(self) -> bool:
        """Whether a new connection may open: below the cap, or once the connection that has waited
        longest for its request head (else the oldest lingering one) is evicted. Never one mid-response."""
        if sum(map(len, self._open.values())) < self.max_connections:
            return True
        victim = next(iter(self._open[WAITING]), None) or next(iter(self._open[LINGERING]), None)
        what = "closing the longest waiting ones" if victim else "refusing new ones: all are responding"
        if (tail := self._allow_log(what)) is not None:
            log.warning("http connection cap (%d) reached: %s%s", self.max_connections, what, tail)
        if victim is None:
            return False
        del self._open[victim.state][victim]
        victim.state = EVICTED
        self._evicted.add(victim.task)
        self.connection_counts["evicted"] += 1
        # Aborting frees its socket now; cancelling ends its handler wherever it waits (a read).
        victim.writer.transport.abort()
        victim.task.cancel()
        return True

    def _set_state(self, conn: _Connection, state: str) -> None:
        """Move ``conn`` to ``state``, as the youngest there."""
        del self._open[conn.state][conn]
        conn.state = state
        self._open[state][conn] = None

    def _allow_log(self, message: str) -> str | None:
        """Whether a line a connection or request caused may be logged now: at most a few a minute per
        ``message``, so a flood of bad clients cannot flood the log. None, or what to append to it (how
        many were suppressed)."""
        ok, suppressed = self._limiter.allow(message, time.monotonic())
        if not ok:
            return None
        return f" ({suppressed} similar lines suppressed)" if suppressed else ""

    async def _close(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Close after a response, without losing it.

        Closing a socket that still has unread request bytes makes the kernel send a reset, which can
        destroy the response before the client reads it (an error answered before the request was
        read, a pipelined request we will not serve). So: send EOF, read and drop what the client
        still sends until it closes too (bounded in time), then close.
        """
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):
            async with asyncio.timeout(self.linger_timeout):
                if writer.can_write_eof():
                    writer.write_eof()
                while await reader.read(64 * 1024):
                    pass
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(self.linger_timeout):
                await writer.wait_closed()

    async def _serve(
        self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for n in range(1, _MAX_REQUESTS_PER_CONNECTION + 1):
            self._set_state(conn, WAITING)
            try:
                async with asyncio.timeout(self.read_timeout):
                    request = await self._read_request(reader)
            except _HttpError as e:
                self._set_state(conn, RESPONDING)
                await self._send(writer, e.status, _TEXT, f"{e.message}\n".encode(), keep_alive=False)
                return
            except TimeoutError:
                return  # idle keep-alive or a slow client: close without a word
            if request is None:
                return
            self._set_state(conn, RESPONDING)
            # The last response a connection may carry says close, so the client sends no request we drop.
            keep_alive = self._keep_alive(request) and n < _MAX_REQUESTS_PER_CONNECTION
            if not await self._respond(request, writer, keep_alive):
                return

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        """Read a request head; None on a clean EOF before any byte of it."""
        lines: list[bytes] = []
        size = 0
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # a line longer than the stream limit
                raise _HttpError(431, "request head too large") from None
            if not line:
                if lines:
                    raise _HttpError(400, "incomplete request head")
                return None
            size += len(line)
            if size > self.max_header_bytes:
                raise _HttpError(431, "request head too large")
            if line in (b"\r\n", b"\n"):
                if lines:
                    break
                continue  # RFC 9112 2.2: ignore empty lines before the request line
            lines.append(line)
        try:
            head = [raw.decode("latin-1").rstrip("\r\n") for raw in lines]
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
            raise _HttpError(400, "bad request") from None
        parts = head[0].split(" ")
        if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
            raise _HttpError(400, "bad request line")
        method, target, version = parts
        if not version.startswith("HTTP/1."):
            raise _HttpError(505, "only HTTP/1.x is served")
        headers: dict[str, str] = {}
        for raw in head[1:]:
            name, sep, value = raw.partition(":")
            if not sep or not name or name != name.strip():
                raise _HttpError(400, "bad header line")
            key = name.lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if target.startswith(("http://", "https://")):  # absolute form (RFC 9112 3.2.2), e.g. via a proxy
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        path, _, query = target.partition("?")
        return _Request(method, path, version, headers, query)

    @staticmethod
    def _keep_alive(request: _Request) -> bool:
        # Bodies are never read, so a request that has one ends the connection.
        if request.headers.get("transfer-encoding") or request.headers.get("content-length", "0") != "0":
            return False
        tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
        if request.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    async def _respond(self, request: _Request, writer: asyncio.StreamWriter, keep_alive: bool) -> bool:
        """Answer one request; whether the connection may serve another."""
        head_only = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            await self._send(
                writer, 405, _TEXT, b"method not allowed\n", keep_alive, extra=(("Allow", "GET, HEAD"),)
            )
        elif request.path == "/healthz":
            ok = self._call_health()
            status, text = (200, "ok") if ok else (503, "unhealthy")
            await self._send(writer, status, _TEXT, f"{text}\n".encode(), keep_alive, head_only)
        elif request.path == "/readyz":
            ready, why = self._call_ready()
            status, text = (200, "ok") if ready else (503, why or "not ready")
            await self._send(writer, status, _TEXT, f"{text}\n".encode(), keep_alive, head_only)
        elif self._in_flight.locked():
            # Refused at once rather than queued: a queued request would hold its connection (which
            # could then not be evicted) for as long as the slow readers ahead of it.
            self.connection_counts["throttled"] += 1
            busy = b"too many responses in flight, retry later\n"
            await self._send(writer, 503, _TEXT, busy, False, head_only, (("Retry-After", "1"),))
            return False
        else:
            async with self._in_flight:
                await self._answer(request, writer, keep_alive, head_only)
        return keep_alive

    async def _answer(
        self, request: _Request, writer: asyncio.StreamWriter, keep_alive: bool, head_only: bool
    ) -> None:
        """/metrics or a mounted route (or 404), holding an in-flight slot."""
        if request.path == "/metrics":
            self._scrapes.append(time.monotonic())
            if self.on_scrape is not None:
                self.on_scrape()
            gzipped = _accepts_gzip(request.headers.get("accept-encoding", ""))
            self.last_scrape_gzip = gzipped
            metrics = await self._metrics_payload()
            if metrics is None:
                await self._send(writer, 503, _TEXT, b"no snapshot rendered yet\n", keep_alive, head_only)
                return
            extra: tuple[tuple[str, str], ...] = (("Vary", "Accept-Encoding"),)
            body: tuple[bytes, ...] | Body = metrics.chunks
            if gzipped:
                body = await metrics.gzipped()
                extra += (("Content-Encoding", "gzip"),)
            await self._send(writer, 200, CONTENT_TYPE, body, keep_alive, head_only, extra)
            return
        routed = self._call_routes(request)
        if routed is None:
            await self._send(writer, 404, _TEXT, b"not found\n", keep_alive, head_only)
        else:
            r = routed
            await self._send(writer, r.status, r.content_type, r.body, keep_alive, head_only, r.headers)

    def _call_routes(self, request: _Request) -> Response | None:
        if self.routes is None:
            return None
        try:
            return self.routes(request.path, request.query)
        except Exception:
            if (tail := self._allow_log("route failed")) is not None:
                log.exception("route failed: %r%s", request.path, tail)
            return Response(500, _TEXT, b"internal error\n")

    def _call_health(self) -> bool:
        try:
            return bool(self._health())
        except Exception:
            if (tail := self._allow_log("health check failed")) is not None:
                log.exception("health check failed%s", tail)
            return False

    def _call_ready(self) -> tuple[bool, str]:
        try:
            ready, why = self._ready()
        except Exception as e:
            if (tail := self._allow_log("readiness check failed")) is not None:
                log.exception("readiness check failed%s", tail)
            return False, f"readiness check failed: {type(e).__name__}"
        return bool(ready), why

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        content_type: str,
        body: bytes | Sequence[bytes] | Body,
        keep_alive: bool,
        head_only: bool = False,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        chunks: Iterable[bytes]
        if isinstance(body, Body):
            # A piece at a time (a packed one, kept only gzipped, decompressed: a few tens of KB), between
            # drains.
            chunks, length = body.text(), body.length
        else:
            chunks = (body,) if isinstance(body, bytes) else body
            length = sum(len(c) for c in chunks)
        lines = [
            f"HTTP/1.1 {status} {_REASONS[status]}",
            f"Content-Type: {content_type}",
            f"Content-Length: {length}",
            "Cache-Control: no-store",
            *(f"{k}: {v}" for k, v in extra),
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        threaded = self.threaded_send_min
        if not head_only and threaded is not None and length >= threaded and can_hand_over(writer):
            # From a thread: written by the loop, a large body takes a turn of it per few MB the kernel
            # takes, and a turn is as long as an absorb step (see `sloguard.export.bulk`).
            await send_off_loop(writer, itertools.chain((head,), chunks), self.write_timeout)
            return
        writer.write(head)
        async with asyncio.timeout(self.write_timeout):
            if not head_only:
                # In slices with a drain between: the transport's buffer copies what it is given, so
                # handing it a 300 MB body at once would double the memory for every scrape.
                for chunk in chunks:
                    view = memoryview(chunk)
                    for i in range(0, len(view), _WRITE_SLICE):
                        writer.write(view[i : i + _WRITE_SLICE])
                        await writer.drain()
            await writer.drain()
