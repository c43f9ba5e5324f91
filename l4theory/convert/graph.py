"""Where the integrate-and-fire layers of a converted network sit, and in which units.

A :class:`~l4theory.convert.network.Network` is a small graph (each layer names its
inputs; a chain by default). Its conversion to a spiking network follows three rules,
computed here once for the simulator, the balancing and the slow reference's tests:

1. **IF layers.** Every value is either a *current* (the output of a weight layer, and of
   pooling, flattening or a residual :class:`~l4theory.convert.network.Add` of currents)
   or *spikes* (the encoded input and the output of an IF layer). A ReLU on a current
   becomes a layer of IF neurons (a :class:`Unit`); a ReLU on spikes is the identity.
   A unit is named after the earliest weight layer whose current reaches it without
   crossing another ReLU (its *owner*; for a residual block, the main branch's last
   convolution); all such weight layers are its *feeders*.
2. **Units of a spike.** The converted network keeps the ANN weights and every spike
   carries 1, so a value of the spiking network stands for its ANN value times a unit
   ``u``: ``u = 1`` for the input, weight layers, pooling and flattening keep the unit of
   their input, and an IF layer with threshold ``v_th`` fed in unit ``u`` emits spikes in
   unit ``u / v_th`` (with the balanced thresholds ``v_th_l = lambda_l / lambda_{l-1}``
   this is ``1 / lambda_l``, the weight normalisation of Diehl et al. 2015).
3. **Residual additions.** The two branches of an addition generally arrive in different
   units (the shortcut skips an IF layer). The sum is taken in the unit of its first
   input, and every other input ``k`` is multiplied by ``u_0 / u_k`` before the
   addition: the shortcut normalisation of Hu et al. (2018, "Spiking deep residual
   networks"), here derived from the thresholds so that it holds for every balancing
   method. Biases of the weight layers behind a branch are divided by the same factor,
   so that each reaches the IF layer with the unit's bias scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Unit", "add_factors", "node_kinds", "spiking_units", "weight_sources"]

_PASS = ("avgpool2d", "maxpool2d", "flatten")


@dataclass(frozen=True)
class Unit:
    """One layer of IF neurons of the converted network.

    Attributes
    ----------
    weight : int
        Index of the owning weight layer (the name used by ``spiking_layers``).
    pre : int
        Index of the layer whose output is the IF input current (the ReLU's input).
    relu : int
        Index of the ReLU that becomes the IF layer; its output shape is the unit's.
    feeders : tuple of int
        Every weight layer whose current reaches ``pre`` without crossing a ReLU.
    """

    weight: int
    pre: int
    relu: int
    feeders: tuple


def node_kinds(net) -> list[str]:
    """``"current"`` or ``"spikes"`` for the output of every layer (rule 1).

    Parameters
    ----------
    net : Network
        A network (a chain or a graph with residual adds).

    Returns
    -------
    list of str
        One entry per layer of ``net``: what its output carries in the spiking network.
    """
    kinds: list[str] = []
    for lay, src in zip(net.layers, net.inputs, strict=True):
        ins = ["spikes" if k < 0 else kinds[k] for k in src]
        if lay.kind in ("conv2d", "linear"):
            kinds.append("current")
        elif lay.kind == "relu":
            kinds.append("spikes")
        elif lay.kind == "add":
            kinds.append("current" if "current" in ins else "spikes")
        else:
            kinds.append(ins[0])
    return kinds


def _feeders(net, node: int) -> set:
    """Weight layers whose current reaches ``node`` through pooling, flatten and adds."""
    if node < 0:
        return set()
    lay = net.layers[node]
    if lay.kind in ("conv2d", "linear"):
        return {node}
    if lay.kind == "relu":
        return set()
    out: set = set()
    for k in net.inputs[node]:
        out |= _feeders(net, k)
    return out


def spiking_units(net) -> list[Unit]:
    """The IF layers of the converted ``net`` in execution order (rule 1).

    Parameters
    ----------
    net : Network
        A network (a chain or a graph with residual adds).

    Returns
    -------
    list of Unit
        One per ReLU that receives a current: its first feeding weight layer, the node
        before it, the ReLU's index and every weight layer feeding it.
    """
    kinds = node_kinds(net)
    units = []
    for i, lay in enumerate(net.layers):
        if lay.kind != "relu":
            continue
        pre = net.inputs[i][0]
        if pre < 0 or kinds[pre] != "current":
            continue
        feeders = tuple(sorted(_feeders(net, pre)))
        units.append(Unit(feeders[0], pre, i, feeders))
    return units


def weight_sources(net) -> dict:
    """The unit whose spikes each weight layer receives.

    Parameters
    ----------
    net : Network
        A network (a chain or a graph with residual adds).

    Returns
    -------
    dict of int to int
        Weight layer index -> position in :func:`spiking_units` of the IF layer that
        feeds it, or -1 for the network input (adds are followed through their first
        input).
    """
    relu_unit = {u.relu: k for k, u in enumerate(spiking_units(net))}
    out = {}
    for i in net.weight_layers:
        node = net.inputs[i][0]
        while node >= 0 and node not in relu_unit:
            node = net.inputs[node][0]
        out[i] = relu_unit.get(node, -1)
    return out


def add_factors(net, thresholds) -> tuple[dict, dict]:
    """Branch factors of the residual additions (rules 2 and 3).

    Parameters
    ----------
    net : Network
    thresholds : array_like, shape (n_units,)
        Threshold of every IF layer, in the order of :func:`spiking_units`.

    Returns
    -------
    factors : dict of int to tuple of float
        For every :class:`~l4theory.convert.network.Add` layer, the factor on each input
        (the first is 1).
    bias_divisors : dict of int to float
        For every weight layer, the product of the factors on its path to the next IF
        layer or the output (1 off residual branches): its bias is divided by it.
    """
    units = spiking_units(net)
    th = {u.relu: float(t) for u, t in zip(units, np.asarray(thresholds, float), strict=True)}
    unit = []
    factors: dict = {}
    for i, (lay, src) in enumerate(zip(net.layers, net.inputs, strict=True)):
        ins = [1.0 if k < 0 else unit[k] for k in src]
        if lay.kind == "relu" and i in th:
            unit.append(ins[0] / th[i])
        elif lay.kind == "add":
            # a branch behind a silenced layer (threshold inf: unit 0) carries nothing
            factors[i] = tuple(ins[0] / u if 0 < u < np.inf and 0 < ins[0] < np.inf else 1.0
                               for u in ins)
            unit.append(ins[0])
        else:
            unit.append(ins[0])
    divisors = dict.fromkeys(net.weight_layers, 1.0)
    consumers: dict = {}
    for i, src in enumerate(net.inputs):
        for pos, k in enumerate(src):
            consumers.setdefault(k, []).append((i, pos))

    for w in net.weight_layers:
        divisors[w] = _path_factor(net, consumers, factors, w)
    return factors, divisors


def _path_factor(net, consumers, factors, node) -> float:
    """Product of add factors from ``node`` forward to the first ReLU, weight layer or end."""
    f = 1.0
    while True:
        nxt = consumers.get(node, [])
        if len(nxt) != 1:
            return f
        i, pos = nxt[0]
        kind = net.layers[i].kind
        if kind == "add":
            f *= factors[i][pos]
        elif kind not in _PASS:
            return f
        node = i
