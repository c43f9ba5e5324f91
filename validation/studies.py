"""Validation studies: theory (:mod:`l4theory.theory`) against the simulators.

Each study reads ``configs/<name>.toml`` (a ``[quick]`` or ``[full]`` size), runs its grid
of cases and returns rows ``case, quantity, theory, mc, se, z, df, kind``. ``kind`` is
``"check"`` (a statistical test of an exact formula, pass/fail) or ``"report"`` (an
approximate formula measured against simulation: no pass/fail, the error is the result).
:func:`run_studies` applies the Bonferroni rule of :mod:`validation.stats` and writes
``results/validation/<study>/`` (``rows.json``, ``data.npz``, ``report.md``,
``provenance.json``) and ``results/validation/summary.md``.
"""

from __future__ import annotations

import json
import math
import os
import time
import tomllib
from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from l4theory import theory as th
from l4theory.theory import rates as thr

from . import simulators as sim
from .paths import CONFIG_DIR, REPO_ROOT, RESULTS_DIR
from .stats import FAMILY_ALPHA, batch_cumulants, critical_z, mean_se

__all__ = ["STUDIES", "load_config", "quick_summary", "run_studies"]


def load_config(name: str, size: str) -> dict:
    """Read ``configs/<name>.toml`` and merge its ``[size]`` table into the top level."""
    if size not in ("quick", "full"):
        raise ValueError(f"size must be 'quick' or 'full', got {size!r}")
    path = CONFIG_DIR / f"{name}.toml"
    with path.open("rb") as fh:
        cfg = tomllib.load(fh)
    merged = {k: v for k, v in cfg.items() if k not in ("quick", "full")}
    merged.update(cfg[size])
    merged["size"] = size
    return merged


def w1_inputs(n_in=100, seed=12345):
    """The benchmark neuron: ``rates ~ U(0, 1)``, ``weights ~ N(0, 1)/sqrt(n_in)`` (fixed seed)."""
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.0, 1.0, n_in)
    weights = rng.standard_normal(n_in) / math.sqrt(n_in)
    return rates, weights


def _row(case, quantity, theory, mc=np.nan, se=np.nan, df=np.inf, kind="check", note=""):
    theory, mc, se = float(theory), float(mc), float(se)
    if se > 0:
        z = (mc - theory) / se
    elif se == 0 and np.isfinite(mc):
        z = 0.0 if math.isclose(mc, theory, rel_tol=1e-9, abs_tol=1e-12) else math.inf
    else:
        z = np.nan
    return {"case": case, "quantity": quantity, "theory": theory, "mc": mc, "se": se,
            "z": float(z), "df": float(df), "kind": kind, "note": note}


def _blocks(n_batches, batch_size, fn, desc):
    out = []
    for b in tqdm(range(n_batches), desc=desc, leave=False, disable=None):
        out.append(fn(b * batch_size, batch_size))
    return np.stack(out)


# ------------------------------------------------------------------------------- studies
def study_moments(cfg):
    """Cumulants 1-4 of the continuous free membrane over time (exact sampler)."""
    rows, data = [], {}
    nb, bs = cfg["n_batches"], cfg["batch_size"]
    for ci, case in enumerate(cfg["cases"]):
        rates, w = (w1_inputs() if case.get("inputs") == "w1"
                    else (np.array(case["rates"]), np.array(case["weights"])))
        tau, times = float(case["tau"]), np.array(case["times"], float)
        samples = _blocks(nb, bs, lambda t0, n, r=rates, w=w, tau=tau, times=times, ci=ci:
                          sim.free_membrane(r, w, tau, times, n, cfg["seed"] + ci, trial0=t0),
                          case["name"][:30])
        est, se = batch_cumulants(samples)  # (4, n_times)
        data[f"case{ci}_cumulants"] = est
        data[f"case{ci}_se"] = se
        for n in cfg["orders"]:
            theo = th.poisson_cumulant(n, rates, w, tau, times)
            for k, t in enumerate(times):
                rows.append(_row(case["name"], f"kappa_{n}(t={t:g})", theo[k], est[n - 1, k],
                                 se[n - 1, k], df=nb - 1))
    return rows, data


