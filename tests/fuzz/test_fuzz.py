"""Fuzz: malformed and adversarial records through decoder → aggregator → /metrics, and the daemon's
dead-letter topic, with exact accounting.

* hypothesis: raw bytes and JSON-ish text, checked against the reference decoder (`tests.fuzz.oracle`),
  and seeded generator batches checked against their construction tags;
* a seeded run of ``SLOGUARD_FUZZ_RECORDS`` records (default 100 000; ``make fuzz`` runs 1 000 000) plus
  a 10 MB NDJSON message and a 10 MB line, through `Decoder.decode_many` → `Aggregator.ingest` →
  `Exposition.render`, then ``promtool check metrics`` and a parse back of every label value;
* the daemon in-process against a real broker: every rejected line reaches the dead-letter topic byte
  for byte, with its reason.

Accounting: every non-blank line is exactly one event (equal, field by field, to the tag's) or exactly
one rejection, under a reason of `REASONS`, with the dead-letter payload the tag says. Crashes are
counted, not fatal at once, so that a run reports them all (with the seed and record index that
reproduce each).

Precedence: a line with several problems must be counted under the first in `REASONS` order. The
decoder does not do that yet when one field holds an out-of-range number (tests/fuzz/test_found_bugs.py);
until it does (`PRECEDENCE_FIXED`, probed at import) such a line may be counted under any of its own
problems, and the runs report how many were.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from sloguard.app import Daemon
from sloguard.broker import LocalBroker
from sloguard.clock import ManualClock
from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch, Rejections
from sloguard.core.snapshot import Snapshot
from sloguard.core.spec import Config, LatencySpec
from sloguard.export.collector import Exposition
from sloguard.ingest.decode import BAD_TIMESTAMP, REASONS, Decoder
from sloguard.ingest.kafka import REASON_HEADER
from sloguard.settings import load_settings
from sloguard.specfile import parse_config
from sloguard.telemetry import TelemetrySnapshot
from tests.fuzz.generator import NASTY_SERVICE, NOW_MS, Fuzzer, Record
from tests.fuzz.oracle import Oracle, expect
from tests.integration.test_daemon import SLOS, wait_for
from tests.integration.test_kafka_source import read_topic
from tests.support.specs import config, slo
from tests.support.tools import require

#: Records in the seeded run (CI: 100k, in well under a minute; `make fuzz`: 1M).
RECORDS = int(os.environ.get("SLOGUARD_FUZZ_RECORDS", "100000"))
SEED = int(os.environ.get("SLOGUARD_FUZZ_SEED", "20260104"))
#: The daemon's default allowed skew: events stamped later than now + this are refused (future_timestamp).
SKEW_MS = 60_000
FUTURE = "future_timestamp"

#: A line whose first problem is its timestamp while its latency is out of range (1e400).
PRECEDENCE_PROBE = (
    b'{"ts": "2026-13-01T00:00:00Z", "service": "s", "endpoint": "e", "status": 200, "latency_ms": 1e400}'
)


def _precedence_fixed() -> bool:
    rejections = Rejections()
    Decoder().decode(PRECEDENCE_PROBE, rejections)
    return rejections.counts == {BAD_TIMESTAMP: 1}


PRECEDENCE_FIXED = _precedence_fixed()


def fuzz_config() -> Config:
    """SLOs and latency groups that put fuzzed label values on /metrics (coarse buckets: many series)."""
    return config(
        slo("fuzz-availability", group_by=("endpoint", "customer"), fine=60, coarse=3600, max_series=2000),
        slo(
            "fuzz-latency",
            kind="latency",
            threshold_ms=300,
            group_by=("customer",),
            fine=60,
            coarse=3600,
            max_series=2000,
        ),
        slo(
            "fuzz-nasty", service=NASTY_SERVICE, group_by=("endpoint",), endpoints=("*[[]*", "GET *", "*\n*")
        ),
        latency=LatencySpec(group_by=("service", "endpoint"), max_groups=1000),
    )


# -- accounting ------------------------------------------------------------------------------------------


@dataclass
class Audit:
    """What the decoder, aggregator and exporter did, against what the tags say."""

    records: int = 0
    lines: int = 0
    events: int = 0  # valid events decoded
    ingested: int = 0  # ... and absorbed by the aggregator (not in the future)
    future: int = 0
    size: int = 0  # bytes
    rejections: Rejections = field(default_factory=Rejections)
    crashes: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    precedence: Counter[tuple[str, str]] = field(default_factory=Counter)  # (first problem, counted as)
    by_kind: Counter[str] = field(default_factory=Counter)

    def fail(self, message: str) -> None:
        if len(self.mismatches) < 30:
            self.mismatches.append(message)
        else:
            self.mismatches[-1] = f"... and more (last: {message})"

    def crash(self, where: str, exc: BaseException) -> None:
        self.crashes.append(f"{where}: {type(exc).__name__}: {exc}"[:2000])

    def summary(self) -> str:
        return (
            f"{self.records} records ({self.size / 1e6:.0f} MB), {self.lines} non-blank lines: "
            f"{self.events} events ({self.future} in the future), {self.rejections.total} rejected "
            f"{dict(sorted(self.rejections.counts.items()))}; crashes {len(self.crashes)}; "
            f"precedence still off for {sum(self.precedence.values())} lines {dict(self.precedence)}"
        )


def compare(
    audit: Audit,
    where: str,
    batch: EventBatch,
    rejected: list[tuple[str, bytes]],
    rejections: Rejections,
    events: Sequence[Event],
    reasons: Sequence[frozenset[str]],
    problems: Sequence[frozenset[str]],
    payloads: Sequence[bytes],
) -> None:
    """The decoder's output against the expected events, reasons and dead-letter payloads."""
    got = batch.events()
    if got != list(events):
        first = next((i for i, (a, b) in enumerate(zip(got, events, strict=False)) if a != b), None)
        if first is None:
            audit.fail(f"{where}: {len(got)} events decoded, {len(events)} expected")
        else:
            audit.fail(f"{where}: event {first}: decoded {got[first]}, expected {events[first]}")
    if len(rejected) != len(reasons):
        audit.fail(f"{where}: {len(rejected)} lines rejected, {len(reasons)} expected")
    for k, ((reason, payload), want, problem, want_payload) in enumerate(
        zip(rejected, reasons, problems, payloads, strict=False)
    ):
        if payload != want_payload:
            audit.fail(f"{where}: rejection {k}: payload {payload[:200]!r}, expected {want_payload[:200]!r}")
        if reason in want:
            continue
        if not PRECEDENCE_FIXED and reason in problem:
            audit.precedence[(min(want, key=REASONS.index), reason)] += 1
            continue
        audit.fail(f"{where}: {payload[:300]!r} rejected as {reason}, expected {sorted(want)}")
    if Counter(reason for reason, _ in rejected) != Counter(rejections.counts):
        audit.fail(f"{where}: counts {rejections.counts} do not match the dead letters")
    if not set(rejections.counts) <= set(REASONS):
        audit.fail(f"{where}: reasons outside REASONS: {set(rejections.counts) - set(REASONS)}")


