"""Conversion accuracy, baseline vs L4 adjustment (the paper's Figs. 6-8 on Fashion-MNIST).

Data come from ``python -m validation conversion`` (``results/conversion/conversion_<mode>.json``).
:func:`render` draws the grouped bar figure (two panels: soft and hard reset; five leak
factors each; bars baseline and L4 with 95% CIs; the ANN accuracy as a line) and
:func:`section` returns a Markdown section for ``results/REPORT.md``
(``figures.report.write_report(extra_sections=[section()])``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .paths import FIGURES_DIR, RESULTS_DIR
from .style import COLORS, figure, save, styled

__all__ = ["CONVERSION_DIR", "load", "plot", "render", "section"]

CONVERSION_DIR = RESULTS_DIR / "conversion"
NAME = "fig_conversion"


def load(mode: str = "full", out_dir=None, method: str = "l4") -> dict:
    """The protocol document of ``mode`` and ``method`` (FileNotFoundError if not run)."""
    from validation.conversion import result_stem

    path = Path(out_dir or CONVERSION_DIR) / f"{result_stem(mode, method)}.json"
    return json.loads(path.read_text())


def _method(doc: dict) -> str:
    return doc["config"].get("method", "l4")


@styled
def plot(doc: dict):
    """Grouped bars with 95% CIs; returns the Figure."""
    rows = doc["rows"]
    adjusted_label = "L4 adjusted" if _method(doc) == "l4" else "exact-std adjusted"
    resets = [r for r in ("soft", "hard") if any(x["reset"] == r for x in rows)]
    fig, axes = figure(ncols=len(resets), width=3.6 * len(resets), height=2.8, sharey=True)
    axes = np.atleast_1d(axes)
    lo_all = []
    for ax, reset in zip(axes, resets, strict=True):
        sel = [r for r in rows if r["reset"] == reset]
        xs = np.arange(len(sel))
        for k, (key, label, color) in enumerate((("baseline", "baseline", COLORS["sim"]),
                                                 ("adjusted", adjusted_label, COLORS["l4"]))):
            m = np.array([100 * r[key]["mean"] for r in sel])
            err = np.array([[100 * (r[key]["mean"] - r[key]["lo"]) for r in sel],
                            [100 * (r[key]["hi"] - r[key]["mean"]) for r in sel]])
            ax.bar(xs + (k - 0.5) * 0.38, m, 0.36, yerr=err, color=color, label=label,
                   alpha=0.85 if k else 0.6)
            lo_all.append((m - err[0]).min())
        ann = np.mean([100 * r["ann_accuracy"] for r in sel])
        ax.axhline(ann, color=COLORS["theory"], ls="--", lw=1, label=f"ANN ({ann:.1f}%)")
        for x, r in zip(xs, sel, strict=True):
            d = 100 * r["difference"]["mean"]
            ax.annotate(f"{d:+.1f}", (x, 100 * max(r["baseline"]["hi"], r["adjusted"]["hi"])),
                        ha="center", va="bottom", fontsize=6.5, xytext=(0, 1),
                        textcoords="offset points")
        ax.set_xticks(xs, [f"{r['alpha']:g}" for r in sel])
        ax.set_xlabel("leak factor alpha per step (1 = no leak)")
        ax.set_title(f"{reset} reset")
    axes[0].set_ylabel("test accuracy (%)")
    top = max(100 * r["ann_accuracy"] for r in rows)
    axes[0].set_ylim(max(0.0, min(lo_all) - 3), min(100.0, top + 3))
    axes[-1].legend(loc="lower left", frameon=True, framealpha=0.95, facecolor="white", edgecolor="none")
    return fig


def render(doc: dict, out_dir=None) -> list[Path]:
    """Write ``fig_conversion_<mode>.png/.pdf`` into ``out_dir`` (default results/figures)."""
    out = Path(out_dir) if out_dir is not None else FIGURES_DIR
    from validation.conversion import result_stem

    return save(plot(doc), out, NAME + result_stem(doc["mode"], _method(doc))[len("conversion"):])


def section(mode: str = "full", *, out_dir=None, report_dir=None, fig_dir=None) -> str:
    """Markdown section for the report: table, figure, gap recovered (computed numbers only).

    ``out_dir``: folder of the protocol results (default results/conversion);
    ``report_dir``: folder of the report (figure links are relative to it); ``fig_dir``:
    where the figure is written (default results/figures). Falls back to the quick
    results when the full ones are missing; returns a one-line note when neither exists.
    """
    from validation.conversion import table_markdown

    for m in (mode, "quick"):
        try:
            doc = load(m, out_dir)
            break
        except FileNotFoundError:
            continue
    else:
        return "## Conversion (Figs. 6-8)\n\nNot run yet: `python -m validation conversion`.\n"
    figs = render(doc, fig_dir)
    rel = os.path.relpath(figs[0], Path(report_dir)) if report_dir else str(figs[0])
    rows = doc["rows"]
    gaps = [r for r in rows if r["gap"] > 0]
    best = max(rows, key=lambda r: r["difference"]["mean"])
    lines = [f"## Conversion: baseline vs L4 adjustment ({doc['mode']} protocol)", "",
             table_markdown(doc), "",
             f"![conversion]({rel})", "",
             f"The largest paired gain is {100 * best['difference']['mean']:+.2f} points "
             f"(alpha {best['alpha']:g}, {best['reset']} reset). "
             f"{sum(r['difference']['lo'] > 0 for r in rows)} of {len(rows)} settings have a "
             f"95% CI of the difference above zero, "
             f"{sum(r['difference']['hi'] < 0 for r in rows)} below zero. "
             f"Settings with a positive conversion gap: {len(gaps)}.",
             "The paper reports 1.13 of 3.27 points recovered at no leak with soft reset "
             "(CIFAR-10, VGG-5)."]
    try:
        exact = load(doc["mode"], out_dir, method="exact")
    except FileNotFoundError:
        exact = None
    if exact is not None:
        efig = render(exact, fig_dir)[0]
        erel = os.path.relpath(efig, Path(report_dir)) if report_dir else str(efig)
        erows = exact["rows"]
        lines += ["", "### Beyond the paper: the exact input-dependent std in Eq. 8", "",
                  table_markdown(exact), "", f"![conversion, exact std]({erel})", "",
                  f"With the exact std instead of the L4 norm, "
                  f"{sum(r['difference']['lo'] > 0 for r in erows)} of {len(erows)} settings have a "
                  f"95% CI of the difference above zero, "
                  f"{sum(r['difference']['hi'] < 0 for r in erows)} below zero; mean paired "
                  f"difference over the settings {100 * np.mean([r['difference']['mean'] for r in erows]):+.2f}"
                  f" points (L4: {100 * np.mean([r['difference']['mean'] for r in rows]):+.2f})."]
    return "\n".join(lines) + "\n"
