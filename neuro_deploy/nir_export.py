"""`neuro-deploy export NET --nir OUT.nir`: a network file's spiking chain as a NIR graph.

Each CUBA-LIF layer becomes the NIR neuron whose forward-Euler step at `dt` is Lava's update
(`nir_read` reads it back the same way): LIF (or IF without a voltage leak) when the current
does not persist, CubaLIF when it does, with `r` and `w_in` set so that the integer weights,
thresholds and biases appear unchanged. Weights are `mantissa * 2^shift`; a layer's bias
becomes the synapse's bias (LIF, IF) or `v_leak` (CubaLIF). NIR has no primitive for graded
relays, NI-LIF, sigma-delta, accumulator or host layers: the export stops before the first one
and names them in one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.ir.graph import LIF, Input, Synapse, pair
from neuro_deploy.netx_io import NetworkFile

NIR_LACKS = {"relay": "graded relay", "nilif": "NI-LIF", "sigma_delta": "sigma-delta", "accumulate": "accumulator",
             "mul": "host product", "mda_gate": "host gate", "substep_gate": "host gate", "refinement": "host op"}


@dataclass
class Export:
    graph: object  # nir.NIRGraph
    layers: int  # neuron layers exported
    left_out: list[str] = field(default_factory=list)  # one phrase per kind of layer NIR lacks


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


def export_nir(net: NetworkFile, dt: float = 1e-4) -> Export:
    """The NIR graph of the network's spiking chain, from its input to the first layer NIR lacks."""
    import nir

    q, graph = net.quantized, net.quantized.graph
    order = [n for n in graph.topological() if n in q.layers]
    source = order[0]
    if not isinstance(graph.nodes[source], Input):
        raise NeuroDeployError(f"{net.path}: the first layer is not the input")
    shapes = net.meta.get("shapes", {})
    in_shape = tuple(shapes.get(source, graph.nodes[source].shape))
    nodes: dict[str, object] = {"input": nir.Input(input_type={"input": np.array(in_shape)})}
    edges: list[tuple[str, str]] = []
    previous, previous_shape, last, last_shape, exported = "input", graph.nodes[source].shape, source, in_shape, 0
    lacking: dict[str, list[str]] = {}
    for name in order[1:]:
        node = graph.nodes[name]
        if not isinstance(node, LIF):
            lacking.setdefault(NIR_LACKS.get(node.kind, node.kind), []).append(name)
            continue
        if lacking:
            continue
        ins = graph.inputs(name)
        p = q.layers[name].params
        bias = _bias(p, node.shape)
        feeds = graph.inputs(ins[0]) if ins and isinstance(graph.nodes[ins[0]], Synapse) else ins
        if len(ins) != 1 or feeds != [last]:
            lacking.setdefault("layer with several inputs or a skip connection", []).append(name)
            continue
        ops: list[tuple[str, object]] = []
        key = name.replace("/", ".")  # HDF5 would read a "/" in a node name as a group
        if isinstance(graph.nodes[ins[0]], Synapse):
            syn = graph.nodes[ins[0]]
            qs = q.synapses[syn.name]
            if syn.upsample != 1 or syn.offset != 0 or syn.width not in (0, syn.weight.shape[0]) or syn.delay:
                lacking.setdefault("upsampling or placed synapse", []).append(name)
                continue
            weight = qs.mantissa.astype(np.float64) * 2.0 ** qs.shift
            i_decay = p.du + 1
            synapse_bias = bias if i_decay >= 4096 else np.zeros(node.shape)
            ops = _synapse_nodes(key, syn, weight, tuple(previous_shape), synapse_bias)
        elif np.any(bias) and p.du + 1 >= 4096:
            raise NeuroDeployError(f"layer {name}: a biased neuron fed straight by the input has no NIR form "
                                   "without a synapse to carry the bias")
        _scaled(ops, dt)
        out_shape = tuple(shapes.get(name, node.shape))
        ops.append((key, _neuron(name, p, out_shape, bias.reshape(out_shape), dt)))
        for op_name, op in ops:
            nodes[op_name] = op
            edges.append((previous, op_name))
            previous = op_name
        previous_shape, last, last_shape, exported = node.shape, name, out_shape, exported + 1
    if not exported:
        kinds = ", ".join(f"{k} ({len(v)})" for k, v in lacking.items())
        raise NeuroDeployError(f"{net.path}: nothing to export: NIR has no primitive for its first layers ({kinds})")
    nodes["output"] = nir.Output(output_type={"output": np.array(last_shape)})
    edges.append((previous, "output"))
    result = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt, "producer": "neuro-deploy export"},
                          type_check=False)
    left = [f"{len(v)} {k} layer{'s' if len(v) > 1 else ''} ({v[0]}{', ...' if len(v) > 1 else ''})"
            for k, v in lacking.items()]
    return Export(result, exported, left)


def write_nir(graph, path: str | Path) -> None:
    """`nir.write` to a temporary name, renamed on success."""
    import nir

    from neuro_deploy.atomic import atomic_path

    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)
