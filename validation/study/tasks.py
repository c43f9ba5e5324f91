"""The study's pure tasks on the library's engine, and the per-image record they leave.

A task is a dict of plain values (model name, arm, subset seed and sizes, setting, scale,
split, image ids, spike seed); :func:`predictions_task` and :func:`fidelity_task` compute
one. :func:`run_tasks` maps them through :func:`l4theory.experiment.map_tasks` (serially or
on a process pool) with the engine's one cache, whose keys include the library's code
version (:func:`l4theory.experiment.task_key`); arms are fitted once per process
(:func:`l4theory.experiment.fit_arm`).

**The record.** Every task's per-image outcome is kept in the active :class:`Record`:
for a predictions task the predicted class of every image at the steps the study reads
(uint8), for a fidelity task its per-image MSE and its summary numbers; and the ANN's
predicted class of every image. A record is saved next to the part's JSON
(``<part>_<mode>.record.npz`` + ``.record.json``); full-size records are tracked in
``records/study/``. In *replay* mode :func:`run_tasks` answers every task from the record
instead of simulating, so ``--report`` rebuilds every table, interval and verdict from
the shipped bits in seconds, and ``--verify K`` recomputes K recorded tasks from scratch
and compares them bit for bit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from l4theory.experiment import Arm, TaskCache, fit_arm, map_tasks, split_indices, task_key
from l4theory.experiment.cache import json_default, write_json, write_npz

from .config import load_model, load_split, model_sha

__all__ = ["PRED_KINDS", "NotRecorded", "Record", "active_record", "ann_correct", "ann_keys",
           "ann_lookup", "ann_merge", "arm_label",
           "arm_network", "correct", "outcome", "task_ids",
           "fidelity_task", "predictions_task", "recording", "run_tasks", "task_id"]

#: Task fields that do not change a result (memory/speed only, or bit-identical backends).
_NOT_IN_ID = ("batch_size", "backend")
#: Task kinds whose outcome is the predicted class of every image at some steps.
PRED_KINDS = ("pred", "xpred")


#: Resolvers of image descriptors: a task may name its images by
#: ``"images": {"of": name, ...}`` instead of listing ``ids``; ``_IDS[name](task)`` gives them.
_IDS: dict = {}


def task_ids(task: dict) -> np.ndarray:
    """The dataset indices of a task's images: its ``ids``, or what its ``images`` names."""
    if "ids" in task:
        return np.asarray(task["ids"], dtype=np.int64)
    return np.asarray(_IDS[task["images"]["of"]](task), dtype=np.int64)


def arm_label(arm: dict) -> str:
    """Short text name of an arm given in its JSON form."""
    return Arm.from_dict(arm).label


@functools.lru_cache(maxsize=8)
def _balanced(model: str, subset_seed: int, n_calib: int, n_select: int):
    from l4theory.convert.balance import balance

    _, net = load_model(model)
    idx = split_indices(subset_seed, n_calib, n_select, 2)["calib"]
    x, _ = load_split("train")
    return balance(net, x[idx], "max")


def _sim_kwargs(semantics: str) -> dict:
    return {} if semantics == "project" else {"semantics": semantics}


def arm_network(arm: dict, *, model: str, subset_seed: int, n_calib: int, n_select: int,
                alpha: float, reset: str, semantics: str, steps: int, scale: float):
    """The network of one arm (method) and the thresholds it runs at.

    Parameters
    ----------
    arm : dict
        The JSON form of an :class:`l4theory.experiment.Arm` (``{"method": "none"}``,
        ``{"method": "l4" | "exact", "r_s": r}``, ``{"method": "ratematch"}``,
        ``{"method": "overshoot"}``). Every fit uses the calibration *training* images only.
    model, subset_seed, n_calib, n_select : as in :func:`l4theory.experiment.split_indices`.
    alpha, reset, semantics, steps : the simulation setting (rate matching fits to it).
    scale : float
        Threshold scale: every balanced threshold times ``scale``.

    Returns
    -------
    (Network, numpy.ndarray, BalanceResult, dict)
        Network, thresholds, the balancing, and a JSON-safe summary of the fit.
    """
    _, net = load_model(model)
    bal = _balanced(model, subset_seed, n_calib, n_select)
    th = np.asarray(bal.thresholds, dtype=np.float64) * scale
    a = Arm.from_dict(arm)
    x, _ = load_split("train")
    x_cal = x[split_indices(subset_seed, n_calib, n_select, 2)["calib"]]
    out, fit = fit_arm(a, net, x_cal, v_th0=float(bal.thresholds[0]), v_th=float(th[0]),
                       steps=steps, alpha=alpha, reset=reset, semantics=semantics,
                       bias_scale=float(bal.bias_scales[0]))
    return out, th, bal, fit


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
    out["fit"] = np.array(json.dumps(fit, default=json_default))
    out["time_s"] = np.float64(time.perf_counter() - t0)
    return out


