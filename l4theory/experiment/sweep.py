"""Threshold-scale x ``r_s`` sweep (the paper's Sec. 4.3), selected on training data.

Protocol (:func:`sweep`):

1. From the training set, draw disjoint random subsets: a *calibration* set (threshold
   balancing and the adjustment's ``mu_j``) and a *selection* set (held out).
2. Balance the thresholds on the calibration set (default: ``max``). ``v_th0`` of the
   adjustment is the first layer's balanced threshold before any sweep scale.
3. Baseline: simulate the unadjusted network on the selection set for every threshold
   scale (all thresholds times the scale) and keep the best scale.
   Adjusted: for every ``r_s``, L4-adjust the first layer
   (:func:`l4theory.experiment.arms.fit_arm`), simulate for every threshold scale, and keep
   the best ``(r_s, scale)`` pair. The selection runs share one input spike stream
   (common random numbers).
4. Evaluate both chosen configurations on the *test* subset with several seeds of the
   input spike trains; each seed drives the baseline and the adjusted network with the
   same spikes, so the difference is paired.

Uncertainty. The unit of replication is the test image: each image's correctness is
averaged over the seeds, and the 95% confidence interval of the mean accuracy (and of the
paired difference adjusted - baseline) is ``mean +- t_{0.975, n-1} sd / sqrt(n)`` over
images. It covers both the spike-train noise and the choice of test images. The spread
between seeds (accuracy per seed) is reported too.

Shape of the code. :class:`SweepSettings` (frozen, validated) goes in; :func:`plan_sweeps`
lists the simulations as :class:`SimTask` items (setting, phase, arm, r_s, scale, seed,
block of images: values, not indices), which sizes progress bars; :func:`run_plan` runs
them through :mod:`l4theory.experiment.tasks` (in-process or on Dask, with a resumable
cache) and returns
one :class:`SweepResult` per setting. Every block gives the same per-image results, so
the numbers do not depend on the block size or the number of workers.
:func:`sweep_model` (load model and data, progress bar, run, provenance) is shared by
``l4theory sweep`` and ``python -m validation conversion``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import check_alpha, check_choice, check_int
from ..convert.network import Network
from .arms import Arm, fit_arm
from .cache import TaskCache, write_json
from .executors import dask_client
from .keys import digest_arrays
from .result import SweepResult
from .select import select_best
from .splits import blocks as _blocks
from .splits import disjoint_subsets
from .stats import mean_ci
from .tasks import SIM_RESULT, Job, execute

__all__ = [
    "SEMANTICS",
    "SimTask",
    "SweepPlan",
    "SweepResult",
    "SweepSettings",
    "expected_spikes",
    "mean_ci",
    "plan_sweeps",
    "run_plan",
    "select_best",
    "sweep",
    "sweep_model",
    "write_json",
]

# The simulator's semantics, encoders and backends, spelled out so that checking settings
# (and the command line) imports neither Numba nor SciPy; a test keeps them equal to
# simulate's lists (SEMANTICS, theory.discrete.ENCODERS, BACKENDS).
SEMANTICS = ("project", "rathi")
_ENCODERS = ("signed", "bernoulli", "poisson", "constant")
_BACKENDS = ("numpy", "torch")
_BALANCE = ("max", "percentile", "spike")
_METHODS = ("l4", "exact")


def expected_spikes(x: np.ndarray, encoder: str) -> np.ndarray:
    """Mean spike per step ``E[s]`` of each input under ``encoder`` (same shape as ``x``).

    The first cumulant of :func:`l4theory.theory.spike_cumulant` (``clip(x, -1, 1)`` for
    ``signed``, ``clip(x, 0, 1)`` for ``bernoulli``, ``x`` for ``poisson`` and ``constant``).

    Parameters
    ----------
    x : numpy.ndarray
        Normalised inputs (any shape).
    encoder : {"signed", "bernoulli", "poisson", "constant"}
        Input spike encoder.

    Returns
    -------
    numpy.ndarray
        ``E[s]`` per input, same shape as ``x`` (spikes per step).
    """
    from ..theory import spike_cumulant

    return spike_cumulant(1, encoder, x)


def _floats(name, values, *, positive: bool) -> tuple:
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers, got {values!r}") from None
    bad = (~np.isfinite(arr) | (arr <= 0)) if positive else (np.isnan(arr) | (arr < 0))
    if arr.size == 0 or bad.any():
        what = "positive finite values" if positive else "values >= 0"
        raise ValueError(f"{name} must be {what}, got {values!r}")
    return tuple(float(v) for v in arr)


@dataclass(frozen=True)
class SweepSettings:
    """Settings of one sweep (hashable; JSON via :meth:`~l4theory.experiment.sweep.SweepSettings.to_dict`).

    Validated on construction.

    Attributes
    ----------
    steps : int
        Time steps ``T`` (>= 1).
    alpha : float
        Leak factor per step in (0, 1] (1 = no leak).
    reset : {"soft", "hard"}
    encoder : {"signed", "bernoulli", "poisson", "constant"}
    semantics : {"project", "rathi"}
        Simulator semantics (the project's same-step firing, or the paper code's).
    scales : tuple of float
        Threshold scales (every threshold is multiplied by the scale), ``> 0``.
    r_s : tuple of float
        Smoothing ratios of the adjustment, ``>= 0`` (``inf`` = unadjusted).
    n_calib, n_select : int
        Sizes of the disjoint calibration and selection subsets of the training set.
    n_test : int or None
        Size of the random test subset (None = the whole test set; >= 2).
    seeds : tuple of int
        Seeds of the test-time input spike trains (>= 1 seed; 2+ for the per-seed spread).
    balance_method : {"max", "percentile", "spike"}
    subset_seed : int
        Seed of the subset draws (and of spike balancing).
    select_seed : int
        Spike-train seed of the selection runs.
    batch_size : int
        Simulator batch size (memory and speed only).
    backend : {"numpy", "torch"}
        Linear-algebra backend of the simulator.
    method : {"l4", "exact"}
        Spread measure of the adjustment's Eq. 8 (:func:`l4theory.adjust.adjust_weights`).
    """

    steps: int = 75
    alpha: float = 1.0
    reset: str = "soft"
    encoder: str = "signed"
    semantics: str = "project"
    scales: tuple = (0.6, 0.8, 1.0)
    r_s: tuple = (0.5, 1.0, 2.0, 4.0)
    n_calib: int = 500
    n_select: int = 200
    n_test: int | None = 1000
    seeds: tuple = (0, 1, 2)
    balance_method: str = "max"
    subset_seed: int = 0
    select_seed: int = 10_000
    batch_size: int = 64
    backend: str = "numpy"
    method: str = "l4"

    def __post_init__(self):
        put = object.__setattr__
        put(self, "steps", check_int("steps", self.steps, minimum=1))
        put(self, "alpha", check_alpha("alpha", self.alpha))
        check_choice("reset", self.reset, ("soft", "hard"))
        check_choice("encoder", self.encoder, _ENCODERS)
        check_choice("semantics", self.semantics, SEMANTICS)
        put(self, "scales", _floats("scales", self.scales, positive=True))
        put(self, "r_s", _floats("r_s", self.r_s, positive=False))
        for name in ("n_calib", "n_select", "batch_size"):
            put(self, name, check_int(name, getattr(self, name), minimum=1))
        if self.n_test is not None:
            put(self, "n_test", check_int("n_test", self.n_test, minimum=2))
        seeds = tuple(check_int("seeds", s, minimum=0) for s in np.atleast_1d(self.seeds))
        if not seeds:
            raise ValueError(f"seeds must hold at least one seed, got {self.seeds!r}")
        put(self, "seeds", seeds)
        check_choice("balance_method", self.balance_method, _BALANCE)
        for name in ("subset_seed", "select_seed"):
            put(self, name, check_int(name, getattr(self, name), minimum=0))
        check_choice("backend", self.backend, _BACKENDS)
        check_choice("method", self.method, _METHODS)

    def replace(self, **changes) -> SweepSettings:
        """A copy with some fields changed (validated again).

        Parameters
        ----------
        **changes
            New values of fields (names of the attributes above).

        Returns
        -------
        SweepSettings
            The new settings; ``self`` is unchanged.
        """
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON types (tuples as lists).

        Returns
        -------
        dict
            ``{field: value}`` of every field.
        """
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    def sim_kwargs(self) -> dict:
        """The simulator's keyword arguments these settings fix.

        Returns
        -------
        dict
            ``steps``, ``alpha``, ``reset``, ``encoder``, ``semantics``, ``batch_size``,
            ``backend`` for :func:`~l4theory.convert.simulate.simulate`.
        """
        return {"steps": self.steps, "alpha": self.alpha, "reset": self.reset,
                "encoder": self.encoder, "semantics": self.semantics,
                "batch_size": self.batch_size, "backend": self.backend}


