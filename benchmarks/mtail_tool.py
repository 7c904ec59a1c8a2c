"""mtail as the baseline: find (or, as root on Debian/Ubuntu, install) it, build its one-shot command
line, and read back its metrics to check that it counted every line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PROGS = Path(__file__).resolve().parent / "mtail"
INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "mtail"]


def find(install: bool = True) -> str | None:
    """The mtail binary; if missing and we are root with apt-get, try installing it once."""
    found = shutil.which("mtail")
    if found or not install:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"mtail not found; trying: {' '.join(INSTALL)}", file=sys.stderr)
        done = subprocess.run(
            INSTALL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
        )
        if done.returncode != 0:
            print(f"  install failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
        found = shutil.which("mtail")
    if not found:
        print(
            "mtail is not installed: skipping the baseline. Install it with\n"
            f"  sudo {' '.join(INSTALL)}   (Debian/Ubuntu; 3.0.0~rc50 in Debian 12)\n"
            "or download a release from https://github.com/google/mtail/releases and put it on PATH.",
            file=sys.stderr,
        )
    return found


def version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"


def argv(binary: str, log: Path, progs: Path = PROGS) -> list[str]:
    """Read ``log`` from start to EOF once, run the program, dump the metrics as JSON on stdout, exit.

    ``--port 0`` because mtail binds its HTTP port even in one-shot mode; ``--logtostderr`` keeps glog
    from writing files to /tmp.
    """
    return [
        binary,
        "--one_shot",
        "--one_shot_format=json",
        f"--progs={progs}",
        f"--logs={log}",
        "--logtostderr",
        "--emit_prog_label=false",
        "--address=127.0.0.1",
        "--port=0",
    ]


def counted(metrics_json: Path) -> tuple[int, int]:
    """(sum of ``requests_total``, sum of ``request_latency_ms`` counts) from a one-shot JSON dump."""
    metrics = json.loads(metrics_json.read_text())

    def total(name: str, value: str) -> int:
        return sum(int(lv["Value"][value]) for m in metrics.get(name, []) for lv in m.get("LabelValues", []))

    return total("requests_total", "Value"), total("request_latency_ms", "Count")
