"""The engine's shared parts: keys with the code version, arms fitted once, statistics."""

import importlib
import math
import sys

import numpy as np
import pytest
from scipy import stats

from l4theory.experiment import arms, keys
from l4theory.experiment.arms import Arm, fit_arm
from l4theory.experiment.cache import TaskCache, write_json
from l4theory.experiment.executors import map_tasks
from l4theory.experiment.select import extend_to_interior, select_best
from l4theory.experiment.splits import heldout_blocks, split_indices
from l4theory.experiment.stats import compare, mde, mean_ci, power_of, recovered_fraction

from .test_sweep import tiny


def test_editing_the_simulator_changes_every_task_key(tmp_path, monkeypatch):
    # a copy of the library's sources in which one line of the simulator differs
    root = tmp_path / "l4theory"
    for name in keys.CODE_FILES:
        src = keys._ROOT / name
        dst = root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
    before = keys.task_key("pred", {"arm": {"method": "none"}, "ids": [1, 2]}, np.arange(3))
    monkeypatch.setattr(keys, "_ROOT", root)
    keys.code_version.cache_clear()
    try:
        assert keys.task_key("pred", {"arm": {"method": "none"}, "ids": [1, 2]},
                             np.arange(3)) == before  # same bytes, same key
        sim = root / "convert" / "simulate.py"
        sim.write_text(sim.read_text() + "\n# an edit\n")
        keys.code_version.cache_clear()
        after = keys.task_key("pred", {"arm": {"method": "none"}, "ids": [1, 2]},
                              np.arange(3))
    finally:
        keys.code_version.cache_clear()
    assert after != before


def test_the_simulator_and_every_first_layer_method_are_in_the_code_version():
    for name in ("convert/simulate.py", "convert/_kernels.py", "adjust.py", "calibrate.py",
                 "convert/balance.py"):
        assert name in keys.CODE_FILES and (keys._ROOT / name).is_file()


def test_task_key_depends_on_kind_and_every_part():
    k = keys.task_key("pred", {"a": 1, "b": [1, 2]}, np.arange(3, dtype=np.int64))
    assert k == keys.task_key("pred", {"b": [1, 2], "a": 1}, np.arange(3, dtype=np.int64))
    others = {keys.task_key("fid", {"a": 1, "b": [1, 2]}, np.arange(3, dtype=np.int64)),
              keys.task_key("pred", {"a": 2, "b": [1, 2]}, np.arange(3, dtype=np.int64)),
              keys.task_key("pred", {"a": 1, "b": [1, 2]}, np.arange(3, dtype=np.int32)),
              keys.task_key("pred", {"a": 1, "b": [1, 2]}, np.arange(4, dtype=np.int64))}
    assert k not in others and len(others) == 4


@pytest.fixture
def fitted():
    arms.clear_fits()
    yield
    arms.clear_fits()


def test_each_arm_is_fitted_once_per_network_setting_and_scale(fitted):
    net, (x, _), _ = tiny()
    x = x[:12]
    common = {"v_th0": 1.0, "steps": 6, "alpha": 0.9, "reset": "hard"}
    l4 = Arm("l4", 0.5)
    for _ in range(3):  # seeds x blocks of one series: one fit
        out, summary = fit_arm(l4, net, x, v_th=0.5, **common)
    assert arms.fit_count() == 1 and "s_hat_min" in summary
    # L4 does not read the setting or the scale: still one fit
    fit_arm(l4, net, x, **{**common, "steps": 9}, v_th=0.8)
    assert arms.fit_count() == 1
    # rate matching reads both: one fit per (setting, scale)
    rm = Arm("ratematch")
    for _ in range(2):
        fit_arm(rm, net, x, v_th=0.5, **common)
    fit_arm(rm, net, x, v_th=0.6, **common)
    fit_arm(rm, net, x, v_th=0.6, **{**common, "alpha": 1.0})
    assert arms.fit_count() == 4
    # another network is another fit
    fit_arm(l4, tiny(seed=3)[0], x, v_th=0.5, **common)
    assert arms.fit_count() == 5
    same, _ = fit_arm(l4, net, x, v_th=0.5, **common)
    assert same is out


def test_arm_json_form_and_errors():
    assert Arm.from_dict({"method": "l4", "r_s": "inf"}).r_s == math.inf
    assert Arm("exact", 0.25).to_dict() == {"method": "exact", "r_s": 0.25}
    assert Arm("l4", math.inf).to_dict() == {"method": "l4", "r_s": "inf"}
    assert Arm("ratematch").label == "ratematch" and Arm("l4", 2).label == "l4 r_s=2"
    with pytest.raises(ValueError, match="method"):
        Arm("l5")
    with pytest.raises(ValueError, match="r_s"):
        Arm("l4", -1)
    with pytest.raises(ValueError, match="r_s"):
        Arm("none", 1.0)
    with pytest.raises(ValueError, match="unknown"):
        Arm.from_dict({"method": "none", "scale": 1})


