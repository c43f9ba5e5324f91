"""The confirmatory stage (planned after the first stage's results were seen)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from l4theory.experiment import compare, extend_to_interior, mde, mean_ci, power_of, split_indices
from l4theory.experiment.select import edge

from .common import (
    _by_scale,
    _pts,
    _row_tag,
    _scale_list,
    _stage_start,
    _test_correct,
    _train_correct,
    arm_key,
    recovered_text,
    write_part,
)
from .tasks import ann_correct

__all__ = ["confirm_markdown", "confirm_reading", "confirm_setting", "confirm_table"]


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
    got = extend_to_interior(cc["grid"], series, got, run, key=arm_key)
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
    ann = ann_correct(cfg["model"], idx["test"]).astype(float)
    base = corr[0]
    grid = sorted(cc["grid"])
    out = {"alpha": setting[0], "reset": setting[1], "semantics": setting[2],
           "T": setting[3], "seeds": len(seeds), "n_select": int(len(ids)),
           "ann_accuracy": float(ann.mean()), "baseline": mean_ci(base.mean(axis=0)),
           "baseline_scale": chosen[0], "baseline_curve": curves[0],
           "gap": mean_ci(ann - base.mean(axis=0)), "arms": []}
    for k in range(1, len(series)):
        out["arms"].append({"label": labels[k], "arm": series[k], "scale": chosen[k],
                            "stage1_scale": row["arms"][k - 1]["scale"],
                            "curve": curves[k],
                            "edge": edge(grid.index(chosen[k]), len(grid)),
                            "test": compare(ann, base, corr[k])})
    out["baseline_edge"] = edge(grid.index(chosen[0]), len(grid))
    sel = {a["label"]: a["curve"][f"{a['scale']:g}"] for a in out["arms"]}
    new = [a["label"] for a in out["arms"] if a["arm"]["method"] != "l4"]
    # like the first stage's: the non-L4 family best on the selection images (not on test)
    out["best_new_method"] = max(new, key=lambda k: sel[k]) if new else None
    out["best_l4"] = next((a["label"] for a in out["arms"] if a["arm"]["method"] == "l4"),
                          None)
    return out

def confirm_table(cfg: dict, out_dir: Path, *, workers: int = 1, log=print) -> dict:
    """The confirmatory stage (docs/study-single-network.md) at every finished setting.

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
        write_part(doc, {}, out_dir, f"confirm_{cfg['mode']}")
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
                f"({a['stage1_scale']:g}) | {_pts(d, True)} | {power_of(d):.2f} | "
                f"{100 * mde(d):.2f} | {recovered_text(rec)} | {confirm_reading(a)} |")
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
