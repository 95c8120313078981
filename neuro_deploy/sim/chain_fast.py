"""The fast back end for plain netx chains: what `netx.hdf5.Network` computes on Lava, vectorized.

Each layer is computed over all steps at once: its synapse (stateless) on every step of
the previous layer's spikes in one batched call, then the neuron's recurrence step by
step. Timing is Lava's: the input reaches the input neuron in the same step, each
synapse adds one step (a dense synapse's delay d adds d more), and with a reset interval
layer k clears its state at the steps `t % interval == (k + 1) % interval` before
integrating (netx's staggered resets).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.netx_chain import SPIKE_EXP, STATE_EXP, Chain, ChainLayer, Neuron
from neuro_deploy.sim.fixed import HALF, WRAP, lif_step


@dataclass
class ChainRun:
    events: list[np.ndarray]  # per layer: `[steps, *shape]` output spikes (binary or graded payloads)
    u: dict[int, np.ndarray] = field(default_factory=dict)  # per LIF layer: `[steps, *shape]` current
    v: dict[int, np.ndarray] = field(default_factory=dict)  # per LIF layer: `[steps, *shape]` voltage


def input_frames(x: np.ndarray, shape: tuple[int, ...], steps: int) -> np.ndarray:
    """The per-step input `[steps, *shape]`: `x` repeated, or `(T, *shape)` frames then zeros."""
    x = np.asarray(x)
    if x.shape != tuple(shape) and x.shape[1:] != tuple(shape):
        raise NeuroDeployError(f"input of shape {x.shape}: expected {tuple(shape)} or (T, *{tuple(shape)})")
    frames = np.zeros((steps, *shape), np.int64)
    if x.shape == tuple(shape):
        frames[:] = x
    else:
        n = min(steps, x.shape[0])
        frames[:n] = x[:n]
    return frames


def check_bias_input(chain: Chain) -> None:
    """Lava-dl's ground truths drive the input neurons through their bias: that needs a LIF input layer."""
    if chain.layers[0].kind != "input" or chain.layers[0].neuron.kind != "lif":
        raise NeuroDeployError(f"{chain.path}: no CUBA-LIF input neuron to take the input as its bias")


def synapse_output(layer: ChainLayer, spikes: torch.Tensor) -> torch.Tensor:
    """The synapse's output for every step's input spikes `[steps, *in_shape]` (no latency yet;
    a dense synapse's delays are applied: step t holds what the neurons receive in step t + 1)."""
    s = spikes if layer.in_message_bits else (spikes != 0).long()
    if layer.kind == "conv":
        acc = F.conv2d(s.double(), torch.from_numpy(layer.weight.astype(np.float64)), None, layer.stride,
                       layer.padding, layer.dilation, layer.groups).round().long()
        return torch.remainder(acc + HALF, WRAP) - HALF  # Lava's Conv wraps its output to 24 bits
    if layer.delay is not None:
        return _delayed(layer, s.reshape(s.shape[0], -1))
    acc = s.reshape(s.shape[0], -1) @ torch.from_numpy(layer.weight.astype(np.int64)).T
    return _scale(acc, layer.weight_exp)


def _scale(acc: torch.Tensor, e: int) -> torch.Tensor:
    """Dense's weight exponent: a left shift, or an arithmetic (flooring) right shift."""
    return acc * (1 << e) if e > 0 else torch.div(acc, 1 << -e, rounding_mode="floor")


def _delayed(layer: ChainLayer, s: torch.Tensor) -> torch.Tensor:
    """Lava's DelayDense (`PyDelayDenseModelBitAcc`): each step, the synapses of each delay d sum
    their inputs, that sum is shifted by `weight_exp` on its own, and it is added to the int32
    buffer slot that reaches the neurons d steps after the undelayed one. Here: one product per
    delay (on the rows and columns that have synapses of that delay) shifted in time; float64
    products are exact, as the sums stay far below 2**53."""
    steps, n = s.shape[0], layer.weight.shape[0]
    out = torch.zeros((steps, n), dtype=torch.int64)
    s = s.double()
    for d in np.unique(layer.delay[layer.weight != 0]):
        if d >= steps:
            continue
        mask = (layer.delay == d) & (layer.weight != 0)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        w = np.where(mask, layer.weight, 0)[np.ix_(rows, cols)].astype(np.float64)
        rows, cols = torch.from_numpy(rows), torch.from_numpy(cols)
        acc = (s[:steps - d][:, cols] @ torch.from_numpy(w).T).round().long()
        out[d:, rows] += _scale(acc, layer.weight_exp)
    return torch.remainder(out + (1 << 31), 1 << 32) - (1 << 31)  # the buffer is int32


