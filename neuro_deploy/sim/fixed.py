"""The fast back end: the quantized network's integer semantics, vectorized with torch.

Each layer is computed over its whole window at once; the alignment pass says at which
Lava step each window begins, so these values are the per-step events a step-by-step
simulator (Lava) produces, shifted by known offsets. Integer sums of products are
computed in float64, exact because they stay below 2^53.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neuro_deploy.ir.execute import Recorder, apply_float, execute
from neuro_deploy.ir.graph import LIF, NILIF, Accumulate, Input, Node, Output, Relay, Synapse
from neuro_deploy.ir.quantized import INPUT_SCALE, QLayer, Quantized
from neuro_deploy.target import LIMITS, accumulator_limit
from neuro_deploy.zoo.neurons import patches_to_time, time_to_channels

WRAP = 2**24
HALF = 2**23
PAYLOAD_LIMIT = LIMITS["graded_payload"].high


class Probe:
    """Calibration peaks seen during a run: per synapse |sum| before its shift, per layer
    |summed input| and |state|."""

    def __init__(self) -> None:
        self.acc: dict[str, float] = {}
        self.inputs: dict[str, float] = {}
        self.states: dict[str, float] = {}

    @staticmethod
    def update(table: dict[str, float], name: str, x: torch.Tensor) -> None:
        """Raise `table[name]` to the largest |x|."""
        if x.numel():
            table[name] = max(table.get(name, 0.0), float(x.abs().max()))


def wrap(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's-complement wrap to `bits` signed bits."""
    half = 1 << (bits - 1)
    return torch.remainder(x + half, 2 * half) - half


