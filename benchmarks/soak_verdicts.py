"""Did the soak stay flat? One function per check over the polls, and the summary table.

The run is cut in thirds by time; the first is warm-up. RSS is flat when the last third's mean is at
most max(5 %, 20 MiB) above the second third's; lag when the last third's mean is at most 2 s worth of
events and its least-squares trend over the last two thirds rises by at most 1 s worth; tick duration
when the last third's p95 is at most 1.5x the second third's (or within 2 ms of it: ticks take
milliseconds, and a shared core adds that much noise). Render time, throughput, events per
CPU-second, CPU and checkpoints are shown for information.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.checks import columns
from benchmarks.soak_polls import MIB, Poll, busy_pct, events_rate

RSS_TOLERANCE_FRACTION = 0.05
RSS_TOLERANCE_MIB = 20.0
LAG_BOUND_S = 2.0  # last third's mean lag: at most this many seconds worth of events
LAG_TREND_S = 1.0  # rise of the fitted line over the last two thirds: at most this many seconds worth
TICK_RATIO = 1.5
TICK_SLACK_S = 0.002


@dataclass
class Verdict:
    metric: str
    second: float | None
    last: float | None
    unit: str  # "MiB", "events", "s", "ev/s", "%", "B"
    rule: str
    verdict: str  # FLAT, GROWING, "" (information only), "n/a"
    note: str = ""


@dataclass(frozen=True)
class Thirds:
    """A run's polls cut in thirds by time (``t`` of the last poll is the span); the first is warm-up."""

    polls: Sequence[Poll]
    second: list[Poll]
    last: list[Poll]

    @classmethod
    def of(cls, polls: Sequence[Poll]) -> Thirds:
        span = polls[-1].t
        second = [p for p in polls if span / 3 <= p.t < 2 * span / 3]
        last = [p for p in polls if p.t >= 2 * span / 3]
        return cls(polls, second, last)

    @property
    def span(self) -> float:
        return self.polls[-1].t

    @property
    def after(self) -> list[Poll]:
        """The last two thirds: what trends are fitted over."""
        return self.second + self.last

    @property
    def end(self) -> Poll:
        return self.polls[-1]


# -- helpers -------------------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def per_cpu_s(polls: Sequence[Poll]) -> float:
    """Events processed per daemon CPU-second, first poll to last."""
    if len(polls) < 2 or polls[-1].cpu_s <= polls[0].cpu_s:
        return math.nan
    return (polls[-1].events - polls[0].events) / (polls[-1].cpu_s - polls[0].cpu_s)


