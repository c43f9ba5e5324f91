"""W1 and W2 side by side in one process; ratios printed and written to benchmarks/results/.

W1 free-membrane moments: 100,000 trials of one neuron with 100 Poisson inputs, rates U(0,1)
per tau, weights N(0,1)/sqrt(100) (numpy default_rng(12345)), tau = 1, V recorded at
t = 5 tau; time-stepped variants use dt = 0.01 tau.
W2 threshold search: the same neuron, 64 thresholds from the stationary mean to mean + 3 sd,
soft and hard reset, 100 trials of 100 tau each, firing rate per threshold.

Usage: ``python -m benchmarks [w1|w2|w3|w4|dask|balance|all] [--rounds N] [--quick]`` (W3/W4:
converted-SNN inference, ``benchmarks/w3.py``, ``benchmarks/w4.py``; ``dask`` and ``balance``:
the conversion study's overheads, ``benchmarks/scaleout.py``), and
``python -m benchmarks profile [w3|w4] [--steps T]``: the simulator's time per stage
(``benchmarks/profile.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

from validation import reference as ref
from validation import simulators as sim
from validation.studies import w1_inputs

from . import brian2_binary as b2bin
from . import engines as eng
from .timing import interleaved

RESULTS = Path(__file__).resolve().parent / "results"
BRIAN2 = "brian2_cpp_standalone_binary"  # wall time of the kept binary (subprocess)
BRIAN2_OWN = "brian2_cpp_standalone_own_run_time"  # the binary's own simulation time


def _with_brian2(impls, case, quick, rounds):
    """Time ``impls`` interleaved, with the kept Brian2 binary of ``case`` when built."""
    br = None if quick else b2bin.available(case)
    if br is not None:
        impls[BRIAN2] = br
    times = interleaved(impls, rounds, cold={BRIAN2})
    if br is not None:
        times[BRIAN2_OWN] = br.run_s
    return times


def w1(rounds, quick):
    lam, w = w1_inputs()
    n = 20_000 if quick else 100_000
    total = lam.sum() * 5.0
    rng_words = np.full(n, int(round(2 * total)), dtype=np.int64)
    numpy_n = n // 5
    impls = {
        "exact_numba": lambda: sim.free_membrane(lam, w, 1.0, [5.0], n, 1),
        "stepped_numba_dt0.01": lambda: eng.w1_stepped_numba(lam, w, 1.0, 5.0, 0.01, n, 2),
        f"numpy_exact_vectorised (x{n // numpy_n} from {numpy_n})":
            lambda: ref.free_membrane_numpy(lam, w, 1.0, 5.0, numpy_n, rng=3),
        "exact_numba_packed_1word (benchmark only)":
            lambda: eng.w1_packed_numba(lam, w, 1.0, 5.0, n, 1),
        "rng_bound_counter_2words_per_event": lambda: eng.rng_bound(rng_words, 4),
        "rng_bound_counter_1word_per_event": lambda: eng.rng_bound(rng_words // 2, 4),
        "numpy_generator_random_2words_per_event":
            lambda: np.random.default_rng(5).random(int(2 * total * n)),
    }
    times = _with_brian2(impls, "w1_cpp_standalone", quick, rounds)
    med = {k: float(np.median(v)) for k, v in times.items()}
    key_np = next(k for k in med if k.startswith("numpy_exact"))
    med[key_np] *= n / numpy_n  # linear extrapolation to n trials
    v = sim.free_membrane(lam, w, 1.0, [5.0], n, 1)[:, 0]
    mean_th = lam @ w * (1 - math.exp(-5))
    var_th = lam @ w**2 / 2 * (1 - math.exp(-10))
    base = med["exact_numba"]
    return {
        "n_trials": n, "events": float(total * n), "median_s": med,
        "ratio_to_exact": {k: t / base for k, t in med.items()},
        "exact_events_per_s": total * n / base,
        "check": {"mean": float(v.mean()), "mean_theory": mean_th, "var": float(v.var()),
                  "var_theory": var_th},
    }


def w2(rounds, quick):
    lam, w = w1_inputs()
    mu = lam @ w
    sd = math.sqrt(lam @ w**2 / 2)
    thr = mu + sd * np.linspace(0, 3, 64)
    n, t_run = 100, (20.0 if quick else 100.0)
    out = {"n_trials": n, "t_run": t_run, "thresholds": thr.tolist()}
    for reset in ("soft", "hard"):
        impls = {
            "exact_numba_crn": lambda r=reset: sim.lif_event(lam, w, 1.0, thr, t_run, n, 1,
                                                             reset=r),
            "stepped_numba_crn_dt0.01": lambda r=reset: eng.w2_stepped_numba(
                lam, w, 1.0, thr, t_run, 0.01, n, 2, r),
            "numpy_stepped_crn_dt0.01": lambda r=reset: eng.w2_stepped_numpy(
                lam, w, 1.0, thr, t_run, 0.01, n, np.random.default_rng(3), r),
        }
        times = _with_brian2(impls, f"w2_{reset}_cpp_standalone", quick, rounds)
        med = {k: float(np.median(v)) for k, v in times.items()}
        exact = sim.lif_event(lam, w, 1.0, thr, t_run, 1000, 7, reset=reset)[0].mean(0) / t_run
        step = eng.w2_stepped_numba(lam, w, 1.0, thr, t_run, 0.01, 1000, 8, reset).mean(0) / t_run
        out[reset] = {
            "median_s": med,
            "ratio_to_exact": {k: t / med["exact_numba_crn"] for k, t in med.items()},
            "rates_exact_R1000": exact[[0, 21, 42, 63]].tolist(),
            "rates_stepped_R1000": step[[0, 21, 42, 63]].tolist(),
            "stepping_bias_pct_first_third_thr": float(100 * (step[:21].sum() / exact[:21].sum()
                                                             - 1)),
        }
    return out


def _brian2_latest():
    """Newest ``results/brian2_*.json`` written by ``benchmarks/brian2_w1w2.py`` (or None)."""
    files = sorted(RESULTS.glob("brian2_*.json"))
    for f in reversed(files):
        data = json.loads(f.read_text())
        if not data.get("quick"):
            return f.name, data
    return None


def _targets(res, quick=False):
    """Ratios against the issue's targets (list of printable lines; also stored in res).

    Brian2 ``cpp_standalone``: the kept binary (``benchmarks/.brian2-build``) timed in the
    same interleaved rounds; its runtime (Cython) mode from the newest separate
    ``results/brian2_*.json``, labelled as not interleaved. Brian2 runs the full workload
    sizes, so its ratios are left out of quick runs.
    """
    lines, tg = [], {}
    if "w1" in res:
        m = res["w1"]["median_s"]
        ex = m["exact_numba"]
        np_best = min(t for k, t in m.items() if k.startswith("numpy_exact"))
        tg["w1_exact_over_rng_bound"] = ex / m["rng_bound_counter_2words_per_event"]
        tg["w1_numpy_over_exact"] = np_best / ex
        lines.append(f"W1 exact / RNG bound = {tg['w1_exact_over_rng_bound']:.2f} (target <= 2.5)")
        lines.append(f"W1 best NumPy / exact = {tg['w1_numpy_over_exact']:.1f} (target >= 20)")
    blocks = ([("w1", res["w1"], 500)] if "w1" in res else []) + (
        [(f"w2 {r}", res["w2"][r], 500) for r in ("soft", "hard")] if "w2" in res else [])
    if quick:
        lines.append("Brian2: ratios only for full-size runs (drop --quick)")
    for wl, blk, target in blocks if not quick else []:
        m = blk["median_s"]
        if BRIAN2_OWN not in m:
            lines.append(f"{wl}: Brian2 binary not built (benchmarks/.venv-brian2/bin/python "
                         "benchmarks/brian2_w1w2.py --build)")
            continue
        ours = m["exact_numba" if wl == "w1" else "exact_numba_crn"]
        key = wl.replace(" ", "_") + "_brian2_cpp_standalone_over_ours"
        tg[key] = m[BRIAN2_OWN] / ours
        lines.append(f"{wl}: Brian2 cpp_standalone (same rounds) {m[BRIAN2_OWN]:.2f} s own run "
                     f"time, {m[BRIAN2]:.2f} s whole process / ours {ours * 1e3:.1f} ms = "
                     f"{tg[key]:.0f}x (target >= {target}; whole process {m[BRIAN2] / ours:.0f}x)")
    br = None if quick else _brian2_latest()
    if br is not None:
        name, data = br
        for case, (wl, ours_key) in {"w1_runtime_cython": ("w1", "exact_numba"),
                                     "w2_soft_runtime_cython": ("w2", "exact_numba_crn")}.items():
            c = data["cases"].get(case, {})
            if wl not in res or "full_s" not in c:
                continue
            blk = res[wl] if wl == "w1" else res[wl]["soft"]
            ratio = c["full_s"] / blk["median_s"][ours_key]
            tg[f"{case}_over_ours_not_interleaved"] = ratio
            lines.append(f"{wl}: Brian2 {case} {c['full_s']:.1f} s (separate run {name}, "
                         f"scaled x{c['scale']:g}, NOT interleaved) / ours = {ratio:.0f}x")
    res["targets"] = tg
    return lines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["profile"]:  # per-stage time of the simulator: benchmarks/profile.py
        from .profile import main as profile_main

        return profile_main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("which", nargs="?", default="all", choices=["w1", "w2", "w3", "w4", "dask", "balance", "all"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    a = p.parse_args(argv)
    if a.which in ("dask", "balance"):
        from .scaleout import main as scaleout_main

        return scaleout_main(a.which, a.quick)
    if a.which in ("w3", "w4"):  # converted-SNN inference: benchmarks/w3.py, w4.py
        from .w3 import main as w3_main
        from .w4 import main as w4_main

        return (w3_main if a.which == "w3" else w4_main)(
            ["--rounds", str(a.rounds)] + (["--quick"] if a.quick else []))
    res = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "numba_threads": numba.get_num_threads(), "numpy": np.__version__,
                       "numba": numba.__version__, "python": sys.version.split()[0]},
           "brian2": "see targets (benchmarks/brian2_w1w2.py, its own venv with numpy<2.4)"}
    if a.which in ("w1", "all"):
        res["w1"] = w1(a.rounds, a.quick)
    if a.which in ("w2", "all"):
        res["w2"] = w2(a.rounds, a.quick)
    target_lines = _targets(res, quick=a.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"bench_{stamp}.json").write_text(json.dumps(res, indent=1))
    for wl in ("w1", "w2"):
        if wl not in res:
            continue
        blocks = [(wl, res[wl])] if wl == "w1" else [(f"w2 {r}", res[wl][r]) for r in ("soft", "hard")]
        for name, b in blocks:
            print(f"\n{name}: median seconds and ratio to the exact Numba engine")
            for k, t in b["median_s"].items():
                print(f"  {k:55s} {t * 1e3:10.1f} ms   x{b['ratio_to_exact'][k]:.2f}")
    if "w1" in res:
        print("\nw1 check:", res["w1"]["check"])
    if "w2" in res:
        for r in ("soft", "hard"):
            print(f"w2 {r}: exact rates {np.round(res['w2'][r]['rates_exact_R1000'], 4)}, "
                  f"stepped {np.round(res['w2'][r]['rates_stepped_R1000'], 4)}, stepping bias "
                  f"{res['w2'][r]['stepping_bias_pct_first_third_thr']:+.2f}%")
    print("\nagainst the targets:\n  " + "\n  ".join(target_lines))
    print(f"\nwritten to {RESULTS}/bench_{stamp}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