def upsample2x_int(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 (align_corners False) of integer maps `[N, C, H, W]`, times 16, exactly."""
    def axis(v: torch.Tensor, dim: int) -> torch.Tensor:
        n = v.shape[dim]
        prev = v.index_select(dim, torch.clamp(torch.arange(n) - 1, min=0))
        nxt = v.index_select(dim, torch.clamp(torch.arange(n) + 1, max=n - 1))
        even, odd = 3 * v + prev, 3 * v + nxt  # output 2k: 3/4 x[k] + 1/4 x[k-1]; 2k+1: with x[k+1]
        return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)

    return axis(axis(x, 2), 3)


def shift(x: torch.Tensor, s: int) -> torch.Tensor:
    """`x * 2^s` for integers: left shift, or floor right shift (Lava's weight_exp)."""
    return x * (1 << s) if s >= 0 else torch.div(x, 1 << -s, rounding_mode="floor")


def synapse(node: Synapse, mantissa: np.ndarray, s: int, x: torch.Tensor, probe: Probe | None = None
            ) -> torch.Tensor:
    """What the synapse's Lava process delivers: the exact sum, wrapped to its accumulator
    (Conv: 24 bits, Sparse: int32), then shifted by `s` (weight_exp)."""
    steps, batch = x.shape[:2]
    v = x.flatten(0, 1)
    if node.upsample > 1:
        v = upsample2x_int(v)
    w = torch.from_numpy(mantissa.astype(np.float64))
    acc = F.conv2d(v.double(), w, None, node.stride, node.padding).round().long()
    if probe is not None:
        Probe.update(probe.acc, node.name, acc)
    acc = shift(wrap(acc, accumulator_limit(node).high.bit_length() + 1), s)
    if acc.shape[1] != node.width:
        placed = acc.new_zeros(acc.shape[0], node.width, *acc.shape[2:])
        placed[:, node.offset:node.offset + acc.shape[1]] = acc
        acc = placed
    return acc.reshape(steps, batch, *acc.shape[1:])


def lif_step(u: torch.Tensor, v: torch.Tensor, a_in: torch.Tensor, vth: int, du: int, dv: int,
             bias: torch.Tensor | int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of Lava's bit-accurate CUBA-LIF (lava/proc/lif/models.py); returns (u, v, spikes).

    `bias` is the effective bias (bias_mant << bias_exp). The current wraps into (-2^23, 2^23],
    the voltage saturates, the threshold is `vth << 6` (strict), spiking neurons reset to 0.
    """
    u = torch.div(u * (4096 - (du + 1)), 4096, rounding_mode="trunc") + (a_in << 6)
    u = torch.where(u > HALF, u - WRAP, torch.where(u <= -HALF, u + WRAP, u))
    v = (torch.div(v * (4096 - dv), 4096, rounding_mode="trunc") + u + bias).clamp(-(HALF - 1), HALF - 1)
    s = v > (vth << 6)
    return u, torch.where(s, torch.zeros_like(v), v), s.long()


def lif(x: torch.Tensor, vth: int, du: int, dv: int, peak: list[float] | None = None) -> torch.Tensor:
    """Lava's CUBA-LIF over the window, no bias; `peak[0]` collects a bound on |v| (|u| before its
    24-bit wrap plus |v| of the previous step: what the voltage update adds before it saturates)."""
    u = torch.zeros_like(x[0])
    v = torch.zeros_like(x[0])
    spikes = []
    for a_in in x:
        if peak is not None:
            bound = v.abs() + (torch.div(u * (4096 - (du + 1)), 4096, rounding_mode="trunc") + (a_in << 6)).abs()
            peak[0] = max(peak[0], float(bound.max()))
        u, v, s = lif_step(u, v, a_in, vth, du, dv)
        spikes.append(s)
    return torch.stack(spikes)


def nilif(x: torch.Tensor, r: int, unit: int, decay_shift: int, levels: int, peak: list[float] | None = None
          ) -> torch.Tensor:
    """NI-LIF neuron program: sub-pixels as sub-steps, graded levels 0..levels (round half to even)."""
    steps = patches_to_time(x, r)
    u = torch.zeros_like(steps[0])
    q = torch.zeros_like(steps[0])
    out = []
    for x_k in steps:
        u = torch.div(u - q * (unit // levels), 1 << decay_shift, rounding_mode="floor") + x_k
        if peak is not None:
            peak[0] = max(peak[0], float(u.abs().max()))
        c = u.clamp(0, levels * unit)
        base, rem = torch.div(c, unit, rounding_mode="floor"), c % unit
        q = base + ((rem > unit // 2) | ((rem == unit // 2) & (base % 2 == 1))).long()
        out.append(q)
    return time_to_channels(torch.stack(out), r)


class FixedPoint:
    """`apply` for `execute`: the integer semantics of each layer kind."""

    def __init__(self, q: Quantized, probe: Probe | None = None) -> None:
        self.q = q
        self.probe = probe

    def __call__(self, node: Node, ins: list[torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        if isinstance(node, Input):  # one image repeated, or `[T, B, C, H, W]` frames
            frames = image if image.dim() == 5 else image.unsqueeze(0).repeat(node.repeat, 1, 1, 1, 1)
            return torch.round(frames.double().clamp(0, 1) * INPUT_SCALE).long()
        if isinstance(node, Synapse):
            qs = self.q.synapses[node.name]
            return synapse(node, qs.mantissa, qs.shift, ins[0], self.probe)
        if isinstance(node, Output):
            return ins[0]
        peak = None if self.probe is None else [0.0]
        if self.probe is not None:
            for x in ins:
                Probe.update(self.probe.inputs, node.name, x)
        out = self._neuron(node, ins, image, self.q.layers[node.name], peak)
        if peak is not None:
            self.probe.states[node.name] = max(self.probe.states.get(node.name, 0.0), peak[0])
        return out

    def _neuron(self, node: Node, ins: list[torch.Tensor], image: torch.Tensor, ql: QLayer,
                peak: list[float] | None) -> torch.Tensor:
        p = ql.params
        if isinstance(node, LIF):
            return lif(ins[0], p.vth, p.du, p.dv, peak)
        if isinstance(node, NILIF):
            return nilif(ins[0], node.r, p.unit, p.decay_shift, p.levels, peak)
        if isinstance(node, (Relay, Accumulate)):
            out = ins[0]
            if p.programmed or isinstance(node, Accumulate):  # a neuron program saturates; GradedVec does not
                bias = np.zeros(1, np.int64) if p.bias is None else p.bias
                out = (out + torch.from_numpy(bias)[:, None, None]).clamp(-PAYLOAD_LIMIT, PAYLOAD_LIMIT)
            if peak is not None:
                peak[0] = float(out.abs().max()) if out.numel() else 0.0
            out = shift(out, -p.shift)  # the payload: the state's top bits
            return out.clamp(min=0) if p.relu else out
        # host op: decode the ports, compute in float64, encode the result
        real = apply_float(node, [v.double() / ql.state_scale for v in ins], image)
        encoded = torch.round(real * ql.scale)
        if peak is not None:
            peak[0] = float(encoded.abs().max()) if encoded.numel() else 0.0
        return encoded.clamp(-PAYLOAD_LIMIT, PAYLOAD_LIMIT).long()


def run_fixed(q: Quantized, image: torch.Tensor, record: Recorder | None = None, probe: Probe | None = None
              ) -> torch.Tensor:
    """Integer run of the quantized network on `[B, C, H, W]` images; returns the decoded output."""
    out = execute(q.graph, image, record, apply=FixedPoint(q, probe))
    source = q.graph.inputs(q.graph.output())[0]
    return out.double() / q.layers[source].scale