def ticks(polls: Sequence[Poll], attr: str) -> list[float]:
    """One value per tick (polls deduplicated by snapshot time)."""
    seen: dict[float, float] = {}
    for p in polls:
        value = float(getattr(p, attr))
        if math.isfinite(value):
            seen.setdefault(p.snapshot_ts, value)
    return list(seen.values())


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of (x, y) points."""
    return float(np.polyfit([x for x, _ in points], [y for _, y in points], 1)[0])


def _flat(ok: bool) -> str:
    return "FLAT" if ok else "GROWING"


# -- the judged checks ---------------------------------------------------------------------------------------


def rss(th: Thirds) -> Verdict:
    r2, r3 = mean([p.rss_mib for p in th.second]), mean([p.rss_mib for p in th.last])
    allowed = max(RSS_TOLERANCE_FRACTION * r2, RSS_TOLERANCE_MIB)
    growth = r3 - r2
    per_min = slope([(p.t, p.rss_mib) for p in th.after]) * 60
    return Verdict(
        "daemon RSS, mean",
        r2,
        r3,
        "MiB",
        f"growth ≤ max(5 %, 20 MiB) = {allowed:.1f} MiB",
        _flat(growth <= allowed),
        f"growth {growth:+.1f} MiB ({ratio(growth, r2):+.1%}); trend {per_min:+.2f} MiB/min; "
        f"peak {max(p.rss_mib for p in th.polls):.0f} MiB",
    )


def lag(th: Thirds, rate: float) -> Verdict:
    l2 = [p.lag for p in th.second if p.lag is not None]
    l3 = [p.lag for p in th.last if p.lag is not None]
    la = [(p.t, p.lag) for p in th.after if p.lag is not None]
    if len(la) < 2 or not l3:
        return Verdict("consumer lag, mean", None, None, "events", "no lag reported", "n/a")
    bound = LAG_BOUND_S * rate
    rise = slope(la) * (la[-1][0] - la[0][0])
    return Verdict(
        "consumer lag, mean",
        mean(l2),
        mean(l3),
        "events",
        f"last ≤ {LAG_BOUND_S:g} s of events ({bound:,.0f}), trend ≤ {LAG_TREND_S:g} s",
        _flat(mean(l3) <= bound and rise <= LAG_TREND_S * rate),
        f"trend {rise:+,.0f} events over the last two thirds; last third max {max(l3):,.0f} "
        f"= {ratio(max(l3), rate):.2f} s of load",
    )


def tick(th: Thirds) -> Verdict:
    t2, t3 = ticks(th.second, "tick_s"), ticks(th.last, "tick_s")
    p2, p3 = pct(t2, 95), pct(t3, 95)
    return Verdict(
        "tick duration, p95",
        p2,
        p3,
        "s",
        f"last ≤ {TICK_RATIO:g}x second (or +{TICK_SLACK_S * 1000:g} ms)",
        _flat(p3 <= TICK_RATIO * p2 or p3 - p2 <= TICK_SLACK_S),
        f"x{ratio(p3, p2):.2f}; {len(t2)} / {len(t3)} ticks; max {max(t2 + t3) * 1000:.1f} ms",
    )


# -- information only ----------------------------------------------------------------------------------------


def render(th: Thirds) -> Verdict:
    d2, d3 = ticks(th.second, "render_s"), ticks(th.last, "render_s")
    return Verdict(
        "render duration, p95",
        pct(d2, 95),
        pct(d3, 95),
        "s",
        "information",
        "",
        f"x{ratio(pct(d3, 95), pct(d2, 95)):.2f}; max {max(d2 + d3) * 1000:.0f} ms (own thread)",
    )


def throughput(th: Thirds, rate: float) -> Verdict:
    e2, e3 = events_rate(th.second), events_rate(th.last)
    return Verdict(
        "events processed / s",
        e2,
        e3,
        "ev/s",
        f"load {rate:,.0f}/s",
        "",
        f"last third {ratio(e3, rate):.1%} of the load; {th.end.events:,.0f} events in all",
    )


def cost(th: Thirds) -> Verdict:
    return Verdict(
        "events per daemon CPU-s",
        per_cpu_s(th.second),
        per_cpu_s(th.last),
        "ev/s",
        "information",
        "",
        "cost per event; flat unless the work per event grows",
    )


def daemon_cpu(th: Thirds) -> Verdict:
    return Verdict(
        "daemon CPU busy",
        busy_pct(th.second),
        busy_pct(th.last),
        "%",
        "information",
        "",
        f"waiting for its core {busy_pct(th.second, 'wait_s'):.0f} % / {busy_pct(th.last, 'wait_s'):.0f} % "
        "of the time (other work on that core)",
    )


def broker_cpu(th: Thirds) -> Verdict:
    return Verdict(
        "broker CPU busy",
        busy_pct(th.second, "broker_cpu_s"),
        busy_pct(th.last, "broker_cpu_s"),
        "%",
        "information",
        "",
        f"loadgen {busy_pct(th.second, 'loadgen_cpu_s'):.0f} % / {busy_pct(th.last, 'loadgen_cpu_s'):.0f} %; "
        f"both share the harness's core(s); broker RSS at the end {th.end.broker_rss_mib:,.0f} MiB",
    )


def checkpoint_size(th: Thirds) -> Verdict:
    end = th.end
    return Verdict(
        "checkpoint size, mean",
        mean([p.checkpoint_bytes for p in th.second]),
        mean([p.checkpoint_bytes for p in th.last]),
        "B",
        "information",
        "",
        f"{int(end.checkpoints)} written, {int(end.checkpoint_failures)} failed; "
        f"commit failures {int(end.commit_failures)}",
    )


def checkpoint_duration(th: Thirds) -> Verdict:
    # The last poll of each checkpoint count: that checkpoint's duration, and when it was seen.
    ck = {p.checkpoints: p for p in th.polls if p.checkpoints > 0}
    durations = [p.checkpoint_s for p in ck.values()]
    span = th.span
    c2 = [p.checkpoint_s for p in ck.values() if span / 3 <= p.t < 2 * span / 3]
    c3 = [p.checkpoint_s for p in ck.values() if p.t >= 2 * span / 3]
    return Verdict(
        "checkpoint duration, max",
        max(c2) if c2 else None,
        max(c3) if c3 else None,
        "s",
        "information",
        "",
        f"all {', '.join(f'{d * 1000:.0f}' for d in durations)} ms" if durations else "none yet",
    )


def verdicts(polls: Sequence[Poll], rate: float) -> list[Verdict]:
    """Every check in table order; ``rate``: the load in events/s (NaN if unknown)."""
    if not polls:
        return []
    th = Thirds.of(polls)
    if len(th.second) < 2 or len(th.last) < 2:
        return [Verdict("all", None, None, "", "too few samples for thirds", "n/a")]
    return [
        rss(th),
        lag(th, rate),
        tick(th),
        render(th),
        throughput(th, rate),
        cost(th),
        daemon_cpu(th),
        broker_cpu(th),
        checkpoint_size(th),
        checkpoint_duration(th),
    ]


def overall(rows: Sequence[Verdict], incomplete: bool) -> str:
    """FLAT when every judged check is, GROWING when one is not, else INCONCLUSIVE."""
    judged = [v.verdict for v in rows if v.verdict]
    if judged and all(v == "FLAT" for v in judged):
        result = "FLAT"
    else:
        result = "GROWING" if "GROWING" in judged else "INCONCLUSIVE"
    return result + (" (incomplete run)" if incomplete else "")


# -- output --------------------------------------------------------------------------------------------------


def finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def fmt(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    if unit == "s":
        return f"{value * 1000:,.1f} ms"
    if unit == "B":
        return f"{value / MIB:,.2f} MiB"
    if unit == "%":
        return f"{value:.0f} %"
    if unit == "MiB":
        return f"{value:,.1f} MiB"
    return f"{value:,.0f}" + (" /s" if unit == "ev/s" else "")


def summary_table(rows: Sequence[Verdict]) -> str:
    head = ("measure", "2nd third", "last third", "rule", "verdict", "note")
    cells = [(v.metric, fmt(v.second, v.unit), fmt(v.last, v.unit), v.rule, v.verdict, v.note) for v in rows]
    return columns(head, cells, "<>><<")
