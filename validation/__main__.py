"""Command line: ``python -m validation run all [--quick|--full]``, ``run NAME ...``, ``conversion [--quick]``."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    """Entry point; returns the exit status (1 when any check fails)."""
    from .studies import STUDIES, run_studies

    parser = argparse.ArgumentParser(prog="python -m validation", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run studies and write results/validation/")
    run.add_argument("names", nargs="+", help=f"'all' or any of {', '.join(STUDIES)}")
    size = run.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick")
    size.add_argument("--full", dest="size", action="store_const", const="full")
    run.add_argument("--out", default=None, help="output folder (default results/validation)")
    sub.add_parser("list", help="list the studies")
    from .conversion import add_arguments as conversion_arguments

    conversion_arguments(sub.add_parser(
        "conversion", help="Figs. 6-8 protocol: baseline vs L4 on Fashion-MNIST"))
    from .study import add_arguments as study_arguments

    study_arguments(sub.add_parser("study", help="issue 11: regime map, fidelity, powered comparison"))
    args = parser.parse_args(argv)
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
    results = run_studies(args.names, args.size or "full", out_dir=args.out)
    return 1 if any(r["failed"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
