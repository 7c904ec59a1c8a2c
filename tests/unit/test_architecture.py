"""The architecture, enforced: a pure core, and one home per outside library.

`make lint` enforces the core's banned imports through `sloguard/core/ruff.toml`; these tests prove each ban
still bites (a ruff upgrade or a moved config file would otherwise disable them silently) and check the import
graph the linter cannot express: which modules may import which outside libraries.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sloguard"
CORE = PACKAGE / "core"

#: What the pure core may import: the standard library's pure parts, numpy, hdrh, and itself.
CORE_ALLOWED = {
    "__future__",
    "collections",
    "dataclasses",
    "datetime",
    "enum",
    "fnmatch",
    "fractions",
    "functools",
    "itertools",
    "math",
    "typing",
    "zoneinfo",
    "numpy",
    "hdrh",
    "sloguard",
}

#: Each outside library has one home (a module or a package directory, relative to sloguard/).
HOMES = {
    "aiokafka": ("ingest/kafka",),  # ingest/kafka.py and its kafka_*.py siblings
    "prometheus_client": ("export/",),
    "structlog": ("logs.py",),
    "pydantic": ("settings.py", "specfile"),
    "pydantic_settings": ("settings.py",),
    "hdrh": ("core/latency.py",),
    "dateutil": ("specfile/exclusions.py",),
    "isal": ("deflate.py",),
}

#: A snippet per banned API of the core, each of which must fail the linter inside sloguard/core/.
BANNED_SNIPPETS = {
    "asyncio": "import asyncio\n",
    "socket": "from socket import socket\n",
    "os": "import os.path\n",
    "threading": "import threading\n",
    "subprocess": "import subprocess\n",
    "pathlib": "from pathlib import Path\n",
    "logging": "import logging\n",
    "time.time": "from time import time\n",
    "datetime.now": "import datetime as dt\nx = dt.datetime.now(dt.UTC)\n",
    "datetime.utcnow": "from datetime import datetime\nx = datetime.utcnow()\n",
    "date.today": "import datetime\nx = datetime.date.today()\n",
    "aiokafka": "from aiokafka import AIOKafkaConsumer\n",
    "prometheus_client": "import prometheus_client\n",
    "pydantic": "from pydantic import BaseModel\n",
    "msgspec": "import msgspec.json\n",
    "structlog": "import structlog\n",
    "yaml": "import yaml\n",
    "clock": "from sloguard.clock import SystemClock\n",
}


def _imports(path: Path) -> set[str]:
    """Top-level package names a module imports (absolute imports only; the package uses no relative ones)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _sloguard_imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sloguard"):
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names if a.name.startswith("sloguard"))
    return modules


def _ruff() -> str:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert found, "ruff is a dev dependency: install the project with .[dev]"
    return found


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_pure_modules(path: Path) -> None:
    assert _imports(path) <= CORE_ALLOWED, f"{path.name} imports {_imports(path) - CORE_ALLOWED}"
    outside = {m for m in _sloguard_imports(path) if not m.startswith(("sloguard.core", "sloguard._types"))}
    assert not outside, f"the core imports upward: {outside}"


@pytest.mark.parametrize("library", sorted(HOMES))
def test_each_outside_library_has_one_home(library: str) -> None:
    importers = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if library in _imports(p)}
    assert importers, f"nothing imports {library}: drop it from HOMES"
    strays = {m for m in importers if not m.startswith(HOMES[library])}
    assert not strays, f"{library} is imported outside its home {HOMES[library]}: {sorted(strays)}"


def _lint(snippet: str, where: Path) -> subprocess.CompletedProcess[str]:
    """Ruff's banned-api check on ``snippet`` as if it were the module ``where`` (its config applies)."""
    return subprocess.run(
        [_ruff(), "check", "--no-cache", "--select", "TID251", "--stdin-filename", str(where), "-"],
        input=snippet,
        capture_output=True,
        text=True,
        check=False,
        cwd=PACKAGE.parent,
    )


@pytest.mark.parametrize("snippet", list(BANNED_SNIPPETS.values()), ids=list(BANNED_SNIPPETS))
def test_core_ban_fails_the_linter(snippet: str) -> None:
    result = _lint(snippet, CORE / "_probe.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TID251" in result.stdout


def test_same_imports_pass_outside_the_core() -> None:
    result = _lint("import asyncio\nimport time\n", PACKAGE / "_probe.py")
    assert result.returncode == 0, result.stdout


def _subpackage(module: str) -> str:
    """``sloguard.scale.view`` -> ``scale``; a top-level module is its own subpackage."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _private_imports(source: str, module: str) -> list[str]:
    """``module:name`` for every private name (``_x``) ``source`` (the module ``module``) imports from another
    subpackage of sloguard: a seam between packages goes through public names, so that a change inside one
    cannot break another silently."""
    mine = _subpackage(module)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sloguard."):
            if _subpackage(node.module) == mine:
                continue
            found += [f"{node.module}:{a.name}" for a in node.names if a.name.startswith("_")]
    return found


def _module(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def test_no_private_names_across_packages() -> None:
    offenders = {
        _module(p): names
        for p in sorted(PACKAGE.rglob("*.py"))
        if (names := _private_imports(p.read_text(), _module(p)))
    }
    assert not offenders, f"private names imported across packages: {offenders}"


def test_private_import_check_bites() -> None:
    # What scale/view.py did before SloAggregate was public: flagged across packages, not within one.
    source = "from sloguard.core.aggregator import Aggregator, _SloState\n"
    assert _private_imports(source, "sloguard.scale.view") == ["sloguard.core.aggregator:_SloState"]
    assert _private_imports(source, "sloguard.core.snapshot") == []
    assert _private_imports("from sloguard.cli import _fail\n", "sloguard.report_sla.cli") == [
        "sloguard.cli:_fail"
    ]
