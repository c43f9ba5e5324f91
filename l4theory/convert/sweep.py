"""Threshold-scale x ``r_s`` sweep (the paper's Sec. 4.3), selected on training data.

Protocol (:func:`sweep`):

1. From the training set, draw disjoint random subsets: a *calibration* set (threshold
   balancing and the adjustment's ``mu_j``) and a *selection* set (held out).
2. Balance the thresholds on the calibration set (default: ``max``). ``v_th0`` of the
   adjustment is the first layer's balanced threshold before any sweep scale.
3. Baseline: simulate the unadjusted network on the selection set for every threshold
   scale (all thresholds times the scale) and keep the best scale.
   Adjusted: for every ``r_s``, L4-adjust the first layer (:func:`l4theory.adjust_weights`),
   simulate for every threshold scale, and keep the best ``(r_s, scale)`` pair.
   The selection runs share one input spike stream (common random numbers).
4. Evaluate both chosen configurations on the *test* subset with several seeds of the
   input spike trains; each seed drives the baseline and the adjusted network with the
   same spikes, so the difference is paired.

Uncertainty. The unit of replication is the test image: each image's correctness is
averaged over the seeds, and the 95% confidence interval of the mean accuracy (and of the
paired difference adjusted - baseline) is ``mean +- t_{0.975, n-1} sd / sqrt(n)`` over
images. It covers both the spike-train noise and the choice of test images. The spread
between seeds (accuracy per seed) is reported too.

``l4theory sweep MODEL ...`` (:func:`add_sweep_parser`) runs this from the command line.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._checks import check_alpha, check_int
from .balance import balance
from .network import Network
from .simulate import ENCODERS, simulate

__all__ = [
    "SweepResult",
    "add_sweep_parser",
    "adjusted_network",
    "expected_spikes",
    "mean_ci",
    "select_best",
    "sweep",
]


def expected_spikes(x: np.ndarray, encoder: str) -> np.ndarray:
    """Mean spike per step ``E[s]`` of each input under ``encoder`` (same shape as ``x``).

    The first cumulant of :func:`l4theory.theory.spike_cumulant` (``clip(x, -1, 1)`` for
    ``signed``, ``clip(x, 0, 1)`` for ``bernoulli``, ``x`` for ``poisson`` and ``constant``).
    """
    from ..theory import spike_cumulant

    return spike_cumulant(1, encoder, x)


def adjusted_network(net: Network, x_calib, v_th0: float, r_s: float, *,
                     encoder: str = "signed", method: str = "l4", strict: bool = False):
    """A copy of ``net`` whose first weight layer is L4-adjusted (Eqs. 6-9).

    Parameters
    ----------
    net : Network
    x_calib : numpy.ndarray, shape (n, *net.input_shape)
        Calibration inputs (training set); their expected spikes give ``mu_j``.
    v_th0 : float
        The first layer's balanced threshold (before any sweep scale).
    r_s : float
        Smoothing ratio (``>= 0``; ``inf`` = no change).
    encoder : str
        Input encoder (sets ``E[s]``).
    method : {"l4", "exact"}
        Spread measure of Eq. 8.
    strict : bool
        Raise instead of leaving guarded neurons (``v_hat <= 0``) unadjusted.

    Returns
    -------
    (Network, AdjustResult)
    """
    from ..adjust import adjust_weights

    first = net.weight_layers[0]
    if any(lay.kind != "flatten" for lay in net.layers[:first]):
        raise ValueError("the first weight layer must receive the encoded input directly")
    if first not in net.spiking_layers:
        raise ValueError("the first weight layer is not followed by a ReLU (nothing to adjust)")
    layer = net.layers[first]
    es = expected_spikes(np.asarray(x_calib, dtype=np.float64), encoder)
    kw = {}
    if layer.kind == "conv2d":
        t, left, b, r = layer.padding
        if (t, left) != (b, r):
            raise ValueError(f"layer '{layer.name}' has asymmetric padding {layer.padding}")
        kw = {"stride": layer.stride, "padding": (t, left)}
    else:
        es = es.reshape(len(es), -1)
    res = adjust_weights(layer.weight, es, v_th0, r_s, bias=layer.bias, method=method,
                         strict=strict, **kw)
    out = net.copy()
    out.layers[first].weight = np.asarray(res.weights, dtype=layer.weight.dtype)
    if layer.bias is not None:
        out.layers[first].bias = np.asarray(res.bias, dtype=layer.bias.dtype)
    return out, res


def mean_ci(values, level: float = 0.95) -> dict:
    """Mean and two-sided t confidence interval of the mean of ``values`` (shape (n,)).

    Returns
    -------
    dict
        ``mean``, ``lo``, ``hi``, ``half_width``, ``sd``, ``n`` (plain floats / int).
    """
    from scipy import stats

    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size < 2:
        raise ValueError(f"a confidence interval needs at least 2 values, got {v.size}")
    m = float(v.mean())
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * sd / math.sqrt(v.size))
    return {"mean": m, "lo": m - half, "hi": m + half, "half_width": half, "sd": sd,
            "n": int(v.size)}


def select_best(acc: np.ndarray) -> tuple:
    """Index of the largest entry of ``acc`` (any shape); ties go to the first in C order."""
    acc = np.asarray(acc, dtype=np.float64)
    if acc.size == 0 or np.isnan(acc).all():
        raise ValueError("nothing to select from")
    return tuple(int(i) for i in np.unravel_index(int(np.nanargmax(acc)), acc.shape))


@dataclass
class SweepResult:
    """Outcome of :func:`sweep` (all accuracies are fractions in [0, 1]).

    Attributes
    ----------
    scales : numpy.ndarray, shape (n_scales,)
    r_s : numpy.ndarray, shape (n_rs,)
    select_baseline : numpy.ndarray, shape (n_scales,)
        Selection-set accuracy of the baseline per threshold scale.
    select_adjusted : numpy.ndarray, shape (n_rs, n_scales)
        Selection-set accuracy of the adjusted network per ``(r_s, scale)``.
    best_scale_baseline, best_scale_adjusted, best_r_s : float
    test_baseline, test_adjusted : numpy.ndarray of bool, shape (n_seeds, n_test)
        Per-seed, per-image correctness on the test subset at the last step.
    curve_baseline, curve_adjusted : numpy.ndarray, shape (steps,)
        Test accuracy after every step, averaged over seeds.
    ann_accuracy : float
        ANN accuracy on the same test subset.
    thresholds : numpy.ndarray
        Balanced thresholds (scale 1).
    spike_rates_baseline, spike_rates_adjusted : numpy.ndarray, shape (n_spiking,)
        Test spike rates (spikes per neuron per step), averaged over seeds.
    params : dict
        Settings and provenance.
    """

    scales: np.ndarray
    r_s: np.ndarray
    select_baseline: np.ndarray
    select_adjusted: np.ndarray
    best_scale_baseline: float
    best_scale_adjusted: float
    best_r_s: float
    test_baseline: np.ndarray
    test_adjusted: np.ndarray
    curve_baseline: np.ndarray
    curve_adjusted: np.ndarray
    ann_accuracy: float
    thresholds: np.ndarray
    spike_rates_baseline: np.ndarray
    spike_rates_adjusted: np.ndarray
    params: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Accuracies with 95% CIs (over test images), the paired difference, the gap.

        Returns
        -------
        dict
            ``baseline``, ``adjusted``, ``difference`` (each :func:`mean_ci` output plus
            ``per_seed``), ``ann_accuracy``, ``gap`` (ANN - baseline), ``recovered``
            (difference / gap; NaN when the gap is not positive), the chosen settings.
        """
        base = self.test_baseline.mean(axis=0)
        adj = self.test_adjusted.mean(axis=0)
        out = {
            "baseline": {**mean_ci(base),
                         "per_seed": self.test_baseline.mean(axis=1).tolist()},
            "adjusted": {**mean_ci(adj),
                         "per_seed": self.test_adjusted.mean(axis=1).tolist()},
            "difference": {**mean_ci(adj - base),
                           "per_seed": (self.test_adjusted.mean(axis=1)
                                        - self.test_baseline.mean(axis=1)).tolist()},
            "ann_accuracy": self.ann_accuracy,
            "best_scale_baseline": self.best_scale_baseline,
            "best_scale_adjusted": self.best_scale_adjusted,
            "best_r_s": self.best_r_s,
        }
        gap = self.ann_accuracy - out["baseline"]["mean"]
        out["gap"] = gap
        out["recovered"] = out["difference"]["mean"] / gap if gap > 0 else float("nan")
        return out

    def to_json(self) -> dict:
        """Everything as plain JSON types (arrays as lists, inf as the string "inf")."""
        def conv(v):
            if isinstance(v, np.ndarray):
                return conv(v.tolist())
            if isinstance(v, (list, tuple)):
                return [conv(u) for u in v]
            if isinstance(v, dict):
                return {k: conv(u) for k, u in v.items()}
            if isinstance(v, (float, np.floating)) and not math.isfinite(v):
                return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
            if isinstance(v, np.generic):
                return v.item()
            return v

        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["test_baseline"] = self.test_baseline.astype(np.int8)
        d["test_adjusted"] = self.test_adjusted.astype(np.int8)
        d["summary"] = self.summary()
        return conv(d)


