"""The cross-fitted study: folds and images per network, the tie rules, the block runner."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from l4theory.experiment.splits import folds
from validation.study import cross


def test_folds_partition_and_are_seeded():
    f = folds(60_000, 5, 2022)
    assert [x.size for x in f] == [12_000] * 5
    np.testing.assert_array_equal(np.sort(np.concatenate(f)), np.arange(60_000))
    np.testing.assert_array_equal(folds(60_000, 5, 2022)[3], f[3])
    assert not np.array_equal(folds(60_000, 5, 1)[0], f[0])
    with pytest.raises(ValueError, match="k=1"):
        folds(10, 1, 0)


@pytest.fixture
def fake_fold(monkeypatch):
    """Provenance of a network trained without fold 2 (no weights needed)."""
    idx = folds(60_000, 5, 2022)[2]
    prov = {"fold": 2, "n_folds": 5, "fold_seed": 2022,
            "fold_indices_sha256": hashlib.sha256(idx.tobytes()).hexdigest()}
    monkeypatch.setattr(cross, "_provenance_of", lambda model: prov)
    cross.network_splits.cache_clear()
    yield idx
    cross.network_splits.cache_clear()


def test_network_splits_never_select_or_evaluate_wrongly(fake_fold):
    sp = cross.network_splits("x", 256, 1000, 160, 3000, 22)
    fold = set(fake_fold.tolist())
    assert [sp[k].size for k in ("calib", "select", "select_small", "eval")] == [256, 1000,
                                                                                  160, 3000]
    assert not set(sp["calib"]) & set(sp["select"])
    assert not (set(sp["calib"]) | set(sp["select"])) & fold  # the network's own images
    assert set(sp["eval"]) <= fold                              # never seen
    assert set(sp["select_small"]) <= set(sp["select"])
    more = cross.network_splits("x", 256, 1000, 160, 5000, 22)
    np.testing.assert_array_equal(more["eval"][:3000], sp["eval"])  # larger n_eval appends
    np.testing.assert_array_equal(more["select"], sp["select"])
    chunk = cross.eval_chunk("x", 256, 22, 1000, 2000)
    np.testing.assert_array_equal(chunk, np.sort(sp["eval"][1000:2000]))
    with pytest.raises(ValueError, match="do not fit"):
        cross.network_splits("x", 256, 1000, 160, 12_001, 22)


def test_a_changed_fold_is_refused(monkeypatch):
    monkeypatch.setattr(cross, "_provenance_of", lambda m: {
        "fold": 1, "n_folds": 5, "fold_seed": 2022, "fold_indices_sha256": "0" * 64})
    with pytest.raises(ValueError, match="does not match"):
        cross.fold_indices("x")


def test_scale_grid():
    g = cross.scale_grid(0.7, 2 ** 0.25, -3, 3)
    assert len(g) == 7 and g[3] == 0.7
    np.testing.assert_allclose(np.diff(np.log(g)), np.log(2) / 4, atol=1e-5)


def _acc(cfg, pipeline, table):
    """``{(arm key, scale): acc}`` from ``{label: [acc per scale]}`` on scales 1, 2, 3."""
    out = {}
    for a in cross._series(cfg, pipeline):
        lab = a["method"] + ("" if "r_s" not in a else f"{a['r_s']:g}")
        for s, v in zip((1.0, 2.0, 3.0), table.get(lab, [0.5, 0.6, 0.5]), strict=True):
            out[(cross._akey(a), s)] = v
    return out


def test_selection_ties_go_to_the_weaker_correction_then_the_lower_scale():
    cfg = cross.cross_config("full")
    # L4 at r_s = 2 and r_s = 0 tie with the baseline's best: the baseline's network wins
    got = cross.select_block(_acc(cfg, "project", {"none": [0.5, 0.7, 0.5],
                                                   "l42": [0.5, 0.7, 0.7],
                                                   "l40": [0.7, 0.5, 0.5]}), cfg, "project")
    assert got["l4"]["arm"] == {"method": "none"} and got["l4"]["scale"] == 2.0
    # strictly better: L4 takes it; between two equal L4 arms the larger r_s wins
    got = cross.select_block(_acc(cfg, "project", {"none": [0.5, 0.7, 0.5],
                                                   "l41": [0.8, 0.5, 0.5],
                                                   "l40.25": [0.8, 0.5, 0.5]}), cfg, "project")
    assert got["l4"]["arm"] == {"method": "l4", "r_s": 1.0} and got["l4"]["scale"] == 1.0
    assert got["none"]["scale"] == 2.0 and got["ratematch"]["scale"] == 2.0
    # the paper's pipeline runs the membrane-mean arms
    got = cross.select_block(_acc(cfg, "paper", {"l40.5": [0.9, 0.5, 0.5]}), cfg, "paper")
    assert got["l4"]["arm"] == {"method": "l4", "r_s": 0.5, "mu": "membrane"}


def test_l4_without_inf_always_adjusts_and_is_reported_on_the_selection_images():
    from validation.study import cross_report

    cfg = cross.cross_config("full")
    table = {"none": [0.5, 0.7, 0.5], "l42": [0.5, 0.65, 0.65], "l40": [0.65, 0.5, 0.5]}
    acc = _acc(cfg, "project", table)
    assert cross.select_block(acc, cfg, "project")["l4"]["arm"] == {"method": "none"}
    got = cross.select_block(acc, cfg, "project", with_inf=False)
    # the weaker correction (r_s = 2) wins the tie with r_s = 0, then its lower scale
    assert got["l4"]["arm"] == {"method": "l4", "r_s": 2.0} and got["l4"]["scale"] == 2.0
    assert got["none"] == cross.select_block(acc, cfg, "project")["none"]
    # the report reads the same choice from a block's selection table (keys "arm|scale")
    block = {"model": "folds/net0", "setting": "s",
             "selection": {"project/full": {f"{ak}|{sc}": v for (ak, sc), v in acc.items()}}}
    (row,) = cross_report._finite_l4(block, cfg)
    assert row["l4"] == got["l4"] and row["baseline"] == got["none"]
    assert row["size"] == "full" and abs(row["difference"] - (0.65 - 0.7)) < 1e-12


def test_config_blocks_and_names():
    cfg = cross.cross_config("full")
    blocks = cross.blocks_of(cfg)
    assert len(blocks) == 20 and blocks[0][1]["name"] == "paper-rathi"
    assert [b[0] for b in blocks[:5]] == cfg["networks"]
    assert cfg["settings"][0]["pipelines"] == ["paper"]
    with pytest.raises(ValueError, match="--block must be one of"):
        cross._pick(cfg, "9:nothing")
    assert cross._pick(cfg, "1:a0.85-hard-T15") == [(cfg["networks"][1], cfg["settings"][1])]
    json.dumps(cfg)


def test_status_reads_each_block_from_its_record(tmp_path, capsys):
    from validation.study import cli
    from validation.study.tasks import Record

    cfg = cross.cross_config("full")
    (m0, s0), (m1, s1) = cross.blocks_of(cfg)[:2]

    def record(model, setting, sets, **meta):
        rec = Record()
        rec.meta.update(meta)
        for i, which in enumerate(sets):
            tid = f"t{i}"
            rec.tasks[tid] = {"kind": "xpred", "steps": [75],
                              "task": {"images": {"of": "cross", "set": which}}}
            rec.arrays[tid] = np.zeros((1, 3), np.int16)
        stem = cross.block_stem(tmp_path / "records", model, setting["name"])
        stem.parent.mkdir(parents=True, exist_ok=True)
        rec.save(stem)

    record(m0, s0, ["select"] * 5 + ["eval"] * 2, finished=True, elapsed_s=120.0,
           elapsed_runs="all")
    record(m1, s1, ["select"] * 3, elapsed_s=30.0)  # begun before the per-save clock
    rows = cross.cross_status(tmp_path / "records", "full")
    assert len(rows) == 20 and rows[0]["block"] == "0:paper-rathi"
    assert rows[0] == {"block": "0:paper-rathi", "state": "finished", "selection": 5,
                       "evaluation": 2, "elapsed_s": 120.0, "elapsed_all": True}
    assert rows[1]["block"] == "1:paper-rathi" and rows[1]["state"] == "partial"
    assert rows[1]["selection"] == 3 and rows[1]["evaluation"] == 0
    assert not rows[1]["elapsed_all"]
    assert {r["state"] for r in rows[2:]} == {"not started"}
    assert cli.main(["--status", "--records", str(tmp_path / "records")]) == 0
    out = capsys.readouterr().out
    assert "| 0:paper-rathi | finished | 5 | 2 | 2.0 |" in out
    assert "| 1:paper-rathi | partial | 3 | 0 | 0.5* |" in out
    assert "1 of 20 blocks finished, 1 partial, 18 not started." in out


def test_a_block_counts_the_time_of_every_run_up_to_its_last_save(monkeypatch):
    """elapsed_s grows at each save: a run cut off after a save keeps its time, and the
    run that resumes the record adds its own (a fake clock, no timing)."""
    from validation.study.tasks import Record

    now = [100.0]
    monkeypatch.setattr(cross.time, "perf_counter", lambda: now[0])
    rec = Record()
    cross._clock(rec)  # a run starts
    now[0] += 40.0
    cross._clock(rec)  # it saves after 40 s, then is cut off
    assert rec.meta["elapsed_s"] == 40.0
    resumed = Record()
    resumed.meta.update(rec.meta)
    now[0] += 1000.0  # time between the runs does not count
    cross._clock(resumed)
    now[0] += 25.0
    cross._clock(resumed)
    assert resumed.meta["elapsed_s"] == 65.0


@pytest.mark.slow
def test_quick_study_runs_resumes_rebuilds_and_verifies(tmp_path):
    """The quick study on the shipped fold networks: its records rebuild the same analysis
    (nothing simulated), a rerun computes nothing new, and --verify recomputes bit for bit."""
    from validation.study import cross_report
    from validation.study.report import verify
    from validation.study.tasks import Record

    cross.network_splits.cache_clear()
    out, records = tmp_path / "out", tmp_path / "records"
    first = cross.cross_part("quick", out, records, log=lambda m: None)
    files = sorted((records / "cross").glob("*.record.npz"))
    assert len(files) == 4
    stamp = {f.name: f.read_bytes() for f in files}
    again = cross.rebuild_cross(records, tmp_path / "again", "quick", log=lambda m: None)
    assert json.dumps(again["comparisons"], default=str) == json.dumps(first["comparisons"],
                                                                       default=str)
    assert not again["missing_blocks"]
    # a second run answers every task from the records (they are unchanged)
    cross.cross_part("quick", out, records, log=lambda m: None)
    assert {f.name: f.read_bytes() for f in files} == stamp
    md = cross_report.cross_markdown(again)
    assert "paper-rathi" in md and "a0.85-hard-T15" in md
    primary = again["primary"]
    assert {(c["size"], c["pipeline"]) for c in primary} == {("small", "paper"),
                                                             ("full", "paper")}
    assert all(c["pooled"]["k"] == 2 for c in primary)
    assert verify(records, "quick", 2, seed=1, log=lambda m: None)
    # a block on a Dask cluster (persistent workers, two of them) records the same bits
    pytest.importorskip("distributed")
    block = "0:a0.85-hard-T15"
    cross.cross_part("quick", tmp_path / "dout", tmp_path / "drec", workers=2, block=block,
                     log=lambda m: None)
    cfg = cross.cross_config("quick")
    model, setting = cross._pick(cfg, block)[0]
    serial = Record.load(cross.block_stem(records, model, setting["name"]))
    dask = Record.load(cross.block_stem(tmp_path / "drec", model, setting["name"]))
    assert dask.meta["finished"] and set(dask.tasks) == set(serial.tasks)
    assert set(dask.arrays) == set(serial.arrays)
    assert all(np.array_equal(dask.arrays[k], serial.arrays[k]) for k in serial.arrays)


def _fake_blocks(k=4, n=300, seed=0):
    """Blocks of ``k`` networks at the quick setting a0.85-hard-T15 (both pipelines)."""
    rng = np.random.default_rng(seed)
    cfg = cross.cross_config("quick")
    setting = cfg["settings"][1]
    blocks = []
    for i in range(k):
        choices, correct = {}, {}
        for p in setting["pipelines"]:
            base = {"arm": {"method": "none"}, "scale": 0.5, "acc": 0.8}
            l4 = {"arm": cross._arm_for(p, {"method": "l4", "r_s": 1.0}), "scale": 0.6,
                  "acc": 0.82}
            rm = {"arm": {"method": "ratematch"}, "scale": 0.5, "acc": 0.81}
            choices[p] = {"small": {"none": base, "l4": l4, "ratematch": rm},
                          "full": {"none": base, "l4": base, "ratematch": rm}}
            for c in (base, l4, rm):
                correct[(p, cross._akey(c["arm"]), c["scale"])] = rng.random(n) < 0.8
        blocks.append({"model": f"folds/net{i}", "setting": setting["name"],
                       "choices": choices, "eval_ids": np.arange(n), "correct": correct,
                       "ann": rng.random(n) < 0.9})
    return cfg, blocks


def test_analysis_pools_the_networks_paired_differences():
    from l4theory.experiment import meta
    from validation.study import cross_report

    cfg, blocks = _fake_blocks()
    doc = cross_report.analyse(blocks, cfg)
    rows = {(c["setting"], c["pipeline"], c["size"], c["method"], c["contrast"]): c
            for c in doc["comparisons"]}
    row = rows[("a0.85-hard-T15", "project", "small", "l4", "vs baseline, same size")]
    diffs = []
    for b in blocks:
        ch = b["choices"]["project"]["small"]
        a = b["correct"][("project", cross._akey(ch["l4"]["arm"]), ch["l4"]["scale"])]
        z = b["correct"][("project", cross._akey(ch["none"]["arm"]), ch["none"]["scale"])]
        diffs.append(a.astype(float) - z.astype(float))
    want = meta.pooled_paired(diffs)
    assert row["pooled"]["k"] == 4
    assert row["pooled"]["difference"]["mean"] == pytest.approx(want["mean"], rel=1e-12)
    assert row["pooled"]["difference"]["lo"] == pytest.approx(want["lo"], rel=1e-12)
    assert row["pooled"]["verdict"]["verdict"] in meta.VERDICTS
    # at 1000 L4 chose the baseline itself: every difference is exactly zero
    same = rows[("a0.85-hard-T15", "project", "full", "l4", "vs baseline, same size")]
    assert all(r["same_choice"] and r["difference"]["mean"] == 0 for r in same["networks"])
    assert ("a0.85-hard-T15", "paper vs project", "full", "none",
            "paper's baseline vs project's baseline") in rows
    md = cross_report.cross_markdown(doc)
    assert md.count("| a0.85-hard-T15 |") > 10
    # exploratory: the lead on the selection images (0.82 - 0.80 by construction) against
    # the lead on the never-seen images, per network, then averaged
    opt = {(r["pipeline"], r["size"], r["method"]): r for r in doc["optimism"]}
    r = opt[("project", "small", "l4")]
    new = np.array([d.mean() for d in diffs])
    assert r["k"] == 4 and r["selection"] == pytest.approx(0.02, abs=1e-12)
    assert r["new"] == pytest.approx(new.mean(), rel=1e-12)
    gap = 0.02 - new
    half = 3.182446305284263 * gap.std(ddof=1) / 2  # t(0.975, 3), sqrt(4)
    assert r["optimism"]["mean"] == pytest.approx(gap.mean(), rel=1e-12)
    assert r["optimism"]["hi"] - r["optimism"]["mean"] == pytest.approx(half, rel=1e-9)
    assert opt[("project", "full", "l4")]["optimism"]["mean"] == 0  # chose the baseline
    assert "lead on never-seen images" in md


def test_figures_are_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    from validation.study import cross_report

    cfg, blocks = _fake_blocks(k=3, n=100)
    doc = cross_report.analyse(blocks, cfg)
    cross_report.write_outputs(doc, tmp_path, "quick")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "cross_fig6_quick.png" in names and "cross_forest_a0.85-hard-T15_quick.png" in names
    assert json.loads((tmp_path / "cross_quick.json").read_text())["n_comparisons"] == len(
        doc["comparisons"])


def test_a_network_whose_method_chose_the_baseline_pools_with_equal_weights():
    """Zero within-network variance leaves the DL weights undefined: the pool is the
    unweighted mean of the network effects with the one-sample t interval."""
    from scipy import stats

    from validation.study import cross_report

    cfg, blocks = _fake_blocks(k=3, n=200, seed=2)
    blocks[1]["choices"]["paper"]["small"]["l4"] = blocks[1]["choices"]["paper"]["small"]["none"]
    doc = cross_report.analyse(blocks, cfg)
    row = next(c for c in doc["comparisons"] if c["setting"] == "a0.85-hard-T15"
               and c["pipeline"] == "paper" and c["size"] == "small" and c["method"] == "l4"
               and c["contrast"] == "vs baseline, same size")
    eff = np.array([r["difference"]["mean"] for r in row["networks"]])
    assert eff[1] == 0 and row["pooled"]["pool"] == "equal weights (t)"
    half = stats.t.ppf(0.975, 2) * eff.std(ddof=1) / np.sqrt(3)
    assert row["pooled"]["difference"]["mean"] == pytest.approx(eff.mean(), rel=1e-12)
    assert row["pooled"]["difference"]["hi"] == pytest.approx(eff.mean() + half, rel=1e-12)
    assert "3 (t)" in cross_report.cross_markdown(doc)


def test_the_blocks_of_one_network_replay_together_with_different_image_counts(tmp_path):
    """Each block records the ANN's classes of its own evaluation images (4,000 at one
    setting, 6,000 at another); the merged replay record keeps their union, so every block
    of the network replays."""
    from validation.study.tasks import NotRecorded, Record, ann_keys

    cfg = cross.cross_config("full")
    model = cfg["networks"][0]
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 10, 500).astype(np.uint8)
    ids_a, ids_b = np.arange(0, 200) * 2, np.arange(100, 400)  # they overlap
    for setting, ids in zip(cfg["settings"][:2], (ids_a, ids_b[::-1]), strict=True):
        rec = Record()
        kid, name = ann_keys(cross._ann_key(model))
        rec.arrays[kid], rec.arrays[name] = ids.astype(np.int64), truth[ids]
        stem = cross.block_stem(tmp_path, model, setting["name"])
        stem.parent.mkdir(parents=True, exist_ok=True)
        rec.save(stem)
    merged = cross.merged_record(tmp_path)
    for ids in (ids_a, ids_b, ids_b[::-1], np.array([398, 0, 150])):
        assert np.array_equal(cross._ann_classes(merged, model, ids), truth[ids])
    with pytest.raises(NotRecorded, match="ANN's predictions"):
        cross._ann_classes(merged, model, np.array([401]))
    # two records that disagree on an image's class are refused
    bad = {k: v.copy() for k, v in merged.arrays.items()}
    bad[ann_keys(cross._ann_key(model))[1]][0] += 1
    with pytest.raises(ValueError, match="disagree"):
        cross._merge_ann(bad, merged.arrays)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The shipped records' block states and the report rebuilt from them (no simulation)."""
    from validation.study.config import RECORDS_DIR

    rows = cross.cross_status(RECORDS_DIR, "full")
    if not any(r["state"] == "finished" for r in rows):
        pytest.skip("no finished block shipped")
    out = tmp_path_factory.mktemp("cross_report")
    doc = cross.rebuild_cross(RECORDS_DIR, out, "full", log=lambda m: None)
    return rows, doc, out


