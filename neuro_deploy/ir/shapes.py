"""Shape inference: every node's per-step `(C, H, W)` and its number of time steps."""

from __future__ import annotations

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.ir.graph import NILIF, Accumulate, Concat, Conv, Graph, Input, MeanT, Node, Shape, Synapse, Upsample


def _out_shape(node: Node, ins: list[Shape]) -> Shape:
    if isinstance(node, Input):
        return (node.channels, node.height, node.width)
    c, h, w = ins[0]
    if isinstance(node, Conv):
        out, cin_per_group, k, _ = node.weight.shape
        if cin_per_group * node.groups != c:
            raise NeuroDeployError(f"{node.name}: conv expects {cin_per_group * node.groups} channels, gets {c}")
        size = lambda n: (n + 2 * node.padding - k) // node.stride + 1  # noqa: E731
        return (out, size(h), size(w))
    if isinstance(node, Synapse):
        out, cin, k, _ = node.weight.shape
        if cin != c:
            raise NeuroDeployError(f"{node.name}: synapse expects {cin} channels, gets {c}")
        size = lambda n: (n * node.upsample + 2 * node.padding - k) // node.stride + 1  # noqa: E731
        return (node.width, size(h), size(w))
    if isinstance(node, Upsample):
        return (c, h * node.factor, w * node.factor)
    if isinstance(node, NILIF):
        return (c * node.r**2, h // node.r, w // node.r)
    if isinstance(node, Concat):
        if len({s[1:] for s in ins}) != 1:
            raise NeuroDeployError(f"{node.name}: concatenated inputs differ in size: {ins}")
        return (sum(s[0] for s in ins), h, w)
    if len(set(ins)) != 1:
        raise NeuroDeployError(f"{node.name}: inputs of different shapes {ins}")
    return (c, h, w)


def infer_shapes(graph: Graph) -> None:
    for name in graph.topological():
        node = graph.nodes[name]
        srcs = [graph.nodes[s] for s in graph.inputs(name)]
        node.shape = _out_shape(node, [s.shape for s in srcs])
        if isinstance(node, Input):
            node.steps = node.repeat
        elif isinstance(node, (MeanT, Accumulate)):
            node.steps = 1
        else:
            steps = {s.steps for s in srcs}
            if len(steps) != 1:
                raise NeuroDeployError(f"{name}: inputs with different numbers of time steps {sorted(steps)}")
            node.steps = steps.pop()
