"""Real log lines, not only our generator's shape: extra fields anywhere, keys in any order, long user agents
with escapes and UTF-8, nested `request` objects (some holding keys named like the configured fields),
CRLF, repeated keys. Whatever path reads them, the result is what the msgspec path alone gives, and
`Decoder.stats` says which path that was: valid lines of these shapes are read a whole piece at a time
(the byte fast path or msgspec's bulk decode), never line by line.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloguard.core.model import Rejections
from sloguard.ingest import decode as dec
from sloguard.ingest import framing
from sloguard.ingest.decode import DecodeOptions, Decoder
from tests.unit.ingest.test_fastpath import decode_both

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 "
    "Safari/537.36",
    'curl/8.5.0 "quoted" \\ back\\slash / slash',
    "caf\u00e9-app/3.2 (r\u00e9gion=fr) \u65e5\u672c\u8a9e \U0001f600",
    'tricky "service": "evil", "status": 500, "ts": "x"',
    "tab\there, newline\nhere, nul\x00 and \x7f",
    "x" * 2000,
]


def request_object(rnd: random.Random) -> object:
    """A nested request object; sometimes with keys named like the configured fields."""
    req: dict[str, object] = {
        "method": rnd.choice(["GET", "POST"]),
        "path": "/v1/cart",
        "query": {"page": rnd.randrange(9), "tags": ["a", "b", {"deep": [1, [2, [3]]]}]},
        "bytes_in": rnd.randrange(1 << 16),
        "headers": {"accept": "application/json", "x-id": rnd.random()},
    }
    if rnd.random() < 0.4:
        req.update(
            {
                "status": rnd.choice([200, 404, "x", None]),
                "service": rnd.choice(["inner", "", 5]),
                "ts": rnd.choice(["2026-03-01T00:00:00Z", 0, "nope"]),
                "latency_ms": rnd.choice([1.5, -1, "fast"]),
                "customer": {"customer": "nested"},
            }
        )
    return req


def fields(rnd: random.Random, bad: float) -> list[tuple[str, str]]:
    """The six fields (valid, or now and then not) and extra ones, as (key, JSON text), in a random order."""
    out = [
        (
            "ts",
            json.dumps(
                f"2026-03-01T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:07.{rnd.randrange(999):03d}Z"
            ),
        ),
        (
            "service",
            json.dumps(rnd.choice(["checkout", "search", "caf\u00e9"]), ensure_ascii=rnd.random() < 0.5),
        ),
        ("endpoint", json.dumps(rnd.choice(["GET /v1/cart", "POST /v1/pay", 'GET /q?a="b"']))),
        ("customer", json.dumps(f"cust-{rnd.randrange(50)}")),
        ("status", str(rnd.choice([200, 200, 404, 503]))),
        ("latency_ms", f"{rnd.uniform(0, 900):.3f}"),
        ("trace_id", json.dumps(f"{rnd.getrandbits(128):032x}")),
        ("region", json.dumps(rnd.choice(["eu-west-1", "us-east-1"]))),
        ("user_agent", json.dumps(rnd.choice(USER_AGENTS), ensure_ascii=rnd.random() < 0.5)),
        ("request", json.dumps(request_object(rnd))),
        ("tags", rnd.choice(["[]", "[1, 2.5e3, true, null]", '{"k": [{}]}'])),
        ("ok", rnd.choice(["true", "false", "null"])),
    ]
    rnd.shuffle(out)
    if rnd.random() < bad:  # a key or two missing (the first ones of the shuffle)
        del out[: rnd.choice([1, 2])]
    if rnd.random() < bad:  # a repeated key: the last one wins, every one must have the right type
        key = rnd.choice(["status", "service", "ts", "latency_ms", "customer", "region"])
        value = rnd.choice(["500", '"other"', "null", "1.5", '"2026-03-01T00:00:00Z"', "{}"])
        out.insert(rnd.randrange(len(out) + 1), (key, value))
    return out


def realistic_line(rnd: random.Random, bad: float = 0.0) -> bytes:
    colon, comma = rnd.choice([(": ", ", "), (":", ",")])
    return ("{" + comma.join(f'"{k}"{colon}{v}' for k, v in fields(rnd, bad)) + "}").encode()


def realistic_buffer(rnd: random.Random, n: int, bad: float = 0.0, crlf: float = 0.0) -> bytes:
    return b"".join(realistic_line(rnd, bad) + (b"\r\n" if rnd.random() < crlf else b"\n") for _ in range(n))


@pytest.mark.parametrize("crlf", [0.0, 0.5, 1.0], ids=["lf", "mixed", "crlf"])
@pytest.mark.parametrize("seed", range(3))
def test_realistic_lines_are_read_a_piece_at_a_time(seed: int, crlf: float) -> None:
    """Valid lines of any shape in big buffers: the same events as msgspec alone, and not one line read
    line by line (before, nested objects counted as one deep line sent every piece down that path)."""
    rnd = random.Random(seed)
    buf = realistic_buffer(rnd, 3000, crlf=crlf)
    batch = decode_both([buf])
    assert len(batch) == 3000
    decoder = Decoder()
    decoder.decode(buf, Rejections())
    assert decoder.stats.as_dict() == {"fast": 0, "bulk": 3000, "per_line": 0}


def test_a_deep_line_sends_only_its_piece_line_by_line() -> None:
    rnd = random.Random(3)
    parts = [realistic_line(rnd) for _ in range(3000)]
    parts[1500] = b'{"a": ' + b"[" * framing.MAX_DEPTH + b"]" * framing.MAX_DEPTH + b"}"
    buf = b"\n".join(parts)
    decode_both([buf])
    decoder = Decoder()
    rejections = Rejections()
    decoder.decode(buf, rejections)
    assert rejections.counts.get(dec.MALFORMED_JSON) == 1
    stats = decoder.stats
    assert stats.per_line > 0
    assert stats.bulk > stats.per_line
    assert stats.fast + stats.bulk + stats.per_line == 3000


@pytest.mark.parametrize("seed", range(6))
def test_odd_realistic_lines(seed: int) -> None:
    """Missing and repeated keys, wrong types inside and outside the nested objects, CRLF: small pieces,
    so that every path (fast, bulk, per line) meets them."""
    rnd = random.Random(100 + seed)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dec, "_FAST_MIN_BYTES", 0)
        mp.setattr(framing, "PIECE_BYTES", rnd.choice([300, 3000, 30_000]))
        decode_both([realistic_buffer(rnd, 400, bad=0.3, crlf=0.3)])
        decode_both([realistic_line(rnd, bad=0.5) for _ in range(60)])


def test_repeated_keys_last_wins_on_every_path() -> None:
    """JSON's duplicate keys as msgspec reads them: the last value wins (checked for type each time)."""
    base = '"ts": "2026-03-01T00:00:01Z", "service": "a", "endpoint": "/", "customer": "c", "latency_ms": 1'
    lines = [
        "{" + base + ', "status": 200, "status": 503}',
        "{" + '"status": 503, ' + base + ', "status": 200}',
        "{" + base + ', "status": "x", "status": 200}',  # an earlier wrong type still fails the line
        "{" + base + ', "status": 200, "region": "a", "region": 5}',
    ]
    records = [line.encode() for line in lines]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dec, "_FAST_MIN_BYTES", 0)
        batch = decode_both([b"\n".join(records * 40)])
    assert batch.status.tolist()[:4] == [503, 200, 200, 503]
    assert len(batch) == 3 * 40