def absorb(audit: Audit, aggregator: Aggregator, batch: EventBatch, now_ms: int, where: str) -> None:
    """Ingest as the daemon does: events stamped beyond now + skew are refused (future_timestamp)."""
    future = batch.ts_ms > now_ms + SKEW_MS
    if future.any():
        audit.future += int(future.sum())
        batch = batch.take(np.flatnonzero(~future))
    try:
        aggregator.ingest(batch)
    except Exception as exc:  # noqa: BLE001 -- a fuzz run counts crashes and goes on
        audit.crash(f"{where}: Aggregator.ingest", exc)
        return
    audit.ingested += len(batch)


def run_records(
    audit: Audit,
    decoder: Decoder,
    aggregator: Aggregator,
    records: Sequence[Record],
    where: str,
    now_ms: int = NOW_MS,
) -> None:
    """Decode `records` as one `decode_many` batch, compare with their tags, ingest the events."""
    rejected: list[tuple[str, bytes]] = []
    rejections = Rejections()
    try:
        batch = decoder.decode_many([r.data for r in records], rejections, rejected)
    except Exception as exc:  # noqa: BLE001 -- a fuzz run counts crashes and goes on
        audit.crash(f"{where}: Decoder.decode_many", exc)
        return
    compare(
        audit,
        where,
        batch,
        rejected,
        rejections,
        [e for r in records for e in r.events],
        [x for r in records for x in r.reasons],
        [x for r in records for x in r.problems],
        [x for r in records for x in r.payloads],
    )
    audit.records += len(records)
    audit.lines += sum(r.valid + r.invalid for r in records)
    audit.size += sum(len(r.data) for r in records)
    audit.events += len(batch)
    audit.rejections.merge(rejections)
    audit.by_kind.update(r.kind for r in records)
    absorb(audit, aggregator, batch, now_ms, where)


