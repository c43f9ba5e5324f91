"""Per-neuron membrane diagnostics of a converted network's first layer (beyond the paper).

Three panels for a few Fashion-MNIST test images: (a) predicted vs measured mean of every
first-layer neuron's free membrane after T steps; (b) predicted vs measured variance, exact
(Bernoulli/signed) form and the paper's Poisson form; (c) measured std against the L4 norm
of the neuron's weights. Data: :func:`l4theory.convert.diagnostics.membrane_diagnostics`.
``render(model, ...)`` writes ``fig_diagnostics_<model>.png/.pdf`` and a JSON of the
scalar results.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .paths import FIGURES_DIR, REPO_ROOT, RESULTS_DIR
from .style import COLORS, figure, save, styled

__all__ = ["compute", "plot", "render"]


def compute(model: str = "fmnist_mlp", *, n_images: int = 3, n_trials: int = 200,
            steps: int = 75, alpha: float = 1.0, encoder: str = "signed", seed: int = 0,
            max_points: int = 20000) -> dict:
    """Run the diagnostics on the first ``n_images`` test images of Fashion-MNIST."""
    from l4theory.convert import datasets
    from l4theory.convert.diagnostics import membrane_diagnostics
    from l4theory.convert.io import load_network

    net = load_network(REPO_ROOT / "models" / f"{model}.safetensors")
    te = datasets.load_fashion_mnist("test")
    x = datasets.normalize(te.images[:n_images])
    d = membrane_diagnostics(net, x, encoder=encoder, alpha=alpha, steps=steps,
                             n_trials=n_trials, seed=seed)
    d["model"] = model
    # subsample points for plotting (fixed seed), keep scalars exact
    n = d["mean_measured"].size
    idx = np.sort(np.random.default_rng(0).choice(n, min(n, max_points), replace=False))
    for k in ("mean_measured", "var_measured", "mean_theory", "var_theory", "var_poisson", "l4"):
        d[k + "_pts"] = np.ravel(d[k])[idx]
    return d


@styled
def plot(d: dict):
    """Three scatter panels; returns the Figure."""
    fig, ax = figure(ncols=3, width=9.0, height=2.8)
    mm, mt = d["mean_measured_pts"], d["mean_theory_pts"]
    ax[0].scatter(mt, mm, s=2, color=COLORS["sim"], alpha=0.5, rasterized=True)
    lim = [min(mt.min(), mm.min()), max(mt.max(), mm.max())]
    ax[0].plot(lim, lim, color=COLORS["theory"], lw=0.8)
    ax[0].set_xlabel("predicted mean of V[T]")
    ax[0].set_ylabel("measured mean")
    ax[0].set_title(f"(a) mean, median |z| = {d['z_mean']:.2f}")
    vm, vt, vp = d["var_measured_pts"], d["var_theory_pts"], d["var_poisson_pts"]
    ax[1].scatter(vt, vm, s=2, color=COLORS["A"], alpha=0.5, label="exact (encoder) form",
                  rasterized=True)
    ax[1].scatter(vp, vm, s=2, color=COLORS["B"], alpha=0.3, label="Poisson form",
                  rasterized=True)
    hi = max(vt.max(), vm.max(), vp.max())
    ax[1].plot([0, hi], [0, hi], color=COLORS["theory"], lw=0.8)
    ax[1].set_xlabel("predicted variance of V[T]")
    ax[1].set_ylabel("measured variance")
    ax[1].set_title(f"(b) variance, median |z| = {d['z_var']:.2f}")
    ax[1].legend(loc="upper left", markerscale=4)
    ax[2].scatter(d["l4_pts"], np.sqrt(vm), s=2, color=COLORS["l4"], alpha=0.4,
                  rasterized=True)
    ax[2].set_xlabel("L4 norm of the neuron's weights")
    ax[2].set_ylabel("measured std of V[T]")
    ax[2].set_title(f"(c) r(std, L4) = {d['corr_std_l4']:.2f}; "
                    f"r(std, exact) = {d['corr_std_exact']:.2f}")
    return fig


def render(model: str = "fmnist_mlp", out_dir=None, **kw) -> list[Path]:
    """Compute, plot and write the figure and a JSON of the scalars; returns the paths."""
    d = compute(model, **kw)
    out = Path(out_dir) if out_dir is not None else FIGURES_DIR
    files = save(plot(d), out, f"fig_diagnostics_{model}")
    scal = {k: v for k, v in d.items() if np.isscalar(v)}
    scal["params"] = d["params"]
    js = (Path(out_dir) if out_dir is not None else RESULTS_DIR / "conversion")
    js.mkdir(parents=True, exist_ok=True)
    path = js / f"diagnostics_{model}.json"
    path.write_text(json.dumps(scal, indent=1) + "\n")
    return files + [path]


def section(*, report_dir=None, fig_dir=None, data_dir=None) -> str:
    """Markdown section for the report from the diagnostics already written ("" if none)."""
    data = Path(data_dir) if data_dir is not None else RESULTS_DIR / "conversion"
    figs = Path(fig_dir) if fig_dir is not None else FIGURES_DIR
    parts = []
    for js in sorted(data.glob("diagnostics_*.json")):
        model = js.stem[len("diagnostics_"):]
        d = json.loads(js.read_text())
        png = figs / f"fig_diagnostics_{model}.png"
        rel = os.path.relpath(png, Path(report_dir)) if report_dir else str(png)
        parts += [f"### First-layer membrane diagnostics: {model}", "",
                  f"![diagnostics {model}]({rel})", "",
                  f"Measured mean and variance of each first-layer neuron's membrane against the "
                  f"exact input-dependent theory: median |z| {d['z_mean']:.2f} (mean) and "
                  f"{d['z_var']:.2f} (variance), about 0.67 expected for a correct theory. The measured "
                  f"std correlates {d['corr_std_exact']:.2f} with the exact formula but only "
                  f"{d['corr_std_l4']:.2f} with the L4 norm the paper uses as its proxy.", ""]
    return "\n".join(parts)
