"""Explanatory plots of the shot-noise theory (needs matplotlib: the ``plot`` extra).

One function per picture, each taking data or parameters and an optional ``ax`` (or
``axes``) to draw into, and returning the :class:`matplotlib.figure.Figure`:

:func:`membrane_law`
    Exact density of the membrane potential with moment-matched Gaussian and lognormal
    fits and, optionally, a histogram of samples.
:func:`envelope_vs_std`
    Exact std of each neuron against its L4 envelope ``sqrt(g ||r||_2) ||w||_4``.
:func:`hadamard_drift`
    Arrows from unit weight vectors ``w`` to ``w∘2``, and the drift angle over ``theta``.
:func:`dominance_map`
    Which of two neurons dominates over the input plane, with the dot-product boundary.
:func:`threshold_hysteresis`
    The threshold a sweeping neuron needs to match a static neuron's rate (Fig. 5 set-up),
    with the Eq. 6 predictions.

No backend is chosen here: a new figure (when no ``ax`` is given) comes from
:func:`matplotlib.pyplot.subplots` under whatever backend is active. The repository's
``figures`` package composes the paper's figures from these functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

try:
    import matplotlib  # noqa: F401  (fail early with the extra's name)
except ImportError as exc:  # pragma: no cover - exercised with a patched import in the tests
    raise ImportError("l4theory.plot needs matplotlib: pip install 'l4theory[plot]' "
                      f"({exc})") from exc

from ._checks import as_array, check_positive, fmt
from .theory.continuous import poisson_mean, poisson_var
from .theory.norms import hadamard_drift as _drift
from .theory.norms import hadamard_square, l4_norm, variance_decomposition

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["COLORS", "dominance_map", "dot_boundary", "envelope_vs_std", "hadamard_drift",
           "hysteresis_predictions", "membrane_law", "moment_fits", "threshold_hysteresis"]

#: Colours: neuron A / B of a pair, theory lines, simulation markers, approximations,
#: resets and predictions (the palette of the repository's figures).
COLORS = {
    "A": "#1f77b4",
    "B": "#d62728",
    "theory": "#222222",
    "sim": "#7f7f7f",
    "gauss": "#2ca02c",
    "lognormal": "#9467bd",
    "hard": "#1f77b4",
    "soft": "#ff7f0e",
    "l4": "#000000",
    "exactvar": "#2ca02c",
    "siegert": "#9467bd",
}


def _axes(ax, n=1, **kw):
    """``(fig, axes)``: the given axes' figure, or a new constrained-layout figure."""
    if ax is not None:
        axes = list(np.atleast_1d(ax)) if n > 1 else [ax]
        if len(axes) != n:
            raise ValueError(f"axes must be {n} matplotlib Axes, got {len(axes)}")
        return axes[0].figure, axes
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, layout="constrained", **kw)
    return fig, list(np.atleast_1d(axes))


def moment_fits(x: ArrayLike, mean: float, var: float) -> dict[str, np.ndarray]:
    """Moment-matched Gaussian and lognormal densities on ``x``.

    Parameters
    ----------
    x : array_like
        Points (units of ``V``).
    mean : float
        Mean of the law (``> 0`` for the lognormal).
    var : float
        Variance of the law (``> 0``).

    Returns
    -------
    gauss, lognormal : numpy.ndarray
        Densities, shape of ``x``.
    """
    from scipy import stats

    x = as_array("x", x)
    m, v = float(mean), float(check_positive("var", var))
    gauss = stats.norm.pdf(x, m, np.sqrt(v))
    if m <= 0:
        return gauss, np.full_like(x, np.nan)
    s2 = np.log1p(v / m**2)
    return gauss, stats.lognorm.pdf(x, s=np.sqrt(s2), scale=m * np.exp(-s2 / 2))


