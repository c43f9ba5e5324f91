"""The paper's Figs. 6-8 protocol on a shipped Fashion-MNIST network: baseline vs L4.

``python -m validation conversion [--quick]`` (or ``python -m validation.conversion``).

For five leak factors from no leak to fast leak, ``alpha`` in {1.0, 0.99, 0.97, 0.93, 0.85}
(per-step membrane retention; with ``alpha = exp(-dt/tau)`` these are ``tau/dt`` = inf,
99.5, 32.8, 13.8 and 6.2 steps, so the slowest leak forgets little over T = 75 steps and
the fastest forgets almost everything after ~6 steps), and both soft and hard reset,
:func:`l4theory.convert.sweep.sweep` selects on held-out training images the best
threshold scale of the baseline and the best ``(r_s, scale)`` of the L4-adjusted network,
then evaluates both on a test subset with several input spike seeds (paired). Signed
input encoder (Rathi et al. 2020), membrane readout, T = 75 as for the paper's VGG-5.

Outputs (``results/conversion/``): ``conversion_<mode>.json`` (everything, with
provenance), ``conversion_<mode>.md`` (the table), ``conversion_<mode>.npz`` (per-image
correctness and curves) and, through :mod:`figures.fig_conversion`, the grouped bar figure.

Sizes (chosen so that ``--quick`` runs in a few minutes and the full protocol in under an
hour on 2 cores; see ``docs/simulation.md`` for the measured times):

``quick``: the MLP (``fmnist_mlp``), 200 selection images, 500 test images, 2 seeds.
``full``: the VGG-5-shaped net (``fmnist_vgg5``), see :data:`CONFIGS`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .paths import REPO_ROOT

__all__ = ["ALPHAS", "CONFIGS", "RESETS", "RESULTS_DIR", "main", "run", "table_markdown"]

RESULTS_DIR = REPO_ROOT / "results" / "conversion"
ALPHAS = (1.0, 0.99, 0.97, 0.93, 0.85)
RESETS = ("soft", "hard")
#: Smallest conversion gap (fraction) for which the table states the fraction recovered.
MIN_GAP = 0.005

CONFIGS = {
    "quick": {"model": "fmnist_mlp", "steps": 75, "scales": [0.6, 0.8, 1.0],
              "r_s": [0.5, 2.0], "n_calib": 200, "n_select": 200, "n_test": 500,
              "seeds": [0, 1], "balance": "max", "batch_size": 128},
    "full": {"model": "fmnist_vgg5", "steps": 75, "scales": [0.4, 0.6, 0.8, 1.0],
             "r_s": [0.5, 2.0], "n_calib": 200, "n_select": 128, "n_test": 512,
             "seeds": [0, 1], "balance": "max", "batch_size": 32},
}


def _git_rev() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=REPO_ROOT, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):  # pragma: no cover
        return None


def _load(cfg):
    from l4theory.convert import datasets
    from l4theory.convert.io import load_network

    path = REPO_ROOT / "models" / f"{cfg['model']}.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (train it with models/train.py)")
    net = load_network(path)
    tr = datasets.load_fashion_mnist("train")
    te = datasets.load_fashion_mnist("test")
    train = (datasets.normalize(tr.images), tr.labels.astype(np.int64))
    test = (datasets.normalize(te.images), te.labels.astype(np.int64))
    return path, net, train, test


def run(mode: str = "quick", *, out_dir=None, overrides=None, settings=None,
        progress: bool = True) -> dict:
    """Run the protocol and write the table, JSON and npz.

    Parameters
    ----------
    mode : {"quick", "full"}
    out_dir : path-like, optional
        Output folder (default ``results/conversion``).
    overrides : dict, optional
        Entries replacing those of ``CONFIGS[mode]`` (e.g. ``{"n_test": 100}``).
    settings : sequence of (alpha, reset), optional
        Subset of the 10 settings (default all).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    dict
        The JSON document written (``rows``: one per setting, with the summary).
    """
    from l4theory.convert.sweep import sweep

    if mode not in CONFIGS:
        raise ValueError(f"mode must be one of {sorted(CONFIGS)}, got {mode!r}")
    cfg = {**CONFIGS[mode], **(overrides or {})}
    settings = list(settings) if settings is not None else [(a, r) for r in RESETS
                                                            for a in ALPHAS]
    out_dir = Path(out_dir) if out_dir is not None else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path, net, train, test = _load(cfg)
    per_setting = (cfg["n_select"] * len(cfg["scales"]) * (1 + len(cfg["r_s"]))
                   + 2 * cfg["n_test"] * len(cfg["seeds"]))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=per_setting * len(settings), unit="img", desc=f"conversion {mode}",
                   file=sys.stderr)
    t0 = time.perf_counter()
    rows, arrays = [], {}
    try:
        for alpha, reset in settings:
            res = sweep(net, train, test, steps=cfg["steps"], alpha=alpha, reset=reset,
                        encoder="signed", scales=cfg["scales"], r_s=cfg["r_s"],
                        n_calib=cfg["n_calib"], n_select=cfg["n_select"],
                        n_test=cfg["n_test"], seeds=cfg["seeds"],
                        balance_method=cfg["balance"], batch_size=cfg["batch_size"],
                        progress=bar.update if bar else None,
                        backend=cfg.get("backend", "numpy"),
                        method=cfg.get("method", "l4"))
            s = res.summary()
            tag = f"a{alpha:g}_{reset}"
            arrays[f"{tag}_test_baseline"] = res.test_baseline
            arrays[f"{tag}_test_adjusted"] = res.test_adjusted
            arrays[f"{tag}_curve_baseline"] = res.curve_baseline
            arrays[f"{tag}_curve_adjusted"] = res.curve_adjusted
            arrays[f"{tag}_select_baseline"] = res.select_baseline
            arrays[f"{tag}_select_adjusted"] = res.select_adjusted
            rows.append({"alpha": alpha, "reset": reset, **s,
                         "select_baseline": res.select_baseline.tolist(),
                         "select_adjusted": res.select_adjusted.tolist(),
                         "spike_rates_baseline": res.spike_rates_baseline.tolist(),
                         "spike_rates_adjusted": res.spike_rates_adjusted.tolist(),
                         "thresholds": res.thresholds.tolist(),
                         "time_s": res.params["time_select_s"] + res.params["time_test_s"]})
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    import numba

    doc = {
        "mode": mode, "config": cfg, "rows": rows, "elapsed_s": elapsed,
        "encoder": "signed", "readout": "membrane",
        "provenance": {"model": path.name,
                       "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                       "git_revision": _git_rev(), "python": sys.version.split()[0],
                       "numpy": np.__version__, "numba": numba.__version__,
                       "platform": platform.platform(), "dataset": "Fashion-MNIST",
                       "tool": "python -m validation conversion"},
    }
    stem = result_stem(mode, cfg.get("method", "l4"))
    (out_dir / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
    np.savez_compressed(out_dir / f"{stem}.npz", **arrays)
    (out_dir / f"{stem}.md").write_text(table_markdown(doc) + "\n")
    return doc


def result_stem(mode: str, method: str = "l4") -> str:
    """File stem of a protocol's results: ``conversion_<mode>`` (``_exact`` for that method)."""
    return f"conversion_{mode}" if method == "l4" else f"conversion_{mode}_{method}"


