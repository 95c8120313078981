"""`neuro-deploy export NET --nir OUT.nir`: a network file's CUBA-LIF layers as a NIR graph.

Each CUBA-LIF layer becomes the NIR neuron whose forward-Euler step at `dt` is Lava's update
(`nir_read` reads it back the same way): LIF (or IF without a voltage leak) when the current
does not persist, CubaLIF when it does, with `r` and `w_in` set so that the integer weights,
thresholds and biases appear unchanged. Weights are `mantissa * 2^shift`; a layer's bias
becomes the (first) synapse's bias (LIF, IF) or `v_leak` (CubaLIF); a layer with several
synapses sums them, as NIR sums a node's inputs (nirtorch's executor does). NIR has no
primitive for graded relays, NI-LIF, sigma-delta, accumulator or host layers: they are left
out and named in one line; a layer of them that feeds exported layers becomes an Input node
named after it, and an exported layer that feeds them gets an Output node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.ir.graph import LIF, Input, Synapse, pair

NIR_LACKS = {"relay": "graded relay", "nilif": "NI-LIF", "sigma_delta": "sigma-delta", "accumulate": "accumulator",
             "mul": "host product", "mda_gate": "host gate", "substep_gate": "host gate", "refinement": "host op"}


@dataclass
class Export:
    graph: object  # nir.NIRGraph
    layers: int  # neuron layers exported
    left_out: list[str] = field(default_factory=list)  # one phrase per kind of layer left out


def _neuron(name: str, p, shape: tuple[int, ...], bias: np.ndarray, dt: float):
    """The NIR neuron of Lava's CUBA-LIF registers (`p`: LIFParams); `bias` in weight units."""
    import nir

    i_decay, dv = p.du + 1, p.dv
    vth = np.full(shape, float(p.vth))
    zero = np.zeros(shape)
    if i_decay >= 4096:
        if dv == 0:
            return nir.IF(r=np.full(shape, 1.0 / dt), v_threshold=vth, v_reset=zero)
        tau = dt * 4096 / dv
        return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / dt), v_leak=zero, v_threshold=vth,
                       v_reset=zero)
    if dv == 0:
        raise NeuroDeployError(f"layer {name}: a current-based neuron without voltage leak has no NIR form "
                               "(CubaLIF needs a finite tau_mem)")
    if i_decay == 0:
        raise NeuroDeployError(f"layer {name}: a current that never decays (current decay 0) has no NIR form "
                               "(CubaLIF needs a finite tau_syn)")
    tau_syn, tau_mem = dt * 4096 / i_decay, dt * 4096 / dv
    return nir.CubaLIF(tau_syn=np.full(shape, tau_syn), tau_mem=np.full(shape, tau_mem), r=np.full(shape, tau_mem / dt),
                       v_leak=bias * 4096 / dv, v_threshold=vth, v_reset=zero, w_in=np.full(shape, tau_syn / dt))


def _bias(p, shape: tuple[int, ...]) -> np.ndarray:
    """The per-step voltage bias in weight units: `bias << bias_exp` against `a_in << 6`."""
    if p.bias is None:
        return np.zeros(shape)
    return np.broadcast_to(np.asarray(p.bias, np.float64) * 2.0 ** (p.bias_exp - 6), shape).copy()


def _synapse_nodes(name: str, syn: Synapse, weight: np.ndarray, src_shape: tuple[int, ...], bias: np.ndarray
                   ) -> list[tuple[str, object]]:
    """The NIR ops of one synapse: Conv2d, or (Flatten,) (Delay,) Affine for a dense one."""
    import nir

    if not syn.dense:
        stride, padding, dilation = pair(syn.stride), pair(syn.padding), pair(syn.dilation)
        per_channel = bias.reshape(bias.shape[0], -1)
        if not np.all(per_channel == per_channel[:, :1]):
            raise NeuroDeployError(f"layer {name}: a bias that varies across pixels (NIR's conv bias is per channel)")
        return [(f"{name}.conv", nir.Conv2d(input_shape=tuple(src_shape[1:]), weight=weight, stride=stride,
                                            padding=padding, dilation=dilation, groups=syn.groups,
                                            bias=per_channel[:, 0]))]
    ops: list[tuple[str, object]] = []
    n_out = weight.shape[0]
    flat_weight = weight.reshape(n_out, -1)
    if len(src_shape) == 3 and src_shape[1:] != (1, 1):
        ops.append((f"{name}.flatten", nir.Flatten(input_type={"input": np.array(src_shape)}, start_dim=0,
                                                   end_dim=-1)))
    if syn.delays is not None and np.any(syn.delays):
        d = np.asarray(syn.delays).reshape(n_out, -1)
        if not np.all(d == d[:1]):
            raise NeuroDeployError(f"layer {name}: delays that differ per target neuron of one source "
                                   "(NIR's Delay is per neuron)")
        ops.append((f"{name}.delay", nir.Delay(delay=d[0].astype(np.float64))))
    ops.append((f"{name}.affine", nir.Affine(weight=flat_weight, bias=bias.reshape(-1))))
    return ops


def _scaled(ops: list, dt: float) -> None:
    """Delays in steps become seconds."""
    for _, node in ops:
        if type(node).__name__ == "Delay":
            node.delay = node.delay * dt


def _key(name: str) -> str:
    """A layer's NIR node name (HDF5 would read a "/" in a node name as a group)."""
    return name.replace("/", ".")


