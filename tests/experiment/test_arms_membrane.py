"""Arms whose Eq. 6 mean is the sampled first-layer membrane (the paper's pipeline)."""

from __future__ import annotations

import numpy as np
import pytest

from l4theory.adjust import adjusted_network
from l4theory.convert.first_layer import membrane_mean
from l4theory.convert.network import Conv2d, Flatten, Linear, Network, ReLU
from l4theory.experiment.arms import MEMBRANE_SEED, Arm, clear_fits, fit_arm, fit_key


def _net():
    rng = np.random.default_rng(0)
    return Network((1, 4, 4), [Conv2d(rng.normal(0, 0.5, (2, 1, 3, 3)).astype(np.float32),
                                      padding=(1, 1, 1, 1)), ReLU(), Flatten(),
                               Linear(rng.normal(0, 1, (3, 32)).astype(np.float32))])


def test_arm_json_round_trip_and_errors():
    a = Arm("l4", 0.5, mu="membrane")
    assert Arm.from_dict(a.to_dict()) == a
    assert a.to_dict() == {"method": "l4", "r_s": 0.5, "mu": "membrane"}
    assert "mu" not in Arm("l4", 0.5).to_dict()  # older records keep their task ids
    assert a.label == "l4 r_s=0.5 mu=membrane"
    with pytest.raises(ValueError, match="mu"):
        Arm("l4", 0.5, mu="current")
    with pytest.raises(ValueError, match="takes no mu"):
        Arm("ratematch", mu="membrane")


def test_membrane_arm_fits_with_the_sampled_mean_of_its_setting():
    clear_fits()
    net = _net()
    x = np.random.default_rng(1).uniform(-1, 1, (5, 1, 4, 4)).astype(np.float32)
    setting = {"steps": 7, "alpha": 0.9, "reset": "hard", "semantics": "rathi"}
    got, summary = fit_arm(Arm("l4", 1.0, mu="membrane"), net, x, v_th0=0.6, v_th=0.3,
                           **setting)
    mu = membrane_mean(net, x, v_th=0.6, seed=MEMBRANE_SEED, **setting)
    want = adjusted_network(net, x, 0.6, 1.0, mu=mu).network
    np.testing.assert_array_equal(got.layers[0].weight, want.layers[0].weight)
    assert summary["mu"]["source"] == "membrane"
    # the key depends on the setting for a membrane arm, not for the current-mean arm
    kw = {"v_th0": 0.6, "v_th": 0.3}
    other = {**setting, "alpha": 1.0}
    assert (fit_key(Arm("l4", 1.0, mu="membrane"), net, x, setting=setting, **kw)
            != fit_key(Arm("l4", 1.0, mu="membrane"), net, x, setting=other, **kw))
    assert (fit_key(Arm("l4", 1.0), net, x, setting=setting, **kw)
            == fit_key(Arm("l4", 1.0), net, x, setting=other, **kw))
    clear_fits()
