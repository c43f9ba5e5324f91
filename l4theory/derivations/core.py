"""The derivations themselves (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

lam, w, tau, t, k, dt = sp.symbols("lambda w tau t k dt", positive=True)
s = sp.symbols("s", nonnegative=True)
n = sp.symbols("n", positive=True, integer=True)
alpha = sp.symbols("alpha", positive=True)
p = sp.symbols("p", positive=True)
u = sp.symbols("u", real=True)
steps = sp.symbols("T", positive=True, integer=True)
j = sp.symbols("j", nonnegative=True, integer=True)


def derive_poisson_cumulant(order: int | sp.Symbol = n) -> sp.Expr:
    """n-th cumulant of one Poisson input's shot noise, by Campbell's theorem.

    A spike at time ``t - s`` contributes ``w exp(-s/tau)`` to ``V(t)`` (jump-w model);
    Campbell's theorem for a Poisson process of rate ``lam`` gives
    ``kappa_n = lam * int_0^t (w exp(-s/tau))**n ds``. Summing over independent inputs adds
    cumulants, so the network formula is the sum of this over ``i``.

    Parameters
    ----------
    order : int or sympy.Symbol, optional
        Cumulant order ``n >= 1``; default the symbol ``n`` (the general formula).

    Returns
    -------
    sympy.Expr
        ``kappa_n(t)`` in the symbols ``lam``, ``w``, ``tau``, ``t``.
    """
    return sp.simplify(lam * sp.integrate((w * sp.exp(-s / tau)) ** order, (s, 0, t)))


def derive_poisson_cumulant_from_cf(order: int) -> sp.Expr:
    """The same cumulant from the characteristic function, for a concrete ``order``.

    ``log E[exp(i k V(t))] = lam int_0^t (exp(i k w exp(-s/tau)) - 1) ds``; the n-th
    cumulant is the coefficient of ``(i k)**n / n!`` in its expansion.

    Parameters
    ----------
    order : int
        Cumulant order, a concrete integer ``>= 1``.

    Returns
    -------
    sympy.Expr
        ``kappa_order(t)``, to compare with :func:`derive_poisson_cumulant`.
    """
    x = sp.symbols("x")
    series = sp.series(sp.exp(x) - 1, x, 0, order + 1).removeO()
    integrand = series.subs(x, sp.I * k * w * sp.exp(-s / tau))
    log_cf = lam * sp.integrate(sp.expand(integrand), (s, 0, t))
    coeff = sp.expand(log_cf).coeff(k, order)
    return sp.simplify(coeff * sp.factorial(order) / sp.I**order)


def derive_bernoulli_cumulant(order: int) -> sp.Expr:
    """n-th cumulant of a Bernoulli(p) variable from its cumulant generating function.

    Parameters
    ----------
    order : int
        Cumulant order, a concrete integer ``>= 1``.

    Returns
    -------
    sympy.Expr
        A polynomial in ``p`` (``p (1 - p)`` for order 2).
    """
    cgf = sp.log(1 - p + p * sp.exp(u))
    return sp.factor(sp.diff(cgf, u, order).subs(u, 0))


def derive_discrete_gain(order: int | sp.Symbol = n) -> sp.Expr:
    """Leak gain of the n-th cumulant for ``V[T] = sum_{j<T} alpha**j I[T-j]``.

    The terms are independent, so cumulants add: ``kappa_n(V[T]) = kappa_n(I) sum_{j<T}
    alpha**(n j)``.

    Parameters
    ----------
    order : int or sympy.Symbol, optional
        Cumulant order ``n >= 1``; default the symbol ``n`` (the general formula).

    Returns
    -------
    sympy.Expr
        The geometric sum in closed form (for ``alpha != 1``), in ``alpha`` and ``T``.
    """
    total = sp.summation((alpha**order) ** j, (j, 0, steps - 1))
    total = total.args[1][0] if isinstance(total, sp.Piecewise) else total
    return sp.simplify(total)


def derive_continuum_limit(order: int) -> sp.Expr:
    """``dt -> 0`` limit of the discrete Bernoulli cumulant with ``alpha = exp(-dt/tau)``.

    ``p = lam dt`` per step and ``T = t/dt`` steps; the limit recovers Campbell's formula.

    Parameters
    ----------
    order : int
        Cumulant order, a concrete integer ``>= 1``.

    Returns
    -------
    sympy.Expr
        The limit, equal to :func:`derive_poisson_cumulant` at the same order.
    """
    kappa_b = derive_bernoulli_cumulant(order).subs(p, lam * dt)
    gain = (1 - sp.exp(-order * dt / tau) ** (t / dt)) / (1 - sp.exp(-order * dt / tau))
    return sp.simplify(sp.limit(w**order * kappa_b * gain, dt, 0))


def derive_eq3(m: int = 4) -> sp.Expr:
    """Eq. 3, ``||w∘2||_2 = ||w||_4**2``, for a symbolic real vector of length ``m``.

    Parameters
    ----------
    m : int, optional
        Length of the vector (default 4).

    Returns
    -------
    sympy.Expr
        The difference of the two sides, which simplifies to 0.
    """
    ws = sp.symbols(f"w1:{m + 1}", real=True)
    lhs = sp.sqrt(sum((wi**2) ** 2 for wi in ws))
    rhs = (sum(wi**4 for wi in ws) ** sp.Rational(1, 4)) ** 2
    return sp.simplify(lhs - rhs)


# ---------------------------------------------------------------------- checks
@dataclass(frozen=True)
class Check:
    """One comparison of a derived expression with a reference.

    Parameters
    ----------
    name : str
        What was compared.
    ok : bool
        Whether the comparison passed.
    detail : str
        How it was compared (``"symbolic"`` or the largest numerical difference).
    """

    name: str
    ok: bool
    detail: str


def _numeric(name, expr, symbols, runtime, n_points=20, seed=0, rtol=1e-12):
    rng = np.random.default_rng(seed)
    fn = sp.lambdify(symbols, expr, "numpy")
    worst = 0.0
    for _ in range(n_points):
        vals = [rng.uniform(0.1, 3.0) for _ in symbols]
        got, ref = float(fn(*vals)), float(runtime(*vals))
        worst = max(worst, abs(got - ref) / max(abs(ref), 1e-300))
    return Check(name, worst <= rtol, f"max rel. diff {worst:.1e} over {n_points} random points")


def derived_expressions() -> dict[str, sp.Expr]:
    """Every derivation, in the order ``python -m l4theory.derivations`` prints them.

    Returns
    -------
    dict of str to sympy.Expr
        Name of the derivation -> the derived expression.
    """
    out = {
        "Campbell kappa_n (one input)": derive_poisson_cumulant(),
        "Eq. 1: kappa_1": derive_poisson_cumulant(1),
        "Eq. 2: kappa_2": derive_poisson_cumulant(2),
    }
    for order in (3, 4):
        out[f"kappa_{order} from the characteristic function"] = derive_poisson_cumulant_from_cf(order)
    for order in (1, 2, 3, 4):
        out[f"Bernoulli kappa_{order}"] = derive_bernoulli_cumulant(order)
    out["discrete leak gain of kappa_n"] = derive_discrete_gain()
    for order in (1, 2):
        out[f"continuum limit of discrete kappa_{order}"] = derive_continuum_limit(order)
    out["Eq. 3: ||w∘2||_2 - ||w||_4^2 (m = 4)"] = derive_eq3()
    return out


def checks() -> list[Check]:
    """Compare every derivation with the printed equations and the runtime functions.

    Returns
    -------
    list of Check
        One per comparison; every ``ok`` is True when the derivations hold.
    """
    from ..theory import poisson_cumulant

    res = []
    eq1 = lam * w * tau * (1 - sp.exp(-t / tau))
    eq2 = lam * w**2 * tau / 2 * (1 - sp.exp(-2 * t / tau))
    res.append(Check("Eq. 1 as printed", sp.simplify(derive_poisson_cumulant(1) - eq1) == 0, "symbolic"))
    res.append(Check("Eq. 2 as printed", sp.simplify(derive_poisson_cumulant(2) - eq2) == 0, "symbolic"))
    general = derive_poisson_cumulant()
    for order in (1, 2, 3, 4, 7):
        expr = general.subs(n, order)
        res.append(_numeric(
            f"Campbell kappa_{order} vs poisson_cumulant", expr, (lam, w, tau, t),
            lambda a, b, c, d, o=order: poisson_cumulant(o, [a], [b], c, d)))
    for order in (3, 4):
        same = sp.simplify(derive_poisson_cumulant_from_cf(order) - general.subs(n, order)) == 0
        res.append(Check(f"kappa_{order}: cf expansion == Campbell integral", same, "symbolic"))
    for order in (1, 2, 3, 4, 5, 6):
        res.append(_bernoulli_check(order))
    gain = derive_discrete_gain()
    for order in (1, 2, 4):
        res.append(_gain_check(gain, order))
    for order in (1, 2):
        lim = derive_continuum_limit(order)
        ok = sp.simplify(lim - general.subs(n, order)) == 0
        res.append(Check(f"continuum limit of discrete kappa_{order} == Campbell", ok, "symbolic"))
    res.append(Check("Eq. 3 holds for signed vectors", derive_eq3() == 0, "symbolic, m = 4"))
    return res


def _gain_check(gain, order):
    """Numeric check of the geometric leak gain against :func:`leak_gain` (T = 17)."""
    from ..theory import leak_gain

    expr = gain.subs({n: order, steps: 17})
    fn = sp.lambdify((alpha,), expr, "numpy")
    worst = 0.0
    for a in np.linspace(0.05, 0.995, 25):
        worst = max(worst, abs(fn(a) - float(leak_gain(order, a, 17))) / float(leak_gain(order, a, 17)))
    return Check(f"discrete gain of kappa_{order} vs leak_gain", worst <= 1e-12,
                 f"max rel. diff {worst:.1e} over alpha in [0.05, 0.995], T = 17")


def _bernoulli_check(order):
    """Numeric check of a derived Bernoulli cumulant against :func:`bernoulli_cumulant`."""
    from ..theory import bernoulli_cumulant

    fn = sp.lambdify((p,), derive_bernoulli_cumulant(order), "numpy")
    worst = 0.0
    for prob in np.linspace(0.0, 1.0, 21):
        got = float(bernoulli_cumulant(order, [prob], [1.0], 1.0, 1))
        worst = max(worst, abs(got - float(fn(prob))))
    return Check(f"Bernoulli kappa_{order} vs bernoulli_cumulant", worst <= 1e-13,
                 f"max abs. diff {worst:.1e} over p in [0, 1]")
