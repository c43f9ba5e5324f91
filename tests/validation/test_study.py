"""The study's pure tasks, its tables at toy sizes, the pre-registration rule, the figures."""

import json

import numpy as np
import pytest

from l4theory.experiment import extend_to_interior, map_tasks, mde, power_of
from validation import study
from validation.study import common
from validation.study.common import arm_key
from validation.study.power import _power_plan

TINY = {"steps": 4, "report_steps": [2, 4], "alphas": [1.0], "resets": ["hard"],
        "scales": [0.5, 1.0], "n_calib": 8, "n_select": 3, "n_test": 3, "seeds": [0, 1],
        "batch_size": 8, "backend": "numpy",
        "fidelity": {"n_images": 2, "scale": 0.5, "settings": [[1.0, "hard"]],
                     "r_s": [0.5, "inf"], "max_pairs": 300},
        "accuracy": {"settings": [[1.0, "hard", "project", 4]], "r_s": [0.5],
                     "methods": ["l4", "ratematch", "overshoot"], "selection_seeds": [1],
                     "test_blocks": 2},
        "power": {"n_pilot": 3, "seeds": [0, 1]},
        "confirm": {"n_select": 4, "seed": 50_000, "start": [0.5], "grid": [0.25, 0.5, 1.0]},
        "holdout": {"block": 2, "seed": 60_000, "target_mde": 0.0027, "cap": 4}}


def test_split_indices_disjoint_and_seeded():
    a = study.split_indices(0, 20, 10, 7, n_pilot=5)
    b = study.split_indices(0, 20, 10, 7, n_pilot=5)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert [len(a[k]) for k in ("calib", "select", "pilot", "test")] == [20, 10, 5, 7]
    train = np.concatenate([a["calib"], a["select"], a["pilot"]])
    assert np.unique(train).size == 35
    np.testing.assert_array_equal(study.split_indices(0, 20, 10, 7)["select"], a["select"])
    assert len(study.split_indices(0, 2, 2, None)["test"]) == 10_000
    with pytest.raises(ValueError, match="n_calib"):
        study.split_indices(0, 0, 10, 7)


def test_arms_and_labels():
    soft = common._arms([0.0, 2.0, "inf"], ["l4", "exact", "ratematch", "overshoot"], "soft")
    assert [study.arm_label(a) for a in soft] == [
        "none", "l4 r_s=0", "l4 r_s=2", "exact r_s=0", "exact r_s=2", "ratematch"]
    hard = common._arms([1.0], ["l4", "overshoot"], "hard")
    assert [a["method"] for a in hard] == ["none", "l4", "overshoot"]


def test_preregistered_rule(tmp_path):
    def row(alpha, reset, sem, gaps):
        return {"alpha": alpha, "reset": reset, "semantics": sem,
                "per_T": [{"T": t, "scale": 0.5, "gap": {"mean": g}} for t, g in gaps]}

    doc = {"rows": [row(1.0, "soft", "project", [(15, 0.05), (75, 0.005)]),
                    row(0.85, "hard", "rathi", [(15, 0.08), (30, 0.019), (50, 0.02)])]}
    (tmp_path / "regime_full.json").write_text(json.dumps(doc))
    assert study.preregistered(tmp_path) == [
        [0.85, "hard", "rathi", 15], [1.0, "soft", "project", 15],
        [0.85, "hard", "rathi", 50], [1.0, "soft", "project", 75]]
    with pytest.raises(FileNotFoundError, match="regime map"):
        study.preregistered(tmp_path / "none")
    assert study.gap_settings(tmp_path) == study.preregistered(tmp_path)[:3]
    with pytest.raises(FileNotFoundError, match="power pilot"):
        study.seeds_per_setting(tmp_path)
    (tmp_path / "power_full.json").write_text(json.dumps(
        {"rows": [{"setting": [0.85, "hard", "rathi", 15], "seeds_needed": 3},
                  {"setting": [1.0, "soft", "project", 75], "seeds_needed": None},
                  {"setting": [1.0, "soft", "project", 15], "seeds_needed": 99}]}))
    cap = study.PREREGISTERED["max_seeds"]
    assert study.seeds_per_setting(tmp_path) == {
        (0.85, "hard", "rathi", 15): 3, (1.0, "soft", "project", 75): cap,
        (1.0, "soft", "project", 15): cap}
    assert [p[0] for p in _power_plan(tmp_path, "full")] == [
        tuple(s) for s in study.preregistered(tmp_path)]


