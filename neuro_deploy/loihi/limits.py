"""The deployment target: every fixed-point limit a deployed layer and synapse must respect.

One typed table (`LIMITS`), each entry with the Lava process model line that enforces or
assumes it (paths relative to site-packages of lava-nc 0.10.0) or the publication it comes
from; `docs/loihi-target.md` is its prose. `synapse_process` says which Lava process realises
a synapse, `check` compares a quantized network with the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neuro_deploy.ir.graph import LIF, NILIF, Accumulate, Input, Node, Relay, SigmaDelta, Synapse
from neuro_deploy.ir.quantized import NeuronParams, Quantized


@dataclass(frozen=True)
class Limit:
    name: str
    low: float
    high: float  # inclusive
    what: str
    source: str


def _signed(bits: int) -> tuple[int, int]:
    return -(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1


LIMITS = {lim.name: lim for lim in (
    Limit("weight_mixed", -256, 254, "mixed-sign weight mantissa (8 bits, LSB dropped: even values)",
          "lava/utils/weightutils.py:204-247 (truncate_weights), :250-295 (clip_weights)"),
    Limit("weight_excitatory", 0, 255, "one-signed weight mantissa (8 bits)",
          "lava/utils/weightutils.py:250-295 (clip_weights)"),
    Limit("weight_exp", -7, 7, "weight exponent (Loihi 1 wgtExp; assumed for Loihi 2)",
          "nengo_loihi/builder/validate.py:103 (-7 <= weight_exp <= 7)"),
    Limit("conv_accumulator", *_signed(24), "Conv (and DelayConv) sum before weight_exp (wrapped to 24 bits)",
          "lava/proc/conv/models.py:78-79 (signed_clamp bits=24)"),
    Limit("sparse_accumulator", *_signed(32), "Dense/Sparse and their delay variants: sum before weight_exp (int32)",
          "lava/proc/sparse/models.py:58-114, :365-372; lava/proc/dense/models.py (int32 weights.dot)"),
    Limit("lif_input", *_signed(18), "LIF a_in: a_in << 6 must fit the 24-bit current",
          "lava/proc/lif/models.py:143-171 (u += a_in << 6, 24-bit wrap)"),
    Limit("lif_state", *_signed(24), "LIF u and v (24 bits)", "lava/proc/lif/models.py:80-81"),
    Limit("lif_vth", 0, 2**17 - 1, "LIF vth mantissa (17 bits, compared as vth << 6)",
          "lava/proc/lif/models.py:262, :268-278"),
    Limit("lif_decay", 0, 4095, "LIF du / dv (12 bits)", "lava/proc/lif/models.py:82-83, :252-253"),
    Limit("lif_bias", -4096, 4095, "LIF bias_mant (signed 13 bits)", "lava/proc/lif/models.py:84, :254-255"),
    Limit("lif_bias_exp", 0, 7, "LIF bias_exp (unsigned 3 bits)", "lava/proc/lif/models.py:85, :256"),
    Limit("payload_bits", 1, 24, "payload width in bits (1: binary spikes; graded: at most 24)",
          "lava/proc/graded/models.py:48-52 (precision=24)"),
    Limit("headroom", 1, math.inf, "margin over the calibration peaks (below 1 the peaks prove nothing)",
          "neuro_deploy/compile/passes/quantize.py (every peak check multiplies by it)"),
    Limit("graded_payload", *_signed(24), "graded spike payload and graded neuron state",
          "lava/proc/graded/models.py:48-52, :85-89 (precision=24)"),
    Limit("delay", 0, 62, "axonal delay in steps beyond the one-step hop",
          "lava/lib/dl/netx/hdf5.py:425-448, blocks/process.py:177 (netx: 62); lava/proc/sparse/models.py:351 (63)"),
)}


def weight_bits(mantissas: list[np.ndarray]) -> int | None:
    """Bits of Loihi's weight field the mantissas occupy (None: no synapse): at most 8 for a file
    within the limits. One-signed weights are magnitudes (Lava keeps the sign in the sign mode);
    mixed-sign weights give the field's lowest bit to the sign (`weight_mixed`: -256..254 in steps
    of 2), so even mantissas take the two's-complement width of half their values. Odd mixed-sign
    mantissas (a plain netx file's, which netx runs with num_weight_bits=9) take their own width."""
    if not mantissas:
        return None
    low, high = min(int(m.min()) for m in mantissas), max(int(m.max()) for m in mantissas)
    if not low < 0 < high:
        return max(-low, high).bit_length()
    if not any(np.any(m % 2) for m in mantissas):
        low, high = low >> 1, high >> 1
    return max((~low).bit_length(), high.bit_length()) + 1

#: Which Lava process model realises each layer kind (docs/loihi-target.md).
NEURON_PROCESS = {
    "input": "lava.proc.io.source.RingBuffer (8-bit graded pixels; a plain netx file's integer events)",
    "lif": "lava.proc.lif.process.LIF (PyLifModelBitAcc); LIFReset with a reset interval",
    "sigma_delta": "lava.proc.sdn.process Delta / SigmaDelta / Sigma (plain netx files' SDNN neurons)",
    "relay": "lava.proc.graded GradedVec / GradedReluVec; with a bias: neuro-deploy GradedNeuron (kind relay)",
    "nilif": "neuro-deploy GradedNeuron (kind nilif: the NI-LIF neuron program)",
    "accumulate": "neuro-deploy GradedNeuron (kind accumulate)",
    "host": "neuro-deploy HostLayers (every host layer of the network in one CPU process, float64)",
}


def neuron_process(node: Node, params: NeuronParams) -> str:
    """The Lava process that realises a layer: Lava's own where one computes it, else a
    neuro-deploy neuron program (`GradedNeuron`), or for a host layer the one `HostLayers`."""
    if isinstance(node, Input):
        return "RingBuffer"
    if isinstance(node, LIF):
        return "LIF"
    if isinstance(node, SigmaDelta):
        return {"delta": "Delta", "sigma": "Sigma"}.get(node.mode, "SigmaDelta")
    if isinstance(node, Relay) and not params.programmed:
        return "GradedReluVec" if params.relu else "GradedVec"
    return "HostLayers" if node.role == "host" else "GradedNeuron"


def synapse_process(syn: Synapse) -> str:
    """The Lava process that realises a synapse: Conv where it can, DelayConv (Conv with one
    axonal delay) for a delayed conv, Sparse for the bilinear upsampling stage, DelaySparse for a
    delayed one; a plain netx file's dense blocks are Dense, or DelayDense with per-synapse delays."""
    if syn.dense:
        return "Dense" if syn.delays is None else "DelayDense"
    if syn.upsample > 1:
        return "DelaySparse" if syn.delay > 0 else "Sparse"
    return "DelayConv" if syn.delay > 0 else "Conv"


#: The process class each `synapse_process` kind is built as (sim/lava.py): neuro-deploy's
#: subclasses (lava_procs/synapses.py) where Lava's own does not do it. For display only: code
#: keys on the kinds.
#: the process classes the Lava back end instantiates for each kind (its subclasses that count overflow)
SYNAPSE_CLASS = {"Conv": "ConvExp", "DelayConv": "DelayConv", "Sparse": "CountedSparse",
                 "DelaySparse": "CachedDelaySparse", "Dense": "CountedDense", "DelayDense": "DelayDense"}
NEURON_CLASS = {"LIF": "CountedLIF"}  # CountedLIFReset when a plain netx file runs with netx's resets


def neuron_class(node: Node, params: NeuronParams) -> str:
    """The name of the Lava process class that realises a layer, as `inspect` shows it."""
    kind = neuron_process(node, params)
    return NEURON_CLASS.get(kind, kind)


def synapse_class(syn: Synapse) -> str:
    """The name of the Lava process class that realises a synapse, as `inspect` shows it."""
    kind = synapse_process(syn)
    return SYNAPSE_CLASS.get(kind, kind)


def accumulator_limit(syn: Synapse) -> Limit:
    return LIMITS["conv_accumulator" if synapse_process(syn) in ("Conv", "DelayConv") else "sparse_accumulator"]


@dataclass(frozen=True)
class Violation:
    where: str  # layer or synapse name
    quantity: str
    value: float
    limit: Limit

    def __str__(self) -> str:
        lim = self.limit
        return (f"{self.where}: {self.quantity} {_number(self.value)} is outside [{_number(lim.low)}, "
                f"{_number(lim.high)}], the {lim.what} ({lim.source})")


def _number(x: float) -> str:
    """An integral value in full, any other in `g` form (inf and nan as such)."""
    return str(int(x)) if math.isfinite(x) and x == int(x) else f"{x:g}"


def _outside(value: float, lim: Limit) -> bool:
    """Outside the limit, NaN included (a NaN compares false with both ends)."""
    return not lim.low <= value <= lim.high


def payload_bound(q: Quantized, layer: str) -> float:
    """The largest |payload| a layer can send: 1 for binary spikes, else a graded spike's 24 bits.
    A graded layer's declared width is what its calibration needed; only the 24-bit saturation
    bounds what another input makes it send (measured: a relay of the paper's small VLIFNet sends
    4,565 where 12 bits are declared)."""
    bits = 1 if q.layers[layer].payload_bits == 1 else 24
    return 1.0 if bits == 1 else float(2 ** (bits - 1) - 1)


def worst_case_sum(q: Quantized, name: str) -> float:
    """The largest |sum| a synapse's weights can make before its shift: the largest L1 norm of an
    output's taps times the largest payload of its source (x16 through the bilinear upsampling,
    whose four coefficients add up to 16). No input can exceed it; calibration never sees it."""
    m = q.synapses[name].mantissa
    l1 = float(np.abs(m.astype(np.int64)).reshape(m.shape[0], -1).sum(1).max()) if m.size else 0.0
    syn = q.graph.nodes[name]
    return l1 * payload_bound(q, q.graph.inputs(name)[0]) * (16 if syn.upsample > 1 else 1)


def check(q: Quantized) -> list[Violation]:
    """Every place where the network, with its calibration peaks and headroom, breaks a limit, and
    every recorded figure the file's own weights and widths prove wrong: a headroom below 1, a
    synapse peak larger than its weights can sum (`worst_case_sum`)."""
    out: list[Violation] = []
    h = q.headroom

    def need(where: str, quantity: str, value: float, name: str) -> None:
        if _outside(value, LIMITS[name]):
            out.append(Violation(where, quantity, value, LIMITS[name]))

    need("network", "stored headroom", h, "headroom")
    graph = q.graph
    for name, layer in q.layers.items():
        node, p = graph.nodes[name], layer.params
        need(name, "payload width", layer.payload_bits, "payload_bits")
        if isinstance(node, LIF):
            need(name, "vth", p.vth, "lif_vth")
            need(name, "du", p.du, "lif_decay")
            need(name, "dv", p.dv, "lif_decay")
            need(name, "bias_exp", p.bias_exp, "lif_bias_exp")
            if p.bias is not None and np.size(p.bias):
                need(name, "bias mantissa", int(np.min(p.bias)), "lif_bias")
                need(name, "bias mantissa", int(np.max(p.bias)), "lif_bias")
            need(name, "peak |v| x headroom", layer.peak * h, "lif_state")
            need(name, "peak |a_in| x headroom", layer.input_peak * h, "lif_input")
        elif isinstance(node, NILIF):
            need(name, "state bound (levels + 1) x unit", (p.levels + 1) * p.unit, "graded_payload")
            need(name, "peak |u| x headroom", layer.peak * h, "graded_payload")
        elif isinstance(node, (Relay, Accumulate)) or node.role == "host":
            need(name, "peak |state| x headroom", layer.peak * h, "graded_payload")
        elif isinstance(node, Input):
            need(name, "pixel payload", layer.scale, "graded_payload")
    for name, qs in q.synapses.items():
        syn = graph.nodes[name]
        m = qs.mantissa
        mixed = m.min() < 0 < m.max()
        if mixed:
            need(name, "weight mantissa", int(m.min()), "weight_mixed")
            need(name, "weight mantissa", int(m.max()), "weight_mixed")
            if np.any(m % 2):
                out.append(Violation(name, "odd mixed-sign mantissas", int(np.count_nonzero(m % 2)),
                                     LIMITS["weight_mixed"]))
        else:  # one-signed; the upsampling stage's Sparse entries are the mantissa times up to 4 x 4
            need(name, "weight mantissa x upsampling", int(np.abs(m).max()) * syn.upsample**4, "weight_excitatory")
        need(name, "weight exponent", qs.shift, "weight_exp")
        need(name, "delay", syn.delay, "delay")
        lim = accumulator_limit(syn)
        if _outside(qs.acc_peak * h, lim):
            out.append(Violation(name, "peak |sum| x headroom", qs.acc_peak * h, lim))
        possible = Limit("recorded_peak", 0, worst_case_sum(q, name),
                         "largest |sum| these weights make from the source's declared payloads",
                         "recomputed from the file: max over outputs of sum |mantissa| x max |payload|")
        if _outside(qs.acc_peak, possible):
            out.append(Violation(name, "recorded peak |sum|", qs.acc_peak, possible))
    return out
