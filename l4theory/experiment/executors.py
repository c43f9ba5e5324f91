"""Where tasks run: in this process, on a local process pool, or on Dask.

:func:`map_tasks` is the one map of the engine: ``[fn(t) for t in tasks]`` serially, on a
``ProcessPoolExecutor`` of ``workers`` processes, or on a ``distributed.Client``
(:func:`dask_client`: a ``LocalCluster`` of one-thread worker processes, or an existing
scheduler). Results come back in the order of ``tasks`` whatever the executor, and the
tasks are pure, so every executor gives the same numbers.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager

__all__ = ["blas_threads", "check_dist_options", "dask_client", "map_tasks"]

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

    Parameters
    ----------
    workers : int or None
        Processes of a local Dask cluster (an integer >= 1), or None.
    scheduler : str or None
        Address of a running scheduler (non-empty), or None.

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

    Returns
    -------
    int
        The thread count (>= 1).
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




def map_tasks(fn, tasks: list, *, workers: int = 1, client=None, **kwargs) -> list:
    """``[fn(t, **kwargs) for t in tasks]`` in order: serially, on processes, or on Dask.

    Parameters
    ----------
    fn : callable
        A module-level function (picklable), pure in its arguments.
    tasks : list
        One argument per call.
    workers : int
        Processes of a local pool (1: in this process). The pool's workers start from a
        fork server (or are spawned), never forked from this process: once a parallel
        Numba kernel has run here, its OpenMP runtime makes a plain ``fork`` abort the
        child ("fork() called from a process already using GNU OpenMP").
    client : distributed.Client, optional
        Run on Dask instead (``workers`` is then ignored).
    **kwargs
        Passed to every call.

    Returns
    -------
    list
        The results, in the order of ``tasks``.
    """
    tasks = list(tasks)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be an integer >= 1, got {workers!r}")
    call = functools.partial(fn, **kwargs) if kwargs else fn
    if client is not None:
        futures = client.map(call, tasks, pure=False)
        return client.gather(futures)
    if workers <= 1 or len(tasks) <= 1:
        return [call(t) for t in tasks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers,
                             mp_context=multiprocessing.get_context(method)) as pool:
        return list(pool.map(call, tasks))
