"""The cross-fitted study: five networks, two pipelines, every method tuned the same way.

Plan: ``docs/study.md``, section "Cross-fitted study: pre-registered plan" (committed
before any run on evaluation images). In short, for every network (trained without its
own fold of 12,000 training images, ``models/folds/``) and every setting of
:data:`CROSS` (``settings``), in each *pipeline*

- ``paper`` (Rathi et al.'s conversion as the paper uses it): thresholds balanced by the
  layer-wise maximum per-step input current under spike input on the calibration images
  (:func:`l4theory.convert.balance.balance` ``method="spike"``), the threshold scale
  swept around Rathi et al.'s factor 0.7, and Eq. 6's mean taken from the first layer's
  sampled membrane potential (``mu="membrane"`` arms);
- ``project``: ANN max-norm balancing, the scale swept around 0.5, Eq. 6's mean the
  per-step input current,

every series -- the baseline, L4 (``r_s`` and scale chosen jointly, ``r_s = inf`` being
the baseline's network), rate matching -- runs the same scale grid on the same 1,000
selection images (the network's own training images, as the paper selects on training
data) with one input spike stream, the grid extended until every series' best sits
inside it, for both selection sizes (the first 160 of the 1,000, and all 1,000). The
chosen configurations then run on evaluation images the network never saw (its fold),
with one common input spike stream, so every comparison is paired per image.

A *block* is one (network, setting): its per-image bits are saved to
``records/study/cross/<network>__<setting>.record.{npz,json}`` after the selection and
after every evaluation chunk, so a stopped run resumes where it stopped (on any machine),
and ``--report`` rebuilds every table from the tracked bits.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import numpy as np

from l4theory.experiment import Arm
from l4theory.experiment.select import select_best

from ..paths import REPO_ROOT
from .config import load_model, load_split, provenance
from .tasks import _COMPUTE, _IDS, _KIND, NotRecorded, Record, active_record, ann_merge, run_tasks, task_ids

__all__ = ["CROSS", "block_stem", "cross_status", "cross_task", "eval_chunk", "fold_indices",
           "network_splits", "run_block", "scale_grid", "select_block", "status_markdown"]

#: The study's sizes (docs/study.md, "Cross-fitted study: pre-registered plan").
CROSS = {
    "full": {
        "networks": [f"folds/fmnist_vgg5_fold{k}" for k in range(5)],
        "settings": [
            {"name": "paper-rathi", "alpha": 1.0, "reset": "soft", "semantics": "rathi",
             "steps": 75, "n_eval": 4000, "pipelines": ["paper"]},
            {"name": "a0.85-hard-T15", "alpha": 0.85, "reset": "hard",
             "semantics": "project", "steps": 15, "n_eval": 6000,
             "pipelines": ["paper", "project"]},
            {"name": "a0.9-hard-T30", "alpha": 0.9, "reset": "hard",
             "semantics": "project", "steps": 30, "n_eval": 4000,
             "pipelines": ["paper", "project"]},
            {"name": "paper-project", "alpha": 1.0, "reset": "soft",
             "semantics": "project", "steps": 75, "n_eval": 4000,
             "pipelines": ["paper", "project"]},
        ],
        "r_s": [0.0, 0.25, 0.5, 1.0, 2.0],  # plus inf: the baseline's network
        "methods": ["none", "l4", "ratematch"],
        "centre": {"paper": 0.7, "project": 0.5},
        "grid_ratio": 2 ** 0.25, "grid_half": 3, "grid_max_steps": 12,
        "n_calib": 256, "n_select": 1000, "n_select_small": 160,
        "split_seed": 22, "select_spike_seed": 22_001, "eval_spike_seed": 22_002,
        "eval_chunk": 1000, "batch_size": 50, "backend": "numpy", "save_every": 16,
    },
    "quick": {
        "networks": [f"folds/fmnist_vgg5_fold{k}" for k in range(2)],
        "settings": [
            {"name": "paper-rathi", "alpha": 1.0, "reset": "soft", "semantics": "rathi",
             "steps": 20, "n_eval": 40, "pipelines": ["paper"]},
            {"name": "a0.85-hard-T15", "alpha": 0.85, "reset": "hard",
             "semantics": "project", "steps": 10, "n_eval": 40,
             "pipelines": ["paper", "project"]},
        ],
        "r_s": [0.0, 1.0],
        "methods": ["none", "l4", "ratematch"],
        "centre": {"paper": 0.7, "project": 0.5},
        "grid_ratio": 2 ** 0.5, "grid_half": 1, "grid_max_steps": 3,
        "n_calib": 24, "n_select": 24, "n_select_small": 12,
        "split_seed": 22, "select_spike_seed": 22_001, "eval_spike_seed": 22_002,
        "eval_chunk": 20, "batch_size": 24, "backend": "numpy",
    },
}
#: The selection sizes every choice is made at (``n_select_small``, ``n_select``).
SIZES = ("small", "full")


# --------------------------------------------------------------------------- images


@functools.lru_cache(maxsize=16)
def _provenance_of(model: str) -> dict:
    path = REPO_ROOT / "models" / f"{model}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (train it: python models/train.py "
                                "--model fmnist_vgg5 --fold K)")
    return json.loads(path.read_text())


def fold_indices(model: str) -> np.ndarray:
    """The training-set indices network ``model`` never trained on (its fold), sorted.

    Recomputed from the provenance (``fold``, ``n_folds``, ``fold_seed``) with
    :func:`l4theory.experiment.splits.folds` and checked against its recorded sha256.
    """
    import hashlib

    from l4theory.experiment.splits import folds

    prov = _provenance_of(model)
    idx = folds(60_000, int(prov["n_folds"]), int(prov["fold_seed"]))[int(prov["fold"])]
    if hashlib.sha256(idx.tobytes()).hexdigest() != prov["fold_indices_sha256"]:
        raise ValueError(f"the fold of {model} does not match its provenance's sha256")
    return idx


@functools.lru_cache(maxsize=16)
def network_splits(model: str, n_calib: int, n_select: int, n_select_small: int,
                   n_eval: int, seed: int) -> dict:
    """Calibration, selection and evaluation images of one network (training-set indices).

    One permutation (``default_rng([seed, fold])``) of the network's own training images
    gives the calibration images (its first ``n_calib``) and the selection images (the
    next ``n_select``; the small selection set is the first ``n_select_small`` of them).
    A second permutation of its fold gives the evaluation images (the first ``n_eval``,
    in that permutation's order, so that a larger ``n_eval`` only appends images).

    Returns
    -------
    dict
        ``calib``, ``select``, ``select_small``: sorted ``int64`` arrays (``select_small``
        is a subset of ``select``); ``eval``: ``int64``, in permutation order (chunks of
        it are sorted by :func:`eval_chunk`).
    """
    held = fold_indices(model)
    fold = int(_provenance_of(model)["fold"])
    own = np.setdiff1d(np.arange(60_000), held)
    rng = np.random.default_rng([seed, fold])
    perm = rng.permutation(own)
    if n_calib + n_select > own.size or n_eval > held.size or n_select_small > n_select:
        raise ValueError(f"sizes n_calib={n_calib}, n_select={n_select}, n_eval={n_eval} "
                         f"do not fit network {model}")
    sel = perm[n_calib:n_calib + n_select]
    ev = rng.permutation(held)[:n_eval]
    return {"calib": np.sort(perm[:n_calib]), "select": np.sort(sel),
            "select_small": np.sort(sel[:n_select_small]), "eval": ev.astype(np.int64)}


def eval_chunk(model: str, n_calib: int, seed: int, lo: int, hi: int) -> np.ndarray:
    """Evaluation images ``lo .. hi - 1`` of a network (in permutation order), sorted."""
    return np.sort(network_splits(model, n_calib, 1, 1, hi, seed)["eval"][lo:hi])


def _images_of(task: dict) -> np.ndarray:
    """The training-set indices a cross task's ``images`` descriptor names."""
    im = task["images"]
    if im["set"] == "select":
        return network_splits(task["model"], task["n_calib"], im["n"], 1, 1,
                              task["split_seed"])["select"]
    return eval_chunk(task["model"], task["n_calib"], task["split_seed"], im["lo"], im["hi"])


def scale_grid(centre: float, ratio: float, k_lo: int, k_hi: int) -> list[float]:
    """Threshold scales ``centre * ratio**k`` for ``k = k_lo .. k_hi`` (rounded to 1e-6)."""
    return [round(centre * ratio ** k, 6) for k in range(k_lo, k_hi + 1)]


# --------------------------------------------------------------------------- the task


@functools.lru_cache(maxsize=32)
def _balanced(model: str, pipeline: str, n_calib: int, seed: int, steps: int, reset: str):
    """The pipeline's balancing of ``model`` on its calibration images (scale 1)."""
    from l4theory.convert.balance import balance

    _, net = load_model(model)
    x, _ = load_split("train")
    cal = network_splits(model, n_calib, 1, 1, 1, seed)["calib"]
    if pipeline == "paper":
        return balance(net, x[cal], "spike", scale=1.0, steps=steps, encoder="signed",
                       reset=reset, rng=seed)
    return balance(net, x[cal], "max")


def _arm_for(pipeline: str, arm: dict) -> dict:
    """The arm a series runs in a pipeline (the paper's L4 samples the membrane mean)."""
    if pipeline == "paper" and arm["method"] in ("l4", "exact"):
        return {**arm, "mu": "membrane"}
    return dict(arm)


def _cross_predictions(task: dict) -> dict:
    from l4theory.convert.simulate import simulate
    from l4theory.experiment import fit_arm

    t0 = time.perf_counter()
    _, net = load_model(task["model"])
    bal = _balanced(task["model"], task["pipeline"], task["n_calib"], task["split_seed"],
                    task["steps"], task["reset"])
    lam = np.asarray(bal.thresholds, dtype=np.float64)
    th = lam * task["scale"]
    v_th0 = float(lam[0]) * (0.7 if task["pipeline"] == "paper" else 1.0)
    x, y = load_split("train")
    cal = network_splits(task["model"], task["n_calib"], 1, 1, 1, task["split_seed"])["calib"]
    arm_net, _ = fit_arm(Arm.from_dict(task["arm"]), net, x[cal], v_th0=v_th0,
                         v_th=float(th[0]), steps=task["steps"], alpha=task["alpha"],
                         reset=task["reset"], semantics=task["semantics"],
                         bias_scale=float(bal.bias_scales[0]))
    ids = task_ids(task)
    res = simulate(arm_net, x[ids], y[ids], thresholds=th, steps=task["steps"],
                   alpha=task["alpha"], reset=task["reset"], encoder="signed",
                   seed=task["seed"], sample_ids=ids, bias_scales=bal.bias_scales,
                   readout_bias_scale=bal.readout_bias_scale,
                   batch_size=task.get("batch_size", 50), backend=task.get("backend", "numpy"),
                   semantics=task["semantics"])
    return {"predictions": res.predictions, "labels": y[ids],
            "time_s": np.float64(time.perf_counter() - t0)}


def cross_task(task: dict, cache_dir=None) -> dict:
    """One pure task of the cross-fitted study: one arm at one scale on some images.

    Parameters
    ----------
    task : dict
        ``model`` (a network under ``models/``), ``pipeline`` ("paper" or "project"),
        ``arm`` (JSON form of :class:`l4theory.experiment.Arm`), ``alpha``, ``reset``,
        ``semantics``, ``steps``, ``scale`` (on the pipeline's balanced thresholds),
        ``n_calib`` and ``split_seed`` (:func:`network_splits`), ``split`` ("train"),
        ``images`` (``{"of": "cross", "set": "select", "n": N}``: the network's ``N``
        selection images; ``{"of": "cross", "set": "eval", "lo": a, "hi": b}``: its
        evaluation images ``a .. b-1``), ``seed`` (input spike seed), optional
        ``batch_size`` and ``backend``.
    cache_dir : path-like, optional
        Folder of the engine's task cache.

    Returns
    -------
    dict
        ``predictions`` (int16, (steps, n)), ``labels``, ``time_s``.
    """
    from .tasks import _compute_cached

    return _compute_cached(task, "xpred", cache_dir)


_COMPUTE["xpred"] = _cross_predictions
_KIND[cross_task] = "xpred"
_IDS["cross"] = _images_of


# --------------------------------------------------------------------------- a block


def block_stem(records_dir: Path, model: str, setting: str) -> Path:
    """Stem of one block's record (``cross/<network>__<setting>``)."""
    return Path(records_dir) / "cross" / f"{Path(model).name}__{setting}"


def _series(cfg: dict, pipeline: str) -> list[dict]:
    """The arms of one pipeline: the baseline, L4 at each finite r_s, rate matching."""
    arms = []
    for m in cfg["methods"]:
        if m in ("l4", "exact"):
            arms += [_arm_for(pipeline, {"method": m, "r_s": r}) for r in cfg["r_s"]]
        else:
            arms.append({"method": m})
    return arms


def _task(cfg, model, setting, pipeline, arm, scale, images, seed) -> dict:
    return {"model": model, "pipeline": pipeline, "arm": arm, "alpha": setting["alpha"],
            "reset": setting["reset"], "semantics": setting["semantics"],
            "steps": setting["steps"], "scale": scale, "n_calib": cfg["n_calib"],
            "split_seed": cfg["split_seed"], "split": "train",
            "images": {"of": "cross", **images}, "seed": seed,
            "batch_size": cfg["batch_size"], "backend": cfg["backend"]}


def _akey(arm: dict) -> str:
    return json.dumps(arm, sort_keys=True)


def _run(cfg, model, setting, pairs, images, seed, workers, cache) -> dict:
    """Correctness (bool, (n,)) at the last step of each ``(pipeline, arm, scale)``.

    The tasks run in groups of ``cfg["save_every"]``; the block's record is saved after
    each group, so a stopped run loses at most one group.
    """
    t = setting["steps"]
    out = {}
    group = int(cfg.get("save_every", 16))
    for i in range(0, len(pairs), group):
        part = pairs[i:i + group]
        tasks = [_task(cfg, model, setting, p, a, s, images, seed) for p, a, s in part]
        outs = run_tasks(cross_task, tasks, workers=workers, cache_dir=cache,
                         client=_CLIENT[-1] if _CLIENT else None)
        out.update({(p, _akey(a), s): o["predictions"][t - 1] == o["labels"]
                    for (p, a, s), o in zip(part, outs, strict=True)})
        _save_active()
    return out


_CLIENT: list = []  # the Dask client of a running part (persistent workers keep their fits)


def select_block(acc_by: dict, cfg: dict, pipeline: str, with_inf: bool = True) -> dict:
    """Choices of every series of one pipeline from selection accuracies.

    Parameters
    ----------
    acc_by : dict
        ``{(arm key, scale): accuracy}`` on one selection set.
    cfg : dict
    pipeline : str
    with_inf : bool
        Whether ``r_s = inf`` (no adjustment) is one of L4's candidates (the plan: yes;
        False gives the paper's arm, which always adjusts: an exploratory analysis).

    Returns
    -------
    dict
        ``{method: {"arm": arm dict, "scale": float, "acc": float}}``. L4 chooses
        ``(r_s, scale)`` jointly with ``r_s = inf`` (the baseline's network) among its
        candidates; ties go to the weaker correction (larger ``r_s``, ``inf`` first),
        then to the lower scale.
    """
    arms = _series(cfg, pipeline)
    base = arms[0]
    out = {}
    for m in cfg["methods"]:
        cands = [base] if m == "none" else [a for a in arms if a["method"] == m]
        if m in ("l4", "exact"):  # weaker correction first: inf (baseline), 2, 1, ...
            cands = [base] * with_inf + sorted(cands, key=lambda a: -a["r_s"])
        best = None
        for a in cands:
            scales = sorted(s for k, s in acc_by if k == _akey(a))
            accs = [acc_by[(_akey(a), s)] for s in scales]
            j = select_best(accs)[0]
            if best is None or accs[j] > best["acc"]:
                best = {"arm": a, "scale": scales[j], "acc": float(accs[j])}
        out[m] = best
    return out


def _selection(cfg, model, setting, workers, cache, log) -> dict:
    """Run the selection grid of both pipelines, extended until every best is interior."""
    sp = network_splits(model, cfg["n_calib"], cfg["n_select"], cfg["n_select_small"],
                        setting["n_eval"], cfg["split_seed"])
    ids = sp["select"]
    small = np.isin(ids, sp["select_small"])
    got: dict = {}
    k_range = {}
    for p in setting["pipelines"]:
        for a in _series(cfg, p):
            k_range[(p, _akey(a))] = [-cfg["grid_half"], cfg["grid_half"]]
    while True:
        pairs = []
        for (p, ak), (lo, hi) in k_range.items():
            for s in scale_grid(cfg["centre"][p], cfg["grid_ratio"], lo, hi):
                if (p, ak, s) not in got:
                    pairs.append((p, json.loads(ak), s))
        if not pairs:
            break
        log(f"  {Path(model).name} {setting['name']}: selection, {len(pairs)} runs on "
            f"{ids.size} images")
        got.update(_run(cfg, model, setting, pairs, {"set": "select", "n": cfg["n_select"]},
                        cfg["select_spike_seed"], workers, cache))
        _save_active()
        for (p, ak), rng in k_range.items():
            scales = scale_grid(cfg["centre"][p], cfg["grid_ratio"], rng[0], rng[1])
            best = {select_best([got[(p, ak, s)][mask].mean() for s in scales])[0]
                    for mask in (small, np.ones_like(small))}
            if 0 in best and rng[0] > -cfg["grid_max_steps"]:
                rng[0] -= 1
            if len(scales) - 1 in best and rng[1] < cfg["grid_max_steps"]:
                rng[1] += 1
    return {"got": got, "small": small, "ids": ids}


def _clock(rec: Record) -> None:
    """Add the run time since the record's last save to its ``elapsed_s``.

    Counted at every save, so a run that is interrupted and resumed adds the time up to
    its last save (what it recorded); the block's ``elapsed_s`` is the time of every run
    that built it, not only of the one that finished it.
    """
    now = time.perf_counter()
    since = getattr(rec, "_clock_t", None)
    if since is not None:
        rec.meta["elapsed_s"] = float(rec.meta.get("elapsed_s", 0.0)) + now - since
    rec._clock_t = now


def _save_active() -> None:
    rec = active_record()
    if rec is not None and not rec.replay and rec.path is not None:
        _clock(rec)
        rec.save(rec.path)


def _ann_key(model: str) -> str:
    """The record's name of the ANN's classes of a network's training images."""
    return f"{Path(model).name}/train"


def _is_ann_key(key: str) -> bool:
    """Whether ``key`` is an array of :func:`_ann_key` (``ann/<network>/train/...``)."""
    parts = key.split("/")
    return len(parts) == 4 and parts[0] == "ann" and parts[2] == "train"


def _merge_ann(into: dict, arrays: dict) -> None:
    """Add a block's ANN classes to ``into``, keeping every image either one holds.

    The blocks of one network evaluate different numbers of images (``n_eval`` per
    setting), so each record holds the ANN's classes of its own images; a replay of every
    block needs their union (:func:`.tasks.ann_merge`).
    """
    for kid in [k for k in arrays if _is_ann_key(k) and k.endswith("/ids")]:
        ann_merge(into, arrays, kid, kid[:-len("ids")] + "classes")


def _ann_classes(rec, model: str, ids: np.ndarray) -> np.ndarray:
    """The ANN's predicted class of training images ``ids`` (kept in the record)."""
    if rec is not None:
        return rec.ann(model, "train", ids, key=_ann_key(model))
    _, net = load_model(model)
    x, _ = load_split("train")
    return net.predict(x[np.asarray(ids)]).astype(np.uint8)


def run_block(cfg: dict, model: str, setting: dict, *, workers: int = 1, cache=None,
              log=print) -> dict:
    """Select and evaluate one (network, setting) block; returns its per-image results.

    Returns
    -------
    dict
        ``choices[pipeline][size][method]`` (arm, scale, selection accuracy),
        ``selection`` (accuracy per pipeline, arm and scale at both sizes), ``eval_ids``,
        ``correct[(pipeline, arm key, scale)]`` (bool per evaluation image), ``ann``
        (bool per evaluation image).
    """
    sel = _selection(cfg, model, setting, workers, cache, log)
    got, small = sel["got"], sel["small"]
    choices: dict = {}
    table: dict = {}
    for p in setting["pipelines"]:
        choices[p] = {}
        for size, mask in zip(SIZES, (small, np.ones_like(small)), strict=True):
            acc_by = {(ak, s): float(c[mask].mean()) for (pp, ak, s), c in got.items()
                      if pp == p}
            choices[p][size] = select_block(acc_by, cfg, p)
            table[f"{p}/{size}"] = {f"{ak}|{s}": v for (ak, s), v in acc_by.items()}
    sp = network_splits(model, cfg["n_calib"], cfg["n_select"], cfg["n_select_small"],
                        setting["n_eval"], cfg["split_seed"])
    n_eval = sp["eval"].size
    configs = sorted({(p, _akey(c["arm"]), c["scale"]) for p in choices
                      for size in SIZES for c in choices[p][size].values()})
    correct = {k: np.zeros(0, bool) for k in configs}
    ev = []
    for lo in range(0, n_eval, cfg["eval_chunk"]):
        hi = min(n_eval, lo + cfg["eval_chunk"])
        log(f"  {Path(model).name} {setting['name']}: evaluation images {lo}-{hi} of "
            f"{n_eval}, {len(configs)} configurations")
        out = _run(cfg, model, setting, [(p, json.loads(ak), s) for p, ak, s in configs],
                   {"set": "eval", "lo": lo, "hi": hi}, cfg["eval_spike_seed"], workers,
                   cache)
        for k in configs:
            correct[k] = np.concatenate([correct[k], out[k]])
        ev.append(eval_chunk(model, cfg["n_calib"], cfg["split_seed"], lo, hi))
        _save_active()
    ev = np.concatenate(ev)
    rec = active_record()
    y = load_split("train")[1]
    ann = _ann_classes(rec, model, ev) == y[ev]
    _save_active()
    return {"model": model, "setting": setting["name"], "choices": choices,
            "selection": table, "eval_ids": ev, "correct": correct, "ann": ann}


def open_block(records_dir: Path, cfg: dict, model: str, setting: dict) -> Record:
    """The record of one block (loaded to resume when it exists), saved to its stem."""
    stem = block_stem(records_dir, model, setting["name"])
    if stem.with_name(stem.name + ".record.json").is_file():
        rec = Record.load(stem, replay=False)
    else:
        stem.parent.mkdir(parents=True, exist_ok=True)
        rec = Record()
    rec.path = stem
    rec.meta.update({"part": "cross", "config": cfg, "block": {"model": model,
                                                             "setting": setting["name"]},
                     "provenance": provenance(load_model(model)[0], cfg)})
    return rec


def merged_record(records_dir: Path) -> Record | None:
    """Every block record under ``records_dir/cross`` in one replay record (None: none)."""
    files = sorted((Path(records_dir) / "cross").glob("*.record.json"))
    if not files:
        return None
    rec = Record(replay=True)
    for f in files:
        part = Record.load(f.with_name(f.name[:-len(".record.json")]), replay=True)
        rec.tasks.update(part.tasks)
        _merge_ann(rec.arrays, part.arrays)
        rec.arrays.update({k: v for k, v in part.arrays.items() if not _is_ann_key(k)})
        rec.meta.setdefault("blocks", []).append(part.meta.get("block"))
        rec.meta["config"] = part.meta.get("config")
    return rec


def blocks_of(cfg: dict) -> list[tuple[str, dict]]:
    """Every (network, setting) block in the plan's run order.

    Settings by priority, networks within each setting.
    """
    return [(m, s) for s in cfg["settings"] for m in cfg["networks"]]


def cross_config(mode: str) -> dict:
    """A copy of ``CROSS[mode]`` with ``mode`` recorded."""
    cfg = json.loads(json.dumps(CROSS[mode]))
    cfg["mode"] = mode
    return cfg




# --------------------------------------------------------------------------- the part


def _block_names(cfg: dict) -> list[str]:
    return [f"{cfg['networks'].index(m)}:{s['name']}" for m, s in blocks_of(cfg)]


def _pick(cfg: dict, block: str | None) -> list[tuple[str, dict]]:
    todo = blocks_of(cfg)
    if block is None:
        return todo
    names = _block_names(cfg)
    if block not in names:
        raise ValueError(f"--block must be one of {names}, got {block!r}")
    return [todo[names.index(block)]]


def cross_part(mode: str, out_dir: Path, records_dir: Path, *, workers: int = 1,
               block: str | None = None, backend: str | None = None, log=print) -> dict:
    """Run the cross-fitted study's blocks (all, in order, or one), then its analysis.

    Each block keeps its own record in ``records_dir/cross`` (resumed when present).
    """
    cfg = cross_config(mode)
    if backend is not None:
        cfg["backend"] = backend
    cache = Path(out_dir) / "cache"
    results = []
    from contextlib import nullcontext

    from l4theory.experiment import dask_client

    from .tasks import recording

    # workers > 1: one Dask LocalCluster for every block, so that its worker processes
    # keep their balancings, membrane samples and fits from task to task
    with (dask_client(workers=workers) if workers > 1 else nullcontext()) as client:
        if client is not None:
            _CLIENT.append(client)
        try:
            for model, setting in _pick(cfg, block):
                rec = open_block(records_dir, cfg, model, setting)
                t0 = time.perf_counter()
                # "all": every run that built the record is in elapsed_s (it began with
                # this clock); a record begun before counts only its later runs
                rec.meta.setdefault("elapsed_runs", "some" if rec.tasks else "all")
                _clock(rec)
                log(f"cross: block {Path(model).name} {setting['name']}")
                with recording(rec):
                    results.append(run_block(cfg, model, setting, workers=workers,
                                             cache=cache, log=log))
                    rec.meta["finished"] = True
                    _save_active()
                log(f"cross: block {Path(model).name} {setting['name']} done in "
                    f"{(time.perf_counter() - t0) / 60:.1f} min")
        finally:
            if client is not None:
                _CLIENT.pop()
    return rebuild_cross(records_dir, out_dir, mode, log=log) if block is None else {
        "blocks": len(results)}


def cross_status(records_dir: Path, mode: str = "full") -> list[dict]:
    """Where each block of the plan stands, read from the record files alone.

    Returns
    -------
    list of dict
        One per block in run order: ``block`` (``K:SETTING``), ``state`` (``finished``,
        ``partial`` or ``not started``), ``selection`` and ``evaluation`` (how many runs of
        each the record holds), ``elapsed_s`` (the run time recorded, 0 when none) and
        ``elapsed_all`` (False: the record began before run times were counted at every
        save, so its earlier runs are missing from ``elapsed_s``).
    """
    cfg = cross_config(mode)
    rows = []
    for name, (model, setting) in zip(_block_names(cfg), blocks_of(cfg), strict=True):
        stem = block_stem(records_dir, model, setting["name"])
        path = stem.with_name(stem.name + ".record.json")
        row = {"block": name, "state": "not started", "selection": 0, "evaluation": 0,
               "elapsed_s": 0.0, "elapsed_all": True}
        if path.is_file():
            doc = json.loads(path.read_text())
            sets = [t["task"]["images"]["set"] for t in doc.get("tasks", {}).values()]
            row.update(state="finished" if doc.get("finished") else "partial",
                       selection=sets.count("select"), evaluation=sets.count("eval"),
                       elapsed_s=float(doc.get("elapsed_s", 0.0)),
                       elapsed_all=doc.get("elapsed_runs") == "all")
        rows.append(row)
    return rows


def status_markdown(rows: list[dict]) -> str:
    """The rows of :func:`cross_status` as a Markdown table with a one-line summary."""
    lines = ["| block | state | selection runs | evaluation runs | run time (min) |",
             "|---|---|---|---|---|"]
    for r in rows:
        t = f"{r['elapsed_s'] / 60:.1f}" if r["elapsed_s"] else ""
        t += "*" if t and not r["elapsed_all"] else ""
        lines.append(f"| {r['block']} | {r['state']} | {r['selection']} | "
                     f"{r['evaluation']} | {t} |")
    n = {s: sum(r["state"] == s for r in rows) for s in ("finished", "partial", "not started")}
    lines += ["", f"{n['finished']} of {len(rows)} blocks finished, {n['partial']} partial, "
              f"{n['not started']} not started. Run time: every run that built the block, "
              "each up to its last save; *a record begun before run times were counted "
              "at every save holds only its later runs (at least the one that finished "
              "it)."]
    return "\n".join(lines)


def rebuild_cross(records_dir: Path, out_dir: Path, mode: str, log=print) -> dict:
    """Replay every shipped block record of the cross study; analyse and write outputs."""
    from .cross_report import analyse, write_outputs
    from .tasks import recording

    rec = merged_record(records_dir)
    if rec is None:
        return {}
    cfg = rec.meta["config"] or cross_config(mode)
    results, missing = [], []
    with recording(rec):
        for model, setting in blocks_of(cfg):
            stem = block_stem(records_dir, model, setting["name"])
            if not stem.with_name(stem.name + ".record.json").is_file():
                missing.append(f"{Path(model).name}:{setting['name']}")
                continue
            try:
                results.append(run_block(cfg, model, setting, log=lambda _m: None))
            except NotRecorded:
                missing.append(f"{Path(model).name}:{setting['name']} (partial)")
    doc = analyse(results, cfg)
    doc["missing_blocks"] = missing
    write_outputs(doc, Path(out_dir), mode, records_dir=records_dir)
    log(f"rebuilt cross from {len(results)} block records ({len(rec.tasks)} tasks); "
        f"{len(missing)} blocks not (fully) recorded")
    return doc
