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

from neuro_deploy.common import memory
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.formats.netx import placement
from neuro_deploy.ir.graph import MDAGate, Mul, Node, Refinement, SubstepGate, Synapse, pair
from neuro_deploy.ir.quantized import QLayer

if TYPE_CHECKING:
    import torch

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
    # the [n_in, n_out, k] tap masks (three of bool and one of int64 at once) and [n_in, n_out] int64 codes:
    # quadratic in the image side, so a size far beyond a tile is refused before numpy fails to allocate
    memory.check(n_in * n_out * (11 * k + 24), f"counting a convolution's taps along a side of {n_in} pixels",
                 "lower the image size (--size)")
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
    # a histogram of (source, tap set) pairs; bincount is an order of magnitude faster than np.add.at
    counts = np.bincount(np.repeat(i, n_out) * 2**k + code.reshape(-1), minlength=n_in * 2**k).reshape(n_in, 2**k)
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
    if (kh, kw, upsample) == (1, 1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0):  # pointwise
        return np.broadcast_to(np.count_nonzero(mask[:, :, 0, 0], axis=0)[:, None, None], (in_ch, *in_hw)).copy()
    rows = axis_patterns(in_hw[0], out_hw[0], kh, stride[0], padding[0], dilation[0], upsample)
    cols = axis_patterns(in_hw[1], out_hw[1], kw, stride[1], padding[1], dilation[1], upsample)
    rows_bits = mask.reshape(out_ch * in_ch, kh * kw).astype(bool)
    if kh * kw < 63:  # one integer per kernel pattern: a 1-D unique is much faster
        codes, which = np.unique(rows_bits @ (1 << np.arange(kh * kw, dtype=np.int64)), return_inverse=True)
        patterns = (codes[:, None] >> np.arange(kh * kw)) & 1
    else:
        patterns, which = np.unique(rows_bits, axis=0, return_inverse=True)
    # how many output channels reach channel c through pattern m
    per_channel = np.bincount(np.tile(np.arange(in_ch), out_ch) * len(patterns) + which.reshape(-1),
                              minlength=in_ch * len(patterns)).reshape(in_ch, len(patterns)).astype(np.float64)
    bits_h = (np.arange(2**kh)[:, None] >> np.arange(kh)) & 1
    bits_w = (np.arange(2**kw)[:, None] >> np.arange(kw)) & 1
    hits = np.einsum("pa,mab,qb->mpq", bits_h, patterns.reshape(-1, kh, kw).astype(np.int64), bits_w) > 0
    reach = rows.astype(np.float64) @ hits.astype(np.float64) @ cols.T.astype(np.float64)  # [m, H, W]
    fan = per_channel @ reach.reshape(len(patterns), -1)
    return np.rint(fan).astype(np.int64).reshape(in_ch, *in_hw)


def synapse_fanout(syn: Synapse, mantissa: np.ndarray, src_shape: tuple[int, int, int]) -> np.ndarray:
    """`[C, H, W]` of the source: how many synapses of `syn` each source neuron reaches (a dense
    synapse: its non-zero weights per source neuron; a grouped conv: no synapse across groups)."""
    nonzero = mantissa != 0
    if syn.dense:
        return np.count_nonzero(nonzero, axis=0)
    out_ch, per_group = nonzero.shape[:2]
    mask = np.zeros((out_ch, per_group * syn.groups, *nonzero.shape[2:]), bool)
    group_out = out_ch // syn.groups
    for g in range(syn.groups):
        mask[g * group_out:(g + 1) * group_out, g * per_group:(g + 1) * per_group] = \
            nonzero[g * group_out:(g + 1) * group_out]
    return fanout_map(mask, src_shape[1:], syn.shape[1:], pair(syn.stride), pair(syn.padding), pair(syn.dilation),
                      syn.upsample)


# ---- counting a network's events -----------------------------------------------------------------

def event_kind(node: Node, layer: QLayer) -> str:
    """What a layer's events are to the synapses they reach: spikes (one-bit payloads, which the
    synapses of a plain netx file also make of its input), payloads made off the neurocores (the
    input image, host outputs), or graded payloads."""
    if layer.payload_bits == 1:
        return "binary"
    return "real" if placement(node) in ("io", "host") else "graded"


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
class _Outgoing:
    dst: str
    kind: str  # what the source's events are: binary, graded or real
    to_host: bool  # the synapse's ops run on the host (MACs)


def fanout_matrix(fanouts: list[np.ndarray], neurons: int) -> np.ndarray:
    """`[neurons, synapses + 1]`: the synapses' flattened fan-outs and a column of ones, in float32
    when every sum of products stays exact (below 2^24), float64 otherwise."""
    exact32 = max([neurons, *(int(f.sum()) for f in fanouts)]) < 2**24
    matrix = np.ones((neurons, len(fanouts) + 1), np.float32 if exact32 else np.float64)
    for j, f in enumerate(fanouts):
        matrix[:, j] = f
    return matrix


