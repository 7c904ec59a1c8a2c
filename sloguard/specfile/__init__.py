"""The SLO file: a versioned YAML schema (``apiVersion: sloguard/v1``), validated and mapped onto `core.spec`.

The file schema is not the domain model: pydantic models describe what users write (percentages, ``30d``,
``{calendar: month}``, ``5xx``), and :func:`parse_config` maps them onto the plain dataclasses of
:mod:`sloguard.core.spec` (ratios, seconds, inclusive status ranges). pydantic lives only in this package.

One job per module, in the order a file goes through them:

- `loader`: YAML text -> data, decimals kept exact (``99.95`` never passes through ``float``), duplicate
  keys refused;
- `validators` and `schema`: the pydantic models of the file, field by field (first pass);
- `checks`: the rules that span fields (second pass);
- `tables`: the default alert tier tables (package data, ``sloguard/data/google-*.yaml``);
- `mapping`: validated models -> `core.spec`;
- `parser`: the two passes over a whole file, every problem reported at once;
- `errors`: :class:`SpecError` and its lines, each naming the file, the SLO and the field;
- `summary`: :func:`describe`, the human summary printed by ``sloguard check``.
"""

from sloguard.specfile.errors import SpecError
from sloguard.specfile.mapping import default_tiers
from sloguard.specfile.parser import load_config, parse_config
from sloguard.specfile.schema import API_VERSION
from sloguard.specfile.summary import describe

__all__ = ["API_VERSION", "SpecError", "default_tiers", "describe", "load_config", "parse_config"]
