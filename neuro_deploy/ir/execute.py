"""Float execution of an op graph, whole time window at once (`[steps, B, C, H, W]` tensors).

It computes op for op what the PyTorch model computes (bit for bit on the captured graph),
which is what proves a capture or a lowering pass right before anything is quantized.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from neuro_deploy.ir.graph import (
    LIF, NILIF, Accumulate, Add, BatchNorm, Concat, Conv, Edge, Graph, Input, MDAGate, MeanT, Mul, Node, Output, Refinement,
    Relay, ReLU, Scale, SubstepGate, Synapse, Upsample,
)
from neuro_deploy.zoo import neurons
from neuro_deploy.zoo.esdnet import refine
from neuro_deploy.zoo.layers import mda, time_gate

Recorder = Callable[[Node, torch.Tensor], None]


def _t(a: np.ndarray | None, like: torch.Tensor | None = None) -> torch.Tensor | None:
    if a is None:
        return None
    t = torch.from_numpy(np.asarray(a))
    return t if like is None else t.to(like.device, like.dtype)


def _per_step(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    steps, batch = x.shape[:2]
    y = fn(x.flatten(0, 1))
    return y.reshape(steps, batch, *y.shape[1:])


def substeps(x: torch.Tensor, r: int) -> torch.Tensor:
    """NI-LIF output `[T, B, C*r^2, h, w]` as its `[T*r^2, B, C, h, w]` sub-step sequence."""
    T, B, Cr, h, w = x.shape
    return x.reshape(T, B, Cr // r**2, r**2, h, w).permute(0, 3, 1, 2, 4, 5).reshape(T * r**2, B, Cr // r**2, h, w)


def _ports(edges: list[Edge], node: Node, values: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """One value per input port; several inputs into a neuron's port are summed (fan-in).

    `Add` and `Concat` keep their inputs apart; an `Accumulate` first sums each input over
    its steps, since its inputs may differ in length.
    """
    if isinstance(node, (Add, Concat)):
        return [values[e.src] for e in edges]
    ports: dict[int, list[torch.Tensor]] = {}
    for e in edges:
        v = values[e.src]
        ports.setdefault(e.port, []).append(v.sum(0, keepdim=True) if isinstance(node, Accumulate) else v)
    return [_sum(ports[p]) for p in sorted(ports)]


def _sum(values: list[torch.Tensor]) -> torch.Tensor:
    out = values[0]
    for v in values[1:]:
        out = out + v
    return out


def _channel_bias(bias: np.ndarray | None, like: torch.Tensor) -> torch.Tensor | float:
    return 0.0 if bias is None else _t(bias, like)[:, None, None]


def _synapse(node: Synapse, x: torch.Tensor) -> torch.Tensor:
    def one_step(v: torch.Tensor) -> torch.Tensor:
        if node.upsample > 1:
            size = (v.shape[-2] * node.upsample, v.shape[-1] * node.upsample)
            v = F.interpolate(v, size=size, mode="bilinear", align_corners=False)
        v = F.conv2d(v, _t(node.weight, v), None, node.stride, node.padding)
        if v.shape[1] == node.width:
            return v
        placed = v.new_zeros(v.shape[0], node.width, *v.shape[2:])
        placed[:, node.offset:node.offset + v.shape[1]] = v
        return placed

    return _per_step(one_step, x)


def apply_float(node: Node, ins: list[torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    if isinstance(node, Input):  # one image repeated, or `[T, B, C, H, W]` frames
        return image if image.dim() == 5 else image.unsqueeze(0).repeat(node.repeat, 1, 1, 1, 1)
    x = ins[0]
    if isinstance(node, Conv):
        w, b = _t(node.weight, x), _t(node.bias, x)
        return _per_step(lambda v: F.conv2d(v, w, b, node.stride, node.padding, 1, node.groups), x)
    if isinstance(node, BatchNorm):
        return _per_step(lambda v: F.batch_norm(v, _t(node.mean, x), _t(node.var, x), _t(node.weight, x),
                                                _t(node.bias, x), False, 0.0, node.eps), x)
    if isinstance(node, Scale):
        return torch.tensor([node.factor], dtype=x.dtype, device=x.device) * x
    if isinstance(node, Add):
        return _sum(ins)
    if isinstance(node, Concat):
        return torch.cat(ins, dim=2)
    if isinstance(node, Upsample):
        size = (x.shape[-2] * node.factor, x.shape[-1] * node.factor)
        return _per_step(lambda v: F.interpolate(v, size=size, mode="bilinear", align_corners=False), x)
    if isinstance(node, LIF):
        return neurons.LIF(node.threshold, tau=1.0 / (1.0 - node.leak))(x)
    if isinstance(node, NILIF):
        spikes = neurons.NILIF(node.decay, node.levels)(neurons.patches_to_time(x, node.r))
        return neurons.time_to_channels(spikes, node.r)
    if isinstance(node, ReLU):
        return torch.relu(x)
    if isinstance(node, MeanT):
        return x.mean(0, keepdim=True)
    if isinstance(node, Mul):
        return ins[0] * ins[1]
    if isinstance(node, MDAGate):
        return mda(x, (_t(node.ta_w1, x), _t(node.ta_w2, x)), (_t(node.ca_w1, x), _t(node.ca_w2, x)),
                   _t(node.sa_w, x))
    if isinstance(node, SubstepGate):
        s = substeps(x, node.r).transpose(0, 1)
        gated = (s * time_gate(s, _t(node.w1, x), _t(node.w2, x))).transpose(0, 1)
        return neurons.time_to_channels(gated, node.r)
    if isinstance(node, Refinement):
        return refine(x[0], [(_t(w, x), _t(b, x)) for w, b in node.ca], [(_t(w, x), _t(b, x)) for w, b in node.sa])[None]
    if isinstance(node, Synapse):
        return _synapse(node, x)
    if isinstance(node, Relay):
        out = x + _channel_bias(node.bias, x)
        return torch.relu(out) if node.relu else out
    if isinstance(node, Accumulate):
        return x + _channel_bias(node.bias, x)
    if isinstance(node, Output):
        return x
    raise NotImplementedError(f"no float execution for {type(node).__name__} ({node.name})")


Apply = Callable[[Node, list[torch.Tensor], torch.Tensor], torch.Tensor]


@torch.no_grad()
def execute(graph: Graph, image: torch.Tensor, record: Recorder | None = None, apply: Apply | None = None
            ) -> torch.Tensor:
    """Run the graph on `[B, C, H, W]` images; returns the output node's value `[B, C, H, W]`.

    `record(node, tensor)` sees every node's `[steps, B, C, H, W]` output as it is computed.
    `apply(node, port_values, image)` computes one node (float semantics by default; the
    fixed-point simulator passes its own).
    """
    apply = apply or apply_float
    order = graph.topological()
    incoming: dict[str, list[Edge]] = {n: [] for n in order}
    for e in sorted(graph.edges, key=lambda e: e.port):
        incoming[e.dst].append(e)
    remaining = {n: 0 for n in order}
    for e in graph.edges:
        remaining[e.src] += 1
    values: dict[str, torch.Tensor] = {}
    for name in order:
        node = graph.nodes[name]
        srcs = [e.src for e in incoming[name]]
        out = apply(node, _ports(incoming[name], node, values), image)
        if record is not None:
            record(node, out)
        for s in srcs:  # free what no later node needs
            remaining[s] -= 1
            if remaining[s] == 0:
                del values[s]
        values[name] = out
    return values[graph.output()][0]
