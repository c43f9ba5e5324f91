"""
The cross-fitted study, rebuilt from its shipped bits
=====================================================

The cross-fitted study (``docs/study.md``) asks whether the paper's L4 adjustment recovers
conversion loss across five networks, each evaluated only on images it never saw. Every
finished (network, setting) block ships its per-image outcomes in
``records/study/cross/``; ``validation.study.cross.rebuild_cross`` replays them
(nothing is simulated) and pools the networks' paired differences
(:mod:`l4theory.experiment.meta`: DerSimonian-Laird random effects with the Hartung-Knapp
interval). ``python -m validation study --report`` does the same from the command line.

Here: the primary comparison (the paper's setting in the paper's pipeline, L4 minus the
baseline, thresholds chosen on 160 or 1,000 training images) and its forest plot.
"""

import sys
import tempfile
from pathlib import Path

import l4theory

ROOT = Path(l4theory.__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository's validation package

from validation.study.cross import rebuild_cross  # noqa: E402
from validation.study.cross_figures import forest  # noqa: E402

with tempfile.TemporaryDirectory() as out:
    doc = rebuild_cross(ROOT / "records" / "study", Path(out), "full", log=print)

# %%
# The primary comparison, pooled over the networks
# -------------------------------------------------
# ``difference`` is the method's accuracy minus the baseline's on the same never-seen
# images (points); ``recovered`` is that difference over the conversion gap (ANN minus
# baseline). The verdict follows the pre-registered reading rule (+/-0.3-point margin).

SIZE = {"small": 160, "full": 1000}
for c in doc["primary"]:
    p, d = c["pooled"], c["pooled"]["difference"]
    print(f"L4 vs baseline, chosen on {SIZE[c['size']]:4d} images, k = {p['k']}: "
          f"{100 * d['mean']:+.2f} [{100 * d['lo']:+.2f}, {100 * d['hi']:+.2f}] points, "
          f"{p['verdict']['verdict']}")

# %%
# Forest plot at the paper's setting
# ----------------------------------
# Each network's difference with its 95% interval over images, and the pooled estimate
# (red diamond). A network whose L4 tuning chose no adjustment (``r_s = inf`` at the
# baseline's scale) sits exactly at zero.

rows = [c for c in doc["comparisons"] if c["setting"] == "paper-rathi"]
fig = forest(rows, title="paper-rathi")
