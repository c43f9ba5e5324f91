"""Kernels against their slow NumPy twins, determinism, and input validation.

The same-stream twins in ``validation.reference`` re-implement the counter-based generator
with NumPy arrays and follow the kernels' draw order, so outputs must agree to round-off
(exactly for counts and the discrete stepper; the continuous kernels use a table ``exp``).
Sizes are small so that the module also runs with ``NUMBA_DISABLE_JIT=1``.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from validation import reference as ref
from validation import simulators as sim
from validation.rng import exp_neg, exp_table

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(3)
RATES = RNG.uniform(0.2, 3.0, 5)
W2 = RNG.standard_normal((2, 5))


@pytest.mark.parametrize("tau", [0.7, np.inf])
def test_free_membrane_matches_twin(tau):
    times = [0.3, 1.0, 2.5]
    v = sim.free_membrane(RATES, W2, tau, times, 25, 7, trial0=5)
    p, a, tot = sim.alias_table(RATES)
    twin = ref.free_membrane_twin(p, a, tot, W2, tau, times, 25, 7, trial0=5)
    np.testing.assert_allclose(v, twin, rtol=1e-13, atol=1e-13)
    one = sim.free_membrane(RATES, W2[0], tau, times, 25, 7, trial0=5)
    np.testing.assert_array_equal(one, v[:, 0, :])


@pytest.mark.parametrize("tau", [0.7, np.inf])
def test_free_membrane_one_time_fast_path_matches_twin(tau):
    """One neuron and one recording time use a separate (vectorised) kernel."""
    v = sim.free_membrane(RATES, W2[1], tau, [2.5], 40, 7, trial0=3)
    thr, wk, wa, shift = sim.alias_bits(RATES, W2[1])
    twin = ref.free_membrane_one_twin(thr, wk, wa, shift, RATES.sum(), tau, 2.5, 40, 7, trial0=3)
    assert v.shape == (40, 1)
    np.testing.assert_allclose(v[:, 0], twin, rtol=1e-13, atol=1e-13)
    two = sim.free_membrane(RATES, W2[1:], tau, [2.5], 40, 7, trial0=3)
    np.testing.assert_array_equal(two[:, 0, :], v)


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("tau", [2.0, np.inf])
def test_lif_matches_twin(reset, tau):
    thr = [0.5, 1.0, 2.0]
    w = np.abs(W2)
    c, f = sim.lif_event(RATES, w, tau, thr, 15.0, 8, 3, reset=reset, t_warmup=1.0)
    p, a, tot = sim.alias_table(RATES)
    c2, f2 = ref.lif_event_twin(p, a, tot, w, tau, thr, 15.0, 8, 3, hard=reset == "hard",
                                t_warmup=1.0)
    np.testing.assert_array_equal(c, c2)
    np.testing.assert_array_equal(f, f2)
    assert c.sum() > 0


@pytest.mark.parametrize("encoder", ["bernoulli", "signed", "poisson", "constant"])
@pytest.mark.parametrize("reset", ["none", "soft", "hard"])
def test_discrete_matches_twin(encoder, reset):
    x = np.array([0.2, -0.5, 0.9, 1.3, 0.0])
    if encoder == "poisson":
        x = np.abs(x)
    kw = {} if reset == "none" else {"v_th": [1.0, 0.7]}
    v, c = sim.discrete_run(x, W2, 0.9, encoder, 12, 6, 4, reset=reset, record=[3, 12], **kw)
    v2, c2 = ref.discrete_twin(x, W2, 0.9, encoder, 12, 6, 4, reset=reset, record=[3, 12],
                               **({"v_th": np.inf} if reset == "none" else kw))
    np.testing.assert_array_equal(v, v2)
    np.testing.assert_array_equal(c, c2)


def test_alias_bits_reproduce_probabilities():
    r = np.array([0.0, 1.0, 3.0, 0.5, 0.0, 2.5])
    w = np.arange(1.0, 7.0)
    thr, wk, wa, shift = sim.alias_bits(r, w)
    assert thr.size == 8 and shift == 61
    keep = thr.astype(float) / 2.0**shift
    back = {}
    for j in range(8):
        back[wk[j]] = back.get(wk[j], 0.0) + keep[j] / 8
        back[wa[j]] = back.get(wa[j], 0.0) + (1 - keep[j]) / 8
    for i in range(6):
        np.testing.assert_allclose(back.get(w[i], 0.0), r[i] / r.sum(), atol=1e-15)


def test_alias_table_reproduces_probabilities():
    r = np.array([0.0, 1.0, 3.0, 0.5, 0.0, 2.5])
    p, a, tot = sim.alias_table(r)
    n = r.size
    back = np.zeros(n)
    for j in range(n):
        back[j] += p[j] / n
        back[a[j]] += (1 - p[j]) / n
    np.testing.assert_allclose(back, r / tot, atol=1e-15)
    assert tot == r.sum()


def test_exp_table_accuracy():
    table = exp_table(12.0)
    x = np.linspace(0.0, 12.0, 4001)
    got = np.array([exp_neg(v, table) for v in x])
    np.testing.assert_allclose(got, np.exp(-x), rtol=5e-16, atol=0)


def test_segments_and_blocks_are_consistent():
    """Splitting trials into blocks with trial0 gives the same samples."""
    whole = sim.free_membrane(RATES, W2[0], 1.0, [1.0], 20, 11)
    parts = np.concatenate([sim.free_membrane(RATES, W2[0], 1.0, [1.0], 10, 11, trial0=s)
                            for s in (0, 10)])
    np.testing.assert_array_equal(whole, parts)


_SCRIPT = """
import hashlib, numpy as np
from validation import simulators as sim
r = np.array([0.5, 1.5, 2.0]); w = np.array([[0.3, -0.2, 0.6], [0.1, 0.4, 0.2]])
h = hashlib.sha256()
h.update(sim.free_membrane(r, w, 1.0, [0.5, 2.0], 40, 5).tobytes())
h.update(sim.free_membrane(r, w[0], 1.0, [2.0], 300, 5).tobytes())
for reset in ("hard", "soft"):
    c, f = sim.lif_event(r, np.abs(w), 1.5, [0.4, 0.9], 10.0, 30, 6, reset=reset)
    h.update(c.tobytes()); h.update(f.tobytes())
