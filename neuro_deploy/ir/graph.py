"""A small typed dataflow graph (NIR-style): nodes are ops, edges carry `[T, C, H, W]` tensors.

The front end captures a zoo network into this graph; lowering passes rewrite it into
neuron layers joined by synapse chains; back ends write and simulate it. Every node is a
dataclass with its parameters as numpy arrays, so passes stay plain Python.

Time: a node's output has `steps` time steps (T, or 1 after a mean over T). Shapes are
per step, `(C, H, W)`.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar, Iterator

import numpy as np

from neuro_deploy.errors import NeuroDeployError

Shape = tuple[int, int, int]


@dataclass(eq=False)
class Node:
    """Base of all ops. `name` is the source module path plus a role suffix where needed."""

    name: str
    module: str = ""  # module path in the PyTorch model this op comes from
    shape: Shape | None = None  # output (C, H, W), filled by shape inference
    steps: int | None = None  # output time steps, filled by shape inference
    start: int | None = None  # step its first input arrives (window start), filled by alignment
    emit: int | None = None  # step it emits its first output, filled by alignment

    kind: ClassVar[str] = "node"
    #: "neuron" ops hold state or a nonlinearity, "synapse" ops are linear maps, "host" ops
    #: have no neurocore equivalent (gates, products).
    role: ClassVar[str] = "neuron"

    def params(self) -> dict:
        """Op parameters (everything but identity and inferred fields)."""
        skip = {"name", "module", "shape", "steps", "start", "emit"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}


# ---- sources and sinks -------------------------------------------------------------------

@dataclass(eq=False)
class Input(Node):
    """The input, presented for `steps` time steps: an image whose pixels go out as 8-bit
    payloads (`encoding` "pixels", repeated T times), or the integer events a plain netx
    network takes (`encoding` "events", as many steps as the run has)."""

    channels: int = 3
    height: int = 0
    width: int = 0
    repeat: int = 4
    encoding: str = "pixels"
    kind: ClassVar[str] = "input"


@dataclass(eq=False)
class Output(Node):
    """Marks the network output (the derained image)."""

    kind: ClassVar[str] = "output"


# ---- linear (synaptic) ops ---------------------------------------------------------------

@dataclass(eq=False)
class Conv(Node):
    """2-D convolution applied at every step; `weight` is torch's `(out, in, kh, kw)`."""

    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1, 1), np.float32))
    bias: np.ndarray | None = None
    stride: int = 1
    padding: int = 0
    groups: int = 1
    kind: ClassVar[str] = "conv"
    role: ClassVar[str] = "synapse"


@dataclass(eq=False)
class BatchNorm(Node):
    """Eval-mode BatchNorm (tdBN): kept exact until the fold pass turns it into conv weights."""

    mean: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    var: np.ndarray = field(default_factory=lambda: np.ones(1, np.float32))
    weight: np.ndarray = field(default_factory=lambda: np.ones(1, np.float32))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    eps: float = 1e-5
    kind: ClassVar[str] = "batchnorm"
    role: ClassVar[str] = "synapse"


@dataclass(eq=False)
class Scale(Node):
    """Multiplication by a scalar (the SDEM's learnable high/low-frequency scales)."""

    factor: float = 1.0
    kind: ClassVar[str] = "scale"
    role: ClassVar[str] = "synapse"


@dataclass(eq=False)
class Add(Node):
    """Sum of all inputs (residuals, fan-in)."""

    kind: ClassVar[str] = "add"
    role: ClassVar[str] = "synapse"


@dataclass(eq=False)
class Concat(Node):
    """Channel concatenation of the inputs, in port order."""

    kind: ClassVar[str] = "concat"
    role: ClassVar[str] = "synapse"


@dataclass(eq=False)
class Upsample(Node):
    """Bilinear x`factor` upsampling, align_corners False."""

    factor: int = 2
    kind: ClassVar[str] = "upsample"
    role: ClassVar[str] = "synapse"


# ---- neurons -------------------------------------------------------------------------------

@dataclass(eq=False)
class LIF(Node):
    """`h = leak*v + x; s = h >= threshold; v = h*(1-s)`; binary spikes."""

    threshold: float = 0.15
    leak: float = 0.5
    kind: ClassVar[str] = "lif"


@dataclass(eq=False)
class NILIF(Node):
    """NI-LIF over sub-pixel steps: `(C,H,W)` in, `(C*r^2, H/r, W/r)` graded spikes out.

    Sub-pixel k of each r x r patch is processed as step `t*r^2 + k` inside time step t,
    as a Loihi 2 neuron program would; output channel `c*r^2 + k` holds sub-step k.
    """

    decay: float = 0.25
    levels: int = 4
    r: int = 2
    kind: ClassVar[str] = "nilif"


@dataclass(eq=False)
class ReLU(Node):
    kind: ClassVar[str] = "relu"


@dataclass(eq=False)
class MeanT(Node):
    """Mean over the time steps: `steps` T in, 1 out."""

    kind: ClassVar[str] = "mean_t"


# ---- host ops (no neurocore equivalent) ----------------------------------------------------

@dataclass(eq=False)
class Mul(Node):
    """Hadamard product of the two inputs (the SDEM's `y * s`)."""

    kind: ClassVar[str] = "mul"
    role: ClassVar[str] = "host"


@dataclass(eq=False)
class MDAGate(Node):
    """MA-SNN multi-dimensional attention: time, channel and spatial sigmoid gates, then ReLU.

    The gates pool over all time steps, so a step's output needs the whole window.
    """

    ta_w1: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.float32))
    ta_w2: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.float32))
    ca_w1: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.float32))
    ca_w2: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.float32))
    sa_w: np.ndarray = field(default_factory=lambda: np.zeros((1, 2, 3, 3), np.float32))
    kind: ClassVar[str] = "mda_gate"
    role: ClassVar[str] = "host"


