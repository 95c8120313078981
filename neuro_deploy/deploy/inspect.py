"""A table of a network file's layers: ours (with the extension) or any plain netx file, both read
into the same graph IR."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from neuro_deploy.counting.counts import synapse_fanout
from neuro_deploy.formats.netx import placement, read_network
from neuro_deploy.ir.graph import Synapse
from neuro_deploy.loihi.limits import (accumulator_limit, check, neuron_class, synapse_class, weight_bits,
                                      worst_case_sum)

COLUMNS = ("index", "name", "type", "placement", "shape", "neurons", "synapses", "weight_bits", "weight_exp", "delay",
           "worst_sum", "lava", "violations")


def describe(path: str | Path, skip: tuple[str, ...] = (),
             on_layer: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """One row per layer (`skip`: a plain netx file's trailing layer types to leave out);
    `on_layer(done, total)` hears each row (seconds for a release-size network). `worst_sum`: the
    largest worst-case sum of the layer's synapses over their accumulator's limit (above 1: some
    input overflows it, though calibration did not)."""
    net = read_network(path, skip)
    q = net.quantized
    graph = q.graph
    violations = check(q)
    shapes = net.meta.get("shapes", {})
    rows = []
    order = [n for n in graph.topological() if n in q.layers]
    for i, name in enumerate(order):
        if on_layer is not None:
            on_layer(i, len(order))
        node = graph.nodes[name]
        syns = [graph.nodes[s] for s in graph.inputs(name) if isinstance(graph.nodes[s], Synapse)]
        count = sum(int(synapse_fanout(s, q.synapses[s.name].mantissa, graph.nodes[graph.inputs(s.name)[0]].shape).sum())
                    for s in syns)
        delays = [int(s.delays.max()) if s.delays is not None else s.delay for s in syns]
        rows.append({"index": i, "name": name, "type": node.kind, "placement": placement(node),
                     "shape": list(shapes.get(name, node.shape)), "neurons": int(np.prod(node.shape)),
                     "synapses": count, "weight_bits": weight_bits([q.synapses[s.name].mantissa for s in syns]),
                     "weight_exp": sorted({q.synapses[s.name].exp for s in syns}),
                     "delay": max(delays, default=0),
                     "worst_sum": max((round(worst_case_sum(q, s.name) / accumulator_limit(s).high, 2) for s in syns),
                                      default=None),
                     "lava": [neuron_class(node, q.layers[name].params), *sorted(synapse_class(s) for s in syns)],
                     "violations": [str(v) for v in violations if v.where in {name, *(s.name for s in syns)}
                                    or (i == 0 and v.where not in graph.nodes)]})  # network-wide: first row
    return rows
