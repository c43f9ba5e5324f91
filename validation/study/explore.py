"""The exploratory threshold check (decided after the first stage's first accuracy row)."""

from __future__ import annotations

import functools
import time
from pathlib import Path

from l4theory.experiment import extend_to_interior, mean_ci

from .common import _by_scale, _pts, _row_tag, _scale_list, _stage_start, _tag, _test_correct, arm_key, write_part

__all__ = ["explore_markdown", "threshold_check"]


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
        got = extend_to_interior(cfg["scales"], series, got, run, key=arm_key)
        base = _by_scale(got, none)
        best = max(base, key=lambda g: base[g].mean())  # chosen on TEST: optimistic
        row = {"alpha": setting[0], "reset": setting[1], "semantics": setting[2],
               "T": setting[3], "seeds": len(seeds), "baseline_scale": r["baseline_scale"],
               "baseline_by_scale": {f"{s:g}": mean_ci(b) for s, b in base.items()},
               "baseline_best_on_test": best, "arms": []}
        for a in r["arms"]:
            by = _by_scale(got, a["arm"])
            mine = by[a["scale"]]
            top = max(by, key=lambda g: by[g].mean())  # the arm's own, also on TEST
            row["arms"].append({"label": a["label"], "scale": a["scale"], "arm": mean_ci(mine),
                                "vs_baseline_same_scale": mean_ci(mine - base[a["scale"]]),
                                "vs_baseline_best_on_test": mean_ci(mine - base[best]),
                                "by_scale": {f"{s:g}": mean_ci(v) for s, v in by.items()},
                                "best_on_test": top,
                                "best_vs_baseline_best": mean_ci(by[top] - base[best])})
        doc["rows"].append(row)
        doc["elapsed_s"] = time.perf_counter() - t0
        write_part(doc, {}, out_dir, f"explore_{cfg['mode']}")
        log(f"explore {_tag(*setting)}: baseline by scale " + ", ".join(
            f"{k} {100 * v['mean']:.2f}" for k, v in row["baseline_by_scale"].items()))
    return doc

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
