"""Figures of the conversion study (issue 11), drawn from its result files only.

Data: ``results/study/{regime,fidelity,accuracy,confirm,holdout}_<mode>.json`` written by
``python -m validation study``. This module reads those files; it never simulates. It
serves five result figures of :mod:`figures` (``study_regime``, ``study_fidelity``,
``study_accuracy``, ``study_confirm``, ``study_holdout``: ``python -m figures
study_regime``) through the same
config/compute/plot/caption/summary/cache protocol as the others; the cached data is the
part's JSON document (a string array), so new results invalidate the cache.

* :func:`plot_regime`: the baseline conversion gap (points, 95% CI) against T, one line per
  leak factor, one panel per (semantics, reset).
* :func:`plot_bars`: Fig. 6-style grouped bars per setting (leak x reset): baseline, L4 and
  the best new method (chosen on training images), selected-on-train accuracies with 95%
  CIs, the ANN accuracy as a tick.
  The same bars draw the confirmatory stage (``study_confirm``), whose thresholds are
  selected per series on 1000 training images.
* :func:`plot_fidelity`: first-layer MSE and dominance error of every method.
* :func:`plot_holdout`: the held-out images stage (planned after the confirmatory
  result), every method - baseline difference (points) with its 95% CI, pooled over test
  images and training images that no choice of the study used (the network was trained on
  them), beside the test-only one, against the 0.3-point effect the power target names.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .paths import RESULTS_DIR
from .style import COLORS, figure, styled

__all__ = ["CONFIGS", "STUDY_DIR", "caption", "compute", "config", "load", "plot",
           "plot_bars", "plot_fidelity", "plot_holdout", "plot_regime", "summary"]

TITLE = "Conversion study: regime map, first-layer fidelity, powered accuracy comparison"
NEEDS = "python -m validation study"
CONFIGS = {"quick": {"version": 1, "mode": "quick"}, "full": {"version": 1, "mode": "full"}}
#: Figure name -> part of the study.
PARTS = {"study_regime": "regime", "study_fidelity": "fidelity", "study_accuracy": "accuracy",
         "study_confirm": "confirm", "study_holdout": "holdout"}

STUDY_DIR = RESULTS_DIR / "study"
_LINE_COLORS = ("#1b6ca8", "#e07b00", "#3a9e4f", "#b8336a", "#6b6b6b")


def load(part: str, mode: str = "full", results_dir=None) -> dict:
    """The JSON document of one part of the study (FileNotFoundError if not run)."""
    path = Path(results_dir or STUDY_DIR) / f"{part}_{mode}.json"
    return json.loads(path.read_text())


@styled
def plot_regime(doc: dict):
    """Gap against T per leak factor; one panel per (semantics, reset). Returns the Figure."""
    rows = doc["rows"]
    panels = sorted({(r["semantics"], r["reset"]) for r in rows},
                    key=lambda p: (p[0] != "project", p[1] != "soft"))
    fig, axes = figure(ncols=len(panels), width=2.6 * len(panels) + 0.6, height=2.6,
                       sharey=True)
    axes = np.atleast_1d(axes)
    alphas = sorted({r["alpha"] for r in rows}, reverse=True)
    for ax, (sem, reset) in zip(axes, panels, strict=True):
        for k, a in enumerate(alphas):
            sel = [r for r in rows if (r["semantics"], r["reset"], r["alpha"]) == (sem, reset, a)]
            if not sel:
                continue
            pts = sel[0]["per_T"]
            t = np.array([p["T"] for p in pts]) + (k - 1.5) * 0.8
            g = np.array([100 * p["gap"]["mean"] for p in pts])
            e = np.array([100 * p["gap"]["half_width"] for p in pts])
            ax.errorbar(t, g, yerr=e, marker="o", ms=3, lw=1, capsize=2,
                        color=_LINE_COLORS[k % len(_LINE_COLORS)], label=f"alpha {a:g}")
            edge = [p["edge"] is not None for p in pts]
            ax.plot(t[edge], g[edge], "x", color="k", ms=6)
        ax.axhline(2.0, color=COLORS["theory"], ls="--", lw=0.8)
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_title(f"{sem}, {reset} reset")
        ax.set_xlabel("time steps T")
    axes[0].set_ylabel("ANN - SNN accuracy (points)")
    axes[-1].legend(loc="upper right", fontsize=7)
    return fig


def _arm(row: dict, label: str | None) -> dict | None:
    return next((a for a in row["arms"] if a["label"] == label), None)


def _baseline_same_scale(rows: list, explore: dict | None) -> list:
    """(row index, bar offset, baseline accuracy at that bar's scale) from the explore part."""
    if not explore:
        return []
    key = ("alpha", "reset", "semantics", "T")
    by = {tuple(e[k] for k in key): e for e in explore["rows"]}
    out = []
    for i, r in enumerate(rows):
        e = by.get(tuple(r[k] for k in key))
        for dx, label in ((0.0, r["best_l4"]), (0.27, r["best_new_method"])):
            a = _arm(r, label)
            ci = e and a and e["baseline_by_scale"].get(f"{a['scale']:g}")
            if ci:
                out.append((i, dx, ci["mean"]))
    return out


@styled
def plot_bars(doc: dict):
    """Fig. 6-style grouped bars (baseline / L4 / best new method, 95% CIs)."""
    rows = doc["rows"]
    confirm = doc.get("part") == "confirm"  # its arms' test CIs are under "test"
    fig, ax = figure(ncols=1, width=max(3.4, 1.1 * len(rows) + 1.5), height=2.8)
    xs = np.arange(len(rows))
    series = (("baseline", COLORS["sim"]), ("L4", COLORS["l4"]), ("best new", "#3a9e4f"))
    lo_all = []
    for k, (name, color) in enumerate(series):
        m, lo, hi = [], [], []
        for r in rows:
            if name == "baseline":
                ci = r["baseline"]
            else:
                a = _arm(r, r["best_l4"] if name == "L4" else r["best_new_method"])
                ci = ((a["test"] if confirm else a["selected"])["arm"] if a
                      else {"mean": np.nan, "lo": np.nan, "hi": np.nan})
            m.append(100 * ci["mean"])
            lo.append(100 * (ci["mean"] - ci["lo"]))
            hi.append(100 * (ci["hi"] - ci["mean"]))
        m = np.array(m)
        ax.bar(xs + (k - 1) * 0.27, m, 0.25, yerr=[lo, hi], color=color, label=name,
               capsize=1.5)
        lo_all.append(np.nanmin(m - np.array(lo)))
    for x, r in zip(xs, rows, strict=True):
        ax.plot([x - 0.42, x + 0.42], [100 * r["ann_accuracy"]] * 2, color=COLORS["theory"],
                lw=1, ls="--")
    same = _baseline_same_scale(rows, doc.get("explore"))
    if same:
        ax.plot([xs[i] + dx for i, dx, _ in same], [100 * v for _, _, v in same], "D",
                ms=4, mfc="white", mec="black", mew=0.8, ls="none",
                label="baseline, same scale")
    ax.set_xticks(xs, [f"a{r['alpha']:g} {r['reset']}\nT{r['T']} {r['semantics'][:4]}"
                       for r in rows], fontsize=6.5)
    ax.set_ylabel("test accuracy (%)")
    top = max(100 * r["ann_accuracy"] for r in rows)
    ax.set_ylim(max(0.0, min(lo_all) - 2), min(100.0, top + 2))
    ax.grid(False, axis="x")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=7, ncol=3,
              frameon=False)
    return fig


