"""Train the shipped Fashion-MNIST networks with PyTorch and export them.

Usage (from the repository root, with the ``train`` extra installed)::

    python models/train.py            # both models
    python models/train.py --model fmnist_mlp --epochs 10
    python models/train.py --model fmnist_resnet --checkpoint ckpt.safetensors
    python models/train.py --model fmnist_resnet --from-checkpoint ckpt.safetensors --overwrite

Writes, for each model NAME in {fmnist_vgg5, fmnist_mlp, fmnist_resnet}:

- ``models/NAME.safetensors``: float32 weights, the l4theory network spec embedded in the
  ``__metadata__`` entry ``l4theory_spec`` (written with the ``safetensors`` package,
  independent of l4theory's own writer),
- ``models/NAME.onnx``: the same network in eval mode (``torch.onnx.export``,
  ``dynamo=False``, opset 17; dropout removed),
- ``models/NAME.json``: provenance (ANN test accuracy, epochs, seed, training time,
  hyperparameters, library versions, sha256 of the data files and of the exported files).

Training is CPU-only and deterministic: fixed seed, ``torch.use_deterministic_algorithms``,
a fixed thread count. Pixels are scaled to [-1, 1] (``x/127.5 - 1``), the range of the
signed encoder of Rathi et al. (2020). The library itself never imports torch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from l4theory.convert.datasets import load_fashion_mnist, normalize  # noqa: E402

HERE = Path(__file__).resolve().parent
VGG_HIDDEN = 64  # keeps all shipped files (safetensors + ONNX, both models) under 8 MB
RESNET_WIDTHS = (16, 32, 64)  # the paper's ResNet-20 stage widths, one basic block per stage
DEFAULT_EPOCHS = {"fmnist_vgg5": 6, "fmnist_mlp": 10, "fmnist_resnet": 2}
N_FOLDS = 5        # cross-fitted networks: network k never sees training fold k
FOLD_SEED = 2022   # seed of the fold permutation (l4theory.experiment.splits.folds)


def _resnet():
    """A small ResNet: ResNet-20's shape (3 stages of 16/32/64 channels) for 28x28x1.

    A 3x3 stem (conv, batch norm, ReLU), then one basic block per stage: conv-BN-ReLU,
    conv-BN, plus the shortcut (identity in stage 1; a 1x1 stride-2 projection with batch
    norm in stages 2 and 3), then ReLU; global average pooling (7x7) and a linear readout.
    Convolutions have no bias (batch norm supplies it; it is folded on export).
    """
    import torch.nn as nn

    class BasicBlock(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.shortcut = nn.Sequential()
            if stride != 1 or c_in != c_out:
                self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                              nn.BatchNorm2d(c_out))
            self.relu2 = nn.ReLU()

        def forward(self, x):
            out = self.relu1(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu2(out + self.shortcut(x))

    w1, w2, w3 = RESNET_WIDTHS
    return nn.Sequential(
        nn.Conv2d(1, w1, 3, 1, 1, bias=False), nn.BatchNorm2d(w1), nn.ReLU(),
        BasicBlock(w1, w1, 1), BasicBlock(w1, w2, 2), BasicBlock(w2, w3, 2),
        nn.AvgPool2d(7), nn.Flatten(), nn.Linear(w3, 10),
    )


def sha256(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build(name: str):
    """Return (torch module, l4theory spec dict) for a model name."""
    import torch.nn as nn

    if name == "fmnist_vgg5":
        # VGG-5 of Rathi et al. (cfg [64, 'A', 128, 128, 'A'], no bias, ReLU, avg pooling,
        # dropout after convs not followed by pooling) adapted to 28x28x1 inputs, with a
        # narrow fully connected head.
        features = nn.Sequential(
            nn.Conv2d(1, 64, 3, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.ReLU(), nn.Dropout(0.2),
            nn.Conv2d(128, 128, 3, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2),
        )
        classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 7 * 7, VGG_HIDDEN, bias=False), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(VGG_HIDDEN, 10, bias=False),
        )
        model = nn.Sequential()
        model.add_module("features", features)
        model.add_module("classifier", classifier)
        conv = {"type": "conv2d", "stride": [1, 1], "padding": [1, 1, 1, 1], "bias": None}
        pool = {"type": "avgpool2d", "kernel": [2, 2], "stride": [2, 2]}
        layers = [
            dict(conv, weight="features.0.weight"), {"type": "relu"}, dict(pool),
            dict(conv, weight="features.3.weight"), {"type": "relu"},
            dict(conv, weight="features.6.weight"), {"type": "relu"}, dict(pool),
            {"type": "flatten"},
            {"type": "linear", "weight": "classifier.1.weight", "bias": None}, {"type": "relu"},
            {"type": "linear", "weight": "classifier.4.weight", "bias": None},
        ]
    elif name == "fmnist_mlp":
        model = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10),
        )
        layers = [
            {"type": "flatten"},
            {"type": "linear", "weight": "1.weight", "bias": "1.bias"}, {"type": "relu"},
            {"type": "linear", "weight": "4.weight", "bias": "4.bias"},
        ]
    elif name == "fmnist_resnet":
        # the spec comes from l4theory.convert.from_torch at export (batch norm folded)
        return _resnet(), None
    else:
        raise ValueError(f"unknown model {name!r}")
    spec = {"format": "l4theory.network", "version": 1, "name": name,
            "input_shape": [1, 28, 28], "input_range": [-1.0, 1.0], "layers": layers}
    return model, spec


def evaluate(model, x, y, batch=1000) -> float:
    """Test accuracy of ``model`` in eval mode."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return correct / len(x)