class _Builder:
    """The NIR graph under construction: CUBA-LIF layers, their synapses, and the Input and Output
    nodes where they meet the network's input, its output or a layer NIR lacks."""

    def __init__(self, net: NetworkFile, dt: float) -> None:
        self.q, self.graph, self.dt = net.quantized, net.quantized.graph, dt
        self.shapes = net.meta.get("shapes", {})
        self.nodes: dict[str, object] = {}
        self.edges: list[tuple[str, str]] = []
        self.exported: list[str] = []  # the layers written as NIR neurons
        self.lacking: dict[str, list[str]] = {}  # kind of layer NIR lacks -> its layers

    def file_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.shapes.get(name, self.graph.nodes[name].shape))

    def source(self, name: str) -> str:
        """The NIR node a layer's events come from: its neuron, or an Input standing for it."""
        import nir

        if name in self.exported:
            return _key(name)
        key = "input" if isinstance(self.graph.nodes[name], Input) else _key(name)
        if key not in self.nodes:
            self.nodes[key] = nir.Input(input_type={"input": np.array(self.file_shape(name))})
        return key

    def incoming(self, name: str) -> list[tuple[Synapse | None, str]] | None:
        """`(synapse or None when fed directly, source layer)` per input; None when a synapse has no NIR form."""
        out = []
        for i in self.graph.inputs(name):
            syn = self.graph.nodes[i]
            if not isinstance(syn, Synapse):
                out.append((None, i))
                continue
            if syn.upsample != 1 or syn.offset != 0 or syn.width not in (0, syn.weight.shape[0]) or syn.delay:
                return None
            out.append((syn, self.graph.inputs(i)[0]))
        return out

    def layer(self, name: str) -> None:
        """One CUBA-LIF layer, its synapses and the sources they read."""
        node, p = self.graph.nodes[name], self.q.layers[name].params
        incoming = self.incoming(name)
        if incoming is None:
            self.lacking.setdefault("LIF (behind an upsampling, concatenating or delayed synapse)", []).append(name)
            return
        bias, current = _bias(p, node.shape), p.du + 1 < 4096
        key = _key(name)
        for j, (syn, src) in enumerate(incoming):
            ops: list[tuple[str, object]] = []
            if syn is not None:
                qs = self.q.synapses[syn.name]
                synapse_bias = bias if j == 0 and not current else np.zeros(node.shape)
                label = key if len(incoming) == 1 else f"{key}.{j}"
                ops = _synapse_nodes(label, syn, qs.mantissa.astype(np.float64) * 2.0 ** qs.shift,
                                     tuple(self.graph.nodes[src].shape), synapse_bias)
            elif np.any(bias) and not current:
                raise NeuroDeployError(f"layer {name}: a biased neuron fed straight by the input has no NIR form "
                                       "without a synapse to carry the bias")
            _scaled(ops, self.dt)
            self.chain(self.source(src), ops, key)
        shape = self.file_shape(name)
        self.nodes[key] = _neuron(name, p, shape, bias.reshape(shape), self.dt)
        self.exported.append(name)

    def chain(self, start: str, ops: list[tuple[str, object]], end: str) -> None:
        for op_name, op in ops:
            self.nodes[op_name] = op
            self.edges.append((start, op_name))
            start = op_name
        self.edges.append((start, end))

    def outputs(self) -> None:
        """An Output after every exported layer that feeds the network's output, a layer left out, or nothing."""
        import nir

        final = self.graph.inputs(self.graph.output())
        for name in self.exported:
            readers = [r for c in self.graph.consumers(name)
                       for r in (self.graph.consumers(c) if isinstance(self.graph.nodes[c], Synapse) else [c])]
            if name in final or not readers or any(r not in self.exported for r in readers):
                key = "output" if final == [name] else f"{_key(name)}.output"
                self.nodes[key] = nir.Output(output_type={"output": np.array(self.file_shape(name))})
                self.edges.append((_key(name), key))


def export_nir(net: NetworkFile, dt: float = 1e-4) -> Export:
    """The NIR graph of the network's CUBA-LIF layers and their synapses. A layer NIR lacks is
    left out: where it feeds an exported layer it becomes an Input named after it, where it reads
    one that layer gets an Output; the layers left out are listed in `left_out`."""
    import nir

    b = _Builder(net, dt)
    for name in b.graph.topological():
        node = b.graph.nodes[name]
        if name not in b.q.layers or isinstance(node, Input):
            continue
        if isinstance(node, LIF):
            b.layer(name)
        else:
            b.lacking.setdefault(NIR_LACKS.get(node.kind, node.kind), []).append(name)
    if not b.exported:
        kinds = ", ".join(f"{k} ({len(v)})" for k, v in b.lacking.items())
        raise NeuroDeployError(f"{net.path}: nothing to export: NIR has no primitive for any of its layers ({kinds})")
    b.outputs()
    graph = nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata={"dt": dt, "producer": "neuro-deploy export"},
                         type_check=False)
    left = [f"{len(v)} {k} layer{'s' if len(v) > 1 else ''} ({v[0]}{', ...' if len(v) > 1 else ''})"
            for k, v in b.lacking.items()]
    return Export(graph, len(b.exported), left)


def write_nir(graph, path: str | Path) -> None:
    """`nir.write` to a temporary name, renamed on success."""
    import nir

    from neuro_deploy.common.atomic import atomic_path

    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)
