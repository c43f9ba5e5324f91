"""Command line of the figures package.

``python -m figures all [--quick] [--force] [--format png,pdf,svg]``, ``fig01`` ... ``fig05``,
``conversion``, ``diagnostics``, ``list``, ``report``. ``all`` skips (with a note) the result
figures whose inputs ``python -m validation`` has not written yet. The command draws with
matplotlib's Agg backend (files only, no window).
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    import matplotlib

    matplotlib.use("Agg")  # files only; importing the package chooses no backend

    from . import NAMES, RESULTS, build, get
    from .style import FORMATS, check_formats

    parser = argparse.ArgumentParser(prog="python -m figures", description=__doc__)
    parser.add_argument("what", nargs="+",
                        help="'all', 'list', 'report', or figure names " + ", ".join(NAMES))
    parser.add_argument("--quick", action="store_true", help="small configs (about 1-2 minutes)")
    parser.add_argument("--force", action="store_true", help="recompute even if cached")
    parser.add_argument("--out", default=None, help="output folder (default results/figures)")
    parser.add_argument("--format", default="png,pdf", dest="formats",
                        help=f"image formats, comma-separated, from {', '.join(FORMATS)} "
                             "(default png,pdf; the report links the first)")
    args = parser.parse_args(argv)
    try:
        formats = check_formats(f.strip().lower() for f in args.formats.split(",") if f.strip())
    except ValueError as exc:
        parser.error(f"--format {args.formats!r}: {exc}")
    mode = "quick" if args.quick else "full"
    what = list(args.what)
    if what == ["list"]:
        for name in NAMES:
            mod = get(name)
            print(f"{name}  {mod.TITLE}")
        return 0
    names = list(NAMES) if "all" in what else [w for w in what if w != "report"]
    for name in names:
        get(name)  # validate before any long computation
    for name in names:
        t0 = time.perf_counter()
        try:
            res = build(name, mode, force=args.force, out_dir=args.out, formats=formats)
        except FileNotFoundError as err:
            if name in RESULTS and "all" in what:
                print(f"{name}: skipped ({err})", flush=True)
                continue
            raise
        how = "computed" if res["recomputed"] else "cached data"
        print(f"{name}: {res['files'][0]} ({how}, {time.perf_counter() - t0:.1f} s)", flush=True)
    if "report" in what:
        from .report import write_report

        print(f"report: {write_report(mode=mode)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
