"""describe(): the human summary printed by `sloguard check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloguard.specfile import describe, load_config, parse_config
from tests.unit.specfile.texts import (
    EXAMPLE,
    GOOD_SLO,
    SPECS,
    one_slo,
    spec_text,
)


@pytest.mark.parametrize(
    "path", [pytest.param(EXAMPLE, id="example"), pytest.param(SPECS / "issue-example.yaml", id="issue")]
)
def test_describe_mentions_every_slo(path: Path) -> None:
    config = load_config(path)
    text = describe(config)
    for slo in config.slos:
        assert f"SLO {slo.name}\n" in text
        assert f"service      {slo.service}\n" in text
    assert "latency percentiles" in text


def test_describe_shows_factors_and_thresholds() -> None:
    text = describe(load_config(SPECS / "issue-example.yaml"))
    assert "objective    99.9% (error budget 0.1% of events)" in text
    assert "page      1h    5m     2%      14.4    0.0144 (1.44%)           0s   0" in text
    assert "~0.933333" in text  # 28/30 has no exact decimal
    assert "latency: bad = latency > 300 ms or status in 500-599" in text


def test_describe_without_latency_section() -> None:
    text = describe(parse_config(spec_text(GOOD_SLO)))
    assert text.startswith("SLO ok\n  service      checkout\n")
    assert "  period       30d rolling\n" in text
    assert "\n\nlatency percentiles: none\n\ninput\n" in text


def test_describe_says_which_default_tiers_were_left_out() -> None:
    text = describe(parse_config(one_slo(objective="90")))
    assert "  alert tiers  3\n" in text
    assert (
        "  warning: default tiers left out, they can never fire at objective 90% "
        "(the burn rate is at most 10): page-1h-5m (factor 14.4)\n"
    ) in text


def test_describe_with_a_low_objective_as_a_ratio() -> None:
    text = describe(parse_config(one_slo(objective="0.4", objective_unit="ratio")))
    assert "  objective    40% (error budget 60% of events)\n" in text
    assert "  alert tiers  1\n" in text
    assert (
        "(the burn rate is at most ~1.66667): page-1h-5m (factor 14.4), page-6h-30m (factor 6), ticket-1d-2h "
        "(factor 3)\n"
    ) in text


def test_describe_has_no_warning_when_every_tier_can_fire() -> None:
    assert "warning" not in describe(load_config(EXAMPLE))