def _resets(position: int, steps: int, interval: int | None) -> np.ndarray:
    t = np.arange(1, steps + 1)
    if interval is None:
        return np.zeros(steps, bool)
    return t % interval == (position + 1) % interval


def _lif(neuron: Neuron, a_in: torch.Tensor, resets: np.ndarray, bias: torch.Tensor | int) -> tuple:
    u = torch.zeros_like(a_in[0])
    v = torch.zeros_like(a_in[0])
    us, vs, spikes = [], [], []
    for t, a in enumerate(a_in):
        if resets[t]:
            u, v = torch.zeros_like(u), torch.zeros_like(v)
        u, v, s = lif_step(u, v, a, neuron.vth, neuron.du, neuron.dv, bias)
        us.append(u)
        vs.append(v)
        spikes.append(s)
    return torch.stack(spikes), torch.stack(us), torch.stack(vs)


def _sigma_delta(neuron: Neuron, a_in: np.ndarray) -> np.ndarray:
    """Lava's fixed-point Delta / SigmaDelta (ReLU) / Sigma models, in their int32 arithmetic."""
    exp = SPIKE_EXP + STATE_EXP
    a_in = a_in.astype(np.int32)
    vth = np.int32(neuron.vth) << np.int32(exp)
    bias = (neuron.bias if neuron.bias is not None else np.zeros(a_in.shape[1:], np.int32)).astype(np.int32)
    bias = bias * np.int32(1 << exp)
    sigma = np.zeros(a_in.shape[1:], np.int32)
    act = np.zeros_like(sigma)
    residue = np.zeros_like(sigma)
    out = np.zeros_like(a_in)
    for t, a in enumerate(a_in):
        if neuron.kind == "sigma":
            sigma = sigma + a
            out[t] = sigma
            continue
        if neuron.kind == "delta":
            new = np.left_shift(a, np.int32(exp))
        else:
            sigma = sigma + a
            new = np.maximum(sigma + bias, 0)
        delta = new - act + residue
        s = np.where(np.abs(delta) >= vth, delta, 0).astype(np.int32)
        residue = delta - s
        act = new
        out[t] = np.right_shift(s, np.int32(STATE_EXP))
    return out


def run_chain_fast(chain: Chain, x: np.ndarray, steps: int, *, as_bias: bool = False,
                   reset_interval: int | None = None, states: bool = False) -> ChainRun:
    """Run `steps` steps. `x` is the input (`input_shape`, or `(T, *input_shape)` frames) fed as
    input events, or with `as_bias` the input neurons' bias (how lava-dl's ground truths drive them)."""
    if as_bias:
        check_bias_input(chain)
    feed = torch.zeros((steps, *chain.input_shape), dtype=torch.int64) if as_bias else \
        torch.from_numpy(input_frames(x, chain.input_shape, steps))
    run = ChainRun([])
    previous = feed  # what the first synapse sees when the file has no input neuron
    for position, layer in enumerate(chain.layers):
        if layer.kind == "input":
            a_in = feed
        else:
            out = synapse_output(layer, previous).reshape(steps, *layer.shape)
            a_in = torch.cat([torch.zeros_like(out[:1]), out[:-1]])  # one step of synaptic latency
        neuron = layer.neuron
        if neuron.kind == "lif":
            bias = np.asarray(x) if as_bias and layer.kind == "input" else neuron.bias
            bias = 0 if bias is None else torch.from_numpy(bias.astype(np.int16).astype(np.int64) << 6)
            spikes, u, v = _lif(neuron, a_in, _resets(position, steps, reset_interval), bias)
            if states:
                run.u[position], run.v[position] = u.numpy(), v.numpy()
        else:
            spikes = torch.from_numpy(_sigma_delta(neuron, a_in.numpy()).astype(np.int64))
        run.events.append(spikes.numpy().astype(np.int32))
        previous = spikes
    return run
