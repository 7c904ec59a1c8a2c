"""`SlaResult`s -> plain data (JSON) and CSV. Formatting only: every figure comes from `core.sla`.

Percentages are floats rounded once from the exact value; ``attainment_exact`` carries the exact ratio
(``"44636/44640"``) for minutes_down and occurrences, so a disputed credit can be recomputed by hand.
"""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from typing import Any

from sloguard.core.sla import CustomerSla, IntervalErrorRate, MinutesDown, SlaResult, measure_name
from sloguard.core.spec import format_duration
from sloguard.report import rfc3339


def _pct(value: Fraction | None) -> float | None:
    return None if value is None else float(value * 100)


def measure_dict(result: SlaResult) -> dict[str, Any]:
    m = result.spec.measure
    out: dict[str, Any] = {"method": measure_name(m), "slice": format_duration(m.slice_seconds)}
    if isinstance(m, MinutesDown):
        out["error_rate_above"] = float(m.error_rate_above)
    else:
        out["down_above"] = float(m.down_above)
    out["min_events_per_slice"] = m.min_events
    return out


def customer_dict(c: CustomerSla, exact: bool) -> dict[str, Any]:
    return {
        "customer": c.customer,
        "status": c.status,
        "attainment_percent": _pct(c.attainment),
        "attainment_exact": str(c.attainment) if exact and c.attainment is not None else None,
        "good": c.good,
        "total": c.total,
        "slices": c.slices,
        "good_slices": c.good_slices,
        "credit_percent": None if c.credit_percent is None else float(c.credit_percent),
        "credit_tier_below": float(c.credit.below) if c.credit else None,
        "projected_percent": _pct(c.projected),
        "projected_credit_percent": float(c.projected_credit.percent)
        if c.projected_credit
        else (None if c.projected is None else 0.0),
        "downtime": [
            {
                "start": rfc3339(d.start_ms),
                "end": rfc3339(d.end_ms),
                "seconds": (d.end_ms - d.start_ms) // 1000,
                "bad": d.bad,
                "total": d.total,
            }
            for d in c.downtime
        ],
    }


def sla_dict(r: SlaResult) -> dict[str, Any]:
    s = r.spec
    exact = not isinstance(s.measure, IntervalErrorRate)
    return {
        "name": s.name,
        "slo": s.slo,
        "per": s.per,
        "preset": s.preset,
        "measure": measure_dict(r),
        "period": s.period.describe(),
        "credits": [{"below": float(t.below), "percent": float(t.percent)} for t in s.credits],
        "min_events": s.min_events,
        "start": rfc3339(r.start_ms),
        "end": rfc3339(r.end_ms),
        "now": rfc3339(r.now_ms),
        "complete": r.elapsed == r.slices,
        "slices": r.slices,
        "elapsed_slices": r.elapsed,
        "events": r.events,
        "overflow_events": r.overflow_events,
        "overflow_customers": r.overflow_customers,
        "warnings": list(r.warnings),
        "excluded": [
            {"start": rfc3339(p.start_ms), "end": rfc3339(p.end_ms), "name": p.name, "reason": p.reason}
            for p in r.excluded
        ],
        "customers": [customer_dict(c, exact) for c in r.customers],
    }


def to_dict(results: list[SlaResult], invalid: dict[str, int], events: int) -> dict[str, Any]:
    """The document `sloguard report sla --format json` prints."""
    return {
        "events": events,
        "invalid": dict(sorted(invalid.items())),
        "slas": [sla_dict(r) for r in results],
    }


CSV_COLUMNS = (
    "sla",
    "customer",
    "status",
    "attainment_percent",
    "good",
    "total",
    "slices",
    "good_slices",
    "downtime_periods",
    "downtime_seconds",
    "credit_percent",
    "projected_percent",
    "projected_credit_percent",
    "start",
    "end",
)


def to_csv(results: list[SlaResult]) -> str:
    """One row per SLA and customer (empty cells where INSUFFICIENT_DATA leaves no figure)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in results:
        sla = sla_dict(r)
        for c in sla["customers"]:
            w.writerow(
                [
                    sla["name"],
                    c["customer"],
                    c["status"],
                    _cell(c["attainment_percent"]),
                    c["good"],
                    c["total"],
                    c["slices"],
                    c["good_slices"],
                    len(c["downtime"]),
                    sum(d["seconds"] for d in c["downtime"]),
                    _cell(c["credit_percent"]),
                    _cell(c["projected_percent"]),
                    _cell(c["projected_credit_percent"]),
                    sla["start"],
                    sla["end"],
                ]
            )
    return buf.getvalue()


def _cell(value: float | None) -> str:
    return "" if value is None else repr(value)
