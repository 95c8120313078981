"""Quantization of a lowered graph to Loihi fixed point, calibrated on sample images.

Integer semantics (shared by every back end, see docs/format.md):

* payloads: an `Input` sends 8-bit pixels (scale 255), a `LIF` binary spikes (scale 1),
  an `NILIF` graded levels 0..4 (scale 4), a `Relay`/`Accumulate`/host op graded
  payloads at a power-of-two scale, at most `payload_bits` wide when a synapse reads them;
* a synapse sums `mantissa * U(payload)` exactly (`U` = integer bilinear x2 times 16, or
  the identity), wraps the sum to its Lava process's accumulator, then shifts by `exp - u`
  (left, or floor right: Lava's `weight_exp`); the layer adds its synapses;
* weights are 8-bit mantissas times `2^exp`, one exponent per synapse.

Scales come from the float calibration peaks; then the integer network runs on the same
images and every synapse whose sum (with headroom) would not fit its accumulator gets a
coarser exponent, until all fit (`neuro_deploy.loihi.limits` holds the limits).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neuro_deploy.ir.execute import execute
from neuro_deploy.ir.graph import LIF, NILIF, Accumulate, Graph, Input, Node, Output, Relay, Synapse
from neuro_deploy.ir.quantized import (
    INPUT_SCALE, UPSAMPLE_BITS, GradedParams, LIFParams, NILIFParams, QLayer, QSynapse, Quantized,
)
from neuro_deploy.backends.fast import Probe, run_fixed
from neuro_deploy.loihi.limits import LIMITS, accumulator_limit, check

STATE_BITS = 24
PAYLOAD_LIMIT = LIMITS["graded_payload"].high
LIF_INPUT_LIMIT = 2**16  # Lava LIF: v = v/2 + (X << 6) must stay inside 24 bits
VTH_MAX = LIMITS["lif_vth"].high
UNIT_MAX = 2**20  # NI-LIF: (levels + 1) units and the decayed state fit 24 bits
WEIGHT_MIN, WEIGHT_MAX = LIMITS["weight_mixed"].low, LIMITS["weight_mixed"].high
EXP_MIN, EXP_MAX = LIMITS["weight_exp"].low, LIMITS["weight_exp"].high
PAYLOAD_BITS = 12  # default width of graded payloads that synapses read (their sums must fit 24 bits)
STATE_EXP = 6  # extra state bits of a graded neuron over its payload (lava-dl's sigma-delta state_exp)
REFINEMENTS = 8  # rounds of exponent corrections on the calibration run


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


def quantize_weight(w: np.ndarray, exp: int | None = None) -> QSynapse:
    """Even 8-bit mantissas with the finest exponent that holds the largest weight (or `exp`),
    never finer than Loihi's smallest exponent."""
    if exp is None:
        peak = float(np.abs(w).max())
        exp = math.ceil(math.log2(peak / WEIGHT_MAX)) if peak > 0 else 0
    exp = min(max(exp, EXP_MIN), EXP_MAX)
    mantissa = 2 * np.round(w / 2.0 ** (exp + 1))
    clipped = float(np.mean((mantissa < WEIGHT_MIN) | (mantissa > WEIGHT_MAX)))
    mantissa = np.clip(mantissa, WEIGHT_MIN, WEIGHT_MAX).astype(np.int16)
    q = mantissa * 2.0**exp
    error = float(np.sqrt(np.mean((q - w) ** 2)) / (np.sqrt(np.mean(w**2)) or 1.0))
    return QSynapse(mantissa, exp, exp, clipped, error)


def _layer(node: Node, peak_in: float, peak_out: float, headroom: float, payload_limit: int,
           state_cap: float) -> QLayer:
    """Scales from the float peaks: each state and payload fits its width with the headroom, and
    no state scale exceeds `state_cap` (beyond it an incoming weight would need an exponent over 7).
    A graded neuron keeps `STATE_EXP` more bits in its state than it sends (payload = state >> shift,
    rounded through its bias), so that small weights still get 8-bit mantissas at exponents >= -7."""
    if isinstance(node, Input):
        return QLayer(INPUT_SCALE, INPUT_SCALE, 9)
    if isinstance(node, LIF):
        cap = min(_pow2_below(VTH_MAX / node.threshold), state_cap)  # vth = threshold * scale fits 17 bits
        s = min(_pow2_below(LIF_INPUT_LIMIT / (2 * peak_in * headroom)), cap) if peak_in else cap
        vth = max(1, round(node.threshold * s))
        return QLayer(1.0, s, 1, LIFParams(vth, 4095, 4096 - round(node.leak * 4096)))
    if isinstance(node, NILIF):
        cap = min(UNIT_MAX, state_cap)
        s = min(_pow2_below(PAYLOAD_LIMIT / (2 * peak_in * headroom)), cap) if peak_in else cap
        return QLayer(float(node.levels), s, 4, NILIFParams(int(s), round(-math.log2(node.decay)), node.levels))
    peak = max(peak_in, peak_out) or 1.0  # a layer silent on the calibration images: scale as for peak 1
    payload = _pow2_below(payload_limit / (peak * headroom))
    extra = STATE_EXP if payload_limit < PAYLOAD_LIMIT else 0  # a payload that synapses read
    state = min(payload * 2**extra, _pow2_below(PAYLOAD_LIMIT / (peak * headroom)), max(state_cap, 1.0))
    payload = min(payload, state)
    shift = round(math.log2(state / payload))
    params = None
    if isinstance(node, (Relay, Accumulate)):
        bias = np.zeros(node.shape[0]) if node.bias is None else node.bias
        rounding = (1 << shift) // 2  # payload = round(state / 2^shift), half up
        params = GradedParams(np.round(bias * state).astype(np.int64) + rounding
                              if node.bias is not None or shift else None, shift,
                              isinstance(node, Relay) and node.relu)
    return QLayer(payload, state, math.ceil(math.log2(peak * payload * headroom + 1)) + 1, params)


