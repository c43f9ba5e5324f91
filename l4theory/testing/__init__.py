"""Hypothesis strategies and exact oracles for property tests of shot-noise code.

Two halves:

:mod:`l4theory.testing.oracles` (NumPy only)
    Exact reference values and ``assert_*`` helpers for the norm relations the theory
    rests on: the L4 envelope of the membrane std (Cauchy-Schwarz), Eq. 3
    ``||w∘2||_2 = ||w||_4**2``, the Hadamard angle drift toward the axes, and
    "Bernoulli variance <= Poisson variance". They reuse the library's own scaled norms
    (:func:`l4theory.theory.lp_norm`), so they stay exact where a hand-written
    ``np.linalg.norm`` underflows (rates near ``1e-194`` square to zero).
:mod:`l4theory.testing.strategies` (needs ``hypothesis``, the ``testing`` extra)
    Strategies for weight vectors and matrices, rate vectors, Bernoulli probabilities,
    leak factors, encoders with valid inputs and first layers (dense or convolutional),
    with magnitudes clear of underflow and overflow by default. Importing this package
    never needs hypothesis; calling a strategy without it raises an :class:`ImportError`
    that names ``pip install 'l4theory[testing]'``.

Examples
--------
>>> from hypothesis import given
>>> from l4theory.testing import assert_poisson_envelope, rates_and_weights
>>> @given(rates_and_weights())
... def test_std_below_l4_envelope(rw):
...     rates, w = rw
...     assert_poisson_envelope(rates, w, tau=2.0)
"""

from .oracles import (
    assert_bernoulli_below_poisson,
    assert_bernoulli_envelope,
    assert_eq3,
    assert_hadamard_drift,
    assert_l4_between_l2,
    assert_poisson_envelope,
    assert_std_envelope,
    envelope_std,
    exact_std,
    poisson_minus_bernoulli_var,
)
from .strategies import (
    HYPOTHESIS_SETTINGS,
    bernoulli_probs,
    encoded_inputs,
    encoders,
    first_layers,
    leaks,
    load_profile,
    probs_and_weights,
    rate_vectors,
    rates_and_weights,
    weight_matrices,
    weight_vectors,
)

__all__ = [
    "HYPOTHESIS_SETTINGS",
    "assert_bernoulli_below_poisson",
    "assert_bernoulli_envelope",
    "assert_eq3",
    "assert_hadamard_drift",
    "assert_l4_between_l2",
    "assert_poisson_envelope",
    "assert_std_envelope",
    "bernoulli_probs",
    "encoded_inputs",
    "encoders",
    "envelope_std",
    "exact_std",
    "first_layers",
    "leaks",
    "load_profile",
    "poisson_minus_bernoulli_var",
    "probs_and_weights",
    "rate_vectors",
    "rates_and_weights",
    "weight_matrices",
    "weight_vectors",
]
