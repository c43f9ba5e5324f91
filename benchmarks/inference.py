"""Converted-SNN inference side by side (W3, W4): engines, agreement, floors, one table.

Engines, timed in interleaved rounds (median; one warm-up each):

* ``l4theory_default``: ``simulate(net, x, ...)`` with its default backend;
* ``l4theory_torch_backend``: ``simulate(..., backend="torch")``;
* ``pytorch_time_loop``: :func:`benchmarks.snn.torch_loop` (draws its input spikes with
  torch's generator inside the timed call);
* ``spikingjelly_multistep`` (when installed): SpikingJelly 2.0's converted model, multi-step
  ``IFNode``, input spikes drawn with torch inside the timed call;
* two fixed-work probes (``benchmarks.floors.Probes``: one fp32 1024^3 sgemm, 400k event
  row-adds) in the same rounds, whose medians give the rates behind the floors.

Agreement is checked outside the timed runs on IDENTICAL input spikes (l4theory's
``encode_steps`` stream, fed to every engine): argmax agreement with the default path,
accuracy against the labels, readout difference, and per-neuron spike counts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numba
import numpy as np

from l4theory.convert.simulate import encode_steps, simulate

from . import floors, snn
from .timing import interleaved

RESULTS = Path(__file__).resolve().parent / "results"
PROBE_GEMM, PROBE_ADD = "probe_sgemm_1024", "probe_event_adds"
__all__ = ["compare", "print_report"]


def _engines(net, x, th, steps, encoder, batch, seed, sj):
    import torch

    def ours(**kw):
        return simulate(net, x, thresholds=th, steps=steps, encoder=encoder,
                        batch_size=batch, seed=seed, **kw)

    impls = {"l4theory_default": ours,
             "l4theory_torch_backend": lambda: ours(backend="torch"),
             "pytorch_time_loop": lambda: snn.torch_loop(net, x, th, steps, encoder=encoder,
                                                         seed=seed)}
    if sj is not None:
        gen = torch.Generator().manual_seed(seed)
        impls["spikingjelly_multistep"] = lambda: snn.sj_run(
            sj, snn.input_spikes_torch(x, encoder, steps, gen))
    return impls


def _count_agreement(a, b):
    """Per layer: fraction of neurons with identical counts, and total-count ratio b/a."""
    return [{"identical_frac": float(np.mean(np.asarray(p) == np.asarray(q))),
             "total_ratio": float(np.sum(q, dtype=np.float64) / max(np.sum(p, dtype=np.float64),
                                                                    1.0))}
            for p, q in zip(a, b, strict=True)]


def _agreement(net, x, labels, th, steps, encoder, seed, sj):
    """All engines on l4theory's input spikes; agreement with the default path."""
    import torch

    b = len(x)
    spiking = net.spiking_layers
    spikes = encode_steps(x, encoder, seed, np.arange(b), 0, steps).reshape(
        steps, b, *net.input_shape)
    runs = {}
    for name, kw in (("l4theory_default", {}), ("l4theory_torch_backend", {"backend": "torch"})):
        r = simulate(net, x, thresholds=th, steps=steps, encoder=encoder, seed=seed,
                     batch_size=b, record_counts=spiking, **kw)
        runs[name] = (r.readout, [r.counts[i] for i in spiking])
    ro, st = snn.torch_loop(net, x, th, steps, spikes=spikes, record=True)
    runs["pytorch_time_loop"] = (ro, st["counts"])
    if sj is not None:
        runs["spikingjelly_multistep"] = snn.sj_run(sj, torch.from_numpy(spikes), record=True)
    ref_ro, ref_counts = runs["l4theory_default"]
    out = {}
    for name, (ro, counts) in runs.items():
        pred = ro.argmax(1)
        out[name] = {
            "argmax_agreement": float(np.mean(pred == ref_ro.argmax(1))),
            "accuracy": None if labels is None else float(np.mean(pred == labels)),
            "readout_max_rel_diff": float(np.abs(ro - ref_ro).max() / np.abs(ref_ro).max()),
            "spike_counts": _count_agreement(ref_counts, counts),
        }
    rates = [float(np.mean(c)) / steps for c in ref_counts]
    return out, rates, st["nnz_in"]


