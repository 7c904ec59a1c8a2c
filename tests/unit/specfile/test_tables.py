"""Default alert tables (package data): the factors are pinned."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sloguard.core.spec import (
    DAY,
    HOUR,
    CalendarPeriod,
    RollingPeriod,
)
from sloguard.specfile import default_tiers, parse_config
from sloguard.specfile.tables import DEFAULT_TABLES, FALLBACK_TABLE, load_table, table_for
from tests.unit.specfile.texts import (
    DEFAULT_SEVERITIES,
    DEFAULT_WINDOWS,
    FACTORS_28D,
    FACTORS_30D,
    one_slo,
)


@pytest.mark.parametrize(
    ("period", "factors"),
    [
        pytest.param(RollingPeriod(30 * DAY), FACTORS_30D, id="rolling-30d"),
        pytest.param(RollingPeriod(28 * DAY), FACTORS_28D, id="rolling-28d"),
        pytest.param(CalendarPeriod("month", "Europe/Berlin"), FACTORS_30D, id="calendar-month"),
        pytest.param(
            RollingPeriod(7 * DAY),
            [Fraction("3.36"), Fraction("1.4"), Fraction("0.7"), Fraction(7, 30)],
            id="rolling-7d-uses-30d-table",
        ),
    ],
)
def test_default_tier_factors(period: RollingPeriod | CalendarPeriod, factors: list[Fraction]) -> None:
    tiers = default_tiers(period)
    assert [t.factor for t in tiers] == factors
    assert [(t.long_window, t.short_window) for t in tiers] == DEFAULT_WINDOWS
    assert [t.severity for t in tiers] == DEFAULT_SEVERITIES
    assert [t.budget_percent for t in tiers] == [2, 5, 10, 10]
    assert all(t.for_seconds == 0 and t.min_events == 0 for t in tiers)


def test_default_tiers_take_min_events_from_alerts_block() -> None:
    config = parse_config(one_slo(alerts="{min_events: 25}"))
    assert {t.min_events for t in config.slos[1].tiers} == {25}


@pytest.mark.parametrize("name", DEFAULT_TABLES)
def test_shipped_tables_state_budgets_not_factors(name: str) -> None:
    table = load_table(name)
    assert all(t.budget_percent is not None and t.factor is None for t in table.tiers)
    assert [t.budget_percent for t in table.tiers] == [2, 5, 10, 10]


@pytest.mark.parametrize(
    ("period", "name"),
    [
        pytest.param(RollingPeriod(28 * DAY), "google-28d.yaml", id="28d"),
        pytest.param(RollingPeriod(30 * DAY), "google-30d.yaml", id="30d"),
        pytest.param(RollingPeriod(12 * HOUR), FALLBACK_TABLE, id="no-table-made-for-12h"),
        pytest.param(CalendarPeriod("quarter", "UTC"), FALLBACK_TABLE, id="calendar-quarter"),
    ],
)
def test_table_for_picks_by_nominal_period(period: RollingPeriod | CalendarPeriod, name: str) -> None:
    chosen, table = table_for(period)
    assert chosen == name
    assert table is load_table(name)
