"""The study's sizes, plan constants, model and data loading, and provenance."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from l4theory._provenance import file_sha256, record

from ..paths import REPO_ROOT

__all__ = ["CONFIGS", "MIN_GAP", "PAPER_SETTING", "PARTS", "PREREGISTERED", "RECORDS_DIR",
           "RESULTS_DIR", "config", "load_model", "load_split", "model_sha", "provenance"]

RESULTS_DIR = REPO_ROOT / "results" / "study"
#: The tracked folder of the study's per-image records (full-size runs).
RECORDS_DIR = REPO_ROOT / "records" / "study"

#: The parts, in the order ``--part all`` runs them.
PARTS = ("regime", "fidelity", "power", "accuracy", "explore", "confirm", "holdout", "cross")

#: Sizes of the two modes. ``scales`` multiply every balanced threshold.
CONFIGS = {
    "quick": {
        "model": "fmnist_vgg5", "steps": 75, "report_steps": [15, 30, 50, 75],
        "alphas": [1.0, 0.85], "resets": ["soft", "hard"], "semantics": ["project"],
        "scales": [0.2, 0.3, 0.45, 0.65, 1.0], "n_calib": 64, "n_select": 32,
        "n_test": 48, "seeds": [0], "subset_seed": 0, "select_seed": 10_000,
        "batch_size": 48, "backend": "numpy",
        "fidelity": {"n_images": 8, "scale": 0.5, "settings": [[1.0, "soft"], [0.85, "hard"]],
                     "r_s": [0.0, 0.5, 2.0, "inf"], "max_pairs": 20_000},
        "accuracy": {"settings": [[1.0, "soft", "project", 75]],
                     "r_s": [0.5, 2.0], "methods": ["l4", "ratematch"],
                     "selection_seeds": []},
        "power": {"n_pilot": 32, "seeds": [0, 1]},
        "confirm": {"n_select": 32, "seed": 50_000, "start": [0.3, 0.45],
                    "grid": [0.2, 0.3, 0.45, 0.65, 1.0]},
        "holdout": {"block": 32, "seed": 60_000, "target_mde": 0.0027, "cap": 64},
    },
    "full": {
        "model": "fmnist_vgg5", "steps": 75, "report_steps": [15, 30, 50, 75],
        "alphas": [1.0, 0.95, 0.9, 0.85], "resets": ["soft", "hard"],
        "semantics": ["project", "rathi"],
        "scales": [0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0],
        "n_calib": 200, "n_select": 160, "n_test": 300, "seeds": [0],
        "subset_seed": 0, "select_seed": 10_000, "batch_size": 50, "backend": "torch",
        "fidelity": {"n_images": 100, "scale": 0.5, "steps": [15, 75],
                     "settings": [[1.0, "soft"], [1.0, "hard"], [0.9, "soft"], [0.85, "hard"]],
                     "r_s": [0.0, 0.25, 0.5, 1.0, 2.0, "inf"], "max_pairs": 200_000},
        "accuracy": None,  # filled from the pre-registered plan (docs/study-single-network.md)
        "power": {"n_pilot": 1000, "seeds": [0, 1]},
        # the confirmatory stage (docs/study-single-network.md; planned after the first stage's results):
        # the power pilot's images
        "confirm": {"n_select": 1000, "seed": 50_000,
                    "start": [round(0.3 + 0.05 * i, 2) for i in range(9)],
                    "grid": [round(0.1 + 0.05 * i, 2) for i in range(29)]},
        # the held-out images stage (docs/study-single-network.md; planned after the confirmatory result):
        # training images no choice of the study used (the network was trained on them)
        "holdout": {"block": 5000, "seed": 60_000, "target_mde": 0.0027, "cap": 40_000},
    },
}

#: The first stage's arms and selection (docs/study-single-network.md, "Pre-registered plan").
#: Its settings come from the regime map by the rule of the plan (:func:`preregistered`).
PREREGISTERED = {
    "r_s": [0.0, 0.25, 0.5, 1.0, 2.0, "inf"], "methods": ["l4", "exact", "ratematch",
                                                           "overshoot"],
    "selection_seeds": [1, 2], "settings": None, "n_test": None, "max_seeds": 8,
    "test_blocks": 2,
}
#: The paper's setting (always in the first stage).
PAPER_SETTING = (1.0, "soft", "project", 75)
#: Smallest regime-map gap (fraction) that puts a setting into the first stage.
MIN_GAP = 0.02


def config(mode: str, overrides: dict | None = None) -> dict:
    """``CONFIGS[mode]`` with ``overrides`` applied and ``mode`` recorded."""
    if mode not in CONFIGS:
        raise ValueError(f"mode must be one of {sorted(CONFIGS)}, got {mode!r}")
    cfg = json.loads(json.dumps(CONFIGS[mode]))
    cfg.update(overrides or {})
    cfg["mode"] = mode
    return cfg


@functools.lru_cache(maxsize=16)
def model_sha(path: Path) -> str:
    """sha256 of a model file (cached: every task id names the model by it)."""
    return file_sha256(path)


def provenance(model_path: Path, cfg: dict) -> dict:
    """Configuration, model hash, and the project's provenance record (git, versions)."""
    return {"model": model_path.name, "model_sha256": model_sha(model_path),
            "dataset": "Fashion-MNIST", "config": cfg,
            **record("python -m validation study", files=(model_path,))}


def model_path(name: str) -> Path:
    """Path of a shipped model's safetensors file (checked to exist)."""
    path = REPO_ROOT / "models" / f"{name}.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (train it with models/train.py)")
    return path


@functools.lru_cache(maxsize=8)
def load_model(name: str):
    """``(path, Network)`` of a shipped model."""
    from l4theory.convert.io import load_network

    path = model_path(name)
    return path, load_network(path)


@functools.lru_cache(maxsize=2)
def load_split(split: str):
    """Normalised Fashion-MNIST ``(x, labels)`` of ``split`` (pixels in [-1, 1])."""
    from l4theory.convert import datasets

    ds = datasets.load_fashion_mnist(split)
    return datasets.normalize(ds.images), ds.labels.astype(np.int64)
