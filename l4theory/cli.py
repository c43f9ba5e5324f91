"""The ``l4theory`` command: inspect, evaluate, balance, adjust, simulate and sweep networks.

Examples::

    l4theory inspect models/fmnist_vgg5.safetensors
    l4theory accuracy models/fmnist_vgg5.onnx
    l4theory balance models/fmnist_vgg5.safetensors --method spike --n-calib 64 --steps 50
    l4theory adjust models/fmnist_vgg5.safetensors --r-s 1 -o vgg5_l4.safetensors
    l4theory sweep models/fmnist_mlp.safetensors --leak 0.9 --workers 2 -o sweep.json
    l4theory simulate models/fmnist_resnet.safetensors --sim-steps 250 --n-test 100 --r-s 1

Every subcommand checks its arguments (``check_*``) before it loads a model or data, so a
bad option fails at once. Errors print one line on stderr and exit with status 2, and name
the option the user typed (``--data``, ``--spec``, ``--overwrite``...), never a Python
argument. ``l4theory --version`` prints the version.

``l4theory inspect MODEL --json`` prints one JSON object (schema ``"l4theory.inspect/1"``;
keys are only ever added under the same schema name)::

    {"schema": "l4theory.inspect/1", "l4theory_version": str,
     "model": {"file": str, "format": "safetensors" | "npz" | "onnx", "sha256": str},
     "network": {"name": str, "input_shape": [int], "output_shape": [int],
                 "n_parameters": int, "weight_layers": [int], "spiking_layers": [int]},
     "layers": [{"index": int, "kind": str, "name": str, "output_shape": [int],
                 "n_parameters": int, "weight_shape": [int] | null, "has_bias": bool,
                 "norms": null | {"n_out": int, "l2": {"min", "mean", "max"},
                                  "l4": {"min", "mean", "max"}, "mean_abs_weight": float}}],
     "history": [object]}

``norms`` summarise the L2 and L4 norms of each output neuron's weights (a row of a
linear layer, a kernel flattened over ``(C_in, kh, kw)``), computed with
:func:`l4theory.theory.lp_norm`; ``history`` is the model's adjustment history as stored.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

__all__ = ["add_sweep_parser", "build_parser", "cmd_sweep", "main"]


class CLIError(Exception):
    """An error reported as one line on stderr."""


#: Library wording -> what the command line calls the same thing. The library's errors name
#: Python arguments (``spec=``, ``path``); the command's must name its options.
_CLI_WORDS = (
    ("pass spec=", "pass --spec FILE"),
    ("spec= applies to", "--spec applies to"),
    ("pass format=", "name the file *.safetensors, *.npz or *.onnx"),
    ("pass overwrite=True to replace it", "pass --overwrite to replace it"),
    ("strict=True:", "--strict:"),
    ("pass it as `path`", "pass it as --data FOLDER"),
    ("as `path`", "as --data mnist:FOLDER"),
    ("pass the cifar-10-batches-bin folder.", "pass the cifar-10-batches-bin folder as "
                                              "--data cifar10:FOLDER."),
)


def _cli_words(msg: str) -> str:
    """``msg`` with the library's argument names replaced by the command's options (idempotent)."""
    for lib, cli in _CLI_WORDS:
        msg = msg.replace(lib, cli)
    return msg


def _load_data(spec: str, split: str):
    from .convert import datasets

    try:
        return datasets.load_named(spec, split)
    except datasets.DatasetNotFoundError as exc:
        msg = _cli_words(str(exc))
        raise CLIError(msg if msg.startswith("--data") else f"--data {spec!r}: {msg}") from None


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
    from .theory.norms import lp_norm

    return lp_norm(w.reshape(w.shape[0], -1).astype(np.float64), p, axis=1)


# ------------------------------------------------------------------ argument checks
# Each check runs before the handler, so no model or data is loaded for a bad option.


def _need(cond: bool, option: str, value, what: str) -> None:
    if not cond:
        raise CLIError(f"{option} {value!r}: {what}")


def _check_model(args) -> None:
    from .convert.io import FORMATS

    _need(Path(args.model).is_file(), "MODEL", args.model, "no such file")
    suffix = Path(args.model).suffix.lower()
    _need(suffix in FORMATS, "MODEL", args.model,
          f"cannot tell the format from the suffix {suffix!r}; name the file "
          f"{', '.join('*' + k for k in FORMATS)}")
    if getattr(args, "spec", None) is not None:
        _need(Path(args.spec).is_file(), "--spec", args.spec, "no such file")
        _need(FORMATS[suffix] != "onnx", "--spec", args.spec,
              "applies to safetensors/npz models; an ONNX file carries its own graph")


def _check_data(args) -> None:
    _check_model(args)
    _need(args.seed >= 0, "--seed", args.seed, "must be >= 0")


def _check_accuracy(args) -> None:
    _check_data(args)
    _need(args.n is None or args.n >= 1, "-n", args.n, "must be >= 1")


def _check_balance(args) -> None:
    _check_data(args)
    _need(args.n_calib is None or args.n_calib >= 1, "--n-calib", args.n_calib, "must be >= 1")
    _need(0 < args.percentile <= 100, "--percentile", args.percentile, "must be in (0, 100]")
    _need(args.scale is None or (math.isfinite(args.scale) and args.scale > 0), "--scale",
          args.scale, "must be a finite number > 0")
    _need(args.steps >= 1, "--steps", args.steps, "must be >= 1")
    if getattr(args, "json", None):
        _need(not Path(args.json).exists(), "--json", args.json, "exists; choose another name")


def _check_adjust(args) -> None:
    _check_balance(args)
    _need(args.r_s >= 0, "--r-s", args.r_s, "must be >= 0 (inf = no change)")
    _need(args.v_th0 is None or (math.isfinite(args.v_th0) and args.v_th0 > 0), "--v-th0",
          args.v_th0, "must be a finite number > 0")
    src, out = Path(args.model), Path(args.output)
    from .convert.io import format_of

    fmt_in, fmt_out = format_of(src), format_of(out)
    if fmt_in != fmt_out:
        raise CLIError(f"the adjusted model keeps the input format ({fmt_in}); name the output "
                       f"*{src.suffix}, not {out.name}")
    if out.exists() and not args.overwrite:
        raise CLIError(f"{out} exists; pass --overwrite to replace it")


def _stats(v: np.ndarray) -> dict:
    return {"min": float(v.min()), "mean": float(v.mean()), "max": float(v.max())}


def inspect_json(net, path) -> dict:
    """The ``l4theory inspect --json`` object of a loaded network (schema in the module doc).

    Parameters
    ----------
    net : l4theory.convert.network.Network
        The network.
    path : str or os.PathLike
        The file it was loaded from (its name, format and sha256 are reported).

    Returns
    -------
    dict
        JSON-serialisable; see the module docstring for the keys.
    """
    from . import __version__
    from ._provenance import file_sha256
    from .convert.io import format_of

    layers = []
    for i, lay in enumerate(net.layers):
        w = getattr(lay, "weight", None) if i in net.weight_layers else None
        b = getattr(lay, "bias", None) if w is not None else None
        norms = None
        if w is not None:
            norms = {"n_out": int(w.shape[0]), "l2": _stats(_row_norms(w, 2)),
                     "l4": _stats(_row_norms(w, 4)), "mean_abs_weight": float(np.abs(w).mean())}
        layers.append({
            "index": i, "kind": lay.kind, "name": lay.name,
            "output_shape": list(net.shapes[i + 1]),
            "n_parameters": 0 if w is None else int(w.size + (0 if b is None else b.size)),
            "weight_shape": None if w is None else list(w.shape), "has_bias": b is not None,
            "norms": norms,
        })
    path = Path(path)
    return {
        "schema": "l4theory.inspect/1", "l4theory_version": __version__,
        "model": {"file": path.name, "format": format_of(path), "sha256": file_sha256(path)},
        "network": {"name": net.name, "input_shape": list(net.input_shape),
                    "output_shape": list(net.output_shape), "n_parameters": int(net.n_parameters()),
                    "weight_layers": list(net.weight_layers),
                    "spiking_layers": list(net.spiking_layers)},
        "layers": layers,
        "history": list(net.metadata.get("history") or []),
    }


def cmd_inspect(args) -> int:
    net = _load(args)
    if args.json:
        print(json.dumps(inspect_json(net, args.model), indent=2))
        return 0
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
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


def cmd_adjust(args) -> int:
    from ._provenance import file_sha256
    from .adjust import adjusted_network
    from .convert.io import save_network

    src, out = Path(args.model), Path(args.output)
    net = _load(args)
    x, res_bal = _balance(args, net)
    v_th0 = float(args.v_th0) if args.v_th0 is not None else float(res_bal.thresholds[0])
    res = adjusted_network(net, x, v_th0, args.r_s, encoder=args.encoder,
                           method=args.adjust_method, strict=args.strict)
    adjusted, first = res.network, res.layer
    layer = net.layers[first]
    summary = res.summary()
    scales = res.row_factors
    provenance = {
        "method": res.method, "r_s": summary["r_s"], "v_th0": v_th0,
        "layer": layer.name, "balance": res_bal.method, "balance_scale": res_bal.scale,
        "encoder": args.encoder, "pixels": args.pixels, "n_calib": len(x), "seed": args.seed,
        "data": args.data, "summary": summary, "c": float(res.c),
        "scales": [float(s) for s in scales], "guarded": int(res.n_guarded),
        "source": src.name, "source_sha256": file_sha256(src),
        "tool": "l4theory adjust",
        # the balanced thresholds, one per spiking layer (to_torch stores them as buffers)
        "spiking_layers": [int(i) for i in res_bal.layers],
        "thresholds": [float(t) for t in res_bal.thresholds],
        "bias_scales": [float(b) for b in res_bal.bias_scales],
        "readout_bias_scale": float(res_bal.readout_bias_scale),
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


# --------------------------------------------------------------------------- simulate

#: Steps at which ``l4theory simulate`` prints the accuracy (those <= --sim-steps, and T).
_REPORT_STEPS = (10, 25, 50, 75, 100, 150, 200, 250, 500, 1000)


def _check_simulate(args) -> None:
    _check_balance(args)
    _need(args.sim_steps >= 1, "--sim-steps", args.sim_steps, "must be >= 1")
    _need(args.n_test >= 1, "--n-test", args.n_test, "must be >= 1")
    _need(0 < args.leak <= 1, "--leak", args.leak, "must be in (0, 1]")
    _need(args.batch_size >= 1, "--batch-size", args.batch_size, "must be >= 1")
    try:
        args.r_s_values = _floats(args.r_s)
    except ValueError as exc:
        raise CLIError(f"--r-s: {exc}") from None
    _need(all(r >= 0 for r in args.r_s_values), "--r-s", args.r_s, "values must be >= 0")
    from .convert.simulate import _check_device

    try:
        _check_device(args.backend, args.device)
    except ValueError as exc:
        raise CLIError(f"--device {args.device!r}: {exc}") from None
    if args.json:
        _need(not Path(args.json).exists(), "--json", args.json, "exists; choose another name")


def cmd_simulate(args) -> int:
    from .adjust import adjusted_network
    from .convert.simulate import simulate

    net = _load(args)
    x_cal, bal = _balance(args, net)
    x, labels = _inputs(args, net, "test", args.n_test)
    arms = [("baseline", net)]
    for r in args.r_s_values:
        arms.append((f"l4 r_s={r:g}", adjusted_network(net, x_cal, float(bal.thresholds[0]), r,
                                                        encoder=args.encoder).network))
    curves = {}
    for name, arm in arms:
        res = simulate(arm, x, labels, thresholds=bal.thresholds, steps=args.sim_steps,
                       alpha=args.leak, reset=args.reset, encoder=args.encoder,
                       semantics=args.semantics, seed=args.seed, batch_size=args.batch_size,
                       bias_scales=bal.bias_scales, readout_bias_scale=bal.readout_bias_scale,
                       backend=args.backend, device=args.device)
        curves[name] = res.accuracy
    ann = net.accuracy(x, labels)
    steps = sorted({t for t in _REPORT_STEPS if t <= args.sim_steps} | {args.sim_steps})
    print(f"{net.name}: {len(x)} test images (seed {args.seed}), ANN accuracy {ann:.4f}; "
          f"{bal.method} balancing on {bal.n_samples} training images; leak {args.leak:g}, "
          f"{args.reset} reset, {args.encoder} encoder, {args.semantics} semantics, "
          f"backend {args.backend} on {args.device}")
    print("T".rjust(6) + "".join(f"{name:>16}" for name in curves))
    for t in steps:
        print(f"{t:>6}" + "".join(f"{acc[t - 1]:>16.4f}" for acc in curves.values()))
    if args.json:
        out = {"model": Path(args.model).name, "n_test": len(x), "ann_accuracy": ann,
               "balance": bal.method, "n_calib": bal.n_samples, "thresholds": bal.thresholds.tolist(),
               "steps": args.sim_steps, "leak": args.leak, "reset": args.reset,
               "encoder": args.encoder, "semantics": args.semantics, "seed": args.seed,
               "backend": args.backend, "device": args.device,
               "accuracy": {k: v.tolist() for k, v in curves.items()}}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


def add_simulate_parser(sub, model_args, data_args, balance_args) -> None:
    """``l4theory simulate``: accuracy vs time steps of the baseline and L4-adjusted SNN."""
    from .convert.simulate import BACKENDS, RESETS, SEMANTICS

    sp = sub.add_parser("simulate", help="spiking accuracy vs time steps (baseline and L4)",
                        description="Balance the thresholds, optionally L4-adjust the first "
                                    "layer (--r-s), simulate the converted network on a random "
                                    "subset of the test set and print the accuracy vs T.")
    model_args(sp)
    data_args(sp)
    balance_args(sp)
    sp.add_argument("--sim-steps", type=int, default=250, help="time steps T (default 250)")
    sp.add_argument("--n-test", type=int, default=100, help="test images (default 100)")
    sp.add_argument("--r-s", dest="r_s", default="",
                    help="also simulate the L4-adjusted network at these r_s (comma-separated)")
    sp.add_argument("--leak", type=float, default=1.0, help="leak factor alpha (default 1: IF)")
    sp.add_argument("--reset", choices=list(RESETS), default="soft")
    sp.add_argument("--semantics", choices=list(SEMANTICS), default="project")
    sp.add_argument("--batch-size", type=int, default=64)
    sp.add_argument("--backend", choices=list(BACKENDS), default="numpy",
                    help="linear-algebra backend (torch: PyTorch convolutions)")
    sp.add_argument("--device", default="cpu",
                    help="torch device for --backend torch: cpu (default) or cuda")
    sp.add_argument("--json", help="also write the curves to this (new) JSON file")
    sp.set_defaults(func=cmd_simulate, check=_check_simulate)


# --------------------------------------------------------------------------- sweep

#: ``l4theory sweep`` options and the SweepSettings fields they set.
_SWEEP_OPTIONS = {"steps": "--steps", "alpha": "--leak", "reset": "--reset",
                  "encoder": "--encoder", "semantics": "--semantics", "scales": "--scales",
                  "r_s": "--r-s", "n_calib": "--n-calib", "n_select": "--n-select",
                  "n_test": "--n-test", "seeds": "--seeds", "balance_method": "--balance",
                  "subset_seed": "--seed", "batch_size": "--batch-size", "backend": "--backend"}
#: Attribute of the parsed arguments where it differs from the field name.
_ARG = {"alpha": "leak", "balance_method": "balance", "subset_seed": "seed"}


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None


def sweep_settings(args):
    """The :class:`~l4theory.experiment.sweep.SweepSettings` of parsed ``l4theory sweep`` args.

    Raises
    ------
    CLIError
        Naming the option and its value when a setting is invalid.
    """
    from .experiment.sweep import SweepSettings

    values = {"steps": args.steps, "alpha": args.leak, "reset": args.reset,
              "encoder": args.encoder, "semantics": args.semantics,
              "scales": args.scales, "r_s": args.r_s, "n_calib": args.n_calib,
              "n_select": args.n_select, "n_test": None if args.n_test == 0 else args.n_test,
              "seeds": args.seeds, "balance_method": args.balance, "subset_seed": args.seed,
              "batch_size": args.batch_size, "backend": args.backend}
    for name in ("scales", "r_s"):
        try:
            values[name] = _floats(values[name])
        except ValueError as exc:
            raise CLIError(f"{_SWEEP_OPTIONS[name]}: {exc}") from None
    _need(args.seeds >= 1, "--seeds", args.seeds, "must be >= 1 (the number of seeds)")
    values["seeds"] = list(range(args.seeds))
    for name, value in values.items():  # one field at a time: the error names its option
        try:
            SweepSettings(**{name: value})
        except ValueError as exc:
            raise CLIError(f"{_SWEEP_OPTIONS[name]} {getattr(args, _ARG.get(name, name))!r}: "
                           f"{exc}") from None
    return SweepSettings(**values)


def _check_sweep(args) -> None:
    from .experiment.executors import check_dist_options

    _check_model(args)
    sweep_settings(args)
    if args.output is not None:
        _need(not Path(args.output).exists(), "-o", args.output, "exists; choose another name")
    _need(args.block_size is None or args.block_size >= 1, "--block-size", args.block_size,
          "must be >= 1")
    try:
        check_dist_options(args.workers, args.scheduler)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def add_sweep_parser(subparsers) -> None:
    """Add the ``sweep`` subcommand to the ``l4theory`` argument parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object returned by ``parser.add_subparsers()``.
    """
    from .experiment.sweep import _BACKENDS, _ENCODERS, SEMANTICS

    sp = subparsers.add_parser(
        "sweep", help="threshold-scale x r_s sweep: select on training data, test with CIs",
        description="Balance thresholds on training images, select the best threshold scale "
                    "(baseline) and the best (r_s, scale) of the L4-adjusted network on a "
                    "held-out part of the training set, then evaluate both on the test set "
                    "with several input spike seeds; prints accuracies with 95%% CIs and the "
                    "paired difference, and writes a JSON file with provenance. Results do "
                    "not depend on --block-size or --workers.")
    sp.add_argument("model", metavar="MODEL", help="weights file (.safetensors, .npz, .onnx)")
    sp.add_argument("--spec", help="layer spec JSON for safetensors/npz without one")
    sp.add_argument("--data", default="fashion-mnist",
                    help="'fashion-mnist', a folder of IDX files, 'mnist:FOLDER' or "
                         "'cifar10:FOLDER' (default: fashion-mnist)")
    sp.add_argument("--pixels", choices=["signed", "unit"], default="signed",
                    help="pixel scaling (default: signed = [-1, 1])")
    sp.add_argument("--leak", type=float, default=1.0,
                    help="leak factor alpha per step in (0, 1]; 1 = IF (default 1)")
    sp.add_argument("--reset", choices=["soft", "hard"], default="soft")
    sp.add_argument("--semantics", choices=list(SEMANTICS), default="project",
                    help="simulator semantics: project (fire in the same step) or rathi "
                         "(the paper's code: one step of delay per layer) (default project)")
    sp.add_argument("--steps", type=int, default=75, help="time steps T (default 75)")
    sp.add_argument("--encoder", choices=list(_ENCODERS), default="signed")
    sp.add_argument("--scales", default="0.6,0.8,1.0",
                    help="threshold scales, comma-separated (default 0.6,0.8,1.0)")
    sp.add_argument("--r-s", dest="r_s", default="0.5,1,2,4",
                    help="r_s values, comma-separated (default 0.5,1,2,4)")
    sp.add_argument("--balance", choices=["max", "percentile", "spike"], default="max")
    sp.add_argument("--n-calib", type=int, default=500)
    sp.add_argument("--n-select", type=int, default=200)
    sp.add_argument("--n-test", type=int, default=1000, help="test subset size (0 = all)")
    sp.add_argument("--seeds", type=int, default=3, help="input spike seeds on the test set")
    sp.add_argument("--seed", type=int, default=0, help="seed of the subset draws")
    sp.add_argument("--batch-size", type=int, default=64)
    sp.add_argument("--backend", choices=list(_BACKENDS), default="numpy",
                    help="linear-algebra backend (torch: PyTorch CPU convolutions)")
    add_dist_arguments(sp)
    sp.add_argument("-o", "--output", help="JSON results file (must not exist)")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.set_defaults(func=cmd_sweep, check=_check_sweep)


def add_dist_arguments(sp) -> None:
    """``--workers``, ``--scheduler``, ``--block-size``, ``--cache`` (shared with validation)."""
    sp.add_argument("--workers", type=int, default=None,
                    help="run on a Dask LocalCluster of N processes (needs the 'dist' extra; "
                         "default: serial, no Dask)")
    sp.add_argument("--scheduler", default=None,
                    help="run on an existing Dask scheduler at this address")
    sp.add_argument("--block-size", type=int, default=None, dest="block_size",
                    help="images per task (default: a whole subset per task serially, "
                         f"{DIST_BLOCK} with --workers/--scheduler)")
    sp.add_argument("--cache", default=None,
                    help="folder of the resumable task cache (finished simulations are "
                         "not recomputed)")


#: Default images per task on Dask: at least the batch size, and about 0.5 s of work per
#: task for the MLP at T = 75, so that the per-task overhead stays under 5% (docs/conversion.md).
DIST_BLOCK = 256


def block_size(args) -> int | None:
    """``--block-size``, or the Dask default when running distributed."""
    if args.block_size is not None:
        return args.block_size
    return DIST_BLOCK if (args.workers is not None or args.scheduler is not None) else None


def cmd_sweep(args) -> int:
    """Handler of ``l4theory sweep``; returns the exit status."""
    from .experiment.sweep import sweep_model, write_json

    settings = sweep_settings(args)
    (res,), prov, _ = sweep_model(
        args.model, settings, data=args.data, pixels=args.pixels, spec=args.spec,
        block_size=block_size(args), workers=args.workers, scheduler=args.scheduler,
        cache=args.cache, progress=None if args.no_progress else "sweep")
    s = res.summary()

    def pct(d):
        return f"{100 * d['mean']:.2f}% [{100 * d['lo']:.2f}, {100 * d['hi']:.2f}]"

    print(f"ANN accuracy (test subset, {res.params['n_test']} images): "
          f"{100 * res.ann_accuracy:.2f}%")
    print(f"baseline  (scale {res.best_scale_baseline:g}): {pct(s['baseline'])}")
    print(f"adjusted  (scale {res.best_scale_adjusted:g}, r_s {res.best_r_s:g}): "
          f"{pct(s['adjusted'])}")
    print(f"difference adjusted - baseline: {100 * s['difference']['mean']:+.2f} points "
          f"[{100 * s['difference']['lo']:+.2f}, {100 * s['difference']['hi']:+.2f}]; "
          f"gap {100 * s['gap']:.2f} points, recovered {s['recovered']:.2f}")
    if args.output is not None:
        out = Path(args.output)
        if out.exists():
            raise CLIError(f"{out} exists; choose another name")
        write_json(out, {**res.to_json(), "provenance": prov}, overwrite=False)
        print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``l4theory`` command.

    Longer than the house's ~80-line guide on purpose: it is the declarative table of every
    subcommand's options, one ``add_argument`` per line, with no logic to split out.
    """
    p = argparse.ArgumentParser(
        prog="l4theory",
        description="Inspect, evaluate, threshold-balance and L4-adjust exported ReLU "
                    "networks (safetensors, npz, ONNX).",
    )
    from . import __version__

    p.add_argument("--version", action="version", version=f"l4theory {__version__}")
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
    sp.add_argument("--json", action="store_true",
                    help="print one JSON object instead (schema 'l4theory.inspect/1': model, "
                         "network, layers with shapes, parameter counts and norm summaries, "
                         "history)")
    sp.set_defaults(func=cmd_inspect, check=_check_model)

    sp = sub.add_parser("accuracy", help="ANN accuracy with the NumPy forward pass",
                        description="ANN accuracy of MODEL on a dataset split.")
    model_args(sp)
    data_args(sp)
    sp.add_argument("--split", choices=["train", "test"], default="test")
    sp.add_argument("-n", type=int, default=None, help="random subset of this many samples")
    sp.set_defaults(func=cmd_accuracy, check=_check_accuracy)

    sp = sub.add_parser("balance", help="per-layer firing thresholds from training data",
                        description="Threshold balancing on a calibration batch from the "
                                    "training set (max: Diehl et al. 2015; percentile: "
                                    "Rueckauer et al. 2017; spike: Rathi et al. 2020).")
    model_args(sp)
    data_args(sp)
    balance_args(sp)
    sp.add_argument("--json", help="also write the result to this (new) JSON file")
    sp.set_defaults(func=cmd_balance, check=_check_balance)

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
    sp.set_defaults(func=cmd_adjust, check=_check_adjust)

    add_simulate_parser(sub, model_args, data_args, balance_args)
    add_sweep_parser(sub)
    return p


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 success, 2 error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.check(args)
        return args.func(args)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stdout = None
        return 0
    except (CLIError, ValueError, OSError, ImportError, KeyError) as exc:
        msg = _cli_words(" ".join(str(exc).split())) or type(exc).__name__
        print(f"l4theory {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
