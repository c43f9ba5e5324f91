"""Hypothesis strategies for the inputs of shot-noise and L4-adjustment code.

Every function returns a ``hypothesis`` search strategy; hypothesis is imported only when
one is called, so ``import l4theory.testing`` works without it. The default magnitudes stay
clear of the floating-point traps of the quantities the theory forms: weights in
``[1e-30, 1e3]`` (or exactly 0) keep ``w**4`` normal, rates in ``[1e-30, 1e3]`` keep
``rates**2`` normal. Widen them on purpose (``min_magnitude=1e-200``) to test numerical
robustness; the oracles of :mod:`l4theory.testing.oracles` stay exact there.

Sizes (``size``, ``rows``, ``inputs``) accept an int, a ``(min, max)`` pair or a strategy.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ..theory.discrete import ENCODERS

if TYPE_CHECKING:  # hypothesis is optional (the testing extra)
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "HYPOTHESIS_SETTINGS",
    "bernoulli_probs",
    "encoded_inputs",
    "encoders",
    "first_layers",
    "leaks",
    "load_profile",
    "probs_and_weights",
    "rate_vectors",
    "rates_and_weights",
    "weight_matrices",
    "weight_vectors",
]

#: The project's deterministic default profile (``derandomize``, no deadline, 60 examples,
#: slow data generation allowed), registered as ``"l4theory"`` by :func:`load_profile`.
HYPOTHESIS_SETTINGS = {"derandomize": True, "deadline": None, "max_examples": 60,
                       "suppress_health_check": ("too_slow",)}

_EXTRA = "pip install 'l4theory[testing]'"


def _hyp():
    """``(strategies, extra.numpy)`` of hypothesis, or an ImportError naming the extra."""
    try:
        from hypothesis import strategies as st
        from hypothesis.extra import numpy as hnp
    except ImportError as exc:
        raise ImportError(f"the strategies of l4theory.testing need hypothesis: {_EXTRA} "
                          f"({exc})") from exc
    return st, hnp


def load_profile(name: str | None = None) -> str:
    """Register the project's hypothesis profiles and load one.

    Registers ``"l4theory"`` (:data:`HYPOTHESIS_SETTINGS`: deterministic, so a test suite
    gives the same examples on every run) and ``"l4theory-thorough"`` (random, 1000
    examples, no deadline).

    Parameters
    ----------
    name : str, optional
        Profile to load; default ``$HYPOTHESIS_PROFILE`` or ``"l4theory"``. ``"thorough"``
        is accepted for ``"l4theory-thorough"``.

    Returns
    -------
    str
        The name of the profile loaded.
    """
    _hyp()
    from hypothesis import HealthCheck, settings

    cfg = dict(HYPOTHESIS_SETTINGS)
    cfg["suppress_health_check"] = [getattr(HealthCheck, h) for h in cfg["suppress_health_check"]]
    settings.register_profile("l4theory", **cfg)
    settings.register_profile("l4theory-thorough", deadline=None, max_examples=1000)
    name = name or os.environ.get("HYPOTHESIS_PROFILE") or "l4theory"
    name = {"thorough": "l4theory-thorough", "default": "l4theory"}.get(name, name)
    settings.load_profile(name)
    return name


def _size(st, size, name):
    if isinstance(size, int | np.integer):
        if size < 0:
            raise ValueError(f"{name} must be >= 0, got {size!r}")
        return st.just(int(size))
    if isinstance(size, tuple) and len(size) == 2:
        lo, hi = size
        if not (0 <= lo <= hi):
            raise ValueError(f"{name} must be (min, max) with 0 <= min <= max, got {size!r}")
        return st.integers(int(lo), int(hi))
    if hasattr(size, "example") or type(size).__name__.endswith("Strategy"):
        return size
    raise ValueError(f"{name} must be an int, a (min, max) pair or a strategy, got {size!r}")


def _magnitudes(min_magnitude, max_magnitude, name):
    if not (0 < min_magnitude <= max_magnitude < np.inf):
        raise ValueError(f"{name} needs 0 < min_magnitude <= max_magnitude < inf, got "
                         f"{min_magnitude!r}, {max_magnitude!r}")


def _signed(st, min_magnitude, max_magnitude):
    return st.floats(-max_magnitude, max_magnitude, allow_nan=False, allow_infinity=False).filter(
        lambda v: v == 0 or abs(v) >= min_magnitude)


def _nonneg(st, min_magnitude, max_magnitude):
    return st.floats(0.0, max_magnitude, allow_nan=False, allow_infinity=False).filter(
        lambda v: v == 0 or v >= min_magnitude)


def weight_vectors(size: int | tuple[int, int] | SearchStrategy = (1, 12), *, min_magnitude: float = 1e-30,
                   max_magnitude: float = 1e3) -> SearchStrategy:
    """Signed weight vectors, float64, each entry 0 or of magnitude in the given range.

    Parameters
    ----------
    size : int, (int, int) or strategy, optional
        Number of inputs (default 1 to 12).
    min_magnitude, max_magnitude : float, optional
        Smallest nonzero and largest magnitude (defaults 1e-30 and 1e3: ``w**4`` stays a
        normal float).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of arrays, shape (n_inputs,).
    """
    st, hnp = _hyp()
    _magnitudes(min_magnitude, max_magnitude, "weight_vectors")
    return hnp.arrays(np.float64, _size(st, size, "size"),
                      elements=_signed(st, min_magnitude, max_magnitude))


def weight_matrices(rows: int | tuple[int, int] | SearchStrategy = (1, 5),
                    inputs: int | tuple[int, int] | SearchStrategy = (1, 8), *,
                    min_magnitude: float = 1e-30, max_magnitude: float = 1e3) -> SearchStrategy:
    """Signed weight matrices (one row per output neuron), like :func:`weight_vectors`.

    Parameters
    ----------
    rows : int, (int, int) or strategy, optional
        Output neurons (default 1 to 5).
    inputs : int, (int, int) or strategy, optional
        Inputs per neuron (default 1 to 8).
    min_magnitude, max_magnitude : float, optional
        As in :func:`weight_vectors`.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of arrays, shape (n_rows, n_inputs).
    """
    st, hnp = _hyp()
    _magnitudes(min_magnitude, max_magnitude, "weight_matrices")
    shape = st.tuples(_size(st, rows, "rows"), _size(st, inputs, "inputs"))
    return hnp.arrays(np.float64, shape, elements=_signed(st, min_magnitude, max_magnitude))


def rate_vectors(size: int | tuple[int, int] | SearchStrategy = (1, 12), *, min_rate: float = 1e-30,
                 max_rate: float = 1e3) -> SearchStrategy:
    """Non-negative rate vectors (Poisson rates or any per-input variance rate).

    Parameters
    ----------
    size : int, (int, int) or strategy, optional
        Number of inputs (default 1 to 12).
    min_rate, max_rate : float, optional
        Smallest nonzero and largest rate (defaults 1e-30 and 1e3: ``rates**2`` stays a
        normal float). Zeros (silent inputs) are always possible.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of arrays, shape (n_inputs,), spikes per unit time.
    """
    st, hnp = _hyp()
    _magnitudes(min_rate, max_rate, "rate_vectors")
    return hnp.arrays(np.float64, _size(st, size, "size"), elements=_nonneg(st, min_rate, max_rate))


def bernoulli_probs(size: int | tuple[int, int] | SearchStrategy = (1, 8), *,
                    min_prob: float = 1e-30) -> SearchStrategy:
    """Spike probabilities per step in [0, 1] (silent and saturated inputs included).

    Parameters
    ----------
    size : int, (int, int) or strategy, optional
        Number of inputs (default 1 to 8).
    min_prob : float, optional
        Smallest nonzero probability (default 1e-30: a subnormal ``p`` makes ``p w**2``
        lose its relative precision in any variance formula).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of arrays, shape (n_inputs,).
    """
    st, hnp = _hyp()
    _magnitudes(min_prob, 1.0, "bernoulli_probs")
    return hnp.arrays(np.float64, _size(st, size, "size"), elements=_nonneg(st, min_prob, 1.0))


def leaks(min_alpha: float = 0.01) -> SearchStrategy:
    """Per-step leak factors ``alpha`` in ``[min_alpha, 1]`` (1 = no leak, always possible).

    Parameters
    ----------
    min_alpha : float, optional
        Smallest leak factor, in (0, 1] (default 0.01).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of floats.
    """
    st, _ = _hyp()
    if not 0 < min_alpha <= 1:
        raise ValueError(f"min_alpha must be in (0, 1], got {min_alpha!r}")
    return st.one_of(st.just(1.0), st.floats(min_alpha, 1.0, allow_nan=False))


def encoders() -> SearchStrategy:
    """The input encoders of :data:`l4theory.theory.ENCODERS`.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of str: ``"bernoulli"``, ``"signed"``, ``"poisson"``, ``"constant"``.
    """
    st, _ = _hyp()
    return st.sampled_from(ENCODERS)


def encoded_inputs(size: int | tuple[int, int] | SearchStrategy = (1, 8), encoder: str | None = None, *,
                   max_count: float = 5.0,
                   max_current: float = 3.0) -> SearchStrategy:
    """``(encoder, x)`` pairs with input values valid for that encoder.

    ``bernoulli``: probabilities in [0, 1]; ``signed``: intensities in [-1, 1];
    ``poisson``: expected counts per step in ``[0, max_count]``; ``constant``: currents in
    ``[-max_current, max_current]``.

    Parameters
    ----------
    size : int, (int, int) or strategy, optional
        Number of inputs (default 1 to 8).
    encoder : str, optional
        Fix the encoder (one of :data:`l4theory.theory.ENCODERS`); default: any.
    max_count, max_current : float, optional
        Ranges of the ``poisson`` and ``constant`` inputs.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of tuples ``(str, ndarray of shape (n_inputs,))``.
    """
    st, hnp = _hyp()
    if encoder is not None and encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    ranges = {"bernoulli": (0.0, 1.0), "signed": (-1.0, 1.0), "poisson": (0.0, max_count),
              "constant": (-max_current, max_current)}
    sizes = _size(st, size, "size")

    def values(enc):
        lo, hi = ranges[enc]
        return hnp.arrays(np.float64, sizes, elements=st.floats(lo, hi, allow_nan=False)).map(
            lambda x, enc=enc: (enc, x))

    return (st.just(encoder) if encoder else encoders()).flatmap(values)


def rates_and_weights(size: int | tuple[int, int] | SearchStrategy = (1, 10),
                      rows: int | tuple[int, int] | SearchStrategy | None = None, *,
                      min_rate: float = 1e-30, max_rate: float = 100.0, min_magnitude: float = 1e-30,
                      max_magnitude: float = 1e3) -> SearchStrategy:
    """``(rates, weights)`` of matching length (weights one vector or one row per neuron).

    Parameters
    ----------
    size : int, (int, int) or strategy, optional
        Number of inputs (default 1 to 10).
    rows : int, (int, int) or strategy, optional
        If given, weights have shape (n_rows, n_inputs); default one vector.
    min_rate, max_rate : float, optional
        As in :func:`rate_vectors` (default max 100).
    min_magnitude, max_magnitude : float, optional
        As in :func:`weight_vectors`.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of tuples ``(rates (n_inputs,), weights (n_inputs,) or (n_rows, n_inputs))``.
    """
    st, _ = _hyp()

    def pair(n):
        w = weight_vectors(n, min_magnitude=min_magnitude, max_magnitude=max_magnitude) \
            if rows is None else weight_matrices(rows, n, min_magnitude=min_magnitude,
                                                 max_magnitude=max_magnitude)
        return st.tuples(rate_vectors(n, min_rate=min_rate, max_rate=max_rate), w)

    return _size(st, size, "size").flatmap(pair)


def probs_and_weights(size: int | tuple[int, int] | SearchStrategy = (1, 8),
                      rows: int | tuple[int, int] | SearchStrategy | None = None, *,
                      max_magnitude: float = 3.0, min_magnitude: float = 1e-30,
                      min_prob: float = 1e-30) -> SearchStrategy:
    """``(probs, weights)`` of matching length: Bernoulli probabilities and signed weights.

    Parameters
    ----------
    size : int, (int, int) or strategy, optional
        Number of inputs (default 1 to 8).
    rows : int, (int, int) or strategy, optional
        If given, weights have shape (n_rows, n_inputs).
    max_magnitude, min_magnitude : float, optional
        Weight magnitudes (default up to 3, units of ``V`` per spike).
    min_prob : float, optional
        Smallest nonzero probability (see :func:`bernoulli_probs`).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of tuples ``(probs (n_inputs,), weights)``.
    """
    st, _ = _hyp()

    def pair(n):
        w = weight_vectors(n, min_magnitude=min_magnitude, max_magnitude=max_magnitude) \
            if rows is None else weight_matrices(rows, n, min_magnitude=min_magnitude,
                                                 max_magnitude=max_magnitude)
        return st.tuples(bernoulli_probs(n, min_prob=min_prob), w)

    return _size(st, size, "size").flatmap(pair)


def first_layers(kind: str = "any", *, weight_step: float = 0.1, max_weight: float = 2.0,
                 input_step: float = 0.05) -> SearchStrategy:
    """First layers with a calibration batch: ``(weights, x, geometry)``.

    Weights lie on a grid of ``weight_step`` in ``[-max_weight, max_weight]`` (not all zero)
    and inputs (mean spike values ``E[s]``) on a grid of ``input_step`` in [0, 1], so that
    sums are exact enough for identities at ``rtol = 1e-12``.

    ``dense``: weights (n_out 1-5, n_in 1-6), x (batch 1-4, n_in), geometry ``{}``.
    ``conv``: weights (c_out 1-3, c_in 1-2, kh 1-3, kw 1-3), x (batch 1-3, c_in, h, w)
    with ``h, w <= 5`` large enough for one window, geometry ``{"stride": (sh, sw),
    "padding": (ph, pw)}`` with strides 1-2 and paddings 0-1, the keywords of
    :func:`l4theory.adjust.adjust_weights`.

    Parameters
    ----------
    kind : {"any", "dense", "conv"}, optional
        Which layers (default either).
    weight_step : float, optional
        Grid of the weights; ``1/weight_step`` must be a whole number (default 0.1).
    max_weight : float, optional
        Largest weight magnitude (default 2).
    input_step : float, optional
        Grid of the inputs in [0, 1]; ``1/input_step`` must be a whole number (default 0.05).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Of tuples ``(weights, x, geometry)``.
    """
    st, _ = _hyp()
    from hypothesis import assume

    if kind not in ("any", "dense", "conv"):
        raise ValueError(f"kind must be 'any', 'dense' or 'conv', got {kind!r}")
    den_w, den_x = round(1 / weight_step), round(1 / input_step)
    if not (np.isclose(den_w * weight_step, 1) and np.isclose(den_x * input_step, 1)):
        raise ValueError(f"1/weight_step and 1/input_step must be whole numbers, got "
                         f"{weight_step!r}, {input_step!r}")
    k_max = int(round(max_weight * den_w))
    if k_max < 1:
        raise ValueError(f"max_weight must be >= weight_step, got {max_weight!r}")
    grid = st.integers(-k_max, k_max).map(lambda k: k / den_w)
    unit = st.integers(0, den_x).map(lambda k: k / den_x)

    @st.composite
    def dense(draw):
        n_out = draw(st.integers(1, 5))
        n_in = draw(st.integers(1, 6))
        batch = draw(st.integers(1, 4))
        w = np.array(draw(st.lists(grid, min_size=n_out * n_in, max_size=n_out * n_in)))
        x = np.array(draw(st.lists(unit, min_size=batch * n_in, max_size=batch * n_in)))
        assume(np.any(w))
        return w.reshape(n_out, n_in), x.reshape(batch, n_in), {}

    @st.composite
    def conv(draw):
        c_out = draw(st.integers(1, 3))
        c_in = draw(st.integers(1, 2))
        kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
        h = draw(st.integers(max(1, kh - 2 * padding[0]), 5))
        wd = draw(st.integers(max(1, kw - 2 * padding[1]), 5))
        batch = draw(st.integers(1, 3))
        nw, nx = c_out * c_in * kh * kw, batch * c_in * h * wd
        w = np.array(draw(st.lists(grid, min_size=nw, max_size=nw))).reshape(c_out, c_in, kh, kw)
        x = np.array(draw(st.lists(unit, min_size=nx, max_size=nx))).reshape(batch, c_in, h, wd)
        assume(np.any(w))
        return w, x, {"stride": stride, "padding": padding}

    if kind == "dense":
        return dense()
    if kind == "conv":
        return conv()
    return st.one_of(dense(), conv())
