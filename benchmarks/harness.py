"""What every benchmark shares: starting and stopping child processes (pinned to a CPU), reading a
process's resident set and CPU time from ``/proc``, scraping ``/metrics``, and waiting for readiness.

The daemon benchmarks measure a process under test pinned to one CPU while the harness, the broker and
the load generators keep to the others (`pin_harness`), so what the daemon costs is not mixed with what
feeding it costs. Children write their output to ``benchmarks/out/<name>.out/.err``, and every child
started here is stopped on the way out, also on Ctrl-C, SIGTERM (`stop_on_sigterm`) and errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Literal, TypeAlias

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
#: The SLO file of the daemon benchmarks: an SLO for each of the load generator's six services.
BENCH_CONFIG = HERE / "slos.bench.yaml"

# sloguard's self-metrics the benchmarks read (it writes them first in /metrics).
EVENTS = "sloguard_events_processed_total"
SNAPSHOT_TS = "sloguard_snapshot_timestamp_seconds"
RENDER_S = "sloguard_render_duration_seconds"
TICK_S = "sloguard_tick_duration_seconds"

#: Seconds a SIGTERM'd daemon gets to commit and exit before SIGKILL.
TERM_GRACE_S = 25.0
#: Seconds a piped child gets to exit after its stdin is closed before SIGKILL.
EOF_GRACE_S = 10.0


# -- messages and signals ------------------------------------------------------------------------------


def say(text: str) -> None:
    """A progress line on stderr, time-stamped (stdout keeps the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def tail(path: Path, lines: int = 5) -> str:
    """The last few lines of a (log) file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwind through every `finally` (children and brokers are stopped), once: a second SIGTERM must
    # not interrupt that cleanup.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """Make SIGTERM behave as Ctrl-C: every child and broker is stopped on the way out."""
    signal.signal(signal.SIGTERM, _on_sigterm)


# -- processes ---------------------------------------------------------------------------------------------


def pin_harness() -> int | None:
    """Keep this process (and so every child it starts) off the last CPU; return that CPU for the
    process under test, or None on a single-CPU machine (then nothing is pinned)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    os.sched_setaffinity(0, set(cpus[:-1]))
    return cpus[-1]


@contextlib.contextmanager
def spawn(
    argv: list[str],
    name: str,
    core: int | None = None,
    env: dict[str, str] | None = None,
    *,
    pipes: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` from the repository root, pinned to ``core`` if given; stderr (and, without
    ``pipes``, stdout) in benchmarks/out/<name>.out/.err.

    On the way out, without ``pipes``: SIGTERM (the daemon then commits and exits), SIGKILL after
    `TERM_GRACE_S`. With ``pipes`` (stdin and stdout are pipes to this process): stdin is closed, which
    tells the child to stop, SIGKILL after `EOF_GRACE_S`.
    """
    OUT.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        err = files.enter_context((OUT / f"{name}.err").open("wb"))
        out: IO[bytes] | int = subprocess.PIPE
        if not pipes:
            out = files.enter_context((OUT / f"{name}.out").open("wb"))
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=ROOT,
            start_new_session=True,  # a terminal's Ctrl-C reaches us only; we stop it in order
        )
        try:
            if core is not None:
                # Right after exec, before the interpreter has started any thread: all inherit it.
                os.sched_setaffinity(proc.pid, {core})
            yield proc
        finally:
            _stop(proc, pipes)


def _stop(proc: subprocess.Popen[bytes], pipes: bool) -> None:
    if pipes:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        grace = EOF_GRACE_S
    elif proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        grace = TERM_GRACE_S
    else:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def check_alive(proc: subprocess.Popen[bytes], name: str) -> None:
    """Raise, with the end of its stderr, if ``proc`` has exited."""
    if proc.poll() is not None:
        raise RuntimeError(f"{name} exited with status {proc.returncode}:\n{tail(OUT / f'{name}.err', 15)}")


def sloguard_env(bootstrap: str, topic: str, group: str) -> dict[str, str]:
    """This process's environment without any SLOGUARD_ setting, plus the daemon's Kafka settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLOGUARD_")}
    env.update(
        SLOGUARD_KAFKA__BOOTSTRAP_SERVERS=bootstrap,
        SLOGUARD_KAFKA__TOPICS=topic,
        SLOGUARD_KAFKA__GROUP_ID=group,
        SLOGUARD_LOG_FORMAT="json",
        SLOGUARD_LOG_LEVEL="warning",
    )
    return env


def daemon_argv(config: Path, port: int) -> list[str]:
    """``sloguard run`` with ``config``, serving on 127.0.0.1:``port``."""
    return [sys.executable, "-m", "sloguard", "run", "--config", str(config), "--listen", f"127.0.0.1:{port}"]


def loadgen_argv(bootstrap: str, topic: str, rate: str, duration: str) -> list[str]:
    """``sloguard loadgen --scenario steady``; ``rate`` and ``duration`` as the caller formats them."""
    return [
        sys.executable,
        "-m",
        "sloguard",
        "loadgen",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--rate",
        rate,
        "--duration",
        duration,
        "--scenario",
        "steady",
    ]


# -- /proc ---------------------------------------------------------------------------------------------------

Pid: TypeAlias = int | Literal["self"]


def status_kib(pid: Pid, *names: str) -> tuple[int, ...]:
    """Fields of ``/proc/PID/status`` in KiB (``VmRSS``, ``VmHWM``), in the order named; 0 for each one
    unknown (a zombie has none; a process gone has no file)."""
    found = dict.fromkeys(names, 0)
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                key = line.partition(b":")[0].decode()
                if key in found:
                    found[key] = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return tuple(found[n] for n in names)


def rss_kib(pid: Pid = "self") -> tuple[int, int]:
    """(``VmRSS``, ``VmHWM``): resident set now and its peak, in KiB (0 if unknown)."""
    rss, hwm = status_kib(pid, "VmRSS", "VmHWM")
    return rss, hwm


def peak_rss_kib(pid: Pid) -> int:
    """Peak resident set (``VmHWM``) of a live process in KiB, 0 if unknown."""
    return status_kib(pid, "VmHWM")[0]


def cpu_seconds(pid: Pid) -> float:
    """User + system CPU seconds a live process has used so far, all threads (``/proc/PID/stat``).

    Resolution is one clock tick (10 ms): good for intervals of a second or more. Raises if the process
    is gone.
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = data[data.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_or_nan(pid: int | None) -> float:
    """`cpu_seconds`, NaN when there is no such process (or no pid)."""
    if pid is None:
        return math.nan
    try:
        return cpu_seconds(pid)
    except (OSError, ValueError, IndexError):
        return math.nan


def runq_wait_s(pid: int) -> float:
    """Seconds the process's threads have spent runnable but waiting for a CPU (``schedstat``): the
    daemon is pinned to one core, and whatever else runs there takes turns with it."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return math.nan
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def meminfo_kib(name: str) -> int:
    """A ``/proc/meminfo`` field (``MemAvailable``, ``MemTotal``) in KiB, 0 if absent."""
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key == name:
                return int(rest.split()[0])
    return 0


def child_pid(exe: str) -> int | None:
    """The pid of our child process running ``exe`` (the broker), None if not found."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
            ppid = int(data[data.rindex(b")") + 2 :].split()[1])
            if ppid == me and os.path.realpath(f"/proc/{entry}/exe") == os.path.realpath(exe):
                return int(entry)
        except (OSError, ValueError):
            continue
    return None


def interp(samples: Sequence[tuple[float, float]], t: float) -> float:
    """Linear interpolation of (time, value) samples at ``t`` (clamped at the ends): a process's CPU
    seconds, sampled by the harness, at the time of one of its ticks."""
    times = [s[0] for s in samples]
    return float(np.interp(t, times, [s[1] for s in samples]))


# -- /metrics --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scraped:
    """The samples read from one scrape, and the body's length as the response header gave it."""

    values: dict[str, float]
    content_length: int


class SampleFilter:
    """Keeps the wanted samples of a text exposition fed line by line, and says when the rest of the
    body can be dropped.

    ``families=False``: ``want`` names whole series (``name{labels}`` exactly as written), each kept as
    is. ``families=True``: ``want`` names metric families, each kept as the sum over its label sets.
    Reading stops at the first sample that is not wanted once every wanted key was seen (a family's
    samples are contiguous); sloguard writes its self-metrics first, so that is near the top. A wanted
    key that never appears means reading to the end.
    """

    def __init__(self, want: Collection[str], *, families: bool = False) -> None:
        self.want = frozenset(want)
        self.families = families
        self.values: dict[str, float] = {}

    def feed(self, line: bytes) -> bool:
        """Take one line of the body; True once the rest is not needed."""
        if line.startswith(b"#"):
            return False
        series, _, value = line.rstrip(b"\n").decode().rpartition(" ")
        key = series.partition("{")[0] if self.families else series
        if key in self.want:
            self.values[key] = self.values.get(key, 0.0) + float(value)
            return False
        return len(self.values) == len(self.want)


async def _get(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    try:
        status = int((await reader.readline()).split()[1])
    except BaseException:
        writer.transport.abort()
        raise
    return reader, writer, status


async def scrape(
    port: int, want: Collection[str], *, families: bool = False, limit_s: float = 5.0
) -> Scraped:
    """GET /metrics on 127.0.0.1:``port`` and read only the samples in ``want`` (see `SampleFilter`),
    then drop the connection. Raises ValueError on anything but a 200, TimeoutError after ``limit_s``."""
    async with asyncio.timeout(limit_s):
        reader, writer, status = await _get(port, "/metrics")
        try:
            if status != 200:
                raise ValueError(f"/metrics answered {status}")
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            kept = SampleFilter(want, families=families)
            while (line := await reader.readline()) and not kept.feed(line):
                pass
        finally:
            writer.transport.abort()
    return Scraped(kept.values, length)


async def http_status(port: int, path: str, limit_s: float = 2.0) -> int:
    """The status code of GET ``path`` on 127.0.0.1:``port`` (the body is not read)."""
    async with asyncio.timeout(limit_s):
        _, writer, status = await _get(port, path)
        writer.transport.abort()
        return status


async def wait_ready(proc: subprocess.Popen[bytes], name: str, port: int, limit_s: float) -> float:
    """Wait until /readyz answers 200; returns the seconds it took. Raises if ``proc`` exits first or
    is not ready after ``limit_s``."""
    t0 = time.monotonic()
    while True:
        check_alive(proc, name)
        with contextlib.suppress(OSError, TimeoutError, ValueError, IndexError):
            if await http_status(port, "/readyz") == 200:
                return time.monotonic() - t0
        if time.monotonic() - t0 > limit_s:
            raise TimeoutError(f"{name} not ready after {limit_s:g} s:\n{tail(OUT / f'{name}.err', 15)}")
        await asyncio.sleep(0.1)
