"""The power pilot (training images) and the first stage's pre-registered settings rule."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from l4theory.experiment import split_indices

from .common import _base_task, _tag, write_part
from .config import MIN_GAP, PAPER_SETTING, PREREGISTERED, load_model, provenance
from .tasks import correct, predictions_task, run_tasks

__all__ = ["gap_settings", "pilot_power", "power_markdown", "power_table", "preregistered",
           "seeds_per_setting"]


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
    outs = run_tasks(predictions_task, tasks, workers, cache)
    ns = len(seeds)
    b = np.array([correct(o, t) for o in outs[:ns]], float)
    a = np.array([correct(o, t) for o in outs[ns:]], float)
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
        write_part(doc, {}, out_dir, f"power_{cfg['mode']}")
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
