"""Quantization of a lowered graph to Loihi fixed point, calibrated on sample images.

Integer semantics (shared by every back end, see docs/format.md):

* payloads: an `Input` sends 8-bit pixels (scale 255), a `LIF` binary spikes (scale 1),
  an `NILIF` graded levels 0..4 (scale 4), a `Relay`/`Accumulate`/host op graded
  payloads of at most 24 bits at a power-of-two scale;
* a synapse sums `mantissa * U(payload)` exactly (`U` = integer bilinear x2 times 16, or
  the identity), then shifts by `exp - u` (left, or floor right: Lava's `weight_exp`);
  the layer adds its synapses: `X = sum_i shift(conv(U(p_i), m_i), s_i)`;
* weights are even 8-bit mantissas in [-256, 254] times `2^exp`, one exponent per synapse.

Scales are chosen so that the calibration peak, with `headroom`, fits each layer's
24-bit state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from neuro_deploy.ir.execute import execute
from neuro_deploy.ir.graph import (
    LIF, NILIF, Accumulate, Graph, Input, Node, Output, Relay, Synapse,
)

STATE_BITS = 24
PAYLOAD_LIMIT = 2 ** (STATE_BITS - 1) - 1
LIF_INPUT_LIMIT = 2**16  # Lava LIF: v = v/2 + (X << 6) must stay inside 24 bits
WEIGHT_MIN, WEIGHT_MAX = -256, 254  # even 8-bit mantissas, as lava-dl writes them
UPSAMPLE_BITS = 4  # integer bilinear x2 multiplies by 16
INPUT_SCALE = 255.0  # 8-bit pixels


@dataclass
class QSynapse:
    mantissa: np.ndarray  # int16, even values in [WEIGHT_MIN, WEIGHT_MAX]
    exp: int  # weight = mantissa * 2^exp, in destination units per source unit
    shift: int  # applied to the integer sum: exp - UPSAMPLE_BITS for upsampling synapses
    clipped: float = 0.0  # fraction of weights at the mantissa limits
    error: float = 0.0  # relative RMS error of the quantized weights

    def real_weight(self) -> np.ndarray:
        return self.mantissa.astype(np.float64) * 2.0**self.exp


@dataclass
class QLayer:
    scale: float  # output payload units per real unit
    state_scale: float  # units of the summed synaptic input (and the neuron state) per real unit
    payload_bits: int  # signed width of the graded payload (1 for binary spikes)
    params: dict = field(default_factory=dict)  # kind-specific integer parameters
    peak: float = 0.0  # calibration peak of |state| in state units
    overflow: bool = False  # the peak (with headroom) does not fit the 24-bit state


@dataclass
class Quantized:
    graph: Graph
    layers: dict[str, QLayer]
    synapses: dict[str, QSynapse]
    headroom: float


def _pow2_below(x: float) -> float:
    return 2.0 ** math.floor(math.log2(x)) if x > 0 else 1.0


def _calibrate(graph: Graph, images: torch.Tensor) -> dict[str, tuple[float, float]]:
    """Per node: (bound on |summed synaptic input|, peak |output|) over the calibration images.

    The input bound sums the synapses' peaks, which is never below the peak of their sum.
    """
    outputs: dict[str, float] = {}
    inputs: dict[str, float] = {}
    consumer = {e.src: e.dst for e in graph.edges if isinstance(graph.nodes[e.src], Synapse)}

    def record(node: Node, out: torch.Tensor) -> None:
        outputs[node.name] = float(out.abs().max())
        if isinstance(node, Synapse):
            inputs[consumer[node.name]] = inputs.get(consumer[node.name], 0.0) + outputs[node.name]

    execute(graph, images.double(), record)
    return {n: (inputs.get(n, 0.0), peak) for n, peak in outputs.items()}


def quantize_weight(w: np.ndarray) -> QSynapse:
    """Even 8-bit mantissas with the finest exponent that holds the largest weight."""
    peak = float(np.abs(w).max())
    exp = math.ceil(math.log2(peak / WEIGHT_MAX)) if peak > 0 else 0
    mantissa = 2 * np.round(w / 2.0 ** (exp + 1))
    clipped = float(np.mean((mantissa < WEIGHT_MIN) | (mantissa > WEIGHT_MAX)))
    mantissa = np.clip(mantissa, WEIGHT_MIN, WEIGHT_MAX).astype(np.int16)
    q = mantissa * 2.0**exp
    error = float(np.sqrt(np.mean((q - w) ** 2)) / (np.sqrt(np.mean(w**2)) or 1.0))
    return QSynapse(mantissa, exp, exp, clipped, error)


def _layer(node: Node, peak_in: float, peak_out: float, headroom: float) -> QLayer:
    if isinstance(node, Input):
        return QLayer(INPUT_SCALE, INPUT_SCALE, 9, peak=peak_out * INPUT_SCALE)
    if isinstance(node, LIF):
        s = _pow2_below(LIF_INPUT_LIMIT / (2 * peak_in * headroom)) if peak_in else 1.0
        vth = max(1, round(node.threshold * s))
        return QLayer(1.0, s, 1, {"vth": vth, "du": 4095, "dv": 4096 - round(node.leak * 4096)},
                      peak=2 * peak_in * s * 64)
    if isinstance(node, NILIF):
        s = _pow2_below(PAYLOAD_LIMIT / (2 * peak_in * headroom)) if peak_in else 1.0
        return QLayer(float(node.levels), s, 4, {"unit": int(s), "decay_shift": round(-math.log2(node.decay)),
                                                 "levels": node.levels}, peak=2 * peak_in * s)
    peak = max(peak_in, peak_out)
    s = _pow2_below(PAYLOAD_LIMIT / (peak * headroom)) if peak else 1.0
    params: dict = {}
    if isinstance(node, (Relay, Accumulate)) and node.bias is not None:
        params["bias"] = np.round(node.bias * s).astype(np.int64)
    if isinstance(node, Relay):
        params["relu"] = node.relu
    return QLayer(s, s, STATE_BITS, params, peak=peak * s)


def quantize(graph: Graph, calibration: torch.Tensor, headroom: float = 2.0) -> Quantized:
    """Scales from the calibration peaks, then every synapse's mantissas and exponent."""
    peaks = _calibrate(graph, calibration)
    layers: dict[str, QLayer] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, (Synapse, Output)):
            continue
        q = _layer(node, *peaks.get(name, (0.0, 0.0)), headroom)
        limit = LIF_INPUT_LIMIT * 128 if isinstance(node, LIF) else PAYLOAD_LIMIT
        q.overflow = q.peak * headroom > limit
        layers[name] = q
    synapses = {}
    for name, node in graph.nodes.items():
        if not isinstance(node, Synapse):
            continue
        (src,) = graph.inputs(name)
        dst = graph.consumers(name)[0]
        ratio = layers[dst].state_scale / layers[src].scale
        q = quantize_weight(node.weight * ratio)
        q.shift = q.exp - (UPSAMPLE_BITS if node.upsample > 1 else 0)
        synapses[name] = q
    return Quantized(graph, layers, synapses, headroom)
