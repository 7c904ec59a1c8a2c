"""Default alert tier tables: data files (``sloguard/data/google-30d.yaml``, ``google-28d.yaml``).

A table says how much error budget each tier spends over its long window (the SRE workbook's 2 / 5 / 10 /
10 %), never a factor: the factor follows from each SLO's own period (`mapping.default_tiers`). A table is
chosen by the nominal period it was made for; every other period uses :data:`FALLBACK_TABLE`.
"""

from __future__ import annotations

import functools
from importlib import resources

from pydantic import ValidationError

from sloguard.core.spec import Period
from sloguard.specfile.errors import Problems, SpecError
from sloguard.specfile.loader import load_yaml
from sloguard.specfile.schema import TableModel

#: Default alert tier tables (package data, ``sloguard/data``), chosen by the SLO period they were made for.
DEFAULT_TABLES = ("google-28d.yaml", "google-30d.yaml")
#: The table for every period no table was made for (7d, calendar quarter, ...).
FALLBACK_TABLE = "google-30d.yaml"


@functools.cache
def load_table(name: str) -> TableModel:
    """The table ``sloguard/data/<name>``, validated; a broken table is a :class:`SpecError`."""
    source = f"sloguard/data/{name}"
    text = resources.files("sloguard").joinpath("data", name).read_text(encoding="utf-8")
    problems = Problems(source)
    try:
        table = TableModel.model_validate(load_yaml(text, source))
    except ValidationError as exc:
        problems.add_validation("", exc, TableModel)
        raise SpecError(problems.lines) from None
    for i, tier in enumerate(table.tiers):
        # Tables state how much budget a tier spends; the factor follows from each SLO's own period.
        if tier.budget_percent is None or tier.factor is not None:
            problems.add("", ("tiers", i), "a default tier needs budget_percent and no factor")
    problems.raise_if_any()
    return table


def table_for(period: Period) -> tuple[str, TableModel]:
    """The name and content of the table made for ``period``'s nominal length, else of the fallback."""
    for name in DEFAULT_TABLES:
        table = load_table(name)
        if table.period == period.nominal_seconds:
            return name, table
    return FALLBACK_TABLE, load_table(FALLBACK_TABLE)