@styled
def plot_fidelity(doc: dict):
    """First-layer MSE and dominance error per method, one group per setting."""
    rows = doc["rows"]
    keys = sorted({(r["alpha"], r["reset"], r["steps"]) for r in rows},
                  key=lambda k: (k[2], -k[0], k[1]))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    fig, axes = figure(ncols=2, width=9.0, height=3.0)
    width = 0.8 / len(labels)
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    for ax, metric, name in ((axes[0], "mse", "rate MSE"),
                             (axes[1], "dominance_error", "dominance error")):
        for j, lab in enumerate(labels):
            vals = [next((r[metric] for r in rows if (r["alpha"], r["reset"], r["steps"]) == k
                          and r["label"] == lab), np.nan) for k in keys]
            ax.bar(np.arange(len(keys)) + (j - len(labels) / 2 + 0.5) * width, vals, width,
                   color=cmap(j % 20), label=lab)
        ax.set_xticks(np.arange(len(keys)), [f"a{a:g}\n{r}\nT{t}" for a, r, t in keys],
                      fontsize=6.5)
        ax.set_ylabel(name)
    axes[1].legend(fontsize=5.5, ncol=1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


@styled
def plot_holdout(doc: dict):
    """Forest plot: method - baseline (points, 95% CI), pooled (filled) and test only (open)."""
    rows = doc["rows"]
    items = [(r, a) for r in rows for a in r["arms"]]
    fig, ax = figure(ncols=1, width=4.6, height=0.9 + 0.22 * len(items))
    ys = -np.arange(len(items), dtype=float)
    for y, (_r, a) in zip(ys, items, strict=True):
        d, t = a["pooled"]["difference"], a["test"]
        ax.errorbar(100 * d["mean"], y, xerr=[[100 * (d["mean"] - d["lo"])],
                                             [100 * (d["hi"] - d["mean"])]],
                    fmt="o", ms=3.5, color=COLORS["l4"] if a["arm"]["method"] == "l4"
                    else "#3a9e4f", capsize=1.5, lw=1)
        ax.errorbar(100 * t["mean"], y - 0.3, xerr=[[100 * (t["mean"] - t["lo"])],
                                                   [100 * (t["hi"] - t["mean"])]],
                    fmt="o", ms=3, mfc="white", color="0.55", capsize=1, lw=0.7)
    for x, ls in ((0.0, "-"), (0.3, "--"), (-0.3, "--")):
        ax.axvline(x, color=COLORS["theory"], lw=0.8, ls=ls)
    ax.set_yticks(ys, [f"a{r['alpha']:g} {r['reset']} T{r['T']} {r['semantics'][:4]}: "
                       f"{a['label']}" for r, a in items], fontsize=5.5)
    ax.set_xlabel("method - baseline (points)")
    ax.grid(False, axis="y")
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], marker="o", ls="none", color=COLORS["l4"], ms=3.5,
                              label="pooled: L4"),
                       Line2D([], [], marker="o", ls="none", color="#3a9e4f", ms=3.5,
                              label="pooled: other"),
                       Line2D([], [], marker="o", ls="none", color="0.55", mfc="white",
                              ms=3, label="test only")],
              loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=6.5,
              frameon=False)
    return fig


