"""Run one child process and measure exactly what it cost: CPU seconds (user + system, all threads, and
any children it waited for), wall seconds and peak RSS, from ``os.wait4`` on that child alone."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import peak_rss_kib

#: How often the child's peak RSS is sampled; growth in its last few milliseconds can be missed.
SAMPLE_SECONDS = 0.005


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the results table."""

    tool: str
    events: int
    cpu_s: float
    wall_s: float | None = None
    peak_rss_kib: int | None = None  # ru_maxrss: KiB on Linux

    @property
    def events_per_cpu_s(self) -> float:
        return self.events / self.cpu_s if self.cpu_s > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class Child:
    """What a finished child process cost, and how it ended."""

    returncode: int
    cpu_s: float
    wall_s: float
    peak_rss_kib: int


def run(argv: list[str], stdout: Path, stderr: Path, cwd: Path | None = None) -> Child:
    """Run ``argv`` to completion with stdout/stderr sent to files (no pipes to drain) and return its
    own resource usage.

    CPU comes from ``wait4`` (exact). Peak RSS does not: a child's ``ru_maxrss`` starts at the RSS of
    the process that forked it (this harness, numpy and all), so instead the child's ``VmHWM`` (the
    high-water mark of its own address space) is sampled every few milliseconds until it exits.
    """
    with stdout.open("wb") as out, stderr.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd)
        hwm = 0
        try:
            while True:
                hwm = max(hwm, peak_rss_kib(proc.pid))  # a zombie has none: the last sample stands
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                time.sleep(SAMPLE_SECONDS)
        except BaseException:  # Ctrl-C or an error here: the child must not outlive us
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Child(proc.returncode, usage.ru_utime + usage.ru_stime, wall, hwm or usage.ru_maxrss)
