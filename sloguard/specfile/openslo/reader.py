"""One OpenSLO SLO (with its SLI, DataSource, AlertPolicies and AlertConditions) -> a sloguard SLO item.

The result is the ``slos:`` item a sloguard/v1 file would hold (`Draft.raw`), so the SLO file's own
validators and checks judge it; `Draft.origins` says which OpenSLO field each of its keys came from, so
their problems name the OpenSLO document and field. What sloguard cannot evaluate is refused here, naming
the document, kind, name and field. The mapping, field by field, is the table in ``docs/openslo.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sloguard.core.spec import format_duration
from sloguard.specfile.errors import TAG, Loc, Problems, show
from sloguard.specfile.openslo.model import (
    AlertConditionSpec,
    AlertPolicySpec,
    BadEvents,
    InlineCondition,
    InlinePolicy,
    InlineTarget,
    MetricSource,
    MetricSpec,
    Objective,
    RatioMetric,
    Selectors,
    SliSpec,
    SloSpec,
    TimeWindow,
)
from sloguard.specfile.openslo.stream import Obj, Place, Stream, add, validate
from sloguard.specfile.validators import parse_duration

#: The metricSource type whose events sloguard evaluates itself (compared case-insensitively).
SOURCE_TYPE = "sloguard"
#: sloguard's short window of a burn-rate tier: 1/12 of the long one (the SRE workbook's 1h/5m, 6h/30m,
#: 1d/2h, 3d/6h), unless the condition's ``sloguard/short-window`` annotation says otherwise.
SHORT_WINDOW_DIVISOR = 12
#: Calendar-aligned ``timeWindow`` durations and the calendar unit each is.
CALENDAR_UNITS = {"1w": "week", "1M": "month", "1Q": "quarter", "1Y": "year"}

#: Where the ``sloguard/empty-slice`` annotation is parked until the budgeting method is known.
_EMPTY_SLICE: Loc = ("budgeting", "empty")
#: Annotations with sloguard's settings of an SLO: annotation -> (sloguard key, value kind).
SLO_ANNOTATIONS: dict[str, tuple[Loc, str]] = {
    "sloguard/max-series": (("max_series",), "int"),
    "sloguard/series-ttl": (("series_ttl",), "text"),
    "sloguard/fine-resolution": (("resolution", "fine"), "text"),
    "sloguard/coarse-resolution": (("resolution", "coarse"), "text"),
    "sloguard/export-top-k": (("export", "top_k"), "int"),
    "sloguard/min-events": (("alerts", "min_events"), "int"),
    "sloguard/alert-name": (("alerts", "name"), "text"),
    #: ``good``, ``bad`` or ``skip``: what an empty time slice is (Timeslices, RatioTimeslices).
    "sloguard/empty-slice": (_EMPTY_SLICE, "text"),
    #: ``sloguard/label.team: payments``: a static label of the SLO's series and alerts.
    "sloguard/label.": (("labels",), "text"),
}
#: Annotations with sloguard's settings of a burn-rate tier (on its AlertCondition).
CONDITION_ANNOTATIONS: dict[str, tuple[Loc, str]] = {
    "sloguard/short-window": (("short",), "text"),
    "sloguard/budget-percent": (("budget_percent",), "number"),
    "sloguard/min-events": (("min_events",), "int"),
    #: ``sloguard/label.<name>`` and ``sloguard/annotation.<name>``: the tier's alert labels, annotations.
    "sloguard/label.": (("labels",), "text"),
    "sloguard/annotation.": (("annotations",), "text"),
}


@dataclass
class Draft:
    """A sloguard SLO item being written: its keys, and the OpenSLO field each came from."""

    problems: Problems
    fallback: Place
    raw: dict[str, Any] = field(default_factory=dict)
    origins: dict[Loc, Place] = field(default_factory=dict)
    ok: bool = True
    #: Thresholds of the tiers given by ``sloguard/budget-percent`` (by tier index), checked after mapping.
    thresholds: dict[int, Any] = field(default_factory=dict)

    def put(self, loc: Loc, value: Any, place: Place) -> None:
        target: Any = self.raw
        for key in loc[:-1]:
            target = target.setdefault(key, {})
        target[loc[-1]] = value
        self.origins[loc] = place

    def refuse(self, place: Place, message: str) -> None:
        add(self.problems, place, message)
        self.ok = False

    def origin(self, loc: Loc) -> Place:
        """The OpenSLO field of a sloguard field: the longest registered prefix, the rest appended (union
        tags, which name no field, dropped)."""
        loc = tuple(p for p in loc if isinstance(p, int) or not p.startswith(TAG))
        for n in range(len(loc), 0, -1):
            if (place := self.origins.get(loc[:n])) is not None:
                return place.at(*loc[n:])
        return self.fallback


#: How an objective is budgeted: writes what the method needs into the draft, or refuses its fields.
Budgeting = Callable[[Objective, Place, Draft], None]


_SLICES_ONLY = "only applies to Timeslices and RatioTimeslices budgeting"


def _occurrences(o: Objective, at: Place, draft: Draft) -> None:
    """Occurrences: good events / all events, sloguard's default budget. It needs no key of its own."""
    for key, value in (("timeSliceTarget", o.time_slice_target), ("timeSliceWindow", o.time_slice_window)):
        if value is not None:
            draft.refuse(at.at(key), f"{_SLICES_ONLY} (budgetingMethod is Occurrences)")
    if draft.raw.pop("budgeting", None) is not None:
        draft.refuse(draft.origins.pop(_EMPTY_SLICE), f"{_SLICES_ONLY} (budgetingMethod is Occurrences)")


