"""Pure simulation tasks: their keys, a resumable cache, and serial or Dask execution.

A *job* is one :func:`l4theory.convert.simulate.simulate` call on a block of images
(a slice of a named data set) with a named network, thresholds and settings. Its
result (:func:`run_block`) is the per-step prediction of every image and the spike total
of every spiking layer: enough to rebuild, bit for bit, what one call over all images
would return, because the simulator's input streams are keyed by (seed, sample index,
step, pixel) and each image is simulated on its own. Hence any block size and any worker
count give the same numbers.

A job's *key* is the sha256 of everything its result depends on: the network's arrays,
the image, label and sample-index bytes of the block, the thresholds, the settings and
the library's code (:func:`l4theory.experiment.keys.task_key`).
:class:`~l4theory.experiment.cache.TaskCache` stores finished results as ``<key>.npz``, so
a run started again recomputes only what is missing.

:func:`execute` runs jobs in-process (no Dask import) or on a ``distributed.Client``
(:func:`l4theory.experiment.executors.dask_client`), feeding one progress callback from
the completed futures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from .cache import TaskCache
from .executors import _import_distributed
from .keys import network_digest, task_key

__all__ = ["SIM_RESULT", "Job", "execute", "run_block"]

#: The arrays of one simulation job's result (the names :class:`TaskCache` checks).
SIM_RESULT = ("predictions", "spike_totals", "seconds")


@dataclass(frozen=True)
class Job:
    """One simulation on images ``lo:hi`` of a named data set.

    Attributes
    ----------
    net : str
        Name of the network in the ``objects`` mapping given to :func:`execute`.
    data : str
        Name of an ``(x, labels, sample_ids)`` triple in ``objects``.
    lo, hi : int
        The block ``[lo, hi)`` of that data set.
    thresholds : tuple of float
        Firing threshold per spiking layer.
    seed : int
        Input spike seed.
    kwargs : dict
        Other :func:`~l4theory.convert.simulate.simulate` arguments (JSON types).
    key : str
        sha256 of all of the above, the network's and the block's contents and the
        simulator's code (set by :meth:`keyed`).
    """

    net: str
    data: str
    lo: int
    hi: int
    thresholds: tuple
    seed: int
    kwargs: dict = field(hash=False)
    key: str = ""

    @property
    def n_images(self) -> int:
        """Images in the block."""
        return self.hi - self.lo

    def keyed(self, objects: dict, digests: dict) -> Job:
        """A copy with its ``key`` set (``digests`` caches network digests by name).

        Parameters
        ----------
        objects : dict
            The named networks and data triples (``net`` and ``data`` are looked up here).
        digests : dict
            ``{name: network digest}``, filled in for networks not yet hashed.

        Returns
        -------
        Job
            The same job with ``key`` (64 hex digits) set.
        """
        if self.net not in digests:
            digests[self.net] = network_digest(objects[self.net])
        x, y, ids = objects[self.data]
        blk = slice(self.lo, self.hi)
        key = task_key("sim", digests[self.net], x[blk], y[blk], ids[blk],
                       np.asarray(self.thresholds, np.float64), self.seed, self.kwargs)
        return Job(self.net, self.data, self.lo, self.hi, self.thresholds, self.seed,
                   self.kwargs, key)


def _spiking_sizes(net) -> list[int]:
    return [int(np.prod(net.shapes[i + 1])) for i in net.spiking_layers]


def run_block(net, x, labels, sample_ids, thresholds, seed, kwargs,
              progress: Callable[[int], None] | None = None) -> dict:
    """Simulate one block; the arrays from which any statistic of the run is rebuilt.

    Parameters
    ----------
    net : Network
    x : numpy.ndarray, shape (n, *net.input_shape)
    labels : numpy.ndarray of int, shape (n,)
    sample_ids : numpy.ndarray of int, shape (n,)
        Global indices of the images (the keys of their input streams).
    thresholds : sequence of float
    seed : int
    kwargs : dict
        Other arguments of :func:`~l4theory.convert.simulate.simulate`.
    progress : callable, optional
        Passed to the simulator (images finished per batch).

    Returns
    -------
    dict
        ``predictions`` (int16, shape (steps, n)), ``spike_totals`` (int64, shape
        (n_spiking,): spikes summed over images, steps and neurons), ``seconds``
        (float64, 0-d: compute time).
    """
    from ..convert.simulate import simulate

    t0 = time.perf_counter()
    res = simulate(net, x, labels, thresholds=np.asarray(thresholds, np.float64), seed=seed,
                   sample_ids=sample_ids, progress=progress, **kwargs)
    n, steps = len(x), res.predictions.shape[0]
    denom = [n * steps * s for s in _spiking_sizes(net)]
    totals = np.rint(res.spike_rates * np.array(denom, np.float64)).astype(np.int64)
    if not all(t / d == r for t, d, r in zip(totals.tolist(), denom, res.spike_rates.tolist(),
                                             strict=True)):
        raise RuntimeError("the simulator's spike rates are not spike totals / (n steps size): "
                           "blocks could not be merged exactly")
    return {"predictions": np.asarray(res.predictions, np.int16), "spike_totals": totals,
            "seconds": np.float64(time.perf_counter() - t0)}


def _run_job(net, data, lo, hi, thresholds, seed, kwargs):
    x, y, ids = data
    return run_block(net, x[lo:hi], y[lo:hi], ids[lo:hi], thresholds, seed, kwargs)


def execute(jobs: Iterable[Job], objects: dict, *, client=None, cache: TaskCache | None = None,
            progress: Callable[[int], None] | None = None) -> dict[str, dict]:
    """Run jobs (keyed, see :meth:`Job.keyed`); return ``{key: result}``.

    Parameters
    ----------
    jobs : iterable of Job
        Jobs with keys; duplicates (same key) run once.
    objects : dict
        Networks and ``(x, labels, sample_ids)`` triples by the names the jobs use.
    client : distributed.Client, optional
        Run on Dask; default: in this process, in order.
    cache : TaskCache, optional
        Results found there are not recomputed; new ones are stored as they finish.
    progress : callable, optional
        Called with a number of images: per simulator batch in-process, per finished job
        on Dask, at once for cached jobs.

    Returns
    -------
    dict
        Result of :func:`run_block` per job key.
    """
    todo, out = {}, {}
    for job in jobs:
        if not job.key:
            raise ValueError("execute needs keyed jobs (Job.keyed)")
        if job.key in out or job.key in todo:
            continue
        hit = cache.get(job.key) if cache is not None else None
        if hit is not None:
            out[job.key] = hit
            if progress is not None:
                progress(job.n_images)
        else:
            todo[job.key] = job
    if client is None:
        _serial(todo, objects, out, cache, progress)
    else:
        _dask(client, todo, objects, out, cache, progress)
    return out


def _finish(job, result, out, cache) -> None:
    out[job.key] = result
    if cache is not None:
        cache.put(job.key, result)


def _serial(todo, objects, out, cache, progress) -> None:
    for job in todo.values():
        x, y, ids = objects[job.data]
        b = slice(job.lo, job.hi)
        _finish(job, run_block(objects[job.net], x[b], y[b], ids[b], job.thresholds, job.seed,
                               job.kwargs, progress), out, cache)


def _dask(client, todo, objects, out, cache, progress) -> None:
    import uuid

    distributed = _import_distributed()
    run = uuid.uuid4().hex[:12]  # Dask keys of this call only: no clash with released ones
    names = {j.net for j in todo.values()} | {j.data for j in todo.values()}
    # a dict scatters each value as one object (a tuple would be split into its items)
    refs = client.scatter({f"l4obj-{run}-{n}": objects[n] for n in sorted(names)}, hash=False)
    refs = {n: refs[f"l4obj-{run}-{n}"] for n in names}
    futures = {client.submit(_run_job, refs[j.net], refs[j.data], j.lo, j.hi, j.thresholds,
                             j.seed, j.kwargs, key=f"l4sim-{run}-{j.key}", pure=False): j
               for j in todo.values()}
    try:
        for fut in distributed.as_completed(futures):
            job = futures[fut]
            _finish(job, fut.result(), out, cache)
            fut.release()
            if progress is not None:
                progress(job.n_images)
    finally:
        client.cancel([f for f in futures if not f.done()])
        for r in refs.values():
            r.release()