def study_distribution(cfg):
    """Exact cdf/sf/atom of V(t) (ShotNoise) against empirical frequencies."""
    rows, data = [], {}
    n = cfg["n_trials"]
    for ci, case in enumerate(cfg["cases"]):
        rates, w = np.array(case["rates"]), np.array(case["weights"])
        tau, times = float(case["tau"]), np.array(case["times"], float)
        v = sim.free_membrane(rates, w, tau, times, n, cfg["seed"] + ci)
        for k, t in enumerate(times):
            law = th.ShotNoise(rates, w, tau, t)
            xs = [law.mean() + z * law.std() for z in cfg["z_points"]]
            for x in xs:
                f = float(law.cdf(x))
                emp = float(np.mean(v[:, k] <= x))
                rows.append(_row(case["name"], f"cdf(t={t:g}, x={x:.3f})", f, emp,
                                 math.sqrt(max(f * (1 - f), 1e-300) / n)))
            for x in case["levels"]:
                s = float(law.sf(x))
                emp = float(np.mean(v[:, k] > x))
                rows.append(_row(case["name"], f"sf(t={t:g}, x={x:g})", s, emp,
                                 math.sqrt(max(s * (1 - s), 1e-300) / n)))
            a = law.atom
            if a > 1e-4:
                emp = float(np.mean(v[:, k] == 0.0))
                rows.append(_row(case["name"], f"P(V=0) (t={t:g})", a, emp,
                                 math.sqrt(a * (1 - a) / n)))
        data[f"case{ci}_quantiles"] = np.quantile(v, np.linspace(0.01, 0.99, 99), axis=0)
    return rows, data


def _discrete_inputs(n_in, seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 1.0, n_in)
    p[:3] = [1.0, 0.0, 0.95]  # a saturated, a silent and a nearly saturated input
    w = rng.standard_normal(n_in) / math.sqrt(n_in)
    x_signed = rng.uniform(-1.2, 1.2, n_in)
    x_poisson = rng.uniform(0.0, 0.5, n_in)
    return p, w, x_signed, x_poisson


def study_discrete(cfg):
    """Discrete-time cumulants for every encoder and the Poisson-variance error."""
    rows, data = [], {}
    nb, bs, rec = cfg["n_batches"], cfg["batch_size"], np.array(cfg["record"])
    p, w, xs, xp = _discrete_inputs(cfg["n_in"], cfg["seed"])
    runs = [("bernoulli", p, a) for a in cfg["alphas"]]
    runs += [("signed", xs, cfg["encoder_alpha"]), ("poisson", xp, cfg["encoder_alpha"]),
             ("constant", xs, cfg["encoder_alpha"])]
    for ri, (enc, x, alpha) in enumerate(runs):
        name = f"{enc}, alpha={alpha:g}, n_in={x.size}"
        samples = _blocks(nb, bs, lambda t0, n, x=x, alpha=alpha, enc=enc, ri=ri:
                          sim.discrete_run(x, w, alpha, enc, int(rec[-1]), n,
                                           cfg["seed"] + ri, record=rec, trial0=t0)[0],
                          name[:30])
        est, se = batch_cumulants(samples)
        data[f"run{ri}_{enc}_cumulants"] = est
        for n in (1, 2, 3, 4):
            theo = th.discrete_cumulant(n, enc, x, w, alpha, rec)
            for k, s in enumerate(rec):
                if enc == "constant":  # deterministic: exact agreement, no standard error
                    sample = samples[..., k]
                    mc = float(sample.mean()) if n == 1 else float(np.ptp(sample))
                    rows.append(_row(name, f"kappa_{n}(steps={s})" if n == 1 else
                                     f"spread of V (steps={s}, n={n})",
                                     theo[k] if n == 1 else 0.0, mc, 0.0))
                    continue
                rows.append(_row(name, f"kappa_{n}(steps={s})", theo[k], est[n - 1, k],
                                 se[n - 1, k], df=nb - 1))
        if enc == "bernoulli":
            exact = th.bernoulli_var(p, w, alpha, rec)
            paper = th.leak_gain(2, alpha, rec) * np.sum(p * w**2)
            for k, s in enumerate(rec):
                rows.append(_row(name, f"paper Poisson var / exact var (steps={s})",
                                 paper[k] / exact[k], paper[k] / est[1, k],
                                 paper[k] * se[1, k] / est[1, k] ** 2, kind="report",
                                 note=f"paper formula overstates the variance by "
                                      f"{100 * (paper[k] / exact[k] - 1):.0f}%"))
    # A high-rate input vector: where the paper's formula is worst.
    rng = np.random.default_rng(cfg["seed"] + 99)
    ph = rng.uniform(0.6, 1.0, cfg["n_in"])
    for alpha in cfg["alphas"]:
        ex = float(th.bernoulli_var(ph, w, alpha, rec[-1]))
        pa = float(th.leak_gain(2, alpha, rec[-1]) * np.sum(ph * w**2))
        rows.append(_row(f"high rates p~U(0.6,1), alpha={alpha:g}",
                         f"paper Poisson var / exact var (steps={rec[-1]})", pa / ex,
                         kind="report", note="theory-only ratio"))
    return rows, data


