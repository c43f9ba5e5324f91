"""Smoke test of the conversion protocol (tiny sizes, the MLP) and its table/figure."""

import hashlib
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
    # the documented draw, done here independently: calibration and selection images from a
    # permutation of the training set, then the test subset from a permutation of the test set
    from l4theory.convert import datasets
    from l4theory.convert.io import load_network

    net = load_network(conversion.REPO_ROOT / "models" / "fmnist_mlp.safetensors")
    te = datasets.load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    rng.permutation(60000)
    idx = np.sort(rng.permutation(10000)[:40])
    ann = float(np.mean(net.predict(datasets.normalize(te.images[idx])) == te.labels[idx]))
    npz = np.load(tmp_path / "conversion_quick.npz")
    for r in doc["rows"]:
        tag = f"a{r['alpha']:g}_{r['reset']}"
        base = npz[f"{tag}_test_baseline"].astype(float)  # (seeds, images)
        adj = npz[f"{tag}_test_adjusted"].astype(float)
        assert r["ann_accuracy"] == ann
        assert r["baseline"]["mean"] == pytest.approx(base.sum() / base.size)
        assert r["baseline"]["per_seed"] == pytest.approx(list(base.sum(axis=1) / 40))
        assert r["gap"] == pytest.approx(ann - base.sum() / base.size)
        per_image = (adj - base).mean(axis=0)
        half = 2.022690920036761 * per_image.std(ddof=1) / np.sqrt(40)  # t_{0.975, 39}
        assert r["difference"]["hi"] - r["difference"]["lo"] == pytest.approx(2 * half)
        assert r["difference"]["n"] == 40
        sel_b = np.array(r["select_baseline"])
        assert r["best_scale_baseline"] == [0.6, 1.0][int(np.argmax(sel_b))] and r["best_r_s"] == 1.0
        assert len(r["select_adjusted"]) == 1 and len(r["select_adjusted"][0]) == 2
    saved = json.loads((tmp_path / "conversion_quick.json").read_text())
    assert saved["config"]["n_test"] == 40 and saved["config"]["semantics"] == "project"
    assert saved["provenance"]["model_sha256"] == hashlib.sha256(
        (conversion.REPO_ROOT / "models" / "fmnist_mlp.safetensors").read_bytes()).hexdigest()
    assert len(list((tmp_path / "tasks").glob("*.npz"))) > 0  # the resumable cache
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


@pytest.mark.parametrize("argv, words", [
    (["conversion", "--quick", "--n-test", "1"], ["--n-test", "n_test"]),
    (["conversion", "--quick", "--settings", "1.5:soft"], ["--settings", "alpha"]),
    (["conversion", "--quick", "--settings", "1:warm"], ["--settings", "warm"]),
    (["conversion", "--quick", "--settings", "x:soft"], ["--settings", "x:soft"]),
    (["conversion", "--quick", "--seeds", "0"], ["--seeds", "0"]),
    (["conversion", "--quick", "--workers", "0"], ["--workers", "0"]),
    (["conversion", "--quick", "--block-size", "0"], ["--block-size", "0"]),
    (["conversion", "--quick", "--model", "no_such_model"], ["--model", "no_such_model"]),
    (["run", "moments", "--workers", "-1"], ["--workers", "-1"]),
    (["run", "no_such_study"], ["no_such_study"]),
])
def test_bad_options_fail_before_loading(monkeypatch, capsys, argv, words):
    from l4theory.convert import datasets
    from validation.__main__ import main

    def boom(*args, **kwargs):
        raise AssertionError("data loaded before the options were checked")

    monkeypatch.setattr(datasets, "load_fashion_mnist", boom)
    monkeypatch.setattr(datasets, "load_named", boom)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loaded before" not in err
    for w in words:
        assert w in err, (w, err)