def _time_slices(method: str, key: str, o: Objective, at: Place, draft: Draft) -> None:
    """Timeslices / RatioTimeslices: ``timeSliceWindow`` is the slice, ``timeSliceTarget`` (Timeslices
    only) the good ratio a good slice needs; ``sloguard/empty-slice`` what an empty slice is."""
    if o.time_slice_window is None:
        draft.refuse(at.at("timeSliceWindow"), f"is required for {method} budgeting: the slice, e.g. 1m")
    else:
        draft.put(("budgeting", key, "slice"), o.time_slice_window, at.at("timeSliceWindow"))
    if key == "timeslices":
        if o.time_slice_target is None:
            draft.refuse(
                at.at("timeSliceTarget"),
                "is required for Timeslices budgeting: the good ratio of a good slice",
            )
        else:
            draft.put(("budgeting", key, "good_ratio"), o.time_slice_target, at.at("timeSliceTarget"))
    elif o.time_slice_target is not None:
        draft.refuse(at.at("timeSliceTarget"), "only applies to Timeslices budgeting (not RatioTimeslices)")
    parked = draft.raw.get("budgeting", {}).pop("empty", None)
    if parked is not None:
        draft.put(("budgeting", key, "empty"), parked, draft.origins.pop(_EMPTY_SLICE))


#: budgetingMethod -> its mapping; None: not supported yet.
BUDGETING: dict[str, Budgeting | None] = {
    "Occurrences": _occurrences,
    "Timeslices": functools.partial(_time_slices, "Timeslices", "timeslices"),
    "RatioTimeslices": functools.partial(_time_slices, "RatioTimeslices", "ratio_timeslices"),
}


def _annotations(
    metadata_annotations: dict[str, Any],
    table: dict[str, tuple[Loc, str]],
    place: Place,
    draft: Draft,
    base: Loc = (),
) -> None:
    """The ``sloguard/`` annotations of an object into the draft; other prefixes are not sloguard's."""
    for key, value in metadata_annotations.items():
        if not isinstance(key, str) or not key.startswith("sloguard/"):
            continue
        at = place.at("metadata", "annotations", key)
        prefix = key[: key.index(".") + 1] if "." in key else key
        if prefix not in table or (prefix != key) != prefix.endswith("."):
            allowed = ", ".join(k + "<name>" if k.endswith(".") else k for k in table)
            draft.refuse(at, f"unknown sloguard annotation; allowed here: {allowed}")
            continue
        loc, kind = table[prefix]
        if prefix != key:
            loc = (*loc, key[len(prefix) :])
        if isinstance(value, str) and kind == "int" and value.strip().isdigit():
            value = int(value)
        elif isinstance(value, str) and kind == "number":
            with contextlib.suppress(ArithmeticError):  # the validator words it
                value = Decimal(value.strip())
        draft.put(base + loc, value, at)