def study_envelope(cfg):
    """Variance vs the L4 envelope and the angle factor cos(psi)."""
    rows, data = [], {}
    nb, bs, n_in, tau, t = cfg["n_batches"], cfg["batch_size"], cfg["n_in"], cfg["tau"], cfg["t"]
    rng = np.random.default_rng(cfg["seed"])
    w_gauss = rng.standard_normal(n_in)
    w_sparse = rng.standard_normal(n_in) * (rng.random(n_in) < 0.2)
    w_flat = rng.choice([-1.0, 1.0], n_in)
    weights = np.stack([w_gauss, w_sparse, w_flat])
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)  # equal L2 norms
    r_par = weights[0] ** 2 * (n_in / 2) / np.sum(weights[0] ** 2)
    inputs = {"r parallel to w_gauss∘2": r_par, "flat r": np.full(n_in, 0.5),
              "random r": rng.uniform(0, 1, n_in)}
    gain = tau / 2 * (1 - math.exp(-2 * t / tau))
    names = ["gaussian w", "sparse w", "flat w"]
    for ii, (rname, r) in enumerate(inputs.items()):
        samples = _blocks(nb, bs, lambda t0, n, r=r, ii=ii:
                          sim.free_membrane(r, weights, tau, [t], n, cfg["seed"] + ii,
                                            trial0=t0)[:, :, 0], rname[:30])
        est, se = batch_cumulants(samples)
        dec = th.variance_decomposition(r, weights, gain=gain)
        data[f"input{ii}_var"] = est[1]
        for j, wn in enumerate(names):
            case = f"{rname}, {wn}"
            rows.append(_row(case, "variance", dec.variance[j], est[1, j], se[1, j], df=nb - 1))
            rows.append(_row(case, "cos(psi) = var/envelope", dec.cos_psi[j],
                             est[1, j] / dec.envelope[j], se[1, j] / dec.envelope[j], df=nb - 1))
            rows.append(_row(case, "std / L4 envelope", 1.0,
                             math.sqrt(est[1, j]) / dec.std_envelope[j], kind="report",
                             note=f"||w||_4 = {dec.l4[j]:.3f}, cos psi = {dec.cos_psi[j]:.3f}"))
    return rows, data


