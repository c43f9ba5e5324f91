"""Arms: every first-layer method behind one interface, each fitted once.

An :class:`Arm` names a method and its parameters -- ``none`` (the converted network as it
is), ``l4`` and ``exact`` with a smoothing ratio ``r_s`` (Eqs. 6-9, :mod:`l4theory.adjust`),
``ratematch`` and ``overshoot`` (:mod:`l4theory.calibrate`). An ``l4``/``exact`` arm with
``mu="membrane"`` takes Eq. 6's mean from the first layer's membrane potential sampled in
simulation at the setting (:func:`l4theory.convert.first_layer.membrane_mean`, as the
paper does) instead of the per-step input current. :func:`fit_arm` returns the
network an arm runs and a JSON-safe summary of its fit. A fit depends only on what its
method reads (L4 and exact: the network, the calibration images, the balanced first
threshold and the encoder; rate matching and overshoot also on the setting and the
threshold scale), and is kept in this process under a key made of exactly those inputs
(:func:`fit_key`), so an experiment fits each (arm, network, setting, scale) once however
many seeds and image blocks it simulates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .keys import digest_arrays, network_digest, task_key

__all__ = ["MEMBRANE_SEED", "METHODS", "Arm", "clear_fits", "fit_arm", "fit_count", "fit_key"]

#: The first-layer methods.
METHODS = ("none", "l4", "exact", "ratematch", "overshoot")
_SETTING_FREE = ("none", "l4", "exact")  # fits that do not depend on the simulation setting
_MU = (None, "membrane")
#: Input spike seed of the membrane sampling of ``mu="membrane"`` arms (default).
MEMBRANE_SEED = 30_000

_FITS: dict = {}
_COUNT: dict = {}
_MEMBRANE: dict = {}  # sampled membrane means, shared by the arms that differ in r_s only


@dataclass(frozen=True)
class Arm:
    """One first-layer method with its parameters (hashable, JSON via :meth:`~l4theory.experiment.arms.Arm.to_dict`).

    Attributes
    ----------
    method : {"none", "l4", "exact", "ratematch", "overshoot"}
    r_s : float or None
        Smoothing ratio of ``l4``/``exact`` (``>= 0``; ``math.inf`` leaves the layer as it
        is); None for the other methods.
    fit_seed : int or None
        Input spike seed of the rate-matching fit's runs (None: the default, 20000), or
        of the membrane sampling of a ``mu="membrane"`` arm (None: 30000).
    mu : {None, "membrane"}
        ``l4``/``exact`` only: the mean of Eq. 6. None: the per-step input current
        ``w_j . E[s]``; ``"membrane"``: the first layer's mean membrane potential sampled
        on the calibration images at the setting and the balanced threshold ``v_th0``
        (the paper's).
    """

    method: str
    r_s: float | None = None
    fit_seed: int | None = None
    mu: str | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"arm method must be one of {METHODS}, got {self.method!r}")
        if self.method in ("l4", "exact"):
            r = self.r_s
            if isinstance(r, str) and r == "inf":
                r = math.inf
            try:
                r = float(r)
            except (TypeError, ValueError):
                raise ValueError(f"r_s of a {self.method} arm must be a number >= 0 or inf, "
                                 f"got {self.r_s!r}") from None
            if not r >= 0:
                raise ValueError(f"r_s must be >= 0 or inf, got {self.r_s!r}")
            object.__setattr__(self, "r_s", r)
        elif self.r_s is not None:
            raise ValueError(f"a {self.method} arm takes no r_s, got {self.r_s!r}")
        if self.mu not in _MU:
            raise ValueError(f"arm mu must be one of {_MU}, got {self.mu!r}")
        if self.mu is not None and self.method not in ("l4", "exact"):
            raise ValueError(f"a {self.method} arm takes no mu, got {self.mu!r}")

    @classmethod
    def from_dict(cls, d: dict) -> Arm:
        """From ``{"method": ..., "r_s": ..., "fit_seed": ...}`` (the JSON form).

        Parameters
        ----------
        d : dict
            The JSON form (:meth:`~l4theory.experiment.arms.Arm.to_dict`): ``method``, and
            optionally ``r_s`` (a number, or ``"inf"``) and ``fit_seed``; no other keys.

        Returns
        -------
        Arm
            The arm, validated.
        """
        unknown = set(d) - {"method", "r_s", "fit_seed", "mu"}
        if unknown:
            raise ValueError(f"unknown arm fields {sorted(unknown)} in {d!r}")
        return cls(d["method"], d.get("r_s"), d.get("fit_seed"), d.get("mu"))

    def to_dict(self) -> dict:
        """The JSON form (``r_s`` only for L4/exact, ``"inf"`` for infinity).

        Returns
        -------
        dict
            ``method``, plus ``r_s`` (float, or ``"inf"``) and ``fit_seed`` when set; read
            back by :meth:`~l4theory.experiment.arms.Arm.from_dict`.
        """
        d: dict = {"method": self.method}
        if self.r_s is not None:
            d["r_s"] = "inf" if math.isinf(self.r_s) else self.r_s
        if self.fit_seed is not None:
            d["fit_seed"] = self.fit_seed
        if self.mu is not None:
            d["mu"] = self.mu
        return d

    @property
    def label(self) -> str:
        """Short text name (``"l4 r_s=0.5"``, ``"ratematch"``)."""
        mu = "" if self.mu is None else f" mu={self.mu}"
        if self.r_s is not None:
            return f"{self.method} r_s={self.r_s:g}{mu}"
        return self.method


def fit_key(arm: Arm, net, x_cal, *, v_th0: float, v_th: float, setting: dict,
            encoder: str = "signed", bias_scale: float = 1.0) -> str:
    """Key of one fit: the arm and exactly the inputs its method reads.

    Parameters
    ----------
    arm : Arm
    net : Network
        The converted network (hashed by :func:`~l4theory.experiment.keys.network_digest`).
    x_cal : numpy.ndarray, shape (n, *net.input_shape)
        Calibration images.
    v_th0 : float
        The first layer's balanced threshold before any scale (read by ``none``, ``l4``
        and ``exact``).
    v_th : float
        The first layer's threshold in the run (read by ``ratematch`` and ``overshoot``).
    setting : dict
        ``steps``, ``alpha``, ``reset``, ``semantics`` of the simulation (read by
        ``ratematch`` and ``overshoot``).
    encoder : str
        Input encoder.
    bias_scale : float
        Balancing factor of the first layer's bias (read by ``ratematch`` and
        ``overshoot``).

    Returns
    -------
    str
        64 hex digits (:func:`~l4theory.experiment.keys.task_key` of kind ``"arm"``).
    """
    base = (arm.to_dict(), network_digest(net), digest_arrays(np.asarray(x_cal)), encoder)
    if arm.method in _SETTING_FREE and arm.mu is None:
        return task_key("arm", *base, float(v_th0))
    if arm.mu is not None:  # the sampled membrane depends on the setting, not on the scale
        return task_key("arm", *base, float(v_th0), float(bias_scale), setting)
    return task_key("arm", *base, float(v_th), float(bias_scale), setting)


def fit_arm(arm: Arm, net, x_cal, *, v_th0: float, v_th: float, steps: int, alpha: float,
            reset: str, semantics: str = "project", encoder: str = "signed",
            bias_scale: float = 1.0):
    """The network an arm runs, and a JSON-safe summary of its fit (fitted once per key).

    Parameters
    ----------
    arm : Arm
    net : Network
        The converted network (thresholds balanced separately).
    x_cal : numpy.ndarray, shape (n, *net.input_shape)
        Calibration images (training set); every fit uses these only.
    v_th0 : float
        The first layer's balanced threshold before any scale (``v_th0`` of Eq. 8).
    v_th : float
        The first layer's threshold in the run (balanced threshold times the scale):
        rate matching fits its factors to it.
    steps, alpha, reset, semantics, encoder : the simulation setting.
    bias_scale : float
        Balancing factor of the first layer's bias.

    Returns
    -------
    (Network, dict)
        ``net`` itself for ``none``; a copy with the first layer changed otherwise.
    """
    if not isinstance(arm, Arm):
        raise TypeError(f"arm must be an Arm, got {type(arm).__name__}")
    setting = {"steps": int(steps), "alpha": float(alpha), "reset": reset,
               "semantics": semantics}
    key = fit_key(arm, net, x_cal, v_th0=v_th0, v_th=v_th, setting=setting, encoder=encoder,
                  bias_scale=bias_scale)
    if key not in _FITS:
        _FITS[key] = _fit(arm, net, x_cal, v_th0, v_th, setting, encoder, bias_scale)
        _COUNT[key] = _COUNT.get(key, 0) + 1
    return _FITS[key]


def _fit(arm, net, x_cal, v_th0, v_th, setting, encoder, bias_scale):
    if arm.method == "none":
        return net, {"method": "none"}
    if arm.method in ("l4", "exact"):
        from ..adjust import adjusted_network

        mu = None
        if arm.mu == "membrane":
            from ..convert.first_layer import membrane_mean

            seed = MEMBRANE_SEED if arm.fit_seed is None else arm.fit_seed
            key = task_key("membrane", network_digest(net), digest_arrays(np.asarray(x_cal)),
                           encoder, float(v_th0), float(bias_scale), setting, seed)
            if key not in _MEMBRANE:
                _MEMBRANE[key] = membrane_mean(
                    net, x_cal, v_th=float(v_th0), steps=setting["steps"],
                    alpha=setting["alpha"], reset=setting["reset"],
                    semantics=setting["semantics"], encoder=encoder, seed=seed,
                    bias_scale=float(bias_scale))
            mu = _MEMBRANE[key]
        res = adjusted_network(net, x_cal, float(v_th0), arm.r_s, encoder=encoder,
                               method=arm.method, mu=mu)
        summary = res.summary()
        if mu is not None:
            summary["mu"] = {"source": "membrane", "min": float(mu.min()),
                             "max": float(mu.max()), "mean": float(mu.mean())}
        return res.network, summary
    from ..calibrate import adjusted_first_layer

    sim = {} if setting["semantics"] == "project" else {"semantics": setting["semantics"]}
    fit = adjusted_first_layer(net, x_cal, arm.method, v_th=float(v_th),
                               steps=setting["steps"], alpha=setting["alpha"],
                               reset=setting["reset"], encoder=encoder,
                               bias_scale=float(bias_scale), sim_kwargs=sim,
                               seed=20_000 if arm.fit_seed is None else arm.fit_seed)
    return fit.network, fit.summary()


def fit_count(key: str | None = None) -> int:
    """How many fits ran in this process (of one key, or in all).

    Parameters
    ----------
    key : str, optional
        A key of :func:`~l4theory.experiment.arms.fit_key`; None counts every fit.

    Returns
    -------
    int
        Number of fits computed (not looked up) in this process.
    """
    return _COUNT.get(key, 0) if key is not None else sum(_COUNT.values())


def clear_fits() -> None:
    """Forget every fit kept in this process (tests; memory)."""
    _FITS.clear()
    _COUNT.clear()
    _MEMBRANE.clear()
