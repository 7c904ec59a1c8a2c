"""SLO file texts for the specfile tests, and the assertions every refusal test shares.

`one_slo` writes a file with a valid SLO and, second, `BROKEN_SLO` changed by some fields, so a test
also proves that a broken SLO is named (``slos[1] (broken)``) and does not hide behind a valid one.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from sloguard.core.spec import DAY, HOUR, MINUTE, Severity
from sloguard.specfile import SpecError, parse_config

ROOT = Path(__file__).resolve().parents[3]
SPECS = ROOT / "tests" / "testdata" / "specs"
EXAMPLE = ROOT / "config" / "slos.example.yaml"
SOURCE = "config/slos.yaml"

FACTORS_30D = [Fraction("14.4"), Fraction(6), Fraction(3), Fraction(1)]
FACTORS_28D = [Fraction("13.44"), Fraction("5.6"), Fraction("2.8"), Fraction(28, 30)]
DEFAULT_WINDOWS = [(HOUR, 5 * MINUTE), (6 * HOUR, 30 * MINUTE), (DAY, 2 * HOUR), (3 * DAY, 6 * HOUR)]
DEFAULT_SEVERITIES = [Severity.PAGE, Severity.PAGE, Severity.TICKET, Severity.TICKET]

GOOD_SLO = {
    "name": "ok",
    "service": "checkout",
    "objective": "99.9",
    "sli": "{type: availability}",
    "window": "30d",
}
BROKEN_SLO = {**GOOD_SLO, "name": "broken"}


def slo_yaml(fields: Mapping[str, str | None]) -> str:
    """One list item of `slos:`; values are YAML text, None leaves the key out."""
    lines = [f"{key}: {value}" for key, value in fields.items() if value is not None]
    return "  - " + "\n    ".join(lines) + "\n"


def spec_text(*slos: Mapping[str, str | None], tail: str = "") -> str:
    return "apiVersion: sloguard/v1\nslos:\n" + "".join(slo_yaml(s) for s in slos) + tail


def one_slo(**fields: str | None) -> str:
    """A file with a valid SLO and, second, `BROKEN_SLO` changed by ``fields``."""
    return spec_text(GOOD_SLO, {**BROKEN_SLO, **fields})


def problems(text: str) -> tuple[str, ...]:
    with pytest.raises(SpecError) as info:
        parse_config(text, SOURCE)
    return info.value.problems


def assert_refused_slo(fields: dict[str, str | None], expected: str) -> None:
    """`one_slo(**fields)` is refused with a line naming the file, the broken SLO and ``expected``."""
    name = yaml.safe_load(fields.get("name", "broken") or "null")
    label = f"slos[1] ({name})" if isinstance(name, str) and name else "slos[1]"
    lines = problems(one_slo(**fields))
    assert any(line.startswith(f"{SOURCE}: {label}: {expected}") for line in lines), lines


def assert_refused_file(text: str, expected: list[str]) -> None:
    """``text`` is refused with exactly the ``expected`` lines (prefixes after the file name), in order."""
    lines = problems(text)
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(f"{SOURCE}: {start}"), lines