def telemetry(audit: Audit) -> TelemetrySnapshot:
    invalid = dict(audit.rejections.counts)
    if audit.future:
        invalid[FUTURE] = audit.future
    return TelemetrySnapshot(
        events_processed=audit.ingested,
        events_invalid=invalid,
        events_future=audit.future,
        records_consumed=audit.records,
        dead_lettered=audit.rejections.total,
    )


def check_metrics(body: bytes) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [require("promtool"), "check", "metrics"], input=body, capture_output=True, timeout=300, check=False
    )
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    return proc.returncode, [line for line in output.splitlines() if line.strip()]


def check_exposition(body: bytes, snapshot: Snapshot, tele: TelemetrySnapshot) -> None:
    """promtool-clean, and every label value and self-metric reads back exactly as it went in."""
    code, problems = check_metrics(body)
    assert (code, problems[:20]) == (0, [])
    families = {f.name: f for f in text_string_to_metric_families(body.decode("utf-8"))}
    for s in snapshot.slos:
        exported = {
            tuple(sample.labels[d] for d in s.spec.group_by)
            for sample in families["sloguard_slo_events"].samples
            if sample.labels["slo"] == s.spec.name
        }
        assert exported == set(s.labels), s.spec.name
    assert snapshot.latency is not None
    groups = {
        (sample.labels["service"], sample.labels["endpoint"])
        for sample in families["sloguard_latency_events"].samples
    }
    assert groups == set(snapshot.latency.labels)
    invalid = {
        sample.labels["reason"]: sample.value
        for sample in families["sloguard_events_invalid"].samples
        if sample.name == "sloguard_events_invalid_total"
    }
    assert invalid == tele.events_invalid
    processed = families["sloguard_events_processed"].samples[0].value
    assert processed == tele.events_processed


def check_aggregator(aggregator: Aggregator, audit: Audit, ingested: Counter[tuple[str, str]]) -> None:
    """Per SLO, every ingested event of its service (and endpoints) was counted once, in some series."""
    assert aggregator.stats.events == audit.ingested == ingested.total()
    for state in aggregator.slos:
        spec = state.spec
        expected = sum(
            n
            for (service, endpoint), n in ingested.items()
            if service == spec.service
            and (not spec.endpoints or any(fnmatch.fnmatchcase(endpoint, g) for g in spec.endpoints))
        )
        assert state.events == expected, spec.name
        # row_events counts each key's events, except a key literally "__overflow__" (it shares the
        # overflow row but is not cardinality overflow; test_found_bugs checks that case exactly).
        assert int(state.series.row_events.sum()) <= expected, spec.name


