"""The fast back end: the quantized network's integer semantics, vectorized with torch.

Each layer is computed over its whole window at once. In a converted network the alignment
pass says at which Lava step each window begins, so these values are the per-step events a
step-by-step simulator (Lava) produces, shifted by known offsets. In a free-running network
(a plain netx file) every window is the whole run and each synapse delays its output by its
hop (one step, plus its delays) inside it, as Lava does.

Values are integers held in float64 tensors (exact below 2^53), so no step converts dtypes.
Convolutions run in float32, which is exact while every partial sum stays below 2^24: a
synapse's input is split into as few bit slices as that bound allows (`exact_conv`), one batched
float32 convolution computes them all, and the slices are recombined in float64. On a CUDA
device convolutions run in float64 instead (cuDNN may pick TF32 or Winograd for float32, which
are not exact), so the results are the CPU's, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from neuro_deploy.backends.overflow import Overflow
from neuro_deploy.ir.execute import Recorder, apply_float, execute
from neuro_deploy.ir.graph import LIF, NILIF, Accumulate, Input, Node, Output, Relay, SigmaDelta, Synapse, pair
from neuro_deploy.ir.quantized import INPUT_SCALE, Drive, QLayer, Quantized, SigmaDeltaParams, neuron_positions
from neuro_deploy.loihi.limits import LIMITS, accumulator_limit
from neuro_deploy.zoo.neurons import patches_to_time, time_to_channels

WRAP = 2**24
HALF = 2**23
PAYLOAD_LIMIT = LIMITS["graded_payload"].high
FLOAT32_EXACT = 2**24  # float32 holds every integer below this exactly


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
            table[name] = max(table.get(name, 0.0), magnitude(x))


class OverflowCounter:
    """The fast back end's own count of run-time overflow (an `Overflow`), from the exact values
    before each wrap or saturation: whole windows at once, one reduction per layer."""

    def __init__(self) -> None:
        self.result = Overflow()

    def synapse(self, name: str, acc: torch.Tensor, bits: int) -> None:
        """A synapse's exact sums `acc`, wrapped to `bits` signed bits after this."""
        peak = magnitude(acc)
        half = 1 << (bits - 1)
        wrapped = int(((acc < -half) | (acc >= half)).sum()) if peak >= half else 0
        r = self.result
        r.synapse_peaks[name] = max(r.synapse_peaks.get(name, 0.0), peak)
        r.synapse_wraps[name] = r.synapse_wraps.get(name, 0) + wrapped

    def saturated(self, name: str, x: torch.Tensor, limit: float) -> None:
        """A layer's exact values `x`, clamped to [-limit, limit] after this."""
        n = int((x.abs() > limit).sum()) if magnitude(x) > limit else 0
        self.result.layer_saturations[name] = self.result.layer_saturations.get(name, 0) + n

    def lif(self, name: str, wraps: torch.Tensor | int, saturations: torch.Tensor | int) -> None:
        """A LIF layer's currents that wrapped and voltages that saturated over its window."""
        r = self.result
        r.layer_wraps[name] = r.layer_wraps.get(name, 0) + int(wraps)
        r.layer_saturations[name] = r.layer_saturations.get(name, 0) + int(saturations)


def magnitude(x: torch.Tensor) -> float:
    """max |x| in one pass (0 for an empty tensor)."""
    if not x.numel():
        return 0.0
    low, high = torch.aminmax(x)
    return max(-float(low), float(high))


