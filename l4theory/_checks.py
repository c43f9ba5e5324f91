"""Input validation shared by every public function.

Each checker takes the parameter's *name* and its value and either returns a clean NumPy
value or raises :class:`ValueError` naming the parameter and the offending value.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "as_array",
    "as_rng",
    "check_alpha",
    "check_choice",
    "check_int",
    "check_positive",
    "check_probs",
    "check_same_shape",
    "fmt",
]


def fmt(value) -> str:
    """Short printable form of a (possibly large) value for error messages."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        return repr(arr.item())
    flat = arr.ravel()
    body = np.array2string(flat[:6], precision=6, separator=", ")
    return f"{body[:-1]}, ...] (shape {arr.shape})" if flat.size > 6 else body


def as_array(name: str, value, *, ndim: int | None = None, nonneg: bool = False,
             finite: bool = True, allow_inf: bool = False) -> np.ndarray:
    """Return ``value`` as a float64 array, checking dimension, sign and finiteness.

    Parameters
    ----------
    name : str
        Parameter name used in error messages.
    value : array_like
        The value to check.
    ndim : int, optional
        Required number of dimensions.
    nonneg : bool
        Require every element ``>= 0``.
    finite : bool
        Reject NaN and infinities (NaN is always rejected).
    allow_inf : bool
        Accept ``+inf`` (for ``t`` or ``tau`` that may be infinite) even when ``finite``.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {value!r}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}: {fmt(arr)}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not contain NaN, got {fmt(arr)}")
    if finite:
        bad = ~np.isfinite(arr)
        if allow_inf:
            bad &= ~(arr == np.inf)
        if bad.any():
            raise ValueError(f"{name} must be finite, got {fmt(arr)}")
    if nonneg and (arr < 0).any():
        raise ValueError(f"{name} must be >= 0, got {fmt(arr)}")
    return arr


def check_positive(name: str, value, *, allow_inf: bool = False) -> np.ndarray:
    """Return ``value`` as a float64 array after checking it is ``> 0``."""
    arr = as_array(name, value, allow_inf=allow_inf)
    if (arr <= 0).any():
        raise ValueError(f"{name} must be > 0, got {fmt(arr)}")
    return arr


def check_probs(name: str, value) -> np.ndarray:
    """Return ``value`` as a float64 array of probabilities in ``[0, 1]``."""
    arr = as_array(name, value)
    if ((arr < 0) | (arr > 1)).any():
        raise ValueError(f"{name} must lie in [0, 1], got {fmt(arr)}")
    return arr


def check_alpha(name: str, value) -> float:
    """Return the leak scalar as a float after checking ``0 < alpha <= 1``."""
    arr = as_array(name, value)
    if arr.ndim != 0 or not 0.0 < float(arr) <= 1.0:
        raise ValueError(f"{name} must be a scalar in (0, 1], got {fmt(arr)}")
    return float(arr)


def check_choice(name: str, value, choices) -> str:
    """Return ``value`` after checking it is one of ``choices`` (a sequence of str)."""
    choices = tuple(choices)
    if not (isinstance(value, str) and value in choices):
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_int(name: str, value, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int after checking it is integral and ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_same_shape(**arrays: np.ndarray) -> None:
    """Raise if the given named arrays do not all have the same shape."""
    items = list(arrays.items())
    name0, arr0 = items[0]
    for name, arr in items[1:]:
        if np.shape(arr) != np.shape(arr0):
            raise ValueError(
                f"{name} has shape {np.shape(arr)} but {name0} has shape {np.shape(arr0)}; "
                "they must match"
            )


def as_rng(rng) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` from a Generator, an int seed or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy.random.Generator, an int seed or None, got {rng!r}")
