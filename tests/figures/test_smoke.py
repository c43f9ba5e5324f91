"""Quick-mode smoke test: every figure renders (PNG, PDF, caption) into a tmp folder."""

import json

import numpy as np
import pytest

from figures import PAPER, build, cache, get


@pytest.mark.slow
def test_every_figure_renders_and_caches(tmp_path, quick_data, monkeypatch):
    for name in PAPER:
        mod = get(name)
        data = quick_data(name)  # computed (once per session) before compute is replaced
        calls = []

        def compute(cfg, _data=data, _calls=calls):
            _calls.append(cfg)
            return _data

        monkeypatch.setattr(mod, "compute", compute)
        res = build(name, "quick", out_dir=tmp_path)
        assert res["recomputed"] and len(calls) == 1
        for f in res["files"]:
            assert f.is_file() and f.stat().st_size > (100 if f.suffix == ".txt" else 5000)
        assert res["summary"] and res["caption"].startswith("Fig.")
        prov = json.loads((tmp_path / "data" / f"{name}_quick.json").read_text())
        assert prov["config"]["seed"] == mod.CONFIGS["quick"]["seed"] and prov["git_revision"]
        # re-plotting uses the cache
        again = build(name, "quick", out_dir=tmp_path)
        assert not again["recomputed"] and len(calls) == 1
        for k, v in again["data"].items():
            np.testing.assert_array_equal(v, np.asarray(data[k]))


def test_cache_invalidated_by_config_change(tmp_path):
    def compute(cfg):
        return {"x": np.arange(3) * cfg["a"]}

    d1, _, r1 = cache.load_or_compute("t", "quick", {"a": 1}, compute, tmp_path)
    _, _, r2 = cache.load_or_compute("t", "quick", {"a": 1}, compute, tmp_path)
    d3, _, r3 = cache.load_or_compute("t", "quick", {"a": 2}, compute, tmp_path)
    _, _, r4 = cache.load_or_compute("t", "quick", {"a": 2}, compute, tmp_path, force=True)
    assert (r1, r2, r3, r4) == (True, False, True, True)
    np.testing.assert_array_equal(d3["x"], [0, 2, 4])


def test_unknown_figure_name():
    with pytest.raises(ValueError, match="unknown figure"):
        get("fig99")
