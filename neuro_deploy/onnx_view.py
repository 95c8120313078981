"""An ONNX view of a converted network for netron: one node per layer, its attributes as node attributes.

Ops live in the `ai.neuro_deploy` domain; the model is a picture of the deployment, not
something to execute with an ONNX runtime.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from neuro_deploy.atomic import atomic_path
from neuro_deploy.ir.graph import Synapse
from neuro_deploy.netx_io import placement, read_network

DOMAIN = "ai.neuro_deploy"


def _attribute_value(value):
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.ravel().tolist() if value.size <= 64 else f"array{list(value.shape)}"
    return value


def build_model(path: str | Path) -> onnx.ModelProto:
    net = read_network(path)
    q, graph = net.quantized, net.quantized.graph
    nodes, order = [], [n for n in graph.topological() if n in q.layers]
    for name in order:
        node, layer = graph.nodes[name], q.layers[name]
        syns = [graph.nodes[s] for s in graph.inputs(name) if isinstance(graph.nodes[s], Synapse)]
        attrs = {"placement": placement(node), "module": node.module or "-", "shape": list(node.shape),
                 "start": node.start, "emit": node.emit, "scale": float(layer.scale),
                 "payload_bits": layer.payload_bits}
        params = dataclasses.asdict(layer.params) if layer.params is not None else {}
        attrs.update({f"neuron_{k}": _attribute_value(v) for k, v in params.items() if v is not None})
        if syns:
            attrs.update({
                "synapse_sources": [graph.inputs(s.name)[0] for s in syns],
                "synapse_kernel": [int(s.weight.shape[-1]) for s in syns],
                "synapse_stride": [s.stride for s in syns],
                "synapse_upsample": [s.upsample for s in syns],
                "synapse_weight_exp": [int(q.synapses[s.name].exp) for s in syns],
                "synapse_delay": [s.delay for s in syns],
            })
        inputs = [graph.inputs(s.name)[0] for s in syns]
        nodes.append(helper.make_node(node.kind.capitalize(), inputs, [name], name=name, domain=DOMAIN, **attrs))
    first, last = graph.nodes[order[0]], graph.inputs(graph.output())[0]
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, *first.shape])
    nodes[0].input.append("image")
    out = helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, *graph.nodes[last].shape])
    model = helper.make_model(helper.make_graph(nodes, Path(path).stem, [inp], [out]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)],
                              producer_name=net.meta.get("producer", "neuro-deploy"))
    onnx.checker.check_model(model)
    return model


def export(path: str | Path, out: str | Path) -> None:
    model = build_model(path)
    with atomic_path(out) as tmp:
        onnx.save(model, tmp)
