"""Lower an op graph to neuron layers joined by synapses in normal form.

Every linear op (conv, BatchNorm, scale, add, concat, bilinear upsampling, mean over
time) becomes part of a synapse `[upsample] -> conv -> placement`: pointwise ops (scales,
BN, 1x1 convs, channel placement) fold into the neighbouring conv, so tdBN folds into its
conv and concat-then-conv becomes partial-weight convs into one layer. A real-valued tensor
becomes a graded `Relay` neuron only where it must exist: where a neuron or a host op
reads it, where several ops share it, or where two spatial ops would otherwise have to be
composed. A mean over time becomes an `Accumulate` neuron.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neuro_deploy.ir.graph import (
    LIF, NILIF, Accumulate, Add, BatchNorm, Concat, Conv, Edge, Graph, MeanT, Node, Output, Relay, ReLU, Scale, Synapse,
    Upsample,
)
from neuro_deploy.ir.shapes import infer_shapes

LINEAR = (Conv, BatchNorm, Scale, Add, Concat, Upsample, MeanT)
INTEGRATING = (LIF, NILIF)  # neurons that can sum synaptic input without a relay in front


class NotComposable(Exception):
    """Raised when an op cannot join a chain; the chain's input then becomes a relay."""


@dataclass
class Chain:
    """A synapse under construction: `src` through the ops folded so far."""

    src: str
    weight: np.ndarray  # dense (out, in, k, k), float64
    stride: int = 1
    padding: int = 0
    upsample: int = 1
    offset: int = 0
    width: int = 0
    time_mean: bool = False

    @classmethod
    def identity(cls, src: str, channels: int) -> "Chain":
        return cls(src, np.eye(channels).reshape(channels, channels, 1, 1), width=channels)

    @property
    def pointwise(self) -> bool:
        return self.weight.shape[-1] == 1 and self.stride == 1

    def conv(self, w: np.ndarray, stride: int, padding: int) -> "Chain":
        """Append a conv reading the placed output of this chain."""
        n = self.weight.shape[0]
        w = w[:, self.offset:self.offset + n].astype(np.float64)
        if self.pointwise:  # conv after a 1x1 map: fold the 1x1 into it
            weight = np.einsum("onhw,ni->oihw", w, self.weight[:, :, 0, 0])
            stride_, padding_ = stride, padding
        elif w.shape[-1] == 1 and stride == 1:  # 1x1 after a conv: fold it into the conv
            weight = np.einsum("on,nihw->oihw", w[:, :, 0, 0], self.weight)
            stride_, padding_ = self.stride, self.padding
        else:
            raise NotComposable
        return dataclasses.replace(self, weight=weight, stride=stride_, padding=padding_, offset=0, width=w.shape[0])

    def scaled(self, factors: np.ndarray | float) -> "Chain":
        """Multiply the placed output channel-wise (a scalar, or one factor per placed channel)."""
        f = np.broadcast_to(np.asarray(factors, np.float64), (self.width,))[self.offset:self.offset + self.weight.shape[0]]
        return dataclasses.replace(self, weight=self.weight * f[:, None, None, None])

    def placed(self, offset: int, width: int) -> "Chain":
        return dataclasses.replace(self, offset=self.offset + offset, width=width)

    def upsampled(self, factor: int) -> "Chain":
        if not self.pointwise or self.upsample != 1:
            raise NotComposable  # bilinear commutes with 1x1 maps only
        return dataclasses.replace(self, upsample=factor)

    def key(self) -> tuple:
        return (self.src, self.weight.shape, self.stride, self.padding, self.upsample, self.offset, self.width,
                self.time_mean)


Terms = tuple[list[Chain], np.ndarray | None]  # chains and a per-channel constant (bias)