# -- (a) hypothesis -----------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),  # NaN and infinities come out of json.dumps as NaN/Infinity: not JSON
    st.text(),
    st.sampled_from(["2026-01-03T12:00:00Z", "2026-01-03 12:00:00.123456789+05:30", "2100-01-01T00:00:00Z"]),
    st.sampled_from([1_767_400_000_000, 1_767_400_000.5, 946_684_800_000, 4_102_444_800_000, 200, 599, 600]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ("ts", "service", "endpoint", "customer", "status", "latency_ms")


@st.composite
def jsonish_lines(draw: st.DrawFn) -> bytes:
    """Lines near an event: fields kept, dropped, repeated or replaced by anything JSON; written with any
    separators and escaping; sometimes cut short or with bytes spliced in."""
    good: dict[str, Any] = {
        "ts": draw(st.sampled_from(["2026-01-03T23:00:00Z", 1_767_480_000_000, 1_767_480_000.25])),
        "service": draw(st.sampled_from(["checkout", NASTY_SERVICE, "s"]) | st.text(min_size=1, max_size=20)),
        "endpoint": draw(st.sampled_from(["GET /", 'a"b\\c\nd']) | st.text(min_size=1, max_size=20)),
        "customer": draw(st.sampled_from(["acme", "__overflow__", ""]) | st.text(max_size=300)),
        "status": draw(st.integers(100, 599)),
        "latency_ms": draw(st.floats(0, 86_400_000) | st.integers(0, 86_400_000)),
    }
    pairs: list[tuple[str, Any]] = []
    for key, value in good.items():
        action = draw(st.integers(0, 9))
        if action == 0:
            continue
        if action == 1:
            value = draw(json_values)
        elif action == 2:
            pairs.append((key, draw(json_values)))
        pairs.append((key, value))
    pairs += draw(st.lists(st.tuples(st.text(max_size=6), json_values), max_size=2))
    pairs = draw(st.permutations(pairs))
    ascii_only = draw(st.booleans())
    sep = draw(st.sampled_from([(", ", ": "), (",", ":"), (" ,\t", "\r:  ")]))
    text = "{" + sep[0].join(
        json.dumps(k) + sep[1] + json.dumps(v, ensure_ascii=ascii_only) for k, v in pairs
    )
    data = (text + "}").encode("utf-8", "surrogatepass")
    mangle = draw(st.integers(0, 9))
    if mangle == 0:
        data = data[: draw(st.integers(0, len(data)))]
    elif mangle == 1:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)).replace(b"\n", b"") + data[at:]
    return data


records_of_lines = st.lists(
    st.lists(
        jsonish_lines() | st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=12
    ).flatmap(
        lambda lines: st.tuples(
            st.just(lines),
            st.lists(
                st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\n \t\n"]),
                min_size=len(lines),
                max_size=len(lines),
            ),
        )
    ),
    min_size=1,
    max_size=6,
).map(
    lambda recs: [b"".join(line + sep for line, sep in zip(lines, seps, strict=True)) for lines, seps in recs]
)


def check_against_oracle(records: list[bytes]) -> None:
    """Decode `records` (one decode_many, then each alone), ingest and render: never raises, and the
    decoder agrees with the reference decoder on every line."""
    audit = Audit()
    exp = expect(records, ORACLE)
    for where, chunks in (("together", [records]), ("one by one", [[r] for r in records])):
        aggregator = Aggregator(CONFIG)
        decoder = Decoder(vocabs=aggregator.vocabs)
        for chunk in chunks:
            rejected: list[tuple[str, bytes]] = []
            rejections = Rejections()
            batch = decoder.decode_many(chunk, rejections, rejected)
            part = expect(chunk, ORACLE)
            compare(
                audit,
                where,
                batch,
                rejected,
                rejections,
                part.events,
                part.reasons,
                part.problems,
                part.payloads,
            )
            aggregator.ingest(batch.take(np.flatnonzero(batch.ts_ms <= NOW_MS + SKEW_MS)))
        Exposition().render(aggregator.snapshot(NOW_MS), TelemetrySnapshot())
    assert not audit.mismatches, "\n".join(audit.mismatches)
    assert len(exp.events) + len(exp.reasons) == sum(
        1 for r in records for x in r.split(b"\n") if x.strip(b" \t\r")
    )


ORACLE = Oracle()
CONFIG = fuzz_config()


# derandomize: CI must not turn red on a new random example; explore with
# `pytest tests/fuzz -k hypothesis --hypothesis-seed=N` (and `make fuzz` for the long seeded run).
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.lists(st.binary(max_size=400), min_size=1, max_size=8))
def test_hypothesis_bytes(records: list[bytes]) -> None:
    check_against_oracle(records)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(records_of_lines)
def test_hypothesis_jsonish(records: list[bytes]) -> None:
    check_against_oracle(records)


# Shrinking a seed teaches nothing (and each try regenerates a batch): report the first failure as is.
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    derandomize=True,
)
@given(st.integers(0, 2**32), st.integers(1, 300))
def test_hypothesis_generator_batches(seed: int, n: int) -> None:
    """Generator batches (with their construction tags) of any size: small ones take the row-by-row
    checks, big ones the vectorised and byte-level paths."""
    fuzzer = Fuzzer(seed)
    records = list(fuzzer.records(n))
    audit = Audit()
    aggregator = Aggregator(CONFIG)
    run_records(audit, Decoder(vocabs=aggregator.vocabs), aggregator, records, f"seed {seed}")
    assert not audit.crashes, audit.crashes
    assert not audit.mismatches, "\n".join(audit.mismatches)
    Exposition().render(aggregator.snapshot(NOW_MS), telemetry(audit))