def study_rates(cfg):
    """Firing rates: exact IF soft/hard, Bernoulli renewal, asymptotic, Siegert map."""
    rows, data = [], {}
    c = cfg["if_case"]
    r, w, thetas = np.array(c["rates"]), np.array(c["weights"]), np.array(c["thresholds"])
    span = cfg["if_t_run"] - cfg["if_warmup"]
    for k, reset in enumerate(("soft", "hard")):
        counts, _ = sim.lif_event(r, w, np.inf, thetas, cfg["if_t_run"], cfg["if_trials"],
                                  cfg["seed"] + k, reset=reset, t_warmup=cfg["if_warmup"])
        m, s = mean_se(counts / span)
        data[f"if_{reset}_rate"] = m
        for j, theta in enumerate(thetas):
            if reset == "soft":
                theo = float(thr.if_soft_rate(r, w, theta))
                note = "drift/theta"
            else:
                theo, lo, hi = thr.if_hard_rate(r, w, theta, return_bounds=True)
                note = f"renewal, bracket width {hi - lo:.1e}"
            rows.append(_row(f"no-leak IF, {reset} reset", f"rate (theta={theta:g})", theo,
                             m[j], s[j], df=cfg["if_trials"] - 1, note=note))
            if reset == "hard":
                asy = float(thr.if_hard_rate_asymptotic(r, w, theta))
                rows.append(_row("no-leak IF, hard reset", f"asymptotic rate (theta={theta:g})",
                                 asy, m[j], s[j], df=cfg["if_trials"] - 1, kind="report",
                                 note=f"rel. error of asymptotic {100 * (asy / m[j] - 1):+.1f}%"))
    b = cfg["bernoulli_case"]
    p, wb, tb = np.array(b["probs"]), np.array(b["weights"]), np.array(b["thresholds"])
    n1, n2 = cfg["bern_steps"]
    wrep = np.tile(wb, (tb.size, 1))
    _, c1 = sim.discrete_run(p, wrep, 1.0, "bernoulli", n1, cfg["bern_trials"], cfg["seed"] + 7,
                             v_th=tb, reset="hard")
    _, c2 = sim.discrete_run(p, wrep, 1.0, "bernoulli", n2, cfg["bern_trials"], cfg["seed"] + 7,
                             v_th=tb, reset="hard")
    m, s = mean_se((c2 - c1) / (n2 - n1))
    for j, theta in enumerate(tb):
        rows.append(_row("discrete IF, Bernoulli inputs, hard reset",
                         f"rate per step (theta={theta:g})",
                         thr.if_hard_rate_bernoulli(p, wb, theta), m[j], s[j],
                         df=cfg["bern_trials"] - 1, note="exact renewal (lattice weights)"))
        soft = float(thr.if_soft_rate(p, wb, theta))
        rows.append(_row("discrete IF, Bernoulli inputs, hard reset",
                         f"soft-reset rate drift/theta (theta={theta:g})", soft, m[j], s[j],
                         kind="report", note=f"overshoot loss {100 * (1 - m[j] / soft):.0f}%"))
    sg = cfg["siegert"]
    tau, vth = sg["tau"], sg["v_th"]
    span = cfg["siegert_t_run"] - cfg["siegert_warmup"]
    amap = np.full((len(sg["jumps"]), len(sg["means"])), np.nan)
    cells = [(a, bq) for a in range(len(sg["jumps"])) for bq in range(len(sg["means"]))]
    for a, bq in tqdm(cells, desc="Siegert map", leave=False, disable=None):
        jump, mu = sg["jumps"][a], sg["means"][bq]
        lam = mu / (jump * tau)
        counts, _ = sim.lif_event([lam], [jump], tau, [vth], cfg["siegert_t_run"],
                                  cfg["siegert_trials"], cfg["seed"] + 100 + a * 10 + bq,
                                  reset="hard", t_warmup=cfg["siegert_warmup"])
        m, s = mean_se(counts[:, 0] / span)
        sieg = float(thr.siegert_rate([lam], [jump], tau, vth))
        amap[a, bq] = sieg / m - 1 if m > 0 else np.nan
        rows.append(_row(f"LIF tau={tau:g}, v_th={vth:g}, hard reset",
                         f"Siegert rate (jump={jump:g}, mu={mu:g})", sieg, m, s,
                         df=cfg["siegert_trials"] - 1, kind="report",
                         note=f"rel. error {100 * amap[a, bq]:+.1f}%"))
    data["siegert_rel_error"] = amap
    data["siegert_jumps"] = np.array(sg["jumps"])
    data["siegert_means"] = np.array(sg["means"])
    return rows, data


STUDIES: dict[str, Callable] = {
    "moments": study_moments,
    "distribution": study_distribution,
    "discrete": study_discrete,
    "envelope": study_envelope,
    "rates": study_rates,
}


# ------------------------------------------------------------------------------ running
def _git_revision():
    from l4theory._provenance import git_revision

    return git_revision(REPO_ROOT, ("validation", "l4theory")) or "unknown"


def _versions():
    from l4theory._provenance import versions

    return versions()


def _judge(rows):
    checks = [r for r in rows if r["kind"] == "check"]
    for r in rows:
        if r["kind"] == "check":
            crit = critical_z(len(checks), r["df"])
            r["z_crit"] = crit
            r["pass"] = bool(np.isfinite(r["z"]) and abs(r["z"]) < crit)
        else:
            r["z_crit"] = None
            r["pass"] = None
    return rows


