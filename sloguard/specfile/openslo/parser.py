"""An OpenSLO v1 stream -> :class:`~sloguard.core.spec.Config`, through the SLO file's own validation.

`stream` validates each object, `reader` writes each SLO as the item a sloguard/v1 file would hold, and that
item goes through the SLO file's schema, checks and mapping, exactly as if the user had written it: every
sloguard rule applies, and each problem is reported at the OpenSLO field it came from.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from pydantic import ValidationError

from sloguard.core.spec import Config, SloSpec, format_duration
from sloguard.specfile import mapping
from sloguard.specfile.errors import Loc, Problems, Report, number, phrase, show
from sloguard.specfile.openslo.model import OPENSLO_VERSION
from sloguard.specfile.openslo.reader import Draft, SloReader
from sloguard.specfile.openslo.stream import Stream, add
from sloguard.specfile.schema import SloModel
from sloguard.specfile.validators import exact


def parse_documents(documents: list[Any], source: str) -> Config:
    """The SLOs of an OpenSLO v1 stream; raises :class:`~sloguard.specfile.SpecError` with every problem."""
    problems = Problems(source)
    stream = Stream(documents, problems)
    slos = stream.of_kind("SLO")
    if not slos and not problems.lines:
        problems.add("", (), f"holds no kind: SLO document ({OPENSLO_VERSION}); sloguard needs at least one")
    specs: list[SloSpec] = []
    for obj in slos:
        draft = SloReader(stream, obj).read()
        if draft.ok and (spec := _validated(draft, problems)) is not None:
            specs.append(spec)
    # An SLI or DataSource shared by two SLOs is refused once, not once per SLO.
    problems.lines = list(dict.fromkeys(problems.lines))
    problems.raise_if_any()
    return Config(slos=tuple(specs))


def _validated(draft: Draft, problems: Problems) -> SloSpec | None:
    """The draft through the SLO file's schema, checks and mapping; problems at their OpenSLO fields."""
    try:
        model = SloModel.model_validate(draft.raw)
    except ValidationError as exc:
        for e in exc.errors():
            if e["type"] == "too_short" and e["input"]:
                continue  # as `Problems.add_validation`: the item's own error is the one to report
            add(problems, draft.origin(tuple(e["loc"])), phrase(e, SloModel))
        return None
    before = len(problems.lines)

    def report(loc: Loc, message: str) -> None:
        add(problems, draft.origin(loc), message)

    spec = mapping.slo(model, report)
    _check_thresholds(draft, spec, report)
    return spec if len(problems.lines) == before else None


def _check_thresholds(draft: Draft, spec: SloSpec, report: Report) -> None:
    """A tier given as ``sloguard/budget-percent`` keeps its condition's threshold, which must be the burn
    rate that budget makes over the SLO's period, as `writer` writes it (6 significant digits)."""
    for i, threshold in draft.thresholds.items():
        tier = spec.tiers[i]
        expected = number(tier.factor)
        if exact(threshold) != Fraction(expected.lstrip("~")):
            report(
                ("alerts", "tiers", i, "factor"),
                f"must be {expected.lstrip('~')}, the burn rate of sloguard/budget-percent "
                f"{number(tier.budget_percent or Fraction(0))} over {format_duration(tier.long_window)} "
                f"of {spec.period.describe()} (got {show(threshold)})",
            )