def test_accuracy_schedule_goes_seed_by_seed_across_groups():
    a, b, paper = ("a",), ("b",), ("paper",)
    plan = study.accuracy_schedule([[paper], [a, b]], {a: 3, b: 1, paper: 2})
    assert plan == [("test", paper, 1), ("test", a, 1), ("test", b, 1),
                    ("variability", paper), ("variability", a), ("variability", b),
                    ("test", paper, 2), ("test", a, 2), ("test", a, 3)]
    late = study.accuracy_schedule([[a, b]], {a: 3, b: 1}, variability_after=2)
    assert late == [("test", a, 1), ("test", b, 1), ("test", a, 2),
                    ("variability", a), ("variability", b), ("test", a, 3)]
    assert study.accuracy_schedule([[b]], {b: 1}) == [("test", b, 1), ("variability", b)]


@pytest.mark.slow
def test_tasks_are_cached_and_share_spikes(tmp_path):
    cfg = study.config("quick", TINY)
    base = common._base_task(cfg, alpha=1.0, reset="hard", semantics="project", scale=0.5,
                            split="test", ids=[5, 9], seed=3)
    none = study.predictions_task({**base, "arm": {"method": "none"}}, tmp_path)
    inf = study.predictions_task({**base, "arm": {"method": "l4", "r_s": "inf"}}, tmp_path)
    np.testing.assert_array_equal(none["predictions"], inf["predictions"])  # r_s = inf
    again = study.predictions_task({**base, "arm": {"method": "none"}}, tmp_path)
    np.testing.assert_array_equal(again["predictions"], none["predictions"])
    assert len(list(tmp_path.glob("pred_*.npz"))) == 2
    rathi = study.predictions_task({**base, "arm": {"method": "none"},
                                    "semantics": "rathi"}, tmp_path)
    assert rathi["predictions"].shape == (4, 2)


