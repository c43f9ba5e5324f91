"""Result figures (conversion, diagnostics): validation writes, figures read and draw.

Tiny protocol runs write their results into a tmp folder; the figures are built from them
through the same cache protocol as Figs. 1-5, and rebuilt only when the inputs change.
"""

import ast
import json
from pathlib import Path

import pytest

from figures import RESULTS, build, get
from figures.report import results_section

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from validation import conversion, diagnostics

    out = tmp_path_factory.mktemp("results")
    over = {"steps": 6, "n_calib": 20, "n_select": 16, "n_test": 24, "seeds": [0, 1],
            "scales": [0.6, 1.0], "r_s": [1.0]}
    conversion.run("quick", out_dir=out, overrides=over,
                   settings=[(1.0, "soft"), (0.85, "hard")], progress=False)
    diagnostics.run("fmnist_mlp", out_dir=out, n_images=1, n_trials=20, steps=5)
    return out


@pytest.mark.parametrize("name", ["conversion", "diagnostics"])  # study: tests/validation
def test_result_figure_builds_from_written_results_and_caches(name, results, tmp_path):
    res = build(name, "quick", out_dir=tmp_path, results_dir=results)
    assert res["recomputed"]
    assert all(f.is_file() and f.stat().st_size > 1000 for f in res["files"][:2])
    assert res["caption"].startswith("Fig.") and res["summary"]
    again = build(name, "quick", out_dir=tmp_path, results_dir=results)
    assert not again["recomputed"]


def test_new_results_invalidate_the_cache(results, tmp_path):
    build("diagnostics", "quick", out_dir=tmp_path, results_dir=results)
    js = results / "diagnostics_fmnist_mlp.json"
    doc = json.loads(js.read_text())
    old = doc["corr_std_l4"]
    doc["corr_std_l4"] = 0.123
    js.write_text(json.dumps(doc))
    try:
        res = build("diagnostics", "quick", out_dir=tmp_path, results_dir=results)
        assert res["recomputed"] and float(res["data"]["corr_std_l4"]) == 0.123
        assert "0.12 with the L4 norm" in res["summary"]
    finally:
        doc["corr_std_l4"] = old
        js.write_text(json.dumps(doc))


def test_full_mode_falls_back_to_quick_results(results, tmp_path):
    res = build("conversion", "full", out_dir=tmp_path, results_dir=results)
    assert str(res["data"]["mode"]) == "quick"
    assert list(res["data"]["l4_reset"]) == ["soft", "hard"]


def test_report_section_holds_table_and_figure(results, tmp_path):
    text = results_section("conversion", "quick", out_dir=tmp_path, report_dir=tmp_path,
                           results_dir=results)
    assert "| 1 | soft |" in text and "| 0.85 | hard |" in text
    assert "![conversion](conversion.png)" in text


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_missing_results_name_the_command(name, tmp_path):
    needs = get(name).NEEDS
    assert needs.startswith("python -m validation ")
    with pytest.raises(FileNotFoundError, match=needs):
        build(name, "quick", out_dir=tmp_path, results_dir=tmp_path / "none")
    if name in ("conversion", "diagnostics"):
        text = results_section(name, "quick", out_dir=tmp_path, results_dir=tmp_path / "none")
        assert f"Not run yet: `{needs}`" in text


def _imports(package: str) -> set[tuple[str, str]]:
    """(module file, imported top-level package) for every import in ``package``."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {(path.name, a.name.split(".")[0]) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add((path.name, node.module.split(".")[0]))
    return found


def test_imports_run_one_way():
    # figures -> validation -> l4theory, never back (function-level imports included)
    assert {m for m, pkg in _imports("validation") if pkg == "figures"} == set()
    assert {m for m, pkg in _imports("l4theory") if pkg in ("figures", "validation")} == set()