def membrane_law(x: ArrayLike, pdf: ArrayLike, mean: float, var: float, *, edges: ArrayLike | None = None,
                 density: ArrayLike | None = None, density_se: ArrayLike | None = None,
                 fits: Sequence[str] = ("gaussian", "lognormal"), ax: Axes | None = None, color: str | None = None,
                 title: str | None = None, legend: bool = True, exact_label: str = "exact") -> Figure:
    """Exact density of ``V`` with moment-matched fits and an optional histogram.

    Parameters
    ----------
    x : array_like, shape (n,)
        Points where the density is given (units of ``V``).
    pdf : array_like, shape (n,)
        Exact density at ``x`` (e.g. :meth:`l4theory.theory.ShotNoise.pdf`).
    mean, var : float
        Mean and variance of the law (the fits match them).
    edges : array_like, shape (n_bins + 1,), optional
        Histogram bin edges; with ``density``.
    density : array_like, shape (n_bins,), optional
        Histogram of samples as a density (e.g. simulated ``V``).
    density_se : array_like, shape (n_bins,), optional
        Standard error of each bin's density (drawn as error bars).
    fits : sequence of {"gaussian", "lognormal"}, optional
        Which moment-matched approximations to draw (default both).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.
    color : str, optional
        Colour of the histogram (default the ``sim`` colour).
    title : str, optional
        Axes title.
    legend : bool, optional
        Draw a legend (default True).
    exact_label : str, optional
        Legend text of the exact density (default ``"exact"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    x, pdf = as_array("x", x, ndim=1), as_array("pdf", pdf, ndim=1)
    if x.shape != pdf.shape:
        raise ValueError(f"x and pdf must have the same shape, got {x.shape} and {pdf.shape}")
    unknown = set(fits) - {"gaussian", "lognormal"}
    if unknown:
        raise ValueError(f"fits must be 'gaussian' and/or 'lognormal', got {sorted(unknown)}")
    fig, (ax,) = _axes(ax)
    color = color or COLORS["sim"]
    if density is not None:
        if edges is None:
            raise ValueError("density needs edges (the histogram's bin edges)")
        edges, density = as_array("edges", edges, ndim=1), as_array("density", density, ndim=1)
        if edges.size != density.size + 1:
            raise ValueError(f"edges must have one more entry than density, got {edges.size} "
                             f"and {density.size}")
        mid = 0.5 * (edges[1:] + edges[:-1])
        ax.bar(mid, density, width=np.diff(edges), color=color, alpha=0.25,
               label="simulation (histogram)")
        if density_se is not None:
            ax.errorbar(mid, density, yerr=as_array("density_se", density_se), fmt="none",
                        ecolor=color, elinewidth=0.8)
    ax.plot(x, pdf, color=COLORS["theory"], label=exact_label)
    gauss, logn = moment_fits(x, mean, var)
    if "gaussian" in fits:
        ax.plot(x, gauss, "--", color=COLORS["gauss"], label="Gaussian approx.")
    if "lognormal" in fits:
        ax.plot(x, logn, ":", color=COLORS["lognormal"], lw=1.8, label="lognormal approx.")
    ax.axvline(float(mean), color="k", lw=0.6, alpha=0.5)
    ax.set_xlabel("membrane potential V")
    ax.set_ylabel("density")
    if title is not None:
        ax.set_title(title)
    if legend:
        ax.legend(loc="upper right")
    return fig


def envelope_vs_std(r: ArrayLike, weights: ArrayLike, gain: float = 1.0, *, measured_std: ArrayLike | None = None,
                    measured_se: ArrayLike | None = None, ax: Axes | None = None, label: str | None = None) -> Figure:
    """Exact std of each neuron against its L4 envelope ``sqrt(gain ||r||_2) ||w||_4``.

    Points lie on or below the diagonal (Cauchy-Schwarz); a point reaches it only when
    ``r`` is parallel to the neuron's ``w∘2``. The colour is ``cos(psi)`` of
    :func:`~l4theory.theory.variance_decomposition`.

    Parameters
    ----------
    r : array_like, shape (n_inputs,)
        Per-input variance rates, ``>= 0`` (Poisson rates, or ``p(1-p)`` per step).
    weights : array_like, shape (n_neurons, n_inputs) or (n_inputs,)
        Signed weights, one row per neuron (units of ``V`` per spike).
    gain : float, optional
        Leak gain ``> 0`` (``tau/2`` stationary continuous, ``1/(1 - alpha**2)``
        stationary discrete). Default 1.
    measured_std : array_like, shape (n_neurons,), optional
        Measured std per neuron (e.g. Monte Carlo), drawn as open markers.
    measured_se : array_like, shape (n_neurons,), optional
        Its standard error (2 SE bars).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.
    label : str, optional
        Legend label of the exact points.

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = variance_decomposition(r, np.atleast_2d(as_array("weights", weights)), gain)
    env, std = d.std_envelope, np.sqrt(d.variance)
    fig, (ax,) = _axes(ax)
    sc = ax.scatter(env, std, c=d.cos_psi, cmap="viridis", vmin=0, vmax=1, s=14,
                    label=label or "exact std", zorder=3)
    fig.colorbar(sc, ax=ax, label="cos ψ (r vs w∘2)", shrink=0.85)
    if measured_std is not None:
        m = as_array("measured_std", measured_std, nonneg=True)
        if m.shape != env.shape:
            raise ValueError(f"measured_std must have shape {env.shape}, got {m.shape}")
        yerr = None if measured_se is None else 2 * as_array("measured_se", measured_se)
        ax.errorbar(env, m, yerr=yerr, fmt="o", mfc="none", color=COLORS["sim"], ms=4,
                    label="measured ± 2 SE" if yerr is not None else "measured")
    top = float(np.nanmax(env)) if env.size else 1.0
    ax.plot([0, top], [0, top], color=COLORS["theory"], lw=0.8, ls="--",
            label="envelope (std = √(g‖r‖₂) ‖w‖₄)")
    ax.set_xlabel("L4 envelope √(g ‖r‖₂) ‖w‖₄")
    ax.set_ylabel("std of V")
    ax.legend(loc="upper left")
    return fig