@dataclass(frozen=True)
class SimTask:
    """One item of a sweep plan: a simulation of a block of images.

    Attributes
    ----------
    setting : int
        Index of the settings in the plan.
    phase : {"select", "test"}
        Selection (held-out training images, ``select_seed``) or test (test subset).
    arm : {"baseline", "adjusted"}
    r_s : float or None
        Smoothing ratio of the adjusted network (None for the baseline, and in a test task
        of the adjusted arm before the selection has chosen it).
    scale : float or None
        Threshold scale (every balanced threshold times it); None in a test task before
        the selection has chosen it.
    seed : int
        Input spike seed.
    lo, hi : int
        Block ``[lo, hi)`` of the phase's image subset.
    """

    setting: int
    phase: str
    arm: str
    r_s: float | None
    scale: float | None
    seed: int
    lo: int
    hi: int

    @property
    def n_images(self) -> int:
        """Images in the block."""
        return self.hi - self.lo


@dataclass(frozen=True)
class SweepPlan:
    """The simulations of one or more sweeps (:func:`plan_sweeps`).

    Attributes
    ----------
    settings : tuple of SweepSettings
    n_test : tuple of int
        Test subset size of each setting.
    tasks : tuple of SimTask
        Selection tasks, then test tasks (whose ``r_s``/``scale`` are None until chosen).
    block_size : int or None
        Images per task (None = the whole subset).
    """

    settings: tuple
    n_test: tuple
    tasks: tuple
    block_size: int | None

    @property
    def n_images(self) -> int:
        """Images simulated in all (the size of a progress bar)."""
        return sum(t.n_images for t in self.tasks)


