"""
A property test with ``l4theory.testing``
=========================================

Say you wrote your own membrane-variance code for a converted network, here the stationary
variance of the discrete membrane ``V[t] = alpha V[t-1] + sum_i w_i s_i[t]`` with Bernoulli
inputs of probability ``p_i``:

``Var V = sum_i w_i**2 p_i (1 - p_i) / (1 - alpha**2)``.

:mod:`l4theory.testing` gives you hypothesis strategies for the inputs (probabilities,
weights and leaks clear of underflow and overflow) and exact oracles for the relations such
code must satisfy: the L4 envelope ``std <= sqrt(g ||p(1-p)||_2) ||w||_4`` and "Bernoulli
variance <= Poisson variance". This page runs the tests (deterministically, with the
project's settings) on a correct and on a subtly wrong implementation.
"""

import matplotlib.pyplot as plt
import numpy as np
from hypothesis import given

from l4theory.testing import assert_std_envelope, envelope_std, leaks, load_profile, probs_and_weights
from l4theory.theory import bernoulli_var


def my_stationary_var(probs, weights, alpha):
    """The code under test (correct)."""
    return np.sum(weights**2 * probs * (1 - probs)) / (1 - alpha**2)


def my_buggy_var(probs, weights, alpha):
    """A plausible bug: the leak gain ``1/(1 - alpha)`` of the mean used for the variance."""
    return np.sum(weights**2 * probs * (1 - probs)) / (1 - alpha)


def make_tests(var_fn, seen):
    """Two property tests of ``var_fn``: the L4 envelope, and agreement with the library.

    Every example the envelope test tries is appended to ``seen`` as ``(envelope, std)``.
    """
    stationary_leaks = leaks(min_alpha=0.05).filter(lambda a: a < 0.999)

    @given(probs_and_weights(size=(1, 12)), stationary_leaks)
    def test_within_l4_envelope(pw, alpha):
        probs, w = pw
        std = np.sqrt(var_fn(probs, w, alpha))
        seen.append((float(envelope_std(probs * (1 - probs), w, gain=1 / (1 - alpha**2))), float(std)))
        assert_std_envelope(std, probs * (1 - probs), w, gain=1 / (1 - alpha**2), rtol=1e-9)

    @given(probs_and_weights(size=(1, 12)), stationary_leaks)
    def test_matches_library(pw, alpha):
        probs, w = pw
        np.testing.assert_allclose(var_fn(probs, w, alpha), bernoulli_var(probs, w, alpha), rtol=1e-9)

    return test_within_l4_envelope, test_matches_library


# %%
# The project's hypothesis profile (deterministic examples, no deadline) is what a test
# suite's ``conftest.py`` would load; the correct implementation passes both tests:

load_profile("l4theory")
seen_ok, seen_buggy = [], []
for test in make_tests(my_stationary_var, seen_ok):
    test()
    print(f"{test.__name__}: passed")

# %%
# The buggy one overstates the variance by ``(1 + alpha)``; it can still sit below the
# envelope when ``p(1-p)`` is far from parallel to ``w∘2``, but hypothesis finds inputs where
# it does not, and shrinks them to a small failing example:

for test in make_tests(my_buggy_var, seen_buggy):
    try:
        test()
    except AssertionError as exc:
        message = [line for line in str(exc).splitlines() if line.strip()][0]
        notes = getattr(exc, "__notes__", [])
        print(f"{test.__name__}: FAILED as it should\n  {message[:200]}\n  {notes[0] if notes else ''}")
    else:
        raise RuntimeError(f"{test.__name__} did not catch the bug")

# %%
# Every example hypothesis tried in the envelope test, as ``std`` against its envelope: the
# correct implementation never crosses the diagonal, the buggy one does (the test stops at
# its first failure and then shrinks it).

fig, ax = plt.subplots(figsize=(5, 4.5))
for seen, style, label in ((seen_ok, "o", "correct"), (seen_buggy, "x", "buggy (1/(1 - alpha))")):
    pts = np.array([p for p in seen if p[0] > 0])
    ax.loglog(pts[:, 0], pts[:, 1], style, ms=5, mfc="none", label=f"{label}: {len(pts)} examples")
lim = ax.get_xlim()
ax.plot(lim, lim, "k-", lw=0.8, label="std = envelope")
ax.set(xlabel="L4 envelope sqrt(g ||p(1-p)||_2) ||w||_4", ylabel="std returned by the code")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()
