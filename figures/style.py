"""The one matplotlib style of the figures (Agg backend, no LaTeX) and the saving helper."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["COLORS", "RC", "figure", "save", "styled"]

#: Colours: neuron A / B of a pair, theory lines, simulation markers, approximations.
COLORS = {
    "A": "#1f77b4",
    "B": "#d62728",
    "theory": "#222222",
    "sim": "#7f7f7f",
    "gauss": "#2ca02c",
    "lognormal": "#9467bd",
    "hard": "#1f77b4",
    "soft": "#ff7f0e",
    "l4": "#000000",
    "exactvar": "#2ca02c",
    "siegert": "#9467bd",
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


def save(fig, out_dir, name) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` into ``out_dir`` and close the figure.

    Returns
    -------
    list of Path
        The two files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    with plt.rc_context(RC):
        fig.savefig(paths[0], metadata={"Software": None})
        fig.savefig(paths[1], metadata={"CreationDate": None, "Creator": None, "Producer": None})
    plt.close(fig)
    return paths
