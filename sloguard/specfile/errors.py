"""Error text for SLO files: one line per problem, naming the file, the SLO and the field.

``slos.yaml: slos[1] (checkout-latency): sli.threshold_ms: must be greater than 0``: :class:`Problems`
collects such lines (from pydantic's errors and from the checks that span fields) and raises them together
as one :class:`SpecError`, so a user fixes every problem in one pass. Messages read as short phrases
("must be ...", "is required"), the value as the user wrote it in parentheses.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from fractions import Fraction
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

#: A field location inside a component: ``("alerts", "tiers", 0, "short")``.
Loc = tuple[str | int, ...]
#: Receives one problem: where (relative to the component being checked) and what.
Report = Callable[[Loc, str], None]

#: Prefix of union tags; pydantic puts the tag into error locations and `format_loc` drops it.
TAG = "~"


class SpecError(ValueError):
    """An SLO file that cannot be used: unreadable, not YAML, or not a valid ``sloguard/v1`` file.

    ``str(error)`` is one line per problem, each starting with the file name; ``problems`` holds the same
    lines as a tuple.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def show(value: Any) -> str:
    """A value as the user wrote it, short: ``'abc'``, ``99.9``, ``null``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def number(value: Fraction, digits: int = 6) -> str:
    """Exact decimal if it has one within ``digits`` significant digits, else ``~`` and the rounding."""
    rounded = Context(prec=digits).divide(Decimal(value.numerator), Decimal(value.denominator))
    text = format(rounded.normalize(), "f")
    return text if Fraction(rounded) == value else "~" + text


def refusal(kind: str, message: str, value: Any) -> PydanticCustomError:
    """A validator's error that reads as-is: ``message (got <value>)``."""
    # The message is a template for pydantic-core; braces in user input must not be read as fields.
    return PydanticCustomError(kind, message + " (got {got})", {"got": show(value)})


def format_loc(loc: Loc) -> str:
    """``("alerts", "tiers", 0, "short")`` -> ``alerts.tiers[0].short`` (union tags dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(TAG):
            out += f".{part}" if out else part
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The schema models an annotation can hold (through Annotated, unions, lists and tuples)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _allowed_keys(root: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the schema allows in the mapping at ``loc`` (for "did you mean" hints)."""
    models = [root]
    for part in loc:
        if isinstance(part, int) or part.startswith(TAG):
            continue
        models = [
            m
            for model in models
            for name, info in model.model_fields.items()
            if (info.alias or name) == part
            for m in _models_in(info.annotation)
        ]
    return sorted({info.alias or name for model in models for name, info in model.model_fields.items()})


def phrase(error: ErrorDetails, root: type[BaseModel]) -> str:
    """pydantic's error as a short "must ..." phrase."""
    kind, ctx, value = error["type"], error.get("ctx", {}), error["input"]
    got = f" (got {show(value)})"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        allowed = _allowed_keys(root, error["loc"][:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        return (
            f"unknown field; did you mean {close[0]!r}?"
            if close
            else f"unknown field; allowed: {', '.join(allowed)}"
        )
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping" + got
    if kind in ("list_type", "tuple_type"):
        return "must be a list" + got
    if kind in ("string_type", "str_type"):
        return "must be a string" + got
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number" + got
    if kind == "literal_error":
        return f"must be {ctx['expected']}" + got
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}" + got
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}" + got
    if kind == "too_short":
        return "must not be empty"
    msg = error["msg"]  # our PydanticCustomErrors read as-is
    return msg[0].lower() + msg[1:] if msg[:1].isupper() else msg


class Problems:
    """Collects ``file: where: field: message`` lines; raises them together as one SpecError."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, where: str, loc: Loc, message: str) -> None:
        parts = [self.source, where, format_loc(loc), message]
        self.lines.append(": ".join(p for p in parts if p))

    def add_validation(
        self, where: str, error: ValidationError, root: type[BaseModel], prefix: Loc = ()
    ) -> None:
        for e in error.errors():
            if e["type"] == "too_short" and e["input"]:
                # pydantic counts items after validation: a list whose only item is invalid is also
                # "too short". The item's own error is the one to report.
                continue
            loc = tuple(e["loc"])
            if e["type"] == "invalid_key":
                # The key itself is the last part of loc, and it is not a name: report it on the mapping.
                key = show(e["input"])
                hint = "; quote it (YAML reads yes/no/on/off as booleans)" if key in ("true", "false") else ""
                self.add(where, prefix + loc[:-1], f"key {key} is not a string{hint}")
                continue
            self.add(where, prefix + loc, phrase(e, root))

    def raise_if_any(self) -> None:
        if self.lines:
            raise SpecError(self.lines)


@dataclass(frozen=True, slots=True)
class Item:
    """One item of a list section, with its label (``slas[2] (api-sla)``) and a `report` that names it."""

    index: int
    raw: Any
    label: str
    report: Report


def named_items(raw: Sequence[Any], section: str, noun: str, problems: Problems) -> Iterator[Item]:
    """Each item of the list section ``section`` (``slos``, ``slas``, ``exclusions``) as an `Item`; a name
    already used by an earlier item is reported on the later one (``duplicate SLA name; slas[0] already
    uses it``), before the item itself is validated."""
    first_use: dict[str, int] = {}
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        label = f"{section}[{i}] ({name})" if isinstance(name, str) and name else f"{section}[{i}]"

        def report(loc: Loc, message: str, label: str = label) -> None:
            problems.add(label, loc, message)

        if isinstance(name, str):
            if name in first_use:
                report(("name",), f"duplicate {noun} name; {section}[{first_use[name]}] already uses it")
            first_use.setdefault(name, i)
        yield Item(i, item, label, report)


_M = TypeVar("_M", bound=BaseModel)


def validated(model: type[_M], item: Item, problems: Problems) -> _M | None:
    """``item`` as ``model``, or None with its problems added under the item's label."""
    try:
        return model.model_validate(item.raw)
    except ValidationError as exc:
        problems.add_validation(item.label, exc, model)
        return None
