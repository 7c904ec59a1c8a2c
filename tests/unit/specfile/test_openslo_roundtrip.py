"""sloguard -> OpenSLO -> sloguard gives an equal Config; the OpenSLO specification's own examples, whose
metric sources sloguard cannot evaluate, are refused with the reason; ``sloguard convert --to openslo``."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from sloguard.cli import main
from sloguard.core.spec import Timeslices
from sloguard.specfile import SpecError, load_config, parse_config
from sloguard.specfile.openslo.writer import dump, to_openslo
from tests.unit.specfile.openslo_texts import OPENSLO, ROOT, SPEC_EXAMPLES

SA = "document 1 (SLO service-availability): "
SS = "document 1 (SLO search-slo): "
MP = "document 1 (SLO main-page): "
SLOGUARD_FILES = [
    ROOT / "config" / "slos.example.yaml",
    *sorted((ROOT / "config" / "examples").glob("*.yaml")),
    ROOT / "tests" / "testdata" / "specs" / "issue-example.yaml",
    OPENSLO / "roundtrip.sloguard.yaml",
    OPENSLO / "checkout.sloguard.yaml",
    OPENSLO / "timeslices.sloguard.yaml",
]


@pytest.mark.parametrize("path", SLOGUARD_FILES, ids=lambda p: p.name)
def test_round_trip_gives_an_equal_config(path: Path) -> None:
    config = load_config(path)
    docs, _ = to_openslo(config)
    back = parse_config(dump(docs), "converted.yaml")
    assert back.slos == config.slos
    # And once more: OpenSLO -> sloguard -> OpenSLO writes the same documents.
    assert to_openslo(back)[0] == docs


def test_openslo_stream_round_trip() -> None:
    config = load_config(OPENSLO / "checkout.yaml")
    assert parse_config(dump(to_openslo(config)[0]), "x.yaml") == config


def test_output_is_openslo_v1() -> None:
    docs, notes = to_openslo(load_config(OPENSLO / "roundtrip.sloguard.yaml"))
    assert notes == []
    kinds = [d["kind"] for d in docs]
    assert kinds[:3] == ["Service", "Service", "Service"]  # one per service, in order
    assert set(kinds) == {"Service", "SLO", "AlertCondition", "AlertPolicy"}
    assert all(d["apiVersion"] == "openslo/v1" and d["metadata"]["name"] for d in docs)
    slo = next(d for d in docs if d["kind"] == "SLO" and d["metadata"]["name"] == "api-latency")
    assert slo["spec"]["budgetingMethod"] == "Occurrences"
    assert slo["spec"]["timeWindow"] == [
        {
            "duration": "1Q",
            "calendar": {"startTime": "2024-01-01 00:00:00", "timeZone": "Asia/Kolkata"},
            "isRolling": False,
        }
    ]
    text = dump(docs)
    assert "target: 0.99\n" in text and "threshold: 7.71429\n" in text  # exact decimals, 6 digits at most
    assert all(isinstance(d, dict) for d in yaml.safe_load_all(text))


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (
            "occurrences-slo.yaml",
            [
                f"{SS}spec.indicator.spec.thresholdMetric.metricSource.type: sloguard "
                "cannot evaluate Any sources",
                f"{SS}spec.objectives[0].op: must be lte for a thresholdMetric SLI",
            ],
        ),
        (
            "timeslices-slo.yaml",
            [
                f"{SA}spec.indicator.spec.ratioMetric.good.metricSource.type: "
                "sloguard cannot evaluate Any sources",
                f"{SA}spec.indicator.spec.ratioMetric.total.metricSource.type",
                f"{SA}spec.timeWindow[0].duration: a calendar window must be 1w, 1M, 1Q or 1Y (got '1m')",
                f"{SA}spec.objectives[1]: sloguard evaluates one objective",
                f"{SA}spec.objectives[0].op: only applies to a thresholdMetric",
            ],
        ),
        (
            "ratio-timeslices.yaml",
            [
                f"{MP}spec.indicator.spec.ratioMetric.good.metricSource.type",
                f"{MP}spec.indicator.spec.ratioMetric.total.metricSource.type",
                f"{MP}spec.objectives[0].op: only applies to a thresholdMetric SLI",
            ],
        ),
        (
            "v1-objects.yaml",
            [
                "document 3, item 1 (SLI search-availability): spec.ratioMetric.good.metricSource."
                "metricSourceRef: datadog is a Datadog DataSource; sloguard cannot evaluate Datadog sources",
                "document 3, item 1 (SLI search-availability): spec.ratioMetric.total.metricSource."
                "metricSourceRef: datadog is a Datadog DataSource",
            ],
        ),
    ],
)
def test_the_specifications_examples_are_refused_with_why(example: str, expected: list[str]) -> None:
    path = SPEC_EXAMPLES / example
    with pytest.raises(SpecError) as exc:
        load_config(path)
    lines = exc.value.problems
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(f"{path}: {start}"), line


def test_spec_examples_with_sloguard_sources_are_read() -> None:
    # The v1 example objects, their Prometheus/Datadog sources swapped for sloguard's: every kind is read.
    text = (SPEC_EXAMPLES / "v1-objects.yaml").read_text()
    text = text.replace("type: Datadog", "type: sloguard").replace(
        "query: sum:trace.http.request.hits.by_http_status{http.status_code:200}.as_count()", "status: [5xx]"
    )
    text = text.replace("good:", "bad:").replace(
        "query: sum:trace.http.request.hits.by_http_status{*}.as_count()", "{}"
    )
    (slo,) = parse_config(text, "v1.yaml").slos
    assert slo.name == "web-availability"
    assert slo.tiers[0].factor == 2 and slo.tiers[0].for_seconds == 300


def test_convert_writes_a_file_check_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "slos.openslo.yaml"
    assert (
        main(["convert", "--to", "openslo", "-c", str(ROOT / "config" / "slos.example.yaml"), "-o", str(out)])
        == 0
    )
    assert "the latency: section" in capsys.readouterr().err  # a note: percentiles have no OpenSLO form
    assert out.read_text().startswith("# Generated by sloguard")
    assert load_config(out).slos == load_config(ROOT / "config" / "slos.example.yaml").slos
    assert main(["check", str(out)]) == 0


def test_convert_notes_that_the_input_section_is_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "slos.yaml"
    slos = (OPENSLO / "checkout.sloguard.yaml").read_text()
    assert "input:" not in slos
    source.write_text(slos.replace("slos:", "input:\n  preset: otlp-proto\nslos:", 1))
    out = tmp_path / "slos.openslo.yaml"
    assert main(["convert", "--to", "openslo", "-c", str(source), "-o", str(out)]) == 0
    assert (
        f"sloguard: note: {source}: the input: section (preset otlp-proto) has no OpenSLO form and is"
        " left out" in capsys.readouterr().err
    )
    assert load_config(out).input is None
    assert load_config(out).slos == load_config(source).slos
    assert main(["convert", "--to", "openslo", str(OPENSLO / "checkout.sloguard.yaml")]) == 0
    assert "input:" not in capsys.readouterr().err  # no input: section, no note


def test_convert_to_stdout_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", "--to", "openslo", str(OPENSLO / "checkout.sloguard.yaml")]) == 0
    assert parse_config(capsys.readouterr().out, "-") == load_config(OPENSLO / "checkout.sloguard.yaml")
    missing = tmp_path / "no" / "out.yaml"
    assert main(["convert", "--to", "openslo", str(OPENSLO / "checkout.yaml"), "-o", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"sloguard: {missing}: cannot write the OpenSLO file: directory {missing.parent} does not exist\n"
    )
    assert main(["convert", "--to", "openslo", str(SPEC_EXAMPLES / "ratio-timeslices.yaml")]) == 2
    assert "sloguard cannot evaluate Any sources" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["convert", "--to", "sloth", str(OPENSLO / "checkout.yaml")])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("example", "slice_s", "good_ratio"),
    [("timeslices-slo.yaml", 60, "0.99"), ("ratio-timeslices.yaml", 60, None)],
)
def test_spec_time_slice_examples_with_sloguard_sources_are_read_and_round_trip(
    example: str, slice_s: int, good_ratio: str | None
) -> None:
    # The specification's budgeting-method examples, their "Any" sources swapped for sloguard's, the
    # objectives sloguard cannot evaluate (a second one, op on a ratio) and the 1m calendar window fixed.
    docs = list(yaml.safe_load_all((SPEC_EXAMPLES / example).read_text()))
    spec = docs[0]["spec"]
    ratio = spec["indicator"]["spec"]["ratioMetric"]
    ratio.pop("good")
    ratio["bad"] = {"metricSource": {"type": "sloguard", "spec": {"status": ["5xx"]}}}
    ratio["total"] = {"metricSource": {"type": "sloguard", "spec": {}}}
    spec["objectives"] = [{k: v for k, v in spec["objectives"][0].items() if k != "op"}]
    window = spec["timeWindow"][0]
    if window["duration"] == "1m":  # the example's calendar window: a month from local midnight
        window["duration"] = "1M"
        window["calendar"]["startTime"] = "2022-01-01 00:00:00"
    (slo,) = parse_config(yaml.safe_dump_all(docs), example).slos
    assert slo.budgeting == Timeslices(slice_s, None if good_ratio is None else Fraction(good_ratio))
    config = parse_config(yaml.safe_dump_all(docs), example)
    back = parse_config(dump(to_openslo(config)[0]), "converted.yaml")
    assert back.slos == config.slos
