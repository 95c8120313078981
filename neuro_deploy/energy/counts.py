"""Per-layer, per-step operation counts derived from the events a back end produced.

Both back ends give every layer's payload at every step (`[steps, *shape]`), so counting only
reads events and the network description: the fast and the Lava back end give the same counts
by construction. Rules (docs/energy.md):

* an input event is a non-zero source payload reaching a layer through one synapse; its kind is
  `binary` (a LIF spike), `graded` (a neurocore graded payload: NI-LIF levels, relays,
  sigma-delta) or `real` (a value made off the neurocores: the input image, host outputs);
* each input event costs one synaptic op per synapse it reaches (its fan-out, exact at the
  padded borders and through bilinear upsampling), counted in the step the event is sent;
* a synapse into a host layer runs on the host: its ops are MACs, as are the host op's own;
* every neuron of a neurocore layer is updated in every step run; an update is active when
  the neuron emits an event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.ir.graph import LIF, MDAGate, Mul, Node, Refinement, SubstepGate, Synapse
from neuro_deploy.netx_io import NetworkFile, placement

if TYPE_CHECKING:
    from neuro_deploy.netx_chain import Chain, ChainLayer

KINDS = ("binary", "graded", "real")
KEYS = (*(f"in_{k}" for k in KINDS), *(f"synops_{k}" for k in KINDS), "macs", "spikes_out", "updates_active",
        "updates_inactive")


@dataclass
class LayerCounts:
    index: int  # `/layer/<i>` of the file
    name: str
    type: str
    placement: str  # io, neurocore or host
    neurons: int
    window: int  # steps in which the layer can emit, over all runs (firing-rate denominator)
    per_step: dict[str, np.ndarray]  # KEYS -> int64 [steps]

    def total(self, key: str) -> int:
        return int(self.per_step[key].sum())

    @property
    def synops(self) -> int:
        return sum(self.total(f"synops_{k}") for k in KINDS)

    @property
    def neuron_updates(self) -> int:
        return self.total("updates_active") + self.total("updates_inactive")

    @property
    def firing_rate(self) -> float:
        return self.total("spikes_out") / (self.neurons * self.window) if self.window else 0.0


@dataclass
class Counts:
    network: str
    steps: int  # steps per run
    runs: int  # runs summed (tiles of one image)
    layers: list[LayerCounts] = field(default_factory=list)

    def add(self, other: "Counts") -> None:
        """Sum another run (the next tile) into these counts, step by step."""
        for mine, theirs in zip(self.layers, other.layers):
            for key in KEYS:
                mine.per_step[key] = mine.per_step[key] + theirs.per_step[key]
            mine.window += theirs.window
        self.runs += other.runs


# ---- fan-out: the synapses one source neuron reaches ------------------------------------------

def axis_patterns(n_in: int, n_out: int, k: int, stride: int, padding: int, dilation: int,
                   upsample: int) -> np.ndarray:
    """`[n_in, 2^k]`: for source position i, how many outputs see it through exactly the tap set P.

    With upsampling (bilinear x2, align_corners False) source i reaches upsampled positions
    `2i-1 .. 2i+2` (clipped: edge replication reaches nothing new).
    """
    i = np.arange(n_in)
    if upsample == 1:
        lo, hi = i, i
    elif upsample == 2:
        lo, hi = np.maximum(2 * i - 1, 0), np.minimum(2 * i + 2, 2 * n_in - 1)
    else:
        raise NeuroDeployError(f"upsampling by {upsample} is not supported (only x2)")
    taps = np.arange(n_out)[:, None] * stride - padding + np.arange(k)[None, :] * dilation  # [n_out, k]
    hit = (taps[None] >= lo[:, None, None]) & (taps[None] <= hi[:, None, None])  # [n_in, n_out, k]
    code = hit.astype(np.int64) @ (1 << np.arange(k))
    counts = np.zeros((n_in, 2**k), np.int64)
    np.add.at(counts, (np.repeat(i, n_out), code.reshape(-1)), 1)
    counts[:, 0] = 0  # outputs that do not see the source
    return counts


def fanout_map(mask: np.ndarray, in_hw: tuple[int, int], out_hw: tuple[int, int], stride: tuple[int, int],
               padding: tuple[int, int], dilation: tuple[int, int] = (1, 1), upsample: int = 1) -> np.ndarray:
    """`[Cin, H, W]`: how many synapses (distinct output neurons) each source neuron reaches.

    `mask` is the `(out, in, kh, kw)` non-zero pattern of a conv applied to the source, upsampled
    first when `upsample` is 2. Exact at the borders: the count for source (c, y, x) is
    `sum_o sum_(ty, tx) [an output row sees y through exactly ty] [a column sees x through tx]
    [mask[o, c] has a tap in ty x tx]`, computed per distinct kernel pattern.
    """
    out_ch, in_ch, kh, kw = mask.shape
    rows = axis_patterns(in_hw[0], out_hw[0], kh, stride[0], padding[0], dilation[0], upsample)
    cols = axis_patterns(in_hw[1], out_hw[1], kw, stride[1], padding[1], dilation[1], upsample)
    patterns, which = np.unique(mask.reshape(out_ch * in_ch, kh * kw).astype(bool), axis=0, return_inverse=True)
    per_channel = np.zeros((in_ch, len(patterns)))  # how many output channels reach channel c through pattern m
    np.add.at(per_channel, (np.tile(np.arange(in_ch), out_ch), which.reshape(-1)), 1)
    bits_h = (np.arange(2**kh)[:, None] >> np.arange(kh)) & 1
    bits_w = (np.arange(2**kw)[:, None] >> np.arange(kw)) & 1
    hits = np.einsum("pa,mab,qb->mpq", bits_h, patterns.reshape(-1, kh, kw).astype(np.int64), bits_w) > 0
    reach = rows.astype(np.float64) @ hits.astype(np.float64) @ cols.T.astype(np.float64)  # [m, H, W]
    fan = per_channel @ reach.reshape(len(patterns), -1)
    return np.rint(fan).astype(np.int64).reshape(in_ch, *in_hw)


# ---- networks written by neuro-deploy -------------------------------------------------------------

def event_kind(node: Node) -> str:
    """What a layer's events are to the synapses they reach."""
    if placement(node) in ("io", "host"):
        return "real"
    return "binary" if isinstance(node, LIF) else "graded"


