"""The paper's Figs. 6-8 protocol on a shipped Fashion-MNIST network: baseline vs L4.

``python -m validation conversion [--quick]`` (or ``python -m validation.conversion``).

For five leak factors from no leak to fast leak, ``alpha`` in {1.0, 0.99, 0.97, 0.93, 0.85}
(per-step membrane retention; with ``alpha = exp(-dt/tau)`` these are ``tau/dt`` = inf,
99.5, 32.8, 13.8 and 6.2 steps, so the slowest leak forgets little over T = 75 steps and
the fastest forgets almost everything after ~6 steps), and both soft and hard reset,
:func:`l4theory.experiment.sweep.sweep` selects on held-out training images the best
threshold scale of the baseline and the best ``(r_s, scale)`` of the L4-adjusted network,
then evaluates both on a test subset with several input spike seeds (paired). Signed
input encoder (Rathi et al. 2020), membrane readout, T = 75 as for the paper's VGG-5.

Outputs (``results/conversion/``): ``conversion_<mode>.json`` (everything, with
provenance), ``conversion_<mode>.md`` (the table), ``conversion_<mode>.npz`` (per-image
correctness and curves), and the first-layer membrane diagnostics
(:mod:`validation.diagnostics`); ``python -m figures conversion diagnostics`` draws them.
Finished simulations are cached in ``results/conversion/tasks/`` (``--no-cache`` to skip):
a run started again recomputes only what is missing. ``--workers N`` runs the simulations
on a Dask LocalCluster (``--scheduler ADDRESS``: an existing cluster); the numbers are
the same for any ``--workers`` and ``--block-size``.

Sizes (chosen so that ``--quick`` runs in a few minutes and the full protocol in under an
hour on 2 cores; see ``docs/simulation.md`` for the measured times):

``quick``: the MLP (``fmnist_mlp``), 200 selection images, 500 test images, 2 seeds.
``full``: the VGG-5-shaped net (``fmnist_vgg5``), see :data:`CONFIGS`.
"""

from __future__ import annotations

import argparse
import sys
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
              "seeds": [0, 1], "balance": "max", "batch_size": 128, "semantics": "project"},
    "full": {"model": "fmnist_vgg5", "steps": 75, "scales": [0.4, 0.6, 0.8, 1.0],
             "r_s": [0.5, 2.0], "n_calib": 200, "n_select": 128, "n_test": 512,
             "seeds": [0, 1], "balance": "max", "batch_size": 32, "semantics": "project"},
}


def protocol_settings(cfg: dict, settings=None) -> list:
    """One :class:`~l4theory.experiment.sweep.SweepSettings` per ``(alpha, reset)`` setting.

    Parameters
    ----------
    cfg : dict
        A protocol config (an entry of :data:`CONFIGS`, possibly overridden).
    settings : sequence of (alpha, reset), optional
        Default: every reset with every leak of :data:`ALPHAS`.
    """
    from l4theory.experiment.sweep import SweepSettings

    pairs = list(settings) if settings is not None else [(a, r) for r in RESETS for a in ALPHAS]
    return [SweepSettings(steps=cfg["steps"], alpha=alpha, reset=reset, encoder="signed",
                          semantics=cfg.get("semantics", "project"), scales=cfg["scales"],
                          r_s=cfg["r_s"], n_calib=cfg["n_calib"], n_select=cfg["n_select"],
                          n_test=cfg["n_test"], seeds=cfg["seeds"],
                          balance_method=cfg["balance"], batch_size=cfg["batch_size"],
                          backend=cfg.get("backend", "numpy"), method=cfg.get("method", "l4"))
            for alpha, reset in pairs]


def _row(s, res) -> dict:
    return {"alpha": s.alpha, "reset": s.reset, **res.summary(),
            "select_baseline": res.select_baseline.tolist(),
            "select_adjusted": res.select_adjusted.tolist(),
            "spike_rates_baseline": res.spike_rates_baseline.tolist(),
            "spike_rates_adjusted": res.spike_rates_adjusted.tolist(),
            "thresholds": res.thresholds.tolist(),
            "time_s": res.params["time_select_s"] + res.params["time_test_s"]}


