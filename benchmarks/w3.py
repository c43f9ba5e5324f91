"""W3: converted-SNN inference on a random-weight VGG-5, l4theory's simulator vs peers.

Network (the VGG-5 of Rathi et al. 2020 on 32x32x3): conv 3->64 (3x3, pad 1), IF,
avgpool 2, conv 64->128, IF, conv 128->128, IF, avgpool 2, flatten 8192, fc 8192->1024, IF,
fc 1024->10 (membrane readout); no biases; IF, soft reset, thresholds 1. Input: 64 images
of U(0, 1) pixels (seed 0), Bernoulli spikes every step, T = 75. Weights: He-normal (seed
0), then each layer scaled so that the 99.9th percentile of its ReLU-ANN activation on the
batch is 1 (data-based normalisation). Exact fp32 in both implementations.

``python -m benchmarks.w3 [--rounds N] [--quick]`` (or ``python -m benchmarks w3``) times
the engines of :mod:`benchmarks.inference` side by side (interleaved rounds, median),
checks that they agree when fed the same input spikes, prints the floors, and writes
``benchmarks/results/w3_<stamp>.json``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from l4theory.convert.network import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU

from .inference import compare, print_report

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


def main(argv=None) -> int:
    """Command line; prints the table and writes the JSON."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.w3", description=__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="batch 16, T = 20 (smoke run)")
    a = p.parse_args(argv)
    batch, steps = (16, 20) if a.quick else (B, T)
    net, x = w3_network(0, batch)
    res = compare("w3", net, x, None, [1.0] * len(net.spiking_layers), "bernoulli", [steps],
                  rounds=a.rounds, seed=1)
    print_report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
