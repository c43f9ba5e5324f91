"""Figures of the cross-fitted study: a forest plot per setting and the paper's Fig. 6 layout.

Both read only the analysis of :func:`validation.study.cross_report.analyse` (rebuilt
from the shipped bits); matplotlib is the ``plot`` extra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["fig6", "forest"]

_SIZE = {"small": "160", "full": "1000"}


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def forest(rows: list[dict], path: Path | None = None, title: str = ""):
    """Forest plot of one setting: each network's difference and the pooled estimate.

    Parameters
    ----------
    rows : list of dict
        The setting's comparisons (``analyse(...)["comparisons"]``); the
        "vs baseline, same size" ones are drawn, one block per pipeline x size x method.
    path : path-like, optional
        PNG to write (the figure is then closed); None keeps it open.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["contrast"] == "vs baseline, same size" and r["networks"]]
    n_lines = sum(len(r["networks"]) + 2 for r in rows)
    fig, ax = plt.subplots(figsize=(7.0, 0.22 * n_lines + 1.2))
    y, ticks, labels = 0.0, [], []
    for r in rows:
        head = f"{r['pipeline']} / {r['method']} / chosen on {_SIZE[r['size']]}"
        for net in r["networks"]:
            d = net["difference"]
            ax.errorbar(100 * d["mean"], -y, xerr=[[100 * (d["mean"] - d["lo"])],
                                                    [100 * (d["hi"] - d["mean"])]],
                        fmt="o", ms=3, color="0.35", lw=1)
            ticks.append(-y)
            labels.append(f"{head}: {net['network'].replace('fmnist_vgg5_', '')}")
            y += 1
        pool = r["pooled"]
        if pool.get("k", 0) >= 2:
            d = pool["difference"]
            ax.fill([100 * d["lo"], 100 * d["mean"], 100 * d["hi"], 100 * d["mean"]],
                    [-y, -y + 0.3, -y, -y - 0.3], color="C3")
            ticks.append(-y)
            labels.append(f"{head}: pooled ({pool['verdict']['verdict']})")
        y += 2
    ax.axvline(0, color="k", lw=0.8)
    for m in (-0.3, 0.3):
        ax.axvline(m, color="C0", lw=0.8, ls="--")
    ax.set_yticks(ticks, labels, fontsize=6)
    ax.set_xlabel("method minus baseline (points); dashed: the +/-0.3 margin")
    ax.set_title(f"{title}: each network's never-seen images", fontsize=9)
    fig.tight_layout()
    if path is not None:
        _save(fig, Path(path))
    return fig


def fig6(doc: dict, path: Path | None = None):
    """The paper's Fig. 6 layout: grouped bars per setting, baseline / L4 / rate matching.

    Each group is one (setting, pipeline, selection size); the baseline bar is the mean
    accuracy over networks (t interval over networks), the method bars are the baseline
    plus the pooled difference with its Hartung-Knapp interval.

    Parameters
    ----------
    doc : dict
        :func:`validation.study.cross_report.analyse` output.
    path : path-like, optional
        PNG to write (the figure is then closed); None keeps it open.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no comparison pools two or more networks.
    """
    import matplotlib.pyplot as plt
    from scipy import stats

    groups = {}
    for c in doc["comparisons"]:
        if c["contrast"] != "vs baseline, same size" or c["pooled"].get("k", 0) < 2:
            continue
        groups.setdefault((c["setting"], c["pipeline"], c["size"]), {})[c["method"]] = c
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(groups)), 3.6))
    width = 0.26
    names = []
    for i, (g, by_m) in enumerate(groups.items()):
        any_c = next(iter(by_m.values()))
        base = np.array([r["base_acc"] for r in any_c["networks"]])
        half = (stats.t.ppf(0.975, base.size - 1) * base.std(ddof=1) / np.sqrt(base.size)
                if base.size > 1 else 0.0)
        bars = [("baseline", 100 * base.mean(), 100 * half, 100 * half)]
        for m in ("l4", "ratematch"):
            if m in by_m:
                d = by_m[m]["pooled"]["difference"]
                mid = base.mean() + d["mean"]
                bars.append((m, 100 * mid, 100 * (d["mean"] - d["lo"]),
                             100 * (d["hi"] - d["mean"])))
        for j, (m, h, lo, hi) in enumerate(bars):
            ax.bar(i + (j - 1) * width, h, width, yerr=[[lo], [hi]], capsize=2,
                   color={"baseline": "0.6", "l4": "C3", "ratematch": "C0"}[m],
                   label=m if i == 0 else None)
        ann = 100 * np.mean([r["ann_acc"] for r in any_c["networks"]])
        ax.hlines(ann, i - 1.6 * width, i + 1.6 * width, colors="k", linestyles="--", lw=1,
                  label="ANN" if i == 0 else None)
        names.append(f"{g[0]}\n{g[1]}, {_SIZE[g[2]]}")
    ax.set_xticks(range(len(groups)), names, fontsize=6)
    lo = min(p.get_height() for p in ax.patches)
    hi = max([p.get_height() for p in ax.patches] + [ln.get_segments()[0][0][1] for ln in
                                                      ax.collections if hasattr(ln, "get_segments")])
    ax.set_ylim(max(0, lo - 3), min(100, hi + 2))
    ax.set_ylabel("SNN accuracy (%)")
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.set_title("Pooled over the networks (never-seen images); bars: baseline, L4, "
                 "rate matching; dashed: the ANN", fontsize=8)
    fig.tight_layout()
    if path is not None:
        _save(fig, Path(path))
    return fig
