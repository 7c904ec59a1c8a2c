"""specfile.slas: the ``slas:`` section, its presets, and refusals naming ``slas[i] (name): field``."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from sloguard.core.sla import CreditTier, IntervalErrorRate, MinutesDown, Occurrences
from sloguard.core.spec import CalendarPeriod
from sloguard.specfile import SpecError, describe, parse_config

HEAD = """\
apiVersion: sloguard/v1
slos:
  - {name: api-availability, service: api, objective: 99.9, sli: {type: availability}, window: 30d}
slas:
"""


def tiers(*pairs: tuple[str, int]) -> tuple[CreditTier, ...]:
    return tuple(CreditTier(F(below), F(pct)) for below, pct in pairs)


@pytest.mark.parametrize(
    ("preset", "measure", "credits"),
    [
        ("aws-compute", MinutesDown(F(1, 20), 60), tiers(("99.99", 10), ("99", 30), ("95", 100))),
        ("aws-s3", IntervalErrorRate(300), tiers(("99.9", 10), ("99", 25), ("95", 100))),
        ("gcp-compute", MinutesDown(F(1, 20), 60), tiers(("99.99", 10), ("99", 25), ("95", 100))),
        ("azure-vm", MinutesDown(F(1, 20), 60), tiers(("99.99", 10), ("99", 25), ("95", 100))),
    ],
)
def test_presets(preset: str, measure: object, credits: tuple[CreditTier, ...]) -> None:
    (sla,) = parse_config(HEAD + f"  - {{name: s, slo: api-availability, preset: {preset}}}\n").slas
    assert (sla.measure, sla.credits, sla.period) == (measure, credits, CalendarPeriod("month", "UTC"))
    assert sla.preset == preset and sla.per == "customer"


def test_explicit_keys_replace_the_presets() -> None:
    text = HEAD + (
        "  - name: s\n    slo: api-availability\n    preset: aws-compute\n"
        "    measure: {minutes_down: {error_rate_above: 0.5, slice: 5m, min_events: 3}}\n"
        "    period: {calendar: month, timezone: Europe/Berlin}\n"
        "  - name: own\n    slo: api-availability\n    measure: {occurrences: {}}\n"
        "    credits: [{below: 95, percent: 100}, {below: 99.5, percent: 5}]\n    min_events: 50\n"
    )
    s, own = parse_config(text).slas
    assert s.measure == MinutesDown(F(1, 2), 300, 3) and s.period == CalendarPeriod("month", "Europe/Berlin")
    assert s.credits == tiers(("99.99", 10), ("99", 30), ("95", 100))
    assert own.measure == Occurrences() and own.min_events == 50
    assert own.credits == tiers(("99.5", 5), ("95", 100))  # sorted, highest below first


def test_refusals() -> None:
    text = HEAD + (
        "  - {name: a, slo: nope, preset: aws-compte}\n"
        "  - {name: b, slo: api-availability, measure: {minutes_down: {error_rate_above: 2, slice: 7m}},"
        " credits: []}\n"
        "  - {name: c, slo: api-availability, measure: {}, credits: [{below: 99, percent: 1},"
        " {below: 99, percent: 2}]}\n"
        "  - {name: c, slo: nope}\n"
    )
    with pytest.raises(SpecError) as err:
        parse_config(text, "f.yaml")
    assert list(err.value.problems) == [
        "f.yaml: slas[0] (a): preset: must be 'aws-compute', 'aws-s3', 'gcp-compute' or 'azure-vm' "
        "(got 'aws-compte')",
        "f.yaml: slas[1] (b): measure.minutes_down.error_rate_above: must be greater than 0 and less than 1,"
        " a ratio such as 0.05 (got 2)",
        "f.yaml: slas[1] (b): measure.minutes_down.slice: must divide an hour (1m, 5m, 10m, 1h, ...)"
        " (got '7m')",
        "f.yaml: slas[1] (b): credits: must not be empty",
        "f.yaml: slas[2] (c): measure: must name exactly one of minutes_down, interval_error_rate,"
        " occurrences",
        "f.yaml: slas[2] (c): credits: two tiers have the same below",
        "f.yaml: slas[3] (c): name: duplicate SLA name; slas[2] already uses it",
        "f.yaml: slas[3] (c): slo: no SLO named 'nope' in this file",
        "f.yaml: slas[3] (c): measure: is required without a preset",
        "f.yaml: slas[3] (c): credits: is required without a preset",
    ]


def test_no_slas_section() -> None:
    assert parse_config(HEAD.removesuffix("slas:\n")).slas == ()


def test_check_describes_the_slas() -> None:
    text = HEAD + "  - {name: s, slo: api-availability, preset: aws-s3, min_events: 100}\n"
    assert describe(parse_config(text)).split("\n\nslas:\n")[1].split("\n")[0] == (
        "  s: api-availability per customer, preset aws-s3; interval_error_rate, 5m slices, downtime listed"
        " above 5 %; calendar month (UTC); credits below 99.9 % 10 %, below 99 % 25 %, below 95 % 100 %;"
        " insufficient data under 100 events"
    )
