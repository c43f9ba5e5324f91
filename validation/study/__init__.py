"""Does a first-layer adjustment recover conversion loss? The project's study.

``python -m validation study [--quick] [--part PART|all] [--workers N]``, PART one of
regime, fidelity, power, accuracy, explore, confirm, holdout; ``--report`` rebuilds every
table from the shipped per-image records (``records/study/``) and ``--verify K``
recomputes K recorded tasks and compares them bit for bit.

The parts, one module each, on the library's experiment engine (:mod:`l4theory.experiment`):

regime map (:mod:`.regime`)
    Baseline conversion gap of the shipped VGG-5 over leak, reset, T and semantics.
fidelity (:mod:`.fidelity`)
    First-layer fidelity of every method on test images at a fixed threshold scale.
power (:mod:`.power`)
    The power pilot on training images; the first stage's pre-registered settings rule.
accuracy (:mod:`.accuracy`)
    The first stage (pre-registered): baseline vs each adjustment at the plan's settings.
explore (:mod:`.explore`)
    Exploratory, decided after the first accuracy row: every series at every scale of the
    chosen range, on the test set.
confirm (:mod:`.confirm`)
    The confirmatory stage, planned after the first stage's results were seen: each series
    selects its threshold scale on 1000 training images on a 0.05 grid; then the test set.
holdout (:mod:`.holdout`)
    The held-out images stage, planned after the confirmatory result: the same comparisons
    on training images no choice of the study used (the network was trained on them).

:mod:`.tasks` holds the pure tasks and the per-image record, :mod:`.report` the report,
its rebuild from records and the verification; :mod:`.config` the sizes and the plan.
"""

from l4theory.experiment import split_indices  # noqa: E402,I001 (the study's splits)

from .accuracy import accuracy_markdown, accuracy_schedule, accuracy_table, recovers, verdict
from .cli import add_arguments, handle, main
from .config import CONFIGS, PAPER_SETTING, PARTS, PREREGISTERED, RECORDS_DIR, RESULTS_DIR, config
from .confirm import confirm_markdown, confirm_reading, confirm_table
from .explore import explore_markdown, threshold_check
from .fidelity import fidelity_markdown, fidelity_table
from .holdout import holdout_blocks, holdout_markdown, holdout_size, holdout_table
from .power import gap_settings, pilot_power, power_markdown, power_table, preregistered, seeds_per_setting
from .regime import regime_map, regime_markdown
from .report import rebuild, report, verify
from .tasks import Record, arm_label, arm_network, fidelity_task, predictions_task, run_tasks

__all__ = ["CONFIGS", "PAPER_SETTING", "PARTS", "PREREGISTERED", "RECORDS_DIR", "RESULTS_DIR",
           "Record", "accuracy_markdown",
           "accuracy_schedule", "accuracy_table", "add_arguments", "arm_label", "arm_network",
           "config", "confirm_markdown", "confirm_reading", "confirm_table", "explore_markdown",
           "fidelity_markdown", "fidelity_table", "fidelity_task", "gap_settings", "handle",
           "holdout_blocks", "holdout_markdown", "holdout_size", "holdout_table", "main",
           "pilot_power", "power_markdown", "power_table", "predictions_task",
           "preregistered", "rebuild", "recovers", "regime_map", "regime_markdown", "report",
           "run_tasks", "seeds_per_setting", "split_indices", "threshold_check", "verdict",
           "verify"]