def _fmt(x, digits=5):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def markdown_table(rows) -> str:
    """Markdown table: case, quantity, theory, MC ± SE, z, pass (and a note)."""
    lines = ["| case | quantity | theory | MC ± SE | z | pass | note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        mc = "–" if not np.isfinite(r["mc"]) else (
            f"{_fmt(r['mc'])} ± {_fmt(r['se'], 2)}" if np.isfinite(r["se"]) else _fmt(r["mc"]))
        ok = {True: "yes", False: "**NO**", None: "report"}[r["pass"]]
        lines.append(f"| {r['case']} | {r['quantity']} | {_fmt(r['theory'])} | {mc} | "
                     f"{_fmt(r['z'], 3)} | {ok} | {r['note']} |")
    return "\n".join(lines) + "\n"


def run_studies(names=("all",), size="quick", out_dir=None, verbose=True):
    """Run validation studies and write their reports.

    Parameters
    ----------
    names : sequence of str
        Study names (keys of :data:`STUDIES`) or ``"all"``.
    size : {"quick", "full"}
        Config size.
    out_dir : path-like, optional
        Output folder; default ``results/validation`` in the repository.
    verbose : bool
        Print the summary table.

    Returns
    -------
    dict
        ``{study: {"rows": [...], "passed": int, "failed": int, "seconds": float}}``.
    """
    from pathlib import Path

    names = list(STUDIES) if "all" in names else list(names)
    for n in names:
        if n not in STUDIES:
            raise ValueError(f"unknown study {n!r}; choose from {sorted(STUDIES)} or 'all'")
    out_dir = Path(out_dir) if out_dir is not None else RESULTS_DIR
    results = {}
    for name in names:
        cfg = load_config(name, size)
        t0 = time.perf_counter()
        rows, data = STUDIES[name](cfg)
        rows = _judge(rows)
        secs = time.perf_counter() - t0
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "data.npz", **data)
        (folder / "rows.json").write_text(json.dumps(rows, indent=1))
        prov = {"study": name, "size": size, "seed": cfg.get("seed"), "config": cfg,
                "git_revision": _git_revision(), "versions": _versions(),
                "family_alpha": FAMILY_ALPHA, "seconds": secs,
                "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "env": {k: os.environ[k] for k in ("NUMBA_NUM_THREADS",) if k in os.environ}}
        (folder / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))
        n_pass = sum(r["pass"] is True for r in rows)
        n_fail = sum(r["pass"] is False for r in rows)
        head = (f"# Validation study `{name}` ({size})\n\n{STUDIES[name].__doc__}\n\n"
                f"{n_pass} checks passed, {n_fail} failed, "
                f"{sum(r['pass'] is None for r in rows)} report rows; "
                f"family-wise false-failure rate < {FAMILY_ALPHA:g}; {secs:.1f} s.\n\n")
        (folder / "report.md").write_text(head + markdown_table(rows))
        results[name] = {"rows": rows, "passed": n_pass, "failed": n_fail, "seconds": secs}
    summary = summary_table(results)
    (out_dir / f"summary_{size}.md").write_text(summary)
    if verbose:
        print(summary)
    return results


def summary_table(results) -> str:
    """One line per study: checks passed/failed, largest |z|, report rows, seconds."""
    lines = ["| study | checks passed | failed | max abs z (crit) | report rows | seconds |",
             "|---|---|---|---|---|---|"]
    for name, res in results.items():
        checks = [r for r in res["rows"] if r["kind"] == "check"]
        zs = [abs(r["z"]) for r in checks if np.isfinite(r["z"])]
        crit = max((r["z_crit"] for r in checks), default=float("nan"))
        lines.append(f"| {name} | {res['passed']} | {res['failed']} | "
                     f"{max(zs, default=0):.2f} ({crit:.2f}) | {len(res['rows']) - len(checks)} | "
                     f"{res['seconds']:.1f} |")
    return "\n".join(lines) + "\n"


def quick_summary() -> str:
    """Run every study at the quick size and return the summary table (for ``make reproduce``)."""
    results = run_studies(("all",), "quick", verbose=False)
    return summary_table(results)
