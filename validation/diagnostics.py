"""First-layer membrane diagnostics on real images: compute and write (figures draw them).

``run(model)`` measures every first-layer neuron's free membrane over independent input
spike trains for a few Fashion-MNIST test images
(:func:`l4theory.convert.diagnostics.membrane_diagnostics`) and writes
``results/conversion/diagnostics_<model>.npz`` (per-neuron points, subsampled with a fixed
seed for plotting) and ``diagnostics_<model>.json`` (the scalar results, the parameters and
provenance). ``python -m figures diagnostics`` draws them; nothing here imports
:mod:`figures`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from l4theory._provenance import file_sha256, record

from .paths import REPO_ROOT

__all__ = ["DIAGNOSTICS_DIR", "POINT_KEYS", "paths", "run"]

#: Default output folder (shared with the conversion protocol).
DIAGNOSTICS_DIR = REPO_ROOT / "results" / "conversion"
#: Per-neuron arrays kept (subsampled) for the figure.
POINT_KEYS = ("mean_measured", "var_measured", "mean_theory", "var_theory", "var_poisson", "l4")


def paths(model: str, out_dir=None) -> tuple[Path, Path]:
    """``(npz, json)`` result paths of ``model`` in ``out_dir`` (default results/conversion)."""
    out = Path(out_dir) if out_dir is not None else DIAGNOSTICS_DIR
    return out / f"diagnostics_{model}.npz", out / f"diagnostics_{model}.json"


def run(model: str = "fmnist_mlp", *, out_dir=None, n_images: int = 3, n_trials: int = 200,
        steps: int = 75, alpha: float = 1.0, encoder: str = "signed", seed: int = 0,
        max_points: int = 20000) -> dict:
    """Run the diagnostics on the first ``n_images`` Fashion-MNIST test images and write them.

    Parameters
    ----------
    model : str
        Name of a shipped model in ``models/`` (``<model>.safetensors``).
    out_dir : path-like, optional
        Output folder (default ``results/conversion``).
    n_images, n_trials, steps, alpha, encoder, seed
        As in :func:`l4theory.convert.diagnostics.membrane_diagnostics`.
    max_points : int
        Per-neuron points kept for plotting (uniform subsample, fixed seed 0).

    Returns
    -------
    dict
        The JSON document written (scalars, ``params``, ``provenance``, ``files``).
    """
    from l4theory.convert import datasets
    from l4theory.convert.diagnostics import membrane_diagnostics
    from l4theory.convert.io import load_network

    path = REPO_ROOT / "models" / f"{model}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"model {model!r}: {path} does not exist")
    net = load_network(path)
    x = datasets.normalize(datasets.load_fashion_mnist("test").images[:n_images])
    t0 = time.perf_counter()
    d = membrane_diagnostics(net, x, encoder=encoder, alpha=alpha, steps=steps,
                             n_trials=n_trials, seed=seed)
    n = d["mean_measured"].size
    idx = np.sort(np.random.default_rng(0).choice(n, min(n, max_points), replace=False))
    npz, js = paths(model, out_dir)
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz, **{k: np.ravel(d[k])[idx] for k in POINT_KEYS})
    doc = {k: v for k, v in d.items() if np.isscalar(v)}
    doc.update(model=model, params=d["params"], n_neurons=int(n), n_points=int(idx.size),
               seconds=time.perf_counter() - t0,
               provenance={**record("python -m validation conversion (diagnostics)",
                                    files=[path], path=REPO_ROOT),
                           "model_sha256": file_sha256(path)})
    js.write_text(json.dumps(doc, indent=1) + "\n")
    doc["files"] = [str(npz), str(js)]
    return doc

