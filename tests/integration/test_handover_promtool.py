"""A stage-2 handover as Prometheus sees it (issue 10, item 6), tested with `promtool test rules`.

When a partials partition moves, its old owner stops exporting the partition's series when it is revoked
and the new owner starts once it has restored them; between the two a scrape may find the same series
on both processes (the old owner's last tick, or a zombie that has not noticed yet). The generated rules
are written so that this cannot double count: every rule compares one series' gauges (burn rates,
events, budget left) with a threshold and matches the short window and the event count ``ignoring
(window)`` on every other label, ``instance`` included, so each process's series is judged on its own
numbers and nothing is summed across processes. What a handover does cost is shown too: the alert
carries the exporting ``instance``, so a tier with ``for:`` starts pending anew on the new owner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sloguard.rules import BUDGET_EXHAUSTED_ALERT, BURN_ALERT, NO_DATA_ALERT
from tests.integration.test_rules_promtool import SLO, alert, burn_annotations, promtool_test

pytestmark = pytest.mark.promtool

OLD, NEW = "sloguard-merge-0:9464", "sloguard-merge-1:9464"
GROUP = {"endpoint": "POST /v1/orders", "job": "sloguard", "slo": "checkout"}
#: The old owner exports for 0..10m, then its series go stale; the new one from 10m on: one scrape (10m)
#: sees both.
OLD_SPAN, NEW_SPAN = "x10 stale", "_x10 {v}x10"


def exported(instance: str, burn: dict[str, str]) -> list[dict[str, str]]:
    """The series of the SLO's ``endpoint="POST /v1/orders"`` group as ``instance`` exports them."""
    span = OLD_SPAN if instance == OLD else NEW_SPAN

    def values(v: str) -> str:
        return f"{v}{span}" if instance == OLD else span.format(v=v)

    labels = f'endpoint="POST /v1/orders",instance="{instance}",job="sloguard",slo="checkout"'
    rates = {"5m": "0", "1h": "0", "2h": "0", "1d": "0", **burn}
    return [
        # Per-SLO constants: every stage-2 process exports them.
        {
            "series": f'sloguard_slo_objective_ratio{{instance="{instance}",job="sloguard",slo="checkout"}}',
            "values": values("0.999"),
        },
        *(
            {"series": f'sloguard_slo_burn_rate{{{labels},window="{w}"}}', "values": values(v)}
            for w, v in rates.items()
        ),
        {"series": f'sloguard_slo_events{{{labels},window="1h"}}', "values": values("1000")},
        {"series": f'sloguard_slo_events{{{labels},window="1d"}}', "values": values("20000")},
        {"series": f"sloguard_slo_error_budget_remaining_ratio{{{labels}}}", "values": values("0.4")},
    ]


def both(burn: dict[str, str]) -> list[dict[str, str]]:
    return exported(OLD, burn) + exported(NEW, burn)


PAGE = {"severity": "page", "long_window": "1h", "short_window": "5m"}
TICKET = {"severity": "ticket", "long_window": "1d", "short_window": "2h"}


def page(instance: str, value: str) -> dict[str, Any]:
    return alert({**GROUP, "instance": instance, **PAGE}, burn_annotations(value))


CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, Any]]]] = {
    # Burn rate 10 on both processes at the overlap: under the page factor 14.4. A sum over the two
    # (20) would fire; nothing fires, before, during or after the handover.
    "under-factor-on-both": (
        both({"1h": "10", "5m": "10"}),
        [
            {"eval_time": t, "alertname": name, "exp_alerts": []}
            for t in ("9m", "10m", "11m", "15m")
            for name in (BURN_ALERT, BUDGET_EXHAUSTED_ALERT, NO_DATA_ALERT)
        ],
    ),
    # Burn rate 15 on both: at the overlap the page fires once per exporting process, each with the
    # series' own value (15, not 30); before and after it, once.
    "over-factor-on-both": (
        both({"1h": "15", "5m": "15"}),
        [
            {"eval_time": "9m", "alertname": BURN_ALERT, "exp_alerts": [page(OLD, "15")]},
            {"eval_time": "10m", "alertname": BURN_ALERT, "exp_alerts": [page(OLD, "15"), page(NEW, "15")]},
            {"eval_time": "11m", "alertname": BURN_ALERT, "exp_alerts": [page(NEW, "15")]},
        ],
    ),
    # The ticket tier holds 5m: firing on the old owner, then pending anew on the new one from 10m,
    # firing again at 15m. A handover delays a held alert by up to its `for`.
    "for-restarts-on-the-new-owner": (
        both({"1d": "3.5", "2h": "4"}),
        [
            {
                "eval_time": "9m",
                "alertname": BURN_ALERT,
                "exp_alerts": [
                    alert({**GROUP, "instance": OLD, **TICKET}, burn_annotations("3.5", "1d", "2h", "3"))
                ],
            },
            {"eval_time": "13m", "alertname": BURN_ALERT, "exp_alerts": []},
            {
                "eval_time": "16m",
                "alertname": BURN_ALERT,
                "exp_alerts": [
                    alert({**GROUP, "instance": NEW, **TICKET}, burn_annotations("3.5", "1d", "2h", "3"))
                ],
            },
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_handover_does_not_double_count(case: str, tmp_path: Path) -> None:
    promtool_test(tmp_path, SLO, *CASES[case])