def _state_cap(graph: Graph, name: str, layers: dict[str, QLayer]) -> float:
    """The largest state scale at which every incoming weight fits a mantissa at exponent 7."""
    cap = math.inf
    for syn in graph.inputs(name):
        node = graph.nodes[syn]
        peak = float(np.abs(node.weight).max()) if isinstance(node, Synapse) and not node.stage else 0.0
        if peak > 0:
            cap = min(cap, WEIGHT_MAX * 2.0**EXP_MAX * layers[graph.inputs(syn)[0]].scale / peak)
    return _pow2_below(cap) if cap < math.inf else math.inf


def _stage_weight(node: Synapse) -> QSynapse:
    """A fixed identity stage (upsampling or delay): mantissa 1, the destination takes the
    source's scale times 16 (upsampling) or unchanged."""
    c = node.weight.shape[0]
    exp = UPSAMPLE_BITS if node.upsample > 1 else 0
    return QSynapse(np.eye(c, dtype=np.int16).reshape(c, c, 1, 1), exp, 0)


def quantize(graph: Graph, calibration: torch.Tensor, headroom: float = 2.0,
             payload_bits: int = PAYLOAD_BITS) -> Quantized:
    """Scales from the calibration peaks, every synapse's mantissas and exponent, then exponent
    corrections until every accumulator fits on the calibration run."""
    peaks = _calibrate(graph, calibration)
    layers: dict[str, QLayer] = {}
    for name in graph.topological():
        node = graph.nodes[name]
        if isinstance(node, (Synapse, Output)):
            continue
        ins = graph.inputs(name)
        stage = next((graph.nodes[s] for s in ins if getattr(graph.nodes[s], "stage", False)), None)
        if stage is not None:  # the relay behind a fixed stage carries the source's payload exactly
            src, exp = layers[graph.inputs(stage.name)[0]], _stage_weight(stage).exp
            layers[name] = QLayer(src.scale * 2.0**exp, src.scale * 2.0**exp, src.payload_bits + exp, GradedParams())
            continue
        read = any(isinstance(graph.nodes[c], Synapse) for c in graph.consumers(name))
        limit = 2 ** (payload_bits - 1) - 1 if read else PAYLOAD_LIMIT
        layers[name] = _layer(node, *peaks.get(name, (0.0, 0.0)), headroom, limit, _state_cap(graph, name, layers))
    synapses = {name: _stage_weight(node) if node.stage else _synapse_weight(graph, layers, node)
                for name, node in graph.nodes.items() if isinstance(node, Synapse)}
    q = Quantized(graph, layers, synapses, headroom)
    _fit_accumulators(q, calibration)
    return q


def _synapse_weight(graph: Graph, layers: dict[str, QLayer], node: Synapse, exp: int | None = None) -> QSynapse:
    """The synapse's weights in destination state units per source payload unit, quantized (at
    `exp`, or the finest exponent that holds them); the shift takes out the upsampling's 16."""
    src, dst = graph.inputs(node.name)[0], graph.consumers(node.name)[0]
    qs = quantize_weight(node.weight * layers[dst].state_scale / layers[src].scale, exp)
    qs.shift = qs.exp - (UPSAMPLE_BITS if node.upsample > 1 else 0)
    return qs


def _fit_accumulators(q: Quantized, calibration: torch.Tensor) -> None:
    """Run the integer network on the calibration images; coarsen the exponent of every synapse
    whose sum, with the headroom, exceeds its accumulator; repeat until none does. Records the
    peaks the target check reads."""
    graph = q.graph
    for _ in range(REFINEMENTS):
        probe = Probe()
        run_fixed(q, calibration, probe=probe)
        changed = False
        for name, qs in q.synapses.items():
            node = graph.nodes[name]
            qs.acc_peak = probe.acc.get(name, 0.0)
            limit = accumulator_limit(node).high
            if qs.acc_peak * q.headroom > limit and not node.stage and qs.exp < EXP_MAX:
                extra = max(1, math.ceil(math.log2(qs.acc_peak * q.headroom / limit)))
                q.synapses[name] = _synapse_weight(graph, q.layers, node, qs.exp + extra)
                changed = True
        for name, layer in q.layers.items():
            layer.peak = probe.states.get(name, 0.0)
            layer.input_peak = probe.inputs.get(name, 0.0)
        if not changed:
            break
    flagged = {v.where for v in check(q)}
    for name, layer in q.layers.items():
        layer.overflow = name in flagged
