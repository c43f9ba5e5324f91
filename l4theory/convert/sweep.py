"""Deprecated alias of :mod:`l4theory.experiment.sweep` (kept for one release)."""

import warnings

from ..experiment.sweep import *  # noqa: F403
from ..experiment.sweep import __all__  # noqa: F401

warnings.warn("l4theory.convert.sweep moved to l4theory.experiment.sweep; import it from there",
              DeprecationWarning, stacklevel=2)
