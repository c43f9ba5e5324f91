"""PyTorch in and out: from_torch (torch.fx), the ONNX export path, to_torch, the torch device."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
nn = torch.nn

from l4theory.convert import from_torch, to_torch  # noqa: E402
from l4theory.convert.io import load_network, read_onnx, save_network  # noqa: E402
from l4theory.convert.simulate import simulate  # noqa: E402


def export_onnx(model, x, path):
    """``torch.onnx.export(..., dynamo=False)``, the exporter of the shipped models.

    Its deprecation warnings (the legacy exporter) are silenced here only.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.from_numpy(x[:1]),), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.short = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                       nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return nn.functional.relu(out + self.short(x))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.layer1 = Block(8, 8, 1)
        self.layer2 = Block(8, 16, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def vgg():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        nn.Dropout(0.3), nn.MaxPool2d(2, 2), nn.AvgPool2d(7), nn.Flatten(),
        nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(64, 10))


def _randomise(model, seed):
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial running statistics to fold
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return model.eval()


MODELS = {"vgg": vgg, "resnet": ResNet, "mlp": mlp}


def _x(n=16, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1, 28, 28)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_from_torch_and_onnx_match_pytorch_logits(tmp_path, name):
    model = _randomise(MODELS[name](), 1)
    x = _x()
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    net = from_torch(model, (1, 28, 28))
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, x, path)
    via_onnx = read_onnx(path)
    scale = np.abs(want).max()
    for got in (net.forward(x), via_onnx.forward(x)):
        assert np.abs(got - want).max() <= 1e-4 * scale
    assert net.inputs == via_onnx.inputs  # the same graph either way
    kinds = {lay.kind for lay in net.layers}
    assert ("add" in kinds) == (name == "resnet") and ("maxpool2d" in kinds) == (name == "vgg")
    assert "batchnorm" not in kinds


def test_from_torch_names_tensors_after_the_state_dict():
    model = _randomise(ResNet(), 2)
    net = from_torch(model, (1, 28, 28))
    keys = set(model.state_dict())
    for i in net.weight_layers:
        assert net.layers[i].weight_key in keys
    assert [net.layers[i].name for i in net.spiking_layers] == [
        "stem.0", "layer1.conv1", "layer1.conv2", "layer2.conv1", "layer2.conv2"]


def test_unsupported_layer_is_named_in_one_line():
    class Rnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 8))
            self.rnn = nn.LSTM(8, 8)

        def forward(self, x):
            return self.rnn(self.body(x))[0]

    with pytest.raises(ValueError) as err:
        from_torch(Rnn().eval(), (1, 28, 28))
    msg = str(err.value)
    assert "\n" not in msg and "unsupported operation LSTM at 'rnn'" in msg
    with pytest.raises(ValueError, match=r"unsupported Conv2d at '0': grouped"):
        from_torch(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)), (2, 5, 5))
    with pytest.raises(ValueError, match="training mode"):
        from_torch(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).train(), (1, 5, 5))
    with pytest.raises(ValueError, match="module must be a torch.nn.Module"):
        from_torch("model", (1, 5, 5))


def test_to_torch_round_trip_with_adjusted_first_layer_and_thresholds(tmp_path):
    model = _randomise(ResNet(), 3)
    net = from_torch(model, (1, 28, 28))
    first = net.weight_layers[0]
    scales = np.linspace(0.5, 1.5, net.layers[first].weight.shape[0]).astype(np.float32)
    net.layers[first].weight = net.layers[first].weight * scales[:, None, None, None]
    net.layers[first].bias = net.layers[first].bias * scales
    path = save_network(net, tmp_path / "adj.safetensors",
                        provenance={"method": "l4", "thresholds": [1.0, 0.5, 0.6, 0.7, 0.8]})
    back = load_network(path)
    fresh = _randomise(ResNet(), 3)
    to_torch(back, fresh)
    x = _x(8, 4)
    with torch.no_grad():
        got = fresh(torch.from_numpy(x)).numpy()
    want = net.forward(x)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    sd = fresh.state_dict()
    assert float(sd["stem.0.v_th"]) == 1.0 and float(sd["layer2.conv2.v_th"]) == pytest.approx(0.8)
    # the module's own export reads back to the adjusted network
    onnx_path = tmp_path / "adj.onnx"
    export_onnx(fresh, x, onnx_path)
    assert np.abs(read_onnx(onnx_path).forward(x) - want).max() <= 1e-4 * np.abs(want).max()
    with pytest.raises(ValueError, match="5 values > 0"):
        to_torch(back, fresh, thresholds=[1.0])
    with pytest.raises(ValueError, match="structure differs"):
        to_torch(back, mlp())


def test_importing_the_library_does_not_import_torch():
    code = ("import sys, l4theory, l4theory.convert, l4theory.convert.io, "
            "l4theory.convert.simulate; assert 'torch' not in sys.modules; "
            "l4theory.convert.from_torch; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torch_backend_device_checks():
    net = from_torch(_randomise(vgg(), 5), (1, 28, 28))
    x = _x(2)
    with pytest.raises(ValueError, match="needs backend='torch'"):
        simulate(net, x, thresholds=[1.0] * 3, steps=2, device="cuda")
    with pytest.raises(ValueError, match="torch device"):
        simulate(net, x, thresholds=[1.0] * 3, steps=2, backend="torch", device="nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            simulate(net, x, thresholds=[1.0] * 3, steps=2, backend="torch", device="cuda")
    a = simulate(net, x, thresholds=[1.0] * 3, steps=5, backend="torch", device="cpu")
    assert a.params["backend"] == "torch"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_backend_matches_the_cpu_on_the_same_spikes():
    net = from_torch(_randomise(ResNet(), 6), (1, 28, 28))
    x = _x(4)
    th = [0.5] * len(net.spiking_layers)
    cpu = simulate(net, x, thresholds=th, steps=20, backend="torch")
    gpu = simulate(net, x, thresholds=th, steps=20, backend="torch", device="cuda")
    assert gpu.params["device"] == "cuda"
    # same input spikes (CPU encoder); fp32 products may differ in the last bits
    np.testing.assert_allclose(gpu.readout, cpu.readout, rtol=1e-3, atol=1e-3)