def run(mode: str = "quick", *, out_dir=None, overrides=None, settings=None,
        progress: bool = True, workers: int | None = None, scheduler: str | None = None,
        block_size: int | None = None, cache: bool = True) -> dict:
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
    workers, scheduler : optional
        Run the simulations on Dask: a LocalCluster of ``workers`` processes, or the
        scheduler at this address (default: serially, without Dask).
    block_size : int, optional
        Images per simulation task (default: a whole subset per task).
    cache : bool
        Keep finished simulations in ``<out_dir>/tasks/`` and reuse them.

    Returns
    -------
    dict
        The JSON document written (``rows``: one per setting, with the summary).
    """
    from l4theory.experiment.sweep import sweep_model, write_json

    if mode not in CONFIGS:
        raise ValueError(f"mode must be one of {sorted(CONFIGS)}, got {mode!r}")
    cfg = {**CONFIGS[mode], **(overrides or {})}
    plist = protocol_settings(cfg, settings)
    out_dir = Path(out_dir) if out_dir is not None else RESULTS_DIR
    path = REPO_ROOT / "models" / f"{cfg['model']}.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (train it with models/train.py)")
    out_dir.mkdir(parents=True, exist_ok=True)
    results, prov, elapsed = sweep_model(
        path, plist, block_size=block_size, workers=workers, scheduler=scheduler,
        cache=out_dir / "tasks" if cache else None,
        progress=f"conversion {mode}" if progress else None,
        tool="python -m validation conversion")
    rows, arrays = [], {}
    for s, res in zip(plist, results, strict=True):
        tag = f"a{s.alpha:g}_{s.reset}"
        for name in ("test_baseline", "test_adjusted", "curve_baseline", "curve_adjusted",
                     "select_baseline", "select_adjusted"):
            arrays[f"{tag}_{name}"] = getattr(res, name)
        rows.append(_row(s, res))
    doc = {"mode": mode, "config": cfg, "rows": rows, "elapsed_s": elapsed,
           "encoder": "signed", "readout": "membrane",
           "provenance": {**prov, "dataset": "Fashion-MNIST"}}
    stem = result_stem(mode, cfg.get("method", "l4"))
    write_json(out_dir / f"{stem}.json", doc)
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
    """Command line; returns the exit status (2 on a bad option, printed as one line)."""
    p = argparse.ArgumentParser(prog="python -m validation conversion",
                                description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        check_arguments(args)
    except (ValueError, ImportError) as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 2
    return handle(args)


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
    p.add_argument("--semantics", choices=["project", "rathi"], default=None,
                   help="simulator semantics (default project)")
    p.add_argument("--settings", default=None,
                   help="only these ALPHA:RESET settings, comma-separated (e.g. 1:soft,0.85:hard)")
    p.add_argument("--workers", type=int, default=None,
                   help="run on a Dask LocalCluster of N processes (needs the 'dist' extra)")
    p.add_argument("--scheduler", default=None, help="run on the Dask scheduler at ADDRESS")
    p.add_argument("--block-size", type=int, default=None, dest="block_size",
                   help="images per task (default: a subset per task serially, "
                        "256 on Dask); results do not depend on it")
    p.add_argument("--no-cache", action="store_true",
                   help="do not reuse or store finished simulations (OUT/tasks/)")
    p.add_argument("--no-diagnostics", action="store_true",
                   help="skip the per-neuron membrane diagnostics of the first layer")
    p.add_argument("--no-progress", action="store_true")


def _pairs(text: str | None):
    if text is None:
        return None
    out = []
    for item in text.split(","):
        alpha, _, reset = item.strip().partition(":")
        try:
            out.append((float(alpha), reset))
        except ValueError:
            raise ValueError(f"--settings {text!r}: expected ALPHA:RESET items, got "
                             f"{item!r}") from None
    return out


def check_arguments(args) -> dict:
    """Validate parsed options before anything is loaded; the keyword arguments of :func:`run`.

    Raises ``ValueError`` naming the option (or ``ImportError`` naming the ``dist`` extra).
    """
    from l4theory.cli import DIST_BLOCK
    from l4theory.experiment.executors import check_dist_options

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
    if args.semantics is not None:
        over["semantics"] = args.semantics
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    pairs = _pairs(args.settings)
    options = {"n_test": "--n-test", "n_select": "--n-select", "seeds": "--seeds",
               "alpha": "--settings", "reset": "--settings", "semantics": "--semantics"}
    try:
        protocol_settings({**CONFIGS[mode], **over}, pairs)
    except ValueError as exc:
        field = str(exc).split()[0]
        raise ValueError(f"{options.get(field, field)}: {exc}") from None
    model = REPO_ROOT / "models" / f"{over.get('model', CONFIGS[mode]['model'])}.safetensors"
    if not model.is_file():
        raise ValueError(f"--model: {model} is missing (train it with models/train.py)")
    if args.block_size is not None and args.block_size < 1:
        raise ValueError(f"--block-size must be >= 1, got {args.block_size}")
    check_dist_options(args.workers, args.scheduler)
    block = args.block_size
    if block is None and (args.workers is not None or args.scheduler is not None):
        block = DIST_BLOCK
    return {"mode": mode, "out_dir": args.out, "overrides": over, "settings": pairs,
            "progress": not args.no_progress, "workers": args.workers,
            "scheduler": args.scheduler, "block_size": block, "cache": not args.no_cache}


def handle(args) -> int:
    """Run the protocol for parsed ``args``; print the table; returns 0."""
    kw = check_arguments(args)
    mode, over = kw.pop("mode"), kw["overrides"]
    doc = run(mode, **kw)
    print(table_markdown(doc))
    if not args.no_diagnostics:
        from .diagnostics import run as run_diagnostics

        diag = run_diagnostics(over.get("model", CONFIGS[mode]["model"]), out_dir=args.out)
        print("diagnostics:", ", ".join(diag["files"]))
    print("figures: python -m figures conversion diagnostics" + (" --quick" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
