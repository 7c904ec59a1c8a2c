"""What Sloth users bring: per-SLO labels, alert names, labels and annotations per severity and tier,
free severities, excluded endpoints and latency-only SLIs; their refusals, and the state fingerprint."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

import pytest

from sloguard.core.spec import DAY, HOUR, MINUTE, AlertTier, RollingPeriod, Severity, Sli, SloSpec
from sloguard.specfile import describe, parse_config
from tests.unit.specfile.texts import assert_refused_slo, one_slo

ALERTS = """
      name: CheckoutAvailabilityBurn
      labels: {team: payments, category: availability}
      annotations: {summary: "Checkout burns its budget", runbook_url: "https://runbooks/checkout"}
      by_severity:
        page:
          severity: critical
          for: 2m
          labels: {routing_key: payments-pd, team: payments-oncall}
          annotations: {runbook_url: "https://runbooks/checkout#page"}
        ticket:
          labels: {slack_channel: "#payments"}"""


def test_labels_and_alerting_map_onto_the_spec_in_file_order_most_specific_winning() -> None:
    spec = parse_config(
        one_slo(
            labels="{owner: payments, tier: '1', Repo_2: org/checkout}", alerts="\n" + ALERTS.lstrip("\n")
        )
    ).slos[1]
    assert spec.labels == (("owner", "payments"), ("tier", "1"), ("Repo_2", "org/checkout"))
    assert spec.alert_name == "CheckoutAvailabilityBurn"
    page, _, ticket, _ = spec.tiers
    assert page.severity == "critical" and ticket.severity == "ticket"
    assert page.for_seconds == 2 * MINUTE and ticket.for_seconds == 0
    # The severity's labels win over the alerts' (team), keeping the first position of the name.
    assert page.labels == (
        ("team", "payments-oncall"),
        ("category", "availability"),
        ("routing_key", "payments-pd"),
    )
    assert ticket.labels == (
        ("team", "payments"),
        ("category", "availability"),
        ("slack_channel", "#payments"),
    )
    assert dict(page.annotations) == {
        "summary": "Checkout burns its budget",
        "runbook_url": "https://runbooks/checkout#page",
    }
    assert dict(ticket.annotations)["runbook_url"] == "https://runbooks/checkout"


def test_a_tier_of_its_own_wins_over_its_severity_and_the_slo() -> None:
    alerts = (
        "{labels: {team: a}, by_severity: {warning: {for: 10m, labels: {team: b}}}, tiers: ["
        "{severity: warning, long: 1h, short: 5m, factor: 10, for: 1m, labels: {team: c},"
        " annotations: {summary: own}},"
        "{severity: warning, long: 6h, short: 30m, factor: 5}]}"
    )
    spec = parse_config(one_slo(alerts=alerts)).slos[1]
    own, other = spec.tiers
    assert (own.severity, own.for_seconds, own.labels, own.annotations) == (
        "warning",
        MINUTE,
        (("team", "c"),),
        (("summary", "own"),),
    )
    assert (other.for_seconds, other.labels, other.annotations) == (10 * MINUTE, (("team", "b"),), ())


def test_severity_is_a_free_token_and_page_ticket_stay_the_defaults() -> None:
    spec = parse_config(one_slo()).slos[1]
    assert [t.severity for t in spec.tiers] == [
        Severity.PAGE,
        Severity.PAGE,
        Severity.TICKET,
        Severity.TICKET,
    ]
    latency = "latency:\n  alerts:\n    - {threshold_ms: 500, severity: P2}\n"
    config = parse_config(one_slo() + latency)
    assert config.latency is not None and config.latency.alerts[0].severity.value == "P2"


def test_endpoints_exclude_and_latency_only_sli_map_exactly() -> None:
    spec = parse_config(
        one_slo(
            endpoints="['GET /v1/*']",
            endpoints_exclude="['GET /v1/health*', 'GET /v1/[!a-z]*']",
            sli="{type: latency, threshold_ms: 250, bad_status: []}",
        )
    ).slos[1]
    assert spec.endpoints_exclude == ("GET /v1/health*", "GET /v1/[!a-z]*")
    assert spec.sli == Sli("latency", (), 250.0)
    text = describe(
        parse_config(
            one_slo(
                endpoints_exclude="[GET /health]", sli="{type: latency, threshold_ms: 250, bad_status: []}"
            )
        )
    )
    assert "all except GET /health" in text
    assert "bad = latency > 250 ms (the status never counts)" in text


def test_check_summary_shows_labels_alert_name_and_tier_routing() -> None:
    text = describe(parse_config(one_slo(labels="{owner: payments}", alerts="\n" + ALERTS.lstrip("\n"))))
    assert "labels       owner=payments" in text
    assert "alert tiers  4, named CheckoutAvailabilityBurn" in text
    assert (
        "critical-1h-5m: labels team=payments-oncall, category=availability, routing_key=payments-pd;" in text
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"labels": "{slo: x}"}, "labels: slo: sloguard sets this label (names the SLO)", id="slo"
        ),
        pytest.param(
            {"labels": "{customer: acme}"},
            "labels: customer: sloguard sets this label (is an event dimension (group_by))",
            id="group-by-dimension",
        ),
        pytest.param(
            {"labels": "{service: x}"},
            "labels: service: sloguard sets this label (is on sloguard_slo_info)",
            id="info",
        ),
        pytest.param(
            {"labels": "{job: x}"}, "labels: job: sloguard sets this label (is a Prometheus target", id="job"
        ),
        pytest.param(
            {"labels": "{sloth_slo: x}"}, "labels: sloth_slo: names starting with sloth_", id="sloth"
        ),
        pytest.param(
            {"labels": "{__name__: x}"}, "labels: names must start with a letter or '_'", id="dunder"
        ),
        pytest.param(
            {"labels": "{team-name: x}"}, "labels: names must start with a letter or '_'", id="dash"
        ),
        pytest.param(
            {"labels": "{tier: 2}"},
            "labels: tier: must be a string; YAML reads 2 as a number: quote it",
            id="number",
        ),
        pytest.param({"labels": "{tier: ''}"}, "labels: tier: must be a non-empty string", id="empty-value"),
        pytest.param({"labels": "[owner]"}, "labels: must be a mapping of names to strings", id="list"),
        pytest.param(
            {"alerts": "{labels: {severity: critical}}"},
            "alerts.labels: severity: sloguard sets this label (is the severity of a tier)",
            id="alert-severity-label",
        ),
        pytest.param(
            {"alerts": "{by_severity: {page: {labels: {long_window: x}}}}"},
            "alerts.by_severity.page.labels: long_window: sloguard sets this label",
            id="severity-labels-reserved",
        ),
        pytest.param(
            {"alerts": "{annotations: {summary: '{{ $labels.slo }'}}"},
            "alerts.annotations: summary: the '{{' and '}}' of its template do not pair up",
            id="annotation-template",
        ),
        pytest.param(
            {"alerts": "{name: My-Alert}"}, "alerts.name: must start with a letter or '_'", id="alert-name"
        ),
        pytest.param(
            {"alerts": "{by_severity: {critical: {labels: {a: b}}}}"},
            "alerts.by_severity.critical: no alert tier has severity critical "
            "(the tiers' severities: page, ticket)",
            id="by-severity-unknown",
        ),
        pytest.param(
            {
                "alerts": "{by_severity: {page: {severity: ticket}}, tiers: ["
                "{severity: page, long: 1h, short: 5m, factor: 10},"
                " {severity: ticket, long: 1h, short: 5m, factor: 5}]}"
            },
            "alerts.by_severity.page.severity: ticket gives a page tier the severity and windows (1h/5m) "
            "of a ticket tier",
            id="rename-collides",
        ),
        pytest.param(
            {"alerts": "{by_severity: {page: {severity: 'pager duty'}}}"},
            "alerts.by_severity.page.severity: must be a word",
            id="rename-not-a-token",
        ),
        pytest.param(
            {"alerts": "{by_severity: {page: {severity: " + "s" * 65 + "}}}"},
            "alerts.by_severity.page.severity: must be a word of at most 64",
            id="severity-too-long",
        ),
        pytest.param(
            {"endpoints": "[GET /a]", "endpoints_exclude": "[GET /a]"},
            "endpoints_exclude[0]: 'GET /a' is also in endpoints: it would select nothing there",
            id="exclude-equals-include",
        ),
        pytest.param(
            {"endpoints_exclude": "['GET /[a']"},
            "endpoints_exclude[0]: '[' at character 6",
            id="exclude-glob",
        ),
        pytest.param({"endpoints_exclude": "[]"}, "endpoints_exclude: ", id="exclude-empty"),
        pytest.param(
            {"sli": "{type: availability, bad_status: []}"},
            "sli.bad_status: is empty, so with type availability no event could ever be bad",
            id="availability-nothing-bad",
        ),
    ],
)
def test_refused(fields: dict[str, str | None], expected: str) -> None:
    assert_refused_slo(fields, expected)


def test_alert_labels_may_use_sloths_names_and_service() -> None:
    """``sloth_severity`` (routes written for Sloth) and ``service`` are not on the series, so alerts
    may carry them."""
    alerts = "{labels: {service: checkout}, by_severity: {page: {labels: {sloth_severity: page}}}}"
    page = parse_config(one_slo(alerts=alerts)).slos[1].tiers[0]
    assert page.labels == (("service", "checkout"), ("sloth_severity", "page"))


def test_a_renamed_tier_may_share_windows_when_no_other_severity_does() -> None:
    # page -> ticket only collides where a ticket tier has the same windows; here none does.
    tiers = "tiers: [{severity: page, long: 1h, short: 5m, factor: 10}]"
    alerts = "{by_severity: {page: {severity: ticket}}, " + tiers + "}"
    assert parse_config(one_slo(alerts=alerts)).slos[1].tiers[0].severity == "ticket"


def _spec(**changes: Any) -> SloSpec:
    tier = AlertTier(Severity.PAGE, HOUR, 5 * MINUTE, Fraction(72, 5), Fraction(2))
    spec = SloSpec("a", "b", Fraction(999, 1000), Sli("availability"), RollingPeriod(30 * DAY), (tier,))
    return dataclasses.replace(spec, **changes)


#: The fingerprint (`core.state`) this spec had before labels, alert names, severities beyond page and
#: ticket, and endpoints_exclude existed: a checkpoint written then must still be restored.
FINGERPRINT = (
    "SloSpec(name='a', service='b', objective=Fraction(999, 1000), sli=Sli(kind='availability', "
    "bad_status=((500, 599),), threshold_ms=None), period=RollingPeriod(seconds=2592000), "
    "tiers=(AlertTier(severity=<Severity.PAGE: 'page'>, long_window=3600, short_window=300, "
    "factor=Fraction(72, 5), budget_percent=Fraction(2, 1), min_events=0, for_seconds=0),), endpoints=(), "
    "group_by=(), resolution=Resolution(fine=10, coarse=300), max_series=10000, description='', "
    "export_top_k=None, series_ttl=None)"
)


def test_the_state_fingerprint_is_unchanged_unless_the_selection_changes() -> None:
    tier = AlertTier(
        Severity.PAGE,
        HOUR,
        5 * MINUTE,
        Fraction(72, 5),
        Fraction(2),
        labels=(("a", "b"),),
        annotations=(("c", "d"),),
    )
    assert repr(_spec()) == FINGERPRINT
    # Presentation does not change the state: labels, alert names, a tier's alert labels.
    assert repr(_spec(labels=(("owner", "x"),), alert_name="Burn", tiers=(tier,))) == FINGERPRINT
    # Which events count does.
    excluded = repr(_spec(endpoints_exclude=("GET /health",)))
    assert excluded == FINGERPRINT.replace(
        "endpoints=(), ", "endpoints=(), endpoints_exclude=('GET /health',), "
    )
