"""YAML text -> plain data, with decimal numbers kept exact and duplicate keys refused.

Numbers that matter exactly (objective, budget_percent, factor) never pass through ``float``: decimal
scalars load as :class:`~decimal.Decimal`, which converts to :class:`~fractions.Fraction` without rounding
(``99.95`` -> ``Fraction(1999, 20)``).

What no SLO file needs is refused before it can cost anything: text over :data:`MAX_FILE_BYTES` (before
parsing), nesting deeper than :data:`MAX_DEPTH` (PyYAML composes recursively and would die with a
RecursionError), aliases that refer to a value containing them, and alias bombs ("billion laughs": nine
aliases of nine aliases of ...), whose expanded size is measured on the node graph without building it.
A tab used for indentation gets a sentence instead of PyYAML's "cannot start any token".
"""

from __future__ import annotations

from collections.abc import Hashable
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from sloguard.specfile.errors import SpecError

#: Largest SLO file read, in bytes (UTF-8). A real file is a few KiB (a thousand SLOs are ~600 KiB) and
#: parses at ~0.3 MiB/s, so a larger file is a mistake (a log, a dump) that would hang `sloguard check`.
MAX_FILE_BYTES = 1024 * 1024
#: Deepest nesting of mappings and lists, aliases expanded; an SLO file needs about 6.
MAX_DEPTH = 64
#: Most values (scalars, lists and mappings) a document may hold once its aliases are expanded. No file
#: within MAX_FILE_BYTES reaches it without aliases (a value takes at least 2 bytes), so only an alias
#: bomb is refused.
MAX_VALUES = 1_000_000


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

    #: How deep compose_node is (PyYAML composes nested nodes recursively).
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        # Refuse depth before Python's recursion limit does (a RecursionError is a traceback).
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            _measure(node)
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _measure(root: yaml.Node) -> None:
    """Refuse a node graph that is cyclic, or too deep or too big once its aliases are expanded.

    An alias is the same node object in two places, so sizes and depths are computed once per node
    (post-order, iteratively): a billion laughs costs a few dozen steps here, not a billion.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            children = _children(node)
            size[key] = min(MAX_VALUES + 1, 1 + sum(size[id(c)] for c in children))
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            on_path.discard(key)
            problem = (
                f"holds more than {MAX_VALUES:,} values once its aliases (*name) are expanded"
                if size[key] > MAX_VALUES
                else f"nested more than {MAX_DEPTH} levels deep once its aliases (*name) are expanded"
                if depth[key] > MAX_DEPTH
                else None
            )
            if problem:
                raise yaml.composer.ComposerError(None, None, "this value " + problem, node.start_mark)
        elif key in on_path:
            raise yaml.composer.ComposerError(
                None, None, "an alias (*name) refers to a value that contains it", node.start_mark
            )
        elif key not in size:
            on_path.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node))


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


def too_big(size: int, source: str) -> SpecError:
    """The refusal of a file over :data:`MAX_FILE_BYTES`."""
    return SpecError(
        [
            f"{source}: the file is {size / 1024 / 1024:.1f} MiB; SLO files are limited to "
            f"{MAX_FILE_BYTES // 1024 // 1024} MiB (is it the right file?)"
        ]
    )


def load_yaml(text: str, source: str) -> Any:
    """The data of a YAML document; if it is not YAML, a :class:`SpecError` naming source, line, column."""
    return _load(text, source, stream=False)


def load_documents(text: str, source: str) -> list[Any]:
    """The data of each document of a YAML stream (``---`` between them), each checked as `load_yaml`'s."""
    documents: list[Any] = _load(text, source, stream=True)
    return documents


def _load(text: str, source: str, stream: bool) -> Any:
    size = len(text.encode("utf-8", "replace"))  # ~10 ms for 50 MB: far less than parsing it
    if size > MAX_FILE_BYTES:
        raise too_big(size, source)
    try:
        # load_all is lazy: list() so its errors are raised (and worded) here.
        return list(yaml.load_all(text, Loader=_Loader)) if stream else yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        if mark is not None and exc.problem is not None and "'\\t'" in exc.problem:
            # PyYAML: "found character '\t' that cannot start any token".
            raise SpecError([f"{source}: line {mark.line + 1}: {_tab(text, mark)}"]) from None
        if exc.problem and exc.context:
            what += f" ({exc.context}"
            if exc.context_mark is not None and exc.context_mark is not mark:
                what += f" at line {exc.context_mark.line + 1}"
            what += ")"
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise SpecError([f"{source}: {where}{what}"]) from None
    except yaml.YAMLError as exc:  # e.g. ReaderError: control characters in the text
        raise SpecError([f"{source}: {exc}"]) from None


def _tab(text: str, mark: yaml.Mark) -> str:
    """Why a tab at ``mark`` is an error, in words: indentation, or a separator after a key."""
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    if not line[: mark.column].strip(" \t-"):
        return "a tab is used for indentation; YAML indents with spaces"
    return f"a tab is used at column {mark.column + 1}; YAML separates values with spaces, never tabs"
