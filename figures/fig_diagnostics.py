"""Per-neuron membrane diagnostics of a converted network's first layer (beyond the paper).

Three panels for a few Fashion-MNIST test images: (a) predicted vs measured mean of every
first-layer neuron's free membrane after T steps; (b) predicted vs measured variance, exact
(Bernoulli/signed) form and the paper's Poisson form; (c) measured std against the L4 norm
of the neuron's weights. The data are written by ``python -m validation conversion``
(:func:`validation.diagnostics.run`); this module only reads and draws them, through the
same compute/plot/caption/cache protocol as Figs. 1-5 (``python -m figures diagnostics``).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from validation.diagnostics import POINT_KEYS, paths

from .style import COLORS, figure, styled

__all__ = ["CONFIGS", "compute", "config", "plot", "caption", "summary"]

NAME = "diagnostics"
TITLE = "First-layer membrane: theory vs measurement on real images"
NEEDS = "python -m validation conversion"
CONFIGS = {"quick": {"version": 1, "model": "fmnist_mlp"},
           "full": {"version": 1, "model": "fmnist_vgg5"}}
_SCALARS = ("corr_std_l4", "corr_std_exact", "corr_std_poisson", "z_mean", "z_var", "seed")


def config(mode: str, data_dir=None, name: str | None = None) -> dict:
    """The config of ``mode``, falling back to the quick model, with the inputs' sha256.

    Raises
    ------
    FileNotFoundError
        When no diagnostics were written (run :data:`NEEDS`).
    """
    for m in (mode, "quick"):
        cfg = dict(CONFIGS[m])
        npz, js = paths(cfg["model"], data_dir)
        if npz.is_file() and js.is_file():
            digest = hashlib.sha256(npz.read_bytes() + js.read_bytes()).hexdigest()
            return {**cfg, "data_dir": str(data_dir) if data_dir else None, "inputs_sha256": digest}
    raise FileNotFoundError(f"no first-layer diagnostics in {npz.parent}: run `{NEEDS}` first")


def compute(cfg) -> dict:
    """The points and scalars written by :func:`validation.diagnostics.run`."""
    npz, js = paths(cfg["model"], cfg.get("data_dir"))
    doc = json.loads(js.read_text())
    with np.load(npz, allow_pickle=False) as f:
        out = {k + "_pts": f[k] for k in POINT_KEYS}
    out.update({k: doc[k] if k in doc else doc["params"][k] for k in _SCALARS})
    out.update(model=doc["model"], layer=doc["params"]["layer"], steps=doc["params"]["steps"],
               n_trials=doc["params"]["n_trials"], n_images=doc["params"]["n_images"],
               alpha=doc["params"]["alpha"], encoder=doc["params"]["encoder"])
    return out


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
    ax[0].set_title(f"(a) mean, median |z| = {float(d['z_mean']):.2f}")
    vm, vt, vp = d["var_measured_pts"], d["var_theory_pts"], d["var_poisson_pts"]
    ax[1].scatter(vt, vm, s=2, color=COLORS["A"], alpha=0.5, label="exact (encoder) form",
                  rasterized=True)
    ax[1].scatter(vp, vm, s=2, color=COLORS["B"], alpha=0.3, label="Poisson form",
                  rasterized=True)
    hi = max(vt.max(), vm.max(), vp.max())
    ax[1].plot([0, hi], [0, hi], color=COLORS["theory"], lw=0.8)
    ax[1].set_xlabel("predicted variance of V[T]")
    ax[1].set_ylabel("measured variance")
    ax[1].set_title(f"(b) variance, median |z| = {float(d['z_var']):.2f}")
    ax[1].legend(loc="upper left", markerscale=4)
    ax[2].scatter(d["l4_pts"], np.sqrt(vm), s=2, color=COLORS["l4"], alpha=0.4,
                  rasterized=True)
    ax[2].set_xlabel("L4 norm of the neuron's weights")
    ax[2].set_ylabel("measured std of V[T]")
    ax[2].set_title(f"(c) r(std, L4) = {float(d['corr_std_l4']):.2f}; "
                    f"r(std, exact) = {float(d['corr_std_exact']):.2f}")
    return fig


def caption(d: dict) -> str:
    """Figure caption with the run's settings."""
    return (f"Fig. D. First-layer free membrane of `{d['model']}` (layer {d['layer']}) after "
            f"T = {int(d['steps'])} steps, alpha = {float(d['alpha']):g}, {d['encoder']} encoder: "
            f"{int(d['n_trials'])} spike trains for each of {int(d['n_images'])} test images. "
            "(a) mean and (b) variance against the exact discrete-time theory (and the paper's "
            "Poisson form); (c) measured std against the L4 norm of the weights.")


def summary(d: dict) -> str:
    """One sentence with the numbers."""
    return (f"Median |z| {float(d['z_mean']):.2f} (mean) and {float(d['z_var']):.2f} (variance), "
            "about 0.67 expected for a correct theory; the measured std correlates "
            f"{float(d['corr_std_exact']):.2f} with the exact formula but only "
            f"{float(d['corr_std_l4']):.2f} with the L4 norm the paper uses as its proxy.")