class Lowering:
    def __init__(self, graph: Graph) -> None:
        self.src = graph
        self.out = Graph()
        self.relays: dict[str, str] = {}  # linear tensor -> the neuron that now carries it

    def _is_linear(self, name: str) -> bool:
        return isinstance(self.src.nodes[name], LINEAR) and name not in self.relays

    def _shared(self, name: str) -> bool:
        return len(self.src.consumers(name)) > 1

    # -- expansion of linear tensors into chains ------------------------------------------------

    def terms(self, name: str, expand_shared: bool = False) -> Terms:
        """`name`'s tensor as a sum of chains from neurons plus a per-channel constant."""
        node = self.src.nodes[name]
        if not self._is_linear(name):
            return [Chain.identity(self.relays.get(name, name), node.shape[0])], None
        if self._shared(name) and not expand_shared:
            return self.terms(self.materialize(name))  # computed once, in a relay
        ins = self.src.inputs(name)
        if isinstance(node, (Add, Concat)):
            chains, bias, offset = [], None, 0
            for x in ins:
                c, b = self.terms(x)
                if isinstance(node, Concat):
                    n = self.src.nodes[x].shape[0]
                    c = [ch.placed(offset, node.shape[0]) for ch in c]
                    b = None if b is None else np.pad(b, (offset, node.shape[0] - offset - n))
                    offset += n
                chains += c
                bias = _add(bias, b)
            return chains, bias
        (x,) = ins
        try:
            return self._apply(node, *self.terms(x))
        except NotComposable:
            self.materialize(x)
            return self._apply(node, *self.terms(x))

    def _apply(self, node: Node, chains: list[Chain], bias: np.ndarray | None) -> Terms:
        if isinstance(node, Scale):
            return [c.scaled(node.factor) for c in chains], None if bias is None else bias * node.factor
        if isinstance(node, BatchNorm):
            g = node.weight / np.sqrt(node.var.astype(np.float64) + node.eps)
            shift = node.bias - node.mean * g
            return [c.scaled(g) for c in chains], shift if bias is None else bias * g + shift
        if isinstance(node, Upsample):
            return [c.upsampled(node.factor) for c in chains], bias  # a constant stays constant
        if isinstance(node, MeanT):
            steps = self.src.nodes[self.src.inputs(node.name)[0]].steps
            return [dataclasses.replace(c.scaled(1.0 / steps), time_mean=True) for c in chains], bias
        if isinstance(node, Conv):
            if bias is not None and node.weight.shape[-1] > 1 and node.padding > 0:
                raise NotComposable  # zero padding makes a convolved constant vary at the borders
            new = [c.conv(node.weight, node.stride, node.padding) for c in chains]
            total = None if bias is None else node.weight.astype(np.float64).sum(axis=(2, 3)) @ bias
            return new, _add(total, node.bias)
        raise AssertionError(f"not a linear op: {node.name}")

    # -- building the lowered graph ---------------------------------------------------------------

    def materialize(self, name: str, relu: bool = False, as_name: str | None = None) -> str:
        """Make the neuron that carries linear tensor `name`; returns its name."""
        if name in self.relays:
            return self.relays[name]
        chains, bias = self.terms(name, expand_shared=True)
        module = self.src.nodes[name].module
        if any(c.time_mean for c in chains):
            layer: Node = Accumulate(as_name or name, module, bias=bias)
        else:
            layer = Relay(as_name or name, module, bias=bias, relu=relu)
        self.connect(layer, [(chains, 0)])
        self.relays[name] = layer.name
        return layer.name

    def connect(self, layer: Node, ports: list[tuple[list[Chain], int]]) -> None:
        """Add `layer` and one synapse per merged chain into each of its ports."""
        self.out.nodes[layer.name] = layer
        for chains, port in ports:
            for i, chain in enumerate(_merge(chains)):
                syn = self.out.add(Synapse(f"{layer.name}.syn{port}_{i}", layer.module, weight=chain.weight,
                                           stride=chain.stride, padding=chain.padding, upsample=chain.upsample,
                                           offset=chain.offset, width=chain.width), chain.src)
                self.out.edges.append(Edge(syn, layer.name, port))

    def _input_chains(self, x: str) -> list[Chain]:
        """Chains into a neuron or host op reading tensor `x` (through a relay if `x` is linear)."""
        return self.terms(self.materialize(x) if self._is_linear(x) else x)[0]

    def run(self) -> Graph:
        for name in self.src.topological():
            node = self.src.nodes[name]
            if isinstance(node, LINEAR) or name in self.out.nodes:
                continue
            ins = self.src.inputs(name)
            if not ins:
                self.out.nodes[name] = dataclasses.replace(node)
            elif isinstance(node, Output):
                carrier = self.materialize(ins[0]) if self._is_linear(ins[0]) else ins[0]
                self.out.add(dataclasses.replace(node), carrier)
            elif isinstance(node, ReLU) and self._is_linear(ins[0]) and not self._shared(ins[0]):
                self.materialize(ins[0], relu=True, as_name=name)
            elif isinstance(node, INTEGRATING) and self._is_linear(ins[0]) and not self._shared(ins[0]) \
                    and self.terms(ins[0])[1] is None:
                self.connect(dataclasses.replace(node), [(self.terms(ins[0])[0], 0)])  # no relay needed
            else:
                self.connect(dataclasses.replace(node), [(self._input_chains(x), p) for p, x in enumerate(ins)])
        infer_shapes(self.out)
        return self.out


def _add(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None if b is None else np.asarray(b, np.float64)
    return a if b is None else a + b


def _merge(chains: list[Chain]) -> list[Chain]:
    """Sum the weights of chains that differ only in weights (e.g. `a*s` and `-b*s`)."""
    merged: dict[tuple, Chain] = {}
    for c in chains:
        k = c.key()
        merged[k] = dataclasses.replace(merged[k], weight=merged[k].weight + c.weight) if k in merged else c
    return list(merged.values())


def lower(graph: Graph) -> Graph:
    return Lowering(graph).run()