@pytest.mark.slow
def test_tables_end_to_end_and_figures(tmp_path):
    from figures import build

    cfg = study.config("quick", TINY)
    reg = study.regime_map(cfg, tmp_path, log=lambda m: None)
    (r,) = reg["rows"]
    assert [p["T"] for p in r["per_T"]] == [2, 4]
    assert r["per_T"][0]["scale"] in TINY["scales"]
    assert reg["provenance"]["model_sha256"]
    fid = study.fidelity_table(cfg, tmp_path, log=lambda m: None)
    labels = [x["label"] for x in fid["rows"]]
    assert labels == ["none", "l4 r_s=0.5", "exact r_s=0.5", "ratematch", "overshoot"]
    assert all(0 <= x["dominance_error"] <= 1 for x in fid["rows"])
    assert fid["rows"][0]["mse_vs_none"]["mean"] == 0.0  # the unadjusted layer itself
    for x in fid["rows"][1:]:
        assert x["mse_vs_none"]["mean"] == pytest.approx(x["mse"] - fid["rows"][0]["mse"])
    assert "MSE - none" in study.fidelity_markdown(fid)
    pw = study.power_table(cfg, tmp_path, log=lambda m: None)
    assert pw["rows"][0]["s_w2"] >= 0 and pw["rows"][0]["s_b2"] >= 0
    acc = study.accuracy_table(cfg, tmp_path, log=lambda m: None)
    (row,) = acc["rows"]
    assert [a["label"] for a in row["arms"]] == ["l4 r_s=0.5", "ratematch", "overshoot"]
    assert row["best_new_method"] in ("ratematch", "overshoot")
    for a in row["arms"]:
        assert set(a["selected"]) == {"arm", "difference", "recovered", "discordant"}
    assert row["selection_variability"][0]["subset_seed"] == 1
    assert row["seeds_done"] == row["seeds_planned"] == 2
    assert (tmp_path / "accuracy_quick.npz").exists()
    n_tasks = len(list((tmp_path / "tasks").glob("pred_*.npz")))
    ex = study.threshold_check(cfg, tmp_path, log=lambda m: None)
    (er,) = ex["rows"]
    # every series' best sat on the edge of what ran (the toy arms all chose the
    # baseline's scale), so each also ran at the grid's other scale, and nothing else
    assert {a["scale"] for a in row["arms"]} == {row["baseline_scale"]}
    added = len(list((tmp_path / "tasks").glob("pred_*.npz"))) - n_tasks
    assert added == (1 + len(er["arms"])) * 2 * 2  # x 2 seeds x 2 test blocks
    assert set(er["baseline_by_scale"]) == {f"{g:g}" for g in TINY["scales"]}
    own = er["baseline_by_scale"][f"{row['baseline_scale']:g}"]
    assert own["mean"] == pytest.approx(row["baseline"]["mean"])  # the same cached runs
    top = max(v["mean"] for v in er["baseline_by_scale"].values())
    assert er["baseline_by_scale"][f"{er['baseline_best_on_test']:g}"]["mean"] == top
    for a, b in zip(er["arms"], row["arms"], strict=True):
        assert a["arm"]["mean"] == pytest.approx(
            row["baseline"]["mean"] + b["selected"]["difference"]["mean"])
        base = er["baseline_by_scale"][f"{a['scale']:g}"]["mean"]
        assert a["vs_baseline_same_scale"]["mean"] == pytest.approx(a["arm"]["mean"] - base)
        assert a["vs_baseline_best_on_test"]["mean"] == pytest.approx(a["arm"]["mean"] - top)
        # symmetric form: the arm's best test scale against the baseline's
        assert set(a["by_scale"]) == set(er["baseline_by_scale"])
        mine = a["by_scale"][f"{a['best_on_test']:g}"]["mean"]
        assert mine == max(v["mean"] for v in a["by_scale"].values())
        assert a["best_vs_baseline_best"]["mean"] == pytest.approx(mine - top)
    # run again with an arm moved to the other scale: everything is cached by now
    n_tasks += added
    other = next(g for g in TINY["scales"] if g != row["baseline_scale"])
    doc = json.loads((tmp_path / "accuracy_quick.json").read_text())
    doc["rows"][0]["arms"][0]["scale"] = other
    (tmp_path / "accuracy_quick.json").write_text(json.dumps(doc))
    (er,) = study.threshold_check(cfg, tmp_path, log=lambda m: None)["rows"]
    assert len(list((tmp_path / "tasks").glob("pred_*.npz"))) == n_tasks
    assert er["arms"][0]["scale"] == other
    assert "same scale" in study.report(tmp_path, "quick")
    # the confirmatory stage: each series selects its scale on the pilot's training images
    con = study.confirm_table(cfg, tmp_path, log=lambda m: None)
    (cr,) = con["rows"]
    assert cr["n_select"] == cfg["confirm"]["n_select"]
    assert [a["label"] for a in cr["arms"]] == [a["label"] for a in row["arms"]]
    for c, sc in [(cr["baseline_curve"], cr["baseline_scale"])] + [
            (a["curve"], a["scale"]) for a in cr["arms"]]:
        assert set(c) >= {f"{g:g}" for g in cfg["confirm"]["start"]}
        assert c[f"{sc:g}"] == max(c.values())
        top = [k for k, v in c.items() if v == max(c.values())]
        assert f"{sc:g}" == min(top, key=float)  # ties go to the lower scale
        grid = cfg["confirm"]["grid"]
        j = grid.index(sc)  # both grid neighbours of the chosen scale ran
        assert all(f"{grid[i]:g}" in c for i in (j - 1, j + 1) if 0 <= i < len(grid))
    for a in cr["arms"]:
        d = a["test"]["difference"]
        assert d["mean"] == pytest.approx(a["test"]["arm"]["mean"] - cr["baseline"]["mean"])
        assert study.confirm_reading(a) in (
            "recovers the gap", "beats a well-chosen threshold",
            "worse than a well-chosen threshold", "no difference of the CI's size")
    assert "selection accuracy % by scale" in study.report(tmp_path, "quick")
    assert cr["best_l4"] == "l4 r_s=0.5" and cr["best_new_method"] in ("ratematch", "overshoot")
    # the held-out images stage: the confirmatory scales on further training images; a
    # test-set spread this wide asks for more images than the cap (so: the cap, 2 blocks)
    doc = json.loads((tmp_path / "confirm_quick.json").read_text())
    for a in doc["rows"][0]["arms"]:
        a["test"]["difference"]["sd"] = 0.5
    (tmp_path / "confirm_quick.json").write_text(json.dumps(doc))
    n_tasks = len(list((tmp_path / "tasks").glob("pred_*.npz")))
    (hr,) = study.holdout_table(cfg, tmp_path, log=lambda m: None)["rows"]
    assert hr["n_holdout"] == 4 and hr["n_test"] == TINY["n_test"]
    series = 1 + len(hr["arms"])
    assert len(list((tmp_path / "tasks").glob("pred_*.npz"))) == n_tasks + series * 2
    with np.load(tmp_path / "holdout_quick.npz") as z:
        ids = z[f"{common._row_tag(hr)}_holdout_ids"]
        base_h = z[f"{common._row_tag(hr)}_series0"]
    used = study.split_indices(0, TINY["n_calib"], TINY["n_select"], None, n_pilot=4)
    assert ids.size == 4 and not np.intersect1d(
        ids, np.concatenate([used["calib"], used["select"], used["pilot"]])).size
    assert hr["baseline"]["holdout"]["mean"] == pytest.approx(base_h.mean())
    for a, c in zip(hr["arms"], cr["arms"], strict=True):
        assert a["scale"] == c["scale"]  # each series at its confirmatory scale, unchanged
        d, h, t = a["pooled"]["difference"], a["holdout"]["difference"], a["test"]
        assert d["n"] == 7 and h["n"] == 4
        assert d["mean"] == pytest.approx((3 * t["mean"] + 4 * h["mean"]) / 7)
    (again,) = study.holdout_table(cfg, tmp_path, log=lambda m: None)["rows"]
    assert len(list((tmp_path / "tasks").glob("pred_*.npz"))) == n_tasks + series * 2
    assert again["arms"] == hr["arms"]
    assert "diff pooled" in study.report(tmp_path, "quick")
    for name in ("study_regime", "study_fidelity", "study_accuracy", "study_confirm",
                 "study_holdout"):
        res = build(name, "quick", out_dir=tmp_path / "fig", results_dir=tmp_path)
        assert res["files"][0].name == f"{name}.png" and res["files"][0].stat().st_size > 5000
        assert res["caption"].startswith("Fig. S") and res["summary"]


