"""Sloth-compatible families: Sloth's recording-rule names and labels."""

from __future__ import annotations

from sloguard.core.spec import format_duration
from tests.unit.export.scrape import key, names, parse, render
from tests.unit.export.snapshots import aggregated

# -- Sloth compatibility ----------------------------------------------------------------------------

SLOTH_NAMES = {
    *(f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d", "28d")),
    "slo:objective:ratio",
    "slo:error_budget:ratio",
    "slo:time_period:days",
    "slo:current_burn_rate:ratio",
    "slo:period_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio",
    "sloth_slo_info",
}


def test_sloth_names_only_when_enabled() -> None:
    snap = aggregated()
    _, plain = parse(render(snap))
    _, sloth = parse(render(snap, sloth=True))
    assert not {n for n in names(plain) if n.startswith(("slo:", "sloth_"))}
    assert {n for n in names(sloth) if n.startswith(("slo:", "sloth_"))} == SLOTH_NAMES
    # Everything else is the same with and without.
    assert {k: v for k, v in sloth.items() if not k[0].startswith(("slo:", "sloth_"))} == plain


def test_sloth_values_and_labels() -> None:
    snap = aggregated()
    _, samples = parse(render(snap, sloth=True))
    for s in snap.slos:
        spec = s.spec
        ids = {
            "sloth_id": f"{spec.service}-{spec.name}",
            "sloth_service": spec.service,
            "sloth_slo": spec.name,
        }
        period = format_duration(spec.period.nominal_seconds)
        assert samples[key("slo:objective:ratio", **ids)] == float(spec.objective)
        assert samples[key("slo:error_budget:ratio", **ids)] == float(1 - spec.objective)
        assert samples[key("slo:time_period:days", **ids)] == spec.period.nominal_seconds / 86400
        info = key(
            "sloth_slo_info", **ids, sloth_mode="sloguard", sloth_spec="sloguard/v1", sloth_version="1.2.3"
        )
        assert samples[info] == 1.0
        for j in range(s.series):
            labels = {**ids, **dict(zip(spec.group_by, s.labels[j], strict=True))}
            for i, w in enumerate(s.windows):
                name = f"slo:sli_error:ratio_rate{format_duration(w)}"
                assert samples[key(name, **labels, sloth_window=format_duration(w))] == s.error_ratio[i, j]
            rate = key(f"slo:sli_error:ratio_rate{period}", **labels, sloth_window=period)
            assert samples[rate] == s.period_error_ratio[j]
            i5 = s.window_index(300)
            assert (
                samples[key("slo:current_burn_rate:ratio", **labels, sloth_window="5m")] == s.burn_rate[i5, j]
            )
            at_period = {**labels, "sloth_window": period}
            assert samples[key("slo:period_burn_rate:ratio", **at_period)] == s.period_burn_rate[j]
            remaining = key("slo:period_error_budget_remaining:ratio", **at_period)
            assert samples[remaining] == s.budget_remaining[j]
    assert samples[key("slo:time_period:days", **ids)] == 28  # the last SLO has a 28-day period
