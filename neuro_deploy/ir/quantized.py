"""A quantized network: the lowered graph with integer parameters per layer and synapse.

Kept free of torch so that the Lava back end's worker process reads network files without it.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """Lava LIF registers: threshold mantissa (compared as vth << 6) and the two decays."""

    vth: int
    du: int
    dv: int


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


NeuronParams = LIFParams | NILIFParams | GradedParams | None
PARAMS_BY_KIND: dict[str, type] = {"lif": LIFParams, "nilif": NILIFParams, "relay": GradedParams,
                                   "accumulate": GradedParams}


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
    graph: Graph
    layers: dict[str, QLayer]
    synapses: dict[str, QSynapse]
    headroom: float
