"""The study's report: Markdown tables, rebuilt from the shipped records, and verified.

:func:`rebuild` replays every part whose record is found (in the order of
:data:`~validation.study.config.PARTS`, since later parts read earlier parts' results):
each part runs its own code with every task answered from the record, so every table,
interval, verdict and figure input is recomputed from the per-image bits, and nothing is
simulated. :func:`verify` recomputes randomly chosen recorded tasks from scratch (no
cache) and compares them with the record bit for bit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .accuracy import accuracy_markdown, accuracy_table
from .confirm import confirm_markdown, confirm_table
from .explore import explore_markdown, threshold_check
from .fidelity import fidelity_markdown, fidelity_table
from .holdout import holdout_markdown, holdout_table
from .power import power_markdown, power_table
from .regime import regime_map, regime_markdown
from .tasks import _COMPUTE, NotRecorded, Record, outcome, recording, task_ids

__all__ = ["MARKDOWN", "RUN", "rebuild", "record_stem", "report", "run_part", "verify"]

#: Each part's function (``fn(cfg, out_dir, workers=, log=)``).
RUN = {"regime": regime_map, "fidelity": fidelity_table, "power": power_table,
       "accuracy": accuracy_table, "explore": threshold_check, "confirm": confirm_table,
       "holdout": holdout_table}
#: Each part's Markdown.
MARKDOWN = {"regime": regime_markdown, "fidelity": fidelity_markdown,
            "power": power_markdown, "accuracy": accuracy_markdown,
            "explore": explore_markdown, "confirm": confirm_markdown,
            "holdout": holdout_markdown}


def record_stem(records_dir: Path, part: str, mode: str) -> Path:
    """The stem of a part's record files (``<part>_<mode>.record.{npz,json}``)."""
    return Path(records_dir) / f"{part}_{mode}"


def _has_record(stem: Path) -> bool:
    return stem.with_name(stem.name + ".record.json").is_file()


def run_part(part: str, cfg: dict, out_dir: Path, records_dir: Path, *, workers: int = 1,
             log=print) -> dict:
    """Run one part, keeping its per-image record in ``records_dir`` as it goes.

    A record already there (an interrupted run, possibly on another machine) is extended:
    the tasks it holds are answered from it, the others are computed.
    """
    if part not in RUN:
        raise ValueError(f"--part must be one of {sorted(RUN)}, got {part!r}")
    stem = record_stem(records_dir, part, cfg["mode"])
    rec = Record.load(stem, replay=False) if _has_record(stem) else Record()
    rec.path = stem
    rec.meta["config"] = cfg
    with recording(rec):
        return RUN[part](cfg, Path(out_dir), workers=workers, log=log)


def report(out_dir: Path, mode: str) -> str:
    """Markdown of every part of the study found in ``out_dir``."""
    from .cross_report import cross_markdown

    parts = []
    path = Path(out_dir) / f"cross_{mode}.json"
    if path.exists():
        parts.append(cross_markdown(json.loads(path.read_text())))
    for part, fn in MARKDOWN.items():
        path = Path(out_dir) / f"{part}_{mode}.json"
        if path.exists():
            doc = json.loads(path.read_text())
            src = "rebuilt from its record" if doc.get("rebuilt") else path.name
            parts.append(f"### {part} ({mode}; {src}, "
                         f"{(doc.get('elapsed_s') or float('nan')) / 60:.1f} min, git "
                         f"{(doc['provenance'].get('git_revision') or '?')[:7]})\n\n"
                         + fn(doc))
    return "\n\n".join(parts)


def rebuild(records_dir: Path, out_dir: Path, mode: str, log=print) -> list[str]:
    """Replay every recorded part into ``out_dir``; returns the parts rebuilt.

    Each part runs with the configuration it was run with (from its record), and writes
    its JSON as a run would, with the run's provenance and a ``rebuilt`` entry.
    """
    from .cross import rebuild_cross

    done = []
    t0 = time.perf_counter()
    if rebuild_cross(records_dir, out_dir, mode, log=log):
        done.append("cross")
        log(f"rebuilt cross in {time.perf_counter() - t0:.1f} s")
    for part in RUN:
        stem = record_stem(records_dir, part, mode)
        if not _has_record(stem):
            continue
        rec = Record.load(stem, replay=True)
        cfg = rec.meta["config"]
        t0 = time.perf_counter()
        partial = ""
        with recording(rec):
            try:
                RUN[part](cfg, Path(out_dir), workers=1, log=lambda _msg: None)
            except NotRecorded:
                # a run stopped part-way: its JSON holds every setting finished before
                partial = ", partial: up to the first setting the record does not hold"
        done.append(part)
        log(f"rebuilt {part} from {stem.name}.record.npz ({len(rec.tasks)} tasks, "
            f"{time.perf_counter() - t0:.1f} s{partial})")
    return done


def verify(records_dir: Path, mode: str, k: int, seed: int | None = None, log=print) -> bool:
    """Recompute ``k`` random recorded tasks from scratch; True when all match bit for bit.

    Parameters
    ----------
    records_dir : path-like
    mode : {"full", "quick"}
    k : int
        Tasks to recompute (drawn without replacement over every part's record).
    seed : int, optional
        Seed of the draw (None: a fresh one, printed so that it can be repeated).
    """
    if k < 1:
        raise ValueError(f"--verify must be >= 1, got {k}")
    from .cross import merged_record

    items = []
    for part in RUN:
        stem = record_stem(records_dir, part, mode)
        if _has_record(stem):
            rec = Record.load(stem, replay=True)
            items += [(part, tid, rec) for tid in sorted(rec.tasks)]
    cross = merged_record(records_dir)
    if cross is not None:
        items += [("cross", tid, cross) for tid in sorted(cross.tasks)]
    if not items:
        raise FileNotFoundError(f"no study records ({mode}) in {records_dir}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**32)
    pick = np.random.default_rng(seed).choice(len(items), size=min(k, len(items)),
                                              replace=False)
    log(f"verify: {len(pick)} of {len(items)} recorded tasks (seed {seed})")
    ok = True
    for i in sorted(int(j) for j in pick):
        part, tid, rec = items[i]
        entry = rec.tasks[tid]
        kind, task = entry["kind"], entry["task"]
        t0 = time.perf_counter()
        try:
            fresh = outcome(kind, _COMPUTE[kind](task), entry["steps"])
        except ImportError as exc:  # e.g. the torch backend absent: same bits with numpy
            log(f"  {part} {tid}: {exc}; recomputing with backend numpy")
            fresh = outcome(kind, _COMPUTE[kind]({**task, "backend": "numpy"}), entry["steps"])
        shipped = rec.stored(tid)
        same = set(fresh) == set(shipped) and all(
            fresh[n].dtype == shipped[n].dtype and fresh[n].shape == shipped[n].shape
            and fresh[n].tobytes() == shipped[n].tobytes() for n in fresh)
        ok &= same
        log(f"  {part} {tid} ({kind}, {task_ids(task).size} images, arm {task['arm']}, scale "
            f"{task['scale']}): {'identical' if same else 'DIFFERENT'} "
            f"({time.perf_counter() - t0:.1f} s)")
    return ok
