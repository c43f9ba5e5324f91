"""The first stage (pre-registered): baseline vs each adjustment at the plan's settings.

Selection on training images, evaluation on test images with several input seeds
(common random numbers), selected-on-train and matched-threshold comparisons, and the
recovered fraction with Fieller's interval (:func:`l4theory.experiment.recovered_fraction`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from l4theory.experiment import compare, mean_ci, power_of, split_indices
from l4theory.experiment.select import edge

from .common import _arms, _pts, _row_tag, _tag, _test_correct, _train_correct, recovered_text, write_part
from .config import PREREGISTERED, load_model, provenance
from .power import gap_settings, preregistered, seeds_per_setting
from .tasks import ann_correct, arm_label

__all__ = ["accuracy_markdown", "accuracy_schedule", "accuracy_setting", "accuracy_table",
           "recovers", "verdict"]


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
                    "scale": scales[j], "edge": edge(j, len(scales)),
                    "best_select": float(acc[j])})
    return res

def _family_best(sel: list[dict], family: str) -> dict | None:
    """The arm of a method family with the best selection accuracy (ties: first listed)."""
    cands = [r for r in sel if r["arm"]["method"] == family]
    return max(cands, key=lambda r: r["best_select"]) if cands else None

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

    ann = ann_correct(cfg["model"], idx["test"]).astype(float)
    base = corr(0, base_scale)
    row = {"alpha": alpha, "reset": reset, "semantics": sem, "T": t,
           "ann_accuracy": float(ann.mean()), "baseline": mean_ci(base.mean(axis=0)),
           "baseline_scale": base_scale, "gap": mean_ci(ann - base.mean(axis=0)), "arms": []}
    arrays = {"ann": ann, "baseline": base}
    for k in chosen[1:]:
        r = sel[k]
        sel_c, mat_c = corr(k, r["scale"]), corr(k, base_scale)
        row["arms"].append({**r, "selected": compare(ann, base, sel_c),
                            "matched": compare(ann, base, mat_c)})
        arrays[f"arm{k}_selected"] = sel_c
        arrays[f"arm{k}_matched"] = mat_c
    row["selection"] = sel
    best = max((sel[k] for k in chosen[1:] if sel[k]["arm"]["method"] != "l4"),
               key=lambda r: r["best_select"], default=None)
    row["best_new_method"] = best["label"] if best else None  # chosen on training images
    l4 = _family_best(sel, "l4")
    row["best_l4"] = l4["label"] if l4 else None
    return row, arrays

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

def accuracy_schedule(groups: list, seeds: dict, variability_after: int = 1) -> list[tuple]:
    """Order of the powered comparison's work: seed by seed across all settings.

    ``groups``: lists of settings (the paper's setting, then the >= 2-point settings);
    ``seeds``: setting -> planned number of seeds. Seed ``s`` runs for every group (in
    order) before seed ``s + 1`` runs for any; the selection-variability reruns follow
    the tests of round ``variability_after`` of every group. So a run stopped by the
    clock has covered every setting at the largest common number of seeds (before
    the first stage's new order of 2026-12-03 14:32 UTC, the groups ran one after the other, each with its reruns,
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
    # the paper's setting first (docs/study-single-network.md, the first stage's new
    # order), then the gaps, largest first
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
        write_part(doc, arrays, out_dir, f"accuracy_{cfg['mode']}")
    return doc

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
    pw = min(power_of(a["selected"]["difference"]) for a in row["arms"])
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
                f"{power_of(a['selected']['difference']):.2f} | {recovered_text(rec)} | "
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
