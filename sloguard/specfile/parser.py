"""An SLO file -> :class:`~sloguard.core.spec.Config`: read, load the YAML, validate, map.

Validation runs in two passes and reports every problem at once, one line each, naming the file, the
SLO and the field (``slos.yaml: slos[1] (checkout-latency): sli.threshold_ms: must be greater than 0``):

1. structure, per component (top level, each SLO, the latency section) with the pydantic `schema`: types,
   ranges, unknown keys;
2. rules that span fields (`checks`), for every component that passed the first pass, while `mapping`
   maps it onto `core.spec`.

Each component is validated on its own so that a broken SLO does not hide the problems of the others.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sloguard.core.spec import Config, LatencySpec, SloSpec
from sloguard.specfile import mapping
from sloguard.specfile.errors import Problems, SpecError, named_items, show, validated
from sloguard.specfile.exclusions import parse_exclusions
from sloguard.specfile.inputs import parse_input
from sloguard.specfile.loader import MAX_FILE_BYTES, load_documents, too_big
from sloguard.specfile.openslo.detect import is_openslo
from sloguard.specfile.schema import API_VERSION, FileModel, LatencyModel, SloModel
from sloguard.specfile.slas import parse_slas


def parse_config(text: str, source: str = "<string>") -> Config:
    """Parse the text of a ``sloguard/v1`` SLO file, or of an OpenSLO v1 stream (`openslo`), into a
    :class:`~sloguard.core.spec.Config`.

    ``source`` names the file in error messages. Raises :class:`SpecError` listing every problem.
    """
    documents = load_documents(text, source)
    if is_openslo(documents):
        # Imported only now: the OpenSLO models are start-up a sloguard/v1 file never needs.
        from sloguard.specfile.openslo.parser import parse_documents

        return parse_documents(documents, source)
    if len(documents) > 1:
        raise SpecError(
            [
                f"{source}: holds {len(documents)} YAML documents (---); a {API_VERSION} SLO file is one, "
                "and a stream of documents must be OpenSLO (apiVersion: openslo/v1)"
            ]
        )
    data: Any = documents[0] if documents else None
    problems = Problems(source)
    _check_document(data, problems)
    try:
        FileModel.model_validate(data)
    except ValidationError as exc:
        problems.add_validation("", exc, FileModel)
    raw_slos = data.get("slos")
    slos = _slos(raw_slos if isinstance(raw_slos, list) else [], problems)
    latency = _latency(data["latency"], problems) if data.get("latency") is not None else None
    inputs = parse_input(data["input"], problems) if data.get("input") is not None else None
    slas = parse_slas(data["slas"], slos, problems) if data.get("slas") is not None else ()
    raw_exclusions = data.get("exclusions")
    exclusions = parse_exclusions(raw_exclusions, slos, problems) if raw_exclusions is not None else ()
    problems.raise_if_any()
    return Config(slos=slos, latency=latency, input=inputs, slas=slas, exclusions=exclusions)


def _check_document(data: Any, problems: Problems) -> None:
    """Raise at once unless ``data`` is a mapping of this schema version: nothing else is worth saying."""
    if data is None:
        problems.add("", (), f"the file is empty; expected apiVersion: {API_VERSION} and a list of slos")
        problems.raise_if_any()
    if not isinstance(data, dict):
        problems.add("", (), f"must be a mapping with apiVersion: {API_VERSION} and slos (got {show(data)})")
        problems.raise_if_any()
    version = data.get("apiVersion")
    if version is not None and version != API_VERSION:
        # Another version's fields would only produce noise: stop at the version.
        problems.add(
            "", ("apiVersion",), f"unsupported version {show(version)}; this sloguard reads {API_VERSION}"
        )
        problems.raise_if_any()


def _slos(raw_slos: list[Any], problems: Problems) -> tuple[SloSpec, ...]:
    """Each SLO validated and mapped on its own (``slos[i] (name)`` in its problems); names must be unique."""
    slos: list[SloSpec] = []
    for item in named_items(raw_slos, "slos", "SLO", problems):
        if (model := validated(SloModel, item, problems)) is not None:
            slos.append(mapping.slo(model, item.report))
    return tuple(slos)


def _latency(raw: Any, problems: Problems) -> LatencySpec | None:
    """The ``latency:`` section validated and mapped (``latency.`` in its problems); None if it is invalid."""
    try:
        model = LatencyModel.model_validate(raw)
    except ValidationError as exc:
        problems.add_validation("", exc, LatencyModel, prefix=("latency",))
        return None
    return mapping.latency(model, lambda loc, msg: problems.add("", ("latency", *loc), msg))


def load_config(path: str | Path) -> Config:
    """Read and parse an SLO file; errors name the file as given (e.g. ``config/slos.yaml``)."""
    source = str(path)
    try:
        with Path(path).open("rb") as f:
            # Never more than the limit and one byte: a 50 MB file (or a FIFO) is refused unread.
            data = f.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                raise too_big(max(os.fstat(f.fileno()).st_size, len(data)), source)
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise SpecError([f"{source}: no such file"]) from None
    except IsADirectoryError:
        raise SpecError([f"{source}: is a directory, not an SLO file"]) from None
    except OSError as exc:
        raise SpecError([f"{source}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([f"{source}: not UTF-8 text (byte {exc.start})"]) from None
    return parse_config(text, source)
