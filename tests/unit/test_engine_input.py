"""The engine builds its decoder from the mapping in force, and a reload that changes only ``input:``
switches the decoder while every SLO keeps its state."""

from __future__ import annotations

import json

from sloguard.core.model import Rejections
from sloguard.engine import Engine
from sloguard.specfile import parse_config

SLO = """slos:
  - {name: checkout, service: checkout, objective: 99.9, sli: {type: availability}, window: 30d}
"""
ENVOY_LINE = json.dumps(
    {
        "start_time": "2026-03-01T12:00:00Z",
        "method": "GET",
        "path": "/v1/cart",
        "response_code": 503,
        "duration": 3,
    }
).encode()


def _config(input_yaml: str = "") -> str:
    return f"apiVersion: sloguard/v1\n{input_yaml}{SLO}"


def test_file_input_then_setting_then_own_shape() -> None:
    with_input = parse_config(_config("input: {preset: envoy, service: {value: checkout}}\n"))
    engine = Engine(with_input, input_preset="nginx-json")
    assert engine.decoder.mapped is not None and engine.decoder.mapped.spec == with_input.input
    bare = parse_config(_config())
    preset_only = Engine(bare, input_preset="otlp-json").decoder.mapped
    assert preset_only is not None and preset_only.spec.preset == "otlp-json"
    assert Engine(bare).decoder.mapped is None


def test_reload_of_the_input_keeps_slo_state() -> None:
    before = parse_config(_config("input: {preset: envoy, service: {value: checkout}}\n"))
    engine = Engine(before)
    rejections = Rejections()
    engine.aggregator.ingest(engine.decoder.decode(ENVOY_LINE, rejections))
    assert rejections.total == 0
    after = parse_config(
        _config("input: {preset: envoy, service: {value: checkout}, routes: {auto_ids: true}}\n")
    )
    assert after != before  # what the reloader compares
    report = engine.reconfigure(after)
    assert list(report.restored) == ["checkout"]
    assert engine.decoder.mapped is not None and engine.decoder.mapped.spec.routes.auto_ids
    assert engine.decoder.vocabs is engine.aggregator.vocabs
