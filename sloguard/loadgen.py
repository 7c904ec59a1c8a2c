"""`sloguard loadgen`: realistic request-log events into a Kafka topic, at a target rate, live.

Each event is one JSON object in the format of `benchmarks/datagen.py` and of the decoder's defaults::

    {"ts": "2026-03-01T12:00:00.123Z", "service": "checkout", "endpoint": "GET /v1/cart",
     "customer": "cust-0042", "status": 200, "latency_ms": 12.345}

``ts`` is wall-clock time (or ``start_ms`` plus the elapsed time), so a running daemon sees the events in
its live windows. The traffic: 6 services and 40 endpoints with their own weights and log-normal
latencies, 5000 customers with Zipf popularity (``cust-0001`` is the busiest), ~3 % 4xx and ~0.1 %
background 5xx. A scenario adds an incident from ``incident_at_s`` for ``incident_for_s`` seconds:

* ``steady``: no incident.
* ``outage``: every request of ``service`` (or of one ``endpoint`` of it) fails with a 5xx.
* ``latency``: ``service`` gets ``latency_factor`` (5x) slower.
* ``customer-errors``: every request of ``customer`` fails with a 500.

With ``--format envoy|nginx-json|otlp-json|otlp-proto`` the same events are written in an input preset's
shape (Envoy's JSON access log, nginx ``escape=json``, one OTLP export per event with a server and a
client span, as JSON or as the Collector's default protobuf), for an SLO file with
``input: {preset: ...}``.

Messages hold one event, or ``ndjson_batch`` events as NDJSON lines; with ``otlp-proto``, one binary
``ExportTraceServiceRequest`` holding ``ndjson_batch`` events' spans (`message_encoder`).
With ``key="customer"`` events go to the partition of their customer (Kafka's murmur2, like a Java
producer keyed by customer; the message key is the customer when a message holds one event); with
``key="none"`` messages go round-robin.
Rate control paces by the clock: at any time about ``rate × elapsed`` events have been produced
(``rate <= 0``: as fast as possible). Records are written with ``create_batch``/``send_batch``, which
is about 10x faster than one ``send()`` per message.

Importing this module needs no broker; `run_loadgen` connects.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import numpy.typing as npt

from sloguard._types import F64, I64, Intp
from sloguard.ingest.kafka import KafkaConfig, KafkaStartError, TopicsMissingError
from sloguard.ingest.kafka_producer import BatchProducer, partition_for_key

__all__ = [
    "ENDPOINTS",
    "FORMATS",
    "N_CUSTOMERS",
    "SCENARIOS",
    "EventGenerator",
    "LoadgenStats",
    "Scenario",
    "add_arguments",
    "customer_name",
    "main",
    "message_encoder",
    "run_loadgen",
]

SCENARIOS: Final = ("steady", "outage", "latency", "customer-errors")
#: Line shapes: sloguard's own, and each input preset's (`sloguard.ingest.presets`).
FORMATS: Final = ("sloguard", "envoy", "nginx-json", "otlp-json", "otlp-proto")

# service, endpoint, traffic weight, median latency ms, log-normal sigma (the table of benchmarks/datagen.py)
ENDPOINTS: Final[tuple[tuple[str, str, float, float, float], ...]] = (
    ("checkout", "GET /v1/cart", 8.0, 25.0, 0.5),
    ("checkout", "POST /v1/cart/items", 5.0, 40.0, 0.6),
    ("checkout", "DELETE /v1/cart/items", 1.5, 30.0, 0.5),
    ("checkout", "POST /v1/checkout", 2.0, 180.0, 0.7),
    ("checkout", "GET /v1/orders", 3.0, 60.0, 0.6),
    ("checkout", "POST /v1/orders", 2.0, 220.0, 0.7),
    ("checkout", "GET /v1/orders/{id}", 4.0, 35.0, 0.5),
    ("search", "GET /v1/search", 20.0, 90.0, 0.8),
    ("search", "GET /v1/search/suggest", 15.0, 15.0, 0.6),
    ("search", "GET /v1/search/facets", 4.0, 45.0, 0.6),
    ("search", "POST /v1/search/query", 3.0, 120.0, 0.8),
    ("search", "GET /v1/search/trending", 2.0, 20.0, 0.4),
    ("search", "GET /v1/search/similar", 2.0, 150.0, 0.9),
    ("auth", "POST /v1/login", 3.0, 110.0, 0.5),
    ("auth", "POST /v1/logout", 1.0, 12.0, 0.4),
    ("auth", "POST /v1/token/refresh", 6.0, 8.0, 0.5),
    ("auth", "GET /v1/session", 12.0, 5.0, 0.5),
    ("auth", "POST /v1/password/reset", 0.2, 200.0, 0.6),
    ("auth", "GET /v1/userinfo", 8.0, 6.0, 0.5),
    ("auth", "POST /v1/mfa/verify", 0.8, 60.0, 0.6),
    ("payments", "POST /v1/payments", 1.5, 350.0, 0.7),
    ("payments", "GET /v1/payments/{id}", 1.5, 30.0, 0.5),
    ("payments", "POST /v1/refunds", 0.2, 280.0, 0.7),
    ("payments", "GET /v1/refunds/{id}", 0.3, 25.0, 0.5),
    ("payments", "POST /v1/payments/authorize", 1.5, 300.0, 0.7),
    ("payments", "POST /v1/payments/capture", 1.2, 260.0, 0.6),
    ("payments", "GET /v1/payment-methods", 2.0, 20.0, 0.5),
    ("catalog", "GET /v1/products", 14.0, 40.0, 0.6),
    ("catalog", "GET /v1/products/{id}", 18.0, 18.0, 0.5),
    ("catalog", "GET /v1/categories", 5.0, 10.0, 0.4),
    ("catalog", "GET /v1/products/{id}/reviews", 4.0, 55.0, 0.7),
    ("catalog", "PUT /v1/products/{id}", 0.3, 90.0, 0.6),
    ("catalog", "GET /v1/brands", 2.0, 12.0, 0.4),
    ("catalog", "GET /v1/products/{id}/images", 6.0, 22.0, 0.6),
    ("inventory", "GET /v1/stock/{sku}", 10.0, 8.0, 0.5),
    ("inventory", "POST /v1/stock/reserve", 2.0, 45.0, 0.6),
    ("inventory", "POST /v1/stock/release", 1.0, 35.0, 0.6),
    ("inventory", "GET /v1/warehouses", 0.5, 15.0, 0.4),
    ("inventory", "PUT /v1/stock/{sku}", 0.8, 50.0, 0.6),
    ("inventory", "GET /v1/stock/batch", 1.5, 70.0, 0.8),
)
N_CUSTOMERS: Final = 5000
RATE_4XX: Final = 0.03
# Healthy background: 0.02 % server errors, a fifth of a 99.9 % SLO's budget.
RATE_5XX_BACKGROUND: Final = 0.0002
_CODES_4XX: Final = np.array([400, 401, 403, 404, 409, 422, 429], np.int32)
_P_4XX: Final = np.array([0.15, 0.15, 0.05, 0.4, 0.1, 0.1, 0.05])
_CODES_5XX: Final = np.array([500, 502, 503, 504], np.int32)
_P_5XX: Final = np.array([0.4, 0.2, 0.25, 0.15])
_TIMEOUT_MS: Final = 10_000.0  # a 504 takes about a gateway timeout

_MAX_CHUNK: Final = 20_000  # events generated and sent per step: bounds memory and keeps pacing smooth
_MIN_SLEEP_S: Final = 0.002


def customer_name(index: int) -> str:
    """Name of the customer with 0-based popularity rank ``index`` (0 -> ``cust-0001``)."""
    return f"cust-{index + 1:04d}"


@dataclass(frozen=True, slots=True)
class Scenario:
    """What goes wrong, where and when (seconds after the start of the run)."""

    name: str = "steady"
    service: str = "checkout"
    endpoint: str | None = None
    customer: str = "cust-0001"
    incident_at_s: float = 10.0
    incident_for_s: float = 300.0
    latency_factor: float = 5.0

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {self.name!r}")
        services = sorted({s for s, *_ in ENDPOINTS})
        if self.service not in services:
            raise ValueError(f"service must be one of {', '.join(services)}, got {self.service!r}")
        endpoints = [e for s, e, *_ in ENDPOINTS if s == self.service]
        if self.endpoint is not None and self.endpoint not in endpoints:
            raise ValueError(f"endpoint of {self.service} must be one of {endpoints}, got {self.endpoint!r}")
        number = self.customer.removeprefix("cust-")
        if not (len(number) == 4 and number.isdigit() and 1 <= int(number) <= N_CUSTOMERS):
            raise ValueError(f"customer must be cust-0001 .. {customer_name(N_CUSTOMERS - 1)}")
        if self.incident_at_s < 0 or self.incident_for_s < 0 or self.latency_factor <= 0:
            raise ValueError("incident times must be >= 0 and the latency factor > 0")

    def active(self, elapsed_s: float) -> bool:
        """Whether the incident is on at ``elapsed_s`` seconds into the run."""
        return (
            self.name != "steady"
            and self.incident_at_s <= elapsed_s < self.incident_at_s + self.incident_for_s
        )


class EventGenerator:
    """Generates chunks of events as NDJSON lines, vectorized with numpy (seeded: reproducible)."""

    def __init__(self, scenario: Scenario = Scenario(), seed: int = 7, line_format: str = "sloguard") -> None:
        if line_format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {line_format!r}")
        self.scenario = scenario
        self.line_format = line_format
        self._rng = np.random.default_rng(seed)
        weight = np.array([e[2] for e in ENDPOINTS])
        self._endpoint_cdf = np.cumsum(weight / weight.sum())
        pop = 1.0 / np.arange(1, N_CUSTOMERS + 1)
        self._customer_cdf = np.cumsum(pop / pop.sum())
        self._log_median = np.log(np.array([e[3] for e in ENDPOINTS]))
        self._sigma = np.array([e[4] for e in ENDPOINTS])
        services = [e[0] for e in ENDPOINTS]
        self._target_endpoints = np.array(
            [
                s == scenario.service and (scenario.endpoint is None or e == scenario.endpoint)
                for s, e, *_ in ENDPOINTS
            ]
        )
        self._target_service = np.array([s == scenario.service for s in services])
        self._target_customer = int(scenario.customer[5:]) - 1
        # Everything between the timestamp and the customer number depends only on the endpoint.
        self._middle = [
            f'", "service": "{s}", "endpoint": "{e}", "customer": "cust-' for s, e, *_ in ENDPOINTS
        ]
        self._customer_ids = [f"{i + 1:04d}" for i in range(N_CUSTOMERS)]

    def generate(
        self, n: int, first_ms: int, last_ms: int, elapsed_s: float
    ) -> tuple[list[str], npt.NDArray[np.intp]]:
        """``n`` events with times spread evenly over ``[first_ms, last_ms]``.

        Returns the JSON lines (no newline) and each event's customer index (for partitioning). For
        ``otlp-proto`` the lines are the OTLP/JSON exports; `message_encoder` makes the messages.
        ``elapsed_s`` (time into the run) decides whether the scenario's incident is on.
        """
        rng = self._rng
        ep = np.searchsorted(self._endpoint_cdf, rng.random(n), side="right").clip(0, len(ENDPOINTS) - 1)
        cust = np.searchsorted(self._customer_cdf, rng.random(n), side="right").clip(0, N_CUSTOMERS - 1)
        log_latency = self._log_median[ep] + self._sigma[ep] * rng.standard_normal(n)
        status = np.full(n, 200, np.int32)
        r = rng.random(n)
        is4 = r < RATE_4XX
        status[is4] = rng.choice(_CODES_4XX, size=int(is4.sum()), p=_P_4XX)
        bad = (r >= RATE_4XX) & (r < RATE_4XX + RATE_5XX_BACKGROUND)
        sc = self.scenario
        if sc.active(elapsed_s):
            if sc.name == "outage":
                bad |= self._target_endpoints[ep]
            elif sc.name == "latency":
                log_latency[self._target_service[ep]] += np.log(sc.latency_factor)
            elif sc.name == "customer-errors":
                failing = cust == self._target_customer
                bad &= ~failing
                status[failing] = 500
        status[bad] = rng.choice(_CODES_5XX, size=int(bad.sum()), p=_P_5XX)
        latency = np.exp(log_latency)
        timeout = status == 504
        latency[timeout] = _TIMEOUT_MS + rng.exponential(200.0, int(timeout.sum()))
        latency = np.maximum(np.round(latency, 3), 0.1)
        ts_ms = first_ms + (np.arange(n, dtype=np.int64) * max(0, last_ms - first_ms)) // max(1, n - 1)
        if self.line_format != "sloguard":
            return _Shapes(self, rng).lines(ts_ms, ep, cust, status, latency), cust
        ts = np.datetime_as_string(ts_ms.astype("datetime64[ms]"), unit="ms", timezone="UTC").tolist()
        middle, ids = self._middle, self._customer_ids
        lines = [
            f'{{"ts": "{a}{middle[e]}{ids[c]}", "status": {s}, "latency_ms": {lat:.3f}}}'
            for a, e, c, s, lat in zip(
                ts, ep.tolist(), cust.tolist(), status.tolist(), latency.tolist(), strict=True
            )
        ]
        return lines, cust


class _Shapes:
    """Events as the input presets' lines: Envoy (Istio's JSON names), nginx ``escape=json``, OTLP/JSON.

    Raw paths carry concrete ids (``/v1/orders/4711``) and a query string, so a route normaliser (the
    SLO file's ``input.routes``) is needed to get the endpoints back. Envoy and nginx have no customer
    field (the presets default it to ``unknown``); OTLP spans carry it as the ``customer`` attribute.
    Envoy's duration is whole milliseconds, nginx's ``$request_time`` seconds with millisecond
    resolution and ``$time_iso8601`` whole seconds: each shape rounds as its source does.
    """

    def __init__(self, gen: EventGenerator, rng: np.random.Generator) -> None:
        self.gen, self.rng, self.fmt = gen, rng, gen.line_format

    def lines(
        self, ts_ms: I64, ep: Intp, cust: Intp, status: npt.NDArray[np.int32], latency: F64
    ) -> list[str]:
        n = len(ts_ms)
        ids = self.rng.integers(1, 100_000, n).tolist()
        render = {"envoy": self._envoy, "nginx-json": self._nginx}.get(self.fmt, self._otlp)
        return [
            render(t, ENDPOINTS[e], customer_name(c), s, lat, i)
            for t, e, c, s, lat, i in zip(
                ts_ms.tolist(),
                ep.tolist(),
                cust.tolist(),
                status.tolist(),
                latency.tolist(),
                ids,
                strict=True,
            )
        ]

    @staticmethod
    def _path(endpoint: str, i: int) -> tuple[str, str, str]:
        """Method, the route template, and a raw path with an id and a query string."""
        method, route = endpoint.split(" ", 1)
        raw = route.replace("{id}", str(i)).replace("{sku}", f"SKU{i:06d}")
        return method, route, raw + ("?expand=items" if i % 3 == 0 else "")

    def _envoy(
        self, ts: int, e: tuple[str, str, float, float, float], customer: str, s: int, lat: float, i: int
    ) -> str:
        service = e[0]
        method, _, raw = self._path(e[1], i)
        return json.dumps(
            {
                "start_time": _iso(ts, "ms"),
                "method": method,
                "path": raw,
                "protocol": "HTTP/1.1",
                "response_code": s,
                "response_flags": "UF" if s == 503 else "-",
                "bytes_received": 0,
                "bytes_sent": 200 + i % 4000,
                "duration": round(lat),
                "upstream_service_time": str(max(0, round(lat) - 1)),
                "x_forwarded_for": f"203.0.113.{i % 250}",
                "user_agent": _USER_AGENT,
                "request_id": f"{i:08x}-1a2b-4c3d-9e8f-0a1b2c3d4e5f",
                "authority": service,
                "upstream_host": f"10.0.{i % 8}.{i % 250}:8080",
                "upstream_cluster": f"outbound|8080||{service}.shop.svc.cluster.local",
            }
        )

    def _nginx(
        self, ts: int, e: tuple[str, str, float, float, float], customer: str, s: int, lat: float, i: int
    ) -> str:
        method, _, raw = self._path(e[1], i)
        return json.dumps(
            {
                "time_iso8601": _iso(ts, "s"),
                "remote_addr": f"198.51.100.{i % 250}",
                "request_method": method,
                "uri": raw.split("?")[0],
                "request_uri": raw,
                "status": str(s),
                "body_bytes_sent": str(200 + i % 4000),
                "request_time": f"{round(lat) / 1000:.3f}",
                "http_user_agent": _USER_AGENT,
                "host": e[0],
            }
        )

    def _otlp(
        self, ts: int, e: tuple[str, str, float, float, float], customer: str, s: int, lat: float, i: int
    ) -> str:
        method, route, raw = self._path(e[1], i)
        start = ts * 1_000_000
        end = start + round(lat * 1e6)
        server = {
            "traceId": f"{i:032x}",
            "spanId": f"{i:016x}",
            "name": f"{method} {route}",
            "kind": 2,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": [
                _attr("http.request.method", method),
                _attr("http.route", route),
                _attr("url.path", raw.split("?")[0]),
                {"key": "http.response.status_code", "value": {"intValue": str(s)}},
                _attr("customer", customer),
            ],
            "status": {"code": 2} if s >= 500 else {},
        }
        # A client span to a database, inside the request: skipped by the otlp-json preset.
        client = {**server, "spanId": f"{i + 1:016x}", "name": "SELECT", "kind": 3, "attributes": []}
        resource = {"attributes": [_attr("service.name", e[0]), _attr("telemetry.sdk.language", "python")]}
        scope = {"name": "sloguard.loadgen", "version": "1"}
        return json.dumps(
            {
                "resourceSpans": [
                    {"resource": resource, "scopeSpans": [{"scope": scope, "spans": [server, client]}]}
                ]
            }
        )


_USER_AGENT: Final = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)


def message_encoder(line_format: str) -> Callable[[list[str]], bytes]:
    """How a message's lines become its value: NDJSON, or for ``otlp-proto`` the protobuf of the OTLP/JSON
    exports, concatenated (protobuf merges them into one export holding every line's resource spans)."""
    if line_format != "otlp-proto":
        return lambda lines: "\n".join(lines).encode()
    from sloguard.ingest.otlp_proto import from_otlp_json  # protobuf only for the format that needs it

    return lambda lines: b"".join(from_otlp_json(json.loads(line)) for line in lines)


def _attr(key: str, value: str) -> dict[str, object]:
    return {"key": key, "value": {"stringValue": value}}


def _iso(ms: int, unit: str) -> str:
    """Epoch ms as RFC 3339 UTC: ``...T12:00:00.123Z`` (ms), or nginx's ``...T12:00:00+00:00`` (s)."""
    text = str(np.datetime64(ms, "ms"))
    return text + "Z" if unit == "ms" else text[:19] + "+00:00"


@dataclass(frozen=True, slots=True)
class LoadgenStats:
    """What a run produced (``bytes`` counts message values only)."""

    events: int
    messages: int
    bytes: int
    elapsed_s: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        """One line for humans."""
        return (
            f"{self.events} events in {self.messages} messages ({self.bytes / 1e6:.1f} MB) in "
            f"{self.elapsed_s:.1f} s: {self.events_per_s:,.0f} events/s, {self.messages_per_s:,.0f} msg/s"
        )


_Messages = dict[int, tuple[list[bytes], list[bytes | None] | None]]  # partition -> (values, keys)
_ROUND_ROBIN: Final = -1  # the one holding slot when not keyed


class _Batcher:
    """Turns chunks of events into per-partition messages of ``ndjson_batch`` lines each.

    Lines that do not fill a message wait for the next chunk (per partition when keyed), at most
    ``linger_s``, like a log shipper's batch; `flush()` sends what is left.
    """

    def __init__(
        self,
        partitions: int,
        ndjson_batch: int,
        keyed: bool,
        linger_s: float = 0.5,
        encode: Callable[[list[str]], bytes] | None = None,
    ) -> None:
        self.partitions = partitions
        self._encode = encode  # None: NDJSON (`message_encoder`), inlined on the hot path
        self.ndjson_batch = ndjson_batch
        self.keyed = keyed
        self.linger_s = linger_s
        # Kafka's partition of each customer key, computed once (murmur2 in Python is slow-ish).
        self._customer_partition = np.array(
            [partition_for_key(customer_name(i).encode(), partitions) for i in range(N_CUSTOMERS)], np.intp
        )
        self._customer_keys: list[bytes | None] = [customer_name(i).encode() for i in range(N_CUSTOMERS)]
        self._next = 0  # round-robin cursor
        self._held: dict[int, list[str]] = {}
        self._held_since: dict[int, float] = {}

    def split(self, lines: list[str], customers: npt.NDArray[np.intp], now: float) -> _Messages:
        """The messages ready to send for these events (``now``: seconds, for the linger)."""
        n = self.ndjson_batch
        out: _Messages = {}
        if self.keyed:
            part = self._customer_partition[customers]
            # One stable sort groups events by partition and keeps their time order within each.
            order = np.argsort(part, kind="stable")
            bounds = np.searchsorted(part[order], np.arange(self.partitions + 1)).tolist()
            order_list = order.tolist()
            for p in range(self.partitions):
                idx = order_list[bounds[p] : bounds[p + 1]]
                if n == 1 and idx:
                    keys = self._customer_keys
                    out[p] = (
                        self._singles([lines[i] for i in idx]),
                        [keys[c] for c in customers[idx].tolist()],
                    )
                elif n > 1:
                    values = self._pack(p, [lines[i] for i in idx], now)
                    if values:
                        out[p] = (values, None)
            return out
        if n == 1:
            return self._round_robin(self._singles(lines))
        return self._round_robin(self._pack(_ROUND_ROBIN, lines, now))

    def flush(self) -> _Messages:
        """Everything still held, as (possibly short) messages."""
        out: _Messages = {}
        for slot in list(self._held):
            values = self._pack(slot, [], 0.0, force=True)
            if slot == _ROUND_ROBIN:
                for p, (vs, _) in self._round_robin(values).items():
                    out.setdefault(p, ([], None))[0].extend(vs)
            elif values:
                out.setdefault(slot, ([], None))[0].extend(values)
        return out

    def _pack(self, slot: int, lines: list[str], now: float, *, force: bool = False) -> list[bytes]:
        n = self.ndjson_batch
        held = self._held.pop(slot, None)
        if held:
            lines = held + lines
        full = len(lines) // n * n
        values = [self._join(lines[j : j + n]) for j in range(0, full, n)]
        rest = lines[full:]
        if full or not held:
            self._held_since[slot] = now  # the held lines (if any) are all new
        if rest and (force or now - self._held_since[slot] >= self.linger_s):
            values.append(self._join(rest))
        elif rest:
            self._held[slot] = rest
        return values

    def _singles(self, lines: list[str]) -> list[bytes]:
        """One message a line."""
        encode = self._encode
        return [line.encode() for line in lines] if encode is None else [encode([line]) for line in lines]

    def _join(self, lines: list[str]) -> bytes:
        return "\n".join(lines).encode() if self._encode is None else self._encode(lines)

    def _round_robin(self, values: list[bytes]) -> _Messages:
        buckets: dict[int, list[bytes]] = {}
        for v in values:
            buckets.setdefault(self._next, []).append(v)
            self._next = (self._next + 1) % self.partitions
        return {p: (vs, None) for p, vs in buckets.items()}


def _check_args(ndjson_batch: int, key: str, events: int | None) -> None:
    if ndjson_batch < 1:
        raise ValueError("ndjson_batch must be >= 1")
    if key not in ("customer", "none"):
        raise ValueError("key must be 'customer' or 'none'")
    if events is not None and events < 0:
        raise ValueError("events must be >= 0")


def _producer_config(bootstrap: str, topic: str, kafka: KafkaConfig | None) -> KafkaConfig:
    """The producer's settings: ``kafka``'s security settings if given, always this bootstrap and topic."""
    if kafka is None:
        return KafkaConfig(bootstrap, (topic,), client_id="sloguard-loadgen")
    return replace(kafka, bootstrap_servers=bootstrap, topics=(topic,), dead_letter_topic=None)


async def run_loadgen(
    bootstrap: str,
    topic: str,
    rate: float,
    duration_s: float | None,
    scenario: str = "steady",
    ndjson_batch: int = 1,
    seed: int = 7,
    start_ms: int | None = None,
    *,
    events: int | None = None,
    service: str = "checkout",
    endpoint: str | None = None,
    customer: str = "cust-0001",
    incident_at_s: float = 10.0,
    incident_for_s: float = 300.0,
    latency_factor: float = 5.0,
    key: str = "customer",
    line_format: str = "sloguard",
    kafka: KafkaConfig | None = None,
    progress: Callable[[LoadgenStats], None] | None = None,
    progress_every_s: float = 5.0,
) -> LoadgenStats:
    """Produce events to ``topic`` at ``rate`` events/s until ``duration_s`` or ``events`` is reached.

    With neither bound it runs until cancelled. ``rate <= 0`` means as fast as possible. ``start_ms``
    shifts event time (default: wall-clock now). ``kafka`` supplies security settings (its bootstrap and
    topics are replaced). ``progress`` is called about every ``progress_every_s`` seconds.
    Raises `TopicsMissingError` if the topic does not exist (it is never auto-created) and
    `KafkaStartError` if the broker cannot be reached.
    """
    _check_args(ndjson_batch, key, events)
    sc = Scenario(scenario, service, endpoint, customer, incident_at_s, incident_for_s, latency_factor)
    generator = EventGenerator(sc, seed, line_format)
    async with BatchProducer(_producer_config(bootstrap, topic, kafka)) as producer:
        out = _Shipper(producer, topic)
        encode = message_encoder(line_format) if line_format == "otlp-proto" else None
        batcher = _Batcher(producer.partitions(topic), ndjson_batch, keyed=key == "customer", encode=encode)
        wall0_ms = start_ms if start_ms is not None else time.time_ns() // 1_000_000
        t0 = time.monotonic()
        sent = 0
        last_ms = wall0_ms
        next_progress = progress_every_s
        while True:
            elapsed = time.monotonic() - t0
            if duration_s is not None and elapsed >= duration_s:
                break
            remaining = None if events is None else events - sent
            if remaining == 0:
                break
            due = _MAX_CHUNK if rate <= 0 else min(_MAX_CHUNK, int(rate * elapsed) - sent)
            if remaining is not None:
                due = min(due, remaining)
            if due <= 0:
                # Sleep until the next event is due (a duration bound may come first).
                wait = (sent + 1) / rate - elapsed
                if duration_s is not None:
                    wait = min(wait, duration_s - elapsed)
                await asyncio.sleep(max(_MIN_SLEEP_S, wait))
                continue
            # The events of this step happened since the previous one: spread their times over it.
            now_ms = wall0_ms + int(elapsed * 1000)
            lines, customers = generator.generate(due, min(last_ms + 1, now_ms), now_ms, elapsed)
            last_ms = now_ms
            await out.ship(batcher.split(lines, customers, elapsed))
            sent += due
            if progress is not None and elapsed >= next_progress:
                progress(LoadgenStats(sent, out.messages, out.bytes, elapsed))
                next_progress += progress_every_s
            # Let the producer's sender run even when we are behind schedule.
            await asyncio.sleep(0)
        await out.ship(batcher.flush())
        await out.drain()
        return LoadgenStats(sent, out.messages, out.bytes, time.monotonic() - t0)


class _Shipper:
    """Sends messages through a `BatchProducer`, counting them and keeping their delivery futures."""

    def __init__(self, producer: BatchProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._inflight: list[asyncio.Future[object]] = []
        self.messages = 0
        self.bytes = 0

    async def ship(self, messages: _Messages) -> None:
        for partition, (values, keys) in messages.items():
            self._inflight += await self._producer.send(self._topic, partition, values, keys)
            self.messages += len(values)
            self.bytes += sum(map(len, values))
        # Drop what was delivered; a delivery error surfaces here.
        pending = []
        for f in self._inflight:
            if f.done():
                f.result()
            else:
                pending.append(f)
        self._inflight = pending

    async def drain(self) -> None:
        """Wait until every message was acknowledged."""
        await asyncio.gather(*self._inflight)
        self._inflight = []
        await self._producer.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``sloguard loadgen`` options to ``parser`` (`main` reads them)."""
    # `sloguard run`'s spellings (--bootstrap-servers, --topics) are accepted too.
    parser.add_argument(
        "--bootstrap-servers",
        "--bootstrap",
        dest="bootstrap",
        default="127.0.0.1:9092",
        help="Kafka bootstrap servers (host:port)",
    )
    parser.add_argument(
        "--topic", "--topics", dest="topic", default="requests", help="topic to write to (must exist)"
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="events per second; 0 = as fast as possible"
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--events", type=int, help="stop after this many events")
    parser.add_argument("--scenario", choices=SCENARIOS, default="steady")
    parser.add_argument(
        "--service", default="checkout", help="service hit by outage/latency (default checkout)"
    )
    parser.add_argument("--endpoint", help="endpoint hit by outage (default: every endpoint of --service)")
    parser.add_argument("--customer", default="cust-0001", help="customer hit by customer-errors")
    parser.add_argument("--incident-at", type=float, default=10.0, help="incident start, seconds after start")
    parser.add_argument("--incident-for", type=float, default=300.0, help="incident length in seconds")
    parser.add_argument("--latency-factor", type=float, default=5.0, help="slowdown in the latency scenario")
    parser.add_argument(
        "--ndjson-batch",
        type=int,
        default=1,
        help="events per message, as NDJSON lines (otlp-proto: as one export)",
    )
    parser.add_argument(
        "--key",
        choices=("customer", "none"),
        default="customer",
        help="partition by customer (murmur2 of the key) or round-robin",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--format",
        dest="line_format",
        choices=FORMATS,
        default="sloguard",
        help="line shape: sloguard's own, or an input preset's (read it with input: {preset: ...})",
    )


async def main(args: argparse.Namespace) -> int:
    """Run ``sloguard loadgen`` with parsed `add_arguments` options; prints progress to stderr."""

    def report(stats: LoadgenStats) -> None:
        print(f"loadgen: {stats.summary()}", file=sys.stderr, flush=True)

    try:
        stats = await run_loadgen(
            args.bootstrap,
            args.topic,
            args.rate,
            args.duration,
            args.scenario,
            ndjson_batch=args.ndjson_batch,
            seed=args.seed,
            events=args.events,
            service=args.service,
            endpoint=args.endpoint,
            customer=args.customer,
            incident_at_s=args.incident_at,
            incident_for_s=args.incident_for,
            latency_factor=args.latency_factor,
            key=args.key,
            line_format=args.line_format,
            progress=report,
        )
    except (TopicsMissingError, KafkaStartError, ValueError) as exc:
        print(f"sloguard loadgen: {exc}", file=sys.stderr)
        return 2
    report(stats)
    return 0


def cli_main(argv: Sequence[str] | None = None, prog: str = "sloguard loadgen") -> int:
    """`sloguard loadgen ...` / `python -m sloguard.loadgen ...`."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    add_arguments(parser)
    return asyncio.run(main(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(cli_main(prog="python -m sloguard.loadgen"))