@pytest.mark.parametrize(
    "options",
    [
        DecodeOptions(),
        DecodeOptions(ts_field="@timestamp", service_field="svc", status_field="code", latency_field="dur"),
    ],
    ids=["default", "renamed"],
)
def test_field_names_in_nested_objects(options: DecodeOptions) -> None:
    """The configured names inside nested objects (and inside strings) are not the event's fields."""
    names = options.field_names()
    inner = "{" + ", ".join(f'"{n}": "inner"' for n in names) + "}"
    line = (
        "{" + f'"request": {inner}, "note": "\\"{names[1]}\\": \\"fake\\"", '
        f'"{names[0]}": "2026-03-01T00:00:01Z", "{names[1]}": "svc", "{names[2]}": "/", '
        f'"{names[3]}": "c", "{names[4]}": 201, "{names[5]}": 2.5, "after": {inner}' + "}"
    ).encode()
    batch = decode_both([b"\n".join([line] * 200)], options)
    assert batch.service.vocab.names == ["svc"]
    assert batch.status.tolist() == [201] * 200


key_text = st.sampled_from(["ts", "service", "endpoint", "customer", "status", "latency_ms", "x", "request"])
json_value = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=False),
        st.text(max_size=12),
        st.sampled_from(["2026-03-01T00:00:01.5Z", "checkout", "GET /"]),
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(key_text, children, max_size=4),
    max_leaves=12,
)


