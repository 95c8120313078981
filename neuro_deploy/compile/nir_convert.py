"""`neuro-deploy convert MODEL.nir`: a NIR graph quantized to Loihi's limits as a plain netx file.

`nir_read` gives the chain of stages at `dt`; here each stage's synapse and neuron are folded
into Loihi's units (weights per spike, bias and threshold in the same units), simulated in
float64 on the calibration input for the state peaks, and given one scale per layer:
the largest that keeps the weights within 8 bits, the threshold within 17 bits and the peaks
(times `headroom`) within the 24-bit state. A stage whose parameters are already integers
within those limits (a graph exported from Loihi) keeps scale 1, so a round trip is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx_plain_write import PlainLayer, write_plain
from neuro_deploy.frontend.nir import Chain, Stage, choose_dt, load, to_chain
from neuro_deploy.loihi.limits import LIMITS

WEIGHT_MAX = LIMITS["weight_mixed"].high  # 8-bit mantissas
VTH_MAX = LIMITS["lif_vth"].high
STATE_MAX = LIMITS["lif_state"].high  # in units of 1/64 of a weight step
BIAS_MAX = 4095  # Loihi's bias mantissa (13 bits, signed)
READOUT_STEPS = 32  # without --calibrate, a non-spiking readout is assumed to integrate <= 32 full steps


@dataclass
class Folded:
    """A stage in the units Loihi computes in, before the scale: `weight` per spike (rows
    scaled by gain / threshold), `v_bias` per neuron, `threshold` (None: non-spiking)."""

    stage: Stage
    weight: np.ndarray
    v_bias: np.ndarray
    threshold: float | None


def fold(stage: Stage) -> Folded:
    """Gains (and per-neuron thresholds, where they differ) into the synapse's rows."""
    cell, syn = stage.neuron, stage.synapse
    th = cell.threshold
    uniform = th is None or np.all(th == th.reshape(-1)[0])
    norm = np.ones(stage.shape) if uniform else th
    scale = cell.gain / norm
    bias = (cell.gain * syn.bias.reshape(stage.shape) + cell.v_bias) / norm
    threshold = None if th is None else float(th.reshape(-1)[0]) if uniform else 1.0
    if syn.kind == "conv":
        per_channel = scale.reshape(scale.shape[0], -1)
        if not np.allclose(per_channel, per_channel[:, :1], rtol=1e-9, atol=0):
            raise NeuroDeployError(f"node {stage.name}: its gain or threshold differs across the pixels of a "
                                   "channel, which a convolution's weights cannot carry")
        weight = syn.weight * per_channel[:, :1, None, None]
    elif syn.kind == "identity":
        weight = syn.weight * scale
    else:
        weight = syn.weight * scale.reshape(-1, 1)
    return Folded(stage, weight, bias, threshold)


def synaptic_input(f: Folded, x: torch.Tensor) -> torch.Tensor:
    """The synapse on `[T, B, *in_shape]` spikes (float64), `[T, B, *shape]` out (with delays)."""
    syn, st = f.stage.synapse, f.stage
    t, b = x.shape[:2]
    if syn.kind == "conv":
        shape3 = st.in_shape if len(st.in_shape) == 3 else (st.in_shape[0], 1, st.in_shape[1])
        y = F.conv2d(x.reshape(t * b, *shape3), torch.as_tensor(f.weight), None, syn.stride, syn.padding)
        return y.reshape(t, b, *st.shape)
    if syn.kind == "identity":
        return x * torch.as_tensor(f.weight)
    flat = x.reshape(t, b, -1)
    if syn.delays is None:
        return (flat @ torch.as_tensor(f.weight).T).reshape(t, b, *st.shape)
    out = torch.zeros((t, b, f.weight.shape[0]), dtype=x.dtype)
    for d in np.unique(syn.delays):
        part = flat @ torch.as_tensor(np.where(syn.delays == d, f.weight, 0.0)).T
        out[int(d):] += part[:t - int(d)]
    return out.reshape(t, b, *st.shape)