def config(mode: str, data_dir=None, name: str = "study_regime") -> dict:
    """The config of figure ``name`` in ``mode`` (else quick), with its input's sha256.

    Raises
    ------
    FileNotFoundError
        When the part has not been run (run :data:`NEEDS`).
    """
    part = PARTS[name]
    for m in (mode, "quick"):  # full falls back to the quick results, as conversion does
        path = Path(data_dir or STUDY_DIR) / f"{part}_{m}.json"
        if path.is_file():
            cfg = {**CONFIGS[m], "part": part, "data_dir": str(data_dir) if data_dir else None,
                   "inputs_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            extra = path.with_name(f"explore_{m}.json")
            if part == "accuracy" and extra.is_file():  # the exploratory threshold check
                cfg["explore_sha256"] = hashlib.sha256(extra.read_bytes()).hexdigest()
            return cfg
    raise FileNotFoundError(f"{path} is missing: run `{NEEDS} --part {part}` first")


def compute(cfg) -> dict:
    """The part's JSON document as a string array (figures draw from it)."""
    doc = load(cfg["part"], cfg["mode"], cfg.get("data_dir"))
    if "explore_sha256" in cfg:
        doc["explore"] = load("explore", cfg["mode"], cfg.get("data_dir"))
    return {"part": np.array(cfg["part"]), "doc": np.array(json.dumps(doc))}


_PLOTS = {"regime": "plot_regime", "fidelity": "plot_fidelity", "accuracy": "plot_bars",
          "confirm": "plot_bars", "holdout": "plot_holdout"}


def plot(d: dict):
    """The figure of the part held in ``d``."""
    return globals()[_PLOTS[str(d["part"])]](json.loads(str(d["doc"])))


def caption(d: dict) -> str:
    """Caption of the part's figure."""
    doc = json.loads(str(d["doc"]))
    cfg = doc.get("provenance", {}).get("config", {})
    return {
        "regime": "Fig. S1. Baseline conversion gap (ANN - SNN accuracy, points, 95% CI over "
                  f"{cfg.get('n_test', '?')} test images) against T per leak factor; threshold "
                  "scale selected on held-out training images (x: selected at the grid's edge); "
                  "dashed: the pre-registered 2-point rule.",
        "fidelity": "Fig. S2. First-layer fidelity on test images: rate MSE and dominance "
                    "error of every method against the ANN activation / threshold.",
        "accuracy": "Fig. S3. Test accuracy (95% CIs) at the pre-registered settings: "
                    "baseline, the paper's L4 and the best new method (chosen on training "
                    "images); dashed: the ANN; diamonds (exploratory, not pre-registered): "
                    "the baseline at the same threshold scale as the bar.",
        "confirm": "Fig. S4. Confirmatory stage: test accuracy (95% CIs) with every series' "
                   "threshold scale selected on 1000 training images (0.05 grid): baseline, "
                   "L4 and the best new method on those images; dashed: the ANN.",
        "holdout": "Fig. S5. Confirmatory comparisons with more images: each method minus "
                   "the baseline (points, 95% CI), each at its confirmatory threshold scale, "
                   "pooled over the 10,000 test images and the training images the power "
                   "rule asks for, which no choice of the study used but the network was "
                   "trained on (filled; black: L4), and on the test images alone "
                   "(open, grey); dashed: +-0.3 points, the effect of the power target.",
    }[str(d["part"])] + (" " + _quick_prefix(cfg).strip() if _quick_prefix(cfg) else "")


def summary(d: dict) -> str:
    """One sentence with the part's numbers."""
    doc = json.loads(str(d["doc"]))
    rows = doc.get("rows", [])
    part = str(d["part"])
    return _quick_prefix(doc.get("provenance", {}).get("config", {})) + _summary(part, rows)


def _quick_prefix(cfg: dict) -> str:
    return ("Quick mode (toy sizes: a pipeline check, not evidence). "
            if cfg.get("mode") == "quick" or cfg.get("n_test", 10**9) < 100 else "")


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def _summary(part: str, rows: list) -> str:
    if part == "regime":
        pts = [(r["alpha"], r["reset"], r["semantics"], p["T"], p["gap"]["mean"])
               for r in rows for p in r["per_T"]]
        big = [p for p in pts if p[4] >= 0.02]
        worst = max(pts, key=lambda p: p[4]) if pts else None
        return (f"{_n(len(rows), 'setting')} mapped; {len(big)} of {len(pts)} (setting, T) points "
                "have a gap of at least 2 points"
                + (f"; the largest is {100 * worst[4]:+.2f} points (alpha {worst[0]:g}, "
                   f"{worst[1]} reset, {worst[2]}, T = {worst[3]})." if worst else "."))
    if part == "fidelity":
        labels = list(dict.fromkeys(r["label"] for r in rows))
        mean = {lab: float(np.mean([r["mse"] for r in rows if r["label"] == lab]))
                for lab in labels}
        best = min(mean, key=mean.get) if mean else "-"
        n_set = len({(r["alpha"], r["reset"], r["steps"]) for r in rows})
        return (f"{len(labels)} methods over {n_set} (setting, T) cases; "
                f"the lowest mean first-layer rate MSE is {best}'s.")
    if part == "confirm":
        arms = [a for r in rows for a in r["arms"]]
        above = sum(a["test"]["difference"]["lo"] > 0 for a in arms)
        below = sum(a["test"]["difference"]["hi"] < 0 for a in arms)
        return (f"{_n(len(rows), 'setting')}, {len(arms)} method-baseline differences at thresholds "
                f"selected on training images: {above} with a 95% CI above zero, {below} "
                "below.")
    if part == "holdout":
        from l4theory.experiment import power_of as _power_of

        arms = [a["pooled"]["difference"] for r in rows for a in r["arms"]]
        above = sum(d["lo"] > 0 for d in arms)
        below = sum(d["hi"] < 0 for d in arms)
        powered = sum(_power_of(d) >= 0.8 for d in arms)
        return (f"{_n(len(rows), 'setting')}, {len(arms)} differences pooled over test images "
                f"and training images (seen in training): {above} with a 95% CI above zero, {below} below; "
                f"{powered} of {len(arms)} have 80% power for 0.3 points.")
    return f"{len(rows)} settings of the pre-registered first stage compared on the test set."
