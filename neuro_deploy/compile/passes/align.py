"""Latency alignment: when every layer runs, and the axonal delays that make paths meet in step.

Each synapse hop costs one step (Lava's synapses deliver the previous step's sum). A layer
starts when its latest input arrives; every earlier input is delayed to arrive then too,
so the deployed network computes the PyTorch function, shifted by a known latency.
Host gates that pool over the whole window emit their first step only once they have
seen the last one, and an `Accumulate` emits once, at the end of its window.
"""

from __future__ import annotations

from neuro_deploy.ir.graph import Accumulate, Graph, Input, MDAGate, Output, SubstepGate, Synapse

WINDOWED = (MDAGate, SubstepGate)  # need all steps of their window before emitting any


def align(graph: Graph) -> int:
    """Fill `start`/`emit` of every node and `delay` of every synapse; return the output step."""
    incoming: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        incoming[e.dst].append(e.src)
    for name in graph.topological():
        node = graph.nodes[name]
        srcs = [graph.nodes[s] for s in incoming[name]]
        if isinstance(node, Input):
            node.start = node.emit = 0
            continue
        if isinstance(node, Synapse):
            (src,) = srcs
            node.start = src.emit
            node.emit = src.emit + 1 + node.delay  # provisional: delay fixed by the consumer below
            continue
        if isinstance(node, Output):
            node.start = node.emit = srcs[0].emit
            continue
        node.start = max(s.emit for s in srcs)
        for syn in srcs:  # delay every early arrival to the layer's start
            syn.delay += node.start - syn.emit
            syn.emit = node.start
        window = max(s.steps for s in srcs)
        if isinstance(node, WINDOWED):
            node.emit = node.start + window - 1
        elif isinstance(node, Accumulate):
            node.emit = node.start + window - 1
        else:
            node.emit = node.start
    return graph.nodes[graph.output()].emit