def _fit(model, xtr, ytr, xte, yte, name, epochs, seed, lr, batch):
    """Train ``model`` in place; return (history, training time in s)."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(xtr) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    history = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total, nb = 0.0, 0
        for i in range(0, len(xtr), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
            nb += 1
        acc = evaluate(model, xte, yte)
        history.append({"epoch": epoch + 1, "train_loss": total / nb, "test_accuracy": acc,
                        "elapsed_s": time.perf_counter() - t0})
        print(f"{name} epoch {epoch + 1}/{epochs} loss {total / nb:.4f} test acc {acc:.4f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return history, time.perf_counter() - t0


def save_checkpoint(model, path, history, train_time, epochs) -> None:
    """Write the trained state dict (batch-norm statistics included) as safetensors.

    The history, training time and epochs travel in the metadata, so that a later run can
    export from the checkpoint (``--from-checkpoint``) without training again.
    """
    from safetensors.numpy import save_file

    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    meta = {"history": json.dumps(history), "training_time_s": repr(train_time), "epochs": str(epochs)}
    save_file(state, str(path), metadata=meta)


def load_checkpoint(model, path):
    """Load a checkpoint written by :func:`save_checkpoint`; return (history, time, epochs)."""
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        meta = fh.metadata()
        state = {k: torch.from_numpy(fh.get_tensor(k)) for k in fh.keys()}
    model.load_state_dict(state)
    return json.loads(meta["history"]), float(meta["training_time_s"]), int(meta["epochs"])


def _export_resnet(model, st_path, sample):
    """Write the eval-mode ResNet through l4theory (batch norm folded).

    Returns the spec and the number of parameters after folding.
    """
    from safetensors.numpy import save_file

    from l4theory.convert import from_torch
    from l4theory.convert.io import spec_from_network, tensors_of

    net = from_torch(model, tuple(sample.shape[1:]), name="fmnist_resnet")
    net.metadata["input_range"] = [-1.0, 1.0]
    spec = spec_from_network(net)
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors_of(net).items()}
    save_file(tensors, str(st_path), metadata={"l4theory_spec": json.dumps(spec)})
    return spec, net.n_parameters()


def fold_name(name: str, fold: int | None) -> str:
    """File stem of ``name`` trained without training fold ``fold`` (None: all images)."""
    return name if fold is None else f"{name}_fold{fold}"


def train(name: str, epochs: int, seed: int, lr: float, batch: int, threads: int, out_dir=HERE,
          checkpoint=None, from_checkpoint=None, fold=None, onnx_export=True) -> dict:
    """Train one model (or load its checkpoint), export it, write its provenance.

    With ``fold`` set, the model trains on the training set minus fold ``fold`` of
    :data:`N_FOLDS` (``l4theory.experiment.splits.folds(60000, N_FOLDS, FOLD_SEED)``), and
    the provenance also gives its accuracy on that never-seen fold.
    """
    import torch

    from l4theory.experiment.splits import folds

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)

    tr, te = load_fashion_mnist("train"), load_fashion_mnist("test")
    xtr = torch.from_numpy(normalize(tr.images))
    ytr = torch.from_numpy(tr.labels)
    held = None
    if fold is not None:
        held = folds(len(ytr), N_FOLDS, FOLD_SEED)[fold]
        keep = np.setdiff1d(np.arange(len(ytr)), held)
        xfold, yfold = xtr[held], ytr[held]
        xtr, ytr = xtr[keep], ytr[keep]
    xte = torch.from_numpy(normalize(te.images))
    yte = torch.from_numpy(te.labels)

    model, spec = build(name)
    stem = fold_name(name, fold)
    if spec is not None:
        spec["name"] = stem
    if from_checkpoint is not None:
        history, train_time, epochs = load_checkpoint(model, from_checkpoint)
    else:
        history, train_time = _fit(model, xtr, ytr, xte, yte, stem, epochs, seed, lr, batch)
        if checkpoint is not None:
            save_checkpoint(model, checkpoint, history, train_time, epochs)
    test_acc = evaluate(model, xte, yte)
    train_acc = evaluate(model, xtr, ytr)

    # ---- export ------------------------------------------------------------------------
    import onnx
    import safetensors
    from safetensors.numpy import save_file

    model.eval()
    state = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()
             if v.is_floating_point()}
    st_path, onnx_path, json_path = _outputs(out_dir, stem)
    n_folded = None
    if spec is None:
        spec, n_folded = _export_resnet(model, st_path, xte[:1])
    else:
        save_file(state, str(st_path), metadata={"l4theory_spec": json.dumps(spec)})
    if onnx_export:
        torch.onnx.export(model, (xte[:1],), str(onnx_path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    fold_info = {}
    if fold is not None:
        fold_info = {"fold": fold, "n_folds": N_FOLDS, "fold_seed": FOLD_SEED,
                     "fold_indices": "l4theory.experiment.splits.folds(60000, n_folds, "
                                     "fold_seed)[fold] (training-set indices never trained on)",
                     "fold_indices_sha256": hashlib.sha256(held.tobytes()).hexdigest(),
                     "n_train_used": len(ytr), "ann_fold_accuracy": evaluate(model, xfold, yfold)}
    prov = {
        "model": stem,
        "dataset": "Fashion-MNIST (original IDX files)",
        "data_files": {p.name: sha256(p) for p in (*tr.files, *te.files)},
        "preprocessing": "x / 127.5 - 1 (pixels in [-1, 1]); no augmentation",
        "ann_test_accuracy": test_acc,
        "ann_train_accuracy": train_acc,
        "n_test": len(xte),
        **fold_info,
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch,
        "optimizer": f"Adam, OneCycleLR max_lr={lr}",
        "loss": "cross-entropy",
        "threads": threads,
        "deterministic": True,
        "training_time_s": round(train_time, 1),
        # True: trained by an earlier run with --checkpoint, exported by --from-checkpoint
        "exported_from_checkpoint": from_checkpoint is not None,
        "history": history,
        "spec": spec,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        **({} if n_folded is None else {"n_parameters_folded": int(n_folded),
                                        "batchnorm": "folded into the conv before it on export"}),
        "files": {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size}
                  for p in (st_path, onnx_path) if p.exists()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "onnx": onnx.__version__,
                     "safetensors": safetensors.__version__},
        "platform": platform.platform(),
        "script": "models/train.py",
    }
    json_path.write_text(json.dumps(prov, indent=2) + "\n")
    written = ", ".join(p.name for p in (st_path, onnx_path, json_path) if p.exists())
    print(f"{stem}: test acc {test_acc:.4f}, {train_time:.0f} s, wrote {written}", flush=True)
    return prov


def _outputs(out_dir, name):
    """Paths of the three files written for model ``name`` in ``out_dir``."""
    return tuple(Path(out_dir) / f"{name}{ext}" for ext in (".safetensors", ".onnx", ".json"))


def main(argv=None) -> int:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["fmnist_vgg5", "fmnist_mlp", "fmnist_resnet", "all"],
                   default="all")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs (default: 6 for the VGG, 10 for the MLP, 2 for the ResNet)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(HERE), help="output folder (default: models/)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing model files (the shipped ones included)")
    p.add_argument("--checkpoint", default=None,
                   help="also write the trained, unfolded state dict here (safetensors)")
    p.add_argument("--from-checkpoint", default=None,
                   help="skip training: load this checkpoint (from --checkpoint) and export it")
    p.add_argument("--fold", type=int, default=None, choices=range(N_FOLDS), metavar="K",
                   help=f"train without training fold K of {N_FOLDS} (cross-fitting); writes "
                        "NAME_foldK.safetensors and .json only (no ONNX)")
    args = p.parse_args(argv)
    names = (["fmnist_mlp", "fmnist_vgg5", "fmnist_resnet"] if args.model == "all"
             else [args.model])
    if (args.checkpoint or args.from_checkpoint or args.fold is not None) and len(names) != 1:
        p.error("--checkpoint, --from-checkpoint and --fold need a single --model")
    existing = [str(f) for n in names for f in _outputs(args.out, fold_name(n, args.fold))
                if f.exists()]
    if existing and not args.overwrite:
        p.error(f"{', '.join(existing)} exist; pass --overwrite to replace them or --out DIR")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for name in names:
        epochs = args.epochs or DEFAULT_EPOCHS[name]
        train(name, epochs, args.seed, args.lr, args.batch, args.threads, out_dir=args.out,
              checkpoint=args.checkpoint, from_checkpoint=args.from_checkpoint,
              fold=args.fold, onnx_export=args.fold is None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