def plan_sweeps(settings, n_test_available: int, block_size: int | None = None) -> SweepPlan:
    """List the simulations of sweeps over ``settings`` (a SweepSettings or a sequence).

    Parameters
    ----------
    settings : SweepSettings or sequence of SweepSettings
    n_test_available : int
        Images in the test set (sets the test subset size when ``n_test`` is None or
        larger).
    block_size : int, optional
        Images per task (default: the whole subset in one task). Results do not depend
        on it.

    Returns
    -------
    SweepPlan
    """
    if isinstance(settings, SweepSettings):
        settings = [settings]
    settings = tuple(settings)
    if not settings or not all(isinstance(s, SweepSettings) for s in settings):
        raise ValueError(f"settings must be SweepSettings objects, got {settings!r}")
    n_avail = check_int("n_test_available", n_test_available, minimum=1)
    if block_size is not None:
        block_size = check_int("block_size", block_size, minimum=1)
    tasks, sizes = [], []
    for i, s in enumerate(settings):
        grid = [("baseline", None, g) for g in s.scales]
        grid += [("adjusted", r, g) for r in s.r_s for g in s.scales]
        tasks += [SimTask(i, "select", arm, r, g, s.select_seed, lo, hi)
                  for arm, r, g in grid for lo, hi in _blocks(s.n_select, block_size)]
        sizes.append(n_avail if s.n_test is None else min(s.n_test, n_avail))
    for i, s in enumerate(settings):
        tasks += [SimTask(i, "test", arm, None, None, seed, lo, hi) for seed in s.seeds
                  for arm in ("baseline", "adjusted") for lo, hi in _blocks(sizes[i], block_size)]
    return SweepPlan(settings, tuple(sizes), tuple(tasks), block_size)


def _digest(*arrays) -> str:
    return digest_arrays(*(np.ascontiguousarray(a) for a in arrays))[:16]


@dataclass
class _Prepared:
    """One setting's subsets, balanced thresholds and networks (names in ``objects``)."""

    settings: SweepSettings
    i_test: np.ndarray
    th: np.ndarray
    extra: dict           # bias_scales, readout_bias_scale (simulator kwargs)
    nets: dict            # "baseline" -> name, ("adjusted", k) -> name
    data: dict            # "select" / "test" -> name of (x, labels, ids)
    ann: float


