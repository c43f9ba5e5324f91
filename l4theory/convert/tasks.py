"""Deprecated alias of :mod:`l4theory.experiment.tasks` and its neighbours (one release)."""

import warnings

from ..experiment.cache import TaskCache  # noqa: F401
from ..experiment.executors import blas_threads, check_dist_options, dask_client  # noqa: F401
from ..experiment.keys import code_version, network_digest  # noqa: F401
from ..experiment.tasks import Job, execute, run_block  # noqa: F401

__all__ = ["Job", "TaskCache", "blas_threads", "check_dist_options", "code_version",
           "dask_client", "execute", "network_digest", "run_block"]

warnings.warn("l4theory.convert.tasks moved to l4theory.experiment (tasks, cache, executors, "
              "keys); import it from there", DeprecationWarning, stacklevel=2)
