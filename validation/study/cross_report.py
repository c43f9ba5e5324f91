"""The cross-fitted study's pre-registered analysis, tables and figures.

From the per-block results of :func:`validation.study.cross.run_block` (replayed from the
shipped bits), :func:`analyse` computes, for every (setting, pipeline, selection size,
method), the per-network paired difference to the baseline on the network's never-seen
images, the random-effects pooled estimate with the Hartung-Knapp interval
(:func:`l4theory.experiment.meta.random_effects`), the equivalence test with a
+/-0.3-point margin, the reading rule, the recovered fraction (pooled difference and gap
side by side, and Fieller's ratio over the pooled images) and the power for 0.3 points and
for the paper's 35% of the gap. ``docs/study.md`` ("Outcome and analysis") is the plan.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from l4theory.experiment.stats import mean_ci, recovered_fraction

__all__ = ["MARGIN", "PAPER_FRACTION", "analyse", "cross_markdown", "write_outputs"]

#: Equivalence margin (fraction: 0.3 points).
MARGIN = 0.003
#: The paper's recovered fraction (1.13 of 3.27 points).
PAPER_FRACTION = 0.35
_METHODS = ("l4", "ratematch")
_SIZES = ("small", "full")


def _akey(arm: dict) -> str:
    return json.dumps(arm, sort_keys=True)


def _key(choice: dict, pipeline: str) -> tuple:
    return (pipeline, _akey(choice["arm"]), choice["scale"])


def _pooled(diffs: list[np.ndarray], gaps: list[np.ndarray]) -> dict:
    """Pooled difference (HK), equivalence, verdict, gap, recovered fraction, power."""
    from l4theory.experiment import meta

    k = len(diffs)
    out: dict = {"k": k}
    if k < 2:
        return out
    re95, re90 = _pool(diffs, 0.95), _pool(diffs, 0.90)
    gap = _pool(gaps, 0.95)
    eq = meta.equivalence(re95["mean"], re95["se"], re95["df"], MARGIN)
    verdict = meta.verdict(re95["lo"], re95["hi"], re90["lo"], re90["hi"], MARGIN)
    d_all, g_all = np.concatenate(diffs), np.concatenate(gaps)
    # Fieller over the pooled images: base = 0, arm = d, ann = g (a ratio of paired means)
    frac = recovered_fraction(g_all, np.zeros_like(d_all), d_all)
    se = re95["se"]
    out.update({
        "difference": {kk: re95[kk] for kk in ("mean", "se", "lo", "hi", "df", "tau2",
                                               "i2")},
        "difference_90": {"lo": re90["lo"], "hi": re90["hi"]},
        "gap": {kk: gap[kk] for kk in ("mean", "se", "lo", "hi")},
        "equivalence": eq,
        "verdict": verdict,
        "recovered": frac,
        "power_0.3pt": meta.power_t(MARGIN, se, re95["df"]) if se > 0 else None,
        "power_paper_fraction": (meta.power_t(PAPER_FRACTION * gap["mean"], se, re95["df"])
                                 if se > 0 and gap["mean"] > 0 else None),
        "images": int(d_all.size),
        "pool": re95["pool"],
    })
    return out


def _pool(diffs: list[np.ndarray], level: float) -> dict:
    """Random-effects pool (DerSimonian-Laird, Hartung-Knapp) of per-network differences.

    A network whose paired differences are all zero (its method chose the baseline's own
    configuration) has a zero within-network variance, which leaves the DerSimonian-Laird
    weights undefined; the pool is then the unweighted mean of the network effects with
    the one-sample t interval on ``k - 1`` degrees of freedom (the Hartung-Knapp interval
    with equal weights; the networks have equal numbers of images by design).
    """
    from l4theory.experiment import meta

    effects = np.array([float(np.mean(d)) for d in diffs])
    variances = np.array([float(np.var(d, ddof=1)) / len(d) for d in diffs])
    if (variances > 0).all():
        return {**meta.pooled_paired(diffs, level=level), "pool": "random effects (HK)"}
    return {**meta.random_effects(effects, np.zeros_like(effects), level=level),
            "pool": "equal weights (t)"}


def _contrast(blocks: list[dict], setting: str, pick) -> tuple[list, list, list]:
    """Per-network rows and arrays of one contrast; ``pick(block) -> (a_key, b_key)``."""
    rows, diffs, gaps = [], [], []
    for b in blocks:
        if b["setting"] != setting:
            continue
        keys = pick(b)
        if keys is None:
            continue
        ka, kb = keys
        a = b["correct"][ka].astype(np.float64)
        base = b["correct"][kb].astype(np.float64)
        ann = b["ann"].astype(np.float64)
        d, g = a - base, ann - base
        ci = mean_ci(d)
        rows.append({"network": Path(b["model"]).name, "n": int(d.size),
                     "arm_acc": float(a.mean()), "base_acc": float(base.mean()),
                     "ann_acc": float(ann.mean()), "difference": ci,
                     "same_choice": ka == kb})
        diffs.append(d)
        gaps.append(g)
    return rows, diffs, gaps


def analyse(blocks: list[dict], cfg: dict) -> dict:
    """Every pre-registered comparison of the cross-fitted study.

    Parameters
    ----------
    blocks : list of dict
        :func:`validation.study.cross.run_block` results.
    cfg : dict
        The study's configuration.

    Returns
    -------
    dict
        ``primary`` / ``comparisons`` (list of rows: setting, pipeline, size, method,
        contrast, per-network rows, pooled statistics), ``choices`` (per block),
        ``n_comparisons``.
    """
    comps = []
    for s in cfg["settings"]:
        name = s["name"]
        for p in s["pipelines"]:
            for size in _SIZES:
                for m in _METHODS:
                    def pick(b, p=p, size=size, m=m):
                        if p not in b["choices"]:
                            return None
                        ch = b["choices"][p][size]
                        return _key(ch[m], p), _key(ch["none"], p)
                    comps.append(_row(blocks, name, p, size, m, "vs baseline, same size",
                                      pick))
                if size == "small":
                    for m in _METHODS:
                        def pick(b, p=p, m=m):
                            if p not in b["choices"]:
                                return None
                            return (_key(b["choices"][p]["small"][m], p),
                                    _key(b["choices"][p]["full"]["none"], p))
                        comps.append(_row(blocks, name, p, "small", m,
                                          "vs baseline chosen on 1000", pick))
        if set(s["pipelines"]) >= {"paper", "project"}:
            def pick(b):
                if not {"paper", "project"} <= set(b["choices"]):
                    return None
                return (_key(b["choices"]["paper"]["full"]["none"], "paper"),
                        _key(b["choices"]["project"]["full"]["none"], "project"))
            comps.append(_row(blocks, name, "paper vs project", "full", "none",
                              "paper's baseline vs project's baseline", pick))
    choices = [{"network": Path(b["model"]).name, "setting": b["setting"],
                "choices": b["choices"]} for b in blocks]
    finite = [r for b in blocks for r in _finite_l4(b, cfg)]
    primary = [c for c in comps if c["setting"] == cfg["settings"][0]["name"]
               and c["pipeline"] == "paper" and c["method"] == "l4"
               and c["contrast"] == "vs baseline, same size"]
    return {"format": "l4theory.study.cross", "version": 1, "config": cfg,
            "primary": primary, "comparisons": comps, "choices": choices,
            "n_comparisons": len(comps), "margin": MARGIN,
            "paper_fraction": PAPER_FRACTION, "finite_l4": finite,
            "optimism": _optimism(blocks, comps)}


def _finite_l4(block: dict, cfg: dict) -> list[dict]:
    """L4's best choice without ``r_s = inf`` on the selection images (exploratory).

    Added after the first blocks had finished, not pre-registered: the paper's sweep has
    no ``r_s = inf``, so its L4 network always adjusts. One row per pipeline and size, the
    baseline's best next to it; selection accuracies only (the records hold no evaluation
    run of these choices).
    """
    from .cross import select_block

    rows = []
    for key, table in (block.get("selection") or {}).items():
        pipeline, size = key.split("/")
        acc_by = {}
        for k, v in table.items():
            ak, scale = k.rsplit("|", 1)
            acc_by[(ak, float(scale))] = v
        best = select_block(acc_by, cfg, pipeline, with_inf=False)
        rows.append({"network": Path(block["model"]).name, "setting": block["setting"],
                     "pipeline": pipeline, "size": size, "baseline": best["none"],
                     "l4": best["l4"], "difference": best["l4"]["acc"] - best["none"]["acc"]})
    return rows


def _optimism(blocks: list[dict], comps: list[dict]) -> list[dict]:
    """How far each method's lead on its selection images overstates it on new images.

    Exploratory, added after S1 and S2 had finished (not pre-registered). Per network, the
    chosen method's selection accuracy minus the baseline's (same pipeline and size, the
    images they were chosen on) and the same difference on the never-seen evaluation
    images (the "vs baseline, same size" comparison); per (setting, pipeline, size,
    method) the mean of each over the networks and of their difference (the optimism)
    with the t interval over networks.
    """
    choices = {(Path(b["model"]).name, b["setting"]): b["choices"] for b in blocks}
    rows = []
    for c in comps:
        if c["contrast"] != "vs baseline, same size" or len(c["networks"]) < 2:
            continue
        p, size, m = c["pipeline"], c["size"], c["method"]
        sel = np.array([ch[m]["acc"] - ch["none"]["acc"] for ch in
                        (choices[(r["network"], c["setting"])][p][size] for r in c["networks"])])
        new = np.array([r["difference"]["mean"] for r in c["networks"]])
        opt = mean_ci(sel - new)
        rows.append({"setting": c["setting"], "pipeline": p, "size": size, "method": m,
                     "k": int(sel.size), "selection": float(sel.mean()),
                     "new": float(new.mean()),
                     "optimism": {k: opt[k] for k in ("mean", "lo", "hi")}})
    return rows


def _row(blocks, setting, pipeline, size, method, contrast, pick) -> dict:
    rows, diffs, gaps = _contrast(blocks, setting, pick)
    return {"setting": setting, "pipeline": pipeline, "size": size, "method": method,
            "contrast": contrast, "networks": rows,
            "pooled": _pooled(diffs, gaps)}


# --------------------------------------------------------------------------- output


def _pts(x, signed=True) -> str:
    if x is None:
        return "-"
    x = 0.0 if abs(x) < 5e-9 else x  # no "-0.00" from rounding error
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def _frac(r: dict) -> str:
    if not r or r.get("mean") is None or r["mean"] != r["mean"]:
        return "-"
    if not r.get("bounded"):
        return f"{100 * r['mean']:.0f}% (unbounded)"
    return f"{100 * r['mean']:.0f}% [{100 * r['lo']:.0f}, {100 * r['hi']:.0f}]"


def _mark(pool: dict) -> str:
    """`` (t)`` when the pool used equal weights (a network with zero variance)."""
    return " (t)" if pool.get("pool", "").startswith("equal") else ""


def _choice(x: dict, l4: bool = False) -> str:
    """``scale, r_s (selection accuracy %)`` of one choice."""
    r = x["arm"].get("r_s")
    rs = f", r_s={r:g}" if r is not None else (", r_s=inf" if l4 else "")
    return f"{x['scale']:g}{rs} ({100 * x['acc']:.1f})"


def _exploratory(title: str, note: str, columns: list[str], rows: list[list]) -> list[str]:
    """Lines of one exploratory Markdown table: heading, note, header, rows."""
    return (["", f"### Exploratory: {title}", "", note, "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            + ["| " + " | ".join(str(x) for x in r) + " |" for r in rows])


def cross_markdown(doc: dict) -> str:
    """Markdown tables of :func:`analyse`'s output."""
    size_n = {"small": doc["config"]["n_select_small"], "full": doc["config"]["n_select"]}
    if not any(c["networks"] for c in doc["comparisons"]):
        missing = doc.get("missing_blocks") or []
        return ("### Cross-fitted study\n\nNo block has finished yet; "
                f"{len(missing)} blocks are not (fully) recorded: {', '.join(missing)}.")
    lines = ["### Cross-fitted study: pooled comparisons (points; Hartung-Knapp 95% CI)",
             "",
             "| setting | pipeline | chosen on | method | contrast | k | images | "
             "baseline acc | method acc | difference [95% CI] | gap (ANN - baseline) | "
             "recovered (Fieller) | TOST p (+/-0.3) | verdict | power 0.3 pt / 35% |",
             "|" + "---|" * 15]
    for c in doc["comparisons"]:
        pool = c["pooled"]
        nets = c["networks"]
        if not nets:  # a setting with no finished block yet
            continue
        base = np.mean([r["base_acc"] for r in nets]) if nets else float("nan")
        arm = np.mean([r["arm_acc"] for r in nets]) if nets else float("nan")
        if pool.get("k", 0) >= 2:
            d = pool["difference"]
            diff = f"{_pts(d['mean'])} [{_pts(d['lo'])}, {_pts(d['hi'])}]"
            g = pool["gap"]
            gap = f"{_pts(g['mean'])} [{_pts(g['lo'])}, {_pts(g['hi'])}]"
            v = pool["verdict"]
            verdict = v["verdict"] + (" (within margin)" if v["within_margin"]
                                      and v["verdict"] in ("better", "worse") else "")
            pw = pool["power_0.3pt"]
            pf = pool["power_paper_fraction"]
            power = (f"{pw:.2f}" if pw is not None else "-") + " / " + (
                f"{pf:.2f}" if pf is not None else "-")
            tost = f"{pool['equivalence']['p']:.3f}"
            frac, n_img = _frac(pool["recovered"]), pool["images"]
        else:
            diff = gap = verdict = power = tost = frac = "-"
            n_img = sum(r["n"] for r in nets)
        lines.append(f"| {c['setting']} | {c['pipeline']} | {size_n[c['size']]} | "
                     f"{c['method']} | {c['contrast']} | {pool.get('k', 0)}{_mark(pool)} | "
                     f"{n_img} | "
                     f"{100 * base:.2f} | {100 * arm:.2f} | {diff} | {gap} | {frac} | "
                     f"{tost} | {verdict} | {power} |")
    lines += ["", f"{doc['n_comparisons']} comparisons, no correction for multiplicity; "
              "the primary ones are the setting paper-rathi, pipeline paper, L4 vs baseline "
              "at both sizes. k (t): a network's method chose the baseline's own "
              "configuration (zero variance), so the pool is the unweighted mean with the "
              "one-sample t interval.", ""]
    lines += ["### Per network (points; t 95% CI over images)", "",
              "| setting | pipeline | chosen on | method | contrast | network | images | "
              "baseline | method | ANN | difference [95% CI] | same choice |",
              "|" + "---|" * 12]
    for c in doc["comparisons"]:
        for r in c["networks"]:
            d = r["difference"]
            lines.append(f"| {c['setting']} | {c['pipeline']} | {size_n[c['size']]} | "
                         f"{c['method']} | {c['contrast']} | {r['network']} | {r['n']} | "
                         f"{100 * r['base_acc']:.2f} | {100 * r['arm_acc']:.2f} | "
                         f"{100 * r['ann_acc']:.2f} | {_pts(d['mean'])} [{_pts(d['lo'])}, "
                         f"{_pts(d['hi'])}] | {'yes' if r['same_choice'] else 'no'} |")
    lines += ["", "### Choices (scale; L4's r_s)", "",
              "| network | setting | pipeline | chosen on | baseline | L4 | rate matching |",
              "|---|---|---|---|---|---|---|"]
    for ch in doc["choices"]:
        for p, by_size in ch["choices"].items():
            for size, c in by_size.items():
                lines.append(f"| {ch['network']} | {ch['setting']} | {p} | {size_n[size]} | "
                             f"{_choice(c['none'])} | {_choice(c['l4'], l4=True)} | "
                             f"{_choice(c['ratematch'])} |")
    if doc.get("finite_l4"):
        lines += _exploratory(
            "L4 without r_s = inf, on the selection images",
            "Added after the first blocks had finished (not pre-registered). The paper's "
            "sweep has no r_s = inf, so its L4 network always adjusts: here L4's best "
            "(r_s, scale) among finite r_s against the baseline's best, on the selection "
            "images (no evaluation run).",
            ["network", "setting", "pipeline", "chosen on", "baseline", "L4, finite r_s",
             "difference (points)"],
            [[r["network"], r["setting"], r["pipeline"], size_n[r["size"]],
              _choice(r["baseline"]), _choice(r["l4"], l4=True), _pts(r["difference"])]
             for r in doc["finite_l4"]])
    if doc.get("optimism"):
        lines += _exploratory(
            "the lead on the selection images and on new images",
            "Added after S1 and S2 had finished (not pre-registered). Each method's accuracy "
            "minus the baseline's at their choices, on the images they were chosen on and on "
            "the never-seen images, averaged over the networks; the optimism is the first "
            "minus the second (t 95% CI over networks).",
            ["setting", "pipeline", "chosen on", "method", "k", "lead on selection images",
             "lead on never-seen images", "optimism [95% CI]"],
            [[r["setting"], r["pipeline"], size_n[r["size"]], r["method"], r["k"],
              _pts(r["selection"]), _pts(r["new"]),
              f"{_pts(r['optimism']['mean'])} [{_pts(r['optimism']['lo'])}, "
              f"{_pts(r['optimism']['hi'])}]"] for r in doc["optimism"]])
    if doc.get("missing_blocks"):
        lines += ["", "Blocks not (fully) recorded yet: " + ", ".join(doc["missing_blocks"])]
    return "\n".join(lines)


def write_outputs(doc: dict, out_dir: Path, mode: str, records_dir=None) -> None:
    """Write ``cross_<mode>.json``, ``cross_<mode>.md`` and the figures (matplotlib)."""
    from l4theory.experiment.cache import json_default, write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / f"cross_{mode}.json", json.loads(json.dumps(doc,
                                                                     default=json_default)))
    (out_dir / f"cross_{mode}.md").write_text(cross_markdown(doc) + "\n")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    from .cross_figures import fig6, forest

    for s in doc["config"]["settings"]:
        rows = [c for c in doc["comparisons"] if c["setting"] == s["name"]]
        if any(r["networks"] for r in rows):
            forest(rows, out_dir / f"cross_forest_{s['name']}_{mode}.png", title=s["name"])
    if doc["comparisons"]:
        fig6(doc, out_dir / f"cross_fig6_{mode}.png")