def run_float(folded: list[Folded], x: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    """The discretized network in float64 on `(T, *input_shape)` (or `(T, B, *input_shape)`);
    every layer's spikes `[T, B, *shape]` and its peak |u| or |v| (in folded units)."""
    s = torch.as_tensor(np.asarray(x, np.float64))
    s = s[:, None] if s.dim() == len(folded[0].stage.in_shape) + 1 else s
    outputs, peaks = [], []
    for f in folded:
        cell = f.stage.neuron
        current = synaptic_input(f, s)
        u = torch.zeros_like(current[0])
        v = torch.zeros_like(current[0])
        bias = torch.as_tensor(f.v_bias)
        spikes, peak = [], 0.0
        for a in current:
            u = (1 - cell.du) * u + a
            v = (1 - cell.dv) * v + u + bias
            peak = max(peak, float(u.abs().max()), float(v.abs().max()))
            fired = v > f.threshold if f.threshold is not None else torch.zeros_like(v, dtype=torch.bool)
            v = torch.where(fired, torch.zeros_like(v), v)
            spikes.append(fired.double())
        s = torch.stack(spikes)
        outputs.append(s.numpy())
        peaks.append(peak)
    return outputs, peaks


def _integral(*arrays: np.ndarray) -> bool:
    return all(np.allclose(a, np.round(a), rtol=0, atol=1e-9) for a in arrays)


def quantize(f: Folded, peak: float, headroom: float) -> tuple[PlainLayer, float]:
    """The stage as a netx block and the scale chosen (integer units per folded unit)."""
    cell, syn = f.stage.neuron, f.stage.synapse
    th = VTH_MAX if f.threshold is None else f.threshold
    w_max, b_max = float(np.abs(f.weight).max()), float(np.abs(f.v_bias).max())
    fits = w_max <= WEIGHT_MAX and b_max <= BIAS_MAX and th <= VTH_MAX  # already Loihi's integers: kept exact
    if fits and _integral(f.weight, f.v_bias, np.asarray(th)):
        scale = 1.0
    else:
        bounds = [WEIGHT_MAX / w_max if w_max else np.inf, BIAS_MAX / b_max if b_max else np.inf,
                  STATE_MAX / (64 * headroom * peak) if peak else np.inf]
        if f.threshold is not None:
            bounds.append(VTH_MAX / f.threshold)
        scale = float(min(bounds))
        if not np.isfinite(scale):
            raise NeuroDeployError(f"node {f.stage.name}: all its weights and biases are zero")
    vth = VTH_MAX if f.threshold is None else int(round(f.threshold * scale))
    if vth < 1:
        raise NeuroDeployError(f"node {f.stage.name}: its threshold rounds to 0 at the largest scale its weights "
                               "allow (weights over 2^17 times the threshold)")
    bias = np.round(f.v_bias * scale)
    if np.any((bias == 0) & (f.v_bias != 0)) and np.any(f.stage.neuron.v_bias != 0):
        raise NeuroDeployError(f"node {f.stage.name}: its v_leak is below Loihi's bias resolution (1/{scale:.4g} of "
                               "the threshold's units) and would be lost")
    kind = {"identity": "input"}.get(syn.kind, syn.kind)
    layer = PlainLayer(kind, f.stage.shape, int(round(cell.du * 4096)), min(4095, int(round(cell.dv * 4096))), vth,
                       weight=_mantissas(f.weight * scale, scale == 1.0), bias=bias, stride=syn.stride, padding=syn.padding,
                       delays=syn.delays)
    if kind == "dense" and not np.any(layer.weight):
        raise NeuroDeployError(f"node {f.stage.name}: its weights all round to 0 (netx cannot load such a layer)")
    return layer, scale


def _mantissas(weight: np.ndarray, kept: bool) -> np.ndarray:
    """Integer weights; mixed-sign ones even, as Loihi drops their last bit (LIMITS["weight_mixed"]),
    unless the layer keeps integers it was given (scale 1)."""
    if kept or weight.min() >= 0 or weight.max() <= 0:
        return np.round(weight)
    return np.round(weight / 2) * 2


def _explicit_identity(stage: Stage) -> Stage:
    """A neuron fed straight by the input, whose gain is not 1, behind a one-to-one synapse."""
    if len(stage.shape) == 3:
        c = stage.shape[0]
        syn = type(stage.synapse)("conv", np.eye(c)[:, :, None, None], stage.synapse.bias.reshape(stage.shape))
    else:
        syn = type(stage.synapse)("dense", np.diag(stage.synapse.weight.reshape(-1)), stage.synapse.bias.reshape(-1))
    return Stage(stage.name, syn, stage.neuron, stage.in_shape, stage.shape)


def read_calibration(path: Path | None, chain: Chain) -> np.ndarray | None:
    """`(T, *input_shape)` spikes (0 or 1) unless the first neuron takes the input directly."""
    if path is None:
        return None
    from neuro_deploy.run.simulate import load_array

    x = load_array(Path(path))
    if x.ndim < 2 or tuple(x.shape[1:]) != tuple(chain.input_shape) or x.shape[0] < 1:
        raise NeuroDeployError(f"--calibrate {path} has shape {list(x.shape)}; expected (T, "
                               f"{', '.join(map(str, chain.input_shape))})")
    x = np.asarray(x, np.float64)
    if not np.isfinite(x).all():
        raise NeuroDeployError(f"--calibrate {path} holds non-finite values")
    if chain.stages[0].synapse.kind != "identity" and not np.isin(x, (0, 1)).all():
        raise NeuroDeployError(f"--calibrate {path} holds values other than 0 and 1; the first synapse takes "
                               "the input as spikes")
    return x


def _bound(f: Folded) -> float:
    """Without calibration: the threshold plus one step of every input at once (readouts: 32 steps)."""
    rows = np.abs(f.weight) if f.stage.synapse.kind == "identity" else \
        np.abs(f.weight).sum(axis=tuple(range(1, f.weight.ndim)))
    step = float(rows.max() + np.abs(f.v_bias).max())
    return f.threshold + step if f.threshold is not None else READOUT_STEPS * step


@dataclass
class Conversion:
    chain: Chain
    dt_source: str
    layers: list[PlainLayer]
    scales: list[float]
    peaks: list[float]
    calibrated: bool


def convert_nir(model: str | Path, output: str | Path, calibrate: Path | None = None, dt: float | None = None,
                headroom: float = 1.5) -> Conversion:
    """Read, check, calibrate, quantize and write; nothing is written when a check fails."""
    graph = load(model)
    dt_value, source = choose_dt(graph, dt)
    chain = to_chain(graph, dt_value)
    x = read_calibration(calibrate, chain)
    folded = [fold(s) for s in chain.stages]
    peaks = run_float(folded, x)[1] if x is not None else [_bound(f) for f in folded]
    layers, scales = [], []
    for i, (f, peak) in enumerate(zip(folded, peaks)):
        layer, scale = quantize(f, peak, headroom)
        if layer.kind == "input" and (i > 0 or scale != 1.0 or not np.allclose(f.weight, 1)):
            f = fold(_explicit_identity(f.stage))
            layer, scale = quantize(f, peak, headroom)
        layers.append(layer)
        scales.append(scale)
    shape = chain.input_shape if len(chain.input_shape) != 2 else (chain.input_shape[0], 1, chain.input_shape[1])
    write_plain(output, shape, layers, steps=None if x is None else int(x.shape[0]),
                attrs={"producer": "neuro-deploy convert (NIR)", "source": str(model), "dt": dt_value})
    return Conversion(chain, source, layers, scales, peaks, x is not None)