def test_generator_tags_agree_with_the_oracle() -> None:
    """Two independent taggers: the generator's construction and the reference decoder."""
    fuzzer = Fuzzer(SEED + 1)
    disagreements = []
    for i, record in enumerate(fuzzer.records(5000)):
        exp = expect([record.data], ORACLE)
        same = (
            exp.events == list(record.events)
            and exp.payloads == list(record.payloads)
            and all(a & b for a, b in zip(exp.reasons, record.reasons, strict=True))
        )
        if not same:
            disagreements.append((i, record.kind, record.data[:300], record.reasons, exp.reasons))
    assert not disagreements, disagreements[:5]


# -- (b) the seeded run ----------------------------------------------------------------------------------


def test_seeded_fuzz_through_decoder_aggregator_and_exporter() -> None:
    """``RECORDS`` generated records (plus a 10 MB NDJSON message and a 10 MB line) in batches of 1 to
    2000 records, exactly accounted for; then /metrics is promtool-clean and reads back exactly."""
    started = time.perf_counter()
    fuzzer = Fuzzer(SEED)
    sizes = random.Random(SEED)
    aggregator = Aggregator(fuzz_config())
    decoder = Decoder(vocabs=aggregator.vocabs)
    audit = Audit()
    ingested: Counter[tuple[str, str]] = Counter()
    specials = {RECORDS // 3: fuzzer.big_record(), 2 * RECORDS // 3: fuzzer.huge_line_record()}
    done = 0
    while done < RECORDS:
        n = min(RECORDS - done, sizes.choice((1, 1, 2, 7, 50, 300, 300, 1000, 2000)))
        records = list(fuzzer.records(n))
        for at, special in specials.items():
            if done <= at < done + n:
                records.insert(at - done, special)
        run_records(audit, decoder, aggregator, records, f"seed {SEED}, records {done}..{done + n}")
        ingested.update(_labels_of(records))
        done += n
    decoded = time.perf_counter() - started

    snapshot = aggregator.snapshot(NOW_MS)
    tele = telemetry(audit)
    body = Exposition().render(snapshot, tele)
    check_exposition(body, snapshot, tele)
    check_aggregator(aggregator, audit, ingested)
    elapsed = time.perf_counter() - started
    print(
        f"\nfuzz seed {SEED}: {audit.summary()}\n"
        f"decode+ingest {decoded:.1f} s, total {elapsed:.1f} s; /metrics {len(body) / 1e6:.1f} MB, "
        f"{len(snapshot.slos[0].labels)}/{len(snapshot.slos[1].labels)} SLO series, "
        f"{len(snapshot.latency.labels) if snapshot.latency else 0} latency groups"
    )
    assert audit.records == RECORDS + len(specials)
    assert not audit.crashes, audit.crashes
    assert not audit.mismatches, "\n".join(audit.mismatches)
    assert audit.events + audit.rejections.total == audit.lines
    # Every category showed up (a generator change that silently drops one would be noticed).
    assert set(audit.rejections.counts) == set(REASONS), set(REASONS) - set(audit.rejections.counts)


def _labels_of(records: Sequence[Record]) -> Iterator[tuple[str, str]]:
    """(service, endpoint) of the events the aggregator took from `records` (not in the future)."""
    return ((e.service, e.endpoint) for r in records for e in r.events if e.ts_ms <= NOW_MS + SKEW_MS)


def test_extreme_timestamps_in_the_aggregator() -> None:
    """Events at both ends of the accepted range (2000-01-01 and 2099-12-31) in one batch: ingested
    without error, the old ones counted as too old; a snapshot at the newest event (what replay does
    without --now) renders promtool-clean."""
    fuzzer = Fuzzer(SEED + 2)
    extremes = [946_684_800_000, 946_684_800_001, NOW_MS - 1, 4_102_444_799_999]
    events = [
        Event(ts, service, endpoint, customer, status, latency)
        for ts in extremes
        for service in ("checkout", NASTY_SERVICE)
        for endpoint, customer in zip(fuzzer.endpoints[-40:], fuzzer.customers[-40:], strict=True)
        for status, latency in ((100, 0.0), (599, 86_400_000.0), (503, 1e-300))
    ]
    aggregator = Aggregator(fuzz_config())
    aggregator.ingest(EventBatch.from_events(events, aggregator.vocabs))
    now = aggregator.default_now()
    assert now is not None
    snapshot = aggregator.snapshot(now)
    assert aggregator.stats.events == len(events)
    assert all(s.too_old_events > 0 for s in snapshot.slos if s.spec.service == "checkout")
    tele = TelemetrySnapshot(events_processed=len(events))
    check_exposition(Exposition().render(snapshot, tele), snapshot, tele)


# -- (c) the daemon and its dead-letter topic, against a real broker -------------------------------------


@pytest.mark.kafka
async def test_daemon_dead_letters_every_rejected_line_byte_for_byte(
    broker: LocalBroker, new_topic: Callable[..., str]
) -> None:
    """A few thousand fuzz records (and a 10 MB NDJSON message) through the daemon: every rejected line
    is on the dead-letter topic once, byte for byte, with its reason; /metrics counts them."""
    fuzzer = Fuzzer(SEED + 3)
    # Under the dead-letter producer's 1 MiB request limit (see test_found_bugs.py for bigger ones).
    records = [r for r in fuzzer.records(3000) if len(r.data) < 512 * 1024]
    records.insert(len(records) // 2, fuzzer.big_record(too_large=False))
    values = [r.data for r in records]
    expected_dead = Counter(
        (reason, payload) for reason, payload in _decoded_rejections(values)
    )  # the decoder's own verdicts, checked against the tags just below
    audit = Audit()
    scratch = Aggregator(parse_config(SLOS, "slos.yaml"))
    run_records(audit, Decoder(vocabs=scratch.vocabs), scratch, records, "daemon input")
    assert not audit.mismatches, "\n".join(audit.mismatches)

    topic, dlq = new_topic(partitions=3), new_topic(prefix="dlq")
    await _produce(broker.bootstrap, topic, values, partitions=3)
    settings_ = load_settings(
        {
            "listen": "127.0.0.1:0",
            "tick_seconds": 0.2,
            "kafka": {
                "bootstrap_servers": broker.bootstrap,
                "topics": [topic],
                "group_id": f"g-{topic}",
                "dead_letter_topic": dlq,
            },
        }
    )
    daemon = Daemon(settings_, parse_config(SLOS, "slos.yaml"), clock=ManualClock(NOW_MS))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_for(lambda: daemon.telemetry.records_consumed == len(values), 120, "all records")
        await wait_for(
            lambda: daemon.telemetry.dead_lettered == sum(expected_dead.values()), 60, "dead letters"
        )
        ticks = daemon.ticks
        await wait_for(lambda: daemon.ticks > ticks + 1, 10, "a tick after the last record")
        assert daemon.latest is not None
        body = b"".join(daemon.exposition.render_chunks(daemon.latest, daemon.telemetry.snapshot()))
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 60) == 0

    out = await read_topic(broker.bootstrap, dlq, 1, sum(expected_dead.values()))
    got = Counter((dict(r.headers)[REASON_HEADER].decode(), r.value) for r in out)
    print(f"\ndaemon: {audit.summary()}; {len(out)} dead letters")
    assert got == expected_dead
    assert len(out) > 1000
    t = daemon.telemetry
    assert t.invalid.total == audit.rejections.total + audit.future
    assert t.invalid.counts.get(FUTURE, 0) == audit.future
    assert t.events_processed == audit.ingested
    code, problems = check_metrics(body)
    assert (code, problems[:20]) == (0, [])


def _decoded_rejections(values: list[bytes]) -> list[tuple[str, bytes]]:
    rejected: list[tuple[str, bytes]] = []
    # As the daemon decodes: events beyond now + the skew are refused (and dead-lettered) too.
    Decoder().decode_many(values, Rejections(), rejected, max_ts_ms=NOW_MS + SKEW_MS)
    return rejected


async def _produce(bootstrap: str, topic: str, values: list[bytes], partitions: int) -> None:
    """Write `values` round-robin over `partitions` (requests up to 32 MiB: the 10 MB message fits)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=32 << 20)
    await producer.start()
    try:
        futures = [await producer.send(topic, v, partition=i % partitions) for i, v in enumerate(values)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
