"""Run a kept Brian2 ``cpp_standalone`` binary as a subprocess (timed beside our engines).

The binaries are compiled once, in Brian2's own venv, by
``benchmarks/.venv-brian2/bin/python benchmarks/brian2_w1w2.py --build`` into
``benchmarks/.brian2-build/<case>/`` (git-ignored). Each call runs ``./main`` there; the
binary writes its own simulation time (``Network::_last_run_time``, process start and
file output excluded) to ``results/last_run_info.txt``, which is recorded next to the wall
time of the whole subprocess.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

BUILD = Path(__file__).resolve().parent / ".brian2-build"
__all__ = ["BUILD", "Brian2Binary", "available"]


class Brian2Binary:
    """Callable running one kept standalone binary; ``run_s`` collects its own run times."""

    def __init__(self, case: str):
        self.dir = BUILD / case
        self.meta = json.loads((self.dir / "case.json").read_text())
        self.run_s: list[float] = []

    def __call__(self) -> None:
        r = subprocess.run(["./main"], cwd=self.dir, capture_output=True, text=True,
                           timeout=3600)
        if r.returncode != 0:
            raise RuntimeError(f"Brian2 binary {self.dir} failed: {r.stderr[-1000:]}")
        info = (self.dir / "results" / "last_run_info.txt").read_text().split()
        self.run_s.append(float(info[0]))


def available(case: str) -> Brian2Binary | None:
    """The kept binary of ``case`` (e.g. ``"w1_cpp_standalone"``), or None if not built."""
    d = BUILD / case
    if not ((d / "main").exists() and (d / "case.json").exists()):
        return None
    return Brian2Binary(case)
