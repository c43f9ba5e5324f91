"""The conversion study's overheads: Dask task granularity and spike balancing.

``python -m benchmarks dask [--quick]``: on the quick conversion protocol (the MLP, two
settings), the simulator's time per image by block size; Dask's no-op task throughput with 1
and 2 workers; and the whole protocol serially and on 1 and 2 workers (block 128), with the
per-task overhead ``(wall x workers - compute) / tasks`` and a check that every run gives the
same results. ``python -m benchmarks balance [--quick]``: Rathi-style spike balancing of the
shipped VGG-5 (512 training images, T = 100). Results go to ``benchmarks/results/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def _noop(i):
    return i


def _protocol(net, train, test, settings, client, block, workers) -> dict:
    from l4theory.experiment.sweep import plan_sweeps, run_plan

    plan = plan_sweeps(settings, len(test[0]), block)
    t0 = time.perf_counter()
    res = run_plan(plan, net, train, test, client=client)
    wall = time.perf_counter() - t0
    compute = sum(r.params["time_select_s"] + r.params["time_test_s"] for r in res)
    return {"serial": client is None, "workers": workers, "block": block, "tasks": len(plan.tasks), "wall_s": wall,
            "compute_s": compute,
            "overhead_ms_per_task": 1e3 * (wall * max(workers, 1) - compute) / len(plan.tasks),
            "summary": [r.summary() for r in res]}


def dask(quick: bool = False) -> dict:
    """Block-size cost, no-op task throughput, and the quick protocol serial vs workers."""
    from l4theory.convert import datasets
    from l4theory.convert.io import load_network
    from l4theory.convert.simulate import simulate
    from l4theory.experiment.executors import dask_client
    from validation.conversion import CONFIGS, REPO_ROOT, protocol_settings

    net = load_network(REPO_ROOT / "models" / "fmnist_mlp.safetensors")
    tr, te = (datasets.load_fashion_mnist(s) for s in ("train", "test"))
    train = (datasets.normalize(tr.images), tr.labels.astype(np.int64))
    test = (datasets.normalize(te.images), te.labels.astype(np.int64))
    cfg = {**CONFIGS["quick"], **({"n_test": 100, "n_select": 50} if quick else {})}
    settings = protocol_settings(cfg, [(1.0, "soft"), (0.85, "hard")])
    out = {"ms_per_image_by_block": {}, "noop_ms_per_task": {}, "protocol": []}
    x = test[0][:512]
    for block in (8, 32, 128, 512):
        t0 = time.perf_counter()
        for lo in range(0, len(x), block):
            simulate(net, x[lo:lo + block], thresholds=[2.0], batch_size=128,
                     sample_ids=np.arange(lo, lo + len(x[lo:lo + block])))
        out["ms_per_image_by_block"][block] = 1e3 * (time.perf_counter() - t0) / len(x)
    out["protocol"].append(_protocol(net, train, test, settings, None, None, 1))
    out["protocol"].append(_protocol(net, train, test, settings, None, 128, 1))
    for workers in (1, 2):
        t0 = time.perf_counter()
        with dask_client(workers) as client:
            out[f"cluster_start_s_{workers}"] = time.perf_counter() - t0
            client.submit(_noop, 0).result()
            t0 = time.perf_counter()
            client.gather(client.map(_noop, range(400), pure=False))
            out["noop_ms_per_task"][workers] = 1e3 * (time.perf_counter() - t0) / 400
            out["protocol"].append(_protocol(net, train, test, settings, client, 128, workers))
    out["identical"] = all(p["summary"] == out["protocol"][0]["summary"] for p in out["protocol"])
    for p in out["protocol"]:
        how = "serial" if p["serial"] else f"{p['workers']} Dask worker(s)"
        print(f"protocol, {how}, block {p['block']}: {p['tasks']} tasks, wall "
              f"{p['wall_s']:.1f} s, compute {p['compute_s']:.1f} s, overhead "
              f"{p['overhead_ms_per_task']:.1f} ms/task")
    print("ms/image by block:", {b: round(v, 2) for b, v in out["ms_per_image_by_block"].items()})
    print("no-op task ms:", {w: round(v, 2) for w, v in out["noop_ms_per_task"].items()},
          "; results identical:", out["identical"])
    return out


def balance(quick: bool = False) -> dict:
    """Rathi-style spike balancing of the shipped VGG-5 on the fast simulator."""
    from l4theory.convert import balance as bal
    from l4theory.convert import datasets
    from l4theory.convert.io import load_network
    from validation.conversion import REPO_ROOT

    n, steps = (64, 20) if quick else (512, 100)
    net = load_network(REPO_ROOT / "models" / "fmnist_vgg5.safetensors")
    x = datasets.normalize(datasets.load_fashion_mnist("train").images[:n])
    t0 = time.perf_counter()
    res = bal.balance(net, x, "spike", steps=steps)
    out = {"n_images": n, "steps": steps, "seconds": time.perf_counter() - t0,
           "thresholds": [float(v) for v in res.thresholds]}
    print(f"spike balancing of fmnist_vgg5, {n} images, T = {steps}: {out['seconds']:.1f} s; "
          f"thresholds {np.round(out['thresholds'], 4).tolist()}")
    return out


def main(which: str, quick: bool) -> int:
    """Run ``which`` ("dask" or "balance") and write its JSON."""
    import platform

    res = {"dask": dask, "balance": balance}[which](quick)
    res["machine"] = platform.platform()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{which}_{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(res, indent=1, default=str))
    print(f"written to {path}")
    return 0