def wrap(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's-complement wrap to `bits` signed bits (nothing to do when every value fits)."""
    half = 1 << (bits - 1)
    if magnitude(x) < half:
        return x
    return torch.remainder(x + half, 2 * half) - half


def upsample2x_int(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 (align_corners False) of integer maps `[N, C, H, W]`, times 16, exactly."""
    def axis(v: torch.Tensor, dim: int) -> torch.Tensor:
        n = v.shape[dim]
        edge = torch.cat([v.narrow(dim, 0, 1), v, v.narrow(dim, n - 1, 1)], dim)  # clamped at both ends
        triple = 3 * v
        even = triple + edge.narrow(dim, 0, n)  # output 2k: 3/4 x[k] + 1/4 x[k-1]
        odd = triple + edge.narrow(dim, 2, n)  # output 2k+1: 3/4 x[k] + 1/4 x[k+1]
        return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)

    return axis(axis(x, 2), 3)


def shift(x: torch.Tensor, s: int) -> torch.Tensor:
    """`x * 2^s` for integers: left shift, or floor right shift (Lava's weight_exp)."""
    if s == 0:
        return x
    if s > 0:
        return x * (1 << s)
    if x.is_floating_point():  # scaling by a power of two is exact; multiplying is cheaper than dividing
        return torch.floor(x * 2.0**s)
    return torch.div(x, 1 << -s, rounding_mode="floor")


class ConvWeight:
    """A synapse's integer weights as float32 and float64 tensors, and the largest L1 norm of an
    output's taps: no partial sum of the convolution exceeds it times max |input|. A 1x1 weight
    that only connects channel c to channel c (the legalization's stages, per-channel scales) is
    kept as its diagonal: the convolution is then one product per neuron."""

    def __init__(self, weight: np.ndarray, device: torch.device | str = "cpu") -> None:
        w = np.asarray(weight, np.float64)
        self.w64 = torch.from_numpy(w).to(device)
        self.w32 = self.w64.float()
        self.l1 = float(np.abs(w).reshape(w.shape[0], -1).sum(1).max()) if w.size else 0.0
        square = w.ndim == 4 and w.shape[2:] == (1, 1) and w.shape[0] == w.shape[1]
        diagonal = np.diagonal(w[:, :, 0, 0]) if square else None
        self.diagonal = None
        if square and np.count_nonzero(w) == np.count_nonzero(diagonal):
            self.diagonal = torch.from_numpy(diagonal.copy()).to(device)[:, None, None]
        self.identity = self.diagonal is not None and bool(np.all(diagonal == 1))


class SynapseInput:
    """A source's payloads as a synapse's convolution takes them (`[N, C, H, W]` float64: spikes
    for a binary synapse, upsampled for an upsampling one), a bound on their magnitude, and their
    float32 copy, made once however many synapses read them."""

    def __init__(self, x: torch.Tensor, binary: bool, upsample: int, spikes: bool = False) -> None:
        """`binary`: make the payloads spikes; `spikes`: they are spikes already (0 or 1)."""
        self.lead = x.shape[:2]  # [steps, B]
        v = x.flatten(0, 1)
        v = (v != 0).double() if binary and not spikes else v.double()
        if upsample > 1:
            v = upsample2x_int(v)
        self.v = v
        self.top = float(16 if upsample > 1 else 1) if binary or spikes else magnitude(v)
        self._v32: torch.Tensor | None = None

    @property
    def v32(self) -> torch.Tensor:
        if self._v32 is None:
            self._v32 = self.v.float()
        return self._v32


def exact_conv(node: Synapse, weight: ConvWeight, source: SynapseInput) -> torch.Tensor:
    """The exact integer sums of the synapse's convolution (float64; a dense synapse's kernel spans
    its source). Float32 is exact while every partial sum stays below 2^24: the input is split into
    bit slices, `v = sum_j slice_j 2^(bj)` with low slices in [0, 2^b), small enough for that
    bound, and all slices go through one float32 convolution."""
    args = (pair(node.stride), pair(node.padding), pair(node.dilation), node.groups)
    if weight.diagonal is not None and args == ((1, 1), (0, 0), (1, 1), 1):
        return source.v if weight.identity else source.v * weight.diagonal
    if source.v.device.type != "cpu":
        return F.conv2d(source.v, weight.w64, None, *args)
    if weight.l1 * source.top < FLOAT32_EXACT:
        return F.conv2d(source.v32, weight.w32, None, *args).double()
    b = int(np.floor(np.log2((FLOAT32_EXACT - 1) / weight.l1))) if weight.l1 else 0
    if b < 1:  # a single tap set too large for float32: compute in float64
        return F.conv2d(source.v, weight.w64, None, *args)
    slices, rest, top = [], source.v, source.top
    while weight.l1 * top >= FLOAT32_EXACT:
        high = torch.floor(rest * 2.0**-b)
        slices.append(rest - high * 2**b)
        rest, top = high, magnitude(high)
    out = F.conv2d(torch.cat([*slices, rest]).float(), weight.w32, None, *args).double()
    parts = out.split(source.v.shape[0])
    return sum(part * 2.0 ** (b * j) for j, part in enumerate(parts))


def _delivered(node: Synapse, weight: ConvWeight, source: SynapseInput, s: int, probe: Probe | None = None,
               counter: OverflowCounter | None = None) -> torch.Tensor:
    """The synapse's sums wrapped to its accumulator (only when a sum can reach its limit), then
    shifted by `s`."""
    acc = exact_conv(node, weight, source)
    if probe is not None:
        Probe.update(probe.acc, node.name, acc)
    bits = accumulator_limit(node).high.bit_length() + 1
    if counter is not None:
        counter.synapse(node.name, acc, bits)
    if weight.l1 * source.top >= 2 ** (bits - 1):
        acc = wrap(acc, bits)
    return shift(acc, s)


def synapse(node: Synapse, mantissa: np.ndarray | ConvWeight, s: int, x: torch.Tensor | SynapseInput,
            probe: Probe | None = None, binary: bool = False, counter: OverflowCounter | None = None) -> torch.Tensor:
    """What the synapse's Lava process delivers for the source payloads `x` (`[steps, B, C, H, W]`):
    the exact sum, wrapped to its accumulator (Conv: 24 bits, Dense and Sparse: int32), then
    shifted by `s` (weight_exp). `binary`: the payloads arrive as spikes (Lava's synapses with
    `num_message_bits` 0). `counter` counts the sums that wrapped."""
    source = x if isinstance(x, SynapseInput) else SynapseInput(x, binary, node.upsample)
    weight = mantissa if isinstance(mantissa, ConvWeight) else ConvWeight(mantissa, source.v.device)
    acc = _delivered(node, weight, source, s, probe, counter)
    if acc.shape[1] != node.width:
        placed = acc.new_zeros(acc.shape[0], node.width, *acc.shape[2:])
        placed[:, node.offset:node.offset + acc.shape[1]] = acc
        acc = placed
    return acc.reshape(*source.lead, *acc.shape[1:])


def delayed_synapse(node: Synapse, mantissa: np.ndarray, s: int, x: torch.Tensor, binary: bool = False
                    ) -> torch.Tensor:
    """Lava's DelayDense (`PyDelayDenseModelBitAcc`): each step, the synapses of each delay d sum
    their inputs, that sum is shifted by `weight_exp` on its own and added to the int32 buffer
    slot that reaches the neurons d steps later. Here: one convolution per delay, shifted in time."""
    steps = x.shape[0]
    source = SynapseInput(x, binary, 1)
    out = None
    for d in np.unique(node.delays[mantissa != 0]):
        acc = _delivered(node, ConvWeight(np.where(node.delays == d, mantissa, 0), x.device), source, s)
        acc = acc.reshape(steps, x.shape[1], *acc.shape[1:])
        out = torch.zeros_like(acc) if out is None else out
        if d < steps:
            out[d:] += acc[:steps - d]
    return wrap(out, 32)


def hop(x: torch.Tensor, steps: int) -> torch.Tensor:
    """`x` (`[steps, ...]`) arriving `steps` steps later, zeros before, cut to the same length."""
    return torch.cat([torch.zeros_like(x[:steps]), x[:x.shape[0] - steps]]) if steps else x


def _decay(x: torch.Tensor, keep: int) -> torch.Tensor:
    """`x * keep / 4096`, truncated toward zero as Lava's int arithmetic does (exact in float64)."""
    if x.is_floating_point():
        return torch.trunc(x * (keep / 4096))
    return torch.div(x * keep, 4096, rounding_mode="trunc")


def lif_step(u: torch.Tensor, v: torch.Tensor, a_in: torch.Tensor, vth: int, du: int, dv: int,
             bias: torch.Tensor | int = 0, lost: list | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of Lava's bit-accurate CUBA-LIF (lava/proc/lif/models.py); returns (u, v, spikes).

    `bias` is the effective bias (bias_mant << bias_exp). The current wraps into (-2^23, 2^23],
    the voltage saturates, the threshold is `vth << 6` (strict), spiking neurons reset to 0.
    `lost`: `[wrapped currents, saturated voltages]`, counted on.
    """
    u = _decay(u, 4096 - (du + 1)) + a_in * 64
    if lost is not None:
        lost[0] = lost[0] + ((u > HALF) | (u <= -HALF)).sum()
    u = torch.where(u > HALF, u - WRAP, torch.where(u <= -HALF, u + WRAP, u))
    v = _decay(v, 4096 - dv) + u + bias
    if lost is not None:
        lost[1] = lost[1] + (v.abs() > HALF - 1).sum()
    v = v.clamp(-(HALF - 1), HALF - 1)
    s = v > (vth << 6)
    return u, torch.where(s, torch.zeros_like(v), v), s.to(v.dtype)


def lif(x: torch.Tensor, vth: int, du: int, dv: int, peak: list[float] | None = None,
        bias: torch.Tensor | int = 0, resets: np.ndarray | None = None, states: list | None = None,
        lost: list | None = None) -> torch.Tensor:
    """Lava's CUBA-LIF over the window; `peak[0]` collects a bound on |v| (|u| before its 24-bit
    wrap plus |v| of the previous step: what the voltage update adds before it saturates).
    `resets[t]`: the state is cleared before step t (LIFReset); `states` receives `(u, v)` per step;
    `lost` counts on the currents that wrapped and the voltages that saturated (`lif_step`)."""
    u = torch.zeros_like(x[0])
    v = torch.zeros_like(x[0])
    spikes = []
    if lost is not None and not _may_overflow(x, du, dv, bias):
        lost = None  # nothing to count: spare the window's per-step reductions
    for t, a_in in enumerate(x):
        if resets is not None and resets[t]:
            u, v = torch.zeros_like(u), torch.zeros_like(v)
        if peak is not None:
            bound = v.abs() + (_decay(u, 4096 - (du + 1)) + a_in * 64).abs()
            peak[0] = max(peak[0], float(bound.max()))
        u, v, s = lif_step(u, v, a_in, vth, du, dv, bias, lost)
        if states is not None:
            states.append((u, v))
        spikes.append(s)
    return torch.stack(spikes)


def _may_overflow(x: torch.Tensor, du: int, dv: int, bias: torch.Tensor | int) -> bool:
    """Whether a LIF current could wrap or a voltage saturate over the window `x`: with `r` the part
    of a state each decay keeps (truncation keeps less), |u| stays within 64 max|a_in| / (1 - r_u)
    and |v| within (that + max|bias|) / (1 - r_v)."""
    keep_u, keep_v = (4096 - (du + 1)) / 4096, (4096 - dv) / 4096
    if keep_u >= 1 or keep_v >= 1:
        return True
    u = 64 * magnitude(x) / (1 - keep_u)
    b = magnitude(bias) if isinstance(bias, torch.Tensor) else abs(bias)
    return u >= HALF - 1 or (u + b) / (1 - keep_v) >= HALF - 1


def sigma_delta(mode: str, p: SigmaDeltaParams, x: torch.Tensor) -> torch.Tensor:
    """Lava's fixed-point Delta / SigmaDelta (ReLU) / Sigma models (lava/proc/sdn/models.py), in
    their int32 arithmetic: thresholds and biases scaled by 2^(spike_exp + state_exp), payloads
    sent `>> state_exp`."""
    a_in = x.cpu().numpy().astype(np.int32)
    exp = np.int32(p.spike_exp + p.state_exp)
    vth = np.int32(p.vth) << exp
    bias = np.zeros(a_in.shape[1:], np.int32) if p.bias is None else np.broadcast_to(p.bias, a_in.shape[1:])
    bias = bias.astype(np.int32) * np.int32(1 << exp)
    sigma = np.zeros(a_in.shape[1:], np.int32)
    act = np.zeros_like(sigma)
    residue = np.zeros_like(sigma)
    out = np.zeros_like(a_in)
    for t, a in enumerate(a_in):
        if mode == "sigma":
            sigma = sigma + a
            out[t] = sigma
            continue
        if mode == "delta":
            new = np.left_shift(a, exp)
        else:
            sigma = sigma + a
            new = np.maximum(sigma + bias, 0)
        delta = new - act + residue
        s = np.where(np.abs(delta) >= vth, delta, 0).astype(np.int32)
        residue = delta - s
        act = new
        out[t] = np.right_shift(s, np.int32(p.state_exp))
    return torch.from_numpy(out.astype(np.float64)).to(x.device)


def resets(position: int, steps: int, interval: int | None) -> np.ndarray | None:
    """The steps (from 0) before which LIFReset clears layer `position` (netx's reset_offset k + 1)."""
    if interval is None:
        return None
    return np.arange(1, steps + 1) % interval == (position + 1) % interval


def nilif(x: torch.Tensor, r: int, unit: int, decay_shift: int, levels: int, peak: list[float] | None = None
          ) -> torch.Tensor:
    """NI-LIF neuron program: sub-pixels as sub-steps, graded levels 0..levels (round half to even)."""
    steps = patches_to_time(x, r)
    u = torch.zeros_like(steps[0])
    q = torch.zeros_like(steps[0])
    out = []
    exact = u.is_floating_point()  # float64: scaling by 2^-k is exact, and so is rounding c / unit
    for x_k in steps:
        reset = u - q * (unit // levels)
        u = (torch.floor(reset * 2.0**-decay_shift) if exact else
             torch.div(reset, 1 << decay_shift, rounding_mode="floor")) + x_k
        if peak is not None:
            peak[0] = max(peak[0], float(u.abs().max()))
        c = u.clamp(0, levels * unit)
        if exact:  # round half to even; c / unit is never within rounding error of a tie it is not
            q = torch.round(c / unit)
        else:
            base, rem = torch.div(c, unit, rounding_mode="floor"), c % unit
            q = base + ((rem > unit // 2) | ((rem == unit // 2) & (base % 2 == 1))).to(c.dtype)
        out.append(q)
    return time_to_channels(torch.stack(out), r)


class FixedPoint:
    """`apply` for `execute`: the integer semantics of each layer kind. A free-running network
    takes its `drive` (and, driven through the bias, the `input_bias`); `states` collects the
    `(u, v)` of every LIF layer at every step of its window; `counter` counts what overflowed."""

    def __init__(self, q: Quantized, probe: Probe | None = None, drive: Drive | None = None,
                 input_bias: torch.Tensor | None = None, states: dict[str, list] | None = None,
                 counter: OverflowCounter | None = None) -> None:
        self.q = q
        self.probe = probe
        self.counter = counter
        self.drive = drive
        self.input_bias = input_bias
        self.states = states
        self.positions = neuron_positions(q)
        self.sources = {n: q.graph.inputs(n) for n in q.graph.nodes}
        self.first = q.graph.topological()[0]
        self.inputs: dict[tuple[str, int], SynapseInput] = {}  # a source's prepared payloads, while read
        self.readers = {}  # (source, upsample) -> synapses still to read it
        for name, node in q.graph.nodes.items():
            if isinstance(node, Synapse) and node.delays is None:
                key = (self.sources[name][0], node.upsample)
                self.readers[key] = self.readers.get(key, 0) + 1

    def __call__(self, node: Node, ins: list[torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        if isinstance(node, Input):
            if node.encoding == "events":  # `[steps, B, C, H, W]` integer events, as given
                return image
            frames = image if image.dim() == 5 else image.unsqueeze(0).repeat(node.repeat, 1, 1, 1, 1)
            return torch.round(frames.double().clamp(0, 1) * INPUT_SCALE)
        if isinstance(node, Synapse):
            qs = self.q.synapses[node.name]
            src = self.sources[node.name][0]
            binary = self.q.layers[src].payload_bits == 1
            if node.delays is not None:
                out = delayed_synapse(node, qs.mantissa, qs.shift, ins[0], binary)
            else:
                out = synapse(node, self._weight(node.name, ins[0].device), qs.shift,
                              self._input(src, node, ins[0], binary), self.probe, counter=self.counter)
            return hop(out, 1 + node.delay) if self.q.free_running else out
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

    def _weight(self, name: str, device: torch.device) -> ConvWeight:
        """The synapse's weight tensors, prepared once per network and device (again if its
        mantissas were replaced, as quantization does while it fits the accumulators)."""
        mantissa = self.q.synapses[name].mantissa
        kept = self.q.prepared.get(name)
        if kept is None or kept[0] is not mantissa or kept[1] != device:
            kept = self.q.prepared[name] = (mantissa, device, ConvWeight(mantissa, device))
        return kept[2]

    def _input(self, src: str, node: Synapse, x: torch.Tensor, binary: bool) -> SynapseInput:
        """The source's prepared payloads, shared by the synapses that read it, freed after the last."""
        key = (src, node.upsample)
        if key not in self.inputs:
            # LIF spikes are 0 or 1 already; other one-bit payloads (a plain netx input) become spikes
            self.inputs[key] = SynapseInput(x, binary, node.upsample, isinstance(self.q.graph.nodes[src], LIF))
        self.readers[key] -= 1
        return self.inputs[key] if self.readers[key] else self.inputs.pop(key)

    def _neuron(self, node: Node, ins: list[torch.Tensor], image: torch.Tensor, ql: QLayer,
                peak: list[float] | None) -> torch.Tensor:
        p = ql.params
        if isinstance(node, LIF):
            return self._lif(node, ins[0], p, peak)
        if isinstance(node, SigmaDelta):
            return sigma_delta(node.mode, p, ins[0])
        if isinstance(node, NILIF):
            return nilif(ins[0], node.r, p.unit, p.decay_shift, p.levels, peak)
        if isinstance(node, (Relay, Accumulate)):
            out = ins[0]
            if p.programmed or isinstance(node, Accumulate):  # a neuron program saturates; GradedVec does not
                bias = np.zeros(1, np.int64) if p.bias is None else p.bias
                out = out + torch.from_numpy(bias).to(out.device)[:, None, None]
                if self.counter is not None:
                    self.counter.saturated(node.name, out, PAYLOAD_LIMIT)
                out = out.clamp(-PAYLOAD_LIMIT, PAYLOAD_LIMIT)
            if peak is not None:
                peak[0] = magnitude(out)
            out = shift(out, -p.shift)  # the payload: the state's top bits
            return out.clamp(min=0) if p.relu else out
        # host op: decode the ports, compute in float64, encode the result
        real = apply_float(node, [v.double() / ql.state_scale for v in ins], image)
        encoded = torch.round(real * ql.scale)
        if peak is not None:
            peak[0] = magnitude(encoded)
        if self.counter is not None:
            self.counter.saturated(node.name, encoded, PAYLOAD_LIMIT)
        return encoded.clamp(-PAYLOAD_LIMIT, PAYLOAD_LIMIT)

    def _lif(self, node: LIF, x: torch.Tensor, p, peak: list[float] | None) -> torch.Tensor:
        bias = p.bias
        if self.input_bias is not None and self.sources[node.name] == [self.first]:
            bias = self.input_bias.cpu().numpy()
        bias = 0 if bias is None else torch.from_numpy((bias.astype(np.int16).astype(np.int64) << p.bias_exp)
                                                        .astype(np.float64)).to(x.device)
        drive = self.drive
        clear = None if drive is None else resets(self.positions[node.name], drive.steps, drive.reset_interval)
        states = None if self.states is None else self.states.setdefault(node.name, [])
        lost = None if self.counter is None else [0, 0]
        out = lif(x, p.vth, p.du, p.dv, peak, bias, clear, states, lost)
        if lost is not None:
            self.counter.lif(node.name, *lost)
        return out


def run_fixed(q: Quantized, image: torch.Tensor, record: Recorder | None = None, probe: Probe | None = None,
              device: torch.device | str = "cpu", counter: OverflowCounter | None = None,
              states: dict[str, list] | None = None) -> torch.Tensor:
    """Integer run of the quantized network on `[B, C, H, W]` images (or `[T, B, C, H, W]` frames)
    on `device`; returns the decoded output, on the CPU. `counter` counts what overflowed; `states`
    receives every LIF layer's `(u, v)` at each step of its window (`states_after` reads them)."""
    apply = FixedPoint(q, probe, states=states, counter=counter)
    out = execute(q.graph, image.to(device), record, apply=apply).cpu()
    source = q.graph.inputs(q.graph.output())[0]
    return out.double() / q.layers[source].scale


def states_after(q: Quantized, states: dict[str, list], steps: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each LIF layer's `(u, v)` (`[B, C, H, W]`) after `steps` steps of a converted network's run,
    as Lava's LIF holds them: zero before its window (its first input arrives at step `start`),
    the window's state inside it, and after it the state decaying on without input."""
    out = {}
    for name, per_step in states.items():
        node, p = q.graph.nodes[name], q.layers[name].params
        u, v = (torch.zeros_like(per_step[0][0]),) * 2
        done = min(max(steps - node.start, 0), len(per_step))
        if done:
            u, v = per_step[done - 1]
        for _ in range(steps - node.start - done):  # past the window: no input, no bias (converted LIFs have none)
            u, v, _ = lif_step(u, v, torch.zeros_like(u), p.vth, p.du, p.dv)
        out[name] = (u, v)
    return out


def event_frames(x: np.ndarray, shape: tuple[int, ...], steps: int) -> np.ndarray:
    """The per-step input events `[steps, *shape]`: `x` repeated, or `(T, *shape)` frames then zeros."""
    frames = np.zeros((steps, *shape), np.int64)
    if x.shape == tuple(shape):
        frames[:] = x
    else:
        n = min(steps, x.shape[0])
        frames[:n] = x[:n]
    return frames


def run_free(q: Quantized, x: np.ndarray, drive: Drive, record: Recorder | None = None,
             states: dict[str, list] | None = None, counter: OverflowCounter | None = None) -> torch.Tensor:
    """Integer run of a free-running network for `drive.steps` steps on the input `x`: `(C, H, W)`
    events every step, or `(T, C, H, W)` frames then zeros; with `drive.as_bias`, `(C, H, W)` is the
    input neurons' bias instead. Returns the output layer's payloads `[steps, C, H, W]`; `counter`
    counts what overflowed."""
    shape = q.graph.nodes[q.graph.topological()[0]].shape
    x = np.asarray(x, np.int64)
    frames = np.zeros((drive.steps, *shape), np.int64) if drive.as_bias else event_frames(x, shape, drive.steps)
    apply = FixedPoint(q, drive=drive, input_bias=torch.from_numpy(x) if drive.as_bias else None, states=states,
                       counter=counter)
    output: list[torch.Tensor] = []

    def keep(node: Node, value: torch.Tensor) -> None:
        if isinstance(node, Output):
            output.append(value[:, 0])
        if record is not None:
            record(node, value)

    execute(q.graph, torch.from_numpy(frames.astype(np.float64))[:, None], keep, apply=apply)
    return output[0]


#: a fast run's peak resident memory over its payloads alive at once (`run_bytes`), measured on the
#: first run of a freshly read network: 5.3x for the bundled deployable model and 9.6x for the
#: release VLIFNet, both at 64x64 (bit slices, float32 copies, convolution buffers)
RUN_OVERHEAD = 10


def run_bytes(q: Quantized, steps: int | None = None, kept_steps: int = 0) -> float:
    """Peak bytes of a fast-back-end run of `q` on one tile: the float64 payloads alive at once (each
    node's window of `node.steps`, or `steps` for every node of a free-running network; `execute`
    frees a value after its last reader) times `RUN_OVERHEAD`, the weights prepared as float64, and
    `kept_steps` of every layer's events kept as 4-byte values (--dump)."""
    graph = q.graph
    order = graph.topological()
    readers = {n: 0 for n in order}
    sources: dict[str, list[str]] = {n: [] for n in order}
    for e in graph.edges:
        readers[e.src] += 1
        sources[e.dst].append(e.src)
    size = {n: math.prod(graph.nodes[n].shape) * (steps or graph.nodes[n].steps or 1) * 8 for n in order}
    live = peak = 0
    for name in order:
        live += size[name]
        peak = max(peak, live)
        for src in sources[name]:
            readers[src] -= 1
            if readers[src] == 0:
                live -= size[src]
    weights = sum(w.mantissa.size for w in q.synapses.values()) * 8 * 2
    kept = sum(math.prod(graph.nodes[n].shape) for n in q.layers) * kept_steps * 4
    return peak * RUN_OVERHEAD + weights + kept
