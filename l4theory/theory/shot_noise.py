"""The exact law of the continuous-time shot-noise membrane, as a scipy.stats-like object.

Model: ``dV/dt = -V/tau + sum_i w_i sum_k delta(t - t_ik)``, ``V(0) = 0``, input ``i``
Poisson with rate ``rates[i]`` (the jump-w convention of :mod:`l4theory.theory.continuous`).

The characteristic function is closed-form. With ``a = exp(-t/tau)`` and ``c = k w_i``::

    log E[exp(i k V(t))] = sum_i rates_i tau [ -(Cin(|c|) - Cin(|c| a)) + i sgn(c) (Si(|c|) - Si(|c| a)) ]

where ``Cin(x) = gamma + ln x - Ci(x) = int_0^x (1 - cos u)/u du`` and ``Si`` is the sine
integral (Campbell's formula ``sum_i rates_i int_0^t (exp(i k w_i exp(-s/tau)) - 1) ds``
after the substitution ``u = |c| exp(-s/tau)``). At finite ``t`` the law has an atom
``P(V = 0) = exp(-t sum_{w_i != 0} rates_i)`` (no input spike yet); the rest is continuous.
:meth:`ShotNoise.cdf` inverts the characteristic function of the continuous part with the
Gil-Pelaez formula and adds the atom exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, special

from .._checks import as_array, as_rng, check_int, check_positive, check_same_shape, fmt
from .continuous import poisson_cumulant

__all__ = ["ShotNoise", "cin"]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)
_CIN_SERIES = [(-1) ** (k + 1) / (2 * k * special.factorial(2 * k)) for k in range(1, 13)]


def cin(x: ArrayLike) -> np.ndarray:
    """Entire cosine integral ``Cin(x) = int_0^x (1 - cos u)/u du`` for ``x >= 0``.

    Uses its power series below 1 (where ``gamma + ln x - Ci(x)`` would cancel) and
    ``gamma + ln x - Ci(x)`` above.

    Parameters
    ----------
    x : array_like
        Arguments, ``>= 0`` (dimensionless).

    Returns
    -------
    numpy.ndarray
        ``Cin(x)``, float64, shape of ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = x < 1.0
    xs2 = x[small] ** 2
    acc = np.zeros_like(xs2)
    power = xs2.copy()
    for coef in _CIN_SERIES:
        acc += coef * power
        power *= xs2
    out[small] = acc
    big = x[~small]
    out[~small] = np.euler_gamma + np.log(big) - special.sici(big)[1]
    return out