def test_every_finished_shipped_block_replays(shipped):
    """The shipped records (``records/study/cross/``) rebuild the report: every block its
    record calls finished replays in full (nothing is simulated), those not started are
    listed as missing."""
    rows, doc, out = shipped
    nets = [Path(m).name for m in cross.cross_config("full")["networks"]]
    names = {f"{nets[int(r['block'].split(':')[0])]}:{r['block'].split(':')[1]}": r
             for r in rows}
    missing = {m.split(" ")[0] for m in doc["missing_blocks"]}
    assert not {n for n, r in names.items() if r["state"] == "finished"} & missing
    assert {n for n, r in names.items() if r["state"] == "not started"} <= missing
    assert (out / "cross_full.md").is_file()


def test_docs_tables_are_the_reports_for_every_complete_setting(shipped):
    """docs/study.md's results tables hold exactly the rows that ``--report`` writes for
    every setting whose five blocks are finished (rows of a running setting may lag)."""
    from validation.paths import REPO_ROOT

    rows, _, out = shipped
    by_setting: dict[str, set] = {}
    for r in rows:
        by_setting.setdefault(r["block"].split(":")[1], set()).add(r["state"])
    complete = [s for s, states in by_setting.items() if states == {"finished"}]
    if not complete:
        pytest.skip("no setting complete")
    text = (REPO_ROOT / "docs" / "study.md").read_text()
    results = text[text.index("\n## Results"):text.index("\n## Deviations from the plan")]
    report = (out / "cross_full.md").read_text()

    def table_rows(md: str, setting: str) -> list[str]:
        return sorted(line.strip() for line in md.splitlines()
                      if line.startswith("|") and f"| {setting} |" in line)

    for setting in complete:
        want = table_rows(report, setting)
        assert want, setting
        assert table_rows(results, setting) == want, (
            f"docs/study.md's rows of {setting} differ from `python -m validation study "
            "--report`'s; paste the report's tables")
