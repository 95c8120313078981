"""Legalization: rewrite synapses that no Loihi synapse can hold into stages that one can.

* Bilinear upsampling inside a synapse would need the conv weights multiplied by the
  bilinear coefficients: `split_upsampling` makes it a stage of its own (a fixed-weight
  Sparse synapse into a graded relay at the higher resolution), before the alignment so
  that the extra hop is timed like any other.
* Axonal delays stop at 62 steps: `split_delays`, after the alignment, routes a longer delay
  through identity relays, each taking up to 62 steps of it plus its own hop.
"""

from __future__ import annotations

import numpy as np

from neuro_deploy.ir.graph import Edge, Graph, Node, Relay, Synapse
from neuro_deploy.ir.shapes import infer_shapes
from neuro_deploy.loihi.limits import LIMITS

MAX_DELAY = LIMITS["delay"].high


def _stage(name: str, module: str, channels: int, upsample: int = 1, delay: int = 0) -> Synapse:
    return Synapse(name, module, weight=np.eye(channels).reshape(channels, channels, 1, 1), upsample=upsample,
                   width=channels, delay=delay, stage=True)


def _insert(graph: Graph, syn: Synapse, stage: Synapse, relay: Node) -> None:
    """`src -> stage -> relay -> syn` in place of `src -> syn`."""
    (edge,) = [e for e in graph.edges if e.dst == syn.name]
    graph.nodes[stage.name] = stage
    graph.nodes[relay.name] = relay
    graph.edges += [Edge(edge.src, stage.name, 0), Edge(stage.name, relay.name, 0)]
    edge.src = relay.name


def split_upsampling(graph: Graph) -> None:
    for syn in [n for n in graph.nodes.values() if isinstance(n, Synapse) and n.upsample > 1 and not n.stage]:
        src = graph.nodes[graph.inputs(syn.name)[0]]
        c = src.shape[0]
        _insert(graph, syn, _stage(f"{syn.name}.upsample", syn.module, c, upsample=syn.upsample),
                Relay(f"{syn.name}.upsampled", syn.module))
        syn.upsample = 1
    infer_shapes(graph)


def split_delays(graph: Graph) -> None:
    """Needs `align` first: keeps every arrival step, moves all but 62 steps of a delay into relays."""
    for syn in [n for n in graph.nodes.values() if isinstance(n, Synapse) and n.delay > MAX_DELAY]:
        src = graph.nodes[graph.inputs(syn.name)[0]]
        k = 0
        while syn.delay > MAX_DELAY:
            stage = _stage(f"{syn.name}.delay{k}", syn.module, src.shape[0], delay=MAX_DELAY)
            relay = Relay(f"{syn.name}.delayed{k}", syn.module)
            stage.shape, stage.steps = src.shape, src.steps
            relay.shape, relay.steps = src.shape, src.steps
            stage.start, stage.emit = src.emit, src.emit + 1 + MAX_DELAY
            relay.start = relay.emit = stage.emit
            _insert(graph, syn, stage, relay)
            syn.delay -= MAX_DELAY + 1
            syn.start = relay.emit
            src, k = relay, k + 1
