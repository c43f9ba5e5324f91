"""Machine description and the two floors of converted-SNN inference (W3, W4).

* dense floor = 2 x dense MACs / measured sgemm rate (NumPy float32 matmul, FLOP/s);
* event-driven floor = synaptic events / measured add rate (floats/s of a Numba kernel
  that adds, for each event, one contiguous weight row of ``row`` floats into an
  accumulator: the inner loop of an event-driven convolution or fully connected layer).

Events of a weight layer = non-zero entries of its input (spikes, or average-pooled spikes)
x its fan-out (conv: ``C_out * kh * kw / (stride_h * stride_w)``, borders ignored; linear:
``out_features``), counted in a run of the PyTorch loop on the workload's input spikes.
"""

from __future__ import annotations

import math
import os
import platform
import time

import numba
import numpy as np

__all__ = ["Probes", "add_rate", "dense_macs", "fan_out", "machine", "sgemm_rate"]


def machine() -> dict:
    """CPU model, ISA flags that matter, cores, thread settings and the BLAS NumPy uses."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and model in ("unknown", "x86_64", ""):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    isa = sorted(f for f in flags if f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni",
                                           "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"))
    blas = []
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{d.get('internal_api')} {d.get('version')} ({d.get('num_threads')} thr, "
                f"{d.get('architecture', '?')})" for d in threadpool_info()
                if d.get("user_api") == "blas"]
    except ImportError:
        blas = ["threadpoolctl not installed"]
    return {"cpu": model, "isa": isa, "cores": os.cpu_count(),
            "numba_threads": numba.get_num_threads(), "numpy_blas": blas,
            "platform": platform.platform(), "numpy": np.__version__,
            "numba": numba.__version__, "python": platform.python_version(),
            "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def sgemm_rate(n: int = 1024, repeats: int = 5) -> float:
    """Best float32 ``n x n @ n x n`` rate of NumPy's BLAS, FLOP/s (2 per multiply-add)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


@numba.njit(parallel=True, fastmath=True, cache=True)
def _row_adds(w, idx, acc):
    n_par = acc.shape[0]
    per = idx.size // n_par
    for p in numba.prange(n_par):
        a = acc[p]
        for e in range(p * per, (p + 1) * per):
            r = w[idx[e]]
            for j in range(r.size):
                a[j] += r[j]


def add_rate(row: int = 128, n_rows: int = 4608, n_events: int = 400_000,
             repeats: int = 5) -> float:
    """Best rate of event-driven row additions, floats added per second (all threads).

    ``n_rows x row`` float32 weights (2.4 MB at the defaults: one 3x3x128 conv's weights),
    events pick random rows; each thread owns an accumulator.
    """
    rng = np.random.default_rng(0)
    w = rng.standard_normal((n_rows, row), dtype=np.float32)
    idx = rng.integers(0, n_rows, n_events)
    acc = np.zeros((numba.get_num_threads(), row), np.float32)
    _row_adds(w, idx, acc)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        _row_adds(w, idx, acc)
        best = min(best, time.perf_counter() - t0)
    used = (n_events // acc.shape[0]) * acc.shape[0]
    return used * row / best


class Probes:
    """The two rate kernels as fixed-work callables, to be timed among the engines.

    Timed in the same interleaved rounds as the engines, their medians give the rates
    under the same machine load (``sgemm_flops``, ``add_floats_per_s``).
    """

    def __init__(self, n: int = 1024, row: int = 128, n_rows: int = 4608,
                 n_events: int = 400_000):
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((n, n), dtype=np.float32)
        self.b = rng.standard_normal((n, n), dtype=np.float32)
        self.w = rng.standard_normal((n_rows, row), dtype=np.float32)
        self.idx = rng.integers(0, n_rows, n_events)
        self.acc = np.zeros((numba.get_num_threads(), row), np.float32)
        self.flop = 2.0 * n**3
        self.adds = (n_events // self.acc.shape[0]) * self.acc.shape[0] * row

    def sgemm(self) -> None:
        """One float32 n x n x n matmul."""
        self.a @ self.b

    def event_adds(self) -> None:
        """``n_events`` random weight rows added into per-thread accumulators."""
        _row_adds(self.w, self.idx, self.acc)


def fan_out(lay) -> float:
    """Synapses driven by one non-zero input of a weight layer."""
    if lay.kind == "conv2d":
        co, _ci, kh, kw = lay.weight.shape
        return co * kh * kw / (lay.stride[0] * lay.stride[1])
    return float(lay.weight.shape[0])


def dense_macs(net) -> list[int]:
    """Dense multiply-adds per sample and step of every weight layer."""
    out = []
    for i in net.weight_layers:
        lay = net.layers[i]
        w = int(np.prod(lay.weight.shape))
        out.append(w * (int(np.prod(net.shapes[i + 1][1:])) if lay.kind == "conv2d" else 1))
    return out
