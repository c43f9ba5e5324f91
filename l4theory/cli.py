"""The ``l4theory`` command: inspect, evaluate, balance and adjust exported networks.

Examples::

    l4theory inspect models/fmnist_vgg5.safetensors
    l4theory accuracy models/fmnist_vgg5.onnx
    l4theory balance models/fmnist_vgg5.safetensors --method spike --n-calib 64 --steps 50
    l4theory adjust models/fmnist_vgg5.safetensors --r-s 1 -o vgg5_l4.safetensors

Errors print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]


class CLIError(Exception):
    """An error reported as one line on stderr."""


def _load_data(spec: str, split: str):
    from .convert import datasets

    return datasets.load_named(spec, split)


def _inputs(args, net, split, n=None):
    from .convert import datasets

    ds = _load_data(args.data, split)
    x = datasets.normalize(ds.images, args.pixels)
    if x.shape[1:] != net.input_shape:
        raise CLIError(f"the data have shape {x.shape[1:]} per sample but the network expects "
                       f"{net.input_shape}")
    labels = ds.labels
    if n is not None and n < len(x):
        idx = np.sort(np.random.default_rng(args.seed).choice(len(x), n, replace=False))
        x, labels = x[idx], labels[idx]
    return x, labels


def _load(args):
    from .convert.io import load_network

    return load_network(args.model, spec=args.spec)


def _row_norms(w: np.ndarray, p: int) -> np.ndarray:
    return (np.abs(w.reshape(w.shape[0], -1).astype(np.float64)) ** p).sum(axis=1) ** (1.0 / p)


def cmd_inspect(args) -> int:
    net = _load(args)
    print(net.describe())
    print(f"parameters: {net.n_parameters()}  spiking layers: {net.spiking_layers}")
    print("per-layer norms of each output neuron's weights (min / mean / max):")
    for i in net.weight_layers:
        w = net.layers[i].weight
        l2, l4 = _row_norms(w, 2), _row_norms(w, 4)
        print(f"  [{i:2d}] {net.layers[i].name:<20} n_out={w.shape[0]:<5} "
              f"L2 {l2.min():.4g} / {l2.mean():.4g} / {l2.max():.4g}   "
              f"L4 {l4.min():.4g} / {l4.mean():.4g} / {l4.max():.4g}   "
              f"mean|w| {np.abs(w).mean():.4g}")
    hist = net.metadata.get("history")
    for k, h in enumerate(hist or []):
        brief = {key: val for key, val in h.items() if key != "scales"} \
            if isinstance(h, dict) else h
        print(f"history[{k}]: {json.dumps(brief)}")
    return 0


def cmd_accuracy(args) -> int:
    net = _load(args)
    x, labels = _inputs(args, net, args.split, args.n)
    print(f"ANN accuracy on {args.data} {args.split} ({len(x)} samples): "
          f"{net.accuracy(x, labels):.4f}")
    return 0


def _balance(args, net):
    from .convert.balance import balance

    n = args.n_calib if args.n_calib is not None else (64 if args.method == "spike" else 500)
    if n < 1:
        raise CLIError(f"--n-calib must be >= 1, got {n}")
    x, _ = _inputs(args, net, "train", n)
    return x, balance(net, x, args.method, percentile=args.percentile, scale=args.scale,
                      steps=args.steps, encoder=args.encoder, rng=args.seed)


def cmd_balance(args) -> int:
    net = _load(args)
    _, res = _balance(args, net)
    print(res.summary())
    if args.json:
        out = {"method": res.method, "layers": list(res.layers),
               "thresholds": res.thresholds.tolist(), "lambdas": res.lambdas.tolist(),
               "bias_scales": res.bias_scales.tolist(),
               "readout_bias_scale": res.readout_bias_scale, "scale": res.scale,
               "n_samples": res.n_samples, "params": res.params,
               "stats": {k: np.asarray(v).tolist() for k, v in res.stats.items()}}
        path = Path(args.json)
        if path.exists():
            raise CLIError(f"{path} exists; choose another name")
        path.write_text(json.dumps(out, indent=2) + "\n")
    return 0


def cmd_adjust(args) -> int:
    from .convert.io import _format_of, save_network
    from .convert.sweep import adjusted_network

    src, out = Path(args.model), Path(args.output)
    fmt_in, fmt_out = _format_of(src, None), _format_of(out, None)
    if fmt_in != fmt_out:
        raise CLIError(f"the adjusted model keeps the input format ({fmt_in}); name the output "
                       f"*{src.suffix}, not {out.name}")
    if out.exists() and not args.overwrite:
        raise CLIError(f"{out} exists; pass --overwrite to replace it")
    net = _load(args)
    x, res_bal = _balance(args, net)
    v_th0 = float(args.v_th0) if args.v_th0 is not None else float(res_bal.thresholds[0])
    adjusted, res = adjusted_network(net, x, v_th0, args.r_s, encoder=args.encoder,
                                     method=args.adjust_method, strict=args.strict)
    first = net.weight_layers[0]
    layer = net.layers[first]
    summary = res.summary()
    scales = res.scales
    provenance = {
        "method": res.method, "r_s": summary["r_s"], "v_th0": v_th0,
        "layer": layer.name, "balance": res_bal.method, "balance_scale": res_bal.scale,
        "encoder": args.encoder, "pixels": args.pixels, "n_calib": len(x), "seed": args.seed,
        "data": args.data, "summary": summary, "c": float(res.c),
        "scales": [float(s) for s in scales], "guarded": int(res.n_guarded),
        "source": src.name, "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
        "tool": "l4theory adjust",
    }
    save_network(adjusted, out, overwrite=args.overwrite, provenance=provenance)
    print(f"adjusted layer {first} ('{layer.name}', {res.s.size} neurons) with r_s={args.r_s:g}, "
          f"v_th0={v_th0:.6g} ({res_bal.method} balancing on {len(x)} training samples)")
    print(f"  s     min {res.s.min():.4f}  mean {res.s.mean():.4f}  max {res.s.max():.4f}")
    print(f"  s_hat min {res.s_hat.min():.4f}  mean {res.s_hat.mean():.4f}  "
          f"max {res.s_hat.max():.4f}")
    print(f"  c {res.c:.4f}; total scale c*s_hat min {scales.min():.4f}  "
          f"mean {scales.mean():.4f}  max {scales.max():.4f}")
    print(f"  guarded (v_hat <= 0, left unadjusted): {res.n_guarded}")
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``l4theory`` command."""
    p = argparse.ArgumentParser(
        prog="l4theory",
        description="Inspect, evaluate, threshold-balance and L4-adjust exported ReLU "
                    "networks (safetensors, npz, ONNX).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def model_args(sp):
        sp.add_argument("model", metavar="MODEL",
                        help="weights file: .safetensors, .npz (spec embedded or "
                             "<stem>.spec.json) or .onnx")
        sp.add_argument("--spec", help="layer spec JSON file for safetensors/npz without one")

    def data_args(sp):
        sp.add_argument("--data", default="fashion-mnist",
                        help="'fashion-mnist' (Debian package dataset-fashion-mnist or "
                             "$L4THEORY_FASHION_MNIST), a folder of IDX files, 'mnist:FOLDER' "
                             "or 'cifar10:FOLDER' (default: fashion-mnist)")
        sp.add_argument("--pixels", choices=["signed", "unit"], default="signed",
                        help="pixel scaling: signed = [-1, 1] (the shipped models), "
                             "unit = [0, 1] (default: signed)")
        sp.add_argument("--seed", type=int, default=0,
                        help="seed for the calibration subset and spike trains (default 0)")

    def balance_args(sp):
        sp.add_argument("--method", choices=["max", "percentile", "spike"], default="max",
                        help="threshold balancing method (default: max)")
        sp.add_argument("--n-calib", type=int, default=None,
                        help="calibration images drawn from the training set (default 500; "
                             "64 for --method spike, which simulates every step)")
        sp.add_argument("--percentile", type=float, default=99.9,
                        help="percentile for --method percentile (default 99.9)")
        sp.add_argument("--scale", type=float, default=None,
                        help="factor on every threshold (default 1; 0.7 for spike)")
        sp.add_argument("--steps", type=int, default=100,
                        help="time steps for --method spike (default 100)")
        sp.add_argument("--encoder", choices=["signed", "bernoulli", "constant"],
                        default="signed", help="input spike encoder (default: signed)")

    sp = sub.add_parser("inspect", help="layers, shapes and per-neuron L2/L4 norm statistics",
                        description="Print the layers, their shapes and, per weight layer, "
                                    "min/mean/max of the L2 and L4 norms of each output "
                                    "neuron's weights.")
    model_args(sp)
    sp.set_defaults(func=cmd_inspect)

    sp = sub.add_parser("accuracy", help="ANN accuracy with the NumPy forward pass",
                        description="ANN accuracy of MODEL on a dataset split.")
    model_args(sp)
    data_args(sp)
    sp.add_argument("--split", choices=["train", "test"], default="test")
    sp.add_argument("-n", type=int, default=None, help="random subset of this many samples")
    sp.set_defaults(func=cmd_accuracy)

    sp = sub.add_parser("balance", help="per-layer firing thresholds from training data",
                        description="Threshold balancing on a calibration batch from the "
                                    "training set (max: Diehl et al. 2015; percentile: "
                                    "Rueckauer et al. 2017; spike: Rathi et al. 2020).")
    model_args(sp)
    data_args(sp)
    balance_args(sp)
    sp.add_argument("--json", help="also write the result to this (new) JSON file")
    sp.set_defaults(func=cmd_balance)

    sp = sub.add_parser("adjust", help="apply the L4 adjustment to the first layer",
                        description="Balance the thresholds, then apply the L4 adjustment "
                                    "(Eqs. 6-9) to the first layer with the first layer's "
                                    "balanced threshold as v_th0, and write the adjusted "
                                    "model in the input's format with the provenance in "
                                    "its metadata.")
    model_args(sp)
    data_args(sp)
    balance_args(sp)
    sp.add_argument("--r-s", type=float, required=True, dest="r_s",
                    help="smoothing ratio r_s >= 0 of Eqs. 8 and 9 (inf = no change)")
    sp.add_argument("-o", "--output", required=True, help="output file (same format as MODEL)")
    sp.add_argument("--v-th0", type=float, default=None, dest="v_th0",
                    help="use this first-layer threshold instead of the balanced one")
    sp.add_argument("--adjust-method", choices=["l4", "exact"], default="l4",
                    help="spread in Eq. 8: the L4 norm (paper) or the exact current std")
    sp.add_argument("--strict", action="store_true",
                    help="fail if any neuron has v_hat <= 0 instead of leaving it unadjusted")
    sp.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    sp.set_defaults(func=cmd_adjust)

    from .convert.sweep import add_sweep_parser

    add_sweep_parser(sub)
    return p


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 success, 2 error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stdout = None
        return 0
    except (CLIError, ValueError, OSError, ImportError, KeyError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"l4theory {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