def hadamard_drift(n_arrows: int = 10, *, measured: tuple | None = None,
                   axes: Sequence[Axes] | None = None) -> Figure:
    """Arrows ``w -> w∘2`` over the quadrant and the drift ``atan(tan**2 theta) - theta``.

    Parameters
    ----------
    n_arrows : int, optional
        Unit vectors ``w = (cos theta, sin theta)`` drawn, evenly over ``[0, pi/2]``.
    measured : dict, optional
        Points to overlay on the drift panel: ``theta`` and ``drift`` (radians, equal
        shapes), optionally ``se`` (their standard error; 2 SE bars are drawn) and
        ``label`` (legend text).
    axes : sequence of two matplotlib.axes.Axes, optional
        Where to draw (arrows, drift); default a new figure with two panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if int(n_arrows) != n_arrows or n_arrows < 1:
        raise ValueError(f"n_arrows must be a whole number >= 1, got {n_arrows!r}")
    fig, (ax1, ax2) = _axes(axes, 2, figsize=(7.2, 3.3))
    th = np.linspace(0.0, np.pi / 2, int(n_arrows))
    w = np.stack([np.cos(th), np.sin(th)], axis=-1)
    w_sq = hadamard_square(w)
    arc = np.linspace(0, np.pi / 2, 200)
    ax1.plot(np.cos(arc), np.sin(arc), color="0.6", lw=0.8)
    for (x0, y0), (x1, y1) in zip(w, w_sq, strict=True):
        ax1.plot([0, x0], [0, y0], color=COLORS["A"], lw=0.5, alpha=0.4)
        ax1.annotate("", xy=(x1, y1), xytext=(x0, y0),
                     arrowprops={"arrowstyle": "->", "color": COLORS["B"], "lw": 1.1})
    ax1.plot(*w.T, "o", color=COLORS["A"], label="unit w = (cos θ, sin θ)")
    ax1.plot(*w_sq.T, "s", color=COLORS["B"], ms=3, label="w∘2 = (cos²θ, sin²θ)")
    ax1.plot([0, 1], [0, 1], ":", color="k", lw=0.7)
    ax1.set_aspect("equal")
    ax1.set_xlim(-0.02, 1.08)
    ax1.set_ylim(-0.02, 1.08)
    ax1.set_xlabel("$w_1$")
    ax1.set_ylabel("$w_2$")
    ax1.set_title("(a) w → w∘2 drifts toward the nearer axis")
    ax1.legend(loc="upper right", fontsize=6.5)
    line = np.linspace(0.0, np.pi / 2, 361)
    deg = np.degrees
    ax2.axhline(0, color="k", lw=0.6)
    ax2.plot(deg(line), deg(_drift(line)), color=COLORS["theory"], label="theory: atan(tan²θ) − θ")
    if measured is not None:
        t, d = as_array("measured['theta']", measured["theta"]), \
            as_array("measured['drift']", measured["drift"])
        if t.shape != d.shape:
            raise ValueError(f"measured theta and drift must match, got {t.shape} and {d.shape}")
        se = measured.get("se")
        label = measured.get("label", "measured ± 2 SE" if se is not None else "measured")
        ax2.errorbar(deg(t), deg(d), yerr=None if se is None else 2 * deg(np.asarray(se)),
                     fmt="o", color=COLORS["B"], mfc="white", label=label)
    for x in (0, 45, 90):
        ax2.axvline(x, color="0.5", lw=0.5, ls=":")
    ax2.set_xticks(np.arange(0, 91, 15))
    ax2.set_xlabel("angle of w, θ (deg)")
    ax2.set_ylabel("drift angle(w∘2) − θ (deg)")
    ax2.set_title("(b) drift vanishes at 0°, 45°, 90°")
    ax2.legend(loc="upper left")
    return fig


def dot_boundary(weights: ArrayLike) -> float:
    """Input angle where two neurons' dot products ``lambda·w`` are equal.

    Parameters
    ----------
    weights : array_like, shape (2, 2)
        The two neurons' weights over the two inputs.

    Returns
    -------
    float
        ``phi`` (radians) with ``(cos phi, sin phi)·(w_A - w_B) = 0``, in ``[0, pi)``.
    """
    w = as_array("weights", weights)
    if w.shape != (2, 2):
        raise ValueError(f"weights must have shape (2, 2), got {w.shape}")
    dx, dy = w[0] - w[1]
    if dx == 0 and dy == 0:
        raise ValueError(f"the two neurons have equal weights {fmt(w[0])}: no boundary")
    return float(np.arctan2(-dx, dy) % np.pi)


def dominance_map(weights: ArrayLike, R: ArrayLike, phi: ArrayLike, p_first: ArrayLike, *,
                  boundaries: Mapping[str, ArrayLike] | None = None, ax: Axes | None = None,
                  labels: tuple[str, str] = ("A", "B"), colorbar: bool = True) -> Figure:
    """Which of two neurons dominates over the input plane ``lambda = R (cos phi, sin phi)``.

    Points are coloured by ``p_first`` (e.g. the probability that neuron A reaches threshold
    first, or an indicator of which stationary exceedance is larger); the dot-product
    boundary (the ANN view, from ``weights``) is drawn as a dashed ray, and any other
    boundary (an angle per ``R``) as a line.

    Parameters
    ----------
    weights : array_like, shape (2, 2)
        The neurons' weights (rows A, B) over the two inputs.
    R : array_like, shape (n_R,)
        Input magnitudes (rates, spikes per unit time).
    phi : array_like, shape (n_phi,)
        Input angles (radians, in [0, pi/2]).
    p_first : array_like, shape (n_R, n_phi)
        Dominance score of neuron A in [0, 1] at each ``(R, phi)``.
    boundaries : dict of str to array_like, optional
        Label -> boundary angle(s) in radians, shape (n_R,) (or a scalar, drawn as a ray).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.
    labels : (str, str), optional
        Names of the neurons (default ``("A", "B")``).
    colorbar : bool, optional
        Draw a colour bar (default True).

    Returns
    -------
    matplotlib.figure.Figure
    """
    w = as_array("weights", weights)
    R, phi = as_array("R", R, ndim=1, nonneg=True), as_array("phi", phi, ndim=1)
    p = as_array("p_first", p_first)
    if p.shape != (R.size, phi.size):
        raise ValueError(f"p_first must have shape (len(R), len(phi)) = {(R.size, phi.size)}, "
                         f"got {p.shape}")
    pd = dot_boundary(w)
    fig, (ax,) = _axes(ax)
    RR, PP = np.meshgrid(R, phi, indexing="ij")
    mesh = ax.scatter(RR * np.cos(PP), RR * np.sin(PP), c=p, cmap="coolwarm_r", vmin=0, vmax=1,
                      s=22, edgecolors="none")
    if colorbar:
        fig.colorbar(mesh, ax=ax, label=f"P({labels[0]} first)", shrink=0.8)
    rr = np.linspace(0, R.max() * 1.05, 2)
    ax.plot(rr * np.cos(pd), rr * np.sin(pd), "k--", lw=0.9, label="dot product")
    styles = iter([("-o", "0.2"), (":s", "0.2"), ("-.^", "0.4"), ("--v", "0.4")])
    for name, b in (boundaries or {}).items():
        b = as_array(f"boundaries[{name!r}]", b)
        fmt_, c = next(styles, ("-", "0.5"))
        if b.ndim == 0:
            ax.plot(rr * np.cos(b), rr * np.sin(b), fmt_.rstrip("os^v"), color=c, label=name)
        else:
            if b.shape != R.shape:
                raise ValueError(f"boundaries[{name!r}] must have shape {R.shape}, got {b.shape}")
            ax.plot(R * np.cos(b), R * np.sin(b), fmt_, color=c, ms=3, label=name)
    for k, lab in enumerate(labels):
        ax.annotate(f"w_{lab}", xy=w[k] / max(np.hypot(*w[k]), 1e-300) * R.max() * 1.02,
                    color=(COLORS["A"], COLORS["B"])[k], fontsize=8)
    ax.set_aspect("equal")
    ax.set_xlabel("λ₁")
    ax.set_ylabel("λ₂")
    ax.legend(loc="upper right", fontsize=6.0)
    return fig


def hysteresis_predictions(theta: ArrayLike, *, R: float = 1.0, tau: float = 1.0,
                           v_th0: float = 2.0) -> dict[str, np.ndarray]:
    """Eq. 6 predictions of the needed threshold in the Fig. 5 set-up.

    Static neuron ``w_s = (1, 0)`` at ``v_th0``; sweeping neuron ``w = (cos theta, sin
    theta)``; Poisson inputs ``lambda = R (cos theta/2, sin theta/2)``; stationary membranes
    under ``dV/dt = -V/tau + sum_i w_i sum_k delta(t - t_ik)``. Eq. 6:
    ``v_hat = mu + rho (v_th0 - mu)`` with ``mu`` the (common) mean and ``rho`` the ratio of
    the spreads.

    Parameters
    ----------
    theta : array_like
        Sweep angles (radians, in [0, pi/2]).
    R : float, optional
        Input magnitude (spikes per unit time). Default 1.
    tau : float, optional
        Membrane time constant (time units). Default 1.
    v_th0 : float, optional
        The static neuron's threshold (units of ``V``). Default 2.

    Returns
    -------
    dict of str to numpy.ndarray
        ``"l4"`` (``rho = ||w||_4 / ||w_s||_4``, the paper's), ``"exact_var"``
        (``rho = std(V) / std(V_s)``) and ``"mu"``, each the shape of ``theta``.
    """
    theta = as_array("theta", theta)
    R, tau, v_th0 = (float(check_positive(n, v)) for n, v in (("R", R), ("tau", tau),
                                                              ("v_th0", v_th0)))
    lam = R * np.stack([np.cos(theta / 2), np.sin(theta / 2)], axis=-1)
    w = np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    ws = np.array([1.0, 0.0])
    mu = np.array([float(poisson_mean(li, wi, tau)) for li, wi in zip(lam.reshape(-1, 2),
                                                                      w.reshape(-1, 2), strict=True)])
    var = np.array([float(poisson_var(li, wi, tau)) for li, wi in zip(lam.reshape(-1, 2),
                                                                      w.reshape(-1, 2), strict=True)])
    var_s = np.array([float(poisson_var(li, ws, tau)) for li in lam.reshape(-1, 2)])
    rho_l4 = l4_norm(w.reshape(-1, 2)) / float(l4_norm(ws))
    rho_var = np.sqrt(var / var_s)
    shape = theta.shape
    return {"l4": (mu + rho_l4 * (v_th0 - mu)).reshape(shape),
            "exact_var": (mu + rho_var * (v_th0 - mu)).reshape(shape), "mu": mu.reshape(shape)}


_PRED_STYLE = {"l4": ("o", COLORS["l4"], "Eq. 6, L4 ratio (paper's dots)"),
               "exact_var": ("-", COLORS["exactvar"], "Eq. 6, exact std ratio"),
               "siegert": ("--", COLORS["siegert"], "Siegert (diffusion)")}


def threshold_hysteresis(theta: ArrayLike | None = None, *, predictions: Mapping[str, ArrayLike] | None = None,
                         measured: Mapping[str, tuple] | None = None, v_th0: float = 2.0, R: float = 1.0,
                         tau: float = 1.0, ax: Axes | None = None) -> Figure:
    """The threshold a sweeping neuron needs to fire at a static neuron's rate (Fig. 5).

    Parameters
    ----------
    theta : array_like, shape (n,), optional
        Angles (radians) of the prediction curves; default 91 points over ``[0, pi/2]``.
    predictions : dict of str to array_like, optional
        Curves over ``theta`` (keys ``"l4"``, ``"exact_var"``, ``"siegert"`` get the
        project's styles, any other key a plain line); default
        :func:`hysteresis_predictions` at ``R``, ``tau``, ``v_th0``.
    measured : dict, optional
        Label -> ``(theta, v, se)`` arrays (radians; needed thresholds and their standard
        errors, 2 SE bars drawn), e.g. simulated hard and soft reset.
    v_th0 : float, optional
        The static neuron's threshold (units of ``V``; a horizontal line). Default 2.
    R, tau : float, optional
        Input magnitude and membrane time constant of the default predictions.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    theta = np.linspace(0.0, np.pi / 2, 91) if theta is None else as_array("theta", theta, ndim=1)
    if predictions is None:
        pred = hysteresis_predictions(theta, R=R, tau=tau, v_th0=v_th0)
        predictions = {k: pred[k] for k in ("l4", "exact_var")}
    fig, (ax,) = _axes(ax)
    deg = np.degrees(theta)
    ax.axhline(float(v_th0), color="k", lw=0.6)
    ax.axvline(45, color="0.6", lw=0.6, ls=":")
    for key, y in predictions.items():
        y = as_array(f"predictions[{key!r}]", y)
        if y.shape != theta.shape:
            raise ValueError(f"predictions[{key!r}] must have the shape of theta {theta.shape}, "
                             f"got {y.shape}")
        style, color, label = _PRED_STYLE.get(key, ("-", None, key))
        if style == "o":  # the paper's dots: every 5th point
            ax.plot(deg[::5], y[::5], "o", color=color, ms=3.5, label=label)
        else:
            ax.plot(deg, y, style, color=color, label=label)
    markers = iter("s^Dv")
    for label, (t, v, se) in (measured or {}).items():
        t, v, se = (as_array(f"measured[{label!r}]", a) for a in (t, v, se))
        color = COLORS.get(label.split(",")[0].split()[0], None)
        ax.errorbar(np.degrees(t), v, yerr=2 * se, fmt=next(markers, "o") + "-", color=color,
                    mfc="white", lw=0.9, label=f"simulated, {label} ± 2 SE")
    ax.set_xticks(np.arange(0, 91, 15))
    ax.set_xlabel("sweep angle θ (deg)")
    ax.set_ylabel("needed v_th of the sweeping neuron")
    ax.set_title("threshold for equal firing rate")
    ax.legend(loc="lower left", fontsize=6.3)
    return fig

