"""Exact statistics of the shot-noise membrane potential and the norms behind them.

Continuous time (Poisson inputs): :func:`poisson_cumulant`, :func:`poisson_mean`,
:func:`poisson_var`, :class:`ShotNoise`. Discrete time (the update converted networks use):
:func:`bernoulli_cumulant`, :func:`bernoulli_mean`, :func:`bernoulli_var`, and for any
encoder :func:`spike_cumulant`, :func:`current_cumulant`, :func:`discrete_cumulant`,
:func:`leak_gain`. Norms: :mod:`l4theory.theory.norms`. Firing rates (Siegert, exact no-leak
IF with soft and hard reset): :mod:`l4theory.theory.rates`.
"""

from .continuous import poisson_cumulant, poisson_mean, poisson_var, time_factor
from .discrete import (
    ENCODERS,
    bernoulli_cumulant,
    bernoulli_mean,
    bernoulli_var,
    current_cumulant,
    discrete_cumulant,
    leak_gain,
    spike_cumulant,
)
from .norms import (
    VarianceDecomposition,
    hadamard_angle,
    hadamard_drift,
    hadamard_square,
    l4_norm,
    lp_norm,
    variance_decomposition,
)
from .rates import (
    expected_steps_to_threshold,
    if_hard_rate,
    if_hard_rate_asymptotic,
    if_hard_rate_bernoulli,
    if_soft_rate,
    siegert_rate,
)
from .shot_noise import ShotNoise

__all__ = [
    "ENCODERS",
    "ShotNoise",
    "VarianceDecomposition",
    "bernoulli_cumulant",
    "bernoulli_mean",
    "bernoulli_var",
    "current_cumulant",
    "discrete_cumulant",
    "expected_steps_to_threshold",
    "hadamard_angle",
    "hadamard_drift",
    "hadamard_square",
    "if_hard_rate",
    "if_hard_rate_asymptotic",
    "if_hard_rate_bernoulli",
    "if_soft_rate",
    "l4_norm",
    "leak_gain",
    "lp_norm",
    "poisson_cumulant",
    "poisson_mean",
    "poisson_var",
    "siegert_rate",
    "spike_cumulant",
    "time_factor",
    "variance_decomposition",
]
