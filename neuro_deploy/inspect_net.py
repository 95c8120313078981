"""A table of a network file's layers: ours (with the extension) or any plain netx file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.ir.graph import Synapse
from neuro_deploy.netx_io import open_hdf5, placement, read_network
from neuro_deploy.target import neuron_process, synapse_process

COLUMNS = ("index", "name", "type", "placement", "shape", "neurons", "synapses", "weight_bits", "weight_exp", "delay",
           "lava", "violations")


def connections(weight_nonzero: np.ndarray, in_shape: tuple[int, int, int], stride: int, padding: int) -> int:
    """Synaptic connections of a conv, exact at the padded borders."""
    ones = torch.ones(1, *in_shape, dtype=torch.float64)
    mask = torch.from_numpy(weight_nonzero.astype(np.float64))
    return int(F.conv2d(ones, mask, stride=stride, padding=padding).sum())


def _describe_extension(path: str) -> list[dict[str, Any]]:
    net = read_network(path)
    q = net.quantized
    graph = q.graph
    rows = []
    order = [n for n in graph.topological() if n in q.layers]
    for i, name in enumerate(order):
        node = graph.nodes[name]
        syns = [graph.nodes[s] for s in graph.inputs(name) if isinstance(graph.nodes[s], Synapse)]
        count = 0
        for s in syns:
            src = graph.nodes[graph.inputs(s.name)[0]]
            c, h, w = src.shape
            count += connections(q.synapses[s.name].mantissa != 0, (c, h * s.upsample, w * s.upsample),
                                 s.stride, s.padding)
        rows.append({"index": i, "name": name, "type": node.kind, "placement": placement(node),
                     "shape": list(node.shape), "neurons": int(np.prod(node.shape)), "synapses": count,
                     "weight_bits": 8 if syns else None,
                     "weight_exp": sorted({q.synapses[s.name].exp for s in syns}),
                     "delay": max((s.delay for s in syns), default=0),
                     "lava": [neuron_process(node, q.layers[name].params), *sorted(synapse_process(s) for s in syns)],
                     "violations": [v for v in net.meta.get("violations", [])
                                    if v.split(":")[0] in {name, *(s.name for s in syns)}]})
    return rows


def _describe_netx(path: str) -> list[dict[str, Any]]:
    rows = []
    with open_hdf5(path) as f:
        if "layer" not in f:
            raise NeuroDeployError(f"{path}: /layer is missing: not a netx network description")
        prev_shape = None
        for i in range(len(f["layer"])):
            key = str(i)
            if key not in f["layer"]:
                raise NeuroDeployError(f"{path}: /layer/{key} is missing")
            g = f["layer"][key]
            for required in ("type", "shape"):
                if required not in g:
                    raise NeuroDeployError(f"{path}: /layer/{key}/{required} is missing")
            kind = g["type"][0] if g["type"].shape else g["type"][()]
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            shape = [int(v) for v in np.atleast_1d(g["shape"][()])]
            weight = g["weight"][()] if "weight" in g and kind != "input" else None
            synapses, bits = 0, None
            if weight is not None:
                weight = np.asarray(weight)
                bits = int(np.ceil(np.log2(np.abs(weight).max() + 1))) + 1 if weight.size else None
                if kind == "conv" and prev_shape is not None:
                    w4 = weight.reshape(weight.shape[:4])
                    stride = int(np.atleast_1d(g["stride"][()])[0]) if "stride" in g else 1
                    padding = int(np.atleast_1d(g["padding"][()])[0]) if "padding" in g else 0
                    synapses = connections(w4 != 0, tuple(prev_shape[-3:]) if len(prev_shape) == 3
                                           else (1, 1, prev_shape[0]), stride, padding)
                else:
                    synapses = int(np.count_nonzero(weight))
            exp = int(g["neuron"]["wgtExp"][()]) if "neuron" in g and "wgtExp" in g["neuron"] else 0
            delay = int(np.max(g["delay"][()])) if "delay" in g else 0
            rows.append({"index": i, "name": f"layer/{i}", "type": kind, "placement": "io" if kind == "input"
                         else "neurocore", "shape": shape, "neurons": int(np.prod(shape)), "synapses": synapses,
                         "weight_bits": bits, "weight_exp": [exp] if weight is not None else [], "delay": delay,
                         "lava": _netx_processes(g, kind), "violations": []})
            prev_shape = shape
    return rows


def _netx_processes(g, kind: str) -> list[str]:
    """The Lava processes netx builds for a layer (docs/lava-facts.md 1.2-1.3)."""
    if (kind != "conv" and not kind.startswith("dense") and kind != "input") or (kind == "input" and "neuron" not in g):
        return []  # flatten, an input without a neuron, or a type netx cannot build
    neuron = g["neuron"]["type"][()] if "neuron" in g and "type" in g["neuron"] else b"CUBA"
    neuron = neuron.decode() if isinstance(neuron, bytes) else str(neuron)
    if neuron == "SDNN":  # hdf5.py get_neuron_params: Delta at the input, Sigma when asked, else SigmaDelta
        out = ["Delta" if kind == "input" else "Sigma" if "sigma_output" in g["neuron"] else "SigmaDelta"]
    else:
        out = ["LIF"]
    if kind == "conv":
        out.append("Conv")
    elif kind.startswith("dense"):
        out.append("DelayDense" if "delay" in g else "Dense")
    return out


def describe(path: str | Path) -> list[dict[str, Any]]:
    with open_hdf5(path) as f:
        extended = "neuro_deploy" in f
    return _describe_extension(str(path)) if extended else _describe_netx(str(path))
