"""`make run`: everything on one machine — a local Kafka-compatible broker (Tansu), synthetic traffic
with an incident, the daemon with config/slos.example.yaml, its /metrics, and a live summary.

Two minutes in, one checkout endpoint starts failing every request: its page tier fires within about a
minute (SRE Workbook: 14.4x burn over 1h and 5m). Ctrl-C stops everything this started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import socket
import sys
from pathlib import Path

from sloguard import logs
from sloguard.app import Daemon
from sloguard.broker import LocalBroker, free_port
from sloguard.core.snapshot import Snapshot
from sloguard.core.spec import HOUR, MINUTE
from sloguard.loadgen import run_loadgen
from sloguard.settings import load_settings
from sloguard.specfile import load_config

TOPIC = "requests"
DEAD_LETTER = "requests-dead-letter"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "slos.example.yaml"


def summary(snap: Snapshot, daemon: Daemon, url: str) -> str:
    """One screen: per SLO its worst series (highest 1h burn rate), budget left, and what fires.

    The budget moves in 5-minute steps (the coarse buckets), the burn rates every 10 s.
    """
    t = daemon.telemetry
    lines = [
        f"sloguard demo — metrics at {url}   (Ctrl-C to stop)",
        f"events {t.events_processed:,}  invalid {t.invalid.total:,}  late {t.events_late:,}  "
        f"lag {sum(t.consumer_lag.values()):,}",
        "",
        f"{'SLO':34} {'WORST SERIES':28} {'BUDGET LEFT':>11} {'BURN 5m':>8} {'BURN 1h':>8}  FIRING",
    ]
    footer = "budget left moves in whole coarse buckets (5 min; 1 h for customer SLOs), burn rates every 10 s"
    for s in snap.slos:
        if not s.labels:
            continue
        i5, i1 = s.window_index(5 * MINUTE), s.window_index(HOUR)
        j = int(s.burn_rate[i1].argmax())
        firing = sorted({t.name for k, t in enumerate(s.spec.tiers) if s.firing[k].any()})
        label = ",".join(s.labels[j]) or "-"
        remaining = float(s.budget_remaining[j])
        lines.append(
            f"{s.spec.name[:34]:34} {label[:28]:28} {remaining * 100:10.2f}% "
            f"{float(s.burn_rate[i5, j]):8.2f} {float(s.burn_rate[i1, j]):8.2f}  {', '.join(firing) or '-'}"
        )
    eta = [float(x) for s in snap.slos for x in s.exhaustion_eta if not math.isnan(x)]
    if eta:
        lines += ["", f"fastest budget exhaustion at the current 1h burn rate: {min(eta) / 3600:.1f} h"]
    lines += ["", footer]
    return "\n".join(lines)


def _free_or(wanted: str) -> str:
    """``wanted`` if that port is free, else the same host on a free port."""
    host, _, port = wanted.rpartition(":")
    try:
        with socket.create_server((host, int(port))):
            return wanted
    except OSError:
        return f"{host}:{free_port(host)}"


async def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument("--rate", type=float, default=2000.0, help="events per second")
    p.add_argument("--incident-at", type=float, default=120.0, help="seconds until the outage")
    p.add_argument("--listen", default="127.0.0.1:9464")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = p.parse_args(argv)
    logs.configure("json", "warning")
    config = load_config(args.config)
    listen = _free_or(args.listen)
    with LocalBroker() as broker:
        broker.create_topics([TOPIC], 6)
        broker.create_topics([DEAD_LETTER], 1)
        settings = load_settings(
            {
                "listen": listen,
                "kafka": {
                    "bootstrap_servers": broker.bootstrap,
                    "topics": [TOPIC],
                    "group_id": "sloguard-demo",
                    "dead_letter_topic": DEAD_LETTER,
                },
            }
        )
        daemon = Daemon(settings, config)
        url = f"http://{listen}/metrics"
        daemon_task = asyncio.create_task(daemon.run())
        load_task = asyncio.create_task(
            run_loadgen(
                broker.bootstrap,
                TOPIC,
                args.rate,
                None,
                "outage",
                service="checkout",
                endpoint="POST /v1/checkout",
                incident_at_s=args.incident_at,
                incident_for_s=3600,
            )
        )
        print(f"broker {broker.bootstrap}, topics {TOPIC} (+{DEAD_LETTER}); metrics at {url}", flush=True)
        tty = sys.stdout.isatty()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            while not daemon_task.done() and not load_task.done():
                await asyncio.sleep(3)
                if daemon.latest is not None:
                    text = summary(daemon.latest, daemon, url)
                    print(("\x1b[2J\x1b[H" if tty else "\n") + text, flush=True)
                if args.duration is not None and loop.time() - started > args.duration:
                    break
        except asyncio.CancelledError:
            pass
        finally:
            load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await load_task
            daemon.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(daemon_task, 30)
    print("stopped: daemon, traffic generator and broker", flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(asyncio.run(main()))