def compare(name, net, x, labels, thresholds, encoder, steps_list, *, rounds=3, seed=1,
            calib_x=None):
    """Time all engines per T (interleaved), check agreement, compute floors; a dict."""
    import torch

    torch.set_num_threads(numba.get_num_threads())
    th = [float(t) for t in thresholds]
    batch = len(x)
    sj_version = snn.sj_available()
    sj, sj_native = (None, None)
    if sj_version is not None:
        sj, sj_native = snn.sj_model(net, th, x if calib_x is None else calib_x)
    res = {"workload": name, "batch": batch, "encoder": encoder, "rounds": rounds,
           "thresholds": th, "machine": floors.machine(), "torch": torch.__version__,
           "spikingjelly": sj_version, "spikingjelly_native_thresholds": sj_native,
           "sgemm_flops": floors.sgemm_rate(), "add_floats_per_s": floors.add_rate(),
           "dense_macs_per_step": floors.dense_macs(net), "by_T": {}}
    fan = [floors.fan_out(net.layers[i]) for i in net.weight_layers]
    probes = floors.Probes()
    for steps in steps_list:
        impls = _engines(net, x, th, steps, encoder, batch, seed, sj)
        impls.update({PROBE_GEMM: probes.sgemm, PROBE_ADD: probes.event_adds})
        times = interleaved(impls, rounds)
        med = {k: float(np.median(v)) for k, v in times.items()}
        gemm_rate = probes.flop / med.pop(PROBE_GEMM)
        add_rate = probes.adds / med.pop(PROBE_ADD)
        agree, rates, nnz = _agreement(net, x, labels, th, steps, encoder, seed, sj)
        events = [n * f / batch for n, f in zip(nnz, fan, strict=True)]
        macs = [m * steps for m in res["dense_macs_per_step"]]
        dense_floor = 2.0 * sum(macs) / gemm_rate
        event_floor = sum(events) / add_rate
        ms = {k: 1e3 * t / batch for k, t in med.items()}
        res["by_T"][str(steps)] = {
            "times_s": times, "median_s": med, "ms_per_image": ms,
            "sgemm_flops_interleaved": gemm_rate, "add_floats_per_s_interleaved": add_rate,
            "speedup_vs_pytorch_loop": {k: med["pytorch_time_loop"] / t for k, t in med.items()},
            "over_dense_floor": {k: v / (1e3 * dense_floor) for k, v in ms.items()},
            "over_event_floor": {k: v / (1e3 * event_floor) for k, v in ms.items()},
            "dense_macs_per_image": macs, "synaptic_events_per_image": events,
            "dense_floor_ms": 1e3 * dense_floor, "event_floor_ms": 1e3 * event_floor,
            "spike_rates": rates, "agreement": agree,
        }
    return res


def print_report(res) -> Path:
    """Print the side-by-side table and write ``benchmarks/results/<name>_<time>.json``."""
    m = res["machine"]
    print(f"{res['workload']}: batch {res['batch']}, {res['encoder']} encoder, median of "
          f"{res['rounds']} interleaved rounds (one warm-up each)")
    print(f"machine: {m['cpu']}, {m['cores']} cores, ISA {' '.join(m['isa'])}; Numba "
          f"{m['numba_threads']} threads; NumPy BLAS: {'; '.join(m['numpy_blas'])}; "
          f"load avg {m['load_avg']}")
    print(f"rates, best of 5 at the start: sgemm {res['sgemm_flops'] / 1e9:.1f} GFLOP/s (NumPy "
          f"fp32 1024^3), event adds {res['add_floats_per_s'] / 1e9:.2f} G floats/s (Numba, "
          f"rows of 128); the floors below use the medians timed among the engines")
    if res["spikingjelly"] is None:
        print("spikingjelly: not installed, skipped (pip install l4theory[bench])")
    else:
        print(f"spikingjelly {res['spikingjelly']}: run with our thresholds "
              f"{np.round(res['thresholds'], 4).tolist()}; its converter's (99.9%) would be "
              f"{np.round(res['spikingjelly_native_thresholds'], 4).tolist()}")
    for steps, r in res["by_T"].items():
        print(f"\nT = {steps}: rates in these rounds: sgemm "
              f"{r['sgemm_flops_interleaved'] / 1e9:.1f} GFLOP/s, event adds "
              f"{r['add_floats_per_s_interleaved'] / 1e9:.2f} G floats/s")
        print(f"  dense {sum(r['dense_macs_per_image']) / 1e6:.1f} M MAC/image "
              f"-> floor {r['dense_floor_ms']:.2f} ms; synaptic events "
              f"{sum(r['synaptic_events_per_image']) / 1e6:.1f} M/image (per layer "
              f"{[round(e / 1e6, 2) for e in r['synaptic_events_per_image']]} M) -> floor "
              f"{r['event_floor_ms']:.2f} ms;\n  spike rates per step "
              f"{np.round(r['spike_rates'], 3).tolist()}")
        print(f"  {'engine':26s} {'ms/image':>9s} {'vs loop':>8s} {'/dense fl':>9s} "
              f"{'/event fl':>9s}  {'argmax':>6s} {'acc':>6s} {'readout':>8s}  identical counts")
        for k, ms in r["ms_per_image"].items():
            a = r["agreement"][k]
            acc = "-" if a["accuracy"] is None else f"{a['accuracy']:.3f}"
            same = " ".join(f"{c['identical_frac']:.4f}" for c in a["spike_counts"])
            print(f"  {k:26s} {ms:9.2f} {r['speedup_vs_pytorch_loop'][k]:7.2f}x "
                  f"{r['over_dense_floor'][k]:9.1f} {r['over_event_floor'][k]:9.1f}  "
                  f"{a['argmax_agreement']:6.3f} {acc:>6s} {a['readout_max_rel_diff']:8.1e}  "
                  f"{same}")
    print("  (agreement columns: all engines on l4theory's input spikes, against "
          "l4theory_default; identical counts = fraction of neurons per spiking layer)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{res['workload']}_{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(res, indent=1))
    print(f"written to {path}")
    return path
