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
the simulator's source code (:func:`code_version`). :class:`TaskCache` stores finished
results as ``<key>.npz`` (written atomically, read with ``allow_pickle=False``), so a run
started again recomputes only what is missing.

:func:`execute` runs jobs in-process (no Dask import) or on a ``distributed.Client``
(:func:`dask_client`: a ``LocalCluster`` of worker processes with one thread each, or
an existing scheduler), feeding one progress callback from the completed futures.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["Job", "TaskCache", "check_dist_options", "code_version", "dask_client", "execute",
           "network_digest", "run_block"]

#: Source files whose change invalidates cached results (relative to this folder).
_CODE = ("simulate.py", "_kernels.py", "network.py", "../_checks.py", "../theory/discrete.py")
_EXTRA = "dist"


@lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 of the simulator's source files (part of every job key)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _CODE:
        path = here / name
        h.update(name.encode() + b"\0")
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def _update(h, value) -> None:
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for v in value:
            _update(h, v)
        h.update(b"]")
    else:
        h.update(repr(value).encode())
    h.update(b";")


def network_digest(net) -> str:
    """sha256 of a network: input shape, and every layer's kind and attributes (arrays by bytes)."""
    h = hashlib.sha256()
    _update(h, tuple(net.input_shape))
    for lay in net.layers:
        _update(h, lay.kind)
        for name in sorted(vars(lay)):
            _update(h, name)
            _update(h, getattr(lay, name))
    return h.hexdigest()


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
        """A copy with its ``key`` set (``digests`` caches network digests by name)."""
        if self.net not in digests:
            digests[self.net] = network_digest(objects[self.net])
        h = hashlib.sha256()
        x, y, ids = objects[self.data]
        blk = slice(self.lo, self.hi)
        for v in (code_version(), digests[self.net], x[blk], y[blk], ids[blk],
                  np.asarray(self.thresholds, np.float64), self.seed,
                  json.dumps(self.kwargs, sort_keys=True)):
            _update(h, v)
        return Job(self.net, self.data, self.lo, self.hi, self.thresholds, self.seed,
                   self.kwargs, h.hexdigest())


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
    from .simulate import simulate

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


class TaskCache:
    """Finished job results as ``<folder>/<key>.npz`` (atomic writes, no pickle).

    Parameters
    ----------
    folder : path-like
        Created on the first write.
    """

    NAMES = ("predictions", "spike_totals", "seconds")

    def __init__(self, folder):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        """File of one key."""
        return self.folder / f"{key}.npz"

    def get(self, key: str) -> dict | None:
        """The stored result, or None when absent or unreadable."""
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as f:
                if set(f.files) != set(self.NAMES):
                    return None
                return {k: f[k] for k in self.NAMES}
        except (OSError, ValueError, EOFError):
            return None

    def put(self, key: str, result: dict) -> None:
        """Store a result atomically (a temporary file renamed over the target)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{os.getpid()}.tmp"
        with tmp.open("wb") as fh:
            np.savez(fh, **{k: np.asarray(result[k]) for k in self.NAMES})
        os.replace(tmp, self.path(key))


_NO_DASK = ("--workers/--scheduler need Dask, which is not installed: "
            "pip install 'l4theory[dist]' (dask[distributed])")


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError(_NO_DASK) from None
    return distributed


def check_dist_options(workers, scheduler) -> None:
    """Validate ``--workers``/``--scheduler`` without importing Dask (fails if it is absent).

    Raises
    ------
    ValueError
        ``workers`` not an integer >= 1, or both options given.
    ImportError
        Dask (``distributed``) is not installed; the message names the ``dist`` extra.
    """
    import importlib.util

    if workers is not None and scheduler is not None:
        raise ValueError("give --workers or --scheduler, not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"--workers must be an integer >= 1, got {workers!r}")
    if scheduler is not None and not str(scheduler).strip():
        raise ValueError(f"--scheduler must be an address, got {scheduler!r}")
    if (workers is not None or scheduler is not None) and \
            importlib.util.find_spec("distributed") is None:
        raise ImportError(_NO_DASK)


def blas_threads() -> int:
    """Threads of the BLAS that NumPy calls in this process.

    From threadpoolctl when installed, else ``$OPENBLAS_NUM_THREADS`` or
    ``$OMP_NUM_THREADS``, else the number of usable CPUs (OpenBLAS's default).
    """
    try:
        from threadpoolctl import threadpool_info

        counts = [d["num_threads"] for d in threadpool_info() if d.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except ImportError:
        pass
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name, "").strip().isdigit():
            return max(1, int(os.environ[name]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None):
    """A ``distributed.Client`` for the run, or None (serial) when neither option is given.

    Parameters
    ----------
    workers : int, optional
        Start a ``LocalCluster`` of this many worker processes, one task at a time each
        (Numba kernels on one thread; BLAS with this process's thread count, see
        :func:`blas_threads`).
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``).
    """
    check_dist_options(workers, scheduler)
    if workers is None and scheduler is None:
        yield None
        return
    distributed = _import_distributed()
    cluster = None
    if scheduler is None:
        # Numba's kernels give the same numbers for any thread count: one thread per worker.
        # OpenBLAS's sgemm does not (its summation order follows its thread count), so the
        # workers get this process's BLAS thread count and reproduce a serial run bit for bit.
        # (set before the processes start: BLAS reads them when it loads)
        import dask

        blas = blas_threads()
        env = {"NUMBA_NUM_THREADS": 1, "OMP_NUM_THREADS": blas, "OPENBLAS_NUM_THREADS": blas,
               "MKL_NUM_THREADS": blas}
        # no dashboard; the scheduler's HTTP endpoints on a free port (not 8787, which
        # another cluster may hold)
        # The nanny writes pre-spawn-environ into *this* process's os.environ and leaves it
        # there; Numba re-reads NUMBA_NUM_THREADS at its next compilation and refuses a
        # change once its threads run. So the client's environment is restored afterwards.
        saved = {k: os.environ.get(k) for k in env}
        try:
            with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v
                                  for k, v in env.items()}):
                cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                                   processes=True, dashboard_address=None,
                                                   scheduler_kwargs={"dashboard_address": ":0"})
        finally:
            _restore_environ(saved)
    client = distributed.Client(cluster if cluster is not None else scheduler)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _restore_environ(saved: dict) -> None:
    """Put back the given environment variables (None: it was not set)."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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
