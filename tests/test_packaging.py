"""The built distribution works on its own: sdist -> wheel -> fresh venv -> README snippet.

``python -m build`` makes the sdist and, from it, the wheel; the wheel (with the ``io``
extra only) goes into a new virtual environment without system site packages; the README's
"Using it" snippet then runs there from a folder outside the repository, with the
repository's model path passed in and no repository on ``sys.path``. pip installs the
dependencies from its cache or the package index.
"""

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL_IN_README = "models/fmnist_vgg5.safetensors"


def readme_snippet() -> str:
    """The first Python block under "## Using it" in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using it"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README.md has no python block under '## Using it'"
    return match.group(1)


def test_readme_snippet_is_found_and_names_the_model():
    code = readme_snippet()
    assert MODEL_IN_README in code and "res.summary()" in code


def _run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{argv[:4]}... failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_readme_snippet(tmp_path):
    pytest.importorskip("build")
    from l4theory.convert import datasets

    try:
        datasets.find_fashion_mnist()
    except datasets.DatasetNotFoundError as exc:
        pytest.skip(f"the README snippet reads Fashion-MNIST: {exc}")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], timeout=300)
    (wheel,), (sdist,) = dist.glob("l4theory-*.whl"), dist.glob("l4theory-*.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"l4theory/plot.py", "l4theory/testing/strategies.py", "l4theory/testing/oracles.py"} \
        <= set(names)
    assert not [n for n in names if n.split("/")[0] in ("figures", "validation", "tests", "models")]
    with tarfile.open(sdist) as tar:
        assert any(n.endswith("l4theory/testing/__init__.py") for n in tar.getnames())

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--quiet", f"{wheel}[io]"], timeout=600)

    code = readme_snippet().replace(repr(MODEL_IN_README)[1:-1], str(ROOT / MODEL_IN_README))
    code = code.replace(f'"{ROOT / MODEL_IN_README}"', repr(str(ROOT / MODEL_IN_README)))
    check = f"""
import json, sys
import l4theory
assert not any(p and {str(ROOT)!r} in p for p in sys.path), sys.path
assert l4theory.__file__.startswith({str(venv)!r}), l4theory.__file__
{code}
summary = res.summary()
try:
    import l4theory.plot
    plot_error = None
except ImportError as exc:
    plot_error = str(exc)
import l4theory.testing as t
t.assert_poisson_envelope([3e-194, 1e-194], [1.0, 0.5], 1.0)
try:
    t.weight_vectors()
    testing_error = None
except ImportError as exc:
    testing_error = str(exc)
print(json.dumps({{"summary": summary, "version": l4theory.__version__,
                  "plot_error": plot_error, "testing_error": testing_error}}))
"""
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    r = _run([str(py), "-I", "-c", check], cwd=work, env=env, timeout=300)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # the README's comment on the last line states the numbers the snippet gives
    claim = re.search(r"s_hat from ([\d.]+) to ([\d.]+), c = ([\d.]+)", readme_snippet())
    s = out["summary"]
    assert f"{s['s_hat_min']:.3f}" == claim.group(1) and f"{s['s_hat_max']:.3f}" == claim.group(2)
    assert f"{s['c']:.4f}" == claim.group(3) and s["n_guarded"] == 0
    # the wheel's version, its command, and the optional extras' messages
    assert out["version"] == wheel.name.split("-")[1]
    v = _run([str(venv / "bin" / "l4theory"), "--version"], cwd=work, env=env, timeout=120)
    assert v.stdout.strip() == f"l4theory {out['version']}"
    assert "pip install 'l4theory[plot]'" in out["plot_error"]
    assert "pip install 'l4theory[testing]'" in out["testing_error"]
