"""The one matplotlib style of the figures (no LaTeX) and the saving helper.

No backend is chosen on import: ``python -m figures`` selects Agg in its ``main``; a
notebook or a documentation build keeps its own.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from l4theory.plot import COLORS

__all__ = ["COLORS", "FORMATS", "RC", "figure", "save", "styled"]

#: File formats :func:`save` writes, with the metadata that would make a file differ from
#: run to run (dates, tool versions) removed.
FORMATS = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
    "svg": {"Date": None, "Creator": None},
}

RC = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "lines.linewidth": 1.4,
    "lines.markersize": 3.5,
    "errorbar.capsize": 2,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "text.usetex": False,
    "mathtext.fontset": "dejavusans",
    "pdf.fonttype": 42,
    "svg.hashsalt": "l4theory",  # reproducible SVG element ids
}


def styled(plot):
    """Decorator: run a ``plot(data) -> Figure`` function under the project style."""
    import functools

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with plt.rc_context(RC):
            return plot(*args, **kwargs)

    return wrapper


def figure(ncols=2, nrows=1, width=7.2, height=3.0, **kw):
    """A constrained-layout figure (call inside a :func:`styled` plot function).

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of Axes, shape (nrows, ncols) squeezed
    """
    return plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", **kw)


def check_formats(formats) -> tuple[str, ...]:
    """``formats`` as a tuple of known, distinct formats (one of :data:`FORMATS` each).

    Raises
    ------
    ValueError
        Naming the unknown format or the empty list.
    """
    formats = tuple(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"formats must be one or more of {', '.join(FORMATS)}, got "
                         f"{', '.join(map(str, formats)) or 'none'}")
    return tuple(dict.fromkeys(formats))


def save(fig, out_dir, name, formats=("png", "pdf")) -> list[Path]:
    """Write ``name.<format>`` for each format into ``out_dir`` and close the figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    out_dir : path-like
        Output folder (created if missing).
    name : str
        File stem.
    formats : sequence of {"png", "pdf", "svg"}, optional
        Formats to write, in this order (default PNG and PDF).

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.
    """
    formats = check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{f}" for f in formats]
    with plt.rc_context(RC):
        for f, path in zip(formats, paths, strict=True):
            fig.savefig(path, metadata=FORMATS[f])
    plt.close(fig)
    return paths
