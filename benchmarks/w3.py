"""W3: converted-SNN inference, l4theory's simulator vs a straightforward PyTorch time loop.

Network (the VGG-5 of Rathi et al. 2020 on 32x32x3): conv 3->64 (3x3, pad 1), IF,
avgpool 2, conv 64->128, IF, conv 128->128, IF, avgpool 2, flatten 8192, fc 8192->1024, IF,
fc 1024->10 (membrane readout); no biases; IF, soft reset, thresholds 1. Input: 64 images
of U(0, 1) pixels (seed 0), Bernoulli spikes every step, T = 75. Weights: He-normal (seed
0), then each layer scaled so that the 99.9th percentile of its ReLU-ANN activation on the
batch is 1 (data-based normalisation). Exact fp32 in both implementations.

``python -m benchmarks.w3 [--rounds N] [--quick]`` (or ``python -m benchmarks w3``) times
both side by side (interleaved rounds, median), checks that they agree when fed the same
input spikes, and writes ``benchmarks/results/w3_<stamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

from l4theory.convert.network import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU
from l4theory.convert.simulate import encode_steps, simulate

from .timing import interleaved

RESULTS = Path(__file__).resolve().parent / "results"
B, T = 64, 75


def w3_network(seed: int = 0, batch: int = B):
    """The W3 network and its input batch (weights normalised per layer)."""
    rng = np.random.default_rng(seed)

    def he(*shape):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)

    layers = [Conv2d(he(64, 3, 3, 3), padding=1, name="conv1"), ReLU(), AvgPool2d(2),
              Conv2d(he(128, 64, 3, 3), padding=1, name="conv2"), ReLU(),
              Conv2d(he(128, 128, 3, 3), padding=1, name="conv3"), ReLU(), AvgPool2d(2),
              Flatten(), Linear(he(1024, 8192), name="fc1"), ReLU(),
              Linear(he(10, 1024), name="fc2")]
    net = Network((3, 32, 32), layers, name="w3_vgg5")
    x = rng.uniform(0, 1, size=(batch, 3, 32, 32)).astype(np.float32)
    # data-based normalisation: 99.9th percentile of each ReLU output becomes 1
    for i in net.spiking_layers:
        h = x
        for lay in net.layers[:i + 1]:
            h = lay(h)
        q = float(np.percentile(np.maximum(h, 0), 99.9))
        net.layers[i].weight = (net.layers[i].weight / q).astype(np.float32)
    return net, x


def torch_loop(net: Network, x: np.ndarray, steps: int, spikes=None, seed: int = 0):
    """Straightforward PyTorch CPU time loop (what snntorch/SpikingJelly users run).

    ``spikes`` (shape (steps, B, 3, 32, 32)) replaces the Bernoulli draws when given.
    Returns the readout membrane (B, 10) and the spike rates of the 4 IF layers.
    """
    import torch
    import torch.nn.functional as F

    w = [torch.from_numpy(net.layers[i].weight) for i in net.weight_layers]
    xt = torch.from_numpy(x)
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    v = [None] * 4
    counts = [0.0] * 4
    out = torch.zeros(n, 10)
    with torch.no_grad():
        for t in range(steps):
            s = (torch.from_numpy(spikes[t]) if spikes is not None
                 else (torch.rand(xt.shape, generator=g) < xt).float())
            spk = s
            for k in range(4):
                if k == 0:
                    cur = F.conv2d(spk, w[0], padding=1)
                elif k == 1:
                    cur = F.conv2d(F.avg_pool2d(spk, 2), w[1], padding=1)
                elif k == 2:
                    cur = F.conv2d(spk, w[2], padding=1)
                else:
                    cur = F.linear(F.avg_pool2d(spk, 2).flatten(1), w[3])
                v[k] = cur if v[k] is None else v[k] + cur
                spk = (v[k] >= 1.0).float()
                v[k] = v[k] - spk
                counts[k] += float(spk.mean())
            out += F.linear(spk, w[4])
    return out.numpy(), np.array(counts) / steps


def run(rounds: int = 3, quick: bool = False) -> dict:
    """Time both implementations (interleaved) and check that they agree."""
    import torch

    torch.set_num_threads(numba.get_num_threads())
    batch, steps = (16, 20) if quick else (B, T)
    net, x = w3_network(0, batch)
    impls = {
        "l4theory_numba_time_batched": lambda: simulate(net, x, thresholds=[1.0] * 4,
                                                        steps=steps, encoder="bernoulli",
                                                        batch_size=batch, seed=1),
        "l4theory_torch_backend_time_batched": lambda: simulate(
            net, x, thresholds=[1.0] * 4, steps=steps, encoder="bernoulli", batch_size=batch,
            seed=1, backend="torch"),
        "pytorch_time_loop": lambda: torch_loop(net, x, steps, seed=1),
    }
    times = interleaved(impls, rounds)  # warms up first (JIT, oneDNN primitives)
    med = {k: float(np.median(v)) for k, v in times.items()}
    ms = {k: 1e3 * t / batch for k, t in med.items()}
    # agreement on identical input spikes
    ours = simulate(net, x, thresholds=[1.0] * 4, steps=steps, encoder="bernoulli", seed=1)
    spikes = encode_steps(x, "bernoulli", 1, np.arange(batch), 0, steps).reshape(
        steps, batch, 3, 32, 32)
    ref, rates_ref = torch_loop(net, x, steps, spikes=spikes)
    rel = float(np.abs(ours.readout - ref).max() / np.abs(ref).max())
    ours_t = simulate(net, x, thresholds=[1.0] * 4, steps=steps, encoder="bernoulli", seed=1,
                      backend="torch")
    rel_t = float(np.abs(ours_t.readout - ref).max() / np.abs(ref).max())
    agree = float(np.mean(ours.readout.argmax(1) == ref.argmax(1)))
    return {
        "batch": batch, "steps": steps, "rounds": rounds, "times_s": times, "median_s": med,
        "ms_per_image": ms,
        "speedup_vs_pytorch": {k: med["pytorch_time_loop"] / t for k, t in med.items()},
        "macs_per_image_step": int(sum(
            np.prod(net.layers[i].weight.shape) * (np.prod(net.shapes[i + 1][1:])
                                                   if net.layers[i].kind == "conv2d" else 1)
            for i in net.weight_layers)),
        "spike_rates": ours.spike_rates.tolist(), "spike_rates_pytorch": rates_ref.tolist(),
        "readout_max_rel_diff": rel, "argmax_agreement": agree,
        "readout_max_rel_diff_torch_backend": rel_t,
        "argmax_agreement_torch_backend": float(np.mean(ours_t.readout.argmax(1)
                                                        == ref.argmax(1))),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "threads": numba.get_num_threads(), "torch": torch.__version__,
                    "numpy": np.__version__, "numba": numba.__version__,
                    "python": sys.version.split()[0],
                    "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None},
    }


def main(argv=None) -> int:
    """Command line; prints the table and writes the JSON."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.w3", description=__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="batch 16, T = 20 (smoke run)")
    a = p.parse_args(argv)
    res = run(a.rounds, a.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"w3_{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(res, indent=1))
    print(f"W3 (batch {res['batch']}, T = {res['steps']}), median of {res['rounds']} rounds:")
    for k, v in res["ms_per_image"].items():
        print(f"  {k:32s} {v:8.1f} ms/image")
    for k, v in res["speedup_vs_pytorch"].items():
        print(f"  speed-up of {k} vs the PyTorch loop: x{v:.2f}")
    print(f"  same input spikes: readout max rel. diff {res['readout_max_rel_diff']:.2e}, "
          f"argmax agreement {res['argmax_agreement']:.3f}; spike rates "
          f"{np.round(res['spike_rates'], 3)} (PyTorch {np.round(res['spike_rates_pytorch'], 3)})")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
