"""Peers for converted-SNN inference (W3, W4) on any feed-forward l4theory Network.

Supported layers: conv2d, linear (biases allowed), relu (becomes IF, soft reset,
``V >= v_th`` fires, ``V -= v_th``), avgpool2d (acts on spikes), flatten; the last weight
layer is the membrane readout (its input current summed over the steps), as in
:func:`l4theory.convert.simulate.simulate`.

* :func:`torch_loop`: a straightforward PyTorch CPU time loop, one op per layer per step
  and an eager IF update (what snntorch users write by hand).
* :func:`sj_model` / :func:`sj_run`: SpikingJelly 2.0 ``activation_based``: the ANN as
  ``torch.nn.Sequential``, converted by its ann2snn ``Converter`` (``RateCodingRecipe``,
  mode ``"99.9%"``), set to multi-step mode (``IFNode`` over a ``[T, B, ...]`` tensor).
  Its converter wraps each IF node as ``VoltageScaler(1/lambda) -> IFNode(v_th=1) ->
  VoltageScaler(lambda)`` (spikes of height ``lambda``); to compare spike for spike we set
  both scalers to 1 and ``v_threshold`` to our threshold of the layer (``v_th_l =
  lambda_l / lambda_{l-1}`` is the same network in unit-spike form), so both engines do the
  same fp32 arithmetic. The converter's own thresholds are reported beside ours.
"""

from __future__ import annotations

import numpy as np

from l4theory.convert.network import Network

__all__ = ["ann_module", "input_spikes_torch", "sj_available", "sj_model", "sj_run",
           "torch_loop"]


def _pad_args(padding):
    top, left, bottom, right = padding
    if top == bottom and left == right:
        return (top, left), None
    return (0, 0), (left, right, top, bottom)


