"""``python -m figures ... --format``: PNG, PDF and SVG, reproducible bytes, checked names."""

import numpy as np
import pytest

from figures import __main__ as cli
from figures import fig04
from figures.style import check_formats, figure, save, styled


@styled
def _tiny():
    fig, ax = figure(1, width=2, height=2)
    ax.plot(np.arange(5), np.arange(5) ** 2, label="x²")
    ax.legend()
    return fig


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_each_format_is_written_and_reproducible(tmp_path, fmt, magic):
    (a,) = save(_tiny(), tmp_path / "a", "t", [fmt])
    (b,) = save(_tiny(), tmp_path / "b", "t", [fmt])
    assert a.name == f"t.{fmt}" and a.read_bytes().startswith(magic)
    assert a.read_bytes() == b.read_bytes()  # no dates, versions or random ids inside


def test_format_names_are_checked():
    assert check_formats(["svg", "png", "svg"]) == ("svg", "png")
    with pytest.raises(ValueError, match="one or more of png, pdf, svg, got eps"):
        check_formats(["eps"])
    with pytest.raises(ValueError, match="got none"):
        check_formats([])


def test_command_line_format_option(tmp_path, quick_data, monkeypatch, capsys):
    data = quick_data("fig04")
    monkeypatch.setattr(fig04, "compute", lambda cfg: data)
    assert cli.main(["fig04", "--quick", "--format", "svg,png", "--out", str(tmp_path)]) == 0
    assert "fig04.svg" in capsys.readouterr().out  # the first format is the one reported
    assert {p.name for p in tmp_path.glob("fig04.*")} == {"fig04.svg", "fig04.png", "fig04.txt"}
    with pytest.raises(SystemExit) as exc:
        cli.main(["fig04", "--format", "gif", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "--format 'gif'" in capsys.readouterr().err
