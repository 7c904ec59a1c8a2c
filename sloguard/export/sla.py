"""SLA metric source: the snapshot's live SLAs (`sloguard.sla_live`) → the ``sloguard_sla_*`` families.

Per SLA and customer: attainment (a ratio), the credit percent it earns now, and the same two projected
to the end of the period (`core.sla`). A customer under INSUFFICIENT_DATA has none of these samples.
Per SLA: the period's bounds, since when the daemon has counted it, and the customers beyond the SLO's
``max_series`` (counted together as ``customer="__overflow__"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction

from sloguard.core.sla import CreditTier, CustomerSla
from sloguard.core.sla_live import LiveSla
from sloguard.export.model import Family, SeriesLabels, block, one

_PER_CUSTOMER: tuple[tuple[str, str, Callable[[CustomerSla], Fraction | None]], ...] = (
    (
        "sloguard_sla_attainment_ratio",
        "SLA attainment over the period's slices elapsed (absent under INSUFFICIENT_DATA).",
        lambda c: c.attainment,
    ),
    (
        "sloguard_sla_credit_percent",
        "Service credit (percent of the bill) the attainment earns now; 0 above every tier.",
        lambda c: c.credit_percent,
    ),
    (
        "sloguard_sla_projected_attainment_ratio",
        "Attainment at the period's end if the rest goes as the SLA's projection window did.",
        lambda c: c.projected,
    ),
    (
        "sloguard_sla_projected_credit_percent",
        "Service credit the projected attainment would earn; 0 above every tier.",
        lambda c: _percent(c.projected_credit) if c.projected is not None else None,
    ),
)


def _percent(tier: CreditTier | None) -> Fraction:
    return tier.percent if tier is not None else Fraction(0)


def sla_families(slas: Sequence[LiveSla]) -> Iterator[Family]:
    """The ``sloguard_sla_*`` families of ``slas`` (nothing when there are none)."""
    if not slas:
        return
    for name, doc, value in _PER_CUSTOMER:
        blocks = []
        for live in slas:
            rows = [(c.customer, value(c)) for c in live.result.customers]
            kept = [(k, float(v)) for k, v in rows if v is not None]
            series = SeriesLabels(("customer",), [(k,) for k, _ in kept])
            blocks.append(block(series, (("sla", live.result.spec.name),), [v for _, v in kept]))
        yield Family(name, doc, "gauge", tuple(blocks))
    per_sla: tuple[tuple[str, str, Callable[[LiveSla], float]], ...] = (
        (
            "sloguard_sla_period_start_timestamp_seconds",
            "Start of the SLA's current period.",
            lambda s: s.result.start_ms / 1000,
        ),
        (
            "sloguard_sla_period_end_timestamp_seconds",
            "End of the SLA's current period.",
            lambda s: s.result.end_ms / 1000,
        ),
        (
            "sloguard_sla_counted_since_timestamp_seconds",
            "Since when the period has been counted (later than its start after a start without "
            "checkpointed SLA counts of it).",
            lambda s: s.since_ms / 1000,
        ),
        (
            "sloguard_sla_counted_until_timestamp_seconds",
            "The SLA figures cover the period's slices before this instant.",
            lambda s: (
                (s.result.start_ms + s.result.elapsed * s.result.spec.measure.slice_seconds * 1000) / 1000
            ),
        ),
        (
            "sloguard_sla_overflow_customers",
            'Customers beyond the SLO\'s max_series, counted together under customer="__overflow__".',
            lambda s: s.result.overflow_customers,
        ),
    )
    for name, doc, get in per_sla:
        yield Family(name, doc, "gauge", tuple(one(get(s), (("sla", s.result.spec.name),)) for s in slas))
