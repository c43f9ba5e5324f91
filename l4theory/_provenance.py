"""Provenance of results: git revision (with a dirty flag), package versions, file hashes.

One place for what every result file records (``l4theory sweep``, ``python -m validation
conversion``, the validation studies and the figure cache), so that the records agree.
Nothing here raises when git is missing or the code is not in a repository: the revision
is then ``None``.
"""

from __future__ import annotations

import hashlib
import importlib
import platform
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["CODE_PATHS", "file_sha256", "git_revision", "record", "versions"]

#: Folders (relative to the repository root) whose local changes mark a revision dirty:
#: the code that produces results.
CODE_PATHS = ("l4theory", "validation", "figures")

_PACKAGES = ("numpy", "scipy", "numba")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_revision(path=None, paths=CODE_PATHS) -> str | None:
    """``HEAD`` of the repository holding ``path``, with ``-dirty`` for local changes.

    Parameters
    ----------
    path : path-like, optional
        A file or folder inside the repository (default: this package). Git runs in that
        folder, so the answer does not depend on the working directory.
    paths : sequence of str
        Pathspecs relative to the repository root whose changes (modified, staged or
        untracked files) make the revision ``<sha>-dirty``; empty = the whole work tree.

    Returns
    -------
    str or None
        ``"<40-hex sha>"`` or ``"<sha>-dirty"``; None when git or the repository is missing.
    """
    p = Path(path if path is not None else __file__).resolve()
    cwd = p if p.is_dir() else p.parent
    top = _git(["rev-parse", "--show-toplevel"], cwd) if cwd.is_dir() else None
    if not top:
        return None
    rev = _git(["rev-parse", "HEAD"], Path(top))
    if not rev:
        return None
    status = _git(["status", "--porcelain", "--", *paths], Path(top))
    return rev + ("-dirty" if status else "")


def versions(extra=()) -> dict:
    """Python, platform and package versions (and Numba's thread count).

    Parameters
    ----------
    extra : sequence of str
        More package names to report (``"matplotlib"``, ``"torch"``...); one that is not
        installed is reported as None.

    Returns
    -------
    dict
        ``python``, ``platform``, ``l4theory``, ``numpy``, ``scipy``, ``numba``,
        ``numba_threads`` and one entry per ``extra`` package.
    """
    import l4theory

    out = {"python": sys.version.split()[0], "platform": platform.platform(),
           "l4theory": l4theory.__version__}
    for name in (*_PACKAGES, *extra):
        try:
            out[name] = importlib.import_module(name).__version__
        except ImportError:
            out[name] = None
    import numba

    out["numba_threads"] = numba.get_num_threads()
    return out


def file_sha256(path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record(tool: str, *, files=(), path=None, extra=()) -> dict:
    """A provenance record: tool, date, git revision, versions, sha256 of input files.

    Parameters
    ----------
    tool : str
        The command that made the result (``"l4theory sweep"``).
    files : sequence of path-like
        Input files (models, configs) to hash; recorded as ``{name: sha256}``.
    path : path-like, optional
        Where to look for the repository (see :func:`git_revision`).
    extra : sequence of str
        More packages for :func:`versions`.

    Returns
    -------
    dict
        ``tool``, ``date_utc``, ``git_revision``, ``versions``, ``files``.
    """
    return {"tool": tool, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "git_revision": git_revision(path), "versions": versions(extra),
            "files": {Path(f).name: file_sha256(f) for f in files}}
