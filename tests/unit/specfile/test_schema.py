"""The file schema, field by field (the first pass): types, ranges, unknown keys, value syntaxes."""

from __future__ import annotations

import pytest

from tests.unit.specfile.texts import (
    GOOD_SLO,
    assert_refused_file,
    assert_refused_slo,
    spec_text,
)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"objectve": "99.9"}, "objectve: unknown field; did you mean 'objective'?", id="unknown-key"
        ),
        pytest.param(
            {"sli": "{type: availability, bad_stauts: [500]}"},
            "sli.bad_stauts: unknown field; did you mean 'bad_status'?",
            id="unknown-nested-key",
        ),
        pytest.param({"service": None}, "service: is required", id="missing-service"),
        pytest.param({"service": "''"}, "service: must be a non-empty string", id="empty-service"),
        pytest.param({"name": "'a b'"}, "name: must start with a letter or digit", id="bad-name"),
        pytest.param(
            {"name": "2024"},
            'name: must be a string; YAML reads 2024 as a number: quote it ("2024") (got 2024)',
            id="name-number",
        ),
        pytest.param(
            {"name": "yes"},
            "name: must be a string; YAML reads yes/no/on/off/true/false as booleans: quote it (got true)",
            id="name-boolean",
        ),
        pytest.param(
            {"service": "12.50"},
            'service: must be a string; YAML reads 12.50 as a number: quote it ("12.50") (got 12.50)',
            id="service-number",
        ),
        pytest.param({"sli": None}, "sli: is required", id="missing-sli"),
        pytest.param({"max_series": "0"}, "max_series: must be at least 1 (got 0)", id="max-series-0"),
        pytest.param({"description": "[a]"}, "description: must be a string", id="description-list"),
        pytest.param(
            {"objective": "100"}, "objective: must be greater than 0 and less than 100", id="objective-100"
        ),
        pytest.param(
            {"objective": "0"}, "objective: must be greater than 0 and less than 100", id="objective-0"
        ),
        pytest.param({"objective": "abc"}, "objective: must be a number", id="objective-abc"),
        pytest.param({"objective": "'99.9'"}, "objective: must be a number", id="objective-quoted"),
        pytest.param({"objective": ".nan"}, "objective: must be a number", id="objective-nan"),
        pytest.param({"objective": "true"}, "objective: must be a number", id="objective-bool"),
        pytest.param(
            {"sli": "{type: latency, threshold_ms: 0}"},
            "sli.threshold_ms: must be greater than 0",
            id="threshold-0",
        ),
        pytest.param(
            {"sli": "{type: errors}"}, "sli.type: must be 'availability' or 'latency'", id="bad-sli-type"
        ),
        pytest.param(
            {"sli": "{type: availability, bad_status: [500, 6xx]}"},
            "sli.bad_status[1]: must be a status code (503), a range (500-599) or a class (5xx)",
            id="bad-status-class",
        ),
        pytest.param(
            {"sli": "{type: availability, bad_status: [599-500]}"},
            "sli.bad_status[0]: must be a status code",
            id="bad-status-reversed-range",
        ),
        pytest.param(
            {"sli": "{type: availability, bad_status: []}"},
            "sli.bad_status: is empty, so with type availability no event could ever be bad",
            id="bad-status-empty",
        ),
        pytest.param({"window": "30x"}, "window: must be a whole number of hours or days", id="window-unit"),
        pytest.param(
            {"window": "90m"}, "window: must be a whole number of hours or days", id="window-not-hours"
        ),
        pytest.param({"window": "0d"}, "window: must be a whole number of hours or days", id="window-zero"),
        pytest.param({"window": "30"}, "window: must be a rolling period such as 30d", id="window-number"),
        pytest.param(
            {"window": "{calendar: fortnight}"},
            "window.calendar: must be 'week', 'month', 'quarter' or 'year'",
            id="calendar-unit",
        ),
        pytest.param(
            {"window": "{calendar: month, timezone: Europe/Berln}"},
            "window.timezone: unknown time zone; did you mean 'Europe/Berlin'?",
            id="bad-timezone",
        ),
        pytest.param(
            {"window": "{calendar: month, tz: UTC}"},
            "window.tz: unknown field; allowed: calendar, timezone",
            id="calendar-unknown-key",
        ),
        pytest.param(
            {"group_by": "[host]"}, "group_by[0]: must be 'endpoint' or 'customer'", id="group-by-unknown"
        ),
        pytest.param(
            {"group_by": "[endpoint, endpoint]"}, "group_by: lists 'endpoint' twice", id="group-by-duplicate"
        ),
        pytest.param({"endpoints": "[]"}, "endpoints: must not be empty", id="endpoints-empty"),
        pytest.param({"endpoints": "['']"}, "endpoints[0]: must be a non-empty string", id="endpoint-blank"),
        pytest.param({"endpoints": "'POST /v1/*'"}, "endpoints: must be a list", id="endpoints-not-a-list"),
        pytest.param(
            {"endpoints": '["GET /v1/*", "POST /v1/[orders"]'},
            "endpoints[1]: '[' at character 10 is never closed by ']'; to match a literal '[', '*' or '?' "
            "write '[[]', '[*]' or '[?]' (got 'POST /v1/[orders')",
            id="endpoint-glob-unclosed",
        ),
        pytest.param(
            {"resolution": "{fine: 7s}"}, "resolution.fine: must be at least 1s and divide 1m", id="fine-7s"
        ),
        pytest.param(
            {"resolution": "{fine: 2m}"}, "resolution.fine: must be at least 1s and divide 1m", id="fine-2m"
        ),
        pytest.param(
            {"resolution": "{coarse: 7m}"},
            "resolution.coarse: must be at least 1s and divide 1h",
            id="coarse-7m",
        ),
        pytest.param(
            {"alerts": "{tiers: [{severity: page, long: 1h, short: 5m, budget_percent: 101}]}"},
            "alerts.tiers[0].budget_percent: must be greater than 0 and at most 100",
            id="tier-budget-over-100",
        ),
        pytest.param(
            {"alerts": "{tiers: [{severity: 'page team', long: 1h, short: 5m, factor: 2}]}"},
            "alerts.tiers[0].severity: must be a word of at most 64 letters, digits, '.', '_' or '-' "
            "(such as page, ticket or critical), starting with a letter or digit (got 'page team')",
            id="tier-severity",
        ),
        pytest.param(
            {"alerts": "{tiers: [{severity: page, long: 1h, short: 5m, factor: 2, fro: 2m}]}"},
            "alerts.tiers[0].fro: unknown field; did you mean 'for'?",
            id="tier-unknown-key",
        ),
        pytest.param(
            {"alerts": "{tiers: [{severity: page, long: 1 hour, short: 5m, factor: 2}]}"},
            "alerts.tiers[0].long: must be a duration such as 30s, 5m, 1h, 7d or 2w (got '1 hour')",
            id="tier-bad-duration",
        ),
        pytest.param(
            {"alerts": "{min_events: many}"},
            "alerts.min_events: must be a whole number (got 'many')",
            id="min-events",
        ),
    ],
)
def test_refused_slo(fields: dict[str, str | None], expected: str) -> None:
    assert_refused_slo(fields, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            spec_text(
                GOOD_SLO,
                tail="latency: {percentiles: [50, 100], windows: [15s, 5s], group_by: [host],"
                " significant_figures: 5}\n",
            ),
            [
                "latency.group_by[0]: must be 'service', 'endpoint' or 'customer' (got 'host')",
                "latency.percentiles[1]: must be greater than 0 and less than 100 (got 100)",
                "latency.windows[1]: must be between 10s and 1d (got '5s')",
                "latency.significant_figures: must be at most 3 (got 5)",
            ],
            id="latency-section",
        ),
        pytest.param(
            spec_text(GOOD_SLO, tail="latency: {windows: [1m], reslution: 30s}\n"),
            ["latency.reslution: unknown field; did you mean 'resolution'?"],
            id="latency-unknown-key",
        ),
        pytest.param(
            spec_text(
                GOOD_SLO,
                tail="latency:\n  windows: [1m, 5m]\n  alerts:\n"
                "    - {percentile: 95, window: 1h, threshold_ms: 500, match: {host: a}}\n"
                "    - {threshold_ms: 0, severity: 'warn!'}\n",
            ),
            [
                "latency.alerts[1].threshold_ms: must be greater than 0",
                "latency.alerts[1].severity: must be a word of at most 64 letters",
            ],
            id="latency-alerts-fields",
        ),
    ],
)
def test_refused_file(text: str, expected: list[str]) -> None:
    assert_refused_file(text, expected)
