import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st

from l4theory import derivations as d
from l4theory.derivations import core
from l4theory.theory import bernoulli_cumulant, leak_gain, poisson_cumulant


def test_every_derivation_check_passes():
    failed = [c for c in d.checks() if not c.ok]
    assert not failed, failed


def test_main_prints_latex_and_passes(capsys):
    from l4theory.derivations.__main__ import main

    assert main() == 0
    out = capsys.readouterr().out
    assert "LaTeX:" in out and "0 failed" in out


CAMPBELL = sp.lambdify((core.n, core.lam, core.w, core.tau, core.t), d.derive_poisson_cumulant(), "numpy")
GAIN = sp.lambdify((core.n, core.alpha, core.steps), d.derive_discrete_gain(), "numpy")


@given(st.integers(1, 6), st.floats(0.01, 10), st.floats(-3, 3), st.floats(0.05, 20), st.floats(0, 50))
def test_lambdified_campbell_equals_runtime(n, lam, w, tau, t):
    assume(t / tau <= 100)  # SymPy's simplified form carries exp(+n t/tau) factors
    got = float(poisson_cumulant(n, [lam], [w], tau, t))
    assert got == pytest.approx(float(CAMPBELL(n, lam, w, tau, t)), rel=1e-9, abs=1e-12)  # no expm1 in SymPy


@given(st.integers(1, 5), st.floats(0.01, 0.999), st.integers(1, 200))
def test_lambdified_geometric_gain_equals_runtime(n, alpha, steps):
    assert float(leak_gain(n, alpha, steps)) == pytest.approx(float(GAIN(n, alpha, steps)), rel=1e-9)


@given(st.integers(1, 6), st.floats(0, 1))
def test_derived_bernoulli_cumulants_equal_runtime(n, prob):
    expr = sp.lambdify(core.p, d.derive_bernoulli_cumulant(n), "numpy")
    assert float(bernoulli_cumulant(n, [prob], [1.0], 1.0, 1)) == pytest.approx(float(expr(prob)), abs=1e-13)


def test_eq3_difference_is_zero_for_several_lengths():
    for m in (1, 3, 6):
        assert d.derive_eq3(m) == 0


def test_continuum_limit_third_order():
    lim = d.derive_continuum_limit(3)
    assert sp.simplify(lim - d.derive_poisson_cumulant(3)) == 0
    assert np.isfinite(float(lim.subs({core.lam: 1, core.w: 1, core.tau: 1, core.t: 1})))
