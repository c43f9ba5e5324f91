"""Sweep: selection logic, paired test evaluation, CIs, the adjusted network, the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from l4theory.adjust import adjust_weights, adjusted_network
from l4theory.convert.balance import balance
from l4theory.convert.network import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU
from l4theory.convert.simulate import simulate
from l4theory.experiment.sweep import (
    SweepResult,
    SweepSettings,
    expected_spikes,
    mean_ci,
    select_best,
    sweep,
)

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "models" / "fmnist_mlp.safetensors"


def tiny(seed=0):
    rng = np.random.default_rng(seed)
    net = Network((1, 6, 6), [
        Conv2d(rng.normal(0.1, 0.5, size=(4, 1, 3, 3)), None, padding=1, name="c1"),
        ReLU(), AvgPool2d(2), Flatten(),
        Linear(rng.normal(0.05, 0.3, size=(8, 36)), None, name="h"), ReLU(),
        Linear(rng.normal(size=(3, 8)), None, name="out"),
    ])
    x = rng.uniform(-1, 1, size=(120, 1, 6, 6)).astype(np.float32)
    y = net.predict(x)  # labels the ANN gets right: the SNN's errors are conversion errors
    flip = rng.random(120) < 0.1
    y[flip] = (y[flip] + 1) % 3
    return net, (x[:80], y[:80]), (x[80:], y[80:])


def test_select_best_and_mean_ci():
    assert select_best([0.2, 0.5, 0.5]) == (1,)
    assert select_best(np.array([[0.1, 0.3], [0.3, 0.2]])) == (0, 1)
    with pytest.raises(ValueError):
        select_best([])
    v = np.random.default_rng(0).normal(size=50)
    ci = mean_ci(v)
    lo, hi = stats.t.interval(0.95, 49, loc=v.mean(), scale=stats.sem(v))
    assert ci["lo"] == pytest.approx(lo) and ci["hi"] == pytest.approx(hi) and ci["n"] == 50
    with pytest.raises(ValueError, match="2 values"):
        mean_ci([1.0])


def test_adjusted_network_changes_only_the_first_layer():
    net, (x, _), _ = tiny()
    res = adjusted_network(net, x, 1.3, 2.0)
    adj = res.network
    ref = adjust_weights(net.layers[0].weight, expected_spikes(x, "signed"), 1.3, 2.0,
                         padding=(1, 1))
    np.testing.assert_allclose(adj.layers[0].weight, ref.weights, rtol=1e-6)
    np.testing.assert_array_equal(adj.layers[4].weight, net.layers[4].weight)
    assert not np.array_equal(adj.layers[0].weight, net.layers[0].weight)
    assert res.r_s == 2.0
    same = adjusted_network(net, x, 1.3, np.inf).network
    np.testing.assert_array_equal(same.layers[0].weight, net.layers[0].weight)


def test_sweep_selects_argmax_and_evaluates_paired():
    net, train, test = tiny(1)
    scales, r_s = (0.5, 1.0), (0.5, 4.0)
    res = sweep(net, train, test, steps=12, alpha=0.9, reset="hard", scales=scales, r_s=r_s,
                n_calib=30, n_select=40, n_test=None, seeds=(3, 4), batch_size=16)
    # selection grid is recomputed independently and the choices are its argmax
    bal = balance(net, train[0][np.sort(np.random.default_rng(0).permutation(80)[:30])], "max")
    np.testing.assert_allclose(res.thresholds, bal.thresholds)
    assert res.best_scale_baseline == scales[int(np.argmax(res.select_baseline))]
    k, j = np.unravel_index(np.argmax(res.select_adjusted), res.select_adjusted.shape)
    assert (res.best_r_s, res.best_scale_adjusted) == (r_s[k], scales[j])
    # the test numbers are plain simulations with the chosen settings and the same seeds
    x, y = test
    direct = simulate(net, x, y, thresholds=bal.thresholds * res.best_scale_baseline,
                      steps=12, alpha=0.9, reset="hard", seed=4)
    np.testing.assert_array_equal(res.test_baseline[1], direct.correct())
    adj = adjusted_network(net, train[0][np.sort(np.random.default_rng(0).permutation(80)[:30])],
                           bal.thresholds[0], res.best_r_s).network
    d2 = simulate(adj, x, y, thresholds=bal.thresholds * res.best_scale_adjusted, steps=12,
                  alpha=0.9, reset="hard", seed=3)
    np.testing.assert_array_equal(res.test_adjusted[0], d2.correct())
    s = res.summary()
    per_image = res.test_adjusted.mean(0) - res.test_baseline.mean(0)
    assert s["difference"]["mean"] == pytest.approx(per_image.mean())
    assert s["ann_accuracy"] == pytest.approx(np.mean(net.predict(x) == y))
    assert res.curve_baseline.shape == (12,)
    json.dumps(res.to_json())  # JSON-safe


def test_sweep_method_exact_uses_the_exact_spread():
    net, train, test = tiny(2)
    settings = SweepSettings(steps=6, scales=(1.0,), r_s=(0.0,), n_calib=30, n_select=20,
                             n_test=None, seeds=(0, 1), batch_size=16)
    res = sweep(net, train, test, settings.replace(method="exact"))
    assert res.params["method"] == "exact"
    x_cal = train[0][np.sort(np.random.default_rng(0).permutation(80)[:30])]
    th0 = balance(net, x_cal, "max").thresholds[0]
    ref = adjusted_network(net, x_cal, th0, 0.0, method="exact")
    adj = ref.network
    assert ref.method == "exact"
    direct = simulate(adj, *test, thresholds=res.thresholds, steps=6, seed=1)
    np.testing.assert_array_equal(res.test_adjusted[1], direct.correct())
    l4 = sweep(net, train, test, settings)
    assert l4.params["method"] == "l4"
    np.testing.assert_array_equal(res.test_baseline, l4.test_baseline)  # same baseline
    l4_adj = adjusted_network(net, x_cal, th0, 0.0).network
    assert not np.allclose(adj.layers[0].weight, l4_adj.layers[0].weight)


def test_sweep_errors():
    net, train, test = tiny()
    for kw, word in [(dict(scales=()), "scales"), (dict(scales=(0.0,)), "scales"),
                     (dict(r_s=(-1.0,)), "r_s"), (dict(seeds=()), "seeds"),
                     (dict(n_calib=70, n_select=20), "samples"), (dict(alpha=2.0), "alpha"),
                     (dict(semantics="brian"), "semantics")]:
        with pytest.raises(ValueError, match=word):
            sweep(net, train, test, **{"steps": 2, "n_calib": 10, "n_select": 10, **kw})




def hand_result(ann):
    # 2 seeds x 4 test images; per-image means: baseline [1, .5, .5, 1], adjusted [1, 1, .5, 1]
    return SweepResult(
        scales=np.array([1.0]), r_s=np.array([1.0]), select_baseline=np.array([0.5]),
        select_adjusted=np.array([[0.5]]), best_scale_baseline=1.0, best_scale_adjusted=1.0,
        best_r_s=1.0, test_baseline=np.array([[1, 0, 1, 1], [1, 1, 0, 1]], bool),
        test_adjusted=np.array([[1, 1, 1, 1], [1, 1, 0, 1]], bool),
        curve_baseline=np.zeros(3), curve_adjusted=np.zeros(3), ann_accuracy=ann,
        thresholds=np.ones(1), spike_rates_baseline=np.zeros(1),
        spike_rates_adjusted=np.zeros(1))


def test_summary_numbers_written_out():
    s = hand_result(0.95).summary()
    t3 = 3.1824463052837078  # t_{0.975} with 3 degrees of freedom
    assert s["baseline"]["mean"] == pytest.approx(0.75)
    assert s["baseline"]["sd"] == pytest.approx(0.28867513459481287)  # sqrt(1/12)
    assert s["baseline"]["half_width"] == pytest.approx(t3 * 0.28867513459481287 / 2)
    assert s["baseline"]["lo"] == pytest.approx(0.75 - 0.45934655775927)
    assert s["baseline"]["per_seed"] == [0.75, 0.75]
    assert s["adjusted"]["mean"] == pytest.approx(0.875)
    assert s["adjusted"]["per_seed"] == [1.0, 0.75]
    assert s["difference"]["mean"] == pytest.approx(0.125)
    assert s["difference"]["sd"] == pytest.approx(0.25)
    assert s["difference"]["hi"] == pytest.approx(0.125 + 0.39780578816046)
    assert s["difference"]["per_seed"] == pytest.approx([0.25, 0.0])
    assert s["gap"] == pytest.approx(0.2)
    assert s["recovered"] == pytest.approx(0.625)
    assert s["baseline"]["n"] == 4
    low = hand_result(0.7).summary()  # the SNN beats the ANN: no gap to recover
    assert low["gap"] == pytest.approx(-0.05) and np.isnan(low["recovered"])


def test_semantics_reach_the_simulator():
    net, train, test = tiny(1)
    s = SweepSettings(steps=10, alpha=0.9, scales=(1.0,), r_s=(1.0,), n_calib=30, n_select=20,
                      n_test=None, seeds=(0,), batch_size=16)
    rathi = sweep(net, train, test, s.replace(semantics="rathi"))
    assert rathi.params["semantics"] == "rathi"
    bal = balance(net, train[0][np.sort(np.random.default_rng(0).permutation(80)[:30])], "max")
    kw = dict(thresholds=bal.thresholds, steps=10, alpha=0.9, seed=0)
    direct = simulate(net, *test, semantics="rathi", **kw)
    np.testing.assert_array_equal(rathi.test_baseline[0], direct.correct())
    np.testing.assert_array_equal(rathi.curve_baseline, direct.accuracy)
    project = simulate(net, *test, **kw)
    assert not np.array_equal(direct.predictions, project.predictions)