v, c = sim.discrete_run([0.3, -0.6, 0.8], w, 0.8, "signed", 15, 30, 9, v_th=0.5, reset="soft")
h.update(v.tobytes()); h.update(c.tobytes())
print(h.hexdigest())
"""


def _digest(env_extra):
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=600)
    return out.stdout.strip()


@pytest.mark.slow
def test_bit_identical_across_thread_counts_and_without_jit():
    """1 thread, 2 threads and pure Python (NUMBA_DISABLE_JIT=1) give the same bits."""
    one = _digest({"NUMBA_NUM_THREADS": "1"})
    two = _digest({"NUMBA_NUM_THREADS": "2"})
    assert one == two
    if os.environ.get("NUMBA_DISABLE_JIT", "0") == "0":
        assert _digest({"NUMBA_DISABLE_JIT": "1"}) == one


def test_digest_helper_is_sensitive():
    a = hashlib.sha256(np.zeros(3).tobytes()).hexdigest()
    b = hashlib.sha256(np.array([0.0, 0.0, 1e-300]).tobytes()).hexdigest()
    assert a != b


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: sim.free_membrane([-1.0], [1.0], 1.0, [1.0], 5, 0), "rates"),
        (lambda: sim.free_membrane([1.0], [1.0, 2.0], 1.0, [1.0], 5, 0), "weights"),
        (lambda: sim.free_membrane([1.0], [1.0], 0.0, [1.0], 5, 0), "tau"),
        (lambda: sim.free_membrane([1.0], [1.0], 1.0, [2.0, 1.0], 5, 0), "times"),
        (lambda: sim.free_membrane([1.0], [1.0], 1.0, [1.0], 0, 0), "n_trials"),
        (lambda: sim.free_membrane([1.0], [1.0], 1.0, [1.0], 5, -1), "seed"),
        (lambda: sim.lif_event([1.0], [1.0], 1.0, [0.0], 5.0, 5, 0), "thresholds"),
        (lambda: sim.lif_event([1.0], [1.0], 1.0, [1.0], 5.0, 5, 0, reset="x"), "reset"),
        (lambda: sim.lif_event([1.0], [1.0], 1.0, [1.0], 5.0, 5, 0, t_warmup=6.0), "t_warmup"),
        (lambda: sim.lif_event([1.0], [1.0], 1.0, [1.0], 5.0, 5, 0, v0=2.0), "v0"),
        (lambda: sim.discrete_run([0.5], [1.0], 1.0, "gauss", 5, 5, 0), "encoder"),
        (lambda: sim.discrete_run([0.5], [1.0], 1.5, "bernoulli", 5, 5, 0), "alpha"),
        (lambda: sim.discrete_run([-0.5], [1.0], 1.0, "poisson", 5, 5, 0), "x"),
        (lambda: sim.discrete_run([0.5], [1.0], 1.0, "bernoulli", 5, 5, 0, reset="soft"),
         "v_th"),
        (lambda: sim.discrete_run([0.5], [1.0], 1.0, "bernoulli", 5, 5, 0, record=[0]),
         "record"),
    ],
)
def test_wrappers_reject_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_numpy_sampler_runs_and_has_right_shape():
    v = ref.free_membrane_numpy(RATES, W2[0], 1.0, 2.0, 1000, rng=1, chunk=300)
    assert v.shape == (1000,)
    assert np.isfinite(v).all()
