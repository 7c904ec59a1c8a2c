"""`promtool check metrics` on what /metrics serves: it must parse, and lint clean.

Sloth's names (``slo:sli_error:ratio_rate5m`` ...) contain colons, which promtool's linter flags by
design (colons are for recording rules); they are fixed by Sloth's dashboards, so with sloth-compat on
exactly those problems on exactly those names are accepted, and nothing else.

Without promtool on PATH these tests fail (install the Debian package ``prometheus``); they are marked
``promtool`` so a Makefile target can leave them out on machines without it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from sloguard.core.snapshot import Snapshot
from sloguard.export.collector import Exposition
from sloguard.telemetry import TelemetrySnapshot
from tests.support.tools import require
from tests.unit.export.snapshots import NASTY, aggregated, synthetic

pytestmark = pytest.mark.promtool

TELEMETRY = TelemetrySnapshot(
    events_processed=10,
    events_invalid={"malformed_json": 1, "future_timestamp": 2},
    events_late=1,
    events_future=2,
    records_consumed=5,
    dead_lettered=1,
    commit_failures=0,
    consumer_lag={("requests", 0): 3, ("requests", 1): 0},
    tick_duration_seconds=0.01,
    render_duration_seconds=0.02,
)

SNAPSHOTS: dict[str, Callable[[], Snapshot]] = {
    "aggregated": lambda: aggregated(),
    "aggregated-nasty-labels": lambda: aggregated(customers=NASTY),
    "synthetic-nasty-labels": lambda: synthetic(500, 100, nasty=True, firing_p=0.05),
    "empty": lambda: Snapshot(0, (), None, 0, None),
}


def promtool() -> str:
    return require("promtool")


def check_metrics(body: bytes) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [promtool(), "check", "metrics"], input=body, capture_output=True, timeout=120, check=False
    )
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    return proc.returncode, [line for line in output.splitlines() if line.strip()]


def test_without_promtool_the_tests_fail_rather_than_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(pytest.fail.Exception, match="Debian package `prometheus`"):
        promtool()


def test_promtool_notices_problems() -> None:
    # Guards the tests below: promtool reads stdin and reports what is wrong.
    code, problems = check_metrics(b"# HELP x_total X.\n# TYPE x_total gauge\nx_total 1\n")
    assert code != 0
    assert any("_total" in p for p in problems), problems
    code, problems = check_metrics(b'x{a="unterminated} 1\n')
    assert code != 0 and problems


@pytest.mark.parametrize("top_k", [None, {"checkout-by-customer": 25}], ids=["all-series", "top-k"])
@pytest.mark.parametrize("make", SNAPSHOTS.values(), ids=SNAPSHOTS.keys())
def test_native_names_lint_clean(make: Callable[[], Snapshot], top_k: dict[str, int] | None) -> None:
    body = Exposition(top_k=top_k).render(make(), TELEMETRY)
    assert check_metrics(body) == (0, [])


@pytest.mark.parametrize("make", SNAPSHOTS.values(), ids=SNAPSHOTS.keys())
def test_sloth_compat_only_the_colons_of_sloths_names(make: Callable[[], Snapshot]) -> None:
    snap = make()
    body = Exposition(sloth_compat=True).render(snap, TELEMETRY)
    code, problems = check_metrics(body)
    others = [p for p in problems if not p.startswith("slo:")]
    assert others == [], others
    for p in problems:
        assert p.partition(" ")[2] == "metric names should not contain ':'", p
    if snap.slos:
        assert code == 3 and problems  # lint problems, not a parse error
    else:
        assert (code, problems) == (0, [])
