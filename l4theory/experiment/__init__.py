"""The one experiment engine: every run that converts, adjusts, simulates and scores.

Modules, in the order an experiment uses them:

- :mod:`~l4theory.experiment.splits`: seeded, disjoint image splits (calibration,
  selection, further training blocks, test).
- :mod:`~l4theory.experiment.arms`: :class:`Arm`, every first-layer method behind one
  interface, fitted once per (arm, network, setting, scale).
- :mod:`~l4theory.experiment.sweep`: the threshold-scale x ``r_s`` sweep protocol
  (settings -> plan of pure tasks -> results), used by ``l4theory sweep``.
- :mod:`~l4theory.experiment.tasks`: simulation jobs and their results.
- :mod:`~l4theory.experiment.keys`: task keys with the library's code version.
- :mod:`~l4theory.experiment.cache`: the task cache and the atomic result writers.
- :mod:`~l4theory.experiment.executors`: serial, process-pool and Dask execution.
- :mod:`~l4theory.experiment.select`: selection with one tie rule and no edge choices.
- :mod:`~l4theory.experiment.stats`: paired CIs, power, MDE, recovered fraction.
- :mod:`~l4theory.experiment.meta`: the pooled statistics of a study over several
  networks: random-effects meta-analysis (Hartung-Knapp), equivalence (TOST), exact t
  power, the pre-registered reading rule.
"""

from .arms import Arm, fit_arm
from .cache import TaskCache, write_json, write_npz
from .executors import dask_client, map_tasks
from .keys import code_version, task_key
from .meta import (
    equivalence,
    equivalence_paired,
    paired_power,
    pooled_paired,
    power_t,
    random_effects,
    verdict,
)
from .select import extend_to_interior, select_best
from .splits import heldout_blocks, split_indices
from .stats import compare, mde, mean_ci, power_of, recovered_fraction

__all__ = ["Arm", "TaskCache", "code_version", "compare", "dask_client", "equivalence",
           "equivalence_paired", "extend_to_interior", "fit_arm", "heldout_blocks", "map_tasks",
           "mde", "mean_ci", "paired_power", "pooled_paired", "power_of", "power_t",
           "random_effects", "recovered_fraction", "select_best", "split_indices", "task_key",
           "verdict", "write_json", "write_npz"]
