"""The paper's Figures 1-5, regenerated from theory and simulation.

One module per figure (:mod:`figures.fig01` ... :mod:`figures.fig05`), each with
``CONFIGS`` (``quick``/``full``), ``compute(cfg) -> dict of arrays`` (cached with provenance
by :mod:`figures.cache`), ``plot(data) -> Figure``, ``caption(data)`` and ``summary(data)``
(one sentence with numbers from the data, used by :mod:`figures.report`).

Command line: ``python -m figures all [--quick] [--force]``, ``python -m figures fig05``,
``python -m figures list``, ``python -m figures report``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from . import cache
from .paths import DATA_DIR, FIGURES_DIR

__all__ = ["NAMES", "build", "get"]

NAMES = ("fig01", "fig02", "fig03", "fig04", "fig05")


def get(name):
    """The module of figure ``name`` (``"fig01"`` ... ``"fig05"``)."""
    if name not in NAMES:
        raise ValueError(f"unknown figure {name!r}; choose from {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")


def build(name, mode="full", *, force=False, out_dir=None, data_dir=None):
    """Compute (or load from cache) and render one figure.

    Parameters
    ----------
    name : str
        ``"fig01"`` ... ``"fig05"``.
    mode : {"quick", "full"}
        Config size.
    force : bool
        Recompute the data even if the cache matches the config.
    out_dir, data_dir : path-like, optional
        Output folders; default ``results/figures`` and ``results/figures/data``.

    Returns
    -------
    dict
        ``data``, ``provenance``, ``recomputed``, ``files`` (PNG, PDF, caption), ``caption``,
        ``summary``.
    """
    from .style import save

    mod = get(name)
    if mode not in mod.CONFIGS:
        raise ValueError(f"mode must be one of {sorted(mod.CONFIGS)}, got {mode!r}")
    out_dir = Path(out_dir) if out_dir is not None else FIGURES_DIR
    data_dir = Path(data_dir) if data_dir is not None else (
        out_dir / "data" if out_dir != FIGURES_DIR else DATA_DIR)
    data, prov, recomputed = cache.load_or_compute(name, mode, mod.CONFIGS[mode], mod.compute,
                                                   data_dir, force=force)
    files = save(mod.plot(data), out_dir, name)
    cap = mod.caption(data)
    txt = out_dir / f"{name}.txt"
    txt.write_text(cap + "\n")
    return {"data": data, "provenance": prov, "recomputed": recomputed, "files": files + [txt],
            "caption": cap, "summary": mod.summary(data)}
