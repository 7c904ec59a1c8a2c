"""describe(): the human summary printed by `sloguard check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloguard.specfile import describe, load_config, parse_config
from tests.unit.specfile.texts import (
    EXAMPLE,
    GOOD_SLO,
    SPECS,
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
    assert text.endswith("\n\nlatency percentiles: none")
