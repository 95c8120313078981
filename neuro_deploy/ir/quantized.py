"""A quantized network: the lowered graph with integer parameters per layer and synapse.

Kept free of torch so that the Lava back end's worker process reads network files without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neuro_deploy.ir.graph import Graph

INPUT_SCALE = 255.0  # the input layer sends 8-bit pixels
UPSAMPLE_BITS = 4  # the integer bilinear x2 multiplies by 16


@dataclass
class QSynapse:
    mantissa: np.ndarray  # int16, torch layout (out, in, k, k)
    exp: int  # weight = mantissa * 2^exp, in destination units per source unit
    shift: int  # applied to the integer sum (Lava's weight_exp): exp - 4 for upsampling synapses
    clipped: float = 0.0  # fraction of weights at the mantissa limits
    error: float = 0.0  # relative RMS error of the quantized weights
    acc_peak: float = 0.0  # calibration peak of |integer sum| before the shift

    def real_weight(self) -> np.ndarray:
        return self.mantissa.astype(np.float64) * 2.0**self.exp


@dataclass
class LIFParams:
    """Lava LIF registers: threshold mantissa (compared as vth << 6), the two decays, and the
    bias (`bias << bias_exp` is added to v every step; per neuron, in the layer's shape)."""

    vth: int
    du: int
    dv: int
    bias: np.ndarray | None = None
    bias_exp: int = 0


@dataclass
class NILIFParams:
    """The NI-LIF neuron program: state units per level, the decay as a right shift, the levels."""

    unit: int
    decay_shift: int
    levels: int


@dataclass
class GradedParams:
    """A graded neuron (relay, accumulator): per-channel bias in state units (it also holds the
    payload's rounding), payload = state >> shift, then an optional ReLU. Without a bias and a
    shift a relay is Lava's own GradedVec / GradedReluVec."""

    bias: np.ndarray | None = None
    shift: int = 0
    relu: bool = False

    @property
    def programmed(self) -> bool:
        """Needs a neuro-deploy neuron program (Lava's graded neurons have no bias or shift)."""
        return self.bias is not None or self.shift != 0


@dataclass
class SigmaDeltaParams:
    """Lava's fixed-point sigma-delta registers: threshold and bias mantissas (scaled by
    2^(spike_exp + state_exp) inside), and the per-neuron bias in the layer's shape."""

    vth: int = 0
    bias: np.ndarray | None = None
    spike_exp: int = 6
    state_exp: int = 6


NeuronParams = LIFParams | NILIFParams | GradedParams | SigmaDeltaParams | None
PARAMS_BY_KIND: dict[str, type] = {"lif": LIFParams, "nilif": NILIFParams, "relay": GradedParams,
                                   "accumulate": GradedParams, "sigma_delta": SigmaDeltaParams}


@dataclass
class QLayer:
    scale: float  # output payload units per real unit
    state_scale: float  # units of the summed synaptic input (and the neuron state) per real unit
    payload_bits: int  # signed width of the graded payload (1 for binary spikes)
    params: NeuronParams = None  # the layer kind's integer parameters (none for the input and host ops)
    peak: float = 0.0  # calibration peak of |state| in state units (LIF: |v|, NI-LIF: |u|)
    input_peak: float = 0.0  # calibration peak of |summed synaptic input| in state units
    overflow: bool = False  # the peak (with headroom) does not fit the neuron's state


@dataclass
class Quantized:
    """`free_running`: every layer runs every step of a run and each hop delays by one step
    inside it (plain netx networks, whose neurons may fire on their bias alone); otherwise the
    alignment gives each layer a window of its own (converted networks)."""

    graph: Graph
    layers: dict[str, QLayer]
    synapses: dict[str, QSynapse]
    headroom: float
    free_running: bool = False
    #: what a back end prepares once per synapse (the fast back end's weight tensors), by name
    prepared: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Drive:
    """How a free-running network is driven: `steps` steps; the input as events, or with
    `as_bias` as the input neurons' bias (how lava-dl's ground truths drive them); with
    `reset_interval`, layer k clears its state every `reset_interval` steps at offset k + 1
    (netx's staggered resets)."""

    steps: int
    as_bias: bool = False
    reset_interval: int | None = None


def neuron_positions(q: Quantized) -> dict[str, int]:
    """Each layer's position among the layers with neurons (all but the input source), in file
    order: layer k is reset at netx's offset k + 1 (`Drive.reset_interval`)."""
    return {n: k for k, n in enumerate(n for n in q.layers if q.graph.nodes[n].kind != "input")}