class ShotNoise:
    """Law of the free membrane ``V(t)`` driven by independent Poisson inputs.

    Parameters
    ----------
    rates : array_like, shape (n_inputs,)
        Poisson rate of each input (spikes per unit time, ``>= 0``).
    weights : array_like, shape (n_inputs,)
        Jump of ``V`` per spike of each input (units of ``V``, signed).
    tau : float
        Membrane time constant (same time unit; ``np.inf`` = no leak). Jump-w convention:
        ``dV/dt = -V/tau + sum_i w_i sum_k delta(t - t_ik)``.
    t : float, optional
        Time since ``V(0) = 0``; ``np.inf`` (default) is the stationary law (finite ``tau``).

    Notes
    -----
    Moments come from Campbell's theorem (:func:`~l4theory.theory.poisson_cumulant`).
    ``cdf``, ``sf`` and ``pdf`` invert the closed-form characteristic function (Gil-Pelaez),
    to about 1e-9 absolute away from the points where the density jumps (``w_i`` and
    ``w_i exp(-t/tau)`` at finite ``t``). With ``tau = inf`` the law is a discrete
    compound-Poisson law, which this class samples and describes by its cumulants but
    does not tabulate (``cdf``/``sf``/``pdf`` raise).
    """

    def __init__(self, rates: ArrayLike, weights: ArrayLike, tau: float, t: float = np.inf) -> None:
        self.rates = as_array("rates", rates, ndim=1, nonneg=True)
        self.weights = as_array("weights", weights, ndim=1)
        check_same_shape(rates=self.rates, weights=self.weights)
        self.tau = float(check_positive("tau", tau, allow_inf=True))
        t = as_array("t", t, nonneg=True, allow_inf=True)
        if t.ndim != 0:
            raise ValueError(f"t must be a scalar, got shape {t.shape}")
        self.t = float(t)
        if np.isinf(self.t) and np.isinf(self.tau):
            raise ValueError("t = inf needs a finite tau: without leak there is no stationary state")
        active = (self.weights != 0) & (self.rates > 0)
        self._rates, self._weights = self.rates[active], self.weights[active]

    def __repr__(self) -> str:
        return (f"ShotNoise(rates={fmt(self.rates)}, weights={fmt(self.weights)}, "
                f"tau={self.tau}, t={self.t})")

    # ------------------------------------------------------------------ moments
    def cumulant(self, n: int) -> float:
        """n-th cumulant (Campbell's theorem).

        Parameters
        ----------
        n : int
            Order, ``n >= 1``.

        Returns
        -------
        float
            ``kappa_n`` (units of ``V**n``).
        """
        return float(poisson_cumulant(n, self.rates, self.weights, self.tau, self.t))

    def mean(self) -> float:
        """Mean, the paper's Eq. 1.

        Returns
        -------
        float
            ``E[V]`` (units of ``V``).
        """
        return self.cumulant(1)

    def var(self) -> float:
        """Variance, the paper's Eq. 2.

        Returns
        -------
        float
            ``Var V`` (units of ``V**2``).
        """
        return self.cumulant(2)

    def std(self) -> float:
        """Standard deviation.

        Returns
        -------
        float
            ``sqrt(Var V)`` (units of ``V``).
        """
        return float(np.sqrt(self.var()))

    def skew(self) -> float:
        """Skewness ``kappa_3 / kappa_2**1.5`` (NaN for a degenerate law).

        Returns
        -------
        float
            Dimensionless.
        """
        var = self.var()
        return self.cumulant(3) / var**1.5 if var > 0 else float("nan")

    def kurtosis(self) -> float:
        """Excess kurtosis ``kappa_4 / kappa_2**2`` (NaN for a degenerate law).

        Returns
        -------
        float
            Dimensionless.
        """
        var = self.var()
        return self.cumulant(4) / var**2 if var > 0 else float("nan")

    @property
    def atom(self) -> float:
        """``P(V = 0)``: probability that no (non-zero) input spike has arrived yet."""
        if np.isinf(self.t):
            return 0.0 if self._rates.size else 1.0
        return float(np.exp(-self.t * np.sum(self._rates)))

    # ------------------------------------------------- characteristic function
    def log_cf(self, k: ArrayLike) -> np.ndarray:
        """Log characteristic function ``log E[exp(i k V)]`` at real ``k`` (closed form).

        Parameters
        ----------
        k : array_like
            Fourier variable (units of ``1/V``).

        Returns
        -------
        numpy.ndarray
            complex128, shape of ``k``.
        """
        k = as_array("k", k)
        c = k[..., None] * self._weights
        lam = self._rates
        if np.isinf(self.tau):
            return np.sum(lam * self.t * np.expm1(1j * c), axis=-1)
        ac = np.abs(c)
        re = -cin(ac)
        im = special.sici(ac)[0]
        if np.isfinite(self.t):
            a = np.exp(-self.t / self.tau)
            re = re + cin(ac * a)
            im = im - special.sici(ac * a)[0]
        return np.sum(lam * self.tau * (re + 1j * np.sign(c) * im), axis=-1)

    def cf(self, k: ArrayLike) -> np.ndarray:
        """Characteristic function ``E[exp(i k V)]``.

        Parameters
        ----------
        k : array_like
            Fourier variable (units of ``1/V``).

        Returns
        -------
        numpy.ndarray
            complex128, shape of ``k``.
        """
        return np.exp(self.log_cf(k))

    def _cf_continuous(self, k):
        return self.cf(k) - self.atom

    # ---------------------------------------------------------- distribution
    def _check_tabulable(self):
        if np.isinf(self.tau):
            raise ValueError(
                "tau = inf gives a discrete compound-Poisson law: cdf/sf/pdf are not tabulated; "
                "use the cumulants or rvs()"
            )

    def _nodes(self, k_max, fmax):
        """Gauss-Legendre nodes and weights on [0, k_max], panels resolving frequency fmax."""
        width = min(np.pi / max(fmax, 1e-300), k_max)
        n_panels = int(np.ceil(k_max / width))
        left = np.arange(n_panels) * width
        nodes = (left[:, None] + 0.5 * width * (_GL_X + 1.0)).ravel()
        wts = np.tile(0.5 * width * _GL_W, n_panels)
        return nodes, wts

    def _k_split(self):
        w_min = np.min(np.abs(self._weights))
        scale = 1.0 / w_min
        # Stationary: the cf is smooth beyond a few oscillations and QAWF takes the tail.
        # Finite t: the continuous part decays like 1/k with oscillations, so integrate far.
        return (60.0 if np.isinf(self.t) else 3000.0) * 2 * np.pi * scale

    def _gil_pelaez(self, x, kind):
        """Integral over k of the Gil-Pelaez (cdf) or Fourier-inversion (pdf) integrand."""
        self._check_tabulable()
        x = as_array("x", x)
        flat = x.ravel()
        out = np.empty_like(flat)
        if self._rates.size == 0:
            return out.reshape(x.shape) * 0.0
        k_max = self._k_split()
        fmax = np.max(np.abs(self._weights)) + (np.max(np.abs(flat)) if flat.size else 0.0)
        nodes, wts = self._nodes(k_max, fmax)
        phi = np.concatenate([self._cf_continuous(ch) for ch in np.array_split(nodes, max(1, nodes.size // 20000))])
        for j, xj in enumerate(flat):
            cos, sin = np.cos(nodes * xj), np.sin(nodes * xj)
            if kind == "cdf":
                vals = (phi.imag * cos - phi.real * sin) / nodes
                head = np.dot(wts, vals)
                tail = self._tail(lambda k: self._cf_continuous(k).imag / k,
                                  lambda k: self._cf_continuous(k).real / k, xj, k_max)
                out[j] = head + tail
            else:
                vals = phi.real * cos + phi.imag * sin
                head = np.dot(wts, vals)
                out[j] = head + self._tail(lambda k: self._cf_continuous(k).real,
                                           lambda k: self._cf_continuous(k).imag, xj, k_max,
                                           sign=-1.0)
        return out.reshape(x.shape)

    def _tail(self, f_cos, f_sin, x, k0, sign=1.0):
        """Integral over [k0, inf) of ``f_cos(k) cos(kx) - sign * f_sin(k) sin(kx)``.

        Only used in the stationary case, where the cf is smooth at large k (finite-t
        integrals are taken far enough that their tail is negligible).
        """
        if np.isfinite(self.t):
            return 0.0
        def scalar(f):
            return lambda k: float(f(np.array([k]))[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            if x == 0.0:
                tc = integrate.quad(scalar(f_cos), k0, np.inf, limit=500)[0]
                ts = 0.0
            else:
                tc = integrate.quad(scalar(f_cos), k0, np.inf, weight="cos", wvar=abs(x), limlst=100)[0]
                ts = np.sign(x) * integrate.quad(scalar(f_sin), k0, np.inf, weight="sin",
                                                 wvar=abs(x), limlst=100)[0]
        return tc - sign * ts

    def cdf(self, x: ArrayLike) -> np.ndarray:
        """``P(V <= x)``, atom at 0 included (Gil-Pelaez inversion of the closed-form cf).

        Parameters
        ----------
        x : array_like
            Membrane values (units of ``V``).

        Returns
        -------
        numpy.ndarray
            Same shape as ``x``.
        """
        x = as_array("x", x)
        integral = self._gil_pelaez(x, "cdf")
        atom = self.atom
        cont = (1.0 - atom) / 2.0 - integral / np.pi
        return np.clip(cont + atom * (x >= 0), 0.0, 1.0)

    def sf(self, x: ArrayLike) -> np.ndarray:
        """``P(V > x)``; computed directly (not as ``1 - cdf``) to keep small tails accurate.

        Parameters
        ----------
        x : array_like
            Membrane values (units of ``V``).

        Returns
        -------
        numpy.ndarray
            Probabilities in [0, 1], shape of ``x``.
        """
        x = as_array("x", x)
        integral = self._gil_pelaez(x, "cdf")
        atom = self.atom
        cont = (1.0 - atom) / 2.0 + integral / np.pi
        return np.clip(cont + atom * (x < 0), 0.0, 1.0)

    def pdf(self, x: ArrayLike) -> np.ndarray:
        """Density of the continuous part (the atom at 0 excluded).

        Parameters
        ----------
        x : array_like
            Membrane values (units of ``V``).

        Returns
        -------
        numpy.ndarray
            Density (units of ``1/V``), shape of ``x``.
        """
        x = as_array("x", x)
        return np.maximum(self._gil_pelaez(x, "pdf") / np.pi, 0.0)

    # --------------------------------------------------------------- sampling
    def rvs(self, size: int = 1, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Exact samples of ``V(t)`` by event sampling (no time step).

        The number of input spikes is ``Poisson(t * sum rates)`` (superposition); each
        spike picks its input with probability ``rates_i / sum rates`` and arrives
        uniformly on ``[0, t]``; it contributes ``w_i exp(-(t - s)/tau)``. The stationary
        law (``t = inf``) is sampled at ``t = 40 tau``, where the memory of ``V(0) = 0``
        is ``exp(-40) < 1e-17`` of any jump.

        Parameters
        ----------
        size : int
            Number of samples.
        rng : numpy.random.Generator, int or None
            Random source.

        Returns
        -------
        numpy.ndarray, shape (size,)
            Samples of ``V(t)`` (units of ``V``).
        """
        size = check_int("size", size, minimum=0)
        rng = as_rng(rng)
        horizon = 40.0 * self.tau if np.isinf(self.t) else self.t
        lam = self._rates
        total = float(np.sum(lam))
        out = np.zeros(size)
        if total == 0.0 or size == 0:
            return out
        counts = rng.poisson(total * horizon, size=size)
        n_events = int(counts.sum())
        which = rng.choice(lam.size, size=n_events, p=lam / total)
        age = rng.uniform(0.0, horizon, size=n_events)  # time from spike to the observation
        decay = np.ones(n_events) if np.isinf(self.tau) else np.exp(-age / self.tau)
        owner = np.repeat(np.arange(size), counts)
        np.add.at(out, owner, self._weights[which] * decay)
        return out
