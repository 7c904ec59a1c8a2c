"""YAML text -> plain data, with decimal numbers kept exact and duplicate keys refused.

Numbers that matter exactly (objective, budget_percent, factor) never pass through ``float``: decimal
scalars load as :class:`~decimal.Decimal`, which converts to :class:`~fractions.Fraction` without rounding
(``99.95`` -> ``Fraction(1999, 20)``).
"""

from __future__ import annotations

from collections.abc import Hashable
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from sloguard.specfile.errors import SpecError


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps decimal numbers exact and refuses duplicate keys.

    PyYAML silently keeps the last of two equal keys; in a config file that is almost always a
    copy-paste mistake (two ``objective:`` lines), so it is an error here.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            # Merge keys (<<: *base) may legitimately be overridden by explicit keys: only compare
            # the keys written in this mapping.
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"duplicate key {key_node.value!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> Decimal | float:
    # Decimal(text) is exact, float(text) is not: 99.95 must stay 99.95 for the objective.
    text = loader.construct_scalar(node).replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if value.is_finite():
        return value
    # .inf, .nan and YAML 1.1 sexagesimal floats (1:30.5): let PyYAML decide; the validators refuse
    # non-finite values.
    return loader.construct_yaml_float(node)


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def load_yaml(text: str, source: str) -> Any:
    """The data of a YAML document; if it is not YAML, a :class:`SpecError` naming source, line, column."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            what += f" ({exc.context}"
            if exc.context_mark is not None and exc.context_mark is not mark:
                what += f" at line {exc.context_mark.line + 1}"
            what += ")"
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise SpecError([f"{source}: {where}{what}"]) from None
    except yaml.YAMLError as exc:  # e.g. ReaderError: control characters in the text
        raise SpecError([f"{source}: {exc}"]) from None
