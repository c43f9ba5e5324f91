"""W4: the shipped Fashion-MNIST VGG-5 on real test images (what the study runs).

Model ``models/fmnist_vgg5.safetensors`` (conv 1->64, IF, avgpool 2, conv 64->128, IF,
conv 128->128, IF, avgpool 2, fc 6272->64, IF, fc 64->10 readout; no biases), loaded
with :func:`l4theory.convert.io.load_network`. Input: the first 64 Fashion-MNIST test
images, ``normalize``-d to [-1, 1], signed encoder, T = 30 and T = 75. Thresholds:
``balance(net, calib, "percentile")`` (99.9th percentile, Rueckauer et al.) on 512 other
test images (indices 1000-1511), used by every engine.

``python -m benchmarks w4 [--rounds N] [--quick]`` prints the side-by-side table of
:mod:`benchmarks.inference` and writes ``benchmarks/results/w4_<stamp>.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from l4theory.convert.balance import balance
from l4theory.convert.datasets import load_fashion_mnist, normalize
from l4theory.convert.io import load_network

from .inference import compare, print_report

MODEL = Path(__file__).resolve().parent.parent / "models" / "fmnist_vgg5.safetensors"
B, STEPS, CALIB = 64, (30, 75), slice(1000, 1512)


def w4_inputs(batch: int = B, n_calib: int = 512):
    """The network, its test batch, labels and percentile thresholds."""
    net = load_network(MODEL)
    ds = load_fashion_mnist("test")
    x = normalize(ds.images[:batch]).reshape(batch, *net.input_shape)
    labels = ds.labels[:batch].astype(int)
    calib = normalize(ds.images[CALIB][:n_calib]).reshape(-1, *net.input_shape)
    th = balance(net, calib, "percentile").thresholds
    return net, x, labels, th, calib


def main(argv=None) -> int:
    """Command line; prints the table and writes the JSON."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.w4", description=__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="batch 16, T = 10 (smoke run)")
    a = p.parse_args(argv)
    batch, steps = (16, (10,)) if a.quick else (B, STEPS)
    net, x, labels, th, calib = w4_inputs(batch, 128 if a.quick else 512)
    res = compare("w4", net, x, labels, th, "signed", steps, rounds=a.rounds, seed=1,
                  calib_x=calib)
    print_report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
