import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import l4theory.adjust  # noqa: F401  (a broken import must fail these tests, not skip them)
from l4theory.cli import main
from l4theory.convert import datasets, io

from .test_datasets import make_fake_mnist

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "models" / "fmnist_mlp.safetensors"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_fake_mnist(tmp_path_factory.mktemp("fake") / "fm", n_train=60, n_test=20)


def test_inspect(capsys):
    assert main(["inspect", str(MLP)]) == 0
    out = capsys.readouterr().out
    assert "linear" in out and "L4" in out and "(256,)" in out and "spiking layers: [1]" in out


def test_accuracy_and_balance(capsys, data, tmp_path):
    assert main(["accuracy", str(MLP), "--data", str(data)]) == 0
    assert "20 samples" in capsys.readouterr().out
    js = tmp_path / "b.json"
    assert main(["balance", str(MLP), "--data", str(data), "--method", "percentile",
                 "--n-calib", "30", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "method=percentile" in out
    rec = json.loads(js.read_text())
    assert rec["n_samples"] == 30 and len(rec["thresholds"]) == 1


def test_adjust_writes_loadable_model_and_refuses_overwrite(capsys, data, tmp_path):
    out = tmp_path / "adj.safetensors"
    argv = ["adjust", str(MLP), "--data", str(data), "--r-s", "0.5", "-o", str(out),
            "--n-calib", "40"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "s_hat min" in text and "guarded" in text
    net0, net1 = io.load_network(MLP), io.load_network(out)
    hist = net1.metadata["history"][-1]
    assert hist["method"] == "l4" and hist["r_s"] == 0.5 and hist["n_calib"] == 40
    scales = np.array(hist["scales"])
    np.testing.assert_allclose(net1.layers[1].weight, net0.layers[1].weight * scales[:, None],
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(net1.layers[1].bias, net0.layers[1].bias * scales, rtol=1e-5)
    np.testing.assert_array_equal(net1.layers[3].weight, net0.layers[3].weight)
    # mean |w| of the layer is restored
    assert np.abs(net1.layers[1].weight).mean() == pytest.approx(
        np.abs(net0.layers[1].weight).mean(), rel=1e-5)
    before = out.read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err and "--overwrite" in err
    assert out.read_bytes() == before
    assert main(argv + ["--overwrite", "--r-s", "4"]) == 0
    assert io.load_network(out).metadata["history"][-1]["r_s"] == 4.0
    # the format is kept
    assert main(["adjust", str(MLP), "--data", str(data), "--r-s", "1", "-o",
                 str(tmp_path / "x.onnx")]) == 2
    assert "keeps the input format" in capsys.readouterr().err


@pytest.mark.parametrize("argv, msg", [
    (["inspect", "/nonexistent/model.safetensors"], "no such file"),
    (["inspect", str(ROOT / "pyproject.toml")], "cannot tell the format"),
    (["accuracy", str(MLP), "--data", "/nonexistent-folder"], "--data"),
])
def test_errors_are_one_line(capsys, argv, msg):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err and "Traceback" not in err


def test_subprocess_entry_point(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\xff" * 16)
    r = subprocess.run([sys.executable, "-m", "l4theory.cli", "inspect", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith("l4theory inspect: error:") and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1
    h = subprocess.run([sys.executable, "-m", "l4theory.cli", "adjust", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert h.returncode == 0 and "--r-s" in h.stdout


def test_adjust_conv_model_onnx_keeps_format(capsys, data, tmp_path):
    from l4theory.convert.network import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU

    rng = np.random.default_rng(0)
    net = Network((1, 28, 28), [
        Conv2d(rng.normal(size=(4, 1, 3, 3)).astype(np.float32), None, padding=1, name="c1"),
        ReLU(), AvgPool2d(4), Flatten(),
        Linear(rng.normal(size=(10, 196)).astype(np.float32), None, name="fc"),
    ])
    src = io.save_network(net, tmp_path / "conv.onnx")
    out = tmp_path / "conv_adj.onnx"
    assert main(["adjust", str(src), "--data", str(data), "--r-s", "1", "-o", str(out),
                 "--n-calib", "20"]) == 0
    assert "4 neurons" in capsys.readouterr().out
    back = io.load_network(out)
    scales = np.array(back.metadata["history"][-1]["scales"])
    np.testing.assert_allclose(back.layers[0].weight,
                               net.layers[0].weight * scales[:, None, None, None], rtol=1e-5)
    np.testing.assert_array_equal(back.layers[4].weight, net.layers[4].weight)


def test_inspect_norms_are_theory_norms(capsys):
    from l4theory.theory.norms import l4_norm

    assert main(["inspect", str(MLP)]) == 0
    out = capsys.readouterr().out
    w = io.load_network(MLP).layers[1].weight.astype(np.float64)
    l4 = l4_norm(w, axis=1)
    line = next(ln for ln in out.splitlines() if "[ 1]" in ln and "L2" in ln)
    assert f"L4 {l4.min():.4g} / {l4.mean():.4g} / {l4.max():.4g}" in line


def test_sweep_writes_json_with_provenance(capsys, data, tmp_path):
    out = tmp_path / "s.json"
    argv = ["sweep", str(MLP), "--data", str(data), "--steps", "5", "--scales", "0.8,1",
            "--r-s", "1", "--n-calib", "20", "--n-select", "20", "--n-test", "0", "--seeds",
            "2", "--no-progress", "-o", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "baseline" in text and "difference" in text
    doc = json.loads(out.read_text())
    assert doc["params"]["n_test"] == 20 and len(doc["test_baseline"]) == 2
    assert doc["params"]["semantics"] == "project" and doc["params"]["alpha"] == 1.0
    prov = doc["provenance"]
    assert prov["model_sha256"] == hashlib.sha256(MLP.read_bytes()).hexdigest()
    assert prov["tool"] == "l4theory sweep" and prov["versions"]["numpy"] == np.__version__
    assert main(argv) == 2
    assert "exists" in capsys.readouterr().err


@pytest.fixture
def no_loading(monkeypatch):
    """Make every model and dataset loader fail loudly: argument checks must come first."""
    def boom(*args, **kwargs):
        raise AssertionError("data or model loaded before the arguments were checked")

    for mod, name in ((datasets, "load_named"), (datasets, "load_fashion_mnist"),
                      (io, "load_network")):
        monkeypatch.setattr(mod, name, boom)


@pytest.mark.parametrize("argv, words", [
    (["sweep", str(MLP), "--leak", "1.5"], ["--leak", "1.5", "alpha"]),
    (["sweep", str(MLP), "--leak", "0"], ["--leak", "0.0"]),
    (["sweep", str(MLP), "--steps", "0"], ["--steps", "0"]),
    (["sweep", str(MLP), "--scales", "0.5,-1"], ["--scales", "-1"]),
    (["sweep", str(MLP), "--scales", "a,b"], ["--scales", "a,b"]),
    (["sweep", str(MLP), "--r-s", "-2"], ["--r-s", "-2"]),
    (["sweep", str(MLP), "--n-test", "1"], ["--n-test", "1"]),
    (["sweep", str(MLP), "--seeds", "0"], ["--seeds", "0"]),
    (["sweep", str(MLP), "--n-calib", "0"], ["--n-calib", "0"]),
    (["sweep", str(MLP), "--batch-size", "0"], ["--batch-size", "0"]),
    (["sweep", str(MLP), "--workers", "0"], ["--workers", "0"]),
    (["sweep", str(MLP), "--block-size", "0"], ["--block-size", "0"]),
    (["sweep", str(MLP), "--workers", "2", "--scheduler", "tcp://x:1"], ["--scheduler"]),
    (["sweep", str(MLP), "-o", str(MLP)], ["-o", "exists"]),
    (["sweep", "/nonexistent.safetensors"], ["MODEL", "/nonexistent.safetensors"]),
    (["accuracy", str(MLP), "-n", "0"], ["-n", "0"]),
    (["balance", str(MLP), "--n-calib", "0"], ["--n-calib", "0"]),
    (["balance", str(MLP), "--percentile", "120"], ["--percentile", "120"]),
    (["balance", str(MLP), "--scale", "-1"], ["--scale", "-1"]),
    (["balance", str(MLP), "--json", str(MLP)], ["--json", "exists"]),
    (["adjust", str(MLP), "--r-s", "-1", "-o", "x.safetensors"], ["--r-s", "-1"]),
    (["adjust", str(MLP), "--r-s", "1", "--v-th0", "0", "-o", "x.safetensors"],
     ["--v-th0", "0"]),
    (["adjust", str(MLP), "--r-s", "1", "-o", "x.onnx"], ["keeps the input format"]),
])
def test_bad_options_fail_before_loading_anything(capsys, no_loading, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "loaded before" not in err
    for w in words:
        assert w in err, (w, err)


def test_sweep_without_dask_names_the_extra(capsys, no_loading, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    assert main(["sweep", str(MLP), "--workers", "2"]) == 2
    assert "l4theory[dist]" in capsys.readouterr().err


def test_simulate_prints_baseline_and_adjusted_curves(capsys, data, tmp_path):
    from l4theory.adjust import adjusted_network
    from l4theory.convert.balance import balance
    from l4theory.convert.simulate import simulate

    js = tmp_path / "sim.json"
    assert main(["simulate", str(MLP), "--data", str(data), "--sim-steps", "12", "--n-test", "8",
                 "--n-calib", "30", "--r-s", "1,4", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "l4 r_s=1" in out and "l4 r_s=4" in out
    rec = json.loads(js.read_text())
    assert set(rec["accuracy"]) == {"baseline", "l4 r_s=1", "l4 r_s=4"} and rec["n_test"] == 8
    # the curve is the library's own simulation of the same images and spikes
    net = io.load_network(MLP)
    tr, te = (datasets.load_named(str(data), s) for s in ("train", "test"))
    idx_cal = np.sort(np.random.default_rng(0).choice(60, 30, replace=False))
    idx = np.sort(np.random.default_rng(0).choice(20, 8, replace=False))
    x_cal = datasets.normalize(tr.images[idx_cal])
    bal = balance(net, x_cal, "max")
    adj = adjusted_network(net, x_cal, float(bal.thresholds[0]), 1.0).network
    res = simulate(adj, datasets.normalize(te.images[idx]), te.labels[idx],
                   thresholds=bal.thresholds, steps=12, bias_scales=bal.bias_scales,
                   readout_bias_scale=bal.readout_bias_scale)
    np.testing.assert_array_equal(rec["accuracy"]["l4 r_s=1"], res.accuracy)


@pytest.mark.parametrize("argv, words", [
    (["--device", "cuda"], "--device 'cuda': device='cuda' needs backend='torch'"),
    (["--sim-steps", "0"], "--sim-steps 0: must be >= 1"),
    (["--r-s", "1,x"], "--r-s: expected comma-separated numbers"),
])
def test_simulate_bad_options_fail_at_once(capsys, argv, words):
    assert main(["simulate", str(MLP), *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
