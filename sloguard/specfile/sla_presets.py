"""Published SLA schemes as ``slas:`` presets: each one's measurement rule and credit tiers, with its source.

No network was used to write this file: the figures are those of the public documents as published in
the years named, as the author knows them. Providers revise their SLAs; check the current document
before quoting a figure to a customer, and override any part with explicit keys (``measure``,
``credits``, ``period``: an explicit key replaces the preset's).

What sloguard must add to every compute scheme: the documents count a minute as *down* when the service
had no connectivity at all (EC2's "Region Unavailable", GCE's "loss of external connectivity", Azure's
"no external connectivity"). A request log has no such flag, so sloguard counts a minute as down when
more than ``error_rate_above`` of its requests failed: 5 % by default in these presets. That threshold is
sloguard's choice, not the provider's; set it with ``measure: {minutes_down: {error_rate_above: ...}}``.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

#: name -> the keys the preset supplies, as the SLO file's loader reads them (decimals as `Decimal`),
#: validated like written ones.
PRESETS: dict[str, dict[str, Any]] = {
    # Amazon Compute Service Level Agreement, https://aws.amazon.com/compute/sla/ (as published, 2022):
    # the Region-Level SLA covers EC2, EBS, ECS and Fargate in a region. "Monthly Uptime Percentage" is
    # 100 % minus the percentage of minutes of the monthly billing cycle in which the service was
    # "Region Unavailable". Credits: below 99.99 % (and at least 99.0 %) 10 %; below 99.0 % (and at least
    # 95.0 %) 30 %; below 95.0 % 100 %. (The Instance-Level SLA of the same document starts at 99.5 %.)
    "aws-compute": {
        "measure": {"minutes_down": {"error_rate_above": D("0.05"), "slice": "1m"}},
        "period": {"calendar": "month", "timezone": "UTC"},
        "credits": [
            {"below": D("99.99"), "percent": 10},
            {"below": D("99.0"), "percent": 30},
            {"below": D("95.0"), "percent": 100},
        ],
    },
    # Amazon S3 Service Level Agreement, https://aws.amazon.com/s3/sla/ (as published, 2022), S3
    # Standard: the "Error Rate" of a five-minute interval is the requests that returned InternalError or
    # ServiceUnavailable divided by all requests in it; an interval without requests counts as 0 %.
    # "Monthly Uptime Percentage" is 100 % minus the average of the Error Rates of every five-minute
    # interval of the monthly billing cycle. Credits: below 99.9 % (and at least 99.0 %) 10 %; below
    # 99.0 % (and at least 95.0 %) 25 %; below 95.0 % 100 %.
    "aws-s3": {
        "measure": {"interval_error_rate": {"interval": "5m"}},
        "period": {"calendar": "month", "timezone": "UTC"},
        "credits": [
            {"below": D("99.9"), "percent": 10},
            {"below": D("99.0"), "percent": 25},
            {"below": D("95.0"), "percent": 100},
        ],
    },
    # Compute Engine Service Level Agreement, https://cloud.google.com/compute/sla (as published, 2021
    # onwards): "Monthly Uptime Percentage" is the minutes of the month minus the minutes of Downtime,
    # over the minutes of the month; a "Downtime Period" is one or more consecutive minutes of Downtime
    # (partial minutes are not counted). The tiers chosen here are those of instances in multiple zones
    # (SLO 99.99 %): 99.00 % to < 99.99 % 10 %; 95.00 % to < 99.00 % 25 %; < 95.00 % 100 %. Single
    # instances have a lower SLO (99.9 % or 99.5 % depending on the machine family) with their own
    # tiers, and earlier versions of the document credited 50 % at the bottom tier: write them out with
    # credits: if that is your contract.
    "gcp-compute": {
        "measure": {"minutes_down": {"error_rate_above": D("0.05"), "slice": "1m"}},
        "period": {"calendar": "month", "timezone": "UTC"},
        "credits": [
            {"below": D("99.99"), "percent": 10},
            {"below": D("99.0"), "percent": 25},
            {"below": D("95.0"), "percent": 100},
        ],
    },
    # Microsoft, Service Level Agreements for Online Services, Virtual Machines,
    # https://www.microsoft.com/licensing/docs/view/Service-Level-Agreements-SLA-for-Online-Services
    # (as published, 2023): "Uptime Percentage" = (Maximum Available Minutes − Downtime) / Maximum
    # Available Minutes, Downtime being the minutes without external connectivity. For virtual machines
    # in two or more Availability Zones (SLA 99.99 %): below 99.99 % 10 %; below 99 % 25 %; below 95 %
    # 100 %. (Availability Sets are 99.95 %, single instances 99.9 % with premium storage.)
    "azure-vm": {
        "measure": {"minutes_down": {"error_rate_above": D("0.05"), "slice": "1m"}},
        "period": {"calendar": "month", "timezone": "UTC"},
        "credits": [
            {"below": D("99.99"), "percent": 10},
            {"below": D("99"), "percent": 25},
            {"below": D("95"), "percent": 100},
        ],
    },
}
