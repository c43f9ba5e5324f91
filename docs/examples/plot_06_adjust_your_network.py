"""
Adjusting your own network
==========================

The whole conversion path on the shipped Fashion-MNIST MLP (``models/fmnist_mlp.safetensors``,
784-256-10, ReLU), on a few hundred images so that it runs in seconds:

1. read the weights (:func:`l4theory.convert.io.load_network`);
2. check the ANN's accuracy (:meth:`~l4theory.convert.network.Network.forward`);
3. balance the thresholds on training images (:func:`l4theory.convert.balance.balance`);
4. apply the paper's L4 adjustment to the first layer
   (:func:`l4theory.adjust.adjusted_network`, Eqs. 6-9);
5. simulate both spiking networks on the same input spikes
   (:func:`l4theory.convert.simulate.simulate`) and compare accuracy over time steps.

The model file is found through the package (``models/`` beside the ``l4theory`` folder of a
clone of the repository, where ``pip install -e .`` leaves it), never the working directory.
On your own network, export the weights to safetensors, ONNX or npz.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import l4theory
from l4theory.adjust import adjusted_network
from l4theory.convert import balance, datasets, io
from l4theory.convert.simulate import simulate

MODELS = Path(l4theory.__file__).resolve().parents[1] / "models"
if not (MODELS / "fmnist_mlp.safetensors").is_file():
    raise FileNotFoundError(f"the shipped models are not at {MODELS}: install l4theory from a clone "
                            "of its repository (pip install -e .)")
net = io.load_network(MODELS / "fmnist_mlp.safetensors")
for layer in net.layers:
    weight = getattr(layer, "weight", None)
    print(f"{type(layer).__name__:10s}", "" if weight is None else f"weight {weight.shape}")

train = datasets.load_fashion_mnist("train")
test = datasets.load_fashion_mnist("test")
x_calib = datasets.normalize(train.images[:300])          # [-1, 1], the signed encoder's range
x_test = datasets.normalize(test.images[:300])
y_test = test.labels[:300]
ann_acc = np.mean(net.forward(x_test).argmax(axis=1) == y_test)
print(f"ANN accuracy on these {len(y_test)} test images: {ann_acc:.3f}")

# %%
# Balance, adjust, simulate
# -------------------------
# Thresholds from the largest ANN activation of each layer on the calibration images
# ("max" balancing). The adjustment rescales each first-layer neuron's weights by the ratio
# of its L4 spread to the layer's (``r_s`` sets how far), then restores the layer's mean
# ``|w|``; ``res.summary()`` says what it did.

bal = balance.balance(net, x_calib, "max")
print("balanced thresholds:", np.round(bal.thresholds, 3))
net_l4, res = adjusted_network(net, x_calib, float(bal.thresholds[0]), r_s=1.0)
for key, value in res.summary().items():
    print(f"  {key:14s} {value:.4g}" if isinstance(value, float) else f"  {key:14s} {value}")

steps, seed = 40, 3
runs = {}
for name, model in (("balanced", net), ("balanced + L4 adjustment", net_l4)):
    runs[name] = simulate(model, x_test, y_test, thresholds=bal.thresholds, steps=steps, seed=seed,
                          bias_scales=bal.bias_scales, readout_bias_scale=bal.readout_bias_scale)
    print(f"{name}: accuracy after {steps} steps {runs[name].accuracy[-1]:.3f}")

# %%
# Accuracy over time steps. Both runs see identical input spikes (same ``seed``), so the
# difference is the adjustment's alone; on 300 images its standard error is a few points, and
# the study (``docs/study-single-network.md``) measures it on the full test set.

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, r in runs.items():
    ax.plot(np.arange(1, steps + 1), r.accuracy, label=name)
ax.axhline(ann_acc, color="k", lw=0.8, ls=":", label="ANN")
ax.set(xlabel="time step", ylabel="accuracy", ylim=(0, 1))
ax.legend(frameon=False)
fig.tight_layout()