def test_verdict_follows_rule_9():
    def arm(label, mean, half, rec):
        d = {"mean": mean, "lo": mean - half, "hi": mean + half, "half_width": half,
             "sd": half / 1.96 * 100.0, "n": 10_000}
        return {"label": label, "scale": 0.5, "edge": None,
                "selected": {"difference": d, "recovered": {"mean": rec, "lo": 0, "hi": 1}},
                "matched": {"difference": d}}

    row = {"alpha": 0.85, "reset": "hard", "semantics": "project", "T": 15,
           "ann_accuracy": 0.92, "baseline": {"mean": 0.89, "lo": 0.88, "hi": 0.9},
           "baseline_scale": 0.3, "gap": {"mean": 0.03, "lo": 0.02, "hi": 0.04},
           "best_new_method": "ratematch", "best_l4": "l4 r_s=1", "seeds_done": 2,
           "seeds_planned": 8, "selection": [], "arms": [
               arm("l4 r_s=1", 0.002, 0.003, 0.07),      # CI contains 0
               arm("ratematch", 0.016, 0.003, 0.53),     # >= half the gap, CI excludes 0
               arm("overshoot", 0.010, 0.003, 0.33)]}    # significant but < half
    assert [study.recovers(a) for a in row["arms"]] == [False, True, False]
    assert study.verdict(row) == "recovers the gap: ratematch"
    md = study.accuracy_markdown({"rows": [row]})
    assert "ratematch @0.5 *" in md and "| 2/8 |" in md
    row["arms"] = row["arms"][:1]
    v = study.verdict(row)
    assert v.startswith("no method recovers half the gap; largest 95% half-width 0.30")
    # se = 0.003 / 1.96 -> power for 0.3 points = Phi(1.96 - 1.96) = 0.5
    assert v.endswith(">= 0.50")


