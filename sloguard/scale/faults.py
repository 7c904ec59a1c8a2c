"""Named fault points of the two stages, for the process-level fault tests (tests/e2e/test_scale_faults.py).

``SLOGUARD_FAULT=name[:n][,name[:n]...]`` makes the process SIGKILL itself the ``n``-th time (default 1)
it reaches the point ``name``; unset (always, outside tests) every point is a dictionary lookup and
nothing else. A name that is not a point below is refused when the stage starts (`check`), so a typo in
a test cannot silently test nothing. Before dying the process writes ``fault_point_reached <name> <n>``
to stderr, so a test can tell the kill happened where it asked.

The points, in the order of docs/scaling.md's data path:

``stage1.after_intent_before_commit``
    stage 1: the round's cut intents are acknowledged, the commit of the ranges' starts not sent yet.
``stage1.mid_produce``
    stage 1: the first partials partition's piece of a range is acknowledged, the other partitions'
    pieces of that range (and the round's later ranges) not sent yet.
``stage1.after_produce_before_commit``
    stage 1: every piece of the round is acknowledged, the ranges' ends not committed yet (the next
    owner re-produces the ranges: stage 2 must drop them as duplicates).
``stage2.mid_checkpoint``
    stage 2: during a checkpoint round, after the first changed partition's checkpoint is stored and
    before the other partitions' are, nothing of the round committed.
``stage2.after_checkpoint_before_commit``
    stage 2: every changed partition's checkpoint stored, the partials offsets not committed yet.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterable

__all__ = ["POINTS", "armed", "check", "point", "point_after"]

ENV = "SLOGUARD_FAULT"
POINTS = (
    "stage1.after_intent_before_commit",
    "stage1.mid_produce",
    "stage1.after_produce_before_commit",
    "stage2.mid_checkpoint",
    "stage2.after_checkpoint_before_commit",
)

_plan: dict[str, int] | None = None
_reached: dict[str, int] = {}


def _parse(spec: str) -> dict[str, int]:
    plan = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, n = item.partition(":")
        if name not in POINTS:
            raise ValueError(f"{ENV}: unknown fault point {name!r} (known: {', '.join(POINTS)})")
        count = int(n) if n else 1
        if count < 1:
            raise ValueError(f"{ENV}: {item!r}: the count must be at least 1")
        plan[name] = count
    return plan


def _get_plan() -> dict[str, int]:
    global _plan
    if _plan is None:
        _plan = _parse(os.environ.get(ENV, ""))
    return _plan


def check() -> None:
    """Refuse an ``SLOGUARD_FAULT`` naming an unknown point (ValueError); called when a stage starts."""
    _get_plan()


def armed(name: str) -> bool:
    """Whether ``name`` will kill this process some time (a caller may prepare the point, e.g. wait for
    acknowledgements, only then)."""
    return name in _get_plan()


def point(name: str) -> None:
    """The point ``name`` is reached: SIGKILL this process if it is the planned time."""
    plan = _get_plan()
    if name not in plan:
        return
    n = _reached.get(name, 0) + 1
    _reached[name] = n
    if n == plan[name]:
        os.write(2, f"fault_point_reached {name} {n}\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)


async def point_after(name: str, futures: Iterable[asyncio.Future[object]]) -> None:
    """The point ``name``, once ``futures`` (acknowledgements) are done; waits only when armed."""
    if armed(name):
        await asyncio.gather(*futures)
        point(name)
