"""Tests of l4theory.plot: the pictures draw the library's numbers, and matplotlib stays optional."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib.pyplot as plt  # noqa: E402

from l4theory import plot  # noqa: E402
from l4theory.theory import ShotNoise, hadamard_drift, variance_decomposition  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _line(ax, label):
    return next(ln for ln in ax.get_lines() if ln.get_label() == label)


def test_membrane_law_draws_the_exact_density_and_moment_fits():
    sn = ShotNoise([1.0], [2.0], 1.0)
    x = np.linspace(0.05, 8, 30)
    pdf = sn.pdf(x)
    edges = np.linspace(0, 8, 9)
    fig = plot.membrane_law(x, pdf, sn.mean(), sn.var(), edges=edges, density=np.full(8, 0.1),
                            density_se=np.full(8, 0.01), title="A")
    ax = fig.axes[0]
    np.testing.assert_array_equal(_line(ax, "exact").get_ydata(), pdf)
    gauss = _line(ax, "Gaussian approx.").get_ydata()
    np.testing.assert_allclose(gauss, np.exp(-(x - 2) ** 2 / 4) / np.sqrt(4 * np.pi), rtol=1e-12)
    assert len(ax.patches) == 8 and ax.get_title() == "A"
    with pytest.raises(ValueError, match="density needs edges"):
        plot.membrane_law(x, pdf, 2.0, 2.0, density=np.ones(3))
    with pytest.raises(ValueError, match="fits"):
        plot.membrane_law(x, pdf, 2.0, 2.0, fits=("cauchy",))


def test_envelope_vs_std_points_are_the_decomposition_and_below_the_diagonal():
    rng = np.random.default_rng(1)
    r, w = rng.uniform(0, 2, 6), rng.normal(size=(15, 6))
    fig = plot.envelope_vs_std(r, w, 0.5, measured_std=np.full(15, 0.1), measured_se=np.full(15, 0.01))
    pts = fig.axes[0].collections[0].get_offsets()
    d = variance_decomposition(r, w, 0.5)
    np.testing.assert_allclose(pts[:, 0], d.std_envelope, rtol=1e-12)
    np.testing.assert_allclose(pts[:, 1], np.sqrt(d.variance), rtol=1e-12)
    assert np.all(pts[:, 1] <= pts[:, 0] * (1 + 1e-12))
    with pytest.raises(ValueError, match="measured_std must have shape"):
        plot.envelope_vs_std(r, w, measured_std=np.ones(3))


def test_hadamard_drift_draws_theory_and_measured_points_into_given_axes():
    fig0, axes = plt.subplots(1, 2)
    th = np.linspace(0.1, 1.4, 5)
    fig = plot.hadamard_drift(7, measured={"theta": th, "drift": hadamard_drift(th), "se": 0.01 * th},
                              axes=axes)
    assert fig is fig0
    line = _line(axes[1], "theory: atan(tan²θ) − θ")
    np.testing.assert_allclose(line.get_ydata(), np.degrees(hadamard_drift(np.radians(line.get_xdata()))),
                               atol=1e-9)
    assert len(axes[0].texts) == 7  # one arrow per unit vector
    with pytest.raises(ValueError, match="2 matplotlib Axes"):
        plot.hadamard_drift(axes=[axes[0]])


def test_dominance_map_draws_the_dot_product_boundary():
    a, b = np.radians(45.0), np.radians(10.0)
    W = np.array([[np.cos(a), np.sin(a)], [np.cos(b), np.sin(b)]])
    assert np.degrees(plot.dot_boundary(W)) == pytest.approx(27.5, abs=1e-12)
    R, phi = np.array([1.0, 2.0]), np.linspace(0, np.pi / 2, 4)
    fig = plot.dominance_map(W, R, phi, np.full((2, 4), 0.5),
                             boundaries={"race": np.radians([30.0, 29.0]), "exceedance": 0.5})
    ray = _line(fig.axes[0], "dot product")
    x, y = ray.get_xdata(), ray.get_ydata()
    assert np.degrees(np.arctan2(y[-1], x[-1])) == pytest.approx(27.5, abs=1e-9)
    with pytest.raises(ValueError, match="p_first must have shape"):
        plot.dominance_map(W, R, phi, np.ones((4, 2)))
    with pytest.raises(ValueError, match="equal weights"):
        plot.dot_boundary([[1.0, 0.0], [1.0, 0.0]])


def test_threshold_hysteresis_predictions_match_the_figure_module():
    from figures.fig05 import predictions

    theta = np.radians([0.0, 20.0, 45.0, 70.0, 90.0])
    ours = plot.hysteresis_predictions(theta)
    ref = predictions(theta)
    for k in ("l4", "exact_var", "mu"):
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-12)
    # at theta = 0 the neurons coincide: the needed threshold is v_th0
    assert ours["l4"][0] == pytest.approx(2.0) and ours["exact_var"][0] == pytest.approx(2.0)
    fig = plot.threshold_hysteresis(measured={"hard": (theta, ours["exact_var"], 0.01 + 0 * theta)})
    ax = fig.axes[0]
    assert _line(ax, "Eq. 6, exact std ratio").get_ydata().size == 91
    with pytest.raises(ValueError, match="shape of theta"):
        plot.threshold_hysteresis(theta, predictions={"l4": np.ones(3)})


def test_import_without_matplotlib_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "l4theory" or m.startswith("l4theory.")]:
        monkeypatch.delitem(sys.modules, name)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    core = importlib.import_module("l4theory")
    importlib.import_module("l4theory.theory")
    importlib.import_module("l4theory.testing")
    assert core.__version__
    with pytest.raises(ImportError, match=r"pip install 'l4theory\[plot\]'"):
        importlib.import_module("l4theory.plot")


def test_no_backend_is_forced_on_import():
    code = ("import matplotlib, l4theory.plot, figures, figures.style, figures.fig04; "
            "print(matplotlib.get_backend())")
    env = {**os.environ, "MPLBACKEND": "svg", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "svg"
