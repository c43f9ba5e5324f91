"""Does a first-layer adjustment recover conversion loss? The study of issue 11.

``python -m validation study [--quick] [--part PART|all] [--workers N]``, PART one of
regime, fidelity, power, accuracy, explore, confirm, holdout.

Seven parts, each a loop over *pure tasks* (a task is a function of its settings, the
image indices and a seed, returning arrays; see :func:`predictions_task` and
:func:`fidelity_task`), so that a task runner can later map them over workers; they run
serially here, and every finished task is cached under ``results/study/tasks/`` (keyed by
a hash of the task and the model's sha256), so an interrupted run resumes.

regime map (:func:`regime_map`)
    Baseline conversion gap of the shipped VGG-5: ANN accuracy minus the accuracy of the
    spiking network at the threshold scale selected on held-out *training* images, for
    T in {15, 30, 50, 75}, leak ``alpha`` in {1, 0.95, 0.9, 0.85}, soft and hard reset, and
    both simulator semantics. One T = 75 run per (setting, scale) gives the prediction
    after every step (the simulation is causal), so the scale is selected per T from the
    same runs.
fidelity (:func:`fidelity_table`)
    First-layer fidelity (:mod:`l4theory.convert.fidelity`) of every method on test
    images at a fixed threshold scale.
accuracy (:func:`accuracy_table`)
    Baseline vs each adjustment at the pre-registered settings (``docs/study.md``):
    selection on training images, evaluation on test images with several input seeds
    (common random numbers), selected-on-train and matched-threshold comparisons,
    bootstrap CI of the recovered fraction.
explore (:func:`threshold_check`)
    Exploratory: the baseline and every arm at every scale of the range the arms chose,
    on the test set.
confirm (:func:`confirm_table`)
    The confirmatory stage (``docs/study.md``, third session): each series selects its
    threshold scale on 1000 training images on a 0.05 grid; then the test-set comparison.
holdout (:func:`holdout_table`)
    The fourth session's stage: the confirmatory comparison repeated on training images
    no other part used (as many as its power rule asks), and pooled with the test set.

Outputs: ``results/study/study_<mode>.json`` (tables + provenance), ``.npz`` (per-image
arrays); ``python -m figures study_regime study_fidelity study_accuracy study_confirm
study_holdout`` draws them.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from l4theory._provenance import file_sha256, record

from .paths import REPO_ROOT

__all__ = ["CONFIGS", "PREREGISTERED", "RESULTS_DIR", "accuracy_table", "add_arguments",
           "arm_label", "arm_network", "fidelity_table", "fidelity_task", "handle", "main",
           "pilot_power", "predictions_task", "preregistered", "regime_map",
           "seeds_per_setting", "split_indices", "accuracy_schedule", "gap_settings",
           "confirm_table", "holdout_table", "holdout_size", "holdout_blocks"]

RESULTS_DIR = REPO_ROOT / "results" / "study"
CACHE_VERSION = 1

#: Sizes of the two modes. ``scales`` multiply every balanced threshold.
CONFIGS = {
    "quick": {
        "model": "fmnist_vgg5", "steps": 75, "report_steps": [15, 30, 50, 75],
        "alphas": [1.0, 0.85], "resets": ["soft", "hard"], "semantics": ["project"],
        "scales": [0.2, 0.3, 0.45, 0.65, 1.0], "n_calib": 64, "n_select": 32,
        "n_test": 48, "seeds": [0], "subset_seed": 0, "select_seed": 10_000,
        "batch_size": 48, "backend": "numpy",
        "fidelity": {"n_images": 8, "scale": 0.5, "settings": [[1.0, "soft"], [0.85, "hard"]],
                     "r_s": [0.0, 0.5, 2.0, "inf"], "max_pairs": 20_000},
        "accuracy": {"settings": [[1.0, "soft", "project", 75]],
                     "r_s": [0.5, 2.0], "methods": ["l4", "ratematch"],
                     "selection_seeds": []},
        "power": {"n_pilot": 32, "seeds": [0, 1]},
        "confirm": {"n_select": 32, "seed": 50_000, "start": [0.3, 0.45],
                    "grid": [0.2, 0.3, 0.45, 0.65, 1.0]},
        "holdout": {"block": 32, "seed": 60_000, "target_mde": 0.0027, "cap": 64},
    },
    "full": {
        "model": "fmnist_vgg5", "steps": 75, "report_steps": [15, 30, 50, 75],
        "alphas": [1.0, 0.95, 0.9, 0.85], "resets": ["soft", "hard"],
        "semantics": ["project", "rathi"],
        "scales": [0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0],
        "n_calib": 200, "n_select": 160, "n_test": 300, "seeds": [0],
        "subset_seed": 0, "select_seed": 10_000, "batch_size": 50, "backend": "torch",
        "fidelity": {"n_images": 100, "scale": 0.5, "steps": [15, 75],
                     "settings": [[1.0, "soft"], [1.0, "hard"], [0.9, "soft"], [0.85, "hard"]],
                     "r_s": [0.0, 0.25, 0.5, 1.0, 2.0, "inf"], "max_pairs": 200_000},
        "accuracy": None,  # filled from the pre-registered plan (docs/study.md)
        "power": {"n_pilot": 1000, "seeds": [0, 1]},
        # the confirmatory stage (docs/study.md, third session): the pilot's images
        "confirm": {"n_select": 1000, "seed": 50_000,
                    "start": [round(0.3 + 0.05 * i, 2) for i in range(9)],
                    "grid": [round(0.1 + 0.05 * i, 2) for i in range(29)]},
        # the fourth session's stage (docs/study.md): unused training images, for power
        "holdout": {"block": 5000, "seed": 60_000, "target_mde": 0.0027, "cap": 40_000},
    },
}


#: The powered comparison's arms and selection (docs/study.md, "Pre-registered plan").
#: Its settings come from the regime map by the rule of the plan (:func:`preregistered`).
PREREGISTERED = {
    "r_s": [0.0, 0.25, 0.5, 1.0, 2.0, "inf"], "methods": ["l4", "exact", "ratematch",
                                                           "overshoot"],
    "selection_seeds": [1, 2], "settings": None, "n_test": None, "max_seeds": 8,
    "test_blocks": 2,
}
#: The paper's setting (always in the powered comparison).
PAPER_SETTING = (1.0, "soft", "project", 75)
#: Smallest regime-map gap (fraction) that puts a setting into the powered comparison.
MIN_GAP = 0.02


# --------------------------------------------------------------------------- helpers


def provenance(model_path: Path, cfg: dict) -> dict:
    """Configuration, model hash, and the project's provenance record (git, versions)."""
    return {"model": model_path.name, "model_sha256": _sha(model_path),
            "dataset": "Fashion-MNIST", "config": cfg,
            **record("python -m validation study", files=(model_path,))}


@functools.lru_cache(maxsize=4)
def _sha(path: Path) -> str:
    return file_sha256(path)  # cached: every task key hashes the model


@functools.lru_cache(maxsize=2)
def load_model(name: str):
    """``(path, Network)`` of a shipped model."""
    from l4theory.convert.io import load_network

    path = REPO_ROOT / "models" / f"{name}.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (train it with models/train.py)")
    return path, load_network(path)


@functools.lru_cache(maxsize=2)
def load_split(split: str):
    """Normalised Fashion-MNIST ``(x, labels)`` of ``split`` (pixels in [-1, 1])."""
    from l4theory.convert import datasets

    ds = datasets.load_fashion_mnist(split)
    return datasets.normalize(ds.images), ds.labels.astype(np.int64)


def split_indices(subset_seed: int, n_calib: int, n_select: int, n_test: int | None,
                  n_train: int = 60_000, n_test_total: int = 10_000,
                  n_pilot: int = 0) -> dict:
    """Disjoint calibration and selection subsets of the training set, a test subset.

    Parameters
    ----------
    subset_seed : int
        Seed of the draws (``numpy.random.default_rng``).
    n_calib, n_select : int
        Sizes of the calibration (balancing, adjustment fits) and selection subsets.
    n_test : int or None
        Test subset size (None or >= ``n_test_total``: the whole test set).
    n_pilot : int
        Size of a third training subset (the power pilot), disjoint from the other two.

    Returns
    -------
    dict
        ``calib``, ``select``, ``pilot`` (training indices), ``test`` (test indices),
        sorted int64.
    """
    if n_calib < 1 or n_select < 1 or n_pilot < 0 or n_calib + n_select + n_pilot > n_train:
        raise ValueError(f"n_calib={n_calib}, n_select={n_select} must be >= 1 and fit in "
                         f"{n_train} training images")
    rng = np.random.default_rng(subset_seed)
    perm = rng.permutation(n_train)
    out = {"calib": np.sort(perm[:n_calib]),
           "select": np.sort(perm[n_calib:n_calib + n_select]),
           "pilot": np.sort(perm[n_calib + n_select:n_calib + n_select + n_pilot])}
    if n_test is None or n_test >= n_test_total:
        out["test"] = np.arange(n_test_total)
    else:
        out["test"] = np.sort(rng.permutation(n_test_total)[:n_test])
    return {k: v.astype(np.int64) for k, v in out.items()}


@functools.lru_cache(maxsize=8)
def _balanced(model: str, subset_seed: int, n_calib: int, n_select: int):
    from l4theory.convert.balance import balance

    _, net = load_model(model)
    idx = split_indices(subset_seed, n_calib, n_select, 2)["calib"]
    x, _ = load_split("train")
    return balance(net, x[idx], "max")


def _sim_kwargs(semantics: str) -> dict:
    return {} if semantics == "project" else {"semantics": semantics}


# --------------------------------------------------------------------------- tasks


