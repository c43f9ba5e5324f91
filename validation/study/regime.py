"""The regime map: the baseline conversion gap over leak, reset, T and simulator semantics.

ANN accuracy minus the accuracy of the spiking network at the threshold scale selected
on held-out *training* images, for T in {15, 30, 50, 75}, leak ``alpha`` in
{1, 0.95, 0.9, 0.85}, soft and hard reset, and both simulator semantics. One T = 75 run
per (setting, scale) gives the prediction after every step (the simulation is causal),
so the scale is selected per T from the same runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from l4theory.experiment import mean_ci, split_indices
from l4theory.experiment.select import edge

from .common import _base_task, _pts, _tag, write_part
from .config import load_model, provenance
from .tasks import ann_correct, correct, predictions_task, run_tasks

__all__ = ["regime_line", "regime_map", "regime_markdown", "regime_order", "regime_setting"]


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
    steps = [int(t) for t in cfg["report_steps"]]
    sel = run_tasks(predictions_task, [
        _base_task(cfg, **common, scale=s, split="train", ids=idx["select"].tolist(),
                   seed=cfg["select_seed"]) for s in scales], workers, cache_dir, steps=steps)
    sel_acc = np.array([(o["predictions"] == o["labels"][None]).mean(axis=1) for o in sel])
    # ties: lowest scale (only the recorded steps are read: a rebuild has just those)
    chosen = {t: int(np.argmax([correct(o, t).mean() for o in sel])) for t in steps}
    test_tasks = [_base_task(cfg, **common, scale=scales[j], split="test",
                             ids=idx["test"].tolist(), seed=seed)
                  for j in sorted(set(chosen.values())) for seed in cfg["seeds"]]
    outs = run_tasks(predictions_task, test_tasks, workers, cache_dir, steps=steps)
    by = {(t["scale"], t["seed"]): o for t, o in zip(test_tasks, outs, strict=True)}
    ann = ann_correct(cfg["model"], idx["test"])
    row = {"alpha": alpha, "reset": reset, "semantics": semantics,
           "ann_accuracy": float(ann.mean()), "per_T": []}
    arrays = {"select_accuracy": sel_acc}
    for t in steps:
        s = scales[chosen[t]]
        corr = np.array([correct(by[(s, seed)], t) for seed in cfg["seeds"]])
        snn = corr.mean(axis=0)
        gap = mean_ci(ann.astype(float) - snn)
        row["per_T"].append({"T": t, "scale": s, "edge": edge(chosen[t], len(scales)),
                             "select_accuracy": float(correct(sel[chosen[t]], t).mean()),
                             "snn": mean_ci(snn), "gap": gap})
        arrays[f"T{t}_correct"] = corr
    row["time_s"] = float(sum(o["time_s"] for o in sel + outs))
    return row, arrays

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
        write_part(doc, arrays, out_dir, stem)
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
