"""Conversion accuracy, baseline vs adjustment (the paper's Figs. 6-8 on Fashion-MNIST).

The data are written by ``python -m validation conversion``
(``results/conversion/conversion_<mode>.json``, and ``conversion_<mode>_exact.json`` for the
exact-std variant); this module only reads and draws them, through the same
compute/plot/caption/cache protocol as Figs. 1-5 (``python -m figures conversion``).
The figure has one row per method present (the paper's L4, then the exact std) and two
panels per row (soft and hard reset): bars baseline and adjusted with 95% CIs over test
images, the paired difference printed above each pair, the ANN accuracy as a line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from validation.conversion import RESULTS_DIR as CONVERSION_DIR
from validation.conversion import result_stem, table_markdown

from .style import COLORS, figure, styled

__all__ = ["CONFIGS", "CONVERSION_DIR", "caption", "compute", "config", "load", "plot",
           "summary"]

NAME = "conversion"
TITLE = "Conversion accuracy: baseline vs adjusted first layer (Figs. 6-8)"
NEEDS = "python -m validation conversion"
CONFIGS = {"quick": {"version": 1, "mode": "quick"}, "full": {"version": 1, "mode": "full"}}
METHODS = ("l4", "exact")
LABELS = {"l4": "L4 adjusted", "exact": "exact-std adjusted"}
_ARMS = ("baseline", "adjusted", "difference")


def load(mode: str = "full", out_dir=None, method: str = "l4") -> dict:
    """The protocol document of ``mode`` and ``method`` (FileNotFoundError if not run)."""
    path = Path(out_dir or CONVERSION_DIR) / f"{result_stem(mode, method)}.json"
    return json.loads(path.read_text())


def config(mode: str, data_dir=None, name: str | None = None) -> dict:
    """The config of ``mode`` (falling back to quick results), with the inputs' sha256.

    Raises
    ------
    FileNotFoundError
        When the protocol has not been run (run :data:`NEEDS`).
    """
    folder = Path(data_dir or CONVERSION_DIR)
    for m in (mode, "quick"):
        files = [folder / f"{result_stem(m, k)}.json" for k in METHODS]
        if files[0].is_file():
            digest = hashlib.sha256(b"".join(f.read_bytes() for f in files if f.is_file()))
            return {**CONFIGS[m], "data_dir": str(data_dir) if data_dir else None,
                    "inputs_sha256": digest.hexdigest()}
    raise FileNotFoundError(f"no conversion results in {folder}: run `{NEEDS}` first")


def compute(cfg) -> dict:
    """Per-setting arrays of every method's document (``<method>_<field>``)."""
    out = {"methods": np.array([])}
    present = []
    for method in METHODS:
        try:
            doc = load(cfg["mode"], cfg.get("data_dir"), method)
        except FileNotFoundError:
            continue
        present.append(method)
        rows = doc["rows"]
        p = method + "_"
        out[p + "alpha"] = np.array([r["alpha"] for r in rows], dtype=float)
        out[p + "reset"] = np.array([r["reset"] for r in rows])
        for key in ("ann_accuracy", "gap", "recovered", "best_scale_baseline",
                    "best_scale_adjusted", "best_r_s"):
            out[p + key] = np.array([r[key] for r in rows], dtype=float)
        for arm in _ARMS:
            for stat in ("mean", "lo", "hi"):
                out[f"{p}{arm}_{stat}"] = np.array([r[arm][stat] for r in rows], dtype=float)
        out[p + "table"] = np.array(table_markdown(doc))
        out[p + "n_test"] = np.array(doc["config"]["n_test"])
        out[p + "steps"] = np.array(doc["config"]["steps"])
        out[p + "model"] = np.array(doc["provenance"]["model"])
    out["methods"] = np.array(present)
    out["mode"] = np.array(cfg["mode"])
    return out