def _spike_count(t, cache_dir=None):
    """A task that runs a parallel Numba kernel (as every study task does)."""
    from l4theory.convert import _kernels as K

    cur = np.full((3, 10), float(t), np.float32)
    counts = np.zeros(10, np.float32)
    K.if_scan(cur, np.zeros(10, np.float32), counts, np.float32(1.0), np.float32(1.0), False)
    return float(counts.sum())


def test_map_on_workers_after_a_parallel_kernel_ran_here():
    # a parallel kernel in this process first: forked workers running one would abort
    assert _spike_count(1) == 30.0
    assert map_tasks(_spike_count, [0, 1, 2], workers=2) == [0.0, 30.0, 30.0]


def test_explore_extends_a_best_on_the_edge_until_it_is_interior(monkeypatch):
    # accuracy rises with the scale up to 0.4, then falls: starting from {0.2, 0.3} the
    # arm must run 0.4 (best on the edge) and 0.5 (0.4 then on the edge), then stop
    truth = {0.1: 0.5, 0.2: 0.6, 0.3: 0.7, 0.4: 0.8, 0.5: 0.75}
    asked = []

    def fake(pairs):
        asked.extend(s for _, s in pairs)
        return {(json.dumps(a, sort_keys=True), s): np.full((1, 4), truth[s]) for a, s in pairs}

    arm = {"method": "none"}
    got = fake([(arm, 0.2), (arm, 0.3)])
    asked.clear()
    got = extend_to_interior(sorted(truth), [arm], got, fake, key=arm_key)
    assert asked == [0.4, 0.5]
    assert list(common._by_scale(got, arm)) == [0.2, 0.3, 0.4, 0.5]
    # a tie goes to the lower scale: nothing more runs when 0.3 ties 0.4 and 0.2 ran
    truth.update({0.3: 0.8})
    got = fake([(arm, g) for g in (0.2, 0.3, 0.4)])
    asked.clear()
    extend_to_interior(sorted(truth), [arm], got, fake, key=arm_key)
    assert asked == []


def test_minimal_detectable_effect_matches_the_power_formula():
    ci = {"sd": 0.1, "n": 10_000}  # se = 0.001
    m = mde(ci)
    assert m == pytest.approx((1.959964 + 0.841621) * 0.001, rel=1e-5)
    assert power_of(ci, effect=m) == pytest.approx(0.8, abs=1e-4)


def test_holdout_size_follows_the_variance_rule():
    hc = {"block": 5000, "target_mde": 0.0027, "cap": 40_000}

    def row(*mdes, n=10_000):  # arms whose test-set 80%-power effect is ``mdes``
        k = mde({"sd": 1.0, "n": 1})
        return {"arms": [{"test": {"difference": {"sd": m / k * n ** 0.5, "n": n}}}
                         for m in mdes]}

    # the worst comparison decides: 10,000 * ((0.0053 / 0.0027)**2 - 1) = 28,532 -> 30,000
    assert study.holdout_size(row(0.001, 0.0053), hc) == 30_000
    assert study.holdout_size(row(0.0037), hc) == 10_000  # 8,779 -> 10,000
    assert study.holdout_size(row(0.0027, 0.001), hc) == 0  # already there
    assert study.holdout_size(row(0.02), hc) == 40_000  # the cap


def test_holdout_blocks_are_disjoint_from_the_study_subsets_and_append():
    used = study.split_indices(3, 20, 10, None, n_pilot=5)
    blocks = study.holdout_blocks(3, 35, 100, 40)
    assert [b.size for b in blocks] == [40, 40, 20]
    ids = np.concatenate(blocks)
    assert np.unique(ids).size == 100
    assert not np.intersect1d(ids, np.concatenate([used[k] for k in ("calib", "select",
                                                                      "pilot")])).size
    assert all(np.all(np.diff(b) > 0) for b in blocks)
    for a, b in zip(study.holdout_blocks(3, 35, 80, 40), blocks, strict=False):
        np.testing.assert_array_equal(a, b)  # a larger n only appends blocks
    with pytest.raises(ValueError, match="n=59970"):
        study.holdout_blocks(3, 35, 59_970, 40)