class SloReader:
    """Reads one SLO object of a stream into a `Draft` (see the module docstring)."""

    def __init__(self, stream: Stream, slo: Obj) -> None:
        self.stream = stream
        self.slo = slo
        self.spec: SloSpec = slo.spec
        self.draft = Draft(stream.problems, slo.place)
        #: Whether the SLI is a thresholdMetric (latency threshold in the objective's value).
        self.threshold_sli = False

    def read(self) -> Draft:
        sp = self.slo.place.at("spec")
        d = self.draft
        d.put(("name",), self.slo.name, self.slo.place.at("metadata", "name"))
        d.put(("service",), self.spec.service, sp.at("service"))
        if self.spec.description:
            d.put(("description",), self.spec.description, sp.at("description"))
        _annotations(self.slo.metadata.annotations, SLO_ANNOTATIONS, self.slo.place, d)
        self._indicator(sp)
        self._window(self.spec.time_window, sp.at("timeWindow"))
        self._objective(sp)
        self._alerts(self.spec.alert_policies, sp.at("alertPolicies"))
        return d

    # The SLI ------------------------------------------------------------------------------------------
    def _indicator(self, sp: Place) -> None:
        spec = self.spec
        if (spec.indicator is None) == (spec.indicator_ref is None):
            self.draft.refuse(sp, "give exactly one of indicator (an inline SLI) or indicatorRef")
            return
        if spec.indicator is not None:
            self._sli(spec.indicator.spec, sp.at("indicator", "spec"))
            return
        sli = self.stream.find("SLI", spec.indicator_ref, sp.at("indicatorRef"))
        if sli is None:
            self.draft.ok = False
            return
        self._sli(sli.spec, sli.place.at("spec"))

    def _sli(self, sli: SliSpec, place: Place) -> None:
        if (sli.threshold_metric is None) == (sli.ratio_metric is None):
            self.draft.refuse(place, "give exactly one of thresholdMetric or ratioMetric")
            return
        sources: list[tuple[MetricSpec, Place]] = []
        if sli.threshold_metric is not None:
            sources.append((sli.threshold_metric, place.at("thresholdMetric")))
        if (ratio := sli.ratio_metric) is not None:
            for name in ("good", "bad", "total", "raw"):
                if (metric := getattr(ratio, name)) is not None:
                    sources.append((metric, place.at("ratioMetric", name)))
        self.threshold_sli = sli.threshold_metric is not None
        # A source sloguard cannot evaluate is the one thing to say about such an SLI.
        if not all([self._is_sloguard(m.metric_source, at.at("metricSource")) for m, at in sources]):
            return
        if sli.threshold_metric is not None:
            self._threshold(sli.threshold_metric, place.at("thresholdMetric", "metricSource", "spec"))
        elif ratio is not None:
            self._ratio(ratio, place.at("ratioMetric"))

    def _is_sloguard(self, source: MetricSource, at: Place) -> bool:
        kind, kind_at, what = source.type, at.at("type"), ""
        if source.metric_source_ref is not None:
            ds = self.stream.find("DataSource", source.metric_source_ref, at.at("metricSourceRef"))
            if ds is None:
                self.draft.ok = False
                return False
            if kind is not None and kind != ds.spec.type:
                self.draft.refuse(
                    kind_at, f"{show(kind)} differs from the type of {ds.where} ({ds.spec.type})"
                )
                return False
            kind, kind_at = ds.spec.type, at.at("metricSourceRef")
            what = f"{ds.name} is a {kind} DataSource; "
        if kind is None:
            self.draft.refuse(kind_at, f"is required without metricSourceRef (type: {SOURCE_TYPE})")
            return False
        if kind.lower() != SOURCE_TYPE:
            self.draft.refuse(
                kind_at,
                f"{what}sloguard cannot evaluate {kind} sources: it computes SLIs from its own request-log "
                f"events, so it reads only metricSource type {SOURCE_TYPE} (see docs/openslo.md)",
            )
            return False
        return True

    def _source_spec(self, data: Any, model: type[Selectors] | type[BadEvents], at: Place) -> Any:
        value = validate(model, {} if data is None else data, at, self.stream.problems)
        if value is None:
            self.draft.ok = False
        return value

    def _selectors(self, s: Selectors, at: Place) -> None:
        d = self.draft
        if s.service is not None and s.service != self.spec.service:
            d.refuse(
                at.at("service"),
                f"selects service {show(s.service)}, but the SLO's spec.service is "
                f"{show(self.spec.service)}; a sloguard SLO selects the events of its service",
            )
        for key, name, value in (
            ("endpoints", "endpoints", s.endpoints),
            ("endpoints_exclude", "endpointsExclude", s.endpoints_exclude),
            ("group_by", "groupBy", s.group_by),
        ):
            if value is not None:
                d.put((key,), value, at.at(name))

    def _threshold(self, metric: MetricSpec, at: Place) -> None:
        s = self._source_spec(metric.metric_source.spec, Selectors, at)
        if s is None:
            return
        self._selectors(s, at)
        self.draft.put(("sli", "type"), "latency", at)
        if s.status is not None:
            self.draft.put(("sli", "bad_status"), s.status, at.at("status"))

    def _ratio(self, ratio: RatioMetric, at: Place) -> None:
        d = self.draft
        if ratio.raw is not None or ratio.raw_type is not None:
            d.refuse(
                at.at("raw" if ratio.raw is not None else "rawType"),
                "is not supported: sloguard computes the ratio from events itself; give bad and total",
            )
        if ratio.good is not None:
            d.refuse(
                at.at("good"),
                "is not supported: sloguard counts bad events; give bad (status, latencyThresholdMs) "
                "and total",
            )
        for name, metric in (("bad", ratio.bad), ("total", ratio.total)):
            if metric is None and ratio.raw is None and ratio.good is None:
                d.refuse(at, f"{name} is required (bad and total, both of type {SOURCE_TYPE})")
        if not d.ok or ratio.total is None or ratio.bad is None:
            return
        total_at = at.at("total", "metricSource", "spec")
        if (s := self._source_spec(ratio.total.metric_source.spec, Selectors, total_at)) is not None:
            if s.status is not None:
                d.refuse(total_at.at("status"), "belongs to bad (which statuses are bad)")
            self._selectors(s, total_at)
        bad_at = at.at("bad", "metricSource", "spec")
        if (b := self._source_spec(ratio.bad.metric_source.spec, BadEvents, bad_at)) is None:
            return
        d.put(("sli", "type"), "availability" if b.latency_threshold_ms is None else "latency", bad_at)
        if b.status is not None:
            d.put(("sli", "bad_status"), b.status, bad_at.at("status"))
        if b.latency_threshold_ms is not None:
            d.put(("sli", "threshold_ms"), b.latency_threshold_ms, bad_at.at("latencyThresholdMs"))

    # The period and the objective ---------------------------------------------------------------------
    def _window(self, windows: list[TimeWindow] | None, at: Place) -> None:
        d = self.draft
        if windows is None:
            d.refuse(
                at, "is required: sloguard needs the SLO's period (e.g. - {duration: 30d, isRolling: true})"
            )
            return
        if len(windows) != 1:
            d.refuse(at, f"must hold exactly one window (got {len(windows)})")
            return
        w, at = windows[0], at.at(0)
        if w.calendar is None:
            if w.is_rolling is False:
                d.refuse(
                    at.at("isRolling"), "false needs calendar; for a rolling window write isRolling: true"
                )
            elif isinstance(w.duration, str) and w.duration[-1:] in ("M", "Q", "Y"):
                d.refuse(
                    at.at("duration"),
                    f"a rolling window of {w.duration} has no fixed length; give days (e.g. 30d) or a "
                    "calendar window",
                )
            else:
                d.put(("window",), w.duration, at.at("duration"))
            return
        if w.is_rolling is True:
            d.refuse(at.at("isRolling"), "true contradicts calendar (a calendar-aligned window)")
        unit = CALENDAR_UNITS.get(w.duration) if isinstance(w.duration, str) else None
        if unit is None:
            d.refuse(
                at.at("duration"), f"a calendar window must be 1w, 1M, 1Q or 1Y (got {show(w.duration)})"
            )
            return
        zone = w.calendar.time_zone if w.calendar.time_zone is not None else "UTC"
        d.put(("window",), {"calendar": unit, "timezone": zone}, at.at("duration"))
        d.put(("window", "timezone"), zone, at.at("calendar", "timeZone"))
        if w.calendar.start_time is not None and (why := _not_a_start(unit, w.calendar.start_time)):
            d.refuse(at.at("calendar", "startTime"), why)

    def _objective(self, sp: Place) -> None:
        d, spec = self.draft, self.spec
        if len(spec.objectives) > 1:
            d.refuse(
                sp.at("objectives", 1),
                "sloguard evaluates one objective per SLO; write one SLO per objective",
            )
        o, at = spec.objectives[0], sp.at("objectives", 0)
        method = spec.budgeting_method
        if method not in BUDGETING:
            d.refuse(sp.at("budgetingMethod"), f"must be one of {', '.join(BUDGETING)} (got {show(method)})")
        elif (budgeting := BUDGETING[method]) is None:
            d.refuse(
                sp.at("budgetingMethod"),
                f"{method} is not supported yet: sloguard budgets Occurrences (good events / all events)",
            )
        else:
            budgeting(o, at, d)
        if (o.target is None) == (o.target_percent is None):
            d.refuse(at, "give exactly one of target (0.999) or targetPercent (99.9)")
        elif o.target is not None:
            d.put(("objective",), o.target, at.at("target"))
            d.put(("objective_unit",), "ratio", at.at("target"))
        else:
            d.put(("objective",), o.target_percent, at.at("targetPercent"))
        self._threshold_objective(o, at)

    def _threshold_objective(self, o: Objective, at: Place) -> None:
        """op and value: a thresholdMetric's latency threshold (good: latency <= value ms)."""
        d = self.draft
        if not self.threshold_sli:
            for key, value in (("op", o.op), ("value", o.value)):
                if value is not None:
                    d.refuse(at.at(key), "only applies to a thresholdMetric SLI")
            return
        if o.op != "lte":
            d.refuse(
                at.at("op"),
                f"must be lte for a thresholdMetric SLI: sloguard counts an event good when its latency is "
                f"at most value ms (got {show(o.op)})",
            )
        if o.value is None:
            d.refuse(at.at("value"), "is required for a thresholdMetric SLI: the latency threshold in ms")
        else:
            d.put(("sli", "threshold_ms"), o.value, at.at("value"))

    # Alerts -------------------------------------------------------------------------------------------
    def _alerts(self, policies: list[Any] | None, at: Place) -> None:
        """Absent: sloguard's default tiers. Else each burn-rate condition of each policy is a tier."""
        if policies is None:
            return
        tiers: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, item in enumerate(policies):
            found = self._inline_or_ref(item, at.at(i), "AlertPolicy", "alertPolicyRef", InlinePolicy)
            if found is None:
                continue
            policy, policy_obj, _, _ = found
            policy_at = policy_obj.at("spec")
            assert isinstance(policy, AlertPolicySpec)
            self._policy_flags(policy, policy_at)
            for j, c in enumerate(policy.conditions):
                cond = self._inline_or_ref(
                    c, policy_at.at("conditions", j), "AlertCondition", "conditionRef", InlineCondition
                )
                # One condition in two policies (two notification targets) is still one alert.
                if cond is not None and cond[2] not in seen:
                    seen.add(cond[2])
                    tiers.append(self._tier(cond[0], cond[1], len(tiers), cond[3]))
            for k, t in enumerate(policy.notification_targets):
                self._inline_or_ref(
                    t,
                    policy_at.at("notificationTargets", k),
                    "AlertNotificationTarget",
                    "targetRef",
                    InlineTarget,
                )
        self.draft.put(("alerts", "tiers"), tiers, at)

    def _policy_flags(self, policy: AlertPolicySpec, at: Place) -> None:
        if policy.alert_when_no_data:
            self.draft.refuse(
                at.at("alertWhenNoData"),
                "true is not supported: sloguard alerts on burn rates, not on missing data",
            )
        if policy.alert_when_breaching is False:
            self.draft.refuse(
                at.at("alertWhenBreaching"), "false is not supported: a sloguard tier alerts when breaching"
            )

    def _inline_or_ref(
        self, item: Any, at: Place, kind: str, ref_key: str, inline: type[Any]
    ) -> tuple[Any, Place, str, dict[str, Any]] | None:
        """A referenced or inline object: (spec, the object's place, an identity, its annotations)."""
        if isinstance(item, dict) and set(item) == {ref_key}:
            item = item[ref_key]
            at = at.at(ref_key)
        if isinstance(item, str):
            obj = self.stream.find(kind, item, at)
            if obj is None:
                self.draft.ok = False
                return None
            return obj.spec, obj.place, obj.where, obj.metadata.annotations
        if not isinstance(item, dict) or "kind" not in item:
            self.draft.refuse(at, f"must be a {kind} name, {{{ref_key}: name}} or an inline {kind}")
            return None
        value = validate(inline, item, at, self.stream.problems)
        if value is None:
            self.draft.ok = False
            return None
        return value.spec, at, f"{at.where} {at.loc}", value.metadata.annotations

    def _tier(
        self, cs: AlertConditionSpec, obj: Place, i: int, annotations: dict[str, Any]
    ) -> dict[str, Any]:
        """One burn-rate AlertCondition (at ``obj``) as the ``i``-th ``alerts.tiers`` item."""
        at = obj.at("spec")
        d, c, cp = self.draft, cs.condition, at.at("condition")
        base: Loc = ("alerts", "tiers", i)
        if c.kind != "burnrate":
            d.refuse(
                cp.at("kind"), f"{show(c.kind)} is not supported: sloguard alerts on burn rates (burnrate)"
            )
        if c.op not in (None, "gt"):
            d.refuse(
                cp.at("op"),
                f"{c.op} is not supported: a burn-rate tier fires when the burn rate is above the threshold "
                "(op: gt)",
            )
        tier: dict[str, Any] = {"severity": cs.severity, "long": c.lookback_window, "factor": c.threshold}
        d.origins[base] = cp
        d.origins[(*base, "severity")] = at.at("severity")
        d.origins[(*base, "long")] = cp.at("lookbackWindow")
        d.origins[(*base, "factor")] = cp.at("threshold")
        if c.alert_after is not None:
            tier["for"] = c.alert_after
            d.origins[(*base, "for")] = cp.at("alertAfter")
        long = parse_duration(c.lookback_window)
        if long is None or long % SHORT_WINDOW_DIVISOR:
            why = "must be a duration such as 5m, 1h or 3d" if long is None else "has no whole-second twelfth"
            d.refuse(
                cp.at("lookbackWindow"),
                f"{why}; sloguard's short window is 1/12 of it unless the annotation sloguard/short-window "
                f"gives it (got {show(c.lookback_window)})",
            )
        else:
            tier["short"] = format_duration(long // SHORT_WINDOW_DIVISOR)
            d.origins[(*base, "short")] = cp.at("lookbackWindow")
        scratch = Draft(self.stream.problems, cp, tier)
        _annotations(annotations, CONDITION_ANNOTATIONS, obj, scratch)
        if "budget_percent" in tier:
            d.thresholds[i] = tier.pop("factor")  # checked against the budget's burn rate after mapping
        d.ok = d.ok and scratch.ok
        d.origins.update({base + loc: place for loc, place in scratch.origins.items()})
        return tier


def _not_a_start(unit: str, value: Any) -> str | None:
    """Why ``startTime`` is not where sloguard's calendar unit starts (local midnight; the 1st of a month,
    quarter or year; a Monday); None if it is."""
    if isinstance(value, dt.datetime):
        start: dt.datetime | None = value
    elif isinstance(value, dt.date):
        start = dt.datetime.combine(value, dt.time())
    else:
        try:
            start = dt.datetime.fromisoformat(str(value))
        except ValueError:
            return f"must be a date and time such as 2024-01-01 00:00:00 (got {show(value)})"
    assert start is not None
    starts = {
        "week": start.weekday() == 0,
        "month": start.day == 1,
        "quarter": start.day == 1 and start.month % 3 == 1,
        "year": start.day == 1 and start.month == 1,
    }
    if start.time() == dt.time() and starts[unit]:
        return None
    first = {"week": "a Monday", "month": "the 1st", "quarter": "the 1st of Jan/Apr/Jul/Oct", "year": "Jan 1"}
    return (
        f"sloguard's calendar {unit}s start at local midnight on {first[unit]} of the time zone; "
        f"{start:%Y-%m-%d %H:%M:%S} is not such a start"
    )
