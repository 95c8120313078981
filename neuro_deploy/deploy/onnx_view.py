"""An ONNX view of a network file for netron: one node per layer, the numbers as node attributes.

Every edge carries its tensor shape `[1, C, H, W]` (netron prints it on the edge). A layer's node
holds its placement, neuron parameters and scale, and every attribute of each synapse into it as
one list entry per synapse: stride, padding, upsampling, dilation, groups, delay, kernel and
weight shape, exponent and shift, and its channel placement (which channels of the layer it
writes). With an energy report (`energy --json-out`, `simulate --energy`), each layer's node also
shows its spikes, firing rate, synaptic ops, MACs and energy per profile; with a Loihi 2 plan
(`view --plan`), its cores, block, first core and the chips they sit on, and the graph's
description the totals.

Works for converted files and plain netx files alike (both are read into the graph IR). Ops live
in the `ai.neuro_deploy` domain: the model is a picture of the deployment, not something to run
with an ONNX runtime.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

from neuro_deploy.common.atomic import atomic_path, check_inputs
from neuro_deploy.common.jsonfile import read_json
from neuro_deploy.deploy.plan import Plan, plan_network
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import placement, read_network
from neuro_deploy.ir.graph import Synapse
from neuro_deploy.loihi.budgets import CORES_PER_CHIP

DOMAIN = "ai.neuro_deploy"
#: synapse fields shown elsewhere (weight as its shape and kernel) or not one value per synapse.
_SYNAPSE_SKIP = ("name", "module", "weight", "delays", "shape")


def _attribute_value(value: Any) -> Any:
    """A value ONNX can hold as an attribute: numbers, strings, or flat lists of one type."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return _attribute_value(value.ravel().tolist()) if value.size <= 64 else f"array{list(value.shape)}"
    if isinstance(value, (tuple, list)):
        if all(isinstance(v, (int, np.integer, bool)) for v in value):
            return [int(v) for v in value]
        if all(isinstance(v, (int, float, np.number)) for v in value):
            return [float(v) for v in value]
        return [_text(v) for v in value]
    return value


def _text(value: Any) -> str:
    """One synapse's value in a per-synapse list of mixed kinds (a `(H, W)` pair prints as `2x2`)."""
    if isinstance(value, (tuple, list)):
        return "x".join(str(_attribute_value(v)) for v in value)
    return str(_attribute_value(value))


def _per_synapse(values: list[Any]) -> Any:
    """One list entry per synapse: numbers when every synapse has a number, else text."""
    values = [_attribute_value(v) for v in values]
    if all(isinstance(v, int) for v in values) or all(isinstance(v, (int, float)) for v in values):
        return values
    return [_text(v) for v in values]


def synapse_attributes(syns: list[Synapse], sources: list[str], quant: dict[str, Any]) -> dict[str, Any]:
    """Every attribute of the synapses into one layer, `synapse_<field>` -> one entry per synapse."""
    attrs: dict[str, Any] = {"synapse_sources": sources}
    fields = [f.name for f in dataclasses.fields(Synapse) if f.name not in _SYNAPSE_SKIP]
    for name in fields:
        attrs[f"synapse_{name}"] = _per_synapse([getattr(s, name) for s in syns])
    attrs["synapse_kernel"] = [_text(tuple(s.weight.shape[2:])) for s in syns]
    attrs["synapse_weight_shape"] = [_text(tuple(s.weight.shape)) for s in syns]
    attrs["synapse_channels"] = [f"{s.offset}..{s.offset + s.weight.shape[0] - 1} of {s.width or s.weight.shape[0]}"
                                 for s in syns]
    for key, label in (("exp", "weight_exp"), ("shift", "weight_shift"), ("clipped", "clipped"),
                       ("error", "weight_error"), ("acc_peak", "acc_peak")):
        attrs[f"synapse_{label}"] = _per_synapse([getattr(quant[s.name], key) for s in syns])
    return attrs


def read_energy(report_path: str | Path) -> dict[str, dict[str, Any]]:
    """Per layer name: the numbers of an energy report worth showing on its node."""
    path = Path(report_path)
    check_inputs([path])
    try:
        report = read_json(path)
        layers = report["layers"]
        return {str(r["name"]): {
            "energy_spikes": int(r["spikes_out"]),
            "energy_firing_rate": float(r["firing_rate"]),
            "energy_synops": int(r["synops"]),
            "energy_macs": int(r["macs"]),
            "energy_neuron_updates": int(r["neuron_updates"]),
            **{f"energy_pj_{profile}": float(pj) for profile, pj in r["energy_pj"].items()},
        } for r in layers}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise NeuroDeployError(f"{path} is not an energy report (energy --json-out): "
                               f"{type(exc).__name__} {exc}") from None


