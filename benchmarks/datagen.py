"""A deterministic, realistic request log as NDJSON, one event a line.

    {"ts": "2026-03-01T12:00:00.123Z", "service": "checkout", "endpoint": "GET /v1/cart",
     "customer": "cust-0042", "status": 200, "latency_ms": 12.345}

What is in it (all from one seeded numpy generator, so the same ``--events``/``--seed`` give the same
bytes):

- 6 services, 40 endpoints with different traffic weights and log-normal latencies (own median and
  spread per endpoint);
- 5000 customers with a Zipf-like popularity (a few customers make most of the traffic);
- two days of event time with a day/night traffic curve; about 3 % of events arrive up to 5 s late
  (out of order in the file);
- mostly 200, ~3 % 4xx, ~0.1 % background 5xx, plus a few error bursts (minutes where one endpoint or a
  whole service fails 20-100 % of requests, 504s take a timeout's latency) and one latency regression
  (a service 4x slower for a couple of hours).

With ``realistic=True`` (``--realistic``) the same events are written as real services log them: extra
fields (``trace_id``, ``span_id``, ``region``, ``host``, ``user_agent``), a nested ``request`` object
(method, path, query, sizes, headers; its keys never share the configured names, so that mtail's
per-field regexes count it exactly), long user agents with JSON escapes (``\"``, ``\/``, ``\u00e9``)
and raw UTF-8, and the keys in a different order on every line.

Usage: ``python -m benchmarks.datagen --events 1000000 [--out FILE] [--seed 7] [--realistic]``. Without
``--out`` the file goes to the cache under ``benchmarks/out/``, where ``python -m benchmarks`` reuses it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sloguard._types import F64, I64, Intp
from sloguard.loadgen import ENDPOINTS as LOADGEN_ENDPOINTS

#: Bump when the generated content changes, so cached files are regenerated.
GENERATOR_VERSION = 1

OUT_DIR = Path(__file__).resolve().parent / "out"
START = np.datetime64("2026-03-01T00:00:00", "ms")
SPAN_MS = 2 * 86_400_000
N_CUSTOMERS = 5000
ZIPF_EXPONENT = 1.0
LATE_FRACTION = 0.03
MAX_LATE_MS = 5000
RATE_4XX = 0.03
RATE_5XX_BACKGROUND = 0.001
CHUNK = 200_000

# service, endpoint, traffic weight, median latency ms, log-normal sigma: the same table as loadgen's.
ENDPOINTS = LOADGEN_ENDPOINTS


@dataclass(frozen=True, slots=True)
class Burst:
    """Minutes where an endpoint (or, with ``endpoint=None``, a whole service) fails often."""

    service: str
    endpoint: str | None
    start_fraction: float  # where in the two days it starts
    minutes: float
    error_rate: float


BURSTS: tuple[Burst, ...] = (
    Burst("auth", "POST /v1/login", 0.15, 3, 0.9),
    Burst("payments", "POST /v1/payments", 0.30, 8, 0.6),
    Burst("checkout", None, 0.55, 4, 1.0),
    Burst("search", "GET /v1/search", 0.72, 12, 0.2),
    Burst("inventory", "POST /v1/stock/reserve", 0.85, 6, 0.4),
)

#: (service, start fraction, hours, latency multiplier)
REGRESSION = ("catalog", 0.40, 2.5, 4.0)

CODES_4XX = np.array([400, 401, 403, 404, 409, 422, 429], np.int32)
P_4XX = np.array([0.15, 0.15, 0.05, 0.4, 0.1, 0.1, 0.05])
CODES_5XX = np.array([500, 502, 503, 504], np.int32)
P_5XX = np.array([0.4, 0.2, 0.25, 0.15])


def cached_path(events: int, seed: int, realistic: bool = False) -> Path:
    kind = "realistic" if realistic else "requests"
    return OUT_DIR / f"{kind}-n{events}-s{seed}-v{GENERATOR_VERSION}.ndjson"


def ensure(events: int, seed: int, realistic: bool = False) -> Path:
    """The cached file for (events, seed), generated first if missing."""
    path = cached_path(events, seed, realistic)
    if not path.exists():
        generate(events, path, seed, realistic)
    return path


def _arrival_times(rng: np.random.Generator, n: int) -> I64:
    """Sorted event times (ms from START) following a day/night curve: rate ∝ 1 + 0.6 sin(2πt/day)."""
    grid = np.linspace(0.0, SPAN_MS, 4097)
    rate = 1.0 + 0.6 * np.sin(2 * np.pi * (grid / 86_400_000 - 0.25))
    cdf = np.concatenate(([0.0], np.cumsum((rate[1:] + rate[:-1]) / 2)))
    cdf /= cdf[-1]
    u = np.sort(rng.random(n))
    return np.interp(u, cdf, grid).astype(np.int64)


def _columns(rng: np.random.Generator, n: int) -> tuple[I64, Intp, Intp, npt.NDArray[np.int32], F64]:
    """All columns at once: time offsets (ms), endpoint index, customer index, status, latency."""
    services = np.array([e[0] for e in ENDPOINTS])
    names = np.array([e[1] for e in ENDPOINTS])
    weight = np.array([e[2] for e in ENDPOINTS])
    median = np.array([e[3] for e in ENDPOINTS])
    sigma = np.array([e[4] for e in ENDPOINTS])

    t = _arrival_times(rng, n)
    ep = rng.choice(len(ENDPOINTS), size=n, p=weight / weight.sum())
    pop = 1.0 / np.arange(1, N_CUSTOMERS + 1) ** ZIPF_EXPONENT
    cust = rng.permutation(N_CUSTOMERS)[rng.choice(N_CUSTOMERS, size=n, p=pop / pop.sum())]

    mu = np.log(median)[ep]
    svc, start, hours, factor = REGRESSION
    lo = int(start * SPAN_MS)
    slow = (services[ep] == svc) & (t >= lo) & (t < lo + int(hours * 3_600_000))
    mu[slow] += np.log(factor)
    latency = np.exp(mu + sigma[ep] * rng.standard_normal(n))

    status = np.full(n, 200, np.int32)
    r = rng.random(n)
    is4 = r < RATE_4XX
    status[is4] = rng.choice(CODES_4XX, size=int(is4.sum()), p=P_4XX)
    bad = (r >= RATE_4XX) & (r < RATE_4XX + RATE_5XX_BACKGROUND)
    for b in BURSTS:
        lo = int(b.start_fraction * SPAN_MS)
        in_burst = (t >= lo) & (t < lo + int(b.minutes * 60_000)) & (services[ep] == b.service)
        if b.endpoint is not None:
            in_burst &= names[ep] == b.endpoint
        bad |= in_burst & (rng.random(n) < b.error_rate)
    status[bad] = rng.choice(CODES_5XX, size=int(bad.sum()), p=P_5XX)
    timeout = status == 504
    latency[timeout] = 10_000.0 + rng.exponential(200.0, int(timeout.sum()))
    latency = np.maximum(np.round(latency, 3), 0.1)

    late = rng.random(n) < LATE_FRACTION
    t[late] -= rng.integers(1, MAX_LATE_MS, int(late.sum()))
    return t, ep, cust, status, latency


def generate(events: int, out: Path, seed: int = 7, realistic: bool = False) -> None:
    """Write ``events`` lines to ``out`` (atomically: a temp file renamed into place)."""
    rng = np.random.default_rng(seed)
    t, ep, cust, status, latency = _columns(rng, events)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for lo in range(0, events, CHUNK):
            hi = min(lo + CHUNK, events)
            ts = np.datetime_as_string(START + t[lo:hi], unit="ms", timezone="UTC").tolist()
            cols = (
                ts,
                ep[lo:hi].tolist(),
                cust[lo:hi].tolist(),
                status[lo:hi].tolist(),
                latency[lo:hi].tolist(),
            )
            f.writelines(_realistic_lines(rng, *cols) if realistic else _plain_lines(*cols))
    tmp.replace(out)


def _plain_lines(*cols: list[Any]) -> list[str]:
    """The configured keys in order, with `json.dumps`'s separators: the byte fast path's shape."""
    # Everything between the timestamp and the customer id depends only on the endpoint.
    middle = [f'", "service": "{s}", "endpoint": "{e}", "customer": "cust-' for s, e, *_ in ENDPOINTS]
    return [
        f'{{"ts": "{a}{middle[e]}{c + 1:04d}", "status": {s}, "latency_ms": {lat:.3f}}}\n'
        for a, e, c, s, lat in zip(*cols, strict=True)
    ]


# JSON text: the escapes are written as the JSON of these lines holds them.
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Mobile/15E148 Safari/604.1",
    'Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0 (compatible; \\"internal\\" '
    "probe; +https:\\/\\/status.example.com\\/bot)",
    "okhttp/4.12.0 (Android 14; Pixel 8; caf\\u00e9-app\\/3.2.1; r\\u00e9gion=fr)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 "
    "Safari/605.1.15 \u65e5\u672c\u8a9e",
    "python-requests/2.31.0 aiohttp/3.9.3 (batch \\t worker #7)",
)
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1")


def _realistic_lines(rng: np.random.Generator, *cols: list[Any]) -> list[str]:
    """The same events with extra fields, a nested request object and the keys shuffled per line."""
    n = len(cols[0])
    trace = rng.integers(0, 2**63, (n, 2)).tolist()
    ua = rng.integers(0, len(USER_AGENTS), n).tolist()
    region = rng.integers(0, len(REGIONS), n).tolist()
    sizes = rng.integers(0, 1 << 16, (n, 2)).tolist()
    # Ten keys: the six configured ones and four others, in a random order per line.
    orders = np.argsort(rng.random((n, 10)), axis=1).tolist()
    out = []
    for i, (a, e, c, s, lat) in enumerate(zip(*cols, strict=True)):
        service, endpoint = ENDPOINTS[e][0], ENDPOINTS[e][1]
        method, _, path = endpoint.partition(" ")
        t0, t1 = trace[i]
        req_in, req_out = sizes[i]
        request = (
            f'{{"method": "{method}", "path": "{path}", '
            f'"query": {{"page": {req_in % 7}, "tags": ["a", "b"]}}, '
            f'"bytes_in": {req_in}, "bytes_out": {req_out}, "headers": {{"accept": "application/json", '
            f'"x-forwarded-for": "10.{req_in % 256}.{req_out % 256}.7"}}}}'
        )
        where = REGIONS[region[i]]
        fields = (
            f'"ts": "{a}"',
            f'"service": "{service}"',
            f'"endpoint": "{endpoint}"',
            f'"customer": "cust-{c + 1:04d}"',
            f'"status": {s}',
            f'"latency_ms": {lat:.3f}',
            f'"trace_id": "{t0:016x}{t1:016x}", "span_id": "{t1 & 0xFFFF_FFFF:08x}"',
            f'"region": "{where}", "host": "{service}-{t0 % 40:02d}.{where}.internal"',
            f'"user_agent": "{USER_AGENTS[ua[i]]}"',
            f'"request": {request}',
        )
        out.append("{" + ", ".join([fields[k] for k in orders[i]]) + "}\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.datagen", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, help="output file (default: the cache under benchmarks/out/)")
    p.add_argument("--realistic", action="store_true", help="extra and nested fields, keys shuffled")
    args = p.parse_args(argv)
    out: Path = args.out or cached_path(args.events, args.seed, args.realistic)
    t0 = time.perf_counter()
    generate(args.events, out, args.seed, args.realistic)
    print(f"wrote {args.events} events to {out} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
