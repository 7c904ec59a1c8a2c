"""The OpenSLO v1 documents as written (pydantic): every field the v1 specification defines, nothing else.

Every v1 field is modelled, including the ones sloguard cannot evaluate (``ratioMetric.raw``,
``timeSliceTarget``, ``alertWhenNoData``): their refusal is `reader`'s, worded "not supported", while a key
the specification does not have is an "unknown field" here. Values sloguard validates itself (objectives,
windows, globs, statuses) stay ``Any`` so that the SLO file's own validators judge them and their errors
point back at these fields. Reference: the OpenSLO README ("Specification", apiVersion ``openslo/v1``) and
its Go model (``pkg/openslo/v1``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictBool

from sloguard.specfile.validators import non_empty_text

#: The only OpenSLO version read.
OPENSLO_VERSION = "openslo/v1"
#: The kinds of openslo/v1 sloguard reads, in the README's order.
KINDS = ("DataSource", "SLO", "SLI", "AlertPolicy", "AlertCondition", "AlertNotificationTarget", "Service")

_Text = Annotated[str, PlainValidator(non_empty_text)]


class _Doc(BaseModel):
    # A key the specification does not define is a typo (budgetMethod): refused, never ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(_Doc):
    """``metadata:``; only ``name`` (and ``sloguard/`` annotations) mean anything to sloguard."""

    name: _Text
    display_name: str | None = Field(default=None, alias="displayName")
    #: Values are strings or lists of strings (``team: [a, b]``); kept as OpenSLO metadata only.
    labels: dict[str, Any] = {}
    annotations: dict[str, Any] = {}


class Envelope(_Doc):
    """Every document: ``apiVersion``, ``kind``, ``metadata``, ``spec`` (validated per kind)."""

    api_version: Literal["openslo/v1"] = Field(alias="apiVersion")
    kind: str
    metadata: Metadata
    spec: dict[str, Any] = {}


class ServiceSpec(_Doc):
    description: str = ""


class DataSourceSpec(_Doc):
    description: str = ""
    type: _Text
    #: Connection details of the source; sloguard's own events come from its Kafka settings instead.
    connection_details: Any = Field(default=None, alias="connectionDetails")


class MetricSource(_Doc):
    """``metricSource:``: a DataSource reference and/or a type, and the source's own ``spec``."""

    metric_source_ref: _Text | None = Field(default=None, alias="metricSourceRef")
    type: _Text | None = None
    spec: Any = None


class MetricSpec(_Doc):
    metric_source: MetricSource = Field(alias="metricSource")


class RatioMetric(_Doc):
    counter: StrictBool | None = None
    good: MetricSpec | None = None
    bad: MetricSpec | None = None
    total: MetricSpec | None = None
    raw_type: Literal["success", "failure"] | None = Field(default=None, alias="rawType")
    raw: MetricSpec | None = None


class SliSpec(_Doc):
    description: str = ""
    threshold_metric: MetricSpec | None = Field(default=None, alias="thresholdMetric")
    ratio_metric: RatioMetric | None = Field(default=None, alias="ratioMetric")


class InlineSli(_Doc):
    """``indicator:`` of an SLO: an SLI written in place."""

    metadata: Metadata
    spec: SliSpec


class Selectors(_Doc):
    """``metricSource.spec`` of type sloguard that selects events (``total``, or a ``thresholdMetric``).

    Values are validated by the SLO file's validators (as ``service``, ``endpoints``, ...).
    """

    service: Any = None
    endpoints: Any = None
    endpoints_exclude: Any = Field(default=None, alias="endpointsExclude")
    group_by: Any = Field(default=None, alias="groupBy")
    #: Bad statuses (sloguard's ``sli.bad_status``); only in a thresholdMetric, where one source says all.
    status: Any = None


class BadEvents(_Doc):
    """``bad.metricSource.spec`` of type sloguard: which selected events are bad."""

    status: Any = None
    latency_threshold_ms: Any = Field(default=None, alias="latencyThresholdMs")


class Calendar(_Doc):
    #: YAML reads an unquoted ``2022-01-01 00:00:00`` as a datetime, a quoted one as a string.
    start_time: Any = Field(default=None, alias="startTime")
    time_zone: Any = Field(default=None, alias="timeZone")


class TimeWindow(_Doc):
    duration: Any
    is_rolling: StrictBool | None = Field(default=None, alias="isRolling")
    calendar: Calendar | None = None


class Objective(_Doc):
    display_name: str | None = Field(default=None, alias="displayName")
    op: Literal["lte", "gte", "lt", "gt"] | None = None
    value: Any = None
    target: Any = None
    target_percent: Any = Field(default=None, alias="targetPercent")
    time_slice_target: Any = Field(default=None, alias="timeSliceTarget")
    time_slice_window: Any = Field(default=None, alias="timeSliceWindow")


class SloSpec(_Doc):
    description: str = ""
    service: _Text
    indicator: InlineSli | None = None
    indicator_ref: _Text | None = Field(default=None, alias="indicatorRef")
    time_window: list[TimeWindow] | None = Field(default=None, alias="timeWindow")
    #: Checked against `reader.BUDGETING`, so an unsupported method is "not supported yet", not a typo.
    budgeting_method: _Text = Field(alias="budgetingMethod")
    objectives: Annotated[list[Objective], Field(min_length=1)]
    #: Names, ``{alertPolicyRef: name}`` or inline AlertPolicy objects; absent: sloguard's default tiers.
    alert_policies: list[Any] | None = Field(default=None, alias="alertPolicies")


class Condition(_Doc):
    kind: str = "burnrate"
    op: Literal["lte", "gte", "lt", "gt"] | None = None
    threshold: Any
    lookback_window: Any = Field(alias="lookbackWindow")
    alert_after: Any = Field(default=None, alias="alertAfter")


class AlertConditionSpec(_Doc):
    description: str = ""
    severity: Any
    condition: Condition


class InlineCondition(_Doc):
    """A condition written inside an AlertPolicy (``kind: AlertCondition`` with metadata and spec)."""

    kind: Literal["AlertCondition"]
    metadata: Metadata
    spec: AlertConditionSpec


class AlertPolicySpec(_Doc):
    description: str = ""
    alert_when_no_data: StrictBool | None = Field(default=None, alias="alertWhenNoData")
    alert_when_resolved: StrictBool | None = Field(default=None, alias="alertWhenResolved")
    alert_when_breaching: StrictBool | None = Field(default=None, alias="alertWhenBreaching")
    #: ``{conditionRef: name}`` or inline conditions.
    conditions: Annotated[list[Any], Field(min_length=1)]
    notification_targets: list[Any] = Field(default=[], alias="notificationTargets")


class InlinePolicy(_Doc):
    kind: Literal["AlertPolicy"]
    metadata: Metadata
    spec: AlertPolicySpec


class NotificationTargetSpec(_Doc):
    description: str = ""
    target: _Text


class InlineTarget(_Doc):
    kind: Literal["AlertNotificationTarget"]
    metadata: Metadata
    spec: NotificationTargetSpec


#: The spec model of each kind.
SPECS: dict[str, type[BaseModel]] = {
    "DataSource": DataSourceSpec,
    "SLO": SloSpec,
    "SLI": SliSpec,
    "AlertPolicy": AlertPolicySpec,
    "AlertCondition": AlertConditionSpec,
    "AlertNotificationTarget": NotificationTargetSpec,
    "Service": ServiceSpec,
}