@styled
def plot(d: dict):
    """Grouped bars with 95% CIs, a row per method; returns the Figure."""
    methods = [str(m) for m in d["methods"]]
    resets = [r for r in ("soft", "hard") if any(r in set(d[m + "_reset"]) for m in methods)]
    fig, axes = figure(nrows=len(methods), ncols=len(resets), width=3.6 * len(resets),
                       height=2.8 * len(methods), sharey=True)
    axes = np.atleast_2d(axes).reshape(len(methods), len(resets))
    lo_all, top = [], 0.0
    for row, method in zip(axes, methods, strict=True):
        p = method + "_"
        for ax, reset in zip(row, resets, strict=True):
            sel = np.flatnonzero(d[p + "reset"] == reset)
            xs = np.arange(sel.size)
            for k, (arm, label, color) in enumerate((("baseline", "baseline", COLORS["sim"]),
                                                     ("adjusted", LABELS[method], COLORS["l4"]))):
                m = 100 * d[f"{p}{arm}_mean"][sel]
                err = np.array([m - 100 * d[f"{p}{arm}_lo"][sel], 100 * d[f"{p}{arm}_hi"][sel] - m])
                ax.bar(xs + (k - 0.5) * 0.38, m, 0.36, yerr=err, color=color, label=label,
                       alpha=0.85 if k else 0.6)
                lo_all.append((m - err[0]).min())
            ann = 100 * float(np.mean(d[p + "ann_accuracy"][sel]))
            top = max(top, ann)
            ax.axhline(ann, color=COLORS["theory"], ls="--", lw=1, label=f"ANN ({ann:.1f}%)")
            hi = 100 * np.maximum(d[p + "baseline_hi"][sel], d[p + "adjusted_hi"][sel])
            top = max(top, float(hi.max()))
            for x, diff, h in zip(xs, 100 * d[p + "difference_mean"][sel], hi, strict=True):
                ax.annotate(f"{diff:+.1f}", (x, h), ha="center", va="bottom", fontsize=6.5,
                            xytext=(0, 1), textcoords="offset points")
            ax.set_xticks(xs, [f"{a:g}" for a in d[p + "alpha"][sel]])
            ax.set_xlabel("leak factor alpha per step (1 = no leak)")
            ax.set_title(f"{reset} reset")
        row[0].set_ylabel("test accuracy (%)")
        row[-1].legend(loc="lower left", frameon=True, framealpha=0.95, facecolor="white",
                       edgecolor="none")
    axes[0, 0].set_ylim(max(0.0, min(lo_all) - 3), min(101.0, top + 2))
    return fig


def caption(d: dict) -> str:
    """Figure caption with the run's sizes."""
    p = str(d["methods"][0]) + "_"
    return (f"Fig. C. Converted `{d[p + 'model']}` on Fashion-MNIST ({d['mode']} protocol): "
            f"T = {int(d[p + 'steps'])}, test accuracy on {int(d[p + 'n_test'])} images with "
            "95% CIs over images, baseline vs adjusted first layer (thresholds and r_s selected "
            "on held-out training images); numbers above the bars are the paired differences "
            "in points; dashed: the ANN.")


def summary(d: dict) -> str:
    """One sentence per method with the numbers."""
    parts = []
    for method in (str(m) for m in d["methods"]):
        p = method + "_"
        diff = d[p + "difference_mean"]
        k = int(np.argmax(diff))
        parts.append(
            f"{LABELS[method]}: largest paired gain {100 * diff[k]:+.2f} points (alpha "
            f"{d[p + 'alpha'][k]:g}, {d[p + 'reset'][k]} reset); "
            f"{int((d[p + 'difference_lo'] > 0).sum())} of {diff.size} settings have a 95% CI "
            f"of the difference above zero, {int((d[p + 'difference_hi'] < 0).sum())} below; "
            f"mean difference {100 * diff.mean():+.2f} points; settings with a positive gap: "
            f"{int((d[p + 'gap'] > 0).sum())}.")
    return " ".join(parts) + (" The paper reports 1.13 of 3.27 points recovered at no leak "
                              "with soft reset (CIFAR-10, VGG-5).")
