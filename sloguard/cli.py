"""Command line: `sloguard check`, `sloguard replay`, ..."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("sloguard: not yet", file=sys.stderr)
    return 2
