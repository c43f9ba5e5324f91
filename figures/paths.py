"""Filesystem locations of the figures package, derived from this file (never the working directory)."""

from __future__ import annotations

from pathlib import Path

#: Repository root (the folder holding ``pyproject.toml``).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Git-ignored results folder of the project.
RESULTS_DIR = REPO_ROOT / "results"
#: Where the figures (PNG, PDF, caption text) are written.
FIGURES_DIR = RESULTS_DIR / "figures"
#: Cached figure data (``<name>_<mode>.npz`` + ``.json`` provenance).
DATA_DIR = FIGURES_DIR / "data"
#: The one-page report written by ``python -m figures report``.
REPORT_PATH = RESULTS_DIR / "REPORT.md"
#: Summary table written by ``python -m validation run all --quick``.
VALIDATION_SUMMARY = RESULTS_DIR / "validation" / "summary_quick.md"
