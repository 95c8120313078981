"""Step-by-step execution of one layer, as a neurocore (or host process) runs it.

A `LayerStepper` owns a layer's incoming synapses (with their axonal delays) and its
neuron state; `step(s, inputs)` takes the source payloads sent at step `s - 1` and
returns the layer's payload at step `s`. The Lava back end wraps one stepper per layer in
a Lava process; `run_stepwise` drives them without Lava. Both must reproduce the fast
back end's windows at the steps the alignment pass assigned.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from neuro_deploy.ir.graph import LIF, NILIF, Accumulate, Input, MDAGate, Relay, SubstepGate, Synapse
from neuro_deploy.passes.quantize import Quantized
from neuro_deploy.sim import fixed

WINDOWED_HOST = (MDAGate, SubstepGate)


class LayerStepper:
    def __init__(self, q: Quantized, name: str, image: np.ndarray | None = None) -> None:
        """`image`: `(C, H, W)` repeated over the input window, or `(T, C, H, W)` frames."""
        self.q, self.name = q, name
        self.node = q.graph.nodes[name]
        self.layer = q.layers[name]
        self.apply = fixed.FixedPoint(q)
        g = q.graph
        self.synapses = [g.nodes[s] for s in g.inputs(name) if isinstance(g.nodes[s], Synapse)]
        self.sources = [g.inputs(s.name)[0] for s in self.synapses]
        self.ports = [next(e.port for e in g.edges if e.src == s.name) for s in self.synapses]
        self.lines = [deque([None] * s.delay) for s in self.synapses]  # axonal delay lines
        self.image = None if image is None else (image[None] if image.ndim == 3 else image[:, None])
        self.window = max((g.nodes[src].steps for src in self.sources), default=self.node.steps)
        self.state: dict[str, torch.Tensor] = {}
        self.held: list[torch.Tensor] = []

    # -- helpers --------------------------------------------------------------------------------

    def _zeros(self) -> torch.Tensor:
        return torch.zeros((1, *self.node.shape), dtype=torch.int64)

    def _delivered(self, inputs: list[np.ndarray]) -> list[torch.Tensor | None]:
        """Synapse outputs for this step: each input after its delay line, through its synapse."""
        out = []
        for syn, line, x in zip(self.synapses, self.lines, inputs):
            line.append(x)
            x = line.popleft()
            if x is None or not np.any(x):
                out.append(None)
                continue
            qs = self.q.synapses[syn.name]
            v = torch.from_numpy(np.asarray(x, np.int64)).reshape(1, 1, *self.q.graph.nodes[
                self.q.graph.inputs(syn.name)[0]].shape)
            out.append(fixed.synapse(syn, qs.mantissa, qs.shift, v)[0])
        return out

    def _port_sums(self, delivered: list[torch.Tensor | None], n_ports: int) -> list[torch.Tensor]:
        sums = [torch.zeros((1, *self.synapses[0].shape), dtype=torch.int64) for _ in range(n_ports)]
        for port, v in zip(self.ports, delivered):
            if v is not None:
                sums[port] = sums[port] + v
        return sums

    # -- one step -------------------------------------------------------------------------------

    def step(self, s: int, inputs: list[np.ndarray]) -> np.ndarray:
        node = self.node
        if isinstance(node, Input):
            active = 0 <= s < node.repeat
            return (self.apply(node, [], torch.from_numpy(self.image))[s] if active else self._zeros())[0].numpy()
        n_ports = max(self.ports, default=0) + 1
        x = self._port_sums(self._delivered(inputs), n_ports)
        k = s - node.start  # index inside the input window
        inside = 0 <= k < self.window
        if isinstance(node, LIF):  # Lava's LIF runs every step; zero input outside its window
            return self._lif(x[0])
        if isinstance(node, NILIF):
            return self._nilif(x[0], k) if inside else self._zeros()[0].numpy()
        if isinstance(node, Relay):
            return self.apply(node, [v[None] for v in x], None)[0, 0].numpy() if inside else self._zeros()[0].numpy()
        if isinstance(node, Accumulate):
            if inside:
                self.held.append(x[0])
            if k == self.window - 1:
                return self.apply(node, [torch.stack(self.held).sum(0, keepdim=True)], None)[0, 0].numpy()
            return self._zeros()[0].numpy()
        if isinstance(node, WINDOWED_HOST):  # needs the whole window, then emits one step at a time
            if inside:
                self.held.append(x[0])
            if k == self.window - 1:
                self.state["out"] = self.apply(node, [torch.stack(self.held)], None)
            j = s - node.emit
            return self.state["out"][j, 0].numpy() if "out" in self.state and 0 <= j < node.steps \
                else self._zeros()[0].numpy()
        if inside:  # causal host op (product, refinement)
            return self.apply(node, [v[None] for v in x], None)[0, 0].numpy()
        return self._zeros()[0].numpy()

    def _lif(self, a_in: torch.Tensor) -> np.ndarray:
        p = self.layer.params
        u = self.state.get("u", torch.zeros_like(a_in))
        v = self.state.get("v", torch.zeros_like(a_in))
        self.state["u"], self.state["v"], spike = fixed.lif_step(u, v, a_in, p["vth"], p["du"], p["dv"])
        return spike[0].numpy()

    def _nilif(self, x: torch.Tensor, k: int) -> np.ndarray:
        """The NI-LIF program for one step: its r^2 sub-steps, state carried across steps."""
        p, r = self.layer.params, self.node.r
        if k == 0:
            self.state = {"u": None, "q": None}
        sub = fixed.patches_to_time(x[None], r)  # [r^2, 1, C, h, w]
        u, q = self.state["u"], self.state["q"]
        u = torch.zeros_like(sub[0]) if u is None else u
        q = torch.zeros_like(sub[0]) if q is None else q
        levels = []
        for x_k in sub:
            u = torch.div(u - q * (p["unit"] // p["levels"]), 1 << p["decay_shift"], rounding_mode="floor") + x_k
            c = u.clamp(0, p["levels"] * p["unit"])
            base, rem = torch.div(c, p["unit"], rounding_mode="floor"), c % p["unit"]
            q = base + ((rem > p["unit"] // 2) | ((rem == p["unit"] // 2) & (base % 2 == 1))).long()
            levels.append(q)
        self.state["u"], self.state["q"] = u, q
        return fixed.time_to_channels(torch.stack(levels), r)[0, 0].numpy()


def run_stepwise(q: Quantized, image: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """Every layer's payload at every step `[steps, C, H, W]`, for one `(C,H,W)` image or `(T,C,H,W)` frames."""
    order = [n for n in q.graph.topological() if n in q.layers]
    steppers = {n: LayerStepper(q, n, image) for n in order}
    events = {n: np.zeros((steps, *q.graph.nodes[n].shape), np.int64) for n in order}
    previous = {n: np.zeros(q.graph.nodes[n].shape, np.int64) for n in order}
    for s in range(steps):
        current = {}
        for n in order:
            current[n] = steppers[n].step(s, [previous[src] for src in steppers[n].sources])
            events[n][s] = current[n]
        previous = current
    return events