@dataclass(eq=False)
class SubstepGate(Node):
    """The SMU's time attention over the `T*r^2` NI-LIF sub-steps (a sigmoid gate per sub-step)."""

    w1: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.float32))
    w2: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), np.float32))
    r: int = 2
    kind: ClassVar[str] = "substep_gate"
    role: ClassVar[str] = "host"


@dataclass(eq=False)
class Refinement(Node):
    """ESDNet's float refinement `(1-t)*a + t*x` (channel gate a, spatial gate t)."""

    ca: tuple = ()  # ((w, b), (w, b)) of the channel gate's two 1x1 convs
    sa: tuple = ()  # ((w, b), (w, b), (w, b)) of the spatial gate's three 3x3 convs
    kind: ClassVar[str] = "refinement"
    role: ClassVar[str] = "host"


@dataclass
class Edge:
    src: str
    dst: str
    port: int = 0  # input position at `dst` (order matters for Concat and Mul)


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node, *inputs: str) -> str:
        if node.name in self.nodes:
            raise ValueError(f"duplicate node name {node.name}")
        self.nodes[node.name] = node
        for port, src in enumerate(inputs):
            if src not in self.nodes:
                raise ValueError(f"{node.name}: unknown input {src}")
            self.edges.append(Edge(src, node.name, port))
        return node.name

    def inputs(self, name: str) -> list[str]:
        return [e.src for e in sorted((e for e in self.edges if e.dst == name), key=lambda e: e.port)]

    def consumers(self, name: str) -> list[str]:
        return [e.dst for e in self.edges if e.src == name]

    def of_type(self, cls: type) -> Iterator[Node]:
        return (n for n in self.nodes.values() if isinstance(n, cls))

    def topological(self) -> list[str]:
        """Node names in an order where every input comes before its consumers."""
        pending = {n: 0 for n in self.nodes}
        successors: dict[str, list[str]] = {n: [] for n in self.nodes}
        for e in self.edges:
            pending[e.dst] += 1
            successors[e.src].append(e.dst)
        ready = deque(n for n, k in pending.items() if k == 0)
        order = []
        while ready:
            n = ready.popleft()
            order.append(n)
            for dst in successors[n]:
                pending[dst] -= 1
                if pending[dst] == 0:
                    ready.append(dst)
        if len(order) != len(self.nodes):
            raise NeuroDeployError("the graph has a cycle")
        return order

    def remove(self, name: str) -> None:
        del self.nodes[name]
        self.edges = [e for e in self.edges if name not in (e.src, e.dst)]

    def replace_uses(self, old: str, new: str) -> None:
        """Point every consumer of `old` at `new`."""
        for e in self.edges:
            if e.src == old:
                e.src = new

    def output(self) -> str:
        outs = [n.name for n in self.of_type(Output)]
        if len(outs) != 1:
            raise NeuroDeployError(f"expected one output node, found {len(outs)}")
        return outs[0]


# ---- lowered form: neuron layers joined by synapses ----------------------------------------

@dataclass(eq=False)
class Synapse(Node):
    """A synaptic connection in normal form: bilinear upsample (optional), one conv, placement.

    `src` values are upsampled by `upsample`, convolved with `weight` (dense
    `(out, in, k, k)`), and land in channels `[offset, offset + out)` of a destination
    with `width` channels. `delay` is the axonal delay (steps beyond the one-step hop).
    A `stage` is a fixed identity synapse that the legalization inserts (an upsampling step or
    part of a long delay): its mantissa is 1 and it carries its source's payload unchanged.

    Plain netx files add what lava-dl's blocks can express: `(H, W)` pairs for stride, padding
    and dilation, `groups`, and `dense` synapses (Lava's Dense: the source flattened in C order,
    the weight `(out, C, H, W)` spanning the whole source, so the output is `(out, 1, 1)`)
    with per-synapse `delays` (weight-shaped) for DelayDense.
    """

    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1, 1)))
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    upsample: int = 1
    offset: int = 0
    width: int = 0
    delay: int = 0
    stage: bool = False
    dilation: int | tuple[int, int] = 1
    groups: int = 1
    dense: bool = False
    delays: np.ndarray | None = None
    kind: ClassVar[str] = "synapse"
    role: ClassVar[str] = "synapse"

    @property
    def spatial(self) -> bool:
        return self.weight.shape[-1] > 1 or max(pair(self.stride)) > 1


def pair(value: int | tuple[int, int] | np.ndarray) -> tuple[int, int]:
    """An `(H, W)` pair from one value or two."""
    v = np.asarray(value).reshape(-1)
    return (int(v[0]), int(v[-1]))


@dataclass(eq=False)
class Relay(Node):
    """Graded neuron: emits its summed synaptic input (+ bias, optional ReLU) every step.

    It carries a real-valued activation as graded spikes.
    """

    bias: np.ndarray | None = None
    relu: bool = False
    kind: ClassVar[str] = "relay"


@dataclass(eq=False)
class SigmaDelta(Node):
    """lava-dl's sigma-delta neurons (graded payloads): `mode` "delta" (the input layer: sends
    changes of its input), "sigma_delta" (integrates its input, ReLU, sends changes) or "sigma"
    (integrates and sends its sum, the output layer)."""

    mode: str = "sigma_delta"
    kind: ClassVar[str] = "sigma_delta"


@dataclass(eq=False)
class Accumulate(Node):
    """Sums its synaptic input over its whole window (+ bias) and emits the sum once.

    The mean over time steps: incoming weights carry the 1/T.
    """

    bias: np.ndarray | None = None
    kind: ClassVar[str] = "accumulate"
