"""``results/REPORT.md``: one page with the checks, the validation summary and the figures.

``write_report(mode, extra_sections)`` assembles the page from computed results only: the
derivation checks (:func:`l4theory.derivations.checks`), the theory-vs-exact table
(:func:`l4theory.theory.anchors.check_table`), the quick validation summary (read from
``results/validation/summary_quick.md`` when present, else run), and each figure with its
caption and a one-sentence finding whose numbers come from the figure's cached data, then the
conversion results, first-layer diagnostics and conversion study (:func:`results_section`)
when ``python -m validation conversion`` and ``python -m validation study`` have written
them. ``extra_sections`` are appended.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from . import PAPER, build, get
from .paths import REPORT_PATH, VALIDATION_SUMMARY

__all__ = ["derivation_section", "figures_section", "render", "results_section",
           "validation_section", "write_report"]


def derivation_section() -> str:
    """Markdown: the derivation checks and the theory-vs-exact table."""
    from l4theory.derivations import checks
    from l4theory.theory.anchors import check_table

    res = checks()
    lines = ["## Derivation checks", "",
             f"{sum(c.ok for c in res)} of {len(res)} derivations agree with the printed "
             f"equations and the runtime functions.", "",
             "| check | ok | detail |", "|---|---|---|"]
    lines += [f"| {c.name} | {'yes' if c.ok else '**NO**'} | {c.detail} |" for c in res]
    rows = check_table()
    lines += ["", "## Theory vs exact", "",
              f"{sum(r[-1] for r in rows)} of {len(rows)} checks within tolerance.", "",
              "| check | computed | exact | abs. error | tolerance | ok |", "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {g:.10g} | {e:.10g} | {err:.1e} | {tol:.0e} | {'yes' if ok else '**NO**'} |"
              for n, g, e, err, tol, ok in rows]
    return "\n".join(lines) + "\n"


def validation_section(run_if_missing=True) -> str:
    """Markdown: the quick validation summary (``python -m validation run all --quick``)."""
    head = "## Monte Carlo validation (quick set)\n\n"
    if VALIDATION_SUMMARY.is_file():
        age = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(VALIDATION_SUMMARY.stat().st_mtime))
        return (head + f"From `{VALIDATION_SUMMARY.relative_to(REPORT_PATH.parent)}` "
                f"(written {age}; per-study reports beside it).\n\n" + VALIDATION_SUMMARY.read_text())
    if not run_if_missing:
        return head + "Not run: `python -m validation run all --quick` writes it.\n"
    from validation.studies import quick_summary

    return head + quick_summary()


def figures_section(mode="full", *, out_dir=None, report_dir=None) -> str:
    """Markdown: every figure embedded (relative path), its finding and its caption."""
    report_dir = Path(report_dir) if report_dir is not None else REPORT_PATH.parent
    lines = ["## Figures", ""]
    for name in PAPER:
        res = build(name, mode, out_dir=out_dir)
        png = Path(os.path.relpath(res["files"][0], report_dir)).as_posix()
        prov = res["provenance"]
        lines += [f"### {name}", "", f"![{name}]({png})", "",
                  f"**Finding.** {res['summary']}", "", f"*{res['caption']}*", "",
                  f"<sub>data: {mode} config, seed {prov.get('seed')}, computed in "
                  f"{prov.get('seconds', float('nan')):.1f} s at revision "
                  f"`{str(prov.get('git_revision'))[:12]}`</sub>", ""]
    return "\n".join(lines)


_RESULT_HEADINGS = {"conversion": "Conversion: baseline vs adjusted first layer",
                    "diagnostics": "First-layer membrane diagnostics",
                    "study_regime": "Conversion study: regime map of the baseline gap",
                    "study_fidelity": "Conversion study: first-layer fidelity",
                    "study_accuracy": "Conversion study: first stage (pre-registered): accuracy comparison",
                    "study_confirm": "Conversion study: confirmatory stage (thresholds "
                                     "selected on 1000 training images)",
                    "study_holdout": "Conversion study: the confirmatory comparisons "
                                     "on more images (training images the network was "
                                     "trained on)"}


def results_section(name, mode="full", *, out_dir=None, report_dir=None, results_dir=None) -> str:
    """Markdown for a result figure (one of :data:`figures.RESULTS`).

    The figure is built through :func:`figures.build` from the results that
    ``python -m validation conversion`` wrote; the conversion section adds the results table
    of each method. Returns a one-line note naming the command when the inputs are missing.
    """
    report_dir = Path(report_dir) if report_dir is not None else REPORT_PATH.parent
    head = f"## {_RESULT_HEADINGS[name]}\n\n"
    try:
        res = build(name, mode, out_dir=out_dir, results_dir=results_dir)
    except FileNotFoundError:
        return head + f"Not run yet: `{get(name).NEEDS}` writes the inputs.\n"
    data = res["data"]
    png = Path(os.path.relpath(res["files"][0], report_dir)).as_posix()
    lines = [head.rstrip("\n"), ""]
    if name == "conversion":
        lines += [f"{data[str(m) + '_table']}\n" for m in data["methods"]]
    lines += [f"![{name}]({png})", "", f"**Finding.** {res['summary']}", "",
              f"*{res['caption']}*", ""]
    return "\n".join(lines)


def render(sections) -> str:
    """Join a title and markdown sections into the page."""
    head = ("# l4theory: reproduction report\n\n"
            f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
            "`python -m figures report`; every number below is computed, none is typed in.\n")
    return "\n".join([head, *sections])


def write_report(mode="full", extra_sections=(), *, path=None, out_dir=None,
                 run_validation=True) -> Path:
    """Write the report and return its path.

    Parameters
    ----------
    mode : {"quick", "full"}
        Figure config size (cached data are reused when their config matches).
    extra_sections : sequence of str
        Markdown sections appended at the end (e.g. a conversion section).
    path : path-like, optional
        Output file; default ``results/REPORT.md``.
    out_dir : path-like, optional
        Figure folder; default ``results/figures``.
    run_validation : bool
        Run the quick validation studies if their summary is missing.
    """
    path = Path(path) if path is not None else REPORT_PATH
    sections = [derivation_section(), validation_section(run_validation),
                figures_section(mode, out_dir=out_dir, report_dir=path.parent),
                *(results_section(name, mode, out_dir=out_dir, report_dir=path.parent)
                  for name in _RESULT_HEADINGS),
                *extra_sections]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(sections))
    return path