def _prepare(net, train, test, s: SweepSettings, objects: dict, memo: dict) -> _Prepared:
    """Subsets, balancing and adjusted networks of one setting (shared ones reused)."""
    from ..convert.balance import balance

    (xtr, ytr), (xte, yte) = train, test
    rng = np.random.default_rng(s.subset_seed)
    i_cal, i_sel = disjoint_subsets(len(xtr), [s.n_calib, s.n_select], rng)
    if s.n_test is None or s.n_test >= len(xte):
        i_test = np.arange(len(xte))
    else:
        (i_test,) = disjoint_subsets(len(xte), [s.n_test], rng)
    bkey = f"{_digest(i_cal)}:{s.balance_method}:{s.encoder}:{s.subset_seed}"
    if bkey not in memo:
        memo[bkey] = balance(net, xtr[i_cal], s.balance_method, encoder=s.encoder,
                             rng=s.subset_seed)
    bal = memo[bkey]
    th = np.asarray(bal.thresholds, dtype=np.float64)
    nets = {"baseline": "net"}
    objects.setdefault("net", net)
    for r in s.r_s:
        name = f"adjusted:{bkey}:{s.method}:{r!r}"
        if name not in objects:
            objects[name], _ = fit_arm(Arm(s.method, r), net, xtr[i_cal], v_th0=float(th[0]),
                                       v_th=float(th[0]), steps=s.steps, alpha=s.alpha,
                                       reset=s.reset, semantics=s.semantics, encoder=s.encoder)
        nets[("adjusted", r)] = name
    data = {}
    for phase, idx, (x, y) in (("select", i_sel, (xtr, ytr)), ("test", i_test, (xte, yte))):
        name = f"{phase}:{_digest(idx)}"
        if name not in objects:
            objects[name] = (np.ascontiguousarray(x[idx]), y[idx].astype(np.int64),
                             idx.astype(np.int64))
        data[phase] = name
    if ("ann", data["test"]) not in memo:
        memo[("ann", data["test"])] = float(net.accuracy(*objects[data["test"]][:2]))
    extra = {"bias_scales": [float(v) for v in np.asarray(bal.bias_scales, np.float64)],
             "readout_bias_scale": float(bal.readout_bias_scale)}
    return _Prepared(s, i_test, th, extra, nets, data, memo[("ann", data["test"])])


def _job(p: _Prepared, task: SimTask, objects: dict, digests: dict) -> Job:
    s = p.settings
    net = p.nets["baseline"] if task.arm == "baseline" else p.nets[("adjusted", task.r_s)]
    th = tuple(float(v) for v in p.th * task.scale)
    job = Job(net, p.data[task.phase], task.lo, task.hi, th, task.seed,
              {**s.sim_kwargs(), **p.extra})
    return job.keyed(objects, digests)


def _merge(blocks: list[dict], labels: np.ndarray, sizes: list[int]):
    """Per-step accuracy, per-image correctness and spike rates of blocks put together.

    The same expressions as :func:`~l4theory.convert.simulate.simulate` applies to one
    call over all images, so the numbers are bit-identical to it.
    """
    pred = np.concatenate([r["predictions"] for r in blocks], axis=1)
    totals = np.sum([r["spike_totals"] for r in blocks], axis=0)
    n, steps = pred.shape[1], pred.shape[0]
    accuracy = (pred == labels[None, :]).mean(axis=1)
    rates = np.array([float(t) / float(n * steps * z) for t, z in zip(totals, sizes, strict=True)])
    return accuracy, pred[-1] == labels, rates


class _Run:
    """Results of a plan's tasks, looked up by (setting, phase, arm, r_s, scale, seed)."""

    def __init__(self, preps, objects, sizes):
        self.preps, self.objects, self.sizes = preps, objects, sizes
        self.jobs, self.results, self.digests = {}, {}, {}

    def add(self, tasks, **run) -> None:
        jobs = {t: _job(self.preps[t.setting], t, self.objects, self.digests) for t in tasks}
        self.jobs.update(jobs)
        self.results.update(execute(jobs.values(), self.objects, **run))

    def merged(self, setting, phase, arm, r_s, scale, seed):
        blocks = sorted((t for t in self.jobs if (t.setting, t.phase, t.arm, t.r_s, t.scale,
                                                   t.seed) == (setting, phase, arm, r_s, scale,
                                                               seed)), key=lambda t: t.lo)
        labels = self.objects[self.preps[setting].data[phase]][1]
        return _merge([self.results[self.jobs[t].key] for t in blocks], labels, self.sizes)

    def seconds(self, setting, phase) -> float:
        return sum(float(self.results[j.key]["seconds"]) for t, j in self.jobs.items()
                   if t.setting == setting and t.phase == phase)


