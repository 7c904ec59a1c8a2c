"""What sloguard cannot evaluate in an OpenSLO stream is refused: one line naming the document (position in
the stream), kind, name and field, with why. Each case changes the valid `base` stream in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sloguard.specfile import SpecError, parse_config
from tests.unit.specfile.openslo_texts import SOURCE, base, doc, parse, problems, source, text

SLO = "document 3 (SLO api)"
SLI = "document 2 (SLI api-errors)"
CONDITION = "document 5 (AlertCondition fast)"
POLICY = "document 4 (AlertPolicy fast)"
NOT_YET = "is not supported yet: sloguard budgets Occurrences (good events / all events)"
SLICES = "only applies to Timeslices and RatioTimeslices budgeting (budgetingMethod is Occurrences)"

Change = Callable[[list[dict[str, Any]]], object]


def _slo(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = docs[2]["spec"]
    return spec


def _objective(docs: list[dict[str, Any]]) -> dict[str, Any]:
    objective: dict[str, Any] = _slo(docs)["objectives"][0]
    return objective


def _condition(docs: list[dict[str, Any]]) -> dict[str, Any]:
    condition: dict[str, Any] = docs[4]["spec"]["condition"]
    return condition


def _ratio(docs: list[dict[str, Any]]) -> dict[str, Any]:
    ratio: dict[str, Any] = docs[1]["spec"]["ratioMetric"]
    return ratio


CASES: dict[str, tuple[Change, str]] = {
    "timeslices-without-window": (
        lambda d: (_slo(d).update(budgetingMethod="Timeslices"), _objective(d).update(timeSliceTarget=0.95)),
        f"{SLO}: spec.objectives[0].timeSliceWindow: is required for Timeslices budgeting: the slice, "
        "e.g. 1m",
    ),
    "timeslices-without-target": (
        lambda d: (_slo(d).update(budgetingMethod="Timeslices"), _objective(d).update(timeSliceWindow="1m")),
        f"{SLO}: spec.objectives[0].timeSliceTarget: is required for Timeslices budgeting: the good ratio "
        "of a good slice",
    ),
    "ratio-timeslices-without-window": (
        lambda d: _slo(d).update(budgetingMethod="RatioTimeslices"),
        f"{SLO}: spec.objectives[0].timeSliceWindow: is required for RatioTimeslices budgeting: the "
        "slice, e.g. 1m",
    ),
    "ratio-timeslices-with-target": (
        lambda d: (
            _slo(d).update(budgetingMethod="RatioTimeslices"),
            _objective(d).update(timeSliceWindow="5m", timeSliceTarget=0.9),
        ),
        f"{SLO}: spec.objectives[0].timeSliceTarget: only applies to Timeslices budgeting "
        "(not RatioTimeslices)",
    ),
    "time-slice-window-not-dividing-an-hour": (
        lambda d: (
            _slo(d).update(budgetingMethod="RatioTimeslices"),
            _objective(d).update(timeSliceWindow="7m"),
        ),
        f"{SLO}: spec.objectives[0].timeSliceWindow: must be at least 1s and divide 1h evenly, e.g. 1m or "
        "5m (got '7m')",
    ),
    "time-slice-target-as-percent": (
        lambda d: (
            _slo(d).update(budgetingMethod="Timeslices"),
            _objective(d).update(timeSliceWindow="1m", timeSliceTarget=95),
        ),
        f"{SLO}: spec.objectives[0].timeSliceTarget: must be greater than 0 and at most 1, the share of "
        "good events a good slice needs (got 95)",
    ),
    "empty-slice-on-occurrences": (
        lambda d: d[2]["metadata"].update(annotations={"sloguard/empty-slice": "skip"}),
        f"{SLO}: metadata.annotations.sloguard/empty-slice: {SLICES}",
    ),
    "empty-slice-unknown": (
        lambda d: (
            d[2]["metadata"].update(annotations={"sloguard/empty-slice": "maybe"}),
            _slo(d).update(budgetingMethod="RatioTimeslices"),
            _objective(d).update(timeSliceWindow="5m"),
        ),
        f"{SLO}: metadata.annotations.sloguard/empty-slice: must be 'good', 'bad' or 'skip' (got 'maybe')",
    ),
    "unknown-budgeting": (
        lambda d: _slo(d).update(budgetingMethod="Occurences"),
        f"{SLO}: spec.budgetingMethod: must be one of Occurrences, Timeslices, RatioTimeslices "
        "(got 'Occurences')",
    ),
    "time-slice-target": (
        lambda d: _objective(d).update(timeSliceTarget=0.95),
        f"{SLO}: spec.objectives[0].timeSliceTarget: {SLICES}",
    ),
    "time-slice-window": (
        lambda d: _objective(d).update(timeSliceWindow="1m"),
        f"{SLO}: spec.objectives[0].timeSliceWindow: {SLICES}",
    ),
    "two-objectives": (
        lambda d: _slo(d)["objectives"].append({"target": 0.99}),
        f"{SLO}: spec.objectives[1]: sloguard evaluates one objective per SLO; write one SLO per objective",
    ),
    "target-and-percent": (
        lambda d: _objective(d).update(targetPercent=99.9),
        f"{SLO}: spec.objectives[0]: give exactly one of target (0.999) or targetPercent (99.9)",
    ),
    "op-on-ratio": (
        lambda d: _objective(d).update(op="gt"),
        f"{SLO}: spec.objectives[0].op: only applies to a thresholdMetric SLI",
    ),
    "rolling-months": (
        lambda d: _slo(d).update(timeWindow=[{"duration": "1M", "isRolling": True}]),
        f"{SLO}: spec.timeWindow[0].duration: a rolling window of 1M has no fixed length; give days "
        "(e.g. 30d) or a calendar window",
    ),
    "calendar-two-weeks": (
        lambda d: _slo(d).update(timeWindow=[{"duration": "2w", "calendar": {"timeZone": "UTC"}}]),
        f"{SLO}: spec.timeWindow[0].duration: a calendar window must be 1w, 1M, 1Q or 1Y (got '2w')",
    ),
    "calendar-noon": (
        lambda d: _slo(d).update(
            timeWindow=[
                {"duration": "1M", "calendar": {"startTime": "2022-01-01 12:00:00", "timeZone": "UTC"}}
            ]
        ),
        f"{SLO}: spec.timeWindow[0].calendar.startTime: sloguard's calendar months start at local midnight "
        "on the 1st of the time zone; 2022-01-01 12:00:00 is not such a start",
    ),
    "calendar-rolling": (
        lambda d: _slo(d).update(timeWindow=[{"duration": "1w", "isRolling": True, "calendar": {}}]),
        f"{SLO}: spec.timeWindow[0].isRolling: true contradicts calendar (a calendar-aligned window)",
    ),
    "no-window": (
        lambda d: _slo(d).pop("timeWindow"),
        f"{SLO}: spec.timeWindow: is required: sloguard needs the SLO's period "
        "(e.g. - {duration: 30d, isRolling: true})",
    ),
    "two-windows": (
        lambda d: _slo(d)["timeWindow"].append({"duration": "7d", "isRolling": True}),
        f"{SLO}: spec.timeWindow: must hold exactly one window (got 2)",
    ),
    "raw-ratio": (
        lambda d: _ratio(d).update(rawType="success", raw=source({"status": ["5xx"]})),
        f"{SLI}: spec.ratioMetric.raw: is not supported: sloguard computes the ratio from events itself; "
        "give bad and total",
    ),
    "good": (
        lambda d: _ratio(d).update(good=_ratio(d).pop("bad")),
        f"{SLI}: spec.ratioMetric.good: is not supported: sloguard counts bad events; give bad (status, "
        "latencyThresholdMs) and total",
    ),
    "prometheus-source": (
        lambda d: _ratio(d).update(bad=source({"query": "sum(rate(errors[5m]))"}, kind="Prometheus")),
        f"{SLI}: spec.ratioMetric.bad.metricSource.type: sloguard cannot evaluate Prometheus sources: it "
        "computes SLIs from its own request-log events, so it reads only metricSource type sloguard "
        "(see docs/openslo.md)",
    ),
    "prometheus-datasource": (
        lambda d: d[0]["spec"].update(type="Prometheus"),
        f"{SLI}: spec.ratioMetric.{{}}.metricSource.metricSourceRef: logs is a Prometheus DataSource; "
        "sloguard cannot evaluate Prometheus sources: it computes SLIs from its own request-log events, so "
        "it reads only metricSource type sloguard (see docs/openslo.md)",
    ),
    "unknown-sloguard-key": (
        lambda d: _ratio(d)["total"]["metricSource"]["spec"].update(endpoint=["/x"]),
        f"{SLI}: spec.ratioMetric.total.metricSource.spec.endpoint: unknown field; did you mean 'endpoints'?",
    ),
    "status-in-total": (
        lambda d: _ratio(d)["total"]["metricSource"]["spec"].update(status=["5xx"]),
        f"{SLI}: spec.ratioMetric.total.metricSource.spec.status: belongs to bad (which statuses are bad)",
    ),
    "other-service": (
        lambda d: _ratio(d)["total"]["metricSource"]["spec"].update(service="web"),
        f"{SLI}: spec.ratioMetric.total.metricSource.spec.service: selects service 'web', but the SLO's "
        "spec.service is 'api'; a sloguard SLO selects the events of its service",
    ),
    "missing-sli": (
        lambda d: _slo(d).update(indicatorRef="api-error"),
        f"{SLO}: spec.indicatorRef: no SLI named 'api-error' in this file (SLI names: api-errors)",
    ),
    "missing-datasource": (
        lambda d: d[0]["metadata"].update(name="events"),
        f"{SLI}: spec.ratioMetric.{{}}.metricSource.metricSourceRef: no DataSource named 'logs' in this file "
        "(DataSource names: events)",
    ),
    "alert-kind": (
        lambda d: _condition(d).update(kind="threshold"),
        f"{CONDITION}: spec.condition.kind: 'threshold' is not supported: sloguard alerts on burn rates "
        "(burnrate)",
    ),
    "alert-op": (
        lambda d: _condition(d).update(op="lte"),
        f"{CONDITION}: spec.condition.op: lte is not supported: a burn-rate tier fires when the burn rate is "
        "above the threshold (op: gt)",
    ),
    "alert-no-data": (
        lambda d: d[3]["spec"].update(alertWhenNoData=True),
        f"{POLICY}: spec.alertWhenNoData: true is not supported: sloguard alerts on burn rates, not on "
        "missing data",
    ),
    "alert-not-breaching": (
        lambda d: d[3]["spec"].update(alertWhenBreaching=False),
        f"{POLICY}: spec.alertWhenBreaching: false is not supported: a sloguard tier alerts when breaching",
    ),
    "twelfth": (
        lambda d: _condition(d).update(lookbackWindow="61s"),
        f"{CONDITION}: spec.condition.lookbackWindow: has no whole-second twelfth; sloguard's short window "
        "is 1/12 of it unless the annotation sloguard/short-window gives it (got '61s')",
    ),
    "missing-target": (
        lambda d: d[3]["spec"]["notificationTargets"].append({"targetRef": "slack"}),
        f"{POLICY}: spec.notificationTargets[1].targetRef: no AlertNotificationTarget named 'slack' in this "
        "file (AlertNotificationTarget names: pager)",
    ),
    "unknown-annotation": (
        lambda d: d[2]["metadata"].update(annotations={"sloguard/max_series": "5"}),
        f"{SLO}: metadata.annotations.sloguard/max_series: unknown sloguard annotation; allowed here: "
        "sloguard/max-series, sloguard/series-ttl, sloguard/fine-resolution, sloguard/coarse-resolution, "
        "sloguard/export-top-k, sloguard/min-events, sloguard/alert-name, sloguard/empty-slice, "
        "sloguard/label.<name>",
    ),
    "budget-percent-threshold": (
        lambda d: d[4]["metadata"].update(annotations={"sloguard/budget-percent": "5"}),
        f"{CONDITION}: spec.condition.threshold: must be 36, the burn rate of sloguard/budget-percent 5 over "
        "1h of 30d (got 14.4)",
    ),
    "duplicate-name": (
        lambda d: d.append(doc("SLI", "api-errors", {"thresholdMetric": source({})})),
        "document 7 (SLI api-errors): metadata.name: document 2 (SLI api-errors) already has this name",
    ),
    "unknown-kind": (
        lambda d: d.append(doc("BudgetAdjustment", "maintenance", {})),
        "document 7 (BudgetAdjustment maintenance): kind: 'BudgetAdjustment' is not supported; sloguard "
        "reads DataSource, SLO, SLI, AlertPolicy, AlertCondition, AlertNotificationTarget, Service",
    ),
    "other-version": (
        lambda d: d[5].update(apiVersion="openslo/v2alpha"),
        "document 6 (AlertNotificationTarget pager): apiVersion: unsupported version 'openslo/v2alpha'; this "
        "sloguard reads openslo/v1",
    ),
    "sloguard-document": (
        lambda d: d.append({"apiVersion": "sloguard/v1", "slos": []}),
        "document 7: apiVersion: sloguard/v1 cannot share a stream with OpenSLO documents; give the sloguard "
        "SLO file its own file",
    ),
    "typo-in-spec": (
        lambda d: _slo(d).update(budgetMethod="Occurrences"),
        f"{SLO}: spec.budgetMethod: unknown field; did you mean 'budgetingMethod'?",
    ),
}


@pytest.mark.parametrize(("change", "expected"), list(CASES.values()), ids=list(CASES))
def test_refusal_names_document_kind_name_and_field(change: Change, expected: str) -> None:
    docs = base()
    parse(docs)  # the stream is valid before the change
    change(docs)
    # A DataSource serves both bad and total: {} stands for each.
    lines = [expected.format("bad"), expected.format("total")] if "{}" in expected else [expected]
    assert problems(docs) == lines


def test_sloguard_rules_apply_at_the_openslo_field() -> None:
    # The SLO file's own validators and checks judge the values, and their problems point at OpenSLO fields.
    docs = base()
    docs[2]["spec"]["objectives"][0]["target"] = 1.5
    docs[1]["spec"]["ratioMetric"]["total"]["metricSource"]["spec"]["endpoints"] = ["/v1/[a-"]
    docs[4]["spec"]["condition"]["lookbackWindow"] = "5d"
    docs[4]["spec"]["severity"] = "page me"
    assert problems(docs) == [
        f"{SLI}: spec.ratioMetric.total.metricSource.spec.endpoints[0]: '[' at character 5 is never closed "
        "by ']'; to match a literal '[', '*' or '?' write '[[]', '[*]' or '[?]' (got '/v1/[a-')",
        f"{CONDITION}: spec.severity: must be a word of at most 64 letters, digits, '.', '_' or '-' (such as "
        "page, ticket or critical), starting with a letter or digit (got 'page me')",
    ]
    docs = base()
    docs[2]["spec"]["objectives"][0]["target"] = 1.5
    docs[4]["spec"]["condition"]["lookbackWindow"] = "31d"
    assert problems(docs) == [
        f"{SLO}: spec.objectives[0].target: must be less than 1 with objective_unit: ratio; did you mean "
        "0.015? (got 1.5)",
        f"{CONDITION}: spec.condition.lookbackWindow: 31d is longer than the SLO period (30d); shorten the "
        "window or lengthen the period",
    ]


def test_every_problem_of_every_slo_at_once() -> None:
    docs = base()
    docs.append(doc("SLO", "web", {**docs[2]["spec"], "budgetingMethod": "Timeslices", "service": "web"}))
    docs[2]["spec"]["timeWindow"] = [{"duration": "1Y", "isRolling": True}]
    assert problems(docs) == [
        f"{SLO}: spec.timeWindow[0].duration: a rolling window of 1Y has no fixed length; give days (e.g. "
        "30d) or a calendar window",
        "document 7 (SLO web): spec.objectives[0].timeSliceWindow: is required for Timeslices budgeting: "
        "the slice, e.g. 1m",
        "document 7 (SLO web): spec.objectives[0].timeSliceTarget: is required for Timeslices budgeting: "
        "the good ratio of a good slice",
    ]


def test_a_shared_sli_is_refused_once() -> None:
    docs = base()
    docs[0]["spec"]["type"] = "Datadog"
    docs.append(doc("SLO", "api-2", {**docs[2]["spec"]}))
    lines = problems(docs)
    assert len(lines) == 2  # bad and total, once each, although two SLOs use the SLI
    assert all(line.startswith(f"{SLI}: spec.ratioMetric.") for line in lines)


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        ("apiVersion: openslo/v1\nkind: Service\nmetadata: {name: a}\n", "holds no kind: SLO document"),
        ("- apiVersion: openslo/v1\n  kind: SLO\n- 3\n", "document 1, item 2: must be a mapping"),
    ],
    ids=["no-slo", "list-item"],
)
def test_stream_shape(stream: str, expected: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse_config(stream, SOURCE)
    assert expected in str(exc.value)


def test_several_sloguard_documents_are_refused() -> None:
    sloguard = "apiVersion: sloguard/v1\nslos: []\n"
    with pytest.raises(SpecError) as exc:
        parse_config(f"{sloguard}---\n{sloguard}", SOURCE)
    assert exc.value.problems == (
        f"{SOURCE}: holds 2 YAML documents (---); a sloguard/v1 SLO file is one, and a stream of documents "
        "must be OpenSLO (apiVersion: openslo/v1)",
    )


def test_base_stream_text_is_yaml() -> None:
    assert text(base()).startswith("---\napiVersion: openslo/v1\n")