def arm_network(arm: dict, *, model: str, subset_seed: int, n_calib: int, n_select: int,
                alpha: float, reset: str, semantics: str, steps: int, scale: float):
    """The network of one arm (method) and the thresholds it runs at.

    Parameters
    ----------
    arm : dict
        ``{"method": "none"}``, ``{"method": "l4" | "exact", "r_s": r}``,
        ``{"method": "ratematch"}`` or ``{"method": "overshoot"}``. Every fit uses the
        calibration *training* images only.
    model, subset_seed, n_calib, n_select : as in :func:`split_indices`.
    alpha, reset, semantics, steps : the simulation setting (rate-matching fits to it).
    scale : float
        Threshold scale: every balanced threshold times ``scale``.

    Returns
    -------
    (Network, numpy.ndarray, BalanceResult, dict)
        Network, thresholds, the balancing, and a JSON-safe summary of the fit.
    """
    from l4theory.convert.sweep import adjusted_network

    _, net = load_model(model)
    bal = _balanced(model, subset_seed, n_calib, n_select)
    th = np.asarray(bal.thresholds, dtype=np.float64) * scale
    method = arm["method"]
    if method == "none":
        return net, th, bal, {"method": "none"}
    x, _ = load_split("train")
    x_cal = x[split_indices(subset_seed, n_calib, n_select, 2)["calib"]]
    if method in ("l4", "exact"):
        r_s = math.inf if arm["r_s"] in ("inf", math.inf) else float(arm["r_s"])
        res = adjusted_network(net, x_cal, float(bal.thresholds[0]), r_s, method=method)
        return res.network, th, bal, res.summary()
    from l4theory.calibrate import adjusted_first_layer

    fit = adjusted_first_layer(net, x_cal, method, v_th=float(th[0]), steps=steps,
                               alpha=alpha, reset=reset,
                               bias_scale=float(bal.bias_scales[0]),
                               sim_kwargs=_sim_kwargs(semantics),
                               seed=arm.get("fit_seed", 20_000))
    return fit.network, th, bal, fit.summary()


