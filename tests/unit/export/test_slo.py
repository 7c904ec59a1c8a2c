"""SLO families: names, labels and values against the snapshot; the top_k selection."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from prometheus_client import generate_latest

from sloguard.core.snapshot import SloSnapshot, Snapshot
from sloguard.core.spec import format_duration
from sloguard.export.collector import Exposition
from sloguard.export.slo import select_series
from tests.unit.export.scrape import TELEMETRY, key, names, parse, render
from tests.unit.export.snapshots import aggregated, synthetic


def slo_labels(s: SloSnapshot, j: int) -> dict[str, str]:
    return {"slo": s.spec.name, **dict(zip(s.spec.group_by, s.labels[j], strict=True))}


def test_slo_values_equal_the_snapshot() -> None:
    snap = aggregated()
    types, samples = parse(render(snap))
    seen = 0
    for s in snap.slos:
        assert samples[key("sloguard_slo_objective_ratio", slo=s.spec.name)] == float(s.spec.objective)
        assert samples[key("sloguard_slo_period_seconds", slo=s.spec.name)] == s.spec.period.nominal_seconds
        for t in s.spec.tiers:
            tier = {
                "severity": t.severity.value,
                "long_window": format_duration(t.long_window),
                "short_window": format_duration(t.short_window),
            }
            assert samples[key("sloguard_slo_burn_rate_threshold", slo=s.spec.name, **tier)] == float(
                t.factor
            )
        for j in range(s.series):
            labels = slo_labels(s, j)
            rows = [(format_duration(w), i) for i, w in enumerate(s.windows)]
            for window, i in rows:
                at = {**labels, "window": window}
                assert samples[key("sloguard_slo_events", **at)] == s.total[i, j]
                assert samples[key("sloguard_slo_bad_events", **at)] == s.bad[i, j]
                assert samples[key("sloguard_slo_error_ratio", **at)] == s.error_ratio[i, j]
                assert samples[key("sloguard_slo_burn_rate", **at)] == s.burn_rate[i, j]
                seen += 1
            at = {**labels, "window": "period"}
            assert samples[key("sloguard_slo_events", **at)] == s.period_total[j]
            assert samples[key("sloguard_slo_bad_events", **at)] == s.period_bad[j]
            assert samples[key("sloguard_slo_error_ratio", **at)] == s.period_error_ratio[j]
            assert samples[key("sloguard_slo_burn_rate", **at)] == s.period_burn_rate[j]
            assert (
                samples[key("sloguard_slo_error_budget_remaining_ratio", **labels)] == s.budget_remaining[j]
            )
            assert samples[key("sloguard_slo_error_budget_consumed_ratio", **labels)] == s.budget_consumed[j]
            eta = key("sloguard_slo_error_budget_exhaustion_seconds", **labels)
            if math.isnan(s.exhaustion_eta[j]):
                assert eta not in samples
            else:
                assert samples[eta] == s.exhaustion_eta[j]
            for k, t in enumerate(s.spec.tiers):
                tier = {
                    "severity": t.severity.value,
                    "long_window": format_duration(t.long_window),
                    "short_window": format_duration(t.short_window),
                }
                firing = samples[key("sloguard_slo_alert_firing", **labels, **tier)]
                assert firing == (1.0 if s.firing[k, j] else 0.0)
    assert seen == sum(s.series * len(s.windows) for s in snap.slos)
    # The windows the issue asks for, and every SLO family is a gauge.
    windows = {dict(lab)["window"] for name, lab in samples if name == "sloguard_slo_burn_rate"}
    assert windows == {"5m", "30m", "1h", "2h", "6h", "1d", "3d", "period"}
    assert {types[n] for n in names(samples) if n.startswith("sloguard_slo_")} == {"gauge"}


def test_the_aggregated_case_covers_every_kind_of_value() -> None:
    # Guards the fixture: the value test above is only as good as the variety in it.
    snap = aggregated()
    eta = np.concatenate([s.exhaustion_eta for s in snap.slos])
    firing = np.concatenate([s.firing.ravel() for s in snap.slos])
    assert np.isnan(eta).any() and (eta == 0).any() and (eta > 0).any()
    assert firing.any() and not firing.all()
    assert snap.latency is not None
    counts = np.concatenate([w.count for w in snap.latency.windows])
    assert (counts == 0).any() and (counts > 0).any()


def test_exhaustion_eta_is_absent_when_not_burning() -> None:
    snap = aggregated()
    _, samples = parse(render(snap))
    by_endpoint = next(s for s in snap.slos if s.spec.name == "checkout-by-endpoint")
    etas = {
        dict(labels)["endpoint"]: value
        for name, labels in samples
        if name == "sloguard_slo_error_budget_exhaustion_seconds"
        and dict(labels)["slo"] == by_endpoint.spec.name
        for value in [samples[(name, labels)]]
    }
    expected = {
        labels[0]: float(e)
        for labels, e in zip(by_endpoint.labels, by_endpoint.exhaustion_eta.tolist(), strict=True)
        if not math.isnan(e)
    }
    assert etas == expected
    assert 0 < len(etas) < by_endpoint.series
    assert b"NaN" not in render(snap)


def test_slo_info_names_service_sli_and_period() -> None:
    snap = aggregated()
    _, samples = parse(render(snap))
    for s in snap.slos:
        labels = {"slo": s.spec.name, "service": s.spec.service, "sli": s.spec.sli.kind}
        found = [k for k in samples if k[0] == "sloguard_slo_info" and set(labels.items()) <= set(k[1])]
        assert len(found) == 1 and samples[found[0]] == 1.0
        assert dict(found[0][1])["period"] == s.spec.period.describe()


# -- top_k ------------------------------------------------------------------------------------------


def test_top_k_keeps_the_highest_1h_burn_rates_plus_firing_series() -> None:
    snap = synthetic(200, 5, seed=3, firing_p=0.02)
    s = next(x for x in snap.slos if x.spec.name == "checkout-by-customer")
    burn = s.burn_rate[s.window_index(3600)]
    firing = s.firing.any(axis=0)
    k = 10
    top = set(np.argsort(-burn, kind="stable")[:k].tolist())
    assert not set(np.flatnonzero(firing).tolist()) <= top, "fixture: some firing series outside the top k"
    expected = top | set(np.flatnonzero(firing).tolist())
    cols = select_series(s, k)
    assert cols is not None
    assert cols.tolist() == sorted(expected)

    _, samples = parse(render(snap, top_k={s.spec.name: k}))
    exported = {
        dict(labels)["customer"]
        for name, labels in samples
        if name == "sloguard_slo_error_budget_remaining_ratio" and dict(labels)["slo"] == s.spec.name
    }
    assert exported == {s.labels[j][1] for j in expected}
    assert samples[key("sloguard_series", slo=s.spec.name)] == 200
    assert samples[key("sloguard_exported_series", slo=s.spec.name)] == len(expected)
    # Other SLOs are untouched.
    other = next(x for x in snap.slos if x.spec.name == "search-latency")
    assert samples[key("sloguard_exported_series", slo=other.spec.name)] == other.series
    # Every family of the SLO follows the same selection.
    firing_customers = {
        dict(labels)["customer"]
        for name, labels in samples
        if name == "sloguard_slo_alert_firing" and dict(labels)["slo"] == s.spec.name
    }
    assert firing_customers == exported


@pytest.mark.parametrize("k", [0, 1, 199, 200, 1000])
def test_top_k_edges(k: int) -> None:
    snap = synthetic(200, 5, seed=4, firing_p=0.0)
    s = next(x for x in snap.slos if x.spec.name == "checkout-by-customer")
    cols = select_series(s, k)
    if k >= s.series:
        assert cols is None
    else:
        assert cols is not None and len(cols) == k


def test_top_k_ties_keep_the_older_series() -> None:
    snap = synthetic(50, 5, seed=5, firing_p=0.0)
    s = next(x for x in snap.slos if x.spec.name == "checkout-by-customer")
    s.burn_rate[:] = 1.0  # all tied (the synthetic arrays are ours to change)
    cols = select_series(s, 5)
    assert cols is not None and cols.tolist() == [0, 1, 2, 3, 4]


# -- static labels of an SLO ------------------------------------------------------------------------

#: Static labels per SLO of `aggregated`: one SLO without, one with labels that sort before and after
#: ``slo`` and between the group label and ``window``, with values needing escapes.
STATIC = {
    "checkout-by-endpoint": (("owner", 'pay"ments'), ("tier", "1"), ("a_first", "x\\y"), ("zz", "ünï\nde")),
    "search-latency": (("owner", "search"),),
}


def labelled(snap: Snapshot) -> Snapshot:
    slos = tuple(
        dataclasses.replace(s, spec=dataclasses.replace(s.spec, labels=STATIC.get(s.spec.name, ())))
        for s in snap.slos
    )
    return dataclasses.replace(snap, slos=slos)


@pytest.mark.parametrize("sloth", [False, True], ids=["native", "sloth-compat"])
def test_static_labels_are_on_every_series_of_their_slo_only(sloth: bool) -> None:
    plain, snap = aggregated(), labelled(aggregated())
    _, before = parse(render(plain, sloth=sloth))
    _, after = parse(render(snap, sloth=sloth))
    assert len(after) == len(before)
    expected = {}
    for (name, labels), value in before.items():
        d = dict(labels)
        slo_name = d.get("slo", d.get("sloth_slo"))
        if name.startswith(("sloguard_slo_", "slo:", "sloth_slo_info")):
            assert slo_name is not None, name
            d.update(STATIC.get(slo_name, ()))
        expected[(name, tuple(sorted(d.items())))] = value
    assert after.keys() == expected.keys()
    assert all(after[k] == v or (math.isnan(v) and math.isnan(after[k])) for k, v in expected.items())


@pytest.mark.parametrize("sloth", [False, True], ids=["native", "sloth-compat"])
def test_static_labels_render_byte_identical_to_generate_latest(sloth: bool) -> None:
    exposition = Exposition(sloth_compat=sloth, top_k={"checkout-by-endpoint": 2})
    body = exposition.render(labelled(aggregated()), TELEMETRY)
    assert body == generate_latest(exposition.registry)
    assert (
        b'owner="pay\\"ments",slo="checkout-by-endpoint",tier="1",window="1h",zz="\xc3\xbcn\xc3\xaf\\nde"'
        in body
    )


def test_without_static_labels_the_exposition_is_unchanged() -> None:
    """Per-SLO blocks (needed for per-SLO labels) write the bytes one block over all SLOs wrote."""
    body = render(aggregated())
    assert b'sloguard_slo_objective_ratio{slo="checkout-availability"} 0.999\n' in body
    assert body.count(b"sloguard_slo_info{") == 3
    info = b'period="30d",service="checkout",sli="availability",slo="checkout-availability"'
    assert b"sloguard_slo_info{" + info + b"} 1.0\n" in body
