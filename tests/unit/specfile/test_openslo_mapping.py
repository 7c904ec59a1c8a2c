"""OpenSLO v1 streams -> Config: each OpenSLO field onto its sloguard field (docs/openslo.md's table)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from sloguard.core.spec import DAY, HOUR, MINUTE, AlertTier, CalendarPeriod, RollingPeriod, Severity, Sli
from sloguard.specfile import load_config, parse_config
from tests.unit.specfile.openslo_texts import OPENSLO, SOURCE, base, doc, parse, source, text


def test_stream_equals_the_same_slos_written_as_a_sloguard_file() -> None:
    # Every sloguard rule and default applies to the OpenSLO spelling, so the two files are one Config.
    openslo = load_config(OPENSLO / "checkout.yaml")
    assert openslo == load_config(OPENSLO / "checkout.sloguard.yaml")
    availability, latency = openslo.slos
    assert availability.endpoints_exclude == ("GET /v1/orders/health",)
    assert availability.sli == Sli("availability", bad_status=((429, 429), (500, 599)))
    assert availability.tiers == (
        AlertTier(Severity.PAGE, HOUR, 5 * MINUTE, Fraction("14.4"), for_seconds=2 * MINUTE),
        AlertTier(Severity.TICKET, DAY, 2 * HOUR, Fraction(3), min_events=100, for_seconds=15 * MINUTE),
    )
    assert availability.max_series == 200
    assert latency.sli == Sli("latency", bad_status=(), threshold_ms=300.0)
    assert latency.objective == Fraction(995, 1000)
    assert latency.period == CalendarPeriod("month", "Europe/Berlin")
    assert len(latency.tiers) == 4  # no alertPolicies: sloguard's default tiers


def test_base_stream() -> None:
    (slo,) = parse(base()).slos
    assert (slo.name, slo.service, slo.endpoints) == ("api", "api", ("/v1/*",))
    assert slo.objective == Fraction(999, 1000)
    assert slo.period == RollingPeriod(30 * DAY)
    assert slo.sli == Sli("availability", bad_status=((500, 599),))
    # The short window is 1/12 of lookbackWindow: 1h -> 5m.
    assert slo.tiers == (AlertTier(Severity.PAGE, HOUR, 5 * MINUTE, Fraction("14.4")),)


def _ratio_sli(docs: list[dict[str, Any]]) -> dict[str, Any]:
    ratio: dict[str, Any] = docs[1]["spec"]["ratioMetric"]
    return ratio


def test_latency_in_the_bad_source_with_sloguards_default_statuses() -> None:
    docs = base()
    _ratio_sli(docs)["bad"] = source({"latencyThresholdMs": 250})
    (slo,) = parse(docs).slos
    assert slo.sli == Sli("latency", bad_status=((500, 599),), threshold_ms=250.0)


def test_threshold_metric_takes_the_latency_from_the_objective() -> None:
    docs = base()
    docs[1]["spec"] = {"thresholdMetric": source({"endpoints": ["GET /search"], "groupBy": ["customer"]})}
    docs[2]["spec"]["objectives"] = [{"op": "lte", "value": 120.5, "targetPercent": 99}]
    (slo,) = parse(docs).slos
    assert slo.sli == Sli("latency", bad_status=((500, 599),), threshold_ms=120.5)
    assert slo.objective == Fraction(99, 100)
    assert slo.group_by == ("customer",)
    assert slo.resolution.fine == MINUTE  # sloguard's per-customer default applies


def test_inline_sli_policy_condition_and_target_and_list_documents() -> None:
    data, sli, slo, policy, condition, target = base()
    slo["spec"].pop("indicatorRef")
    slo["spec"]["indicator"] = {"metadata": sli["metadata"], "spec": sli["spec"]}
    condition_inline = {
        "kind": "AlertCondition",
        "metadata": {"name": "slow"},
        "spec": {"severity": "ticket", "condition": {"threshold": 6, "lookbackWindow": "6h"}},
    }
    target_inline = {k: target[k] for k in ("kind", "metadata", "spec")}
    policy_inline = {
        "kind": "AlertPolicy",
        "metadata": {"name": "inline"},
        "spec": {"conditions": [condition_inline], "notificationTargets": [target_inline]},
    }
    # The same condition through two policies (two notification targets) is one tier.
    slo["spec"]["alertPolicies"] = [policy_inline, {"alertPolicyRef": "fast"}, "fast"]
    (parsed,) = parse([[data, slo], [policy, condition, target]]).slos
    assert parsed.tiers == (
        AlertTier(Severity.TICKET, 6 * HOUR, 30 * MINUTE, Fraction(6)),  # kind burnrate by default
        AlertTier(Severity.PAGE, HOUR, 5 * MINUTE, Fraction("14.4")),
    )


def test_condition_annotations() -> None:
    docs = base()
    docs[4]["metadata"]["annotations"] = {
        "sloguard/short-window": "10m",
        "sloguard/budget-percent": "2",
        "sloguard/min-events": "50",
        "sloguard/label.team": "edge",
        "sloguard/annotation.summary": "fast burn",
        "openslo.com/service-folder": "./x",  # not sloguard's: left alone
    }
    docs[4]["spec"]["condition"]["alertAfter"] = "0m"
    (slo,) = parse(docs).slos
    (tier,) = slo.tiers
    assert (tier.long_window, tier.short_window) == (HOUR, 10 * MINUTE)
    assert (tier.factor, tier.budget_percent) == (Fraction("14.4"), Fraction(2))
    assert (tier.min_events, tier.for_seconds) == (50, 0)
    assert (tier.labels, tier.annotations) == ((("team", "edge"),), (("summary", "fast burn"),))


def test_slo_annotations_and_no_alerts() -> None:
    docs = base()
    docs[2]["metadata"]["annotations"] = {
        "sloguard/fine-resolution": "30s",
        "sloguard/coarse-resolution": "10m",
        "sloguard/series-ttl": "1h",
        "sloguard/export-top-k": 10,
        "sloguard/alert-name": "ApiBurn",
        "sloguard/label.tier": "gold",
    }
    docs[1]["spec"]["ratioMetric"]["total"]["metricSource"]["spec"]["groupBy"] = ["endpoint"]
    docs[2]["spec"]["alertPolicies"] = []
    (slo,) = parse(docs).slos
    assert (slo.resolution.fine, slo.resolution.coarse) == (30, 10 * MINUTE)
    assert (slo.series_ttl, slo.export_top_k, slo.alert_name) == (HOUR, 10, "ApiBurn")
    assert slo.labels == (("tier", "gold"),)
    assert slo.tiers == ()  # alertPolicies: [] is no alerts; absent is sloguard's default tiers


@pytest.mark.parametrize(
    ("window", "period"),
    [
        ({"duration": "28d", "isRolling": True}, RollingPeriod(28 * DAY)),
        ({"duration": "4w"}, RollingPeriod(28 * DAY)),  # no calendar: rolling
        ({"duration": "1w", "calendar": {"startTime": "2024-01-01 00:00:00"}}, CalendarPeriod("week", "UTC")),
        (
            {"duration": "1Q", "calendar": {"timeZone": "Asia/Kolkata"}},
            CalendarPeriod("quarter", "Asia/Kolkata"),
        ),
        ({"duration": "1Y", "isRolling": False, "calendar": {}}, CalendarPeriod("year", "UTC")),
    ],
    ids=["rolling", "rolling-implied", "week", "quarter", "year"],
)
def test_time_windows(window: dict[str, Any], period: object) -> None:
    docs = base()
    docs[2]["spec"]["timeWindow"] = [window]
    assert parse(docs).slos[0].period == period


def test_unquoted_start_time_is_a_yaml_datetime() -> None:
    docs = base()
    text_window = "2024-04-01 00:00:00"
    docs[2]["spec"]["timeWindow"] = [{"duration": "1Q", "calendar": {"startTime": text_window}}]
    stream = text(docs).replace(f"'{text_window}'", text_window)
    assert f"startTime: {text_window}\n" in stream
    assert parse_config(stream, SOURCE).slos[0].period == CalendarPeriod("quarter", "UTC")


def test_service_documents_and_unused_objects_are_accepted() -> None:
    docs = base()
    docs.append(doc("Service", "api", {"description": "The API"}, displayName="API", labels={"team": ["a"]}))
    docs.append(
        doc("SLI", "unused", {"ratioMetric": {"raw": source({}, kind="Prometheus"), "rawType": "success"}})
    )
    assert len(parse(docs).slos) == 1
