"""The SLO file's ``input:`` section: paths, presets with overrides, refusals naming the field, and what
`sloguard check` prints about the mapping in force."""

from __future__ import annotations

import pytest

from sloguard.core.inputspec import FieldSpec, InputSpec, RouteSpec, show_path
from sloguard.ingest.presets import PRESETS
from sloguard.specfile import SpecError, describe, parse_config
from sloguard.specfile.inputs import parse_path
from sloguard.specfile.inputsummary import describe_input

SLOS = """slos:
  - name: ok
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
"""


def _file(input_yaml: str) -> str:
    return f"apiVersion: sloguard/v1\ninput:\n{input_yaml}\n{SLOS}"


def _problems(input_yaml: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_config(_file(input_yaml), "slos.yaml")
    return list(info.value.problems)


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("status", ("status",)),
        ("http.response.status_code", ("http", "response", "status_code")),
        ('attributes."http.route"', ("attributes", "http.route")),
        ('"a.b"', ("a.b",)),
        ('"say \\"hi\\"".x', ('say "hi"', "x")),
        ('"back\\\\slash"', ("back\\slash",)),
        ("@timestamp", ("@timestamp",)),
    ],
    ids=["one", "nested", "quoted-dots", "quoted-only", "escaped-quote", "escaped-backslash", "at-sign"],
)
def test_paths_parse_and_show_back(text: str, keys: tuple[str, ...]) -> None:
    assert parse_path(text) == keys
    assert parse_path(show_path(keys)) == keys


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("a.", "ends with a dot"),
        (".a", "has an empty key at character 1"),
        ("a..b", "has an empty key at character 3"),
        ('"a', "has an unterminated quote at character 1"),
        ('a"b', "has '\"' at character 2"),
        ('""', "has an empty quoted key at character 1"),
    ],
)
def test_bad_paths_say_where(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_path(text)


def test_no_input_section_is_none() -> None:
    assert parse_config(f"apiVersion: sloguard/v1\n{SLOS}").input is None


def test_preset_with_overrides() -> None:
    spec = parse_config(
        _file(
            "  preset: envoy\n"
            "  service: {value: checkout}\n"
            "  customer: {path: 'headers.\"x-tenant\"', default: anon}\n"
            "  routes: {templates: ['/v1/orders/{id}'], auto_ids: true}\n"
        )
    ).input
    envoy = PRESETS["envoy"]
    assert spec == InputSpec(
        **{
            **{f: getattr(envoy, f) for f in envoy.__dataclass_fields__},
            "service": FieldSpec(value="checkout"),
            "customer": FieldSpec(paths=(("headers", "x-tenant"),), default="anon"),
            "routes": RouteSpec(templates=("/v1/orders/{id}",), auto_ids=True),
        }
    )


def test_fields_from_scratch_shorthands_alternatives_and_end() -> None:
    spec = parse_config(
        _file(
            "  ts: {path: timing.start_ns, format: epoch_ns}\n"
            "  service: [svc, app.name]\n"
            "  method: http.method\n"
            "  route: http.target\n"
            "  status: http.response.status_code\n"
            "  latency: {end: timing.end_ns}\n"
            "  numbers: lenient\n"
        )
    ).input
    assert spec is not None
    assert spec.ts == FieldSpec(paths=(("timing", "start_ns"),)) and spec.ts_format == "epoch_ns"
    assert spec.service == FieldSpec(paths=(("svc",), ("app", "name")))
    assert spec.endpoint is None and spec.route == FieldSpec(paths=(("http", "target"),))
    assert spec.latency is None and spec.end == FieldSpec(paths=(("timing", "end_ns"),))
    assert spec.customer == InputSpec().customer  # untouched fields keep sloguard's own shape


def test_endpoint_replaces_the_presets_method_and_route() -> None:
    spec = parse_config(_file("  preset: nginx-json\n  endpoint: ep\n  latency: {unit: ms}\n")).input
    assert spec is not None
    assert (spec.endpoint, spec.method, spec.route) == (FieldSpec(paths=(("ep",),)), None, None)
    assert spec.latency == PRESETS["nginx-json"].latency and spec.latency_unit == "ms"


def test_default_null_drops_the_presets_default() -> None:
    spec = parse_config(_file("  preset: envoy\n  customer: {path: tenant, default: null}\n")).input
    assert spec is not None and spec.customer == FieldSpec(paths=(("tenant",),))


def test_refusals_name_the_field() -> None:
    assert _problems(
        "  preset: envoyy\n"
        "  status: 'a..b'\n"
        "  ts: {format: epoch_fs}\n"
        "  routes: {templates: ['v1/x', '/v1/{a}b']}\n"
        "  foo: 1\n"
    ) == [
        "slos.yaml: input.preset: must be one of envoy, nginx-json, otlp-json, otlp-proto (got 'envoyy')",
        "slos.yaml: input.ts.format: must be 'auto', 'rfc3339', 'epoch_s', 'epoch_ms', 'epoch_us' or "
        "'epoch_ns' (got 'epoch_fs')",
        "slos.yaml: input.status.path: has an empty key at character 3 (got 'a..b')",
        "slos.yaml: input.routes.templates[0]: must be a route template starting with / such as "
        "/v1/orders/{id} (got 'v1/x')",
        "slos.yaml: input.routes.templates[1]: a placeholder is a whole segment such as {id} "
        "(got '/v1/{a}b')",
        "slos.yaml: input.foo: unknown field; allowed: customer, endpoint, format, latency, method, numbers, "
        "preset, route, routes, service, status, ts",
    ]


def test_cross_field_refusals() -> None:
    assert _problems(
        "  service: {value: checkout, path: svc}\n"
        "  endpoint: ep\n"
        "  method: m\n"
        "  latency: {end: t, unit: ms}\n"
    ) == [
        "slos.yaml: input.service: value is a constant label: it takes no path or default",
        "slos.yaml: input.endpoint: give endpoint, or method and route, not both",
        "slos.yaml: input.latency: end (a timestamp) takes no path or unit: the duration is end - ts",
    ]
    assert _problems("  method: m\n") == [
        "slos.yaml: input.route: method needs a route (the request path) to join with"
    ]


def _source(lines: list[str]) -> str:
    return next(line for line in lines if line.strip().startswith("source")).split(None, 1)[1]


def test_check_says_which_mapping_wins() -> None:
    own = parse_config(f"apiVersion: sloguard/v1\n{SLOS}")
    assert "sloguard's own shape" in _source(describe_input(own.input))
    assert _source(describe_input(None, "nginx-json")) == (
        "preset nginx-json from SLOGUARD_INPUT__PRESET (the SLO file has no input:)"
    )
    spec = parse_config(_file("  preset: envoy\n")).input
    assert _source(describe_input(spec, "nginx-json")) == (
        "the SLO file's input: (from preset envoy); SLOGUARD_INPUT__PRESET=nginx-json is ignored: "
        "the file's input: wins"
    )


def test_check_prints_the_effective_mapping() -> None:
    text = describe(parse_config(_file("  preset: otlp-json\n")))
    assert "  decoder      the mapped path (ingest/mapped.py)\n" in text
    assert '  service      resource."service.name"\n' in text
    assert (
        '  endpoint     attributes."http.request.method" or attributes."http.method" + \' \' + '
        'attributes."http.route" or attributes."url.path" or attributes."http.target" '
        "(query string dropped)\n"
    ) in text
    assert "  latency      endTimeUnixNano - ts (end timestamp)" in text
    flat = describe(parse_config(_file("  ts: time\n  latency: {path: dur, unit: s}\n")))
    assert "  decoder      the fast path (flat field names)\n" in flat