_COMPUTE = {"pred": _predictions, "fidelity": _fidelity}


def task_id(task: dict, kind: str) -> str:
    """What a task is, independent of the code that computes it (24 hex digits).

    sha256 of the kind, the model file's sha256 and the task's fields (less
    :data:`_NOT_IN_ID`): the name of the task's outcome in a record. The cache key
    (:func:`_cache_key`) adds the library's code version to it.
    """
    path, _ = load_model(task["model"])
    blob = json.dumps({"kind": kind, "model": model_sha(path),
                       **{k: v for k, v in task.items() if k not in _NOT_IN_ID}},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _cache_key(task: dict, kind: str) -> str:
    return f"{kind}_{task_key(kind, task_id(task, kind), task.get('backend'))[:24]}"


def _compute_cached(task: dict, kind: str, cache_dir=None) -> dict:
    if cache_dir is None:
        return _COMPUTE[kind](task)
    return TaskCache(cache_dir, compress=True).cached(_cache_key(task, kind),
                                                      lambda: _COMPUTE[kind](task))


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
        Folder of the engine's task cache.

    Returns
    -------
    dict
        ``predictions`` (int16, shape (steps, n)), ``labels`` (shape (n,)), ``time_s``.
    """
    return _compute_cached(task, "pred", cache_dir)


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
    return _compute_cached(task, "fidelity", cache_dir)


_KIND = {predictions_task: "pred", fidelity_task: "fidelity"}


# --------------------------------------------------------------------------- the record


def outcome(kind: str, result: dict, steps) -> dict:
    """What a record keeps of one task's result: ``{name: array}``.

    A predictions task: its predicted classes at ``steps`` (1-based), uint8, under the name
    ``""``; a fidelity task: every array of its result but the time.
    """
    if kind in PRED_KINDS:
        return {"": np.asarray(result["predictions"])[[s - 1 for s in steps]].astype(np.uint8)}
    return {k: np.asarray(v) for k, v in result.items() if k != "time_s"}


def _array_name(tid: str, name: str) -> str:
    return tid if name == "" else f"{tid}/{name}"


class NotRecorded(KeyError):
    """A replayed part asked for a task its record does not hold (a partial run)."""


class Record:
    """Per-image outcomes of a part's tasks, by :func:`task_id`; saved and replayed.

    Attributes
    ----------
    tasks : dict
        ``{id: {"kind", "task", "steps"}}`` (the task as run; recorded steps, 1-based).
    arrays : dict
        ``{id: uint8 classes (len(steps), n)}`` for predictions tasks;
        ``{id + "/" + name: array}`` for fidelity tasks; ``ann/<split>`` for the ANN's
        predicted class of every image of a split.
    replay : bool
        Answer tasks from the record instead of computing them.
    """

    def __init__(self, replay: bool = False):
        self.tasks: dict = {}
        self.arrays: dict = {}
        self.replay = replay
        self.meta: dict = {}
        self.path: Path | None = None  # stem the part saves the record to (None: not saved)

    # -- writing
    def add(self, task: dict, kind: str, result: dict, steps) -> None:
        """Keep the outcome of one computed task."""
        tid = task_id(task, kind)
        steps = [int(s) for s in steps] if kind in PRED_KINDS else []
        for name, a in outcome(kind, result, steps).items():
            self.arrays[_array_name(tid, name)] = a
        self.tasks[tid] = {"kind": kind, "task": task, "steps": steps}

    def stored(self, tid: str) -> dict:
        """The recorded outcome of task ``tid`` (as :func:`outcome` gives it)."""
        if self.tasks[tid]["kind"] in PRED_KINDS:
            return {"": self.arrays[tid]}
        pre = f"{tid}/"
        return {k[len(pre):]: v for k, v in self.arrays.items() if k.startswith(pre)}

    def save(self, stem: Path) -> None:
        """Write ``<stem>.record.npz`` (arrays) and ``<stem>.record.json`` (index, meta)."""
        write_npz(stem.with_name(stem.name + ".record.npz"), self.arrays)
        write_json(stem.with_name(stem.name + ".record.json"),
                   {"format": "l4theory.study.record", "version": 1, **self.meta,
                    "tasks": self.tasks})

    @classmethod
    def load(cls, stem: Path, replay: bool = True) -> Record:
        """Read a saved record (no pickle)."""
        rec = cls(replay=replay)
        doc = json.loads(stem.with_name(stem.name + ".record.json").read_text())
        if doc.get("format") != "l4theory.study.record":
            raise ValueError(f"{stem}.record.json is not a study record")
        rec.tasks = doc.pop("tasks")
        rec.meta = {k: v for k, v in doc.items() if k not in ("format", "version")}
        with np.load(stem.with_name(stem.name + ".record.npz"), allow_pickle=False) as z:
            rec.arrays = {k: z[k] for k in z.files}
        return rec

    # -- reading
    def has(self, task: dict, kind: str, steps=()) -> bool:
        """Whether the record holds the task (and, for predictions, every step in ``steps``)."""
        entry = self.tasks.get(task_id(task, kind))
        return entry is not None and set(steps) <= set(entry["steps"])

    def result(self, task: dict, kind: str) -> dict:
        """The task's result as the part reads it (unrecorded steps hold -1)."""
        tid = task_id(task, kind)
        if tid not in self.tasks:
            raise NotRecorded(f"task {tid} ({kind}, {task.get('split')}, arm {task.get('arm')}, "
                           f"scale {task.get('scale')}) is not in the record")
        if kind in PRED_KINDS:
            ids = task_ids(task)
            pred = np.full((int(task["steps"]), ids.size), -1, np.int16)
            pred[[s - 1 for s in self.tasks[tid]["steps"]]] = self.arrays[tid]
            return {"predictions": pred, "labels": load_split(task["split"])[1][ids],
                    "time_s": np.float64(0.0)}
        return {**self.stored(tid), "time_s": np.float64(0.0)}

    def ann(self, model: str, split: str, ids: np.ndarray, key: str | None = None
            ) -> np.ndarray:
        """The ANN's predicted class of images ``ids`` of ``split`` (new ones computed, kept).

        ``key`` names the predictions in the record (``ann/<key>/ids|classes``; default
        ``split``): the cross study keeps each network's apart.
        """
        kid, kcl = ann_keys(split if key is None else key)
        ids = np.asarray(ids, dtype=np.int64)
        got = ann_lookup(self.arrays, kid, kcl, ids)
        if got is not None:
            return got
        if self.replay:
            raise NotRecorded(f"the ANN's predictions of {model} on {split} images are not "
                              "in the record")
        _, net = load_model(model)
        x, _ = load_split(split)
        cls = net.predict(x[ids]).astype(np.uint8)  # the images as the part asks them
        ann_merge(self.arrays, {kid: ids, kcl: cls}, kid, kcl)
        return cls


def ann_keys(key: str) -> tuple[str, str]:
    """The record's array names of the ANN's predictions under ``key``: (ids, classes)."""
    return f"ann/{key}/ids", f"ann/{key}/classes"


def ann_lookup(arrays: dict, kid: str, kcl: str, ids: np.ndarray) -> np.ndarray | None:
    """The recorded classes of images ``ids`` (any order recorded); None unless all are."""
    have = np.asarray(arrays.get(kid, np.zeros(0, np.int64)))
    if have.size == 0:
        return None if np.size(ids) else np.zeros(0, np.uint8)
    order = np.argsort(have, kind="stable")
    at = order[np.minimum(np.searchsorted(have, ids, sorter=order), have.size - 1)]
    if not np.array_equal(have[at], ids):
        return None
    return np.asarray(arrays[kcl])[at]


def ann_merge(into: dict, arrays: dict, kid: str, kcl: str) -> None:
    """Add the ANN classes of ``arrays`` to ``into``, keeping every image either holds.

    The union is stored sorted by image id. An image held by both must have the same
    class (the ANN is deterministic); otherwise a ValueError names the key.
    """
    ids = np.concatenate([into.get(kid, np.zeros(0, np.int64)), arrays[kid]])
    cls = np.concatenate([into.get(kcl, np.zeros(0, np.uint8)), arrays[kcl]])
    uniq, first, inv = np.unique(ids, return_index=True, return_inverse=True)
    if not np.array_equal(cls[first][inv], cls):
        raise ValueError(f"records disagree on the ANN's class of an image ({kid})")
    into[kid], into[kcl] = uniq.astype(np.int64), cls[first]


_ACTIVE: list = []


class recording:  # noqa: N801 (used as a context manager, like contextlib's)
    """Make ``record`` the active record inside a ``with`` block."""

    def __init__(self, record: Record):
        self.record = record

    def __enter__(self) -> Record:
        _ACTIVE.append(self.record)
        return self.record

    def __exit__(self, *exc) -> None:
        _ACTIVE.pop()


def active_record() -> Record | None:
    """The record of the part running now (None outside a part)."""
    return _ACTIVE[-1] if _ACTIVE else None


def run_tasks(fn, tasks: list, workers: int = 1, cache_dir=None, steps=None,
              client=None) -> list:
    """``[fn(t, cache_dir) for t in tasks]`` through the engine, kept in the active record.

    Parameters
    ----------
    fn : {predictions_task, fidelity_task}
    tasks : list of dict
    workers : int
        Local worker processes (:func:`l4theory.experiment.map_tasks`).
    cache_dir : path-like, optional
        The engine's task cache.
    steps : sequence of int, optional
        Steps (1-based) whose predictions the part reads (default: each task's last).
    client : distributed.Client, optional
        Run on these (persistent) Dask workers instead of a fresh process pool.

    In replay mode every result comes from the record and nothing is computed.
    """
    kind = _KIND[fn]
    rec = active_record()
    if rec is not None and rec.replay:
        return [rec.result(t, kind) for t in tasks]

    def need(t):
        if kind not in PRED_KINDS:
            return ()
        return sorted({s for s in (steps or ()) if s <= t["steps"]} | {t["steps"]})

    # a task already in the record (a resumed run, on any machine) is answered from it
    todo = [t for t in tasks if rec is None or not rec.has(t, kind, need(t))]
    fresh = iter(map_tasks(fn, todo, workers=workers, cache_dir=cache_dir, client=client))
    outs = []
    for t in tasks:
        if rec is not None and rec.has(t, kind, need(t)):
            outs.append(rec.result(t, kind))
        else:
            o = next(fresh)
            if rec is not None:
                rec.add(t, kind, o, need(t))
            outs.append(o)
    return outs


def correct(out: dict, t: int) -> np.ndarray:
    """Correctness of every image at step ``t`` (1-based) of a predictions result."""
    p = out["predictions"][t - 1]
    if (p < 0).any():
        raise KeyError(f"step {t} is not in the record")
    return p == out["labels"]


def ann_correct(model: str, ids: np.ndarray, split: str = "test") -> np.ndarray:
    """The ANN's correctness on images ``ids`` of ``split`` (from the record when active)."""
    rec = active_record()
    _, y = load_split(split)
    ids = np.asarray(ids, dtype=np.int64)
    if rec is not None:
        return rec.ann(model, split, ids) == y[ids]
    _, net = load_model(model)
    x, _ = load_split(split)
    return net.predict(x[ids]) == y[ids]
