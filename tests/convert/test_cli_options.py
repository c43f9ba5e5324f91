"""``l4theory --version``, ``inspect --json`` and errors that name the command's options."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import l4theory
from l4theory.cli import _cli_words, main
from l4theory.convert import io
from l4theory.theory.norms import l4_norm, lp_norm

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "models" / "fmnist_mlp.safetensors"
VGG_ONNX = ROOT / "models" / "fmnist_vgg5.onnx"
PYTHON_ARGS = re.compile(r"\b(spec|format|path|overwrite|strict)=|`path`")


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"l4theory {l4theory.__version__}"
    r = subprocess.run([sys.executable, "-m", "l4theory.cli", "--version"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"l4theory {l4theory.__version__}"


def test_version_comes_from_the_package_metadata():
    from importlib import metadata

    assert l4theory.__version__ == metadata.version("l4theory")
    assert re.fullmatch(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+.+)?", l4theory.__version__)


@pytest.mark.parametrize("model", [MLP, VGG_ONNX])
def test_inspect_json_is_a_documented_stable_object(capsys, model):
    assert main(["inspect", str(model), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"schema", "l4theory_version", "model", "network", "layers", "history"}
    assert doc["schema"] == "l4theory.inspect/1" and doc["l4theory_version"] == l4theory.__version__
    assert doc["model"] == {"file": model.name, "format": io.format_of(model),
                            "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    net = io.load_network(model)
    n = doc["network"]
    assert n["input_shape"] == list(net.input_shape) and n["output_shape"] == list(net.output_shape)
    assert n["n_parameters"] == net.n_parameters() == sum(lay["n_parameters"] for lay in doc["layers"])
    assert n["weight_layers"] == net.weight_layers and n["spiking_layers"] == net.spiking_layers
    assert len(doc["layers"]) == len(net.layers)
    for i, lay in enumerate(doc["layers"]):
        assert set(lay) == {"index", "kind", "name", "output_shape", "n_parameters", "weight_shape",
                            "has_bias", "norms"}
        assert lay["index"] == i and lay["output_shape"] == list(net.shapes[i + 1])
        if i not in net.weight_layers:
            assert lay["norms"] is None and lay["weight_shape"] is None and lay["n_parameters"] == 0
            continue
        w = net.layers[i].weight.astype(np.float64)
        rows = w.reshape(w.shape[0], -1)
        assert lay["weight_shape"] == list(w.shape) and lay["norms"]["n_out"] == w.shape[0]
        l4, l2 = l4_norm(rows), lp_norm(rows, 2)
        assert lay["norms"]["l4"] == pytest.approx({"min": l4.min(), "mean": l4.mean(), "max": l4.max()},
                                                   rel=1e-12)
        assert lay["norms"]["l2"]["max"] == pytest.approx(l2.max(), rel=1e-12)
        assert lay["norms"]["mean_abs_weight"] == pytest.approx(np.abs(w).mean(), rel=1e-6)


def test_inspect_json_carries_the_adjustment_history(capsys, tmp_path):
    net = io.load_network(MLP)
    net.metadata["history"] = [{"method": "l4", "r_s": 1.0, "scales": [1.0, 2.0]}]
    path = io.save_network(net, tmp_path / "h.safetensors")
    assert main(["inspect", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["history"][-1]["scales"] == [1.0, 2.0]


def _err(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not PYTHON_ARGS.search(err), err  # no Python argument names on the command line
    return err


def test_unknown_suffix_names_model_and_suffixes(capsys):
    err = _err(capsys, ["inspect", str(ROOT / "pyproject.toml")])
    assert "MODEL" in err and "cannot tell the format" in err and "*.onnx" in err


def test_spec_with_onnx_names_the_option(capsys):
    err = _err(capsys, ["inspect", str(VGG_ONNX), "--spec", str(ROOT / "models" / "fmnist_vgg5.json")])
    assert "--spec" in err and "ONNX" in err


def test_missing_spec_names_the_option(capsys, tmp_path):
    bare = tmp_path / "bare.npz"
    np.savez(bare, w=np.ones((2, 2)))
    err = _err(capsys, ["inspect", str(bare)])
    assert "pass --spec FILE" in err


@pytest.mark.parametrize("data, words", [
    ("fashion-mnist", ["--data 'fashion-mnist'", "pass it as --data FOLDER"]),
    ("mnist:", ["--data 'mnist:'", "as --data mnist:FOLDER"]),
    ("cifar10:{tmp}", ["--data 'cifar10:", "as --data cifar10:FOLDER."]),
    ("{tmp}", ["--data '", "missing t10k-images"]),
])
def test_missing_data_names_the_data_option(capsys, monkeypatch, tmp_path, data, words):
    monkeypatch.setenv("L4THEORY_FASHION_MNIST", str(tmp_path))  # an explicit, empty folder
    monkeypatch.delenv("L4THEORY_MNIST", raising=False)
    err = _err(capsys, ["accuracy", str(MLP), "--data", data.format(tmp=tmp_path)])
    for w in words:
        assert w in err, (w, err)


def test_library_messages_are_translated_once():
    from l4theory.adjust import adjust_weights

    with pytest.raises(ValueError) as exc:
        adjust_weights(np.array([[1.0, 0.0], [0.0, 5.0]]), np.array([[1.0, 1.0]]), 0.5, 0.0,
                       strict=True)
    assert "strict=True" in str(exc.value)
    assert _cli_words(str(exc.value)).startswith("--strict:")
    net = io.load_network(MLP)
    with pytest.raises(FileExistsError) as exc:
        io.save_network(net, MLP)
    msg = _cli_words(str(exc.value))
    assert "pass --overwrite to replace it" in msg and _cli_words(msg) == msg
