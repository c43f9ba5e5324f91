"""Command line of the validation package: ``run``, ``list``, ``conversion``, ``study``.

``python -m validation run all [--quick|--full]``, ``run NAME ...``, ``conversion [--quick]``,
``study [--quick] [--part ...]``.

``run`` and ``conversion`` take ``--workers N`` (a Dask LocalCluster of N processes) or
``--scheduler ADDRESS`` (an existing Dask cluster); without them nothing imports Dask.
``run`` distributes whole studies (each is seeded on its own, so the numbers do not
change); ``conversion`` distributes blocks of images (see :mod:`validation.conversion`).
Bad options fail before any computation with one line on stderr and status 2.
"""

from __future__ import annotations

import argparse
import sys


def _run_distributed(names, size, out_dir, workers, scheduler) -> dict:
    """Run each study as one Dask task; write the summary of all of them."""
    from pathlib import Path

    from l4theory.experiment.executors import dask_client

    from .paths import RESULTS_DIR
    from .studies import STUDIES, run_studies, summary_table

    names = list(STUDIES) if "all" in names else list(names)
    for n in names:
        if n not in STUDIES:
            raise ValueError(f"unknown study {n!r}; choose from {sorted(STUDIES)} or 'all'")
    with dask_client(workers, scheduler) as client:
        futures = [client.submit(run_studies, [n], size, out_dir=out_dir, verbose=False,
                                 pure=False, key=f"study-{n}-{size}") for n in names]
        results = {}
        for fut in futures:
            results.update(fut.result())
    summary = summary_table(results)
    out = Path(out_dir) if out_dir is not None else RESULTS_DIR
    (out / f"summary_{size}.md").write_text(summary)
    print(summary)
    return results


def main(argv=None) -> int:
    """Entry point; returns the exit status (1 when any check fails, 2 on a bad option)."""
    from .studies import STUDIES, run_studies

    parser = argparse.ArgumentParser(prog="python -m validation", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run studies and write results/validation/")
    run.add_argument("names", nargs="+", help=f"'all' or any of {', '.join(STUDIES)}")
    size = run.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick")
    size.add_argument("--full", dest="size", action="store_const", const="full")
    run.add_argument("--out", default=None, help="output folder (default results/validation)")
    run.add_argument("--workers", type=int, default=None,
                     help="run the studies on a Dask LocalCluster of N processes")
    run.add_argument("--scheduler", default=None, help="run on the Dask scheduler at ADDRESS")
    sub.add_parser("list", help="list the studies")
    from .conversion import add_arguments as conversion_arguments

    conversion_arguments(sub.add_parser(
        "conversion", help="Figs. 6-8 protocol: baseline vs L4 on Fashion-MNIST"))
    from .study import add_arguments as study_arguments

    study_arguments(sub.add_parser("study", help="issue 11: regime map, fidelity, powered comparison"))
    args = parser.parse_args(argv)
    try:
        if args.cmd == "conversion":
            from .conversion import check_arguments

            check_arguments(args)
        elif args.cmd == "run":
            from l4theory.experiment.executors import check_dist_options

            check_dist_options(args.workers, args.scheduler)
            unknown = [n for n in args.names if n != "all" and n not in STUDIES]
            if unknown:
                raise ValueError(f"unknown study {unknown[0]!r}; choose from "
                                 f"{sorted(STUDIES)} or 'all'")
    except (ValueError, ImportError) as exc:
        print(f"python -m validation {args.cmd}: error: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "study":
        from .study import handle as study_handle

        return study_handle(args)
    if args.cmd == "conversion":
        from .conversion import handle

        return handle(args)
    if args.cmd == "list":
        for name, fn in STUDIES.items():
            print(f"{name:14s} {fn.__doc__.splitlines()[0]}")
        return 0
    if args.workers is not None or args.scheduler is not None:
        results = _run_distributed(args.names, args.size or "full", args.out, args.workers,
                                   args.scheduler)
    else:
        results = run_studies(args.names, args.size or "full", out_dir=args.out)
    return 1 if any(r["failed"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
