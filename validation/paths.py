"""Filesystem locations, derived from this file (never from the working directory)."""

from __future__ import annotations

from pathlib import Path

#: Repository root (the folder holding ``pyproject.toml``).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Study configurations (``<study>.toml`` with ``[quick]`` and ``[full]`` tables).
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
#: Git-ignored output folder of the validation studies.
RESULTS_DIR = REPO_ROOT / "results" / "validation"