class RunTally:
    """Per-layer, per-step counts of one run, filled source by source in any order."""

    def __init__(self, names: list[str], steps: int) -> None:
        self.steps = steps
        self.per_step = {n: {key: np.zeros(steps, np.int64) for key in KEYS} for n in names}

    def add_source(self, src: str, first: int, payload: np.ndarray | torch.Tensor, fanout: np.ndarray,
                   outgoing: list[_Outgoing]) -> None:
        """The source's payloads `[steps, *shape]` from step `first`. One product of its activity
        mask with its fan-outs gives every synapse's ops and, through the column of ones, its events.
        (numpy: on a busy 2-core machine torch's threaded element-wise ops are many times slower.)"""
        payload = payload if isinstance(payload, np.ndarray) else payload.numpy()  # a torch tensor
        steps = slice(first, first + payload.shape[0])
        if first < 0 or steps.stop > self.steps:
            raise NeuroDeployError(f"events of layer {src} cover steps {first}..{steps.stop - 1}; the run has {self.steps}")
        active = (payload.reshape(payload.shape[0], -1) != 0).astype(fanout.dtype)
        sums = np.rint(active @ fanout).astype(np.int64)  # [steps, synapses + 1]
        events = sums[:, -1]
        self.per_step[src]["spikes_out"][steps] += events
        for j, out in enumerate(outgoing):
            dst = self.per_step[out.dst]
            dst[f"in_{out.kind}"][steps] += events
            dst["macs" if out.to_host else f"synops_{out.kind}"][steps] += sums[:, j]


class NetworkCounter:
    """Counts for one network; fan-out maps are computed once. `steps`: a free-running network's
    run length (a converted network sets its own). Every event and its synaptic ops count in the
    step it is sent: delays move only the step it arrives in, so they change no count."""

    def __init__(self, net: NetworkFile, steps: int | None = None) -> None:
        self.net = net
        q = net.quantized
        graph = q.graph
        self.steps = steps if q.free_running else int(net.meta["steps"])
        if self.steps is None:
            raise NeuroDeployError(f"{net.path} is a plain netx network: counting it needs the run's steps")
        self.order = list(q.layers)  # the reader builds them in `/layer/<i>` order
        self.outgoing: dict[str, list[_Outgoing]] = {n: [] for n in self.order}
        fanouts: dict[str, list[np.ndarray]] = {n: [] for n in self.order}
        for syn in (n for n in graph.nodes.values() if isinstance(n, Synapse)):
            src = graph.nodes[graph.inputs(syn.name)[0]]
            dst = graph.consumers(syn.name)[0]
            fan = synapse_fanout(syn, q.synapses[syn.name].mantissa, src.shape)
            self.outgoing[src.name].append(_Outgoing(dst, event_kind(src, q.layers[src.name]),
                                                     placement(graph.nodes[dst]) == "host"))
            fanouts[src.name].append(fan.reshape(-1))
        self.fanouts = {n: fanout_matrix(f, int(np.prod(graph.nodes[n].shape))) for n, f in fanouts.items()}

    def start(self) -> RunTally:
        """An empty run: feed it every layer with `add`, in any order, then `finish` it."""
        return RunTally(self.order, self.steps)

    def add(self, run: RunTally, name: str, first: int, payload: np.ndarray | torch.Tensor) -> None:
        run.add_source(name, first, payload, self.fanouts[name], self.outgoing[name])

    def count(self, events: dict[str, np.ndarray]) -> Counts:
        """Counts of one run from every layer's `[steps, C, H, W]` payloads (Lava's events)."""
        run = self.start()
        for name in self.order:
            self.add(run, name, 0, events[name])
        return self.finish(run)

    def finish(self, run: RunTally) -> Counts:
        """Neuron updates and host-op MACs, which follow from the description and the events."""
        graph = self.net.quantized.graph
        counts = Counts(self.net.path, self.steps, 1)
        for index, name in enumerate(self.order):
            node, per_step = graph.nodes[name], run.per_step[name]
            where = placement(node)
            neurons = int(np.prod(node.shape))
            if where == "neurocore":
                per_step["updates_active"] = per_step["spikes_out"].copy()
                per_step["updates_inactive"] = neurons - per_step["spikes_out"]
            elif where == "host":
                window = max(graph.nodes[graph.inputs(s)[0]].steps for s in graph.inputs(name))
                macs, at_end = host_op_macs(node, window)
                steps = [node.start + window - 1] if at_end else range(node.start, node.start + window)
                for s in steps:
                    if s < self.steps:
                        per_step["macs"][s] += macs // (1 if at_end else window)
            window = self.steps if self.net.quantized.free_running else \
                max(0, min(node.emit + node.steps, self.steps) - node.emit)
            counts.layers.append(LayerCounts(index, name, node.kind, where, neurons, window, per_step))
        return counts
