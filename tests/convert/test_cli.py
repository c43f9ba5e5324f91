import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from l4theory.cli import main
from l4theory.convert import io

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
    pytest.importorskip("l4theory.adjust")
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
    pytest.importorskip("l4theory.adjust")
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
