"""The deployment target: every fixed-point limit a deployed layer and synapse must respect.

One typed table (`LIMITS`), each entry with the Lava process model line that enforces or
assumes it (paths relative to site-packages of lava-nc 0.10.0) or the publication it comes
from; `docs/loihi-target.md` is its prose. `synapse_process` says which Lava process realises
a synapse, `check` compares a quantized network with the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuro_deploy.ir.graph import LIF, NILIF, Accumulate, Input, Node, Relay, SigmaDelta, Synapse
from neuro_deploy.ir.quantized import NeuronParams, Quantized


@dataclass(frozen=True)
class Limit:
    name: str
    low: int
    high: int  # inclusive
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
    Limit("graded_payload", *_signed(24), "graded spike payload and graded neuron state",
          "lava/proc/graded/models.py:48-52, :85-89 (precision=24)"),
    Limit("delay", 0, 62, "axonal delay in steps beyond the one-step hop",
          "lava/lib/dl/netx/hdf5.py:425-448, blocks/process.py:177 (netx: 62); lava/proc/sparse/models.py:351 (63)"),
)}

#: Which Lava process model realises each layer kind (docs/loihi-target.md).
NEURON_PROCESS = {
    "input": "lava.proc.io.source.RingBuffer (8-bit graded pixels; a plain netx file's integer events)",
    "lif": "lava.proc.lif.process.LIF (PyLifModelBitAcc); LIFReset with a reset interval",
    "sigma_delta": "lava.proc.sdn.process Delta / SigmaDelta / Sigma (plain netx files' SDNN neurons)",
    "relay": "lava.proc.graded GradedVec / GradedReluVec; with a bias: neuro-deploy GradedNeuron (kind relay)",
    "nilif": "neuro-deploy GradedNeuron (kind nilif: the NI-LIF neuron program)",
    "accumulate": "neuro-deploy GradedNeuron (kind accumulate)",
    "host": "neuro-deploy GradedNeuron / GradedNeuron2 (kind host: a CPU process, float64)",
}


def neuron_process(node: Node, params: NeuronParams) -> str:
    """The Lava process that realises a layer: Lava's own where one computes it, else a
    neuro-deploy neuron program (`GradedNeuron`)."""
    if isinstance(node, Input):
        return "RingBuffer"
    if isinstance(node, LIF):
        return "LIF"
    if isinstance(node, SigmaDelta):
        return {"delta": "Delta", "sigma": "Sigma"}.get(node.mode, "SigmaDelta")
    if isinstance(node, Relay) and not params.programmed:
        return "GradedReluVec" if params.relu else "GradedVec"
    return "GradedNeuron"


def synapse_process(syn: Synapse) -> str:
    """The Lava process that realises a synapse: Conv where it can, DelayConv (Conv with one
    axonal delay) for a delayed conv, Sparse for the bilinear upsampling stage, DelaySparse for a
    delayed one; a plain netx file's dense blocks are Dense, or DelayDense with per-synapse delays."""
    if syn.dense:
        return "Dense" if syn.delays is None else "DelayDense"
    if syn.upsample > 1:
        return "DelaySparse" if syn.delay > 0 else "Sparse"
    return "DelayConv" if syn.delay > 0 else "Conv"


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
        return (f"{self.where}: {self.quantity} {self.value:g} is outside [{lim.low}, {lim.high}], "
                f"the {lim.what} ({lim.source})")


def _outside(value: float, lim: Limit) -> bool:
    return value < lim.low or value > lim.high


def check(q: Quantized) -> list[Violation]:
    """Every place where the network, with its calibration peaks and headroom, breaks a limit."""
    out: list[Violation] = []
    h = q.headroom

    def need(where: str, quantity: str, value: float, name: str) -> None:
        if _outside(value, LIMITS[name]):
            out.append(Violation(where, quantity, value, LIMITS[name]))

    graph = q.graph
    for name, layer in q.layers.items():
        node, p = graph.nodes[name], layer.params
        if isinstance(node, LIF):
            need(name, "vth", p.vth, "lif_vth")
            need(name, "du", p.du, "lif_decay")
            need(name, "dv", p.dv, "lif_decay")
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
    return out
