"""The sweep as a plan of pure tasks: sizes, bit-identity across blocks and workers, cache."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from l4theory.convert import simulate as simulate_mod
from l4theory.experiment import executors, tasks
from l4theory.experiment import sweep as sweep_mod
from l4theory.experiment.cache import TaskCache
from l4theory.experiment.executors import check_dist_options
from l4theory.experiment.sweep import SweepSettings, plan_sweeps, sweep
from l4theory.experiment.tasks import Job

from .test_sweep import tiny

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = SweepSettings(steps=10, alpha=0.9, reset="hard", scales=(0.5, 1.0), r_s=(0.5, 4.0),
                         n_calib=30, n_select=24, n_test=None, seeds=(3, 4), batch_size=8,
                         semantics="rathi")


def comparable(res) -> dict:
    """Everything in a result but the measured times."""
    doc = res.to_json()
    for k in ("time_select_s", "time_test_s"):
        doc["params"].pop(k)
    return doc


@pytest.fixture(scope="module")
def reference():
    net, train, test = tiny(1)
    return net, train, test, sweep(net, train, test, SETTINGS)


def test_plan_lists_every_simulation_once():
    s = SETTINGS.replace(n_select=10, n_test=7)
    for block in (None, 1, 3, 10, 64):
        plan = plan_sweeps([s, s.replace(alpha=1.0)], 40, block)
        # 10 selection images x 2 scales x (baseline + 2 r_s), 7 test images x 2 arms x 2 seeds
        assert plan.n_images == 2 * (10 * 2 * 3 + 7 * 2 * 2)
        for setting in (0, 1):
            for phase, n in (("select", 10), ("test", 7)):
                own = [t for t in plan.tasks if (t.setting, t.phase) == (setting, phase)]
                groups = {(t.arm, t.r_s, t.scale, t.seed) for t in own}
                for g in groups:
                    cover = sorted((t.lo, t.hi) for t in own if (t.arm, t.r_s, t.scale, t.seed) == g)
                    assert cover[0][0] == 0 and cover[-1][1] == n
                    assert all(a[1] == b[0] for a, b in zip(cover, cover[1:], strict=False))
                    assert all(hi - lo <= (block or n) for lo, hi in cover)
    assert plan_sweeps(s, 5).n_test == (5,)  # a test set smaller than n_test: all of it
    with pytest.raises(ValueError, match="block_size"):
        plan_sweeps(s, 40, 0)


def test_settings_are_validated_and_name_the_field():
    for kw, word in [({"alpha": 1.5}, "alpha"), ({"scales": ()}, "scales"),
                     ({"r_s": (-1,)}, "r_s"), ({"seeds": ()}, "seeds"),
                     ({"semantics": "brian"}, "semantics"), ({"encoder": "x"}, "encoder"),
                     ({"n_test": 1}, "n_test"), ({"steps": 0}, "steps"),
                     ({"backend": "jax"}, "backend"), ({"balance_method": "y"}, "balance")]:
        with pytest.raises(ValueError, match=word):
            SweepSettings(**kw)
    s = SweepSettings(scales=[1, 0.5], seeds=[2, 1])
    assert s.scales == (1.0, 0.5) and s.seeds == (2, 1) and hash(s) == hash(s.replace())
    assert json.loads(json.dumps(s.to_dict()))["scales"] == [1.0, 0.5]


def test_lists_match_the_simulator():
    assert set(sweep_mod._ENCODERS) == set(simulate_mod.ENCODERS)
    assert set(sweep_mod._BACKENDS) == set(simulate_mod.BACKENDS)
    assert sweep_mod.SEMANTICS == simulate_mod.SEMANTICS


def test_block_size_does_not_change_results(reference):
    net, train, test, ref = reference
    for block in (1, 5, 24):
        assert comparable(sweep(net, train, test, SETTINGS, block_size=block)) == comparable(ref)


def test_progress_adds_up_to_the_plan(reference):
    net, train, test, _ = reference
    seen = []
    sweep(net, train, test, SETTINGS.replace(steps=3), block_size=7, progress=seen.append)
    assert sum(seen) == plan_sweeps(SETTINGS, len(test[0]), 7).n_images


def test_job_key_depends_on_every_input(reference):
    net, train, test, _ = reference
    x, y = test
    objects = {"net": net, "d": (x, y.astype(np.int64), np.arange(len(x)))}
    base = Job("net", "d", 0, 10, (1.0, 1.0), 0, {"steps": 5})
    key = base.keyed(objects, {}).key
    assert key == base.keyed(objects, {}).key and len(key) == 64
    other = net.copy()
    other.layers[0].weight = other.layers[0].weight * np.float32(1.001)
    changed = [Job("net", "d", 0, 10, (1.0, 1.01), 0, {"steps": 5}),
               Job("net", "d", 0, 10, (1.0, 1.0), 1, {"steps": 5}),
               Job("net", "d", 0, 10, (1.0, 1.0), 0, {"steps": 6}),
               Job("net", "d", 1, 10, (1.0, 1.0), 0, {"steps": 5})]
    keys = {j.keyed(objects, {}).key for j in changed}
    keys.add(base.keyed({**objects, "net": other}, {}).key)
    assert key not in keys and len(keys) == 5


def test_resume_recomputes_only_missing_tasks(reference, tmp_path, monkeypatch):
    net, train, test, ref = reference
    real = tasks.run_block
    calls = []

    def counting(*args, **kw):
        if len(calls) == stop_after[0]:
            raise KeyboardInterrupt("simulated interruption")
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(tasks, "run_block", counting)
    stop_after = [7]
    n_tasks = len(plan_sweeps(SETTINGS, len(test[0]), 6).tasks)
    with pytest.raises(KeyboardInterrupt):
        sweep(net, train, test, SETTINGS, block_size=6, cache=tmp_path)
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 7 and not list(tmp_path.glob(".*.tmp"))
    calls.clear()
    stop_after[0] = -1
    res = sweep(net, train, test, SETTINGS, block_size=6, cache=tmp_path)
    assert len(calls) == n_tasks - 7
    assert comparable(res) == comparable(ref)
    # delete three finished tasks: exactly those three run again
    for f in sorted(tmp_path.glob("*.npz"))[:3]:
        f.unlink()
    calls.clear()
    assert comparable(sweep(net, train, test, SETTINGS, block_size=6, cache=tmp_path)) == \
        comparable(ref)
    assert len(calls) == 3


def test_cache_files_are_plain_arrays_and_bad_ones_are_recomputed(tmp_path):
    cache = TaskCache(tmp_path)
    result = {"predictions": np.arange(6, dtype=np.int16).reshape(2, 3),
              "spike_totals": np.array([5, 7], np.int64), "seconds": np.float64(0.5)}
    cache.put("k", result)
    with np.load(tmp_path / "k.npz", allow_pickle=False) as f:
        np.testing.assert_array_equal(f["predictions"], result["predictions"])
    got = cache.get("k")
    assert got["predictions"].dtype == np.int16 and int(got["spike_totals"][1]) == 7
    (tmp_path / "k.npz").write_bytes(b"not a zip file")
    assert cache.get("k") is None and cache.get("absent") is None


def test_dist_options_are_checked_without_dask(monkeypatch):
    with pytest.raises(ValueError, match="--workers"):
        check_dist_options(0, None)
    with pytest.raises(ValueError, match="not both"):
        check_dist_options(2, "tcp://127.0.0.1:8786")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    with pytest.raises(ImportError, match=r"l4theory\[dist\]"):
        check_dist_options(2, None)
    check_dist_options(None, None)  # serial: nothing to check


def test_serial_run_does_not_import_dask(reference, monkeypatch):
    # a None entry in sys.modules makes any `import dask`/`import distributed` fail
    net, train, test, ref = reference
    for name in ("dask", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)
    assert comparable(sweep(net, train, test, SETTINGS, block_size=9)) == comparable(ref)
    with pytest.raises(ImportError, match="dist"):
        with executors.dask_client(workers=1):
            pass


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_dask_local_cluster_is_bit_identical_and_fills_the_cache(reference, tmp_path,
                                                                  monkeypatch):
    pytest.importorskip("distributed")  # the optional `dist` extra
    import os

    net, train, test, ref = reference
    before = {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    with executors.dask_client(workers=2) as client:
        # the workers' settings must not leak into this process (Numba would refuse to
        # change its thread count at the next compilation)
        assert {k: os.environ.get(k) for k in before} == before
        # OpenBLAS's sums depend on its thread count: workers must use this process's
        assert set(client.run(executors.blas_threads).values()) == {executors.blas_threads()}
        assert set(client.run(lambda: os.environ.get("NUMBA_NUM_THREADS")).values()) == {"1"}
        for block in (None, 5):
            res = sweep(net, train, test, SETTINGS, block_size=block, client=client,
                        cache=tmp_path / str(block))
            assert comparable(res) == comparable(ref)
    # what the workers computed is in the cache: a serial rerun computes nothing
    calls = []
    real = tasks.run_block
    monkeypatch.setattr(tasks, "run_block", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = sweep(net, train, test, SETTINGS, block_size=5, cache=tmp_path / "5")
    assert calls == [] and comparable(again) == comparable(ref)