def table_markdown(doc: dict) -> str:
    """The results table (Markdown) of a protocol document written by :func:`run`."""
    cfg = doc["config"]
    method = cfg.get("method", "l4")
    name = "L4" if method == "l4" else "exact-std"
    spread = "L4 norm (the paper)" if method == "l4" else "exact input-dependent std (beyond the paper)"
    lines = [
        f"Conversion of `{doc['provenance']['model']}` on Fashion-MNIST: T = {cfg['steps']}, "
        f"signed input, membrane readout; selection on {cfg['n_select']} held-out training "
        f"images (scales {cfg['scales']}, r_s {cfg['r_s']}); test on {cfg['n_test']} images "
        f"x {len(cfg['seeds'])} spike seeds (paired). 95% CIs over test images. "
        f"Adjustment: Eqs. 6-9 with the {spread} in Eq. 8. "
        f"Run time {doc['elapsed_s'] / 60:.1f} min.",
        "",
        f"| alpha | reset | ANN % | baseline % [95% CI] | {name} % [95% CI] | {name} - base (points) "
        "[95% CI] | gap (points) | recovered | scale b / a | r_s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        b, a, d = r["baseline"], r["adjusted"], r["difference"]
        rec = r["recovered"]
        rec_s = f"{rec:.2f}" if np.isfinite(rec) and r["gap"] >= MIN_GAP else "n/a (gap < 0.5)"
        lines.append(
            f"| {r['alpha']:g} | {r['reset']} | {100 * r['ann_accuracy']:.2f} | "
            f"{100 * b['mean']:.2f} [{100 * b['lo']:.2f}, {100 * b['hi']:.2f}] | "
            f"{100 * a['mean']:.2f} [{100 * a['lo']:.2f}, {100 * a['hi']:.2f}] | "
            f"{100 * d['mean']:+.2f} [{100 * d['lo']:+.2f}, {100 * d['hi']:+.2f}] | "
            f"{100 * r['gap']:.2f} | {rec_s} | {r['best_scale_baseline']:g} / "
            f"{r['best_scale_adjusted']:g} | {r['best_r_s']:g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m validation conversion",
                                description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return handle(p.parse_args(argv))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ``conversion`` subcommand (shared with ``python -m validation``)."""
    p.add_argument("--quick", action="store_true", help="the MLP and small sets (minutes)")
    p.add_argument("--out", default=None, help="output folder (default results/conversion)")
    p.add_argument("--n-test", type=int, default=None, help="override the test subset size")
    p.add_argument("--n-select", type=int, default=None, help="override the selection size")
    p.add_argument("--seeds", type=int, default=None, help="override the number of seeds")
    p.add_argument("--model", default=None,
                   help="model name in models/ (default: fmnist_mlp quick, fmnist_vgg5 full)")
    p.add_argument("--backend", choices=["numpy", "torch"], default=None,
                   help="simulator linear-algebra backend (default numpy)")
    p.add_argument("--method", choices=["l4", "exact"], default=None,
                   help="spread measure of the adjustment (default l4, the paper's)")
    p.add_argument("--no-figure", action="store_true", help="skip the bar figure")
    p.add_argument("--no-diagnostics", action="store_true",
                   help="skip the per-neuron membrane diagnostics of the first layer")
    p.add_argument("--no-progress", action="store_true")


def handle(args) -> int:
    """Run the protocol for parsed ``args``; print the table; returns 0."""
    mode = "quick" if args.quick else "full"
    over = {}
    if args.n_test is not None:
        over["n_test"] = args.n_test
    if args.n_select is not None:
        over["n_select"] = args.n_select
    if args.seeds is not None:
        over["seeds"] = list(range(args.seeds))
    if args.model is not None:
        over["model"] = args.model
    if args.backend is not None:
        over["backend"] = args.backend
    if args.method is not None:
        over["method"] = args.method
    doc = run(mode, out_dir=args.out, overrides=over, progress=not args.no_progress)
    print(table_markdown(doc))
    if not args.no_diagnostics:
        from .diagnostics import run as run_diagnostics

        diag = run_diagnostics(over.get("model", CONFIGS[mode]["model"]), out_dir=args.out)
        print("diagnostics:", ", ".join(diag["files"]))
    print("figures: python -m figures conversion diagnostics" + (" --quick" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