def plan_attributes(plan: Plan) -> dict[str, dict[str, Any]]:
    """Per layer name: its part of the Loihi 2 plan (cores, block, first core, chips), for its node."""
    per_chip = int(CORES_PER_CHIP.value)

    def chips(first: int, last: int) -> str:
        a, b = first // per_chip, last // per_chip
        return f"{a} of {plan.chips}" if a == b else f"{a}..{b} of {plan.chips}"

    return {lp.name: {"plan_placement": lp.placement, "plan_cores": lp.cores, "plan_block": lp.block_label,
                      **({"plan_first_core": lp.first_core,
                          "plan_chips": chips(lp.first_core, lp.first_core + lp.cores - 1)} if lp.cores else {})}
            for lp in plan.layers}


def plan_summary(plan: Plan) -> str:
    return (f"Loihi 2 plan: {plan.cores:,} cores on {plan.chips} chip(s) of {int(CORES_PER_CHIP.value)}; "
            f"{plan.board} ({plan.chips_available} chip(s)) {'fits' if plan.fits else 'does not fit'}")


def _check_report_layers(reported: set[str], layers: set[str], path: str | Path) -> None:
    """An energy report belongs to a network only if it names exactly its layers: two networks of
    the zoo share names such as `input` and `patch_embed.proj`, so one shared name proves nothing."""
    if reported == layers:
        return
    foreign, missing = sorted(reported - layers), sorted(layers - reported)
    parts = []
    if foreign:
        parts.append(f"{len(foreign)} of its {len(reported)} layers are not in the network (e.g. {foreign[0]})")
    if missing:
        parts.append(f"it lacks {len(missing)} of the network's {len(layers)} (e.g. {missing[0]})")
    raise NeuroDeployError(f"the energy report is another network's, not {path}'s: {'; '.join(parts)}")


def build_model(path: str | Path, energy: dict[str, dict[str, Any]] | None = None,
                on_layer: Callable[[int, int], None] | None = None, with_plan: bool = False) -> onnx.ModelProto:
    """The ONNX picture of the network file at `path`, with `energy` (from `read_energy`) on its nodes
    and, `with_plan`, each layer's Loihi 2 cores and chips; `on_layer(done, total)` hears each node
    (seconds for a release-size network)."""
    net = read_network(path)
    q, graph = net.quantized, net.quantized.graph
    plan = plan_network(net) if with_plan else None
    planned = plan_attributes(plan) if plan is not None else {}
    order = [n for n in graph.topological() if n in q.layers]
    if energy is not None:
        _check_report_layers(set(energy), set(order), path)
    nodes, shapes = [], []
    for i, name in enumerate(order):
        if on_layer is not None:
            on_layer(i, len(order))
        node, layer = graph.nodes[name], q.layers[name]
        syns = [graph.nodes[s] for s in graph.inputs(name) if isinstance(graph.nodes[s], Synapse)]
        attrs = {"placement": placement(node), "module": node.module or "-", "shape": list(node.shape),
                 "start": node.start, "emit": node.emit, "scale": float(layer.scale),
                 "payload_bits": layer.payload_bits}
        params = dataclasses.asdict(layer.params) if layer.params is not None else {}
        attrs.update({f"neuron_{k}": _attribute_value(v) for k, v in params.items() if v is not None})
        inputs = [graph.inputs(s.name)[0] for s in syns]
        if syns:
            attrs.update(synapse_attributes(syns, inputs, q.synapses))
        attrs.update((energy or {}).get(name, {}))
        attrs.update(planned.get(name, {}))
        nodes.append(helper.make_node(node.kind.capitalize(), inputs, [name], name=name, domain=DOMAIN,
                                      **{k: v for k, v in attrs.items() if v is not None}))
        shapes.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, *node.shape]))
    first, last = graph.nodes[order[0]], graph.inputs(graph.output())[0]
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, *first.shape])
    nodes[0].input.append("image")
    out = helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, *graph.nodes[last].shape])
    model = helper.make_model(helper.make_graph(nodes, Path(path).stem, [inp], [out],
                                                value_info=[v for v in shapes if v.name != last],
                                                doc_string=plan_summary(plan) if plan is not None else None),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)],
                              producer_name=net.meta.get("producer", "neuro-deploy"))
    onnx.checker.check_model(model)
    return model


def check_port(port: int, host: str = "localhost") -> None:
    """netron binds its port only after the export (seconds to minutes for a large network), and
    then fails with an OSError: bind it once here first, so a port in use is refused before any work."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise NeuroDeployError(f"--port {port}: cannot serve on {host}:{port} "
                                   f"({exc.strerror or type(exc).__name__}); give another --port") from None


def export(path: str | Path, out: str | Path, energy_report: str | Path | None = None,
           on_layer: Callable[[int, int], None] | None = None, with_plan: bool = False) -> None:
    """Write the view of `path` to `out`, with the layers' numbers from `energy_report` when given
    and their Loihi 2 cores and chips `with_plan`."""
    model = build_model(path, read_energy(energy_report) if energy_report is not None else None, on_layer, with_plan)
    with atomic_path(out) as tmp:
        onnx.save(model, tmp)