def input_spikes_torch(x, encoder: str, steps: int, generator):
    """Input spikes drawn with torch, shape (steps, B, ...): ``signed`` or ``bernoulli``."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    u = torch.rand((steps, *xt.shape), generator=generator)
    if encoder == "bernoulli":
        return (u < xt).float()
    if encoder == "signed":
        return (u < xt.abs()).float() * torch.sign(xt)
    raise ValueError(f"encoder must be 'signed' or 'bernoulli', got {encoder!r}")


def torch_loop(net: Network, x, thresholds, steps: int, *, encoder: str = "signed",
               spikes=None, seed: int = 0, record: bool = False):
    """PyTorch CPU time loop; readout (B, n_classes) and, with ``record``, statistics.

    Parameters
    ----------
    net : Network
    x : numpy.ndarray, shape (B, *net.input_shape)
        Normalised inputs (drawn into spikes with torch's generator unless ``spikes``).
    thresholds : sequence of float, one per spiking layer
    steps : int
    encoder : {"signed", "bernoulli"}
    spikes : numpy.ndarray, shape (steps, B, *net.input_shape), optional
        Input spikes to use instead of drawing them (for agreement checks).
    seed : int
    record : bool
        Also return per-neuron spike counts of every spiking layer (NCHW / NC) and the
        number of non-zero inputs into every weight layer (summed over steps and batch).

    Returns
    -------
    readout : numpy.ndarray, shape (B, n_classes)
    stats : dict, only with ``record``: ``counts`` (list of arrays), ``nnz_in`` (list of int)
    """
    import torch
    import torch.nn.functional as F

    lays = net.layers
    wl = net.weight_layers
    tw = {i: torch.from_numpy(np.ascontiguousarray(lays[i].weight)) for i in wl}
    tb = {i: (None if lays[i].bias is None else torch.from_numpy(lays[i].bias)) for i in wl}
    th = dict(zip(net.spiking_layers, (float(t) for t in thresholds), strict=True))
    gen = torch.Generator().manual_seed(seed)
    src = (torch.from_numpy(np.ascontiguousarray(spikes, dtype=np.float32)) if spikes is not None
           else input_spikes_torch(x, encoder, steps, gen))
    v, counts, nnz = {}, {}, {i: 0 for i in wl}
    out = torch.zeros(len(x), int(np.prod(net.output_shape)), dtype=torch.float64)
    last_w = wl[-1]
    with torch.no_grad():
        for t in range(steps):
            h = src[t]
            cur_w = None
            for k, lay in enumerate(lays):
                if lay.kind == "conv2d":
                    if record:
                        nnz[k] += int(torch.count_nonzero(h))
                    pad, fpad = _pad_args(lay.padding)
                    if fpad is not None:
                        h = F.pad(h, fpad)
                    h = F.conv2d(h, tw[k], tb[k], stride=lay.stride, padding=pad)
                    cur_w = k
                elif lay.kind == "linear":
                    if record:
                        nnz[k] += int(torch.count_nonzero(h))
                    h = F.linear(h, tw[k], tb[k])
                    cur_w = k
                elif lay.kind == "relu":
                    vk = v.get(cur_w)
                    vk = h if vk is None else vk + h
                    s = (vk >= th[cur_w]).float()
                    v[cur_w] = vk - s * th[cur_w]
                    if record:
                        counts[cur_w] = s if cur_w not in counts else counts[cur_w] + s
                    h = s
                elif lay.kind == "avgpool2d":
                    h = F.avg_pool2d(h, lay.kernel, lay.stride)
                elif lay.kind == "flatten":
                    h = h.flatten(1)
                else:
                    raise ValueError(f"torch_loop: unsupported layer kind {lay.kind!r}")
            if cur_w != last_w:
                raise ValueError("torch_loop: the network must end with its readout layer")
            out += h.double()
    if not record:
        return out.numpy()
    return out.numpy(), {"counts": [counts[i].numpy() for i in net.spiking_layers],
                         "nnz_in": [nnz[i] for i in wl]}


def ann_module(net: Network):
    """The ANN as ``torch.nn.Sequential`` with the same (float32) weights."""
    import torch
    import torch.nn as nn

    mods = []
    for lay in net.layers:
        if lay.kind == "conv2d":
            pad, fpad = _pad_args(lay.padding)
            if fpad is not None:
                mods.append(nn.ZeroPad2d(fpad))
            co, ci, kh, kw = lay.weight.shape
            m = nn.Conv2d(ci, co, (kh, kw), stride=lay.stride, padding=pad,
                          bias=lay.bias is not None)
        elif lay.kind == "linear":
            m = nn.Linear(lay.weight.shape[1], lay.weight.shape[0], bias=lay.bias is not None)
        elif lay.kind == "relu":
            m = nn.ReLU()
        elif lay.kind == "avgpool2d":
            m = nn.AvgPool2d(lay.kernel, lay.stride)
        elif lay.kind == "flatten":
            m = nn.Flatten()
        else:
            raise ValueError(f"ann_module: unsupported layer kind {lay.kind!r}")
        if lay.kind in ("conv2d", "linear"):
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(lay.weight))
                if lay.bias is not None:
                    m.bias.copy_(torch.from_numpy(lay.bias))
        mods.append(m)
    return nn.Sequential(*mods).eval()


def sj_available() -> str | None:
    """SpikingJelly's version if ``spikingjelly.activation_based`` imports, else None."""
    try:
        from importlib.metadata import version

        from spikingjelly.activation_based.ann2snn import Converter  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not installed" here
        return None
    return version("spikingjelly")


def sj_model(net: Network, thresholds, calib_x):
    """SpikingJelly's converted model (multi-step) with our thresholds, and its own.

    Returns
    -------
    model : torch.nn.Module
        Multi-step SNN: ``model(x_seq)`` with ``x_seq`` of shape (T, B, ...) returns the
        readout layer's current, shape (T, B, n_classes).
    native_thresholds : list of float
        The thresholds SpikingJelly's converter chose (unit-spike form ``lambda_l /
        lambda_{l-1}``; its ``lambda`` is a running average, momentum 0.1, of the per-batch
        99.9th percentiles over batches of 128), for the record; the model uses
        ``thresholds`` instead.
    """
    import functools

    import torch
    from loguru import logger
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.ann2snn import Converter
    from spikingjelly.activation_based.ann2snn.modules import VoltageScaler
    from spikingjelly.activation_based.ann2snn.recipes import rate_coding
    from spikingjelly.activation_based.ann2snn.recipes.rate_coding import RateCodingRecipe

    if not isinstance(rate_coding.tqdm, functools.partial):  # no calibration progress bar
        rate_coding.tqdm = functools.partial(rate_coding.tqdm, disable=True)

    logger.disable("spikingjelly")
    xt = torch.from_numpy(np.ascontiguousarray(calib_x, dtype=np.float32))
    # batches of 128: torch.quantile (the "99.9%" mode) refuses inputs over 16M values
    loader = [(xt[i:i + 128], torch.zeros(len(xt[i:i + 128]), dtype=torch.long))
              for i in range(0, len(xt), 128)]
    model = Converter(RateCodingRecipe(loader, mode="99.9%")).convert(ann_module(net))
    ifs = [m for m in model.modules() if isinstance(m, neuron.IFNode)]
    scalers = [m for m in model.modules() if isinstance(m, VoltageScaler)]
    if len(ifs) != len(thresholds) or len(scalers) != 2 * len(ifs):
        raise ValueError(f"sj_model: expected {len(thresholds)} IF nodes, got {len(ifs)}")
    lam = [float(scalers[2 * k + 1].scale) for k in range(len(ifs))]
    native = [lam[k] / (lam[k - 1] if k else 1.0) for k in range(len(ifs))]
    for k, node in enumerate(ifs):
        node.v_threshold = float(thresholds[k])
        node.v_reset = None  # soft reset
        for s in scalers[2 * k:2 * k + 2]:
            s.scale = torch.ones_like(torch.as_tensor(s.scale))
    functional.set_step_mode(model, "m")
    return model.eval(), native


def sj_run(model, x_seq, record: bool = False):
    """Run the multi-step SpikingJelly model; readout (B, n_classes) float64.

    With ``record``, also the per-neuron spike counts of each IF node (list of arrays).
    """
    import torch
    from spikingjelly.activation_based import functional, neuron

    functional.reset_net(model)
    counts, hooks = [], []
    if record:
        for m in model.modules():
            if isinstance(m, neuron.IFNode):
                hooks.append(m.register_forward_hook(
                    lambda _m, _i, o: counts.append(o.sum(0).numpy())))
    try:
        with torch.no_grad():
            out = model(x_seq).double().sum(0).numpy()
    finally:
        for h in hooks:
            h.remove()
    return (out, counts) if record else out