@pytest.mark.parametrize(("fn", "needs"), [("threshold_check", "accuracy"),
                                           ("confirm_table", "accuracy"),
                                           ("holdout_table", "confirm")])
def test_later_stages_name_the_part_they_need(tmp_path, fn, needs):
    with pytest.raises(FileNotFoundError, match=f"{needs}_quick.json is missing.*--part {needs}"):
        getattr(study, fn)(study.config("quick"), tmp_path)


def _strip_times(v):
    if isinstance(v, dict):
        return {k: _strip_times(u) for k, u in v.items()
                if k not in ("time_s", "elapsed_s", "provenance", "rebuilt")}
    if isinstance(v, list):
        return [_strip_times(u) for u in v]
    return v


@pytest.mark.slow
def test_records_rebuild_every_table_and_verify_bit_for_bit(tmp_path, monkeypatch):
    from validation.study import tasks as tasks_mod
    from validation.study.report import run_part

    cfg = study.config("quick", TINY)
    runs, recs = tmp_path / "run", tmp_path / "records"
    parts = ("regime", "fidelity", "power", "accuracy", "explore", "confirm")
    for part in parts:
        run_part(part, cfg, runs, recs, log=lambda m: None)
    assert {p.name for p in recs.iterdir()} == {f"{p}_quick.record.{e}" for p in parts
                                                 for e in ("npz", "json")}
    # the rebuild simulates nothing and loads no network: every task comes from the record
    real = dict(tasks_mod._COMPUTE)

    def refuse(task):
        raise AssertionError("the rebuild simulated a task")

    monkeypatch.setattr(tasks_mod, "_COMPUTE", {k: refuse for k in real})
    out = tmp_path / "rebuilt"
    assert study.rebuild(recs, out, "quick", log=lambda m: None) == list(parts)
    for part in parts:
        a = json.loads((runs / f"{part}_quick.json").read_text())
        b = json.loads((out / f"{part}_quick.json").read_text())
        assert _strip_times(a) == _strip_times(b), part
        assert b["rebuilt"]["from"] == f"{part}_quick.record.npz"
        assert b["provenance"] == a["provenance"]
    assert study.report(out, "quick").count("rebuilt from its record") == len(parts)
    monkeypatch.setattr(tasks_mod, "_COMPUTE", real)
    # recomputed from scratch, recorded tasks are identical; a changed bit is caught
    assert study.verify(recs, "quick", 4, seed=0, log=lambda m: None)
    rec = study.Record.load(recs / "accuracy_quick")
    tid = next(t for t, e in rec.tasks.items() if e["kind"] == "pred")
    rec.arrays[tid] = rec.arrays[tid] ^ np.uint8(1)
    rec.save(recs / "accuracy_quick")
    lines = []
    n_all = sum(len(study.Record.load(recs / f"{p}_quick").tasks) for p in parts)
    assert not study.verify(recs, "quick", n_all, seed=1, log=lines.append)
    assert sum("DIFFERENT" in x for x in lines) == 1 and tid in next(
        x for x in lines if "DIFFERENT" in x)


def test_editing_the_library_changes_the_study_task_keys(monkeypatch):
    from l4theory.experiment import keys
    from validation.study import tasks as tasks_mod

    task = common._base_task(study.config("quick", TINY), alpha=1.0, reset="hard",
                            semantics="project", scale=0.5, split="test", ids=[5, 9], seed=3,
                            arm={"method": "none"})
    before = tasks_mod._cache_key(task, "pred")
    monkeypatch.setattr(keys, "code_version", lambda: "a simulator edited by one line")
    after = tasks_mod._cache_key(task, "pred")
    assert after != before and after.startswith("pred_")
    # what the task is does not depend on the code: a record names it the same
    assert tasks_mod.task_id(task, "pred") == tasks_mod.task_id(dict(task), "pred")
