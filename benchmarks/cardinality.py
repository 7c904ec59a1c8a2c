"""Memory under a cardinality attack (`make bench-cardinality`): 1M distinct customer ids.

Feeds NDJSON records through the decoder and the aggregator in-process (as the daemon does), every
event with a customer id never seen before, into an SLO grouped by customer with ``max_series`` 5000
and latency groups by service/endpoint. Prints, every ``--step`` events, the resident set, the series
held, the overflow count and the label vocabulary sizes: with the caps the state stops growing once
the SLO is full; the vocabularies are bounded by `Aggregator`'s vocabulary limit.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

from benchmarks.harness import rss_kib

SLOS = """\
apiVersion: sloguard/v1
slos:
  - name: per-customer
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [customer]
    max_series: 5000
  - name: checkout
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [endpoint]
latency:
  group_by: [service, endpoint]
  windows: [1m, 5m, 1h]
"""


def main(argv: list[str] | None = None) -> int:
    from sloguard.core.aggregator import Aggregator
    from sloguard.core.model import Rejections
    from sloguard.ingest.decode import Decoder
    from sloguard.specfile import parse_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--step", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)

    agg = Aggregator(parse_config(SLOS, "bench.yaml"))
    decoder = Decoder(vocabs=agg.vocabs)
    rejections = Rejections()
    now_ms = int(time.time() * 1000)
    rows = []
    head = f"{'events':>9} {'RSS MiB':>8} {'series':>7} {'overflow':>9} {'customer vocab':>15} {'s':>6}"
    print(head)
    print("-" * len(head))
    started = time.perf_counter()
    base = rss_kib()[0]
    for lo in range(0, args.customers, args.batch):
        records = [
            b'{"ts": %d, "service": "checkout", "endpoint": "POST /v1/orders", "customer": "attacker-%08d",'
            b' "status": 200, "latency_ms": 12.5}' % (now_ms - (i % 3_600_000), i)
            for i in range(lo, min(lo + args.batch, args.customers))
        ]
        agg.ingest(decoder.decode_many(records, rejections))
        done = min(lo + args.batch, args.customers)
        if done % args.step == 0 or done == args.customers:
            gc.collect()
            snap = agg.snapshot(now_ms)
            per_customer = snap.slos[0]
            row = {
                "events": done,
                "rss_mib": rss_kib()[0] / 1024,
                "series": len(per_customer.labels),
                "overflow": per_customer.overflow_events,
                "customer_vocab": len(agg.vocabs.customer),
                "seconds": time.perf_counter() - started,
            }
            rows.append(row)
            print(
                f"{done:>9} {row['rss_mib']:>8.1f} {row['series']:>7} {row['overflow']:>9}"
                f" {row['customer_vocab']:>15} {row['seconds']:>6.1f}"
            )
    growth = rows[-1]["rss_mib"] - rows[len(rows) // 2]["rss_mib"]
    print(
        f"\nRSS before: {base / 1024:.1f} MiB; growth over the second half of the attack: {growth:.1f} MiB;"
        f" rejected: {rejections.total}"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
