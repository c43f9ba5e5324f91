"""
Reading the study's shipped results
===================================

The conversion study (``docs/study-single-network.md``) ships the per-image outcome of every task of its
full-size runs in ``records/study/``: ``<part>_full.record.json`` lists each task (what
ran: arm, setting, threshold scale, image ids, spike seed) and ``.record.npz`` holds its
per-image result. ``python -m validation study --report`` rebuilds every table from these
files; here we read two of them directly, with NumPy and the library's statistics.

1. The fidelity record: the first layer's per-image rate error of every method, minus the
   unadjusted layer's on the same 100 test images, with a paired 95% CI
   (:func:`l4theory.experiment.mean_ci`).
2. The regime record: the baseline's accuracy on the 160 selection images against the
   threshold scale, after 15 and after 75 steps, from the recorded predicted classes.
"""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import l4theory
from l4theory.experiment import mean_ci

RECORDS = Path(l4theory.__file__).resolve().parents[1] / "records" / "study"


def load(part):
    """The task index and the arrays of one part's record."""
    stem = RECORDS / f"{part}_full"
    index = json.loads(stem.with_name(stem.name + ".record.json").read_text())
    with np.load(stem.with_name(stem.name + ".record.npz"), allow_pickle=False) as z:
        return index, {k: z[k] for k in z.files}


# %%
# Fidelity: per-image rate MSE against the unadjusted first layer
# ----------------------------------------------------------------

index, arrays = load("fidelity")
cfg = index["config"]
print(f"{len(index['tasks'])} fidelity tasks, run at git {index['provenance']['git_revision'][:7]}")

setting = {"alpha": 0.85, "reset": "hard", "steps": 75}
rows = {}
for tid, entry in index["tasks"].items():
    t = entry["task"]
    if all(t[k] == v for k, v in setting.items()):
        arm = t["arm"]
        label = arm["method"] + (f" r_s={arm['r_s']}" if "r_s" in arm else "")
        rows[label] = arrays[f"{tid}/mse_per_image"]
none = rows.pop("none")
labels = sorted(rows, key=lambda k: np.mean(rows[k] - none))
cis = [mean_ci(rows[k] - none) for k in labels]
for k, ci in zip(labels, cis, strict=True):
    print(f"{k:16s} {ci['mean']:+.5f} [{ci['lo']:+.5f}, {ci['hi']:+.5f}]")

fig, ax = plt.subplots(figsize=(6.4, 3.6))
y = np.arange(len(labels))
ax.errorbar([c["mean"] for c in cis], y, xerr=[c["half_width"] for c in cis], fmt="o",
            color="k", capsize=3)
ax.axvline(0, color="grey", lw=0.8, ls="--")
ax.set_yticks(y, labels)
ax.set_xlabel("rate MSE minus the unadjusted layer's (per image, 95% CI)")
ax.set_title("alpha 0.85, hard reset, T = 75, 100 test images")
fig.tight_layout()

# %%
# Regime map: the baseline's selection curve, from the recorded classes
# ---------------------------------------------------------------------
# Each selection task holds the predicted class of each of the 160 selection images at the
# recorded steps; the labels come from Fashion-MNIST (``l4theory.convert.datasets``).

from l4theory.convert import datasets  # noqa: E402

labels_train = datasets.load_fashion_mnist("train").labels
index, arrays = load("regime")
curves = {}
for tid, entry in index["tasks"].items():
    t = entry["task"]
    if (t["split"], t["alpha"], t["reset"], t["semantics"]) == ("train", 0.85, "hard", "project"):
        ids = np.asarray(t["ids"])
        for step, classes in zip(entry["steps"], arrays[tid], strict=True):
            acc = float(np.mean(classes == labels_train[ids]))
            curves.setdefault(step, {})[t["scale"]] = acc

fig, ax = plt.subplots(figsize=(6.4, 3.6))
for step in (15, 75):
    scales = sorted(curves[step])
    ax.plot(scales, [100 * curves[step][s] for s in scales], "o-", label=f"T = {step}")
ax.set_xscale("log")
ax.set_xlabel("threshold scale (every balanced threshold times it)")
ax.set_ylabel("selection accuracy (%)")
ax.set_title("baseline, alpha 0.85, hard reset (160 training images)")
ax.legend()
fig.tight_layout()
