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
    LIF, NILIF, Add, BatchNorm, Concat, Conv, Graph, Input, MDAGate, MeanT, Mul, Node, Output, Refinement, ReLU,
    Scale, SubstepGate, Upsample,
)
from neuro_deploy.zoo import neurons
from neuro_deploy.zoo.esdnet import refine
from neuro_deploy.zoo.layers import mda, time_gate

Recorder = Callable[[Node, torch.Tensor], None]


def _t(a: np.ndarray | None) -> torch.Tensor | None:
    return None if a is None else torch.from_numpy(np.asarray(a))


def _per_step(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    steps, batch = x.shape[:2]
    y = fn(x.flatten(0, 1))
    return y.reshape(steps, batch, *y.shape[1:])


def substeps(x: torch.Tensor, r: int) -> torch.Tensor:
    """NI-LIF output `[T, B, C*r^2, h, w]` as its `[T*r^2, B, C, h, w]` sub-step sequence."""
    T, B, Cr, h, w = x.shape
    return x.reshape(T, B, Cr // r**2, r**2, h, w).permute(0, 3, 1, 2, 4, 5).reshape(T * r**2, B, Cr // r**2, h, w)


def _apply(node: Node, ins: list[torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    if isinstance(node, Input):
        return image.unsqueeze(0).repeat(node.repeat, 1, 1, 1, 1)
    x = ins[0]
    if isinstance(node, Conv):
        w, b = _t(node.weight), _t(node.bias)
        return _per_step(lambda v: F.conv2d(v, w, b, node.stride, node.padding, 1, node.groups), x)
    if isinstance(node, BatchNorm):
        return _per_step(lambda v: F.batch_norm(v, _t(node.mean), _t(node.var), _t(node.weight), _t(node.bias),
                                                False, 0.0, node.eps), x)
    if isinstance(node, Scale):
        return torch.tensor([node.factor], dtype=x.dtype) * x
    if isinstance(node, Add):
        out = ins[0]
        for other in ins[1:]:
            out = out + other
        return out
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
        return mda(x, (_t(node.ta_w1), _t(node.ta_w2)), (_t(node.ca_w1), _t(node.ca_w2)), _t(node.sa_w))
    if isinstance(node, SubstepGate):
        s = substeps(x, node.r).transpose(0, 1)
        gated = (s * time_gate(s, _t(node.w1), _t(node.w2))).transpose(0, 1)
        return neurons.time_to_channels(gated, node.r)
    if isinstance(node, Refinement):
        return refine(x[0], [(_t(w), _t(b)) for w, b in node.ca], [(_t(w), _t(b)) for w, b in node.sa])[None]
    if isinstance(node, Output):
        return x
    raise NotImplementedError(f"no float execution for {type(node).__name__} ({node.name})")


@torch.no_grad()
def execute(graph: Graph, image: torch.Tensor, record: Recorder | None = None) -> torch.Tensor:
    """Run the graph on `[B, C, H, W]` images; returns the output `[B, C, H, W]`.

    `record(node, tensor)` sees every node's `[steps, B, C, H, W]` output as it is computed.
    """
    order = graph.topological()
    remaining = {n: len(graph.consumers(n)) for n in order}
    values: dict[str, torch.Tensor] = {}
    for name in order:
        node = graph.nodes[name]
        srcs = graph.inputs(name)
        out = _apply(node, [values[s] for s in srcs], image)
        if record is not None:
            record(node, out)
        for s in srcs:  # free what no later node needs
            remaining[s] -= 1
            if remaining[s] == 0:
                del values[s]
        values[name] = out
    return values[graph.output()][0]
