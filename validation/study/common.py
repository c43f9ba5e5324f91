"""Helpers the study's parts share: task dicts, correctness over blocks, writing, formatting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from l4theory.experiment import split_indices
from l4theory.experiment.cache import write_json, write_npz

from .config import PREREGISTERED, load_model, provenance
from .tasks import active_record, correct, predictions_task, run_tasks

__all__ = ["arm_key", "recovered_text", "write_part"]


def arm_key(arm: dict) -> str:
    """The hashable name of an arm in a ``{(arm_key, scale): correctness}`` mapping."""
    return json.dumps(arm, sort_keys=True)


def write_part(doc: dict, arrays: dict, out_dir: Path, stem: str) -> None:
    """Write a part's JSON (and arrays), and save the active record beside it.

    In replay mode (``--report``) only the JSON is written: the tables and figures read it.
    """
    out_dir = Path(out_dir)
    rec = active_record()
    if rec is not None and rec.replay:  # the run's own provenance and time, and this rebuild
        from l4theory._provenance import record

        doc = {**doc, "provenance": rec.meta.get("provenance"),
               "elapsed_s": rec.meta.get("elapsed_s"),
               "rebuilt": {"from": f"{stem}.record.npz",
                           **record("python -m validation study --report")}}
        write_json(out_dir / f"{stem}.json", doc)
        return
    write_json(out_dir / f"{stem}.json", doc)
    if arrays:
        write_npz(out_dir / f"{stem}.npz", arrays)
    if rec is not None and rec.path is not None:
        rec.meta.update({"part": doc.get("part"), "stem": stem,
                         "elapsed_s": doc.get("elapsed_s"), "provenance": doc.get("provenance")})
        rec.save(rec.path)


def recovered_text(rec: dict) -> str:
    """``"0.33 [0.26, 0.41]"``, or ``"0.33 [unbounded]"`` when Fieller's set is unbounded."""
    if rec.get("lo") is None or rec.get("hi") is None:
        return f"{rec['mean']:.2f} [unbounded]"
    return f"{rec['mean']:.2f} [{rec['lo']:.2f}, {rec['hi']:.2f}]"


def _base_task(cfg: dict, **kw) -> dict:
    keys = ("model", "subset_seed", "n_calib", "n_select", "steps", "backend", "batch_size")
    return {**{k: cfg[k] for k in keys}, **kw}

def _tag(*parts) -> str:
    return "_".join(f"{p:g}" if isinstance(p, float) else str(p) for p in parts)

def _row_tag(r: dict) -> str:
    """The setting of an accuracy or explore row as one tag (``0.85_hard_project_15``)."""
    return _tag(r["alpha"], r["reset"], r["semantics"], r["T"])

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
    outs = iter(run_tasks(predictions_task, tasks, workers, cache))
    got: dict = {}
    for a, s, _ in keys:  # the blocks of one (arm, scale, seed), in order
        c = np.concatenate([correct(next(outs), t) for _ in blocks])
        got.setdefault((json.dumps(a, sort_keys=True), s), []).append(c)
    return {k: np.array(v) for k, v in got.items()}

def _train_correct(cfg, setting, pairs, ids, seed, workers, cache) -> dict:
    """Training-set correctness of each (arm, scale): ``{(json of arm, scale): (1, n)}``."""
    return _correct_on(cfg, setting, pairs, "train", [ids], [seed], workers, cache)

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

def _by_scale(got: dict, arm: dict) -> dict:
    """``{scale: per-image accuracy over seeds}`` of one arm in ``got``, scales ascending."""
    key = json.dumps(arm, sort_keys=True)
    return {s: got[(k, s)].mean(axis=0) for k, s in sorted(got, key=lambda x: x[1])
            if k == key}

def _scale_list(acc: dict, best) -> str:
    """``"0.3: 90.00; 0.35*: 91.30; ..."``: accuracy (%) by scale, the chosen one starred."""
    return "; ".join(f"{k}{'*' if k == f'{best:g}' else ''}: {100 * v:.2f}"
                     for k, v in acc.items())

def _pts(ci: dict, signed: bool = False) -> str:
    f = "{:+.2f}" if signed else "{:.2f}"
    return (f"{f.format(100 * ci['mean'])} [{f.format(100 * ci['lo'])}, "
            f"{f.format(100 * ci['hi'])}]")