def _task_key(task: dict, kind: str) -> str:
    model_path, _ = load_model(task["model"])
    blob = json.dumps({"v": CACHE_VERSION, "kind": kind, "model": _sha(model_path),
                       **{k: v for k, v in task.items() if k not in ("batch_size",)}},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _cached(task: dict, kind: str, fn, cache_dir):
    if cache_dir is None:
        return fn(task)
    path = Path(cache_dir) / f"{kind}_{_task_key(task, kind)}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    out = fn(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # one per writer process
    np.savez_compressed(tmp, **out)
    tmp.replace(path)
    return out


def _arm_of(task: dict):
    return arm_network(task["arm"], model=task["model"], subset_seed=task["subset_seed"],
                       n_calib=task["n_calib"], n_select=task["n_select"],
                       alpha=task["alpha"], reset=task["reset"], semantics=task["semantics"],
                       steps=task["steps"], scale=task["scale"])


def _predictions(task: dict) -> dict:
    from l4theory.convert.simulate import simulate

    t0 = time.perf_counter()
    net, th, bal, _ = _arm_of(task)
    ids = np.asarray(task["ids"], dtype=np.int64)
    x, y = load_split(task["split"])
    res = simulate(net, x[ids], y[ids], thresholds=th, steps=task["steps"],
                   alpha=task["alpha"], reset=task["reset"], encoder="signed",
                   seed=task["seed"], sample_ids=ids, bias_scales=bal.bias_scales,
                   readout_bias_scale=bal.readout_bias_scale,
                   batch_size=task.get("batch_size", 50), backend=task["backend"],
                   **_sim_kwargs(task["semantics"]))
    return {"predictions": res.predictions, "labels": y[ids],
            "time_s": np.float64(time.perf_counter() - t0)}


def predictions_task(task: dict, cache_dir=None) -> dict:
    """One pure task: predictions after every step of one arm at one scale on some images.

    Parameters
    ----------
    task : dict
        ``model``, ``arm`` (see :func:`arm_network`), ``subset_seed``, ``n_calib``,
        ``n_select``, ``alpha``, ``reset``, ``semantics``, ``steps``, ``scale``,
        ``split`` ("train" or "test"), ``ids`` (dataset indices, list of int),
        ``seed`` (input spike seed; the stream key of image ``i`` is ``(seed, i)``, so
        every arm sees the same spikes: common random numbers), ``backend``,
        optional ``batch_size``.
    cache_dir : path-like, optional
        Folder of cached task outputs (keyed by the task and the model hash).

    Returns
    -------
    dict
        ``predictions`` (int16, shape (steps, n)), ``labels`` (shape (n,)), ``time_s``.
    """
    return _cached(task, "pred", _predictions, cache_dir)


def _map(fn, tasks: list, workers: int = 1, cache_dir=None) -> list:
    """``[fn(t, cache_dir) for t in tasks]``, serially or on a local process pool.

    The pool's workers start from a fork server (or are spawned), never forked from this
    process: once a parallel Numba kernel has run here, its OpenMP runtime makes a plain
    ``fork`` abort the child ("fork() called from a process already using GNU OpenMP").
    """
    if workers <= 1 or len(tasks) <= 1:
        return [fn(t, cache_dir) for t in tasks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers,
                             mp_context=multiprocessing.get_context(method)) as pool:
        return list(pool.map(functools.partial(fn, cache_dir=cache_dir), tasks))


def _base_task(cfg: dict, **kw) -> dict:
    keys = ("model", "subset_seed", "n_calib", "n_select", "steps", "backend", "batch_size")
    return {**{k: cfg[k] for k in keys}, **kw}


def _ci(values) -> dict:
    from l4theory.convert.sweep import mean_ci

    return mean_ci(np.asarray(values, dtype=np.float64))


def _ann_correct(model: str, ids: np.ndarray, split: str = "test") -> np.ndarray:
    _, net = load_model(model)
    x, y = load_split(split)
    return net.predict(x[ids]) == y[ids]


def _edge(j: int, n: int) -> str | None:
    return "low" if j == 0 else ("high" if j == n - 1 else None)


def regime_setting(cfg: dict, alpha: float, reset: str, semantics: str, *, workers: int = 1,
                   cache_dir=None) -> tuple[dict, dict]:
    """Baseline gap of one (alpha, reset, semantics) at every reported T.

    Returns
    -------
    (dict, dict)
        The JSON row (per T: selected scale, edge flag, test accuracy, gap with 95% CI)
        and the arrays (selection accuracy per scale and step; per-image test correctness).
    """
    idx = split_indices(cfg["subset_seed"], cfg["n_calib"], cfg["n_select"], cfg["n_test"])
    common = dict(arm={"method": "none"}, alpha=alpha, reset=reset, semantics=semantics)
    scales = list(cfg["scales"])
    sel = _map(predictions_task, [
        _base_task(cfg, **common, scale=s, split="train", ids=idx["select"].tolist(),
                   seed=cfg["select_seed"]) for s in scales], workers, cache_dir)
    sel_acc = np.array([(o["predictions"] == o["labels"][None]).mean(axis=1) for o in sel])
    steps = [int(t) for t in cfg["report_steps"]]
    chosen = {t: int(np.argmax(sel_acc[:, t - 1])) for t in steps}  # ties: lowest scale
    test_tasks = [_base_task(cfg, **common, scale=scales[j], split="test",
                             ids=idx["test"].tolist(), seed=seed)
                  for j in sorted(set(chosen.values())) for seed in cfg["seeds"]]
    outs = _map(predictions_task, test_tasks, workers, cache_dir)
    by = {(t["scale"], t["seed"]): o for t, o in zip(test_tasks, outs, strict=True)}
    ann = _ann_correct(cfg["model"], idx["test"])
    row = {"alpha": alpha, "reset": reset, "semantics": semantics,
           "ann_accuracy": float(ann.mean()), "per_T": []}
    arrays = {"select_accuracy": sel_acc}
    for t in steps:
        s = scales[chosen[t]]
        corr = np.array([by[(s, seed)]["predictions"][t - 1] == by[(s, seed)]["labels"]
                         for seed in cfg["seeds"]])
        snn = corr.mean(axis=0)
        gap = _ci(ann.astype(float) - snn)
        row["per_T"].append({"T": t, "scale": s, "edge": _edge(chosen[t], len(scales)),
                             "select_accuracy": float(sel_acc[chosen[t], t - 1]),
                             "snn": _ci(snn), "gap": gap})
        arrays[f"T{t}_correct"] = corr
    row["time_s"] = float(sum(o["time_s"] for o in sel + outs))
    return row, arrays


def _tag(*parts) -> str:
    return "_".join(f"{p:g}" if isinstance(p, float) else str(p) for p in parts)


def _row_tag(r: dict) -> str:
    """The setting of an accuracy or explore row as one tag (``0.85_hard_project_15``)."""
    return _tag(r["alpha"], r["reset"], r["semantics"], r["T"])


def _write(doc: dict, arrays: dict, out_dir: Path, stem: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"{stem}.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
    tmp.replace(out_dir / f"{stem}.json")
    if arrays:
        tmpz = out_dir / f"{stem}.tmp.npz"
        np.savez_compressed(tmpz, **arrays)
        tmpz.replace(out_dir / f"{stem}.npz")


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def regime_map(cfg: dict, out_dir: Path, *, workers: int = 1, log=print) -> dict:
    """Run the regime map over ``cfg``'s settings; writes ``regime_<mode>.json/.npz`` as it goes."""
    cache = out_dir / "tasks"
    stem = f"regime_{cfg['mode']}"
    path, _ = load_model(cfg["model"])
    doc = {"part": "regime", "rows": [], "provenance": provenance(path, cfg)}
    arrays: dict = {}
    t0 = time.perf_counter()
    for sem, reset, alpha in regime_order(cfg):
        row, arr = regime_setting(cfg, alpha, reset, sem, workers=workers, cache_dir=cache)
        doc["rows"].append(row)
        arrays.update({f"{_tag(sem, reset, alpha)}_{k}": v for k, v in arr.items()})
        doc["elapsed_s"] = time.perf_counter() - t0
        _write(doc, arrays, out_dir, stem)
        log(regime_line(row))
    return doc


def regime_order(cfg: dict) -> list[tuple]:
    """(semantics, reset, alpha) of the regime map, extremes first.

    A partial run then covers the corners of the map (no leak and the fastest leak, both
    resets) before the intermediate leaks.
    """
    alphas = sorted(cfg["alphas"], reverse=True)
    order = [alphas[0], alphas[-1]] + alphas[1:-1][::-1] if len(alphas) > 1 else alphas
    out = []
    for sem in cfg["semantics"]:
        for k, alpha in enumerate(order):
            resets = list(cfg["resets"]) if k % 2 == 0 else list(cfg["resets"])[::-1]
            out += [(sem, reset, alpha) for reset in resets]
    return out


def regime_line(row: dict) -> str:
    """One text line of a regime-map row."""
    parts = [f"{row['semantics']:7s} {row['reset']} a={row['alpha']:<5g} "
             f"ANN {100 * row['ann_accuracy']:.2f}"]
    for r in row["per_T"]:
        edge = "*" if r["edge"] else ""
        parts.append(f"T{r['T']}: gap {100 * r['gap']['mean']:+.2f}"
                     f"±{100 * r['gap']['half_width']:.2f} @{r['scale']:g}{edge}")
    return " | ".join(parts)


# --------------------------------------------------------------------------- fidelity


def _fidelity(task: dict) -> dict:
    from l4theory.convert.fidelity import first_layer_fidelity

    t0 = time.perf_counter()
    net, th, bal, fit = _arm_of(task)
    _, ref = load_model(task["model"])
    ids = np.asarray(task["ids"], dtype=np.int64)
    x, _ = load_split(task["split"])
    m = first_layer_fidelity(net, ref, x[ids], v_th=float(th[0]), steps=task["steps"],
                             seed=task["seed"], sample_ids=ids,
                             bias_scale=float(bal.bias_scales[0]), alpha=task["alpha"],
                             reset=task["reset"], encoder="signed",
                             max_pairs=task.get("max_pairs"), rng=task["seed"],
                             **_sim_kwargs(task["semantics"]))
    out = {k: np.float64(m[k]) for k in ("mse", "corr", "mean_rate", "mean_target",
                                         "dominance_error", "dominance_error_active")}
    for key in ("dominance", "dominance_active"):
        for k in ("pairs", "reversed", "tied"):
            out[f"{key}_{k}"] = np.int64(m[key][k])
    out["mse_per_image"] = np.asarray(m["mse_per_sample"], np.float64)
    out["fit"] = np.array(json.dumps(fit, default=_json_default))
    out["time_s"] = np.float64(time.perf_counter() - t0)
    return out


def fidelity_task(task: dict, cache_dir=None) -> dict:
    """One pure task: first-layer fidelity of one arm at one scale on some images.

    Parameters
    ----------
    task : dict
        As for :func:`predictions_task` (``split`` is "test" for the table), plus
        optional ``max_pairs`` (sampled dominance pairs, seeded by ``seed``).
    cache_dir : path-like, optional

    Returns
    -------
    dict
        ``mse``, ``corr``, ``mean_rate``, ``mean_target``, ``dominance_error``,
        ``dominance_error_active``, the pair counts, ``mse_per_image``, ``fit`` (JSON
        text), ``time_s``.
    """
    return _cached(task, "fid2", _fidelity, cache_dir)  # fid2: with mse_per_image


def _arms(r_s_list, methods, reset: str) -> list[dict]:
    """The arms of a table: none, L4 and exact at every finite r_s, the calibrations."""
    arms = [{"method": "none"}]
    for method in methods:
        if method in ("l4", "exact"):
            arms += [{"method": method, "r_s": r} for r in r_s_list if r not in ("inf",)]
        elif method == "overshoot" and reset == "soft":
            continue  # soft reset keeps the overshoot: identical to the baseline
        else:
            arms.append({"method": method})
    return arms


def arm_label(arm: dict) -> str:
    """Short text name of an arm."""
    if arm["method"] in ("l4", "exact"):
        return f"{arm['method']} r_s={arm['r_s']:g}"
    return arm["method"]


def fidelity_table(cfg: dict, out_dir: Path, *, workers: int = 1, log=print) -> dict:
    """First-layer fidelity of every method on test images; writes ``fidelity_<mode>.json``."""
    fc = cfg["fidelity"]
    idx = split_indices(cfg["subset_seed"], cfg["n_calib"], cfg["n_select"], fc["n_images"])
    path, _ = load_model(cfg["model"])
    doc = {"part": "fidelity", "rows": [], "provenance": provenance(path, cfg)}
    t0 = time.perf_counter()
    for steps in fc.get("steps", [cfg["steps"]]):  # short T first: cheap, covers all settings
        for alpha, reset in fc["settings"]:
            arms = _arms(fc["r_s"], fc.get("methods", ["l4", "exact", "ratematch",
                                                        "overshoot"]), reset)
            tasks = [{**_base_task(cfg, arm=a, alpha=alpha, reset=reset, semantics="project",
                                   scale=fc["scale"], split="test", ids=idx["test"].tolist(),
                                   seed=0, max_pairs=fc.get("max_pairs")), "steps": steps}
                     for a in arms]
            outs = _map(fidelity_task, tasks, workers, out_dir / "tasks")
            none = outs[0]["mse_per_image"]  # arms[0] is the unadjusted layer
            for a, o in zip(arms, outs, strict=True):
                row = {"alpha": alpha, "reset": reset, "steps": steps, "scale": fc["scale"],
                       "arm": a, "label": arm_label(a), "fit": json.loads(str(o["fit"])),
                       **{k: float(v) for k, v in o.items()
                          if k not in ("fit", "mse_per_image")},
                       "mse_vs_none": _ci(o["mse_per_image"] - none)}
                doc["rows"].append(row)
                log(f"fidelity a={alpha:g} {reset} T={steps} {row['label']:16s} "
                    f"mse {row['mse']:.4f} corr {row['corr']:.3f} "
                    f"dom {row['dominance_error']:.4f}")
            doc["elapsed_s"] = time.perf_counter() - t0
            _write(doc, {}, out_dir, f"fidelity_{cfg['mode']}")
    return doc


# --------------------------------------------------------------------------- accuracy


def _correct(out: dict, t: int) -> np.ndarray:
    return out["predictions"][t - 1] == out["labels"]


def _correct_on(cfg, setting, pairs, split, blocks, seeds, workers, cache) -> dict:
    """Correctness of each (arm, scale) in ``pairs`` on images of ``split`` at ``seeds``.

    One task per (arm, scale, seed, block of image indices), all mapped at once; returns
    ``{(json of arm, scale): bool array (len(seeds), n)}``, the blocks in their order.
    """
    alpha, reset, sem, t = setting
    base = {**_base_task(cfg, alpha=alpha, reset=reset, semantics=sem, split=split),
            "steps": t}
    keys = [(a, s, seed) for a, s in pairs for seed in seeds]
    tasks = [{**base, "arm": a, "scale": s, "seed": seed, "ids": [int(i) for i in b]}
             for a, s, seed in keys for b in blocks]
    outs = iter(_map(predictions_task, tasks, workers, cache))
    got: dict = {}
    for a, s, _ in keys:  # the blocks of one (arm, scale, seed), in order
        c = np.concatenate([_correct(next(outs), t) for _ in blocks])
        got.setdefault((json.dumps(a, sort_keys=True), s), []).append(c)
    return {k: np.array(v) for k, v in got.items()}


def _train_correct(cfg, setting, pairs, ids, seed, workers, cache) -> dict:
    """Training-set correctness of each (arm, scale): ``{(json of arm, scale): (1, n)}``."""
    return _correct_on(cfg, setting, pairs, "train", [ids], [seed], workers, cache)


def _select(cfg, arms, setting, idx, workers, cache) -> list[dict]:
    """Per arm, the selection accuracy of every scale at T and the chosen scale."""
    scales = list(cfg["scales"])
    got = _train_correct(cfg, setting, [(a, s) for a in arms for s in scales],
                         idx["select"], cfg["select_seed"], workers, cache)
    res = []
    for a in arms:
        acc = np.array([got[(json.dumps(a, sort_keys=True), s)].mean() for s in scales])
        j = int(np.argmax(acc))
        res.append({"arm": a, "label": arm_label(a), "select_accuracy": acc.tolist(),
                    "scale": scales[j], "edge": _edge(j, len(scales)),
                    "best_select": float(acc[j])})
    return res


def _family_best(sel: list[dict], family: str) -> dict | None:
    """The arm of a method family with the best selection accuracy (ties: first listed)."""
    cands = [r for r in sel if r["arm"]["method"] == family]
    return max(cands, key=lambda r: r["best_select"]) if cands else None


def _bootstrap_recovered(ann, base, arm, n_boot=2000, seed=0) -> dict:
    """Percentile bootstrap over images (and seeds) of (arm - base) / (ann - base).

    ``base``, ``arm``: correctness (n_seeds, n_images); ``ann``: (n_images,).
    """
    rng = np.random.default_rng(seed)
    n_seeds, n = base.shape
    vals = np.empty(n_boot)
    for b in range(n_boot):
        i = rng.integers(0, n, n)
        s = rng.integers(0, n_seeds, n_seeds)
        bb = base[s][:, i].mean()
        aa = arm[s][:, i].mean()
        gap = ann[i].mean() - bb
        vals[b] = (aa - bb) / gap if gap > 0 else np.nan
    ok = vals[np.isfinite(vals)]
    gap = ann.mean() - base.mean()
    point = (arm.mean() - base.mean()) / gap if gap > 0 else float("nan")
    if ok.size < n_boot // 2:
        return {"mean": point, "lo": float("nan"), "hi": float("nan"), "n_boot": n_boot}
    return {"mean": point, "lo": float(np.percentile(ok, 2.5)),
            "hi": float(np.percentile(ok, 97.5)), "n_boot": n_boot}


def _compare(ann, base, arm) -> dict:
    d = arm.mean(axis=0) - base.mean(axis=0)
    return {"arm": _ci(arm.mean(axis=0)), "difference": _ci(d),
            "recovered": _bootstrap_recovered(ann, base, arm),
            "discordant": float((arm != base).mean())}


def accuracy_setting(cfg, setting, *, workers=1, cache=None) -> tuple[dict, dict]:
    """Baseline vs every arm at one pre-registered setting (alpha, reset, semantics, T)."""
    ac = cfg["accuracy"]
    alpha, reset, sem, t = setting
    idx = split_indices(cfg["subset_seed"], cfg["n_calib"], cfg["n_select"], cfg["n_test"])
    arms = _arms(ac["r_s"], ac["methods"], reset)
    sel = _select(cfg, arms, setting, idx, workers, cache)
    cfg = {**cfg, "seeds": ac.get("seeds", cfg["seeds"])}
    idx = split_indices(cfg["subset_seed"], cfg["n_calib"], cfg["n_select"],
                        ac.get("n_test", cfg["n_test"]))
    base_scale = sel[0]["scale"]
    fams = [f for f in ac["methods"] if _family_best(sel, f) is not None]
    chosen = [0] + [sel.index(_family_best(sel, f)) for f in fams]
    need = sorted({(k, sel[k]["scale"]) for k in chosen} | {(k, base_scale) for k in chosen})
    got = _test_correct(cfg, setting, [(arms[k], s) for k, s in need], cfg["seeds"],
                        workers, cache)

    def corr(k, s):
        return got[(json.dumps(arms[k], sort_keys=True), s)]

    ann = _ann_correct(cfg["model"], idx["test"]).astype(float)
    base = corr(0, base_scale)
    row = {"alpha": alpha, "reset": reset, "semantics": sem, "T": t,
           "ann_accuracy": float(ann.mean()), "baseline": _ci(base.mean(axis=0)),
           "baseline_scale": base_scale, "gap": _ci(ann - base.mean(axis=0)), "arms": []}
    arrays = {"ann": ann, "baseline": base}
    for k in chosen[1:]:
        r = sel[k]
        sel_c, mat_c = corr(k, r["scale"]), corr(k, base_scale)
        row["arms"].append({**r, "selected": _compare(ann, base, sel_c),
                            "matched": _compare(ann, base, mat_c)})
        arrays[f"arm{k}_selected"] = sel_c
        arrays[f"arm{k}_matched"] = mat_c
    row["selection"] = sel
    best = max((sel[k] for k in chosen[1:] if sel[k]["arm"]["method"] != "l4"),
               key=lambda r: r["best_select"], default=None)
    row["best_new_method"] = best["label"] if best else None  # chosen on training images
    l4 = _family_best(sel, "l4")
    row["best_l4"] = l4["label"] if l4 else None
    return row, arrays


def _test_correct(cfg, setting, pairs, seeds, workers, cache) -> dict:
    """Test-set correctness of each (arm, scale) in ``pairs`` at ``seeds``.

    The test set of ``cfg["accuracy"]`` (``n_test``, split into ``test_blocks`` tasks per
    (arm, scale, seed)); returns ``{(json of arm, scale): bool array (len(seeds), n)}``.
    """
    ac = cfg["accuracy"]
    idx = split_indices(cfg["subset_seed"], cfg["n_calib"], cfg["n_select"],
                        ac.get("n_test", cfg["n_test"]))
    blocks = np.array_split(idx["test"], ac.get("test_blocks", 1))
    return _correct_on(cfg, setting, pairs, "test", blocks, seeds, workers, cache)


def _stage_start(cfg: dict, out_dir: Path, part: str, needs: str) -> tuple[list, dict, dict]:
    """Rows of the part ``needs`` wrote, ``cfg`` with the plan's arms, ``part``'s new doc."""
    src = Path(out_dir) / f"{needs}_{cfg['mode']}.json"
    if not src.exists():
        raise FileNotFoundError(f"{src} is missing: run that part first "
                                f"(python -m validation study --part {needs})")
    cfg = {**cfg, "accuracy": cfg["accuracy"] or PREREGISTERED}
    path, _ = load_model(cfg["model"])
    return (json.loads(src.read_text())["rows"], cfg,
            {"part": part, "rows": [], "provenance": provenance(path, cfg)})


def threshold_check(cfg: dict, out_dir: Path, *, workers: int = 1, log=print) -> dict:
    """EXPLORATORY, not pre-registered: each arm against the baseline at the arm's scale.

    The plan's two comparisons hold either each arm's own selected scale against the
    baseline's (selected on train) or the baseline's scale for both (matched). This adds
    the mirror image, decided after the first accuracy row: the baseline run at every
    grid scale from the lowest to the highest that an arm or the baseline selected, on the
    same test images and seeds (``seeds_done`` of each row of ``accuracy_<mode>.json``),
    so that a gain can be split into "the threshold" and "the method". Each arm is
    compared with the baseline at the arm's own scale and with the baseline at its best
    scale in that range *on the test set* (a comparison tilted towards the baseline).
    The symmetric form (added on 2026-12-03, after the first explore run): every arm (with
    its selected ``r_s``) is run at every scale of the same range too, and its best test
    scale is compared with the baseline's best test scale; both are chosen on the test
    set, so both are optimistic by the same mechanism. Where a series' (the baseline's or
    an arm's) best scale lies on the edge of what ran and the grid goes on, its next grid
    scale runs too, until its best has both grid neighbours run (or the grid ends): a best
    "on the test set" must not be an artefact of the range. Writes
    ``explore_<mode>.json``.
    """
    rows, cfg, doc = _stage_start(cfg, out_dir, "explore", "accuracy")
    t0 = time.perf_counter()
    none = {"method": "none"}
    for r in rows:
        setting = (float(r["alpha"]), r["reset"], r["semantics"], int(r["T"]))
        seeds = list(range(int(r.get("seeds_done", len(cfg["seeds"])))))
        used = {a["scale"] for a in r["arms"]} | {r["baseline_scale"]}
        scales = [g for g in cfg["scales"] if min(used) <= g <= max(used)]  # contiguous
        series = [none] + [a["arm"] for a in r["arms"]]  # every selected scale is in range
        got = _test_correct(cfg, setting, [(a, s) for a in series for s in scales], seeds,
                            workers, out_dir / "tasks")
        run = functools.partial(_test_correct, cfg, setting, seeds=seeds, workers=workers,
                                cache=out_dir / "tasks")
        got = _extend_to_interior(cfg["scales"], series, got, run)
        base = _by_scale(got, none)
        best = max(base, key=lambda g: base[g].mean())  # chosen on TEST: optimistic
        row = {"alpha": setting[0], "reset": setting[1], "semantics": setting[2],
               "T": setting[3], "seeds": len(seeds), "baseline_scale": r["baseline_scale"],
               "baseline_by_scale": {f"{s:g}": _ci(b) for s, b in base.items()},
               "baseline_best_on_test": best, "arms": []}
        for a in r["arms"]:
            by = _by_scale(got, a["arm"])
            mine = by[a["scale"]]
            top = max(by, key=lambda g: by[g].mean())  # the arm's own, also on TEST
            row["arms"].append({"label": a["label"], "scale": a["scale"], "arm": _ci(mine),
                                "vs_baseline_same_scale": _ci(mine - base[a["scale"]]),
                                "vs_baseline_best_on_test": _ci(mine - base[best]),
                                "by_scale": {f"{s:g}": _ci(v) for s, v in by.items()},
                                "best_on_test": top,
                                "best_vs_baseline_best": _ci(by[top] - base[best])})
        doc["rows"].append(row)
        doc["elapsed_s"] = time.perf_counter() - t0
        _write(doc, {}, out_dir, f"explore_{cfg['mode']}")
        log(f"explore {_tag(*setting)}: baseline by scale " + ", ".join(
            f"{k} {100 * v['mean']:.2f}" for k, v in row["baseline_by_scale"].items()))
    return doc


def _by_scale(got: dict, arm: dict) -> dict:
    """``{scale: per-image accuracy over seeds}`` of one arm in ``got``, scales ascending."""
    key = json.dumps(arm, sort_keys=True)
    return {s: got[(k, s)].mean(axis=0) for k, s in sorted(got, key=lambda x: x[1])
            if k == key}


def _extend_to_interior(grid, arms, got, run) -> dict:
    """Run each arm at the next ``grid`` scale while its best scale in ``got`` is on an edge.

    ``got``: ``{(json of arm, scale): correctness (seeds, images)}``; ``run(pairs)`` returns
    the same for a list of new ``(arm, scale)`` pairs. Ties go to the lower scale.
    """
    grid = sorted(grid)
    while True:
        new = []
        for arm in arms:
            by = _by_scale(got, arm)
            i = grid.index(max(by, key=lambda g: by[g].mean()))
            new += [(arm, grid[j]) for j in (i - 1, i + 1)
                    if 0 <= j < len(grid) and grid[j] not in by]
        if not new:
            return got
        got = {**got, **run(new)}


def _scale_list(acc: dict, best) -> str:
    """``"0.3: 90.00; 0.35*: 91.30; ..."``: accuracy (%) by scale, the chosen one starred."""
    return "; ".join(f"{k}{'*' if k == f'{best:g}' else ''}: {100 * v:.2f}"
                     for k, v in acc.items())


def explore_markdown(doc: dict) -> str:
    """The exploratory threshold check as Markdown."""
    lines = ["| setting | seeds | method @scale | method % | baseline % at the same scale | "
             "method - baseline, same scale (points) | method - baseline at its best "
             "test scale (points) |", "|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        st = _row_tag(r)
        for a in r["arms"]:
            b = r["baseline_by_scale"][f"{a['scale']:g}"]
            lines.append(f"| {st} | {r['seeds']} | {a['label']} @{a['scale']:g} | "
                         f"{_pts(a['arm'])} | {_pts(b)} | "
                         f"{_pts(a['vs_baseline_same_scale'], True)} | "
                         f"{_pts(a['vs_baseline_best_on_test'], True)} |")
    lines += ["", "| setting | method (or baseline) | test accuracy % by scale (best marked *) "
              "| best - baseline at its best (points) |", "|---|---|---|---|"]

    def scale_list(d: dict, best) -> str:
        return _scale_list({k: v["mean"] for k, v in d.items()}, best)

    for r in doc["rows"]:
        st = _row_tag(r)
        lines.append(f"| {st} | baseline | "
                     f"{scale_list(r['baseline_by_scale'], r['baseline_best_on_test'])} | |")
        for a in r["arms"]:
            if "by_scale" in a:  # explore files written before the symmetric form lack it
                lines.append(f"| {st} | {a['label']} | "
                             f"{scale_list(a['by_scale'], a['best_on_test'])} | "
                             f"{_pts(a['best_vs_baseline_best'], True)} |")
    return "\n".join(lines)


def confirm_setting(cfg: dict, row: dict, *, workers: int = 1, cache=None) -> dict:
    """The confirmatory stage at one setting of the accuracy table (``row``).

    Each series (the baseline and every family's arm as the first stage selected it)
    takes its threshold scale on ``cfg["confirm"]["n_select"]`` training images (the power
    pilot's, disjoint from the calibration and selection subsets; spike seed
    ``cfg["confirm"]["seed"]``): first the ``start`` scales, then the next ``grid`` scale
    while its best sits on an edge of what ran (:func:`_extend_to_interior`); ties go to
    the lower scale. Then every series runs on the test set at its own scale, at the
    seeds the first stage has done, and each family is compared with the baseline.
    """
    cc = cfg["confirm"]
    setting = (float(row["alpha"]), row["reset"], row["semantics"], int(row["T"]))
    seeds = list(range(int(row.get("seeds_done", 1))))
    ids = split_indices(cfg["subset_seed"], cfg["n_calib"], cfg["n_select"], None,
                        n_pilot=cc["n_select"])["pilot"]
    none = {"method": "none"}
    series = [none] + [a["arm"] for a in row["arms"]]
    labels = ["baseline"] + [a["label"] for a in row["arms"]]

    def run(pairs):
        return _train_correct(cfg, setting, pairs, ids, cc["seed"], workers, cache)

    got = run([(a, s) for a in series for s in cc["start"]])
    got = _extend_to_interior(cc["grid"], series, got, run)
    chosen, curves = [], []
    for a in series:
        by = _by_scale(got, a)
        best = max(by, key=lambda g: by[g].mean())  # first of equals: the lower scale
        chosen.append(best)
        curves.append({f"{g:g}": float(v.mean()) for g, v in by.items()})
    test = _test_correct(cfg, setting, list(zip(series, chosen, strict=True)), seeds,
                         workers, cache)
    corr = [test[(json.dumps(a, sort_keys=True), g)] for a, g in zip(series, chosen,
                                                                         strict=True)]
    idx = split_indices(cfg["subset_seed"], cfg["n_calib"], cfg["n_select"],
                        cfg["accuracy"].get("n_test", cfg["n_test"]))
    ann = _ann_correct(cfg["model"], idx["test"]).astype(float)
    base = corr[0]
    grid = sorted(cc["grid"])
    out = {"alpha": setting[0], "reset": setting[1], "semantics": setting[2],
           "T": setting[3], "seeds": len(seeds), "n_select": int(len(ids)),
           "ann_accuracy": float(ann.mean()), "baseline": _ci(base.mean(axis=0)),
           "baseline_scale": chosen[0], "baseline_curve": curves[0],
           "gap": _ci(ann - base.mean(axis=0)), "arms": []}
    for k in range(1, len(series)):
        out["arms"].append({"label": labels[k], "arm": series[k], "scale": chosen[k],
                            "stage1_scale": row["arms"][k - 1]["scale"],
                            "curve": curves[k],
                            "edge": _edge(grid.index(chosen[k]), len(grid)),
                            "test": _compare(ann, base, corr[k])})
    out["baseline_edge"] = _edge(grid.index(chosen[0]), len(grid))
    sel = {a["label"]: a["curve"][f"{a['scale']:g}"] for a in out["arms"]}
    new = [a["label"] for a in out["arms"] if a["arm"]["method"] != "l4"]
    # like the first stage's: the non-L4 family best on the selection images (not on test)
    out["best_new_method"] = max(new, key=lambda k: sel[k]) if new else None
    out["best_l4"] = next((a["label"] for a in out["arms"] if a["arm"]["method"] == "l4"),
                          None)
    return out


def confirm_table(cfg: dict, out_dir: Path, *, workers: int = 1, log=print) -> dict:
    """The confirmatory stage (docs/study.md, third session) at every finished setting.

    Reads ``accuracy_<mode>.json`` (the first stage's rows and their selected arms) and
    runs :func:`confirm_setting` for each row in its order; writes ``confirm_<mode>.json``
    after each setting.
    """
    rows, cfg, doc = _stage_start(cfg, out_dir, "confirm", "accuracy")
    t0 = time.perf_counter()
    for r in rows:
        row = confirm_setting(cfg, r, workers=workers, cache=out_dir / "tasks")
        doc["rows"].append(row)
        doc["elapsed_s"] = time.perf_counter() - t0
        _write(doc, {}, out_dir, f"confirm_{cfg['mode']}")
        log(f"confirm {_row_tag(row)}: baseline @{row['baseline_scale']:g} "
            f"{100 * row['baseline']['mean']:.2f}; " + "; ".join(
                f"{a['label']} @{a['scale']:g} {100 * a['test']['difference']['mean']:+.2f}"
                for a in row["arms"]))
    return doc


def confirm_reading(arm: dict) -> str:
    """The reading rule of the confirmatory stage for one family, in words.

    ``arm``: a confirmatory arm (its ``test`` comparison is read) or a :func:`_compare`.
    """
    cmp = arm.get("test", arm)
    d, rec = cmp["difference"], cmp["recovered"]
    if d["lo"] > 0:
        return ("recovers the gap" if rec["mean"] >= 0.5
                else "beats a well-chosen threshold")
    if d["hi"] < 0:
        return "worse than a well-chosen threshold"
    return "no difference of the CI's size"


def confirm_markdown(doc: dict) -> str:
    """The confirmatory stage as Markdown: comparison table, then the selection curves."""
    lines = ["| setting | seeds | ANN % | baseline % @scale | gap (points) | method @scale "
             "(stage 1) | diff (points) | power 0.3 pt | 80%-power effect (points) | "
             "recovered [95% CI] | reading |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        st = _row_tag(r)
        for a in r["arms"]:
            rec, d = a["test"]["recovered"], a["test"]["difference"]
            lines.append(
                f"| {st} | {r['seeds']} | {100 * r['ann_accuracy']:.2f} | "
                f"{_pts(r['baseline'])} @{r['baseline_scale']:g} | {_pts(r['gap'], True)} | "
                f"{a['label']} @{a['scale']:g}{' (edge)' if a['edge'] else ''} "
                f"({a['stage1_scale']:g}) | {_pts(d, True)} | {_power_of(d):.2f} | "
                f"{100 * _mde(d):.2f} | {rec['mean']:.2f} "
                f"[{rec['lo']:.2f}, {rec['hi']:.2f}] | {confirm_reading(a)} |")
    lines += ["", "| setting | series | selection accuracy % by scale (n images; chosen *) |",
              "|---|---|---|"]
    for r in doc["rows"]:
        st = _row_tag(r)
        lines.append(f"| {st} | baseline | "
                     f"{_scale_list(r['baseline_curve'], r['baseline_scale'])} "
                     f"({r['n_select']}) |")
        lines += [f"| {st} | {a['label']} | {_scale_list(a['curve'], a['scale'])} |"
                  for a in r["arms"]]
    return "\n".join(lines)


def holdout_size(row: dict, hc: dict) -> int:
    """The fourth session's size rule: held-out training images for one confirmatory row.

    The smallest multiple of ``hc["block"]`` images ``n_h`` with
    ``max_k MDE_k * sqrt(n / (n + n_h)) <= hc["target_mde"]``, where ``MDE_k`` is the
    80%-power effect of comparison ``k`` on the row's ``n`` test images; capped at
    ``hc["cap"]``. Only the test set's variances enter, never a difference.
    """
    n = min(a["test"]["difference"]["n"] for a in row["arms"])
    worst = max(_mde(a["test"]["difference"]) for a in row["arms"])
    need = n * ((worst / hc["target_mde"]) ** 2 - 1)
    if need <= 0:
        return 0
    return int(min(hc["cap"], hc["block"] * math.ceil(need / hc["block"])))


def holdout_blocks(subset_seed: int, start: int, n: int, block: int,
                   n_train: int = 60_000) -> list[np.ndarray]:
    """Training indices ``perm[start : start + n]`` in blocks of ``block`` (each sorted).

    ``perm`` is the permutation of :func:`split_indices` for ``subset_seed``, whose first
    ``start`` entries are its calibration, selection and pilot subsets, so the blocks are
    disjoint from all three, and a larger ``n`` only appends blocks.
    """
    if n < 0 or block < 1 or start + n > n_train:
        raise ValueError(f"n={n} held-out images after the first {start} do not fit in "
                         f"{n_train} training images (block={block})")
    perm = np.random.default_rng(subset_seed).permutation(n_train)[start:start + n]
    return [np.sort(perm[i:i + block]).astype(np.int64) for i in range(0, n, block)]


def holdout_setting(cfg: dict, row: dict, *, workers: int = 1, cache=None) -> tuple[dict, dict]:
    """The fourth session's stage at one row of the confirmatory table (``row``).

    Every series (the baseline and each family's arm) runs at its confirmatory scale,
    unchanged, on :func:`holdout_size` further training images (:func:`holdout_blocks`,
    spike seed ``cfg["holdout"]["seed"]``, common random numbers); each family is compared
    with the baseline on those images alone and pooled with the row's test images (one
    seed-averaged difference per image).
    """
    hc = cfg["holdout"]
    setting = (float(row["alpha"]), row["reset"], row["semantics"], int(row["T"]))
    series = [{"method": "none"}] + [a["arm"] for a in row["arms"]]
    pairs = list(zip(series, [row["baseline_scale"]] + [a["scale"] for a in row["arms"]],
                     strict=True))
    n_h = holdout_size(row, hc)
    start = cfg["n_calib"] + cfg["n_select"] + cfg["confirm"]["n_select"]
    blocks = holdout_blocks(cfg["subset_seed"], start, n_h, hc["block"])
    ids = np.concatenate(blocks) if blocks else np.zeros(0, np.int64)
    test = _test_correct(cfg, setting, pairs, list(range(int(row["seeds"]))), workers, cache)
    held = (_correct_on(cfg, setting, pairs, "train", blocks, [hc["seed"]], workers, cache)
            if blocks else {})
    idx = split_indices(cfg["subset_seed"], cfg["n_calib"], cfg["n_select"],
                        cfg["accuracy"].get("n_test", cfg["n_test"]))
    ann_t = _ann_correct(cfg["model"], idx["test"]).astype(float)
    ann_h = _ann_correct(cfg["model"], ids, "train").astype(float)
    ann_p = np.concatenate([ann_t, ann_h])
    keys = [(json.dumps(a, sort_keys=True), g) for a, g in pairs]
    tc = [test[k].mean(axis=0) for k in keys]  # per image, averaged over the test seeds
    hcor = [held[k].mean(axis=0) if held else np.zeros(0) for k in keys]
    pooled = [np.concatenate([t, h])[None] for t, h in zip(tc, hcor, strict=True)]
    out = {"alpha": setting[0], "reset": setting[1], "semantics": setting[2],
           "T": setting[3], "seeds": int(row["seeds"]), "n_test": int(ann_t.size),
           "n_holdout": int(n_h), "holdout_seed": hc["seed"],
           "target_mde": hc["target_mde"], "baseline_scale": row["baseline_scale"],
           "ann_accuracy": {"test": float(ann_t.mean()),
                            "holdout": float(ann_h.mean()) if n_h else None},
           "baseline": {"test": _ci(tc[0]), "holdout": _ci(hcor[0]) if n_h else None,
                        "pooled": _ci(pooled[0][0])},
           "gap": {"holdout": _ci(ann_h - hcor[0]) if n_h else None,
                   "pooled": _ci(ann_p - pooled[0][0])}, "arms": []}
    arrays = {f"{_row_tag(out)}_holdout_ids": ids}
    for k in range(1, len(series)):
        a = row["arms"][k - 1]
        out["arms"].append({
            "label": a["label"], "arm": a["arm"], "scale": a["scale"],
            "test": a["test"]["difference"],
            "holdout": _compare(ann_h, hcor[0][None], hcor[k][None]) if n_h else None,
            "pooled": _compare(ann_p, pooled[0], pooled[k])})
    for k, c in enumerate(hcor):
        arrays[f"{_row_tag(out)}_series{k}"] = c.astype(bool)
    return out, arrays


def holdout_table(cfg: dict, out_dir: Path, *, workers: int = 1, log=print) -> dict:
    """The fourth session's stage (docs/study.md) at every row of ``confirm_<mode>.json``.

    Writes ``holdout_<mode>.json/.npz`` after each setting (per-image correctness of every
    series on the held-out images, and their indices, in the npz).
    """
    rows, cfg, doc = _stage_start(cfg, out_dir, "holdout", "confirm")
    arrays: dict = {}
    t0 = time.perf_counter()
    for r in rows:
        log(f"holdout {_row_tag(r)}: {holdout_size(r, cfg['holdout'])} training images x "
            f"{1 + len(r['arms'])} series")
        row, arr = holdout_setting(cfg, r, workers=workers, cache=out_dir / "tasks")
        doc["rows"].append(row)
        arrays.update(arr)
        doc["elapsed_s"] = time.perf_counter() - t0
        _write(doc, arrays, out_dir, f"holdout_{cfg['mode']}")
        log(f"holdout {_row_tag(row)}: pooled " + "; ".join(
            f"{a['label']} {100 * a['pooled']['difference']['mean']:+.2f} "
            f"(power {_power_of(a['pooled']['difference']):.2f})" for a in row["arms"]))
    return doc


def holdout_markdown(doc: dict) -> str:
    """The fourth session's stage as Markdown: held-out and pooled comparisons."""
    lines = ["| setting | images (test + held-out) | ANN % held-out | baseline % held-out "
             "@scale | gap held-out (points) | method @scale | diff held-out (points) | "
             "diff pooled (points) | power 0.3 pt (pooled) | 80%-power effect (points) | "
             "recovered, pooled [95% CI] | reading (pooled) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        st, nh = _row_tag(r), r["n_holdout"]
        ann = f"{100 * r['ann_accuracy']['holdout']:.2f}" if nh else "-"
        base = (f"{_pts(r['baseline']['holdout'])}" if nh else "-")
        gap = _pts(r["gap"]["holdout"], True) if nh else "-"
        for a in r["arms"]:
            d, rec = a["pooled"]["difference"], a["pooled"]["recovered"]
            held = _pts(a["holdout"]["difference"], True) if nh else "-"
            lines.append(
                f"| {st} | {r['n_test']:,} + {nh:,} | {ann} | {base} @{r['baseline_scale']:g} "
                f"| {gap} | {a['label']} @{a['scale']:g} | {held} | {_pts(d, True)} | "
                f"{_power_of(d):.2f} | {100 * _mde(d):.2f} | {rec['mean']:.2f} "
                f"[{rec['lo']:.2f}, {rec['hi']:.2f}] | {confirm_reading(a['pooled'])} |")
    return "\n".join(lines)


def _selection_variability(cfg, setting, workers, cache) -> list[dict]:
    """Rerun the selection with other subset seeds: the chosen scale / r_s of each arm."""
    out = []
    for ss in cfg["accuracy"].get("selection_seeds", []):
        idx = split_indices(ss, cfg["n_calib"], cfg["n_select"], cfg["n_test"])
        c2 = {**cfg, "subset_seed": ss}
        sel = _select(c2, _arms(cfg["accuracy"]["r_s"], cfg["accuracy"]["methods"],
                                setting[1]), setting, idx, workers, cache)
        out.append({"subset_seed": ss, "chosen": [{"label": r["label"], "scale": r["scale"],
                                                   "best_select": r["best_select"]}
                                                  for r in sel]})
    return out


def pilot_power(cfg: dict, setting, *, scale: float, n_pilot: int, seeds=(0, 1),
                arm=None, target_half_width=0.002, effect=0.003, n_test=10_000,
                workers=1, cache=None) -> dict:
    """Variance of the per-image paired difference on TRAINING images, and the seeds needed.

    Baseline and ``arm`` (default L4 with ``r_s = 0``, the full correction: the largest
    change, so the most discordant pairs) at the same ``scale`` on a pilot subset of the
    training set disjoint from the calibration and selection images, with two or more
    input seeds (common random numbers). With ``d_is`` the difference of image ``i`` at seed
    ``s``: within-image variance ``s_w2 = mean_i var_s(d_is)``, between-image variance
    ``s_b2 = var_i(mean_s d_is) - s_w2 / S_pilot``. The variance of the mean over ``N``
    images and ``S`` seeds is ``(s_b2 + s_w2 / S) / N``; the 95% half-width is
    ``1.96`` times its root, and the power of a two-sided 5% test against ``effect`` is
    ``Phi(effect / se - 1.96)``.

    Returns
    -------
    dict
        ``s_b2``, ``s_w2``, ``discordance``, ``half_width`` and ``power`` for S = 1..16
        at ``N = n_test``, ``seeds_needed`` (smallest S reaching ``target_half_width``, or
        None), and the pilot's settings.
    """
    from scipy import stats

    alpha, reset, sem, t = setting
    arm = arm or {"method": "l4", "r_s": 0.0}
    idx = split_indices(cfg["subset_seed"], cfg["n_calib"], cfg["n_select"], None,
                        n_pilot=n_pilot)
    base = {**_base_task(cfg, alpha=alpha, reset=reset, semantics=sem, split="train",
                         ids=idx["pilot"].tolist(), scale=scale), "steps": t}
    tasks = [{**base, "arm": a, "seed": 50_000 + sd} for a in ({"method": "none"}, arm)
             for sd in seeds]
    outs = _map(predictions_task, tasks, workers, cache)
    ns = len(seeds)
    b = np.array([_correct(o, t) for o in outs[:ns]], float)
    a = np.array([_correct(o, t) for o in outs[ns:]], float)
    d = a - b
    s_w2 = float(d.var(axis=0, ddof=1).mean()) if ns > 1 else 0.0
    s_b2 = max(float(d.mean(axis=0).var(ddof=1)) - s_w2 / ns, 0.0)
    z = stats.norm.ppf(0.975)
    hw, pw = {}, {}
    for s_ in range(1, 17):
        se = math.sqrt((s_b2 + s_w2 / s_) / n_test)
        hw[s_] = z * se
        pw[s_] = float(stats.norm.cdf(effect / se - z)) if se > 0 else 1.0
    need = next((s_ for s_ in hw if hw[s_] <= target_half_width), None)
    return {"setting": list(setting), "scale": scale, "arm": arm, "n_pilot": n_pilot,
            "seeds": list(seeds), "s_b2": s_b2, "s_w2": s_w2,
            "discordance": float((a != b).mean()), "mean_difference": float(d.mean()),
            "half_width": hw, "power": pw, "seeds_needed": need, "n_test": n_test,
            "target_half_width": target_half_width, "effect": effect,
            "time_s": float(sum(o["time_s"] for o in outs))}


def power_table(cfg: dict, out_dir: Path, *, workers: int = 1, log=print) -> dict:
    """The power pilot (TRAINING images) at the paper's setting and the largest-gap one.

    Full mode: every pre-registered setting (:func:`preregistered`), each at the
    baseline's regime-map scale, so that every setting gets its own number of seeds
    (:func:`seeds_per_setting`). Quick mode: the first accuracy setting at scale 0.5.
    Writes ``power_<mode>.json``.
    """
    pc = cfg["power"]
    path, _ = load_model(cfg["model"])
    doc = {"part": "power", "rows": [], "provenance": provenance(path, cfg)}
    if cfg["mode"] == "quick":
        plan = [(tuple(cfg["accuracy"]["settings"][0]), 0.5)]
    else:
        plan = _power_plan(out_dir, cfg["mode"])
    t0 = time.perf_counter()
    for setting, scale in plan:
        row = pilot_power(cfg, setting, scale=scale, n_pilot=pc["n_pilot"], seeds=pc["seeds"],
                          workers=workers, cache=out_dir / "tasks")
        doc["rows"].append(row)
        doc["elapsed_s"] = time.perf_counter() - t0
        _write(doc, {}, out_dir, f"power_{cfg['mode']}")
        log(f"power {_tag(*setting)} @{scale:g}: s_b2 {row['s_b2']:.5f} s_w2 "
            f"{row['s_w2']:.5f} discordance {row['discordance']:.4f} "
            f"half-width(S=1) {100 * row['half_width'][1]:.3f} points, seeds needed "
            f"{row['seeds_needed']}")
    return doc


def _power_plan(out_dir: Path, mode: str) -> list:
    """(setting, scale) of every pre-registered setting, at the baseline's regime-map scale."""
    rows = json.loads(_regime_path(out_dir, mode).read_text())["rows"]
    scale = {(r0["alpha"], r0["reset"], r0["semantics"], r["T"]): r["scale"]
             for r0 in rows for r in r0["per_T"]}
    return [(tuple(s), scale[tuple(s)]) for s in preregistered(out_dir, mode)]


def seeds_per_setting(out_dir: Path, mode: str = "full") -> dict:
    """Test seeds of each setting: its own pilot's ``seeds_needed``, capped.

    Returns ``{(alpha, reset, semantics, T): S}``. A pilot that cannot reach the target
    (``seeds_needed`` None) gives the cap, :data:`PREREGISTERED` ``["max_seeds"]``.
    """
    path = Path(out_dir) / f"power_{mode}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the power pilot first "
                                "(python -m validation study --part power)")
    cap = PREREGISTERED["max_seeds"]
    return {tuple(r["setting"]): cap if r["seeds_needed"] is None
            else min(cap, int(r["seeds_needed"]))
            for r in json.loads(path.read_text())["rows"]}


def _regime_path(out_dir: Path, mode: str) -> Path:
    path = Path(out_dir) / f"regime_{mode}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the regime map first "
                                "(python -m validation study --part regime)")
    return path


def preregistered(out_dir: Path, mode: str = "full") -> list:
    """The powered comparison's settings: regime-map gap >= 2 points, plus the paper's.

    Reads ``regime_<mode>.json`` and keeps every (alpha, reset, semantics, T) whose
    measured baseline gap (point estimate) is at least :data:`MIN_GAP`, sorted by gap
    (largest first), then adds :data:`PAPER_SETTING` if absent.
    """
    out = gap_settings(out_dir, mode)
    if list(PAPER_SETTING) not in out:
        out.append(list(PAPER_SETTING))
    return out


def gap_settings(out_dir: Path, mode: str = "full") -> list:
    """The regime-map settings with a baseline gap of at least :data:`MIN_GAP`, largest first."""
    rows = json.loads(_regime_path(out_dir, mode).read_text())["rows"]
    keep = [(r["gap"]["mean"], (r0["alpha"], r0["reset"], r0["semantics"], r["T"]))
            for r0 in rows for r in r0["per_T"] if r["gap"]["mean"] >= MIN_GAP]
    return [list(s) for _, s in sorted(keep, key=lambda v: -v[0])]


def accuracy_schedule(groups: list, seeds: dict, variability_after: int = 1) -> list[tuple]:
    """Order of the powered comparison's work: seed by seed across all settings.

    ``groups``: lists of settings (the paper's setting, then the >= 2-point settings);
    ``seeds``: setting -> planned number of seeds. Seed ``s`` runs for every group (in
    order) before seed ``s + 1`` runs for any; the selection-variability reruns follow
    the tests of round ``variability_after`` of every group. So a run stopped by the
    clock has covered every setting at the largest common number of seeds (before
    2026-12-03, third session, the groups ran one after the other, each with its reruns,
    and the paper's setting came after every seed of the >= 2-point settings). Items:
    ``("test", setting, S)`` (the row at S seeds) and ``("variability", setting)``.
    """
    out = []
    top = max(seeds.values(), default=0)
    for s in range(1, top + 1):
        for group in groups:
            out += [("test", g, s) for g in group if seeds[g] >= s]
        for group in groups:
            if s == min(variability_after, max(seeds[g] for g in group)):
                out += [("variability", g) for g in group]
    return out


def _accuracy_plan(cfg: dict, out_dir: Path) -> tuple[dict, list, dict]:
    """The accuracy part's arms, settings groups and seeds (pre-registered in full mode)."""
    ac = cfg["accuracy"]
    if ac is not None:
        groups = [[tuple(s) for s in ac["settings"]]]
        n = len(ac.get("seeds", cfg["seeds"]))
        return ac, groups, {g: n for g in groups[0]}
    settings = [tuple(s) for s in preregistered(out_dir, cfg["mode"])]
    need = seeds_per_setting(out_dir, cfg["mode"])
    cap = PREREGISTERED["max_seeds"]
    seeds = {g: need.get(g, cap) for g in settings}
    gap = [tuple(s) for s in gap_settings(out_dir, cfg["mode"])]
    # the paper's setting first (docs/study.md, third session), then the gaps, largest first
    groups = [g for g in ([g for g in settings if g not in gap], gap) if g]
    return {**PREREGISTERED, "settings": [list(g) for g in settings]}, groups, seeds


def accuracy_table(cfg: dict, out_dir: Path, *, workers: int = 1, log=print) -> dict:
    """Accuracy table at the pre-registered settings; writes ``accuracy_<mode>.json/.npz``.

    Runs :func:`accuracy_schedule` and rewrites the files after every item, so the
    files always hold every setting at the most seeds finished so far (``seeds_done``
    against ``seeds_planned`` in each row). Finished tasks are cached: a rerun resumes.
    """
    ac, groups, seeds = _accuracy_plan(cfg, out_dir)
    cfg = {**cfg, "accuracy": ac}
    path, _ = load_model(cfg["model"])
    doc = {"part": "accuracy", "rows": [], "provenance": provenance(path, cfg),
           "seeds_planned": [[list(g), s] for g, s in seeds.items()]}
    arrays: dict = {}
    rows: dict = {}
    t0 = time.perf_counter()
    cache = out_dir / "tasks"
    for item in accuracy_schedule(groups, seeds):
        setting = (float(item[1][0]), item[1][1], item[1][2], int(item[1][3]))
        if item[0] == "variability":
            rows[setting]["selection_variability"] = _selection_variability(
                cfg, setting, workers, cache)
        else:
            c = {**cfg, "accuracy": {**ac, "seeds": list(range(item[2]))}}
            row, arr = accuracy_setting(c, setting, workers=workers, cache=cache)
            row.update(seeds_done=item[2], seeds_planned=seeds[item[1]])
            row["selection_variability"] = rows.get(setting, {}).get("selection_variability")
            rows[setting] = row
            arrays.update({f"{_tag(*setting)}_{k}": v for k, v in arr.items()})
            for a in row["arms"]:
                d = a["selected"]["difference"]
                log(f"accuracy {_tag(*setting)} S={item[2]} {a['label']:16s} diff "
                    f"{100 * d['mean']:+.2f} [{100 * d['lo']:+.2f}, {100 * d['hi']:+.2f}] "
                    f"gap {100 * row['gap']['mean']:.2f}")
        doc["rows"] = list(rows.values())
        doc["elapsed_s"] = time.perf_counter() - t0
        _write(doc, arrays, out_dir, f"accuracy_{cfg['mode']}")
    return doc


# --------------------------------------------------------------------------- tables


def _pts(ci: dict, signed: bool = False) -> str:
    f = "{:+.2f}" if signed else "{:.2f}"
    return (f"{f.format(100 * ci['mean'])} [{f.format(100 * ci['lo'])}, "
            f"{f.format(100 * ci['hi'])}]")


def regime_markdown(doc: dict) -> str:
    """The regime map as a Markdown table (gap in points with 95% CI, selected scale)."""
    rows = sorted(doc["rows"], key=lambda r: (r["semantics"] != "project", r["reset"],
                                              -r["alpha"]))
    steps = [p["T"] for p in rows[0]["per_T"]] if rows else []
    head = ("| semantics | reset | alpha | ANN % | "
            + " | ".join(f"gap T={t} (points) [95% CI] @scale" for t in steps) + " |")
    lines = [head, "|" + "---|" * (4 + len(steps))]
    for r in rows:
        cells = []
        for p in r["per_T"]:
            edge = " (edge)" if p["edge"] else ""
            cells.append(f"{_pts(p['gap'], True)} @{p['scale']:g}{edge}")
        lines.append(f"| {r['semantics']} | {r['reset']} | {r['alpha']:g} | "
                     f"{100 * r['ann_accuracy']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fidelity_markdown(doc: dict) -> str:
    """The fidelity table as Markdown."""
    lines = ["| alpha | reset | T | method | rate MSE | MSE - none [95% CI over images] | "
             "corr | dominance error | dominance (active pairs) | mean rate / target | fit |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        fit = r["fit"]
        if "s_hat_min" in fit:
            fs = (f"s_hat {fit['s_hat_min']:.3g}-{fit['s_hat_max']:.3g}, c {fit['c']:.3g}, "
                  f"guarded {fit['n_guarded']}")
        elif "k_median" in fit:
            fs = f"k {fit['k_min']:.3g} / {fit['k_median']:.3g} / {fit['k_max']:.3g}"
            if "mse_before" in fit:
                fs += f", calib. MSE {fit['mse_before']:.2e} -> {fit['mse_after']:.2e}"
        else:
            fs = ""
        d = r.get("mse_vs_none")
        ds = (f"{d['mean']:+.5f} [{d['lo']:+.5f}, {d['hi']:+.5f}]"
              if d and r["label"] != "none" else "")
        lines.append(f"| {r['alpha']:g} | {r['reset']} | {r['steps']} | {r['label']} | "
                     f"{r['mse']:.5f} | {ds} | {r['corr']:.4f} | {r['dominance_error']:.4f} | "
                     f"{r['dominance_error_active']:.4f} | {r['mean_rate']:.4f} / "
                     f"{r['mean_target']:.4f} | {fs} |")
    return "\n".join(lines)


def power_markdown(doc: dict) -> str:
    """The power pilot as Markdown."""
    lines = ["| setting | scale | pilot images x seeds | discordance | s_b2 | s_w2 | "
             "half-width S=1 / 2 / 4 / 8 (points) | seeds needed | power(0.3 pt) S=1 / 8 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        hw = {int(k): v for k, v in r["half_width"].items()}
        pw = {int(k): v for k, v in r["power"].items()}
        lines.append(f"| {_tag(*r['setting'])} | {r['scale']:g} | {r['n_pilot']} x "
                     f"{len(r['seeds'])} | {r['discordance']:.4f} | {r['s_b2']:.5f} | "
                     f"{r['s_w2']:.5f} | "
                     + " / ".join(f"{100 * hw[s]:.3f}" for s in (1, 2, 4, 8))
                     + f" | {r['seeds_needed']} | {pw[1]:.2f} / {pw[8]:.2f} |")
    return "\n".join(lines)


def _power_of(ci: dict, effect: float = 0.003) -> float:
    """Power of the two-sided 5% test of a paired difference against ``effect``.

    ``ci`` is a :func:`_ci` of per-image differences; ``se = sd / sqrt(n)``.
    """
    from scipy import stats

    se = ci["sd"] / math.sqrt(ci["n"])
    z = stats.norm.ppf(0.975)
    return float(stats.norm.cdf(effect / se - z)) if se > 0 else 1.0


def _mde(ci: dict, power: float = 0.8) -> float:
    """Smallest difference the two-sided 5% test detects with ``power`` (same se as ``ci``)."""
    from scipy import stats

    se = ci["sd"] / math.sqrt(ci["n"])
    return float((stats.norm.ppf(0.975) + stats.norm.ppf(power)) * se)


def recovers(arm: dict) -> bool:
    """Rule 9 of the plan: selected-on-train recovered fraction >= 0.5, CI excluding 0."""
    d, rec = arm["selected"]["difference"], arm["selected"]["recovered"]
    return bool(rec["mean"] >= 0.5 and (d["lo"] > 0 or d["hi"] < 0))


def verdict(row: dict) -> str:
    """The plan's verdict for one setting (rule 9), in words."""
    wins = [a["label"] for a in row["arms"] if recovers(a)]
    if wins:
        return "recovers the gap: " + ", ".join(wins)
    hw = max(a["selected"]["difference"]["half_width"] for a in row["arms"])
    pw = min(_power_of(a["selected"]["difference"]) for a in row["arms"])
    return (f"no method recovers half the gap; largest 95% half-width {100 * hw:.2f} "
            f"points, power for a 0.3-point difference >= {pw:.2f}")


def accuracy_markdown(doc: dict) -> str:
    """The accuracy table as Markdown (selected-on-train and matched-threshold).

    Differences are arm - baseline in points (95% t-interval over images of the
    seed-averaged per-image difference); ``power`` is that of the two-sided 5% test for a
    0.3-point difference at the achieved standard error; ``recovered`` = difference / gap
    with its bootstrap CI; ``*`` marks an arm that meets rule 9 of the plan.
    """
    lines = ["| setting | seeds | ANN % | baseline % @scale | gap (points) | method @scale | "
             "selected: diff (points) | power 0.3 pt | recovered [95% CI] | "
             "matched: diff (points) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        st = _row_tag(r)
        seeds = f"{r.get('seeds_done', '?')}/{r.get('seeds_planned', '?')}"
        for a in r["arms"]:
            rec = a["selected"]["recovered"]
            lines.append(
                f"| {st} | {seeds} | {100 * r['ann_accuracy']:.2f} | {_pts(r['baseline'])} "
                f"@{r['baseline_scale']:g} | {_pts(r['gap'], True)} | {a['label']} "
                f"@{a['scale']:g}{' (edge)' if a['edge'] else ''}{' *' if recovers(a) else ''} | "
                f"{_pts(a['selected']['difference'], True)} | "
                f"{_power_of(a['selected']['difference']):.2f} | {rec['mean']:.2f} "
                f"[{rec['lo']:.2f}, {rec['hi']:.2f}] | "
                f"{_pts(a['matched']['difference'], True)} |")
    lines += ["", "| setting | verdict (rule 9) | best new method (on train) | best L4 (on train) |",
              "|---|---|---|---|"]
    for r in doc["rows"]:
        st = _row_tag(r)
        lines.append(f"| {st} | {verdict(r)} | {r['best_new_method']} | {r['best_l4']} |")
    if any(r.get("selection_variability") for r in doc["rows"]):
        lines += ["", "| setting | subset seed | chosen (label @scale: selection accuracy %) |",
                  "|---|---|---|"]
        for r in doc["rows"]:
            st = _row_tag(r)
            lines.append(f"| {st} | 0 (the plan's) | " + "; ".join(
                f"{x['label']} @{x['scale']:g}: {100 * x['best_select']:.1f}"
                for x in r["selection"]) + " |")
            for v in r.get("selection_variability") or []:
                lines.append(f"| {st} | {v['subset_seed']} | " + "; ".join(
                    f"{x['label']} @{x['scale']:g}: {100 * x['best_select']:.1f}"
                    for x in v["chosen"]) + " |")
    return "\n".join(lines)


def report(out_dir: Path, mode: str) -> str:
    """Markdown of every part of the study found in ``out_dir``."""
    parts = []
    for part, fn in (("regime", regime_markdown), ("fidelity", fidelity_markdown),
                     ("power", power_markdown), ("accuracy", accuracy_markdown),
                     ("explore", explore_markdown), ("confirm", confirm_markdown),
                     ("holdout", holdout_markdown)):
        path = Path(out_dir) / f"{part}_{mode}.json"
        if path.exists():
            doc = json.loads(path.read_text())
            parts.append(f"### {part} ({mode}; {path.name}, "
                         f"{doc.get('elapsed_s', float('nan')) / 60:.1f} min, git "
                         f"{(doc['provenance'].get('git_revision') or '?')[:7]})\n\n"
                         + fn(doc))
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- command line

PARTS = ("regime", "fidelity", "power", "accuracy", "explore", "confirm", "holdout")


def config(mode: str, overrides: dict | None = None) -> dict:
    """``CONFIGS[mode]`` with ``overrides`` applied and ``mode`` recorded."""
    if mode not in CONFIGS:
        raise ValueError(f"mode must be one of {sorted(CONFIGS)}, got {mode!r}")
    cfg = json.loads(json.dumps(CONFIGS[mode]))
    cfg.update(overrides or {})
    cfg["mode"] = mode
    return cfg


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ``study`` subcommand (shared with ``python -m validation``)."""
    p.add_argument("--quick", action="store_true",
                   help="small sizes (a few minutes on 2 cores); see CONFIGS['quick']")
    p.add_argument("--part", choices=[*PARTS, "all"], default="all")
    p.add_argument("--workers", type=int, default=1,
                   help="local worker processes for the tasks (default 1: serial)")
    p.add_argument("--out", default=None, help="output folder (default results/study)")
    p.add_argument("--n-test", type=int, default=None, help="override the test subset size "
                   "(0 = the full test set)")
    p.add_argument("--n-select", type=int, default=None, help="override the selection size")
    p.add_argument("--seeds", type=int, default=None, help="override the number of seeds")
    p.add_argument("--backend", choices=["numpy", "torch"], default=None,
                   help="simulator linear-algebra backend (default numpy)")
    p.add_argument("--n-pilot", type=int, default=None,
                   help="override the power pilot's number of training images")
    p.add_argument("--semantics", default=None,
                   help="comma-separated subset of project,rathi (regime map)")
    p.add_argument("--no-figure", action="store_true",
                   help="do not print the command that draws the figures")
    p.add_argument("--report", action="store_true",
                   help="print the Markdown tables of the existing results; run nothing")


def handle(args) -> int:
    """Run the parts of the study for parsed ``args``; returns 0."""
    mode = "quick" if args.quick else "full"
    over = {}
    if args.n_test is not None:
        over["n_test"] = None if args.n_test == 0 else args.n_test
    if args.n_select is not None:
        over["n_select"] = args.n_select
    if args.seeds is not None:
        over["seeds"] = list(range(args.seeds))
    if args.backend is not None:
        over["backend"] = args.backend
    if args.n_pilot is not None:
        over["power"] = {**CONFIGS[mode]["power"], "n_pilot": args.n_pilot}
    if args.semantics is not None:
        over["semantics"] = [s for s in args.semantics.split(",") if s]
    cfg = config(mode, over)
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    out_dir = Path(args.out) if args.out else RESULTS_DIR
    if args.report:
        print(report(out_dir, mode))
        return 0
    parts = PARTS if args.part == "all" else (args.part,)
    docs = {}
    for part in parts:
        fn = globals()[{"regime": "regime_map", "fidelity": "fidelity_table",
                        "power": "power_table", "accuracy": "accuracy_table",
                        "explore": "threshold_check", "confirm": "confirm_table",
                        "holdout": "holdout_table"}[part]]
        docs[part] = fn(cfg, out_dir, workers=args.workers, log=_log)
    if not args.no_figure:
        _log("figures: python -m figures study_regime study_fidelity study_accuracy "
             "study_confirm study_holdout" + (" --quick" if mode == "quick" else ""))
    return 0


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv=None) -> int:
    """Command line; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m validation study",
                                description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return handle(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