def _select(run: _Run, i: int) -> tuple:
    """Selection accuracies and the chosen values (scale_b, r_s_a, scale_a) of setting ``i``.

    Ties go to the first candidate (:func:`l4theory.experiment.select.select_best`): the
    lower scale, and the ``r_s`` listed first.
    """
    s, seed = run.preps[i].settings, run.preps[i].settings.select_seed
    sel_b = np.array([run.merged(i, "select", "baseline", None, g, seed)[0][-1]
                      for g in s.scales])
    sel_a = np.array([[run.merged(i, "select", "adjusted", r, g, seed)[0][-1]
                       for g in s.scales] for r in s.r_s])
    (jb,), (ka, ja) = select_best(sel_b), select_best(sel_a)
    return sel_b, sel_a, s.scales[jb], s.r_s[ka], s.scales[ja]


def run_plan(plan: SweepPlan, net: Network, train, test, *, client=None, cache=None,
             progress=None) -> list[SweepResult]:
    """Run a plan: balance, adjust, select on training images, test; one result per setting.

    Parameters
    ----------
    plan : SweepPlan
        From :func:`plan_sweeps` with ``len(test[0])`` test images.
    net : Network
        The trained ANN.
    train, test : (numpy.ndarray, numpy.ndarray)
        ``(x, labels)``; ``x`` normalised, shape ``(n, *net.input_shape)``; integer labels.
    client : distributed.Client, optional
        Run the simulations on Dask (:func:`l4theory.experiment.executors.dask_client`).
    cache : TaskCache or path-like, optional
        Resumable cache of finished simulations.
    progress : callable, optional
        Called with numbers of images simulated; they add up to ``plan.n_images``.

    Returns
    -------
    list of SweepResult
    """
    xtr, ytr = (np.asarray(a) for a in train)
    xte, yte = (np.asarray(a) for a in test)
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("images and labels differ in length")
    if plan.n_test != plan_sweeps(plan.settings, len(xte)).n_test:
        raise ValueError(f"the plan was made for test subsets of {plan.n_test} images, not "
                         f"for a test set of {len(xte)} images")
    if cache is not None and not isinstance(cache, TaskCache):
        cache = TaskCache(cache, SIM_RESULT)
    objects, memo = {}, {}
    preps = [_prepare(net, (xtr, ytr), (xte, yte), s, objects, memo) for s in plan.settings]
    run = _Run(preps, objects, [int(np.prod(net.shapes[i + 1])) for i in net.spiking_layers])
    opts = {"client": client, "cache": cache, "progress": progress}
    run.add([t for t in plan.tasks if t.phase == "select"], **opts)
    chosen = [_select(run, i) for i in range(len(preps))]
    test_tasks = []
    for t in plan.tasks:
        if t.phase == "test":
            _, _, gb, ra, ga = chosen[t.setting]
            r, g = (None, gb) if t.arm == "baseline" else (ra, ga)
            test_tasks.append(dataclasses.replace(t, r_s=r, scale=g))
    run.add(test_tasks, **opts)
    return [_result(run, i, chosen[i]) for i in range(len(preps))]


def _result(run: _Run, i: int, chosen: tuple) -> SweepResult:
    p = run.preps[i]
    s = p.settings
    sel_b, sel_a, gb, r_best, ga = chosen
    out = {arm: ([], [], []) for arm in ("baseline", "adjusted")}
    for seed in s.seeds:
        for arm, r, g in (("baseline", None, gb), ("adjusted", r_best, ga)):
            for lst, v in zip(out[arm], run.merged(i, "test", arm, r, g, seed), strict=True):
                lst.append(v)
    params = {**{k: v for k, v in s.to_dict().items() if k not in ("scales", "r_s")},
              "n_test": int(len(p.i_test)), "time_select_s": run.seconds(i, "select"),
              "time_test_s": run.seconds(i, "test"),
              "test_indices_sha256": hashlib.sha256(p.i_test.astype(np.int64).tobytes()).hexdigest()}
    scales, r_s = np.array(s.scales), np.array(s.r_s)
    (cb, tb, rb), (ca, ta, ra) = out["baseline"], out["adjusted"]
    return SweepResult(
        scales=scales, r_s=r_s, select_baseline=sel_b, select_adjusted=sel_a,
        best_scale_baseline=float(gb), best_scale_adjusted=float(ga),
        best_r_s=float(r_best), test_baseline=np.array(tb), test_adjusted=np.array(ta),
        curve_baseline=np.mean(cb, axis=0), curve_adjusted=np.mean(ca, axis=0),
        ann_accuracy=p.ann, thresholds=p.th, spike_rates_baseline=np.mean(rb, axis=0),
        spike_rates_adjusted=np.mean(ra, axis=0), params=params)