def _subset(n_total: int, sizes: list[int], rng) -> list[np.ndarray]:
    need = sum(sizes)
    if need > n_total:
        raise ValueError(f"the requested subsets need {need} samples but only {n_total} exist")
    perm = rng.permutation(n_total)
    out, k = [], 0
    for s in sizes:
        out.append(np.sort(perm[k:k + s]))
        k += s
    return out


def sweep(net: Network, train, test, *, steps: int = 75, alpha: float = 1.0,
          reset: str = "soft", encoder: str = "signed", scales=(0.6, 0.8, 1.0),
          r_s=(0.5, 1.0, 2.0, 4.0), n_calib: int = 500, n_select: int = 200,
          n_test: int | None = 1000, seeds=(0, 1, 2), balance_method: str = "max",
          subset_seed: int = 0, select_seed: int = 10_000, batch_size: int = 64,
          progress=None, backend: str = "numpy", method: str = "l4") -> SweepResult:
    """Select baseline and adjusted thresholds on training data, evaluate on test data.

    Parameters
    ----------
    net : Network
        The trained ANN.
    train, test : (numpy.ndarray, numpy.ndarray)
        ``(x, labels)`` of the training and test sets; ``x`` normalised, shape
        ``(n, *net.input_shape)``; labels integers, shape ``(n,)``.
    steps : int
        Time steps ``T``.
    alpha : float
        Leak factor per step in (0, 1] (1 = no leak).
    reset : {"soft", "hard"}
    encoder : {"signed", "bernoulli", "poisson", "constant"}
    scales : sequence of float
        Threshold scales (every threshold is multiplied by the scale), ``> 0``.
    r_s : sequence of float
        Smoothing ratios of the adjustment, ``>= 0``.
    n_calib, n_select : int
        Sizes of the disjoint calibration and selection subsets of the training set.
    n_test : int or None
        Size of the random test subset (None = the whole test set).
    seeds : sequence of int
        Seeds of the test-time input spike trains (at least 2 for the per-seed spread;
        the CI over images needs only 1).
    balance_method : {"max", "percentile", "spike"}
    subset_seed : int
        Seed of the subset draws.
    select_seed : int
        Spike-train seed of the selection runs.
    batch_size : int
        Simulator batch size.
    progress : callable, optional
        Called with the number of images simulated after each batch.
    backend : {"numpy", "torch"}
        Linear-algebra backend of the simulator.
    method : {"l4", "exact"}
        Spread measure of the adjustment's Eq. 8: the paper's L4 norm, or the exact
        input-dependent std of the input current (see :func:`l4theory.adjust.adjust_weights`).

    Returns
    -------
    SweepResult
    """
    steps = check_int("steps", steps, minimum=1)
    alpha = check_alpha("alpha", alpha)
    scales = np.asarray(scales, dtype=np.float64).ravel()
    if scales.size == 0 or not (np.isfinite(scales).all() and (scales > 0).all()):
        raise ValueError(f"scales must be positive finite values, got {scales!r}")
    r_s = np.asarray(r_s, dtype=np.float64).ravel()
    if r_s.size == 0 or np.isnan(r_s).any() or (r_s < 0).any():
        raise ValueError(f"r_s must be values >= 0, got {r_s!r}")
    seeds = [check_int("seeds", s, minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    n_calib = check_int("n_calib", n_calib, minimum=1)
    n_select = check_int("n_select", n_select, minimum=1)
    xtr, ytr = (np.asarray(a) for a in train)
    xte, yte = (np.asarray(a) for a in test)
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("images and labels differ in length")
    ytr = ytr.astype(np.int64)
    yte = yte.astype(np.int64)
    rng = np.random.default_rng(subset_seed)
    i_cal, i_sel = _subset(len(xtr), [n_calib, n_select], rng)
    if n_test is None or n_test >= len(xte):
        i_test = np.arange(len(xte))
    else:
        n_test = check_int("n_test", n_test, minimum=2)
        (i_test,) = _subset(len(xte), [n_test], rng)
    x_cal = xtr[i_cal]
    bal = balance(net, x_cal, balance_method, encoder=encoder if encoder != "poisson"
                  else "bernoulli", rng=subset_seed)
    th = np.asarray(bal.thresholds, dtype=np.float64)
    common = dict(steps=steps, alpha=alpha, reset=reset, encoder=encoder,
                  bias_scales=bal.bias_scales, readout_bias_scale=bal.readout_bias_scale,
                  batch_size=batch_size, progress=progress, backend=backend)

    t0 = time.perf_counter()
    xs, ys = xtr[i_sel], ytr[i_sel]
    sel_base = np.array([simulate(net, xs, ys, thresholds=th * s, seed=select_seed,
                                  sample_ids=i_sel, **common).final_accuracy for s in scales])
    adjusted = {}
    sel_adj = np.empty((r_s.size, scales.size))
    for k, r in enumerate(r_s):
        adjusted[k], _ = adjusted_network(net, x_cal, float(th[0]), float(r), encoder=encoder,
                                          method=method)
        for j, s in enumerate(scales):
            sel_adj[k, j] = simulate(adjusted[k], xs, ys, thresholds=th * s, seed=select_seed,
                                     sample_ids=i_sel, **common).final_accuracy
    (jb,) = select_best(sel_base)
    ka, ja = select_best(sel_adj)
    t_select = time.perf_counter() - t0

    xt, yt = xte[i_test], yte[i_test]
    ann = float(net.accuracy(xt, yt))
    tb, ta, cb, ca, rb, ra = [], [], [], [], [], []
    for seed in seeds:
        rb_ = simulate(net, xt, yt, thresholds=th * scales[jb], seed=seed, sample_ids=i_test,
                       **common)
        ra_ = simulate(adjusted[ka], xt, yt, thresholds=th * scales[ja], seed=seed,
                       sample_ids=i_test, **common)
        tb.append(rb_.correct())
        ta.append(ra_.correct())
        cb.append(rb_.accuracy)
        ca.append(ra_.accuracy)
        rb.append(rb_.spike_rates)
        ra.append(ra_.spike_rates)
    t_test = time.perf_counter() - t0 - t_select
    params = {
        "steps": steps, "alpha": alpha, "reset": reset, "encoder": encoder,
        "balance_method": balance_method, "n_calib": n_calib, "n_select": n_select,
        "n_test": int(len(i_test)), "seeds": seeds, "subset_seed": subset_seed,
        "select_seed": select_seed, "backend": backend, "method": method,
        "time_select_s": t_select, "time_test_s": t_test,
        "test_indices_sha256": hashlib.sha256(i_test.astype(np.int64).tobytes()).hexdigest(),
    }
    return SweepResult(
        scales=scales, r_s=r_s, select_baseline=sel_base, select_adjusted=sel_adj,
        best_scale_baseline=float(scales[jb]), best_scale_adjusted=float(scales[ja]),
        best_r_s=float(r_s[ka]), test_baseline=np.array(tb), test_adjusted=np.array(ta),
        curve_baseline=np.mean(cb, axis=0), curve_adjusted=np.mean(ca, axis=0),
        ann_accuracy=ann, thresholds=th, spike_rates_baseline=np.mean(rb, axis=0),
        spike_rates_adjusted=np.mean(ra, axis=0), params=params)


# --------------------------------------------------------------------------- command line


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None


def _provenance(model: Path) -> dict:
    import numba

    try:
        import subprocess

        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip()
    except (OSError, ValueError, subprocess.SubprocessError):  # pragma: no cover
        rev = ""
    return {"model": model.name, "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
            "git_revision": rev or None, "python": sys.version.split()[0],
            "numpy": np.__version__, "numba": numba.__version__,
            "platform": platform.platform(), "tool": "l4theory sweep"}


def add_sweep_parser(subparsers) -> None:
    """Add the ``sweep`` subcommand to the ``l4theory`` argument parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object returned by ``parser.add_subparsers()``.
    """
    sp = subparsers.add_parser(
        "sweep", help="threshold-scale x r_s sweep: select on training data, test with CIs",
        description="Balance thresholds on training images, select the best threshold scale "
                    "(baseline) and the best (r_s, scale) of the L4-adjusted network on a "
                    "held-out part of the training set, then evaluate both on the test set "
                    "with several input spike seeds; prints accuracies with 95%% CIs and the "
                    "paired difference, and writes a JSON file with provenance.")
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
    sp.add_argument("--steps", type=int, default=75, help="time steps T (default 75)")
    sp.add_argument("--encoder", choices=list(ENCODERS), default="signed")
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
    sp.add_argument("--backend", choices=["numpy", "torch"], default="numpy",
                    help="linear-algebra backend (torch: PyTorch CPU convolutions)")
    sp.add_argument("-o", "--output", help="JSON results file (must not exist)")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    """Handler of ``l4theory sweep``; returns the exit status."""
    from .datasets import load_named, normalize
    from .io import load_network

    out = Path(args.output) if args.output else None
    if out is not None and out.exists():
        raise ValueError(f"{out} exists; choose another name")
    model = Path(args.model)
    net = load_network(model, spec=args.spec)
    data = {}
    for split in ("train", "test"):
        ds = load_named(args.data, split)
        x = normalize(ds.images, args.pixels)
        if x.shape[1:] != net.input_shape:
            raise ValueError(f"the data have shape {x.shape[1:]} per sample but the network "
                             f"expects {net.input_shape}")
        data[split] = (x, ds.labels)
    scales, r_s = _floats(args.scales), _floats(args.r_s)
    seeds = list(range(check_int("--seeds", args.seeds, minimum=1)))
    n_test = None if args.n_test == 0 else args.n_test
    n_te = len(data["test"][0]) if n_test is None else min(n_test, len(data["test"][0]))
    total = args.n_select * len(scales) * (1 + len(r_s)) + 2 * n_te * len(seeds)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="img", desc="sweep", file=sys.stderr)
    try:
        res = sweep(net, data["train"], data["test"], steps=args.steps, alpha=args.leak,
                    reset=args.reset, encoder=args.encoder, scales=scales, r_s=r_s,
                    n_calib=args.n_calib, n_select=args.n_select, n_test=n_test, seeds=seeds,
                    balance_method=args.balance, subset_seed=args.seed,
                    batch_size=args.batch_size, progress=bar.update if bar else None,
                    backend=args.backend)
    finally:
        if bar is not None:
            bar.close()
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
    if out is not None:
        doc = res.to_json()
        doc["provenance"] = _provenance(model)
        doc["provenance"]["data"] = args.data
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(out)
        print(f"wrote {out}")
    return 0