def test_fieller_interval_inverts_the_paired_t_test():
    rng = np.random.default_rng(0)
    n = 400
    ann = (rng.random(n) < 0.9).astype(float)
    base = ((rng.random((2, n)) < 0.82) & (ann > 0)).astype(float)
    arm = np.where(rng.random((2, n)) < 0.3, ann, base)
    rec = recovered_fraction(ann, base, arm)
    assert rec["bounded"] and rec["lo"] < rec["mean"] < rec["hi"]
    d, g = arm.mean(0) - base.mean(0), ann - base.mean(0)
    t = stats.t.ppf(0.975, n - 1)

    def tstat(theta):
        z = d - theta * g
        return abs(z.mean()) / (z.std(ddof=1) / math.sqrt(n))

    # the endpoints are where the t statistic crosses the critical value
    assert tstat(rec["lo"]) == pytest.approx(t, rel=1e-9)
    assert tstat(rec["hi"]) == pytest.approx(t, rel=1e-9)
    assert tstat(rec["mean"]) < 1e-9 and tstat(rec["hi"] + 0.01) > t


def test_fieller_interval_is_unbounded_when_the_gap_is_not_resolved():
    rng = np.random.default_rng(1)
    ann = (rng.random(30) < 0.5).astype(float)
    base = (rng.random((1, 30)) < 0.5).astype(float)
    rec = recovered_fraction(ann, base, base)
    assert not rec["bounded"] and rec["lo"] is None and rec["hi"] is None


def test_power_and_mde_agree():
    ci = mean_ci(np.random.default_rng(2).normal(0, 0.2, 5000))
    effect = mde(ci, 0.8)
    assert power_of(ci, effect) == pytest.approx(0.8, abs=1e-9)
    assert power_of({"sd": 0.0, "n": 10}) == 1.0
    with pytest.raises(ValueError, match="power"):
        mde(ci, 1.0)


def test_compare_reports_the_paired_difference():
    base = np.array([[1, 0, 1, 0, 1, 1]], float)
    arm = np.array([[1, 1, 1, 0, 1, 1]], float)
    ann = np.ones(6)
    out = compare(ann, base, arm)
    assert out["difference"]["mean"] == pytest.approx(1 / 6)
    assert out["discordant"] == pytest.approx(1 / 6)
    assert out["recovered"]["mean"] == pytest.approx(0.5)


def test_selection_ties_and_interior_extension():
    assert select_best([0.5, 0.7, 0.7]) == (1,)
    assert select_best([[0.1, 0.9], [0.9, 0.2]]) == (0, 1)
    grid = [0.1, 0.2, 0.3, 0.4, 0.5]
    truth = {0.1: 0.2, 0.2: 0.5, 0.3: 0.7, 0.4: 0.9, 0.5: 0.8}
    ran = []

    def run(pairs):
        ran.extend(pairs)
        return {("a", g): np.array([[truth[g]]]) for _, g in pairs}

    got = extend_to_interior(grid, ["a"], run([("a", 0.2), ("a", 0.3)]), run)
    assert sorted(g for _, g in got) == [0.2, 0.3, 0.4, 0.5]


def test_splits_are_disjoint_and_appendable():
    s = split_indices(0, 50, 40, 100, n_train=1000, n_test_total=500, n_pilot=60)
    sets = [set(s[k].tolist()) for k in ("calib", "select", "pilot")]
    assert sum(map(len, sets)) == len(set().union(*sets)) == 150
    short = heldout_blocks(0, 150, 20, 10, n_train=1000)
    long = heldout_blocks(0, 150, 40, 10, n_train=1000)
    assert all(np.array_equal(a, b) for a, b in zip(short, long[:2], strict=False))
    assert not set(np.concatenate(long).tolist()) & set().union(*sets)


def _square(x):
    return x * x


def test_map_tasks_keeps_order_on_processes():
    assert map_tasks(_square, [3, 1, 2]) == [9, 1, 4]
    assert map_tasks(_square, [3, 1, 2], workers=2) == [9, 1, 4]
    with pytest.raises(ValueError, match="--workers"):
        map_tasks(_square, [1], workers=0)


def test_cache_and_writer(tmp_path):
    c = TaskCache(tmp_path / "c")
    calls = []
    out = c.cached("k", lambda: calls.append(1) or {"a": np.arange(3)})
    again = c.cached("k", lambda: calls.append(1) or {"a": np.arange(5)})
    assert calls == [1] and np.array_equal(out["a"], again["a"])
    p = write_json(tmp_path / "r.json", {"x": np.float64(1.5)})
    with pytest.raises(FileExistsError):
        write_json(p, {"x": 2}, overwrite=False)
    assert p.read_text() == '{\n "x": 1.5\n}\n'


@pytest.mark.parametrize("old", ["l4theory.convert.sweep", "l4theory.convert.tasks"])
def test_old_module_paths_still_work_with_a_deprecation_warning(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="l4theory.experiment"):
        mod = importlib.import_module(old)
    assert hasattr(mod, "__all__") and all(hasattr(mod, n) for n in mod.__all__)
