"""Cache of figure data: ``<name>_<mode>.npz`` arrays plus ``<name>_<mode>.json`` provenance.

Re-plotting loads the cache; the data are recomputed only when the figure's config (which
includes its seed and a ``version`` bumped whenever ``compute`` changes) differs from the
cached one, or when ``force`` is set. Arrays are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .paths import REPO_ROOT

__all__ = ["git_revision", "load", "load_or_compute", "provenance", "versions"]


def git_revision() -> str:
    """``HEAD`` commit, with ``-dirty`` when the code that makes the data has local changes."""
    from l4theory._provenance import git_revision as rev

    return rev(REPO_ROOT, ("figures", "validation", "l4theory")) or "unknown"


def versions() -> dict:
    """Versions of the packages that produce the data."""
    from l4theory._provenance import versions as _versions

    return _versions(extra=("matplotlib",))


def _normalise(cfg) -> dict:
    """The config as it reads back from JSON (tuples become lists, etc.)."""
    return json.loads(json.dumps(cfg, sort_keys=True))


def provenance(name, mode, cfg, seconds) -> dict:
    """Provenance record of one computation."""
    return {"figure": name, "mode": mode, "seed": cfg.get("seed"), "config": _normalise(cfg),
            "git_revision": git_revision(), "versions": versions(), "seconds": seconds,
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _paths(data_dir, name, mode):
    data_dir = Path(data_dir)
    return data_dir / f"{name}_{mode}.npz", data_dir / f"{name}_{mode}.json"


def load(data_dir, name, mode):
    """Cached ``(data, provenance)`` or ``(None, None)`` when absent or unreadable."""
    npz, meta = _paths(data_dir, name, mode)
    if not (npz.is_file() and meta.is_file()):
        return None, None
    try:
        prov = json.loads(meta.read_text())
        with np.load(npz, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError, json.JSONDecodeError):
        return None, None
    return data, prov


def load_or_compute(name, mode, cfg, compute, data_dir, *, force=False):
    """Return ``(data, provenance, recomputed)`` for one figure.

    Parameters
    ----------
    name : str
        Figure name (``"fig01"`` ...).
    mode : {"quick", "full"}
        Config size (part of the cache file name).
    cfg : dict
        JSON-serialisable config; a change invalidates the cache.
    compute : callable
        ``compute(cfg) -> dict[str, ndarray]``.
    data_dir : path-like
        Folder of the cache files.
    force : bool
        Recompute even when the cache matches.
    """
    if not force:
        data, prov = load(data_dir, name, mode)
        if data is not None and prov.get("config") == _normalise(cfg):
            return data, prov, False
    t0 = time.perf_counter()
    data = {k: np.asarray(v) for k, v in compute(cfg).items()}
    for k, v in data.items():
        if v.dtype == object:
            raise TypeError(f"figure data {name}:{k} has dtype object; use plain arrays")
    prov = provenance(name, mode, cfg, time.perf_counter() - t0)
    npz, meta = _paths(data_dir, name, mode)
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz, **data)
    meta.write_text(json.dumps(prov, indent=1, default=str))
    return data, prov, True