@st.composite
def shaped_line(draw: st.DrawFn) -> bytes:
    """A line of the six fields (valid values, mostly) among extra ones, in a drawn order and spelling."""
    rnd = random.Random(draw(st.integers(0, 2**32)))
    pairs = [(k, v) for k, v in fields(rnd, bad=0.2)]
    for _ in range(draw(st.integers(0, 3))):
        value = json.dumps(draw(json_value), ensure_ascii=draw(st.booleans()))
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(key_text), value))
    sep = draw(st.sampled_from([(": ", ", "), (":", ","), (" : ", " , ")]))
    return ("{" + sep[1].join(f'"{k}"{sep[0]}{v}' for k, v in pairs) + "}").encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(shaped_line(), min_size=1, max_size=30), st.sampled_from([b"\n", b"\r\n"]))
def test_any_shapes(parts: list[bytes], sep: bytes) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dec, "_FAST_MIN_BYTES", 0)
        mp.setattr(framing, "PIECE_BYTES", 500)
        decode_both([sep.join(parts)])
        decode_both([sep.join(parts * 40)])


def test_value_rejections_across_a_run_of_bulk_pieces() -> None:
    """Pieces decoded in bulk are assembled together: a rejected row still names its own line (reason and
    dead-letter bytes as when that line is decoded alone), wherever its piece sits in the run."""
    rnd = random.Random(11)
    lines = [realistic_line(rnd) for _ in range(3000)]
    # A repeated key: the last one wins, so the odd value goes after the line's own.
    odd = {
        17: (b'"status": 999', dec.BAD_STATUS),
        900: (b'"latency_ms": -1', dec.NEGATIVE_LATENCY),
        1701: (b'"ts": "2026-13-01T00:00:00Z"', dec.BAD_TIMESTAMP),
        2999: (b'"status": 99', dec.BAD_STATUS),
    }
    for at, (field, _) in odd.items():
        lines[at] = lines[at][:-1] + b", " + field + b"}"
    buf = b"\n".join(lines)
    decode_both([buf])
    decoder = Decoder()
    dead: list[tuple[str, bytes]] = []
    batch = decoder.decode(buf, Rejections(), dead)
    assert len(batch) == 3000 - len(odd)
    assert decoder.stats.as_dict() == {"fast": 0, "bulk": 3000, "per_line": 0}
    assert dead == [(odd[at][1], lines[at]) for at in sorted(odd)]
    for (reason, payload), at in zip(dead, sorted(odd), strict=True):
        alone_dead: list[tuple[str, bytes]] = []
        Decoder().decode(payload, Rejections(), alone_dead)
        assert alone_dead == [(reason, lines[at])]
