"""Where the default simulator spends its time, stage by stage, on W3 or W4.

``python -m benchmarks profile [w3|w4] [--steps T] [--rounds N] [--quick]`` runs
:func:`l4theory.convert.simulate.simulate` (default path: NumPy + Numba) on the workload's
batch and times each stage of every block: the input encoder, each convolution (with the
kernel that ran it: ``conv_taps`` or ``conv_events``), each dense product, the IF updates
and the pooling. It wraps the simulator's stage functions for the run (nothing in the
library is changed) and prints ms per image and the share of the total, median of the
rounds after one warm-up. Use it to see which kernel to work on; the side-by-side engine
comparison is ``python -m benchmarks w3`` / ``w4``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from contextlib import ExitStack
from unittest import mock

import numpy as np

from l4theory.convert import _kernels as K
from l4theory.convert import simulate as S

__all__ = ["profile", "main"]


def _timed(acc: dict, name_of, fn):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        acc[name_of(*args, **kwargs)] += time.perf_counter() - t0
        return out
    return wrapper


def _conv_name(h, op, *_):
    """Stage name of a convolution: its layer, the kernel the simulator picks, the channels."""
    cin = op.weight_t.shape[2]
    return f"layer {op.index} {S._conv_kernel(op).__name__} {cin}->{op.shape[-1]}"


def profile(net, x, *, thresholds, steps: int, encoder: str, rounds: int = 3,
            seed: int = 1) -> dict:
    """Per-stage seconds of ``simulate`` (medians over ``rounds`` after a warm-up).

    Parameters
    ----------
    net, x, thresholds, steps, encoder
        As for :func:`~l4theory.convert.simulate.simulate` (default backend).
    rounds : int
        Timed runs (>= 1); medians are reported.
    seed : int
        Input stream seed.

    Returns
    -------
    dict
        ``{"total_s": float, "stages_s": {stage: float}, "n_images": int,
        "block_steps": int}``; stages not wrapped (readout, bookkeeping) are
        ``"other"``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    runs = []
    for r in range(rounds + 1):
        acc: dict = defaultdict(float)
        with ExitStack() as stack:
            stack.enter_context(mock.patch.object(
                S, "_conv_events", _timed(acc, _conv_name, S._conv_events)))
            stack.enter_context(mock.patch.object(S, "linear_op", _timed(
                acc, lambda kind, h, w, *a, **k: f"{kind} {w.shape[1]}->{w.shape[0]} (BLAS)",
                S.linear_op)))
            stack.enter_context(mock.patch.object(
                S, "_pool", _timed(acc, lambda *a, **k: "avgpool", S._pool)))
            stack.enter_context(mock.patch.object(
                S, "encode_steps", _timed(acc, lambda *a, **k: "encode", S.encode_steps)))
            for name in ("if_scan", "if_scan_numpy"):  # the simulator calls one of them
                stack.enter_context(mock.patch.object(K, name, _timed(
                    acc, lambda *a, **k: "if_scan (all layers)", getattr(K, name))))
            t0 = time.perf_counter()
            res = S.simulate(net, x, thresholds=thresholds, steps=steps, encoder=encoder,
                             seed=seed)
            total = time.perf_counter() - t0
        if r:  # the first run is the warm-up (compilation, caches)
            acc["other"] = total - sum(acc.values())
            runs.append((total, dict(acc)))
    names = sorted({k for _, a in runs for k in a})
    stages = {k: float(np.median([a.get(k, 0.0) for _, a in runs])) for k in names}
    return {"total_s": float(np.median([t for t, _ in runs])), "stages_s": stages,
            "n_images": int(len(x)), "block_steps": int(res.params["block_steps"])}


def main(argv=None) -> int:
    """Command line: print the per-stage table."""
    p = argparse.ArgumentParser(prog="python -m benchmarks profile", description=__doc__)
    p.add_argument("workload", nargs="?", default="w3", choices=["w3", "w4"])
    p.add_argument("--steps", type=int, default=None, help="T (default: 75 for w3, 30 for w4)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="batch 16, T = 10 (smoke run)")
    a = p.parse_args(argv)
    if a.workload == "w3":
        from .w3 import w3_network

        net, x = w3_network(0, 16 if a.quick else 64)
        th, enc, steps = [1.0] * len(net.spiking_layers), "bernoulli", 75
    else:
        from .w4 import w4_inputs

        net, x, _, th, _ = w4_inputs(16 if a.quick else 64, 64 if a.quick else 512)
        enc, steps = "signed", 30
    steps = 10 if a.quick else (a.steps or steps)
    out = profile(net, x, thresholds=th, steps=steps, encoder=enc, rounds=a.rounds)
    n, tot = out["n_images"], out["total_s"]
    import numba

    print(f"{a.workload}: batch {n}, T = {steps}, {enc} encoder, {numba.get_num_threads()} "
          f"Numba threads, blocks of {out['block_steps']} steps; median of {a.rounds} runs")
    print(f"  {'stage':42s} {'ms/image':>9s} {'share':>7s}")
    for k, v in sorted(out["stages_s"].items(), key=lambda kv: -kv[1]):
        print(f"  {k:42s} {v * 1e3 / n:9.2f} {100 * v / tot:6.1f}%")
    print(f"  {'total':42s} {tot * 1e3 / n:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
