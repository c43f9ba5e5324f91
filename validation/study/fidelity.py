"""First-layer fidelity (:mod:`l4theory.convert.fidelity`) of every method on test images."""

from __future__ import annotations

import json
import time
from pathlib import Path

from l4theory.experiment import mean_ci, split_indices

from .common import _arms, _base_task, write_part
from .config import load_model, provenance
from .tasks import arm_label, fidelity_task, run_tasks

__all__ = ["fidelity_markdown", "fidelity_table"]


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
            outs = run_tasks(fidelity_task, tasks, workers, out_dir / "tasks")
            none = outs[0]["mse_per_image"]  # arms[0] is the unadjusted layer
            for a, o in zip(arms, outs, strict=True):
                row = {"alpha": alpha, "reset": reset, "steps": steps, "scale": fc["scale"],
                       "arm": a, "label": arm_label(a), "fit": json.loads(str(o["fit"])),
                       **{k: float(v) for k, v in o.items()
                          if k not in ("fit", "mse_per_image")},
                       "mse_vs_none": mean_ci(o["mse_per_image"] - none)}
                doc["rows"].append(row)
                log(f"fidelity a={alpha:g} {reset} T={steps} {row['label']:16s} "
                    f"mse {row['mse']:.4f} corr {row['corr']:.3f} "
                    f"dom {row['dominance_error']:.4f}")
            doc["elapsed_s"] = time.perf_counter() - t0
            write_part(doc, {}, out_dir, f"fidelity_{cfg['mode']}")
    return doc

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
