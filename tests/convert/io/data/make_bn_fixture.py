"""Write the PyTorch BatchNorm fixture used by ``test_spec.py`` (needs torch==2.13.0).

``python tests/convert/io/data/make_bn_fixture.py`` builds a small Conv2d-BatchNorm2d-ReLU-
AvgPool-Linear-BatchNorm1d-ReLU-Linear module (seed 0), runs five training batches so that
the running statistics are not trivial, switches to eval mode and writes, next to this file:
``bn_torch.safetensors`` (the state_dict as written by the ``safetensors`` package's torch
API, ``num_batches_tracked`` included, with the l4theory spec in the metadata) and
``bn_torch_logits.npz`` (16 inputs and PyTorch's logits for them). The test then checks
l4theory's loader against PyTorch without needing torch.
"""

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
SPEC = {"format": "l4theory.network", "version": 1, "name": "bn_torch", "input_shape": [1, 8, 8],
        "layers": [
            {"type": "conv2d", "weight": "0.weight", "bias": "0.bias", "padding": 1},
            {"type": "batchnorm", "weight": "1.weight", "bias": "1.bias",
             "running_mean": "1.running_mean", "running_var": "1.running_var", "eps": 1e-3},
            {"type": "relu"}, {"type": "avgpool2d", "kernel": 2}, {"type": "flatten"},
            {"type": "linear", "weight": "5.weight", "bias": None},
            {"type": "batchnorm", "weight": "6.weight", "bias": "6.bias",
             "running_mean": "6.running_mean", "running_var": "6.running_var"},
            {"type": "relu"},
            {"type": "linear", "weight": "8.weight", "bias": "8.bias"}]}


def main() -> None:
    """Build, train briefly, export."""
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4, eps=1e-3),
                          nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 6, bias=False),
                          nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    with torch.no_grad():
        for bn in (model[1], model[6]):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
        model.train()
        for _ in range(5):
            model(torch.randn(32, 1, 8, 8) * 1.5 + 0.3)
    model.eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(HERE / "bn_torch.safetensors"),
              metadata={"l4theory_spec": json.dumps(SPEC), "torch": torch.__version__})
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        logits = model(x)
    np.savez(HERE / "bn_torch_logits.npz", x=x.numpy(), logits=logits.numpy())


if __name__ == "__main__":
    main()
