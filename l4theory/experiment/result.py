"""The outcome of a sweep (:func:`l4theory.experiment.sweep.sweep`) and its JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .stats import mean_ci

__all__ = ["SweepResult"]


@dataclass
class SweepResult:
    """Outcome of :func:`~l4theory.experiment.sweep.sweep` (accuracies are fractions in [0, 1]).

    Attributes
    ----------
    scales : numpy.ndarray, shape (n_scales,)
    r_s : numpy.ndarray, shape (n_rs,)
    select_baseline : numpy.ndarray, shape (n_scales,)
        Selection-set accuracy of the baseline per threshold scale.
    select_adjusted : numpy.ndarray, shape (n_rs, n_scales)
        Selection-set accuracy of the adjusted network per ``(r_s, scale)``.
    best_scale_baseline, best_scale_adjusted, best_r_s : float
    test_baseline, test_adjusted : numpy.ndarray of bool, shape (n_seeds, n_test)
        Per-seed, per-image correctness on the test subset at the last step.
    curve_baseline, curve_adjusted : numpy.ndarray, shape (steps,)
        Test accuracy after every step, averaged over seeds.
    ann_accuracy : float
        ANN accuracy on the same test subset.
    thresholds : numpy.ndarray
        Balanced thresholds (scale 1).
    spike_rates_baseline, spike_rates_adjusted : numpy.ndarray, shape (n_spiking,)
        Test spike rates (spikes per neuron per step), averaged over seeds.
    params : dict
        Settings and provenance.
    """

    scales: np.ndarray
    r_s: np.ndarray
    select_baseline: np.ndarray
    select_adjusted: np.ndarray
    best_scale_baseline: float
    best_scale_adjusted: float
    best_r_s: float
    test_baseline: np.ndarray
    test_adjusted: np.ndarray
    curve_baseline: np.ndarray
    curve_adjusted: np.ndarray
    ann_accuracy: float
    thresholds: np.ndarray
    spike_rates_baseline: np.ndarray
    spike_rates_adjusted: np.ndarray
    params: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Accuracies with 95% CIs (over test images), the paired difference, the gap.

        Returns
        -------
        dict
            ``baseline``, ``adjusted``, ``difference`` (each :func:`mean_ci` output plus
            ``per_seed``), ``ann_accuracy``, ``gap`` (ANN - baseline), ``recovered``
            (difference / gap; NaN when the gap is not positive), the chosen settings.
        """
        base = self.test_baseline.mean(axis=0)
        adj = self.test_adjusted.mean(axis=0)
        out = {
            "baseline": {**mean_ci(base),
                         "per_seed": self.test_baseline.mean(axis=1).tolist()},
            "adjusted": {**mean_ci(adj),
                         "per_seed": self.test_adjusted.mean(axis=1).tolist()},
            "difference": {**mean_ci(adj - base),
                           "per_seed": (self.test_adjusted.mean(axis=1)
                                        - self.test_baseline.mean(axis=1)).tolist()},
            "ann_accuracy": self.ann_accuracy,
            "best_scale_baseline": self.best_scale_baseline,
            "best_scale_adjusted": self.best_scale_adjusted,
            "best_r_s": self.best_r_s,
        }
        gap = self.ann_accuracy - out["baseline"]["mean"]
        out["gap"] = gap
        out["recovered"] = out["difference"]["mean"] / gap if gap > 0 else float("nan")
        return out

    def to_json(self) -> dict:
        """Everything as plain JSON types (arrays as lists, inf as the string "inf").

        Returns
        -------
        dict
            Every field (``test_baseline``/``test_adjusted`` as 0/1 integers), plus
            ``summary`` (:meth:`~l4theory.experiment.result.SweepResult.summary`);
            non-finite floats as ``"inf"``, ``"-inf"``, ``"nan"``.
        """
        def conv(v):
            if isinstance(v, np.ndarray):
                return conv(v.tolist())
            if isinstance(v, (list, tuple)):
                return [conv(u) for u in v]
            if isinstance(v, dict):
                return {k: conv(u) for k, u in v.items()}
            if isinstance(v, (float, np.floating)) and not math.isfinite(v):
                return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
            if isinstance(v, np.generic):
                return v.item()
            return v

        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["test_baseline"] = self.test_baseline.astype(np.int8)
        d["test_adjusted"] = self.test_adjusted.astype(np.int8)
        d["summary"] = self.summary()
        return conv(d)
