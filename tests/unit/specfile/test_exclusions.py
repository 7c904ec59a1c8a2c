"""specfile.exclusions: the ``exclusions:`` section, RRULEs across DST, refusals naming the exclusion.

The ground truth of the DST test is written out by hand in UTC (not computed by dateutil or zoneinfo).
"""

from __future__ import annotations

import datetime as dt

import pytest

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.specfile import SpecError, parse_config
from sloguard.specfile.exclusions import describe_exclusions
from tests.unit.export.scrape import key, parse, render

SOURCE = "config/slos.yaml"
HEAD = """\
apiVersion: sloguard/v1
slos:
  - {name: api, service: api, objective: 99.9, sli: {type: availability}, window: 30d,
     labels: {team: payments}}
  - {name: web, service: web, objective: 99.9, sli: {type: availability}, window: 30d}
exclusions:
"""


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def refusals(body: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_config(HEAD + body, SOURCE)
    return list(info.value.problems)


def test_one_off_with_end_and_weekly_with_match() -> None:
    config = parse_config(
        HEAD
        + """\
  - {name: release, start: "2026-03-03T22:00:00Z", end: "2026-03-03T23:30:00Z", reason: release 4.2,
     slos: [api, web]}
  - {name: patching, start: 2026-01-04T02:00:00, timezone: Europe/Berlin, duration: 1h,
     rrule: "RRULE:FREQ=WEEKLY;BYDAY=SU", match: {team: payments}}
""",
        SOURCE,
    )
    release, patching = config.exclusions
    assert (release.start_ms, release.duration_ms, release.reason) == (
        ms("2026-03-03T22:00:00+00:00"),
        5_400_000,
        "release 4.2",
    )
    assert release.slos == ("api", "web") and release.recurrence is None
    assert patching.match == (("team", "payments"),) and patching.slos == ()
    assert patching.start_ms == ms("2026-01-04T01:00:00+00:00")  # 02:00 CET
    assert patching.recurrence is not None
    assert list(patching.recurrence(ms("2026-01-05T00:00:00+00:00"), ms("2026-01-19T00:00:00+00:00"))) == [
        ms("2026-01-11T01:00:00+00:00"),
        ms("2026-01-18T01:00:00+00:00"),
    ]
    assert [x.applies_to(s) for s in config.slos for x in config.exclusions] == [True, True, True, False]
    assert describe_exclusions(config.exclusions) == [
        "",
        "exclusions:",
        "  release: from 2026-03-03T22:00:00Z for 90m; api, web; release 4.2",
        "  patching: from 2026-01-04T01:00:00Z for 1h, RRULE:FREQ=WEEKLY;BYDAY=SU; "
        "SLOs labelled team=payments",
    ]


def test_weekly_window_keeps_local_time_across_dst_and_counts_exactly() -> None:
    # Europe/Berlin leaves CET (+01:00) for CEST (+02:00) on Sunday 2026-03-29 at 02:00 local.
    config = parse_config(
        HEAD
        + """\
  - {name: backup, start: "2026-03-15T03:30:00", timezone: Europe/Berlin, duration: 45m,
     rrule: FREQ=WEEKLY, slos: [api]}
""",
        SOURCE,
    )
    # 03:30 local each Sunday, written out in UTC by hand.
    windows = [
        (ms("2026-03-15T02:30:00+00:00"), ms("2026-03-15T03:15:00+00:00")),
        (ms("2026-03-22T02:30:00+00:00"), ms("2026-03-22T03:15:00+00:00")),
        (ms("2026-03-29T01:30:00+00:00"), ms("2026-03-29T02:15:00+00:00")),  # CEST from here
        (ms("2026-04-05T01:30:00+00:00"), ms("2026-04-05T02:15:00+00:00")),
    ]
    (backup,) = config.exclusions
    assert backup.recurrence is not None
    lo, hi = ms("2026-03-01T00:00:00+00:00"), ms("2026-04-10T00:00:00+00:00")
    assert [(s, s + backup.duration_ms) for s in backup.recurrence(lo, hi)] == windows
    # Events each minute and at every window edge (-1 ms, 0, +1 ms), good and bad alike.
    stamps = list(range(ms("2026-03-14T00:00:00+00:00"), ms("2026-04-06T00:00:00+00:00"), 60_000))
    stamps += [t + d for w in windows for t in w for d in (-1, 0, 1)]
    events = [
        Event(t, svc, "GET /", "", 503 if i % 3 else 200, 1.0)
        for i, t in enumerate(stamps)
        for svc in ("api", "web")
    ]
    agg = Aggregator(config)
    agg.ingest(EventBatch.from_events(events))
    now = ms("2026-04-06T00:00:00+00:00") + 1
    snap = agg.snapshot(now)
    api, web = snap.slos
    inside = [e for e in events if e.service == "api" and any(a <= e.ts_ms < z for a, z in windows)]
    kept = [e for e in events if e.service == "api" and e not in inside]
    # Per window: 45 whole minutes, and 3 edge stamps inside (start, start + 1 ms, end - 1 ms).
    assert api.excluded_events == len(inside) == 4 * (45 + 3)
    assert int(api.period_total.sum()) == len(kept)
    assert int(api.period_bad.sum()) == sum(e.status == 503 for e in kept)
    assert web.excluded_events == 0 and int(web.period_total.sum()) == len(stamps)
    # Exported per SLO as a counter (the family sloguard_excluded_events).
    types, samples = parse(render(snap))
    assert types["sloguard_excluded_events"] == "counter"
    assert samples[key("sloguard_excluded_events_total", slo="api")] == 192
    assert samples[key("sloguard_excluded_events_total", slo="web")] == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '  - {name: x, start: "2026-01-01T00:00:00Z", duration: 1h, rrule: FREQ=SOMETIMES,\n'
            "     slos: [api]}\n",
            "config/slos.yaml: exclusions[0] (x): rrule: not an iCal RRULE: invalid 'FREQ': SOMETIMES",
        ),
        (
            '  - {name: x, start: "2026-01-01T00:00:00Z", duration: 1h, slos: [api, apii]}\n',
            "config/slos.yaml: exclusions[0] (x): slos[1]: no SLO named 'apii' in this file",
        ),
        (
            '  - {name: x, start: "2026-01-01T00:00:00Z", duration: 1h, end: "2026-01-01T01:00:00Z",\n'
            "     slos: [api]}\n",
            "config/slos.yaml: exclusions[0] (x): duration: give exactly one of duration and end",
        ),
        (
            '  - {name: x, start: "2026-01-01T00:00:00Z", duration: 1h}\n',
            "config/slos.yaml: exclusions[0] (x): slos: "
            "give exactly one of slos (names) and match (SLO labels)",
        ),
        (
            '  - {name: x, start: "2026-01-01T00:00:00Z", end: "2025-12-31T00:00:00Z", slos: [api]}\n',
            "config/slos.yaml: exclusions[0] (x): end: must be after start",
        ),
        (
            "  - {name: x, start: tomorrow, duration: 1h, slos: [api]}\n",
            "config/slos.yaml: exclusions[0] (x): start: must be an ISO 8601 date-time such as "
            "2026-03-01T02:00:00Z (got 'tomorrow')",
        ),
        (
            '  - {name: x, start: "2026-01-01T00:00:00Z", duration: 1h, match: {team: search}}\n',
            "config/slos.yaml: exclusions[0] (x): match: no SLO in this file has all of these labels",
        ),
        (
            '  - {name: x, start: "2026-01-01T00:00:00Z", duration: 1h, slos: [api], why: because}\n',
            "config/slos.yaml: exclusions[0] (x): why: unknown field; allowed: duration, end, match, name, "
            "reason, rrule, slos, start, timezone",
        ),
    ],
    ids=[
        "bad-rrule",
        "unknown-slo",
        "duration-and-end",
        "no-scope",
        "end-before-start",
        "bad-start",
        "match-none",
        "unknown-key",
    ],
)
def test_refusals_name_the_exclusion_and_field(body: str, expected: str) -> None:
    got = refusals(body)
    assert got[0].startswith(expected), got


def test_duplicate_names_and_a_non_list_are_refused() -> None:
    body = '  - {name: x, start: "2026-01-01T00:00:00Z", duration: 1h, slos: [api]}\n' * 2
    assert refusals(body) == [
        "config/slos.yaml: exclusions[1] (x): name: duplicate exclusion name; exclusions[0] already uses it"
    ]
    with pytest.raises(SpecError) as info:
        parse_config(HEAD + "  {name: x}\n", SOURCE)
    assert info.value.problems == ("config/slos.yaml: exclusions: must be a list of maintenance windows",)
