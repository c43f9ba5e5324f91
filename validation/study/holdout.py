"""The held-out images stage (planned after the confirmatory result).

The confirmatory comparison repeated on training images that no choice of the study used
(the shipped network was trained on all 60,000 training images, so these are not unseen
images), as many as a rule on the test-set variances asks, and pooled with the test set.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from l4theory.experiment import compare, heldout_blocks, mde, mean_ci, power_of, split_indices

from .common import _correct_on, _pts, _row_tag, _stage_start, _test_correct, recovered_text, write_part
from .confirm import confirm_reading
from .tasks import ann_correct

__all__ = ["holdout_blocks", "holdout_markdown", "holdout_setting", "holdout_size",
           "holdout_table"]

#: The held-out blocks (the engine's :func:`l4theory.experiment.heldout_blocks`).
holdout_blocks = heldout_blocks


def holdout_size(row: dict, hc: dict) -> int:
    """The held-out images stage's size rule: held-out training images for one confirmatory row.

    The smallest multiple of ``hc["block"]`` images ``n_h`` with
    ``max_k MDE_k * sqrt(n / (n + n_h)) <= hc["target_mde"]``, where ``MDE_k`` is the
    80%-power effect of comparison ``k`` on the row's ``n`` test images; capped at
    ``hc["cap"]``. Only the test set's variances enter, never a difference.
    """
    n = min(a["test"]["difference"]["n"] for a in row["arms"])
    worst = max(mde(a["test"]["difference"]) for a in row["arms"])
    need = n * ((worst / hc["target_mde"]) ** 2 - 1)
    if need <= 0:
        return 0
    return int(min(hc["cap"], hc["block"] * math.ceil(need / hc["block"])))

def holdout_setting(cfg: dict, row: dict, *, workers: int = 1, cache=None) -> tuple[dict, dict]:
    """The held-out images stage at one row of the confirmatory table (``row``).

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
    blocks = heldout_blocks(cfg["subset_seed"], start, n_h, hc["block"])
    ids = np.concatenate(blocks) if blocks else np.zeros(0, np.int64)
    test = _test_correct(cfg, setting, pairs, list(range(int(row["seeds"]))), workers, cache)
    held = (_correct_on(cfg, setting, pairs, "train", blocks, [hc["seed"]], workers, cache)
            if blocks else {})
    idx = split_indices(cfg["subset_seed"], cfg["n_calib"], cfg["n_select"],
                        cfg["accuracy"].get("n_test", cfg["n_test"]))
    ann_t = ann_correct(cfg["model"], idx["test"]).astype(float)
    ann_h = ann_correct(cfg["model"], ids, "train").astype(float)
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
           "baseline": {"test": mean_ci(tc[0]), "holdout": mean_ci(hcor[0]) if n_h else None,
                        "pooled": mean_ci(pooled[0][0])},
           "gap": {"holdout": mean_ci(ann_h - hcor[0]) if n_h else None,
                   "pooled": mean_ci(ann_p - pooled[0][0])}, "arms": []}
    arrays = {f"{_row_tag(out)}_holdout_ids": ids}
    for k in range(1, len(series)):
        a = row["arms"][k - 1]
        out["arms"].append({
            "label": a["label"], "arm": a["arm"], "scale": a["scale"],
            "test": a["test"]["difference"],
            "holdout": compare(ann_h, hcor[0][None], hcor[k][None]) if n_h else None,
            "pooled": compare(ann_p, pooled[0], pooled[k])})
    for k, c in enumerate(hcor):
        arrays[f"{_row_tag(out)}_series{k}"] = c.astype(bool)
    return out, arrays

def holdout_table(cfg: dict, out_dir: Path, *, workers: int = 1, log=print) -> dict:
    """The held-out images stage (docs/study-single-network.md) at every row of ``confirm_<mode>.json``.

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
        write_part(doc, arrays, out_dir, f"holdout_{cfg['mode']}")
        log(f"holdout {_row_tag(row)}: pooled " + "; ".join(
            f"{a['label']} {100 * a['pooled']['difference']['mean']:+.2f} "
            f"(power {power_of(a['pooled']['difference']):.2f})" for a in row["arms"]))
    return doc

def holdout_markdown(doc: dict) -> str:
    """The held-out images stage as Markdown: held-out and pooled comparisons."""
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
                f"{power_of(d):.2f} | {100 * mde(d):.2f} | {recovered_text(rec)} | {confirm_reading(a['pooled'])} |")
    return "\n".join(lines)