def conv_macs(cout: int, cin: int, in_hw: tuple[int, int], k: int, stride: int = 1, padding: int | None = None) -> int:
    """MACs of a dense conv on every input position, exact at the padded borders."""
    padding = k // 2 if padding is None else padding
    out_hw = [(n + 2 * padding - k) // stride + 1 for n in in_hw]
    rows, cols = (axis_patterns(n, m, k, stride, padding, 1, 1).sum() for n, m in zip(in_hw, out_hw))
    return int(cout * cin * rows * cols)


def mda_macs(steps: int, c: int, h: int, w: int, ta_hidden: int, ca_hidden: int, sa_kernel: int) -> int:
    """Multi-dimensional attention: the time and channel gate MLPs (on an average- and a max-pooled
    summary each), the spatial gate's 2->1 conv, and the three gating products."""
    return 4 * steps * ta_hidden + 4 * c * ca_hidden + conv_macs(1, 2, (h, w), sa_kernel) + 3 * steps * c * h * w


def time_gate_macs(steps: int, hidden: int, c: int, h: int, w: int) -> int:
    """The SMU's time attention over its sub-steps: MLP on two pooled summaries, then the gating product."""
    return 4 * steps * hidden + steps * c * h * w


def refinement_macs(c: int, h: int, w: int, ca: list[tuple[int, ...]], sa: list[tuple[int, ...]]) -> int:
    """ESDNet's refinement: channel-gate 1x1 convs on the pooled vector, three spatial convs, (1-t)*a + t*x."""
    return (sum(int(np.prod(s)) for s in ca) + sum(conv_macs(s[0], s[1], (h, w), s[-1]) for s in sa)
            + 2 * c * h * w)


def host_op_macs(node: Node, window: int) -> tuple[int, bool]:
    """MACs of one host op over its window, and whether it computes once at the window's end
    (the gates pool over all steps) rather than once per step. Sigmoids, pooling sums and
    comparisons are not counted."""
    c, h, w = node.shape
    if isinstance(node, Mul):
        return c * h * w * window, False
    if isinstance(node, MDAGate):
        return mda_macs(window, c, h, w, node.ta_w1.shape[0], node.ca_w1.shape[0], node.sa_w.shape[-1]), True
    if isinstance(node, SubstepGate):  # `(C r^2, h, w)` per step: `T r^2` sub-steps of `(C, h, w)`
        return time_gate_macs(window * node.r**2, node.w1.shape[0], c // node.r**2, h, w), True
    if isinstance(node, Refinement):
        return refinement_macs(c, h, w, [wt.shape for wt, _ in node.ca], [wt.shape for wt, _ in node.sa]), True
    raise NeuroDeployError(f"no MAC count for host op {node.name} ({node.kind})")


@dataclass
class _Incoming:
    source: str
    kind: str
    fanout: np.ndarray  # flattened over the source's (C, H, W)


class NetworkCounter:
    """Counts for one network written by neuro-deploy; fan-out maps are computed once."""

    def __init__(self, net: NetworkFile) -> None:
        self.net = net
        q = net.quantized
        graph = q.graph
        self.steps = int(net.meta["steps"])
        self.order = list(q.layers)  # the reader builds them in `/layer/<i>` order
        self.incoming: dict[str, list[_Incoming]] = {}
        for name in self.order:
            ins = []
            for s in graph.inputs(name):
                syn = graph.nodes[s]
                if not isinstance(syn, Synapse):
                    continue
                src = graph.nodes[graph.inputs(s)[0]]
                mask = q.synapses[s].mantissa != 0
                fan = fanout_map(mask, src.shape[1:], syn.shape[1:], (syn.stride,) * 2, (syn.padding,) * 2,
                                 upsample=syn.upsample)
                ins.append(_Incoming(src.name, event_kind(src), fan.reshape(-1)))
            self.incoming[name] = ins

    def count(self, events: dict[str, np.ndarray]) -> Counts:
        """Counts of one run from every layer's `[steps, C, H, W]` payloads."""
        graph = self.net.quantized.graph
        counts = Counts(self.net.path, self.steps, 1)
        for index, name in enumerate(self.order):
            node = graph.nodes[name]
            ev = events[name]
            if ev.shape[0] != self.steps:
                raise NeuroDeployError(f"events of layer {name} cover {ev.shape[0]} steps, the run has {self.steps}")
            per_step = {key: np.zeros(self.steps, np.int64) for key in KEYS}
            where = placement(node)
            for inc in self.incoming[name]:
                _add_synops(per_step, inc.kind, inc.fanout, events[inc.source], to_host=where == "host")
            per_step["spikes_out"] = np.count_nonzero(ev.reshape(self.steps, -1), axis=1).astype(np.int64)
            neurons = int(np.prod(node.shape))
            if where == "neurocore":
                per_step["updates_active"] = per_step["spikes_out"].copy()
                per_step["updates_inactive"] = neurons - per_step["spikes_out"]
            elif where == "host":
                window = max(graph.nodes[i.source].steps for i in self.incoming[name])
                macs, at_end = host_op_macs(node, window)
                steps = [node.start + window - 1] if at_end else range(node.start, node.start + window)
                for s in steps:
                    if s < self.steps:
                        per_step["macs"][s] += macs // (1 if at_end else window)
            window = max(0, min(node.emit + node.steps, self.steps) - node.emit)
            counts.layers.append(LayerCounts(index, name, node.kind, where, neurons, window, per_step))
        return counts


def _add_synops(per_step: dict[str, np.ndarray], kind: str, fanout: np.ndarray, source_events: np.ndarray,
                to_host: bool) -> None:
    """Add the events of one source through one synapse, step by step."""
    flat = source_events.reshape(source_events.shape[0], -1)
    for s in np.flatnonzero(flat.any(axis=1)):
        active = flat[s] != 0
        per_step[f"in_{kind}"][s] += int(active.sum())
        ops = int(fanout[active].sum())
        per_step["macs" if to_host else f"synops_{kind}"][s] += ops


# ---- plain netx chains (lava-dl's own files) -----------------------------------------------------

def _chain_fanout(layer: ChainLayer, in_shape: tuple[int, ...]) -> np.ndarray:
    if layer.kind == "dense":
        return np.count_nonzero(layer.weight, axis=0).astype(np.int64)
    out_ch, per_group = layer.weight.shape[:2]
    mask = np.zeros((out_ch, per_group * layer.groups, *layer.weight.shape[2:]), bool)
    group_out = out_ch // layer.groups
    for g in range(layer.groups):  # grouped conv: zero connectivity across groups
        mask[g * group_out:(g + 1) * group_out, g * per_group:(g + 1) * per_group] = \
            layer.weight[g * group_out:(g + 1) * group_out] != 0
    if len(in_shape) != 3 or mask.shape[1] != in_shape[0]:
        raise NeuroDeployError(f"conv layer {layer.index} takes {mask.shape[1]} channels, its input is {in_shape}")
    return fanout_map(mask, in_shape[1:], layer.shape[1:], layer.stride, layer.padding, layer.dilation).reshape(-1)


class ChainCounter:
    """Counts for a plain netx chain run (`ChainRun.events`, one array per chain layer)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.fanouts: list[np.ndarray | None] = []
        in_shape = chain.input_shape
        for layer in chain.layers:
            self.fanouts.append(None if layer.kind == "input" else _chain_fanout(layer, in_shape))
            in_shape = layer.shape

    def count(self, events: list[np.ndarray], frames: np.ndarray) -> Counts:
        """`frames`: the `[steps, *input_shape]` input, which reaches the first synapse when the
        file's input layer has no neuron."""
        steps = frames.shape[0]
        counts = Counts(self.chain.path, steps, 1)
        previous = frames
        for layer, fan, ev in zip(self.chain.layers, self.fanouts, events):
            per_step = {key: np.zeros(steps, np.int64) for key in KEYS}
            if fan is not None:
                _add_synops(per_step, "graded" if layer.in_message_bits else "binary", fan, previous, to_host=False)
            per_step["spikes_out"] = np.count_nonzero(ev.reshape(steps, -1), axis=1).astype(np.int64)
            per_step["updates_active"] = per_step["spikes_out"].copy()
            neurons = int(np.prod(layer.shape))
            per_step["updates_inactive"] = neurons - per_step["spikes_out"]
            counts.layers.append(LayerCounts(layer.index, f"layer/{layer.index}", layer.kind, "neurocore", neurons,
                                             steps, per_step))
            previous = ev
        return counts
