"""Whether a YAML stream is OpenSLO, without importing the OpenSLO models.

`sloguard.specfile.parser` asks this of every SLO file; the pydantic models of the v1 kinds cost tens of
milliseconds of start-up (``sloguard replay``, ``check``) that a ``sloguard/v1`` file never needs, so
they are imported only once the answer is yes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def items(documents: list[Any]) -> Iterator[tuple[str, Any]]:
    """Each object with its label's start: ``document 2`` or ``document 1, item 3``."""
    for i, doc in enumerate(documents, 1):
        if doc is None:
            continue  # an empty document (a trailing ---) holds nothing
        if isinstance(doc, list):
            for j, item in enumerate(doc, 1):
                yield f"document {i}, item {j}", item
        else:
            yield f"document {i}", doc


def api_versions(documents: list[Any]) -> set[str]:
    """The apiVersion of every object in the stream that has a string one."""
    return {
        v
        for _, item in items(documents)
        if isinstance(item, dict) and isinstance(v := item.get("apiVersion"), str)
    }


def is_openslo(documents: list[Any]) -> bool:
    """Whether a YAML stream is meant as OpenSLO: some object's apiVersion is ``openslo/...``."""
    return any(v.startswith("openslo/") for v in api_versions(documents))
