"""SymPy derivations of the formulas that :mod:`l4theory.theory` evaluates numerically.

This is the only place the project imports SymPy. Each ``derive_*`` function starts from
the model, not from the answer, and returns a SymPy expression; :func:`checks` compares
each derived expression with the paper's printed equation (symbolically) and with the
runtime NumPy function (numerically, at random parameters). ``python -m
l4theory.derivations`` prints everything.

Symbols
-------
``lam`` input rate, ``w`` weight, ``tau`` time constant, ``t`` time, ``n`` cumulant order,
``k`` Fourier variable, ``alpha`` per-step leak, ``p`` spike probability, ``dt`` step.
"""

from .core import (
    Check,
    checks,
    derive_bernoulli_cumulant,
    derive_continuum_limit,
    derive_discrete_gain,
    derive_eq3,
    derive_poisson_cumulant,
    derive_poisson_cumulant_from_cf,
    derived_expressions,
)

__all__ = [
    "Check",
    "checks",
    "derive_bernoulli_cumulant",
    "derive_continuum_limit",
    "derive_discrete_gain",
    "derive_eq3",
    "derive_poisson_cumulant",
    "derive_poisson_cumulant_from_cf",
    "derived_expressions",
]
