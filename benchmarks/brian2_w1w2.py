"""Brian2 baselines for W1 and W2 (run in its own venv: Brian2 2.9 needs numpy < 2.4).

Setup (once)::

    python -m venv benchmarks/.venv-brian2
    benchmarks/.venv-brian2/bin/pip install 'numpy<2.4' brian2

Run::

    benchmarks/.venv-brian2/bin/python benchmarks/brian2_w1w2.py [--quick]

or compile the ``cpp_standalone`` binaries once, to be timed by ``python -m benchmarks w1|w2``
in the same interleaved rounds as our engines::

    benchmarks/.venv-brian2/bin/python benchmarks/brian2_w1w2.py --build

The workloads are those of ``python -m benchmarks`` (see ``docs/performance.md``), written
the way a Brian2 user would: one ``NeuronGroup`` with ``dv/dt = -v/tau``, 100
``PoissonInput`` objects (one per input, its rate and jump size ``w_i``), ``dt = 0.01 tau``
(tau = 1 s). W1: 100,000 neurons, ``v`` recorded at 5 tau. W2: 64 x 100 neurons (threshold
``theta_j`` as a per-neuron parameter, ``v >= theta``, soft or hard reset), 100 tau, spike
counts from a ``SpikeMonitor(record=False)``. Each case runs in a fresh subprocess (one
standalone build per process) in a temporary build folder. Timings exclude code generation
and compilation: ``cpp_standalone`` reports the binary's own run time
(``device._last_run_time``), the runtime (Cython) target the wall time of ``run`` after a
warm-up run that fills the compilation cache. Cases that would take long are run at a
reduced size and scaled linearly (``scaled_from`` in the JSON). Results are written to
``benchmarks/results/brian2_<time>.json``; ``python -m benchmarks`` reads the newest one.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def _inputs(n_in=100, seed=12345):
    """Same neuron as ``validation.studies.w1_inputs`` (rates U(0,1), weights N(0,1)/10)."""
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.0, 1.0, n_in)
    weights = rng.standard_normal(n_in) / math.sqrt(n_in)
    return rates, weights


def _case(workload, target, n, t_run, reset, build_dir, run=True):
    import brian2 as b2

    b2.prefs.logging.file_log = False
    if target == "cpp_standalone":
        b2.prefs.devices.cpp_standalone.extra_make_args_unix = ["-j2"]  # shared 2-core machine
        b2.set_device("cpp_standalone", directory=build_dir, build_on_run=False)
    else:
        b2.prefs.codegen.target = target
    b2.defaultclock.dt = 0.01 * b2.second
    tau = 1.0 * b2.second
    rates, weights = _inputs()
    ns = {"tau": tau}
    if workload == "w1":
        g = b2.NeuronGroup(n, "dv/dt = -v/tau : 1", method="exact", namespace=ns)
    else:
        mu = float(rates @ weights)
        sd = math.sqrt(float(rates @ weights**2) / 2)
        thr = mu + sd * np.linspace(0.0, 3.0, 64)
        reset_code = "v -= theta" if reset == "soft" else "v = 0"
        g = b2.NeuronGroup(n, "dv/dt = -v/tau : 1\ntheta : 1 (constant)", threshold="v >= theta",
                           reset=reset_code, method="exact", namespace=ns)
        g.theta = np.repeat(thr, n // 64)
    inputs = [b2.PoissonInput(g, "v", 1, rates[i] * b2.Hz, weight=float(weights[i]))
              for i in range(rates.size)]
    mon = b2.SpikeMonitor(g, record=False) if workload == "w2" else None
    net = b2.Network(g, *inputs, *([mon] if mon is not None else []))
    if target == "cpp_standalone" and not run:  # compile only; kept for interleaved timing
        net.run(t_run * b2.second)
        b2.device.build(directory=build_dir, compile=True, run=False, debug=False)
        return {}
    if target == "cpp_standalone":
        net.run(t_run * b2.second)
        t0 = time.perf_counter()
        b2.device.build(directory=build_dir, compile=True, run=True, debug=False)
        build_and_run = time.perf_counter() - t0
        run_s = float(b2.device._last_run_time)
        extra = {"build_and_run_wall_s": build_and_run}
    else:
        net.store()
        net.run(0.02 * b2.second)  # warm-up: code generation and compilation (cached)
        net.restore()
        t0 = time.perf_counter()
        net.run(t_run * b2.second)
        run_s = time.perf_counter() - t0
        extra = {}
    out = {"run_s": run_s, **extra}
    if workload == "w1":
        v = np.asarray(g.v[:])
        out.update(mean=float(v.mean()), var=float(v.var()))
    else:
        cnt = np.asarray(mon.count[:]).reshape(64, n // 64)
        out["rates"] = (cnt.mean(1) / t_run).tolist()
    return out


CASES = {
    # name: (workload, target, n, t_run, reset, scale to the full workload)
    "w1_cpp_standalone": ("w1", "cpp_standalone", 100_000, 5.0, None, 1.0),
    "w1_runtime_cython": ("w1", "cython", 10_000, 5.0, None, 10.0),
    "w2_soft_cpp_standalone": ("w2", "cpp_standalone", 6400, 100.0, "soft", 1.0),
    "w2_hard_cpp_standalone": ("w2", "cpp_standalone", 6400, 100.0, "hard", 1.0),
    "w2_soft_runtime_cython": ("w2", "cython", 6400, 10.0, "soft", 10.0),
}


BUILD = Path(__file__).resolve().parent / ".brian2-build"  # git-ignored


def build(names) -> int:
    """Compile the standalone binaries once into ``benchmarks/.brian2-build/<case>/``.

    ``python -m benchmarks w1|w2`` (main venv) then runs ``./main`` there as a subprocess
    in the same interleaved rounds as our engines (``benchmarks/brian2_binary.py``).
    """
    for name in names:
        wl, target, n, t_run, reset, _scale = CASES[name]
        d = BUILD / name
        d.mkdir(parents=True, exist_ok=True)
        if (d / "main").exists():
            print(f"{name}: already built in {d}")
            continue
        cmd = [sys.executable, __file__, "--case", name, "--build-dir", str(d)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0 or not (d / "main").exists():
            print(f"{name}: build failed\n{(r.stderr or r.stdout)[-3000:]}")
            return 1
        import brian2

        meta = {"case": name, "workload": wl, "n": n, "t_run": t_run, "reset": reset,
                "brian2": brian2.__version__, "numpy": np.__version__,
                "build_s": time.perf_counter() - t0, "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (d / "case.json").write_text(json.dumps(meta, indent=1))
        print(f"{name}: built in {meta['build_s']:.0f} s -> {d}")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="10x smaller cases (smoke run)")
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--only", nargs="*", choices=sorted(CASES), help="run only these cases")
    p.add_argument("--build", action="store_true",
                   help="only compile the cpp_standalone binaries into benchmarks/.brian2-build")
    p.add_argument("--build-dir", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.build:
        return build(a.only or [c for c in CASES if c.endswith("cpp_standalone")])
    if a.case and a.build_dir:  # child process: compile one standalone case
        wl, target, n, t_run, reset, _scale = CASES[a.case]
        _case(wl, target, n, t_run, reset, a.build_dir, run=False)
        return 0
    if a.case:  # child process: one case, JSON on stdout
        wl, target, n, t_run, reset, scale = CASES[a.case]
        if a.quick:
            n, scale = (n // 10 if wl == "w1" else n), (scale * (10 if wl == "w1" else 1))
            if wl == "w2":
                t_run, scale = t_run / 10, scale * 10
        with tempfile.TemporaryDirectory(prefix="brian2_") as d:
            res = _case(wl, target, n, t_run, reset, d)
        res.update(n=n, t_run=t_run, scale=scale, full_s=res["run_s"] * scale)
        print("RESULT " + json.dumps(res))
        return 0
    import brian2

    out = {"brian2": brian2.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
           "platform": platform.platform(), "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "quick": a.quick, "cases": {}}
    for name in a.only or CASES:
        cmd = [sys.executable, __file__, "--case", name] + (["--quick"] if a.quick else [])
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
        if r.returncode != 0 or not line:
            out["cases"][name] = {"error": (r.stderr or r.stdout)[-2000:]}
            print(f"{name}: failed\n{r.stderr[-2000:]}")
            continue
        res = json.loads(line[-1][7:])
        res["process_wall_s"] = time.perf_counter() - t0
        out["cases"][name] = res
        note = "" if res["scale"] == 1 else f" (scaled x{res['scale']:g} from a reduced run)"
        print(f"{name}: {res['full_s']:.2f} s for the full workload{note}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"brian2_{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