def sweep(net: Network, train, test, settings: SweepSettings | None = None, *,
          block_size: int | None = None, client=None, cache=None, progress=None,
          **overrides) -> SweepResult:
    """Select baseline and adjusted thresholds on training data, evaluate on test data.

    Parameters
    ----------
    net : Network
        The trained ANN.
    train, test : (numpy.ndarray, numpy.ndarray)
        ``(x, labels)`` of the training and test sets; ``x`` normalised, shape
        ``(n, *net.input_shape)``; labels integers, shape ``(n,)``.
    settings : SweepSettings, optional
        The protocol's settings (default ``SweepSettings()``).
    block_size : int, optional
        Images per simulation task (results do not depend on it).
    client : distributed.Client, optional
        Run the simulations on Dask.
    cache : TaskCache or path-like, optional
        Resumable cache of finished simulations.
    progress : callable, optional
        Called with the number of images simulated (they add up to the plan's size).
    **overrides
        Fields of :class:`SweepSettings` replacing those of ``settings``
        (``sweep(net, train, test, steps=12, alpha=0.9)``).

    Returns
    -------
    SweepResult
    """
    settings = SweepSettings() if settings is None else settings
    if overrides:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(SweepSettings)}
        if unknown:
            raise TypeError(f"sweep() got unknown settings {sorted(unknown)}")
        settings = settings.replace(**overrides)
    plan = plan_sweeps(settings, len(test[0]), block_size)
    return run_plan(plan, net, train, test, client=client, cache=cache, progress=progress)[0]


# ------------------------------------------------------------------- runs with provenance


def _load_data(net, data: str, pixels: str):
    from ..convert.datasets import load_named, normalize

    out = []
    for split in ("train", "test"):
        ds = load_named(data, split)
        x = normalize(ds.images, pixels)
        if x.shape[1:] != net.input_shape:
            raise ValueError(f"the data have shape {x.shape[1:]} per sample but the network "
                             f"expects {net.input_shape}")
        out.append((x, ds.labels.astype(np.int64)))
    return out


def sweep_model(model, settings, *, data: str = "fashion-mnist", pixels: str = "signed",
                spec=None, block_size: int | None = None, workers: int | None = None,
                scheduler: str | None = None, cache=None, progress: str | None = "sweep",
                tool: str = "l4theory sweep"):
    """Load a model and a dataset, run sweeps over ``settings`` with one progress bar.

    Parameters
    ----------
    model : path-like
        Weights file (.safetensors, .npz, .onnx).
    settings : SweepSettings or sequence of SweepSettings
    data : str
        Dataset name for :func:`l4theory.convert.datasets.load_named`.
    pixels : {"signed", "unit"}
        Pixel scaling (:func:`l4theory.convert.datasets.normalize`).
    spec : path-like, optional
        Layer spec for weights without one.
    block_size : int, optional
        Images per task.
    workers, scheduler : optional
        Dask: a LocalCluster of ``workers`` processes, or a scheduler address.
    cache : path-like, optional
        Folder of the resumable task cache.
    progress : str or None
        Description of a tqdm bar on stderr sized by the plan; None = no bar.
    tool : str
        Recorded in the provenance.

    Returns
    -------
    (list of SweepResult, dict, float)
        The results (one per setting), the provenance record (model name and sha256,
        dataset, git revision, versions) and the wall time in seconds.
    """
    from .. import _provenance
    from ..convert.io import load_network

    model = Path(model)
    net = load_network(model, spec=spec)
    train, test = _load_data(net, data, pixels)
    plan = plan_sweeps(settings, len(test[0]), block_size)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=plan.n_images, unit="img", desc=progress, file=sys.stderr)
    t0 = time.perf_counter()
    try:
        with dask_client(workers, scheduler) as client:
            results = run_plan(plan, net, train, test, client=client, cache=cache,
                               progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    prov = {"model": model.name, "model_sha256": _provenance.file_sha256(model), "data": data,
            "pixels": pixels, **_provenance.record(tool),
            "execution": {"block_size": block_size, "workers": workers,
                          "scheduler": scheduler, "cache": None if cache is None else str(cache)}}
    return results, prov, elapsed
