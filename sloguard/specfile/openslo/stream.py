"""An OpenSLO stream -> its objects, each validated on its own and named by where it is.

A file is a YAML stream of documents (``---`` between them); a document holds one object, or a list of
objects (the form of the specification's own ``examples/``). Each object is named in problems as
``document 3 (SLO checkout-availability)``, or ``document 1, item 2 (SLI ...)`` in a list: the document's
position in the stream (from 1, as an editor counts them), its kind and its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from sloguard.specfile.errors import Loc, Problems, show
from sloguard.specfile.openslo.detect import items
from sloguard.specfile.openslo.model import KINDS, OPENSLO_VERSION, SPECS, Envelope, Metadata
from sloguard.specfile.schema import API_VERSION


@dataclass(frozen=True, slots=True)
class Place:
    """Where a value is: the object's label (``document 3 (SLO name)``) and the field inside it."""

    where: str
    loc: Loc = ()

    def at(self, *more: str | int) -> Place:
        return Place(self.where, self.loc + more)


@dataclass(frozen=True, slots=True)
class Obj:
    """One validated top-level object: its kind, name, metadata and the kind's spec model."""

    where: str
    kind: str
    name: str
    metadata: Metadata
    spec: Any

    @property
    def place(self) -> Place:
        return Place(self.where)


def add(problems: Problems, place: Place, message: str) -> None:
    """One problem at ``place``."""
    problems.add(place.where, place.loc, message)


def validate(model: type[BaseModel], data: Any, place: Place, problems: Problems) -> Any:
    """``data`` as ``model`` (e.g. an inline AlertCondition), or None with its problems at ``place``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.add_validation(place.where, exc, model, prefix=place.loc)
        return None


def _label(start: str, item: dict[str, Any]) -> str:
    kind, meta = item.get("kind"), item.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    shown = " ".join(str(x) for x in (kind, name) if isinstance(x, str) and x)
    return f"{start} ({shown})" if shown else start


def _version_problem(version: Any) -> str | None:
    """Why an object's apiVersion is refused; None for openslo/v1."""
    if version == OPENSLO_VERSION:
        return None
    if version == API_VERSION:
        return (
            f"{API_VERSION} cannot share a stream with OpenSLO documents; give the sloguard SLO file its "
            "own file"
        )
    if isinstance(version, str) and version.startswith("openslo/"):
        return f"unsupported version {show(version)}; this sloguard reads {OPENSLO_VERSION}"
    return f"must be {OPENSLO_VERSION} (got {show(version)})"


class Stream:
    """The objects of a stream by kind and name; problems (one per broken object) go to ``problems``."""

    def __init__(self, documents: list[Any], problems: Problems) -> None:
        self.problems = problems
        self.objects: list[Obj] = []
        self._by_name: dict[tuple[str, str], Obj] = {}
        #: (kind, name) of the objects refused: a reference to one is not a second problem.
        self._refused: set[tuple[Any, Any]] = set()
        for start, item in items(documents):
            if not self._read(start, item) and isinstance(item, dict):
                meta = item.get("metadata")
                self._refused.add((item.get("kind"), meta.get("name") if isinstance(meta, dict) else None))

    def _read(self, start: str, item: Any) -> bool:
        """Register one object; whether it is valid (else its problems are reported)."""
        if not isinstance(item, dict):
            self.problems.add(
                start, (), f"must be a mapping with apiVersion: {OPENSLO_VERSION}, kind, metadata and spec"
            )
            return False
        where = _label(start, item)
        if why := _version_problem(item.get("apiVersion")):
            self.problems.add(where, ("apiVersion",), why)
            return False
        kind = item.get("kind")
        if kind not in KINDS:
            self.problems.add(
                where, ("kind",), f"{show(kind)} is not supported; sloguard reads {', '.join(KINDS)}"
            )
            return False
        envelope = validate(Envelope, item, Place(where), self.problems)
        if envelope is None:
            return False
        spec = validate(SPECS[kind], envelope.spec, Place(where, ("spec",)), self.problems)
        if spec is None:
            return False
        obj = Obj(where, kind, envelope.metadata.name, envelope.metadata, spec)
        first = self._by_name.setdefault((kind, obj.name), obj)
        if first is not obj:
            self.problems.add(where, ("metadata", "name"), f"{first.where} already has this name")
            return True  # the first of the name stands
        self.objects.append(obj)
        return True

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o.kind == kind]

    def find(self, kind: str, name: Any, place: Place) -> Obj | None:
        """The ``kind`` object named ``name``; None, and a problem at ``place``, if there is none."""
        if isinstance(name, str) and (obj := self._by_name.get((kind, name))):
            return obj
        if (kind, name) in self._refused:
            return None  # its own problems are reported
        names = [o.name for o in self.of_kind(kind)]
        known = f" ({kind} names: {', '.join(names)})" if names else ""
        add(self.problems, place, f"no {kind} named {show(name)} in this file{known}")
        return None
