"""The report page: sections joined, figures embedded by relative path, extra sections appended."""

from figures import report


def test_render_and_extra_sections(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "derivation_section", lambda: "## Derivation checks\n\nok\n")
    monkeypatch.setattr(report, "validation_section", lambda run: "## Validation\n\nok\n")
    monkeypatch.setattr(report, "figures_section",
                        lambda mode, out_dir=None, report_dir=None: f"## Figures\n\n{mode}\n")
    path = report.write_report("quick", ["## Conversion\n\nlater\n"], path=tmp_path / "R.md")
    text = path.read_text()
    order = [text.index(s) for s in ("# l4theory", "## Derivation", "## Validation",
                                      "## Figures", "## Conversion")]
    assert order == sorted(order)
    assert "quick" in text
