"""``python -m validation study``: run parts, rebuild the report from records, verify them."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .config import CONFIGS, PARTS, RECORDS_DIR, RESULTS_DIR, config
from .cross import cross_part, cross_status, status_markdown
from .report import rebuild, report, run_part, verify

__all__ = ["add_arguments", "handle", "main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ``study`` subcommand (shared with ``python -m validation``)."""
    p.add_argument("--quick", action="store_true",
                   help="small sizes (a few minutes on 2 cores); see CONFIGS['quick']")
    p.add_argument("--part", choices=[*PARTS, "all"], default="all")
    p.add_argument("--workers", type=int, default=1,
                   help="local worker processes for the tasks (default 1: serial)")
    p.add_argument("--out", default=None, help="output folder (default results/study)")
    p.add_argument("--records", default=None,
                   help="folder of the per-image records (default: records/study, tracked, "
                        "for full-size runs; the output folder with --quick)")
    p.add_argument("--n-test", type=int, default=None, help="override the test subset size "
                   "(0 = the full test set)")
    p.add_argument("--n-select", type=int, default=None, help="override the selection size")
    p.add_argument("--seeds", type=int, default=None, help="override the number of seeds")
    p.add_argument("--backend", choices=["numpy", "torch"], default=None,
                   help="simulator linear-algebra backend (default numpy)")
    p.add_argument("--n-pilot", type=int, default=None,
                   help="override the power pilot's number of training images")
    p.add_argument("--semantics", default=None,
                   help="comma-separated subset of project,rathi (regime map)")
    p.add_argument("--no-figure", action="store_true",
                   help="do not print the command that draws the figures")
    p.add_argument("--report", action="store_true",
                   help="rebuild every part from its per-image record into the output folder "
                        "and print the Markdown tables; simulates nothing")
    p.add_argument("--verify", type=int, default=None, metavar="K",
                   help="recompute K randomly chosen recorded tasks from scratch and compare "
                        "them bit for bit with the record (exit status 1 on a difference)")
    p.add_argument("--block", default=None, metavar="K:SETTING",
                   help="with --part cross: run one block, network K at SETTING "
                        "(e.g. 0:paper-rathi)")
    p.add_argument("--status", action="store_true",
                   help="list the cross study's blocks: finished, partial (how many runs "
                        "recorded) or not started; reads the record files only")
    p.add_argument("--verify-seed", type=int, default=None,
                   help="seed of the --verify draw (default: a fresh one, printed)")


def _overrides(args, mode: str) -> dict:
    over = {}
    if args.n_test is not None:
        over["n_test"] = None if args.n_test == 0 else args.n_test
    if args.n_select is not None:
        over["n_select"] = args.n_select
    if args.seeds is not None:
        over["seeds"] = list(range(args.seeds))
    if args.backend is not None:
        over["backend"] = args.backend
    if args.n_pilot is not None:
        over["power"] = {**CONFIGS[mode]["power"], "n_pilot": args.n_pilot}
    if args.semantics is not None:
        over["semantics"] = [s for s in args.semantics.split(",") if s]
    return over


def handle(args) -> int:
    """Run, rebuild or verify the parts of the study for parsed ``args``; the exit status."""
    mode = "quick" if args.quick else "full"
    cfg = config(mode, _overrides(args, mode))
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    out_dir = Path(args.out) if args.out else RESULTS_DIR
    records = Path(args.records) if args.records else (out_dir if args.quick else RECORDS_DIR)
    if args.status:
        print(status_markdown(cross_status(records, mode)))
        return 0
    if args.verify is not None:
        return 0 if verify(records, mode, args.verify, args.verify_seed, log=_log) else 1
    if args.report:
        t0 = time.perf_counter()
        done = rebuild(records, out_dir, mode, log=_log)
        if not done:
            raise FileNotFoundError(f"no study records ({mode}) in {records}")
        print(report(out_dir, mode))
        _log(f"report: {len(done)} parts rebuilt from {records} in "
             f"{time.perf_counter() - t0:.1f} s")
        return 0
    if args.block is not None and args.part != "cross":
        raise ValueError(f"--block needs --part cross, got --part {args.part}")
    parts = PARTS if args.part == "all" else (args.part,)
    for part in parts:
        if part == "cross":
            cross_part(mode, out_dir, records, workers=args.workers, block=args.block,
                       backend=args.backend, log=_log)
        else:
            run_part(part, cfg, out_dir, records, workers=args.workers, log=_log)
    if not args.no_figure:
        _log("figures: python -m figures study_regime study_fidelity study_accuracy "
             "study_confirm study_holdout" + (" --quick" if mode == "quick" else ""))
    return 0


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv=None) -> int:
    """Command line; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m validation study",
                                description="Does a first-layer adjustment recover "
                                            "conversion loss? The project's study.")
    add_arguments(p)
    return handle(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
