"""Smoke test of the conversion protocol (tiny sizes, the MLP) and its table/figure."""

import json

import numpy as np
import pytest

from validation import conversion


def test_protocol_smoke(tmp_path):
    over = {"steps": 8, "n_calib": 30, "n_select": 20, "n_test": 40, "seeds": [0, 1],
            "scales": [0.6, 1.0], "r_s": [1.0]}
    doc = conversion.run("quick", out_dir=tmp_path, overrides=over,
                         settings=[(1.0, "soft"), (0.85, "hard")], progress=False)
    assert [(r["alpha"], r["reset"]) for r in doc["rows"]] == [(1.0, "soft"), (0.85, "hard")]
    for r in doc["rows"]:
        assert r["baseline"]["lo"] <= r["baseline"]["mean"] <= r["baseline"]["hi"]
        assert r["difference"]["n"] == 40
        assert r["gap"] == r["ann_accuracy"] - r["baseline"]["mean"]
        assert r["best_scale_baseline"] in (0.6, 1.0) and r["best_r_s"] == 1.0
        assert len(r["select_adjusted"]) == 1 and len(r["select_adjusted"][0]) == 2
    saved = json.loads((tmp_path / "conversion_quick.json").read_text())
    assert saved["provenance"]["model_sha256"] and saved["config"]["n_test"] == 40
    npz = np.load(tmp_path / "conversion_quick.npz")
    assert npz["a1_soft_test_baseline"].shape == (2, 40)
    table = (tmp_path / "conversion_quick.md").read_text()
    assert table.count("\n| ") == 3 and "| 0.85 | hard |" in table


@pytest.mark.statistical
def test_membrane_diagnostics_match_theory():
    # MLP first layer, one image: measured mean/variance of the free membrane agree with
    # the exact discrete cumulants (median |z| of a standard normal is 0.674), and the exact
    # formula predicts the per-neuron std better than the L4 norm
    from l4theory.convert import datasets
    from l4theory.convert.diagnostics import membrane_diagnostics
    from l4theory.convert.io import load_network

    net = load_network(conversion.REPO_ROOT / "models" / "fmnist_mlp.safetensors")
    x = datasets.normalize(datasets.load_fashion_mnist("test").images[:1])
    d = membrane_diagnostics(net, x, alpha=0.95, steps=30, n_trials=400, seed=3)
    assert 0.5 < d["z_mean"] < 0.85 and 0.5 < d["z_var"] < 0.85
    assert d["corr_std_exact"] > 0.95 > d["corr_std_l4"]
    assert d["mean_measured"].shape == (1, 256)


def test_diagnostics_written_with_provenance(tmp_path):
    from validation.diagnostics import run

    doc = run("fmnist_mlp", out_dir=tmp_path, n_images=1, n_trials=50, steps=10)
    saved = json.loads((tmp_path / "diagnostics_fmnist_mlp.json").read_text())
    assert saved["params"]["n_trials"] == 50 and saved["n_neurons"] == 256
    assert saved["provenance"]["model_sha256"] == doc["provenance"]["model_sha256"]
    with np.load(tmp_path / "diagnostics_fmnist_mlp.npz") as f:
        assert f["l4"].shape == (256,) and (f["var_measured"] >= 0).all()
