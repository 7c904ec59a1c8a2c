"""Synthetic soak polls: a steady daemon, with any field overridden per poll."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.soak_polls import Poll


def poll(i: int, **fields: Any) -> Poll:
    """Poll ``i`` of a daemon polled every second: 1000 events/s, half a core busy, RSS 100 MiB, a
    checkpoint every 30 s."""
    base: dict[str, Any] = dict(
        t=float(i),
        snapshot_ts=1000.0 + i,
        events=1000.0 * i,
        lag=100.0,
        tick_s=0.010,
        render_s=0.050,
        checkpoint_bytes=1_048_576.0,
        checkpoint_s=0.020 * (1 + i // 30),
        checkpoints=float(i // 30),
        checkpoint_failures=0.0,
        commit_failures=0.0,
        rss_mib=100.0,
        cpu_s=0.5 * i,
        wait_s=0.05 * i,
        broker_rss_mib=300.0,
        broker_cpu_s=0.3 * i,
        loadgen_cpu_s=0.2 * i,
        mem_available_mib=5000.0,
    )
    return Poll(**(base | fields))


def run(n: int = 90, **per_poll: Callable[[int], Any]) -> list[Poll]:
    """``n`` polls; each keyword is a field computed from the poll's index."""
    return [poll(i, **{name: f(i) for name, f in per_poll.items()}) for i in range(n)]
