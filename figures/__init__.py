"""The paper's Figures 1-5 and the conversion results, drawn by one protocol.

One module per figure, each with ``CONFIGS`` (``quick``/``full``), ``compute(cfg) -> dict of
arrays`` (cached with provenance by :mod:`figures.cache`), ``plot(data) -> Figure``,
``caption(data)`` and ``summary(data)`` (one sentence with numbers from the data, used by
:mod:`figures.report`). Figs. 1-5 (:data:`PAPER`) compute their data from theory and the
Monte Carlo oracles; ``conversion`` and ``diagnostics`` (:data:`RESULTS`) only read what
``python -m validation conversion`` wrote: such a module also has ``config(mode, data_dir)``
(the config plus the sha256 of its input files, so that new results invalidate the cache)
and ``NEEDS`` (the command that writes its inputs). Imports run one way:
figures -> validation -> l4theory.

The pictures that explain the theory (membrane law, Hadamard drift, dominance map,
threshold hysteresis) come from :mod:`l4theory.plot`; the modules here add the paper's
layout, the simulation overlays and the captions.

Command line: ``python -m figures all [--quick] [--force] [--format png,pdf,svg]``,
``python -m figures fig05``, ``python -m figures conversion``, ``python -m figures list``,
``python -m figures report``. Importing the package chooses no matplotlib backend.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from . import cache
from .paths import DATA_DIR, FIGURES_DIR

__all__ = ["NAMES", "PAPER", "RESULTS", "build", "get"]

#: The paper's figures, computed here from theory and simulation.
PAPER = ("fig01", "fig02", "fig03", "fig04", "fig05")
#: Figures of results written by ``python -m validation``: name -> module.
RESULTS = {"conversion": "fig_conversion", "diagnostics": "fig_diagnostics",
           "study_regime": "fig_study", "study_fidelity": "fig_study", "study_accuracy": "fig_study",
           "study_confirm": "fig_study", "study_holdout": "fig_study"}
NAMES = PAPER + tuple(RESULTS)


def get(name):
    """The module of figure ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ValueError(f"unknown figure {name!r}; choose from {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{RESULTS.get(name, name)}")


def build(name, mode="full", *, force=False, out_dir=None, data_dir=None, results_dir=None,
          formats=("png", "pdf")):
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
    results_dir : path-like, optional
        Where a :data:`RESULTS` figure reads its inputs (default: where
        ``python -m validation`` writes them).
    formats : sequence of {"png", "pdf", "svg"}, optional
        Image formats to write (default PNG and PDF; the report links the first).

    Returns
    -------
    dict
        ``data``, ``provenance``, ``recomputed``, ``files`` (the images in the order of
        ``formats``, then the caption text), ``caption``, ``summary``.

    Raises
    ------
    FileNotFoundError
        For a :data:`RESULTS` figure whose inputs have not been written (the message says
        which command writes them).
    """
    from .style import check_formats, save

    formats = check_formats(formats)
    mod = get(name)
    if mode not in mod.CONFIGS:
        raise ValueError(f"mode must be one of {sorted(mod.CONFIGS)}, got {mode!r}")
    out_dir = Path(out_dir) if out_dir is not None else FIGURES_DIR
    data_dir = Path(data_dir) if data_dir is not None else (
        out_dir / "data" if out_dir != FIGURES_DIR else DATA_DIR)
    cfg = mod.config(mode, results_dir, name) if name in RESULTS else mod.CONFIGS[mode]
    data, prov, recomputed = cache.load_or_compute(name, mode, cfg, mod.compute, data_dir,
                                                   force=force)
    files = save(mod.plot(data), out_dir, name, formats)
    cap = mod.caption(data)
    txt = out_dir / f"{name}.txt"
    txt.write_text(cap + "\n")
    return {"data": data, "provenance": prov, "recomputed": recomputed, "files": files + [txt],
            "caption": cap, "summary": mod.summary(data)}
