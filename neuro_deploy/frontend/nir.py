"""A NIR graph (the Neuromorphic Intermediate Representation, `nir.read`) as a chain of stages.

A stage is one Loihi layer: the linear NIR ops between two neurons (Affine, Linear, Scale,
Conv1d/Conv2d, SumPool2d/AvgPool2d, Flatten, Delay) composed into one synapse (a convolution,
or a dense matrix once an Affine or Linear is among them), and the neuron after them
discretized at `dt` by forward Euler, as the NIR paper and snnTorch's and Norse's exporters do.
Each neuron is written in the form of Loihi's CUBA-LIF,

    u[t] = (1 - du) u[t-1] + gain * (W x[t] + b)      (du = 1: no current state)
    v[t] = (1 - dv) v[t-1] + u[t] + v_bias            spike if v > threshold, then v = 0,

so that quantization (`nir_convert`) only picks a scale. Every check here runs before any work:
a file that is not a NIR graph, cycles, shapes, NaNs and what Loihi cannot express are one line.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.ir.graph import pair
from neuro_deploy.loihi.limits import LIMITS

DEFAULT_DT = 1e-4  # the NIR paper's time step (paper/01_lif/README.md)
MAX_DELAY = LIMITS["delay"].high  # netx's largest synaptic delay
LINEAR_OPS = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Delay")
NEURON_OPS = ("I", "IF", "LI", "LIF", "CubaLI", "CubaLIF", "Threshold")
SPIKING = ("IF", "LIF", "CubaLIF", "Threshold")


@dataclass
class Synapse:
    """The composed linear map of a stage: `conv` (weight `(O, I, kh, kw)`, no groups or
    dilation, on `(C, H, W)`), `dense` (weight `(N_out, N_in)` on the flattened source, C order)
    or `identity` (a neuron fed straight from the input; weight per neuron). `bias` is per output neuron; `delays`
    (dense only) are steps per synapse `(N_out, N_in)`."""

    kind: str
    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    delays: np.ndarray | None = None


@dataclass
class Neuron:
    """A discretized neuron layer (see the module docstring); per-neuron arrays in `shape`.
    `threshold` is None for non-spiking integrators (I, LI, CubaLI)."""

    kind: str
    du: float
    dv: float
    gain: np.ndarray
    v_bias: np.ndarray
    threshold: np.ndarray | None


@dataclass
class Stage:
    name: str  # the NIR neuron node
    synapse: Synapse
    neuron: Neuron
    in_shape: tuple[int, ...]  # the source's shape as the synapse reads it ((C, H, W) or (N,))
    shape: tuple[int, ...]  # the neuron layer's shape ((C, H, W) for a conv synapse, else (N,))


@dataclass
class Chain:
    input_shape: tuple[int, ...]  # as the NIR graph states it
    stages: list[Stage] = field(default_factory=list)
    dt: float = DEFAULT_DT


def load(path: str | Path):
    """`nir.read(path)`, anything it cannot read being one line naming the file."""
    import nir

    path = Path(path)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            graph = nir.read(str(path))
    except Exception as exc:  # nir raises whatever h5py or its constructors raise on a foreign file
        if "type mismatch" in str(exc):  # nir checks the edges' shapes as it reads
            raise NeuroDeployError(f"{path}: mismatched shapes ({str(exc).splitlines()[0]})") from None
        raise NeuroDeployError(f"{path} is not a NIR graph ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NeuroDeployError(f"{path} holds a single NIR node ({type(graph).__name__}), not a graph")
    return graph


def choose_dt(graph, dt: float | None) -> tuple[float, str]:
    """The time step and where it comes from: `--dt`, the graph's metadata, or the paper's 1e-4."""
    if dt is not None:
        if not np.isfinite(dt) or dt <= 0:
            raise NeuroDeployError(f"--dt {dt}: expected a positive number of seconds")
        return float(dt), "--dt"
    meta = getattr(graph, "metadata", None) or {}
    if "dt" in meta:
        value = float(np.asarray(meta["dt"]).reshape(-1)[0])
        if not np.isfinite(value) or value <= 0:
            raise NeuroDeployError(f"the graph's metadata dt is {value}: expected a positive number of seconds")
        return value, "the graph's metadata"
    return DEFAULT_DT, "the NIR paper's default; --dt sets another"


def _arrays(node) -> dict[str, np.ndarray]:
    """The node's numeric parameters (its dataclass fields that are numbers or arrays)."""
    out = {}
    for key, value in vars(node).items():
        if key in ("input_type", "output_type", "metadata") or isinstance(value, str):
            continue
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        out[key] = array
    return out


def _check_values(name: str, node) -> None:
    for key, value in _arrays(node).items():
        if np.isnan(value).any():
            raise NeuroDeployError(f"node {name}: {key} holds NaN")
        if np.isinf(value).any() and not key.startswith("tau"):
            raise NeuroDeployError(f"node {name}: {key} holds an infinite value")


def _order(graph) -> list[str]:
    """The chain Input -> ... -> Output; cycles and branches are refused naming a node."""
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    pred: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for edge in graph.edges:
        src, dst = edge[0], edge[1]
        for end in (src, dst):
            if end not in graph.nodes:
                raise NeuroDeployError(f"edge {src} -> {dst}: node {end} is not in the graph")
        succ[src].append(dst)
        pred[dst].append(src)
    _refuse_cycles(graph, succ)
    inputs = [n for n, node in graph.nodes.items() if type(node).__name__ == "Input"]
    outputs = [n for n, node in graph.nodes.items() if type(node).__name__ == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NeuroDeployError(f"the graph has {len(inputs)} inputs and {len(outputs)} outputs; "
                               "neuro-deploy converts chains with one of each")
    order, node = [], inputs[0]
    while True:
        order.append(node)
        if len(pred[node]) > 1 or len(succ[node]) > 1:
            raise NeuroDeployError(f"node {node}: {len(pred[node])} inputs and {len(succ[node])} outputs; "
                                   "plain netx networks are chains (one input and one output per node)")
        if not succ[node]:
            break
        node = succ[node][0]
    if order[-1] != outputs[0] or len(order) != len(graph.nodes):
        missing = next(n for n in graph.nodes if n not in order)
        raise NeuroDeployError(f"node {missing} is not on the path from the input to the output")
    return order


def _refuse_cycles(graph, succ: dict[str, list[str]]) -> None:
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for m in succ[n]:
            if state.get(m) == 1:
                loop = path[path.index(m):] + [n]
                delayed = any(type(graph.nodes[k]).__name__ == "Delay" for k in loop)
                if delayed:
                    raise NeuroDeployError(f"node {m}: a recurrent loop ({' -> '.join(loop + [m])}); "
                                           "plain netx networks are feed-forward")
                raise NeuroDeployError(f"the graph has a cycle without a delay: {' -> '.join(loop + [m])}")
            if m not in state:
                visit(m, path + [m])
        state[n] = 2

    for n in graph.nodes:
        if n not in state:
            visit(n, [n])


# ---- linear ops, applied to `[B, *shape]` float64 tensors -------------------------------------

def _pairs(value, default: int) -> tuple[int, int]:
    """An `(H, W)` pair from a NIR parameter that may be absent (None), one value or two."""
    return pair(default if value is None else value)


def _conv_padding(name: str, padding, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        if any(t % 2 for t in total):
            raise NeuroDeployError(f"node {name}: padding 'same' with an even kernel pads unevenly, "
                                   "which Loihi's convolution cannot")
        return (total[0] // 2, total[1] // 2)
    return _pairs(padding, 0)


def _conv_params(name: str, node) -> tuple[np.ndarray, tuple, tuple, tuple, int, np.ndarray]:
    """A Conv1d or Conv2d as 2-D parameters (Conv1d: height 1)."""
    w = np.asarray(node.weight, np.float64)
    if type(node).__name__ == "Conv1d":
        w = w[:, :, None, :]
        one = lambda v: (1, _pairs(v, 1)[0])  # noqa: E731
        stride, dilation = one(node.stride), one(node.dilation)
        padding = (0, _conv_padding(name, node.padding, (1, w.shape[3]), dilation)[1])
    else:
        stride, dilation = _pairs(node.stride, 1), _pairs(node.dilation, 1)
        padding = _conv_padding(name, node.padding, w.shape[2:], dilation)
    bias = np.zeros(w.shape[0]) if getattr(node, "bias", None) is None else np.asarray(node.bias, np.float64)
    return w, stride, padding, dilation, int(node.groups), bias.reshape(-1)


def apply_op(name: str, node, x: torch.Tensor) -> torch.Tensor:
    """One linear NIR op on a batch; a shape that does not fit is one line naming the node."""
    kind = type(node).__name__
    try:
        if kind in ("Affine", "Linear"):
            w = torch.as_tensor(np.asarray(node.weight, np.float64))
            y = x @ w.T
            return y + torch.as_tensor(np.asarray(node.bias, np.float64)) if kind == "Affine" else y
        if kind == "Scale":
            return x * torch.as_tensor(np.asarray(node.scale, np.float64))
        if kind in ("Conv1d", "Conv2d"):
            w, stride, padding, dilation, groups, bias = _conv_params(name, node)
            x4 = x[:, :, None, :] if kind == "Conv1d" else x
            y = F.conv2d(x4, torch.as_tensor(w), torch.as_tensor(bias), stride, padding, dilation, groups)
            return y[:, :, 0, :] if kind == "Conv1d" else y
        if kind in ("SumPool2d", "AvgPool2d"):
            k, s, p = _pairs(node.kernel_size, 1), _pairs(node.stride, 1), _pairs(node.padding, 0)
            y = F.avg_pool2d(x, k, s, p, count_include_pad=True)
            return y * (k[0] * k[1]) if kind == "SumPool2d" else y
        if kind == "Flatten":
            rank = x.dim() - 1
            start, end = int(node.start_dim), int(node.end_dim)
            start, end = (start + rank if start < 0 else start), (end + rank if end < 0 else end)
            return x.flatten(start + 1, end + 1)
        if kind == "Delay":
            return x * torch.ones(np.asarray(node.delay).shape, dtype=x.dtype)  # checks the shape only
    except (RuntimeError, ValueError, IndexError) as exc:
        raise NeuroDeployError(f"node {name} ({kind}) cannot take its {list(x.shape[1:])} input "
                               f"({str(exc).splitlines()[0]})") from None
    raise NeuroDeployError(f"node {name}: {kind} is not supported ({', '.join(LINEAR_OPS + NEURON_OPS)})")


# ---- composing the linear ops between two neurons ------------------------------------------------

def _as_conv(name: str, node, channels: int) -> tuple[np.ndarray, tuple, tuple, np.ndarray] | None:
    """A spatial op as a plain convolution `(weight (O, C, kh, kw), stride, padding, bias)`:
    dilation spread into the kernel, groups into a block-diagonal weight; None for other ops."""
    kind = type(node).__name__
    if kind in ("Conv1d", "Conv2d"):
        w, stride, padding, dilation, groups, bias = _conv_params(name, node)
        o, i, kh, kw = w.shape
        dense = np.zeros((o, i * groups, dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1))
        per = o // groups
        for g in range(groups):
            dense[g * per:(g + 1) * per, g * i:(g + 1) * i, ::dilation[0], ::dilation[1]] = w[g * per:(g + 1) * per]
        return dense, stride, padding, bias
    if kind in ("SumPool2d", "AvgPool2d"):
        k, s, p = _pairs(node.kernel_size, 1), _pairs(node.stride, 1), _pairs(node.padding, 0)
        value = 1.0 if kind == "SumPool2d" else 1.0 / (k[0] * k[1])
        w = np.eye(channels)[:, :, None, None] * np.full(k, value)
        return w, s, p, np.zeros(channels)
    if kind == "Scale":
        scale = np.asarray(node.scale, np.float64)
        per_channel = scale.reshape(scale.shape[0], -1) if scale.ndim >= 2 else None
        if per_channel is None or not np.all(per_channel == per_channel[:, :1]):
            return None
        return np.diag(per_channel[:, 0])[:, :, None, None], (1, 1), (0, 0), np.zeros(channels)
    return None


def _compose(a: tuple, b: tuple) -> tuple:
    """Convolution `b` after convolution `a`, as one convolution (exact when no padding of `b`
    reaches values `a` computed from the input: `_linear_map` verifies it numerically)."""
    wa, sa, pa, ba = a
    wb, sb, pb, bb = b
    kh = wa.shape[2] + (wb.shape[2] - 1) * sa[0]
    kw = wa.shape[3] + (wb.shape[3] - 1) * sa[1]
    w = np.zeros((wb.shape[0], wa.shape[1], kh, kw))
    for u in range(wb.shape[2]):
        for v in range(wb.shape[3]):
            w[:, :, u * sa[0]:u * sa[0] + wa.shape[2], v * sa[1]:v * sa[1] + wa.shape[3]] += \
                np.einsum("om,miab->oiab", wb[:, :, u, v], wa)
    stride = (sa[0] * sb[0], sa[1] * sb[1])
    padding = (pb[0] * sa[0] + pa[0], pb[1] * sa[1] + pa[1])
    return w, stride, padding, wb.sum(axis=(2, 3)) @ ba + bb


def _delays(ops: list[tuple[str, object]], n_in: int, n_out: int, dt: float) -> np.ndarray | None:
    """Delay ops as steps per dense synapse: uniform, per source (first op) or per target (last op)."""
    found = [(i, name, node) for i, (name, node) in enumerate(ops) if type(node).__name__ == "Delay"]
    if not found:
        return None
    total = np.zeros((n_out, n_in))
    for i, name, node in found:
        d = np.asarray(node.delay, np.float64).reshape(-1) / dt
        steps = np.round(d)
        if np.any(np.abs(d - steps) > 1e-6 * np.maximum(1, np.abs(d))) or steps.min() < 0:
            raise NeuroDeployError(f"node {name}: delay {node.delay} s is not a whole number of steps of {dt} s")
        if np.all(steps == steps[0]):
            total += steps[0]
        elif i == 0 and steps.size == n_in:
            total += steps[None, :]
        elif i == len(ops) - 1 and steps.size == n_out:
            total += steps[:, None]
        else:
            raise NeuroDeployError(f"node {name}: per-neuron delays must come first or last among the linear ops "
                                   "before a neuron (netx delays are per synapse of one dense layer)")
    if total.max() > MAX_DELAY:
        raise NeuroDeployError(f"node {found[0][1]}: a delay of {int(total.max())} steps exceeds Loihi's {MAX_DELAY}")
    return total.astype(np.int64)


def _linear_map(ops: list[tuple[str, object]], in_shape: tuple[int, ...], dt: float, target: str) -> Synapse:
    """The ops between two neurons as one synapse (`target` names the neuron they feed)."""
    if not ops:
        return Synapse("identity", np.ones(in_shape), np.zeros(in_shape))

    def run(x: torch.Tensor) -> torch.Tensor:
        for name, node in ops:
            x = apply_op(name, node, x)
        return x

    zero = torch.zeros((1, *in_shape), dtype=torch.float64)
    bias = run(zero)[0]
    kinds = [type(node).__name__ for _, node in ops]
    spatial = len(in_shape) in (2, 3) and not {"Affine", "Linear"} & set(kinds)
    if spatial:
        if "Delay" in kinds:
            raise NeuroDeployError(f"node {target}: a delay before a convolution (netx's conv layers have none)")
        return _conv_map(ops, in_shape, run, target)
    n_in = int(np.prod(in_shape))
    flat = lambda v: run(v.reshape(1, *in_shape)).reshape(-1) - bias.reshape(-1)  # noqa: E731
    weight = torch.func.jacrev(flat)(torch.zeros(n_in, dtype=torch.float64)).numpy()
    return Synapse("dense", weight, bias.reshape(-1).numpy(), delays=_delays(ops, n_in, weight.shape[0], dt))


def _conv_map(ops, in_shape: tuple[int, ...], run, target: str) -> Synapse:
    """The ops as one convolution, verified against running them (a Flatten at the end only
    makes the neuron layer flat: the synapse is still the convolution)."""
    shape3 = in_shape if len(in_shape) == 3 else (in_shape[0], 1, in_shape[1])
    channels = shape3[0]
    conv = (np.eye(channels)[:, :, None, None], (1, 1), (0, 0), np.zeros(channels))
    for name, node in ops:
        kind = type(node).__name__
        if kind in ("Flatten", "Delay"):
            continue
        step = _as_conv(name, node, conv[0].shape[0])
        if step is None:
            raise NeuroDeployError(f"node {name}: a {kind} that varies across pixels cannot be part of a convolution")
        conv = _compose(conv, step)
    w, stride, padding, bias = conv
    x = torch.rand((2, *in_shape), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = run(x) - run(torch.zeros_like(x[:1]))
    got = F.conv2d(x.reshape(2, *shape3), torch.as_tensor(w), None, stride, padding)
    if got.numel() != expected.numel() or not torch.allclose(got.reshape(expected.shape), expected, atol=1e-9,
                                                             rtol=1e-9):
        raise NeuroDeployError(f"node {target}: the linear ops before it do not form one convolution (padding "
                               "after a pooling or a stride reaches computed values), which one Loihi synapse needs")
    out = tuple(got.shape[1:])
    return Synapse("conv", w, np.broadcast_to(bias[:, None, None], out).copy(), stride, padding)


# ---- neurons -------------------------------------------------------------------------------------

def _per_layer(name: str, key: str, value: np.ndarray) -> float:
    flat = np.asarray(value, np.float64).reshape(-1)
    if not np.allclose(flat, flat[0], rtol=1e-6, atol=0):
        raise NeuroDeployError(f"node {name}: {key} differs across neurons; a Loihi layer shares one decay")
    return float(flat[0])


def _decay(name: str, key: str, tau: np.ndarray, dt: float) -> float:
    tau = _per_layer(name, key, tau)
    if tau <= 0:
        raise NeuroDeployError(f"node {name}: {key} {tau} is not positive")
    if tau < dt:
        raise NeuroDeployError(f"node {name}: {key} {tau} s is shorter than dt {dt} s (forward Euler is unstable)")
    return dt / tau


def neuron(name: str, node, dt: float, shape: tuple[int, ...]) -> Neuron:
    """The neuron discretized at `dt` (forward Euler), or one line on what Loihi cannot express."""
    kind = type(node).__name__
    size = int(np.prod(shape))
    try:
        p = {k: v.reshape(shape) if v.size == size else np.broadcast_to(v.reshape(-1)[0] if v.size == 1 else v, shape)
             for k, v in _arrays(node).items()}
    except ValueError:
        raise NeuroDeployError(f"node {name}: its parameters' shapes do not fit the {list(shape)} neurons "
                               "that its input makes") from None
    if "v_reset" in p and np.any(p["v_reset"] != 0):
        raise NeuroDeployError(f"node {name}: v_reset {np.unique(p['v_reset'])[:3].tolist()} is not 0; "
                               "Loihi's neurons reset to 0")
    zero = np.zeros(shape)
    if kind in ("LIF", "LI"):
        dv = _decay(name, "tau", p["tau"], dt)
        gain, v_bias, du = dv * p["r"], dv * p["v_leak"], 1.0
    elif kind in ("IF", "I"):
        dv, du, gain, v_bias = 0.0, 1.0, dt * p["r"], zero
    elif kind in ("CubaLIF", "CubaLI"):
        du = _decay(name, "tau_syn", p["tau_syn"], dt)
        dv = _decay(name, "tau_mem", p["tau_mem"], dt)
        gain, v_bias = du * p.get("w_in", np.ones(shape)) * dv * p["r"], dv * p["v_leak"]
    elif kind == "Threshold":
        dv, du, gain, v_bias = 1.0, 1.0, np.ones(shape), zero
    else:
        raise NeuroDeployError(f"node {name}: {kind} is not supported ({', '.join(LINEAR_OPS + NEURON_OPS)})")
    threshold = None
    if kind in SPIKING:
        threshold = p["threshold" if kind == "Threshold" else "v_threshold"]
        if np.any(threshold <= 0):
            raise NeuroDeployError(f"node {name}: a threshold {threshold.min()} <= 0; Loihi's threshold is positive")
    return Neuron(kind, du, dv, gain, v_bias, threshold)


def to_chain(graph, dt: float) -> Chain:
    """The graph as stages, each checked; the first problem is one line naming its node."""
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind == "NIRGraph":
            raise NeuroDeployError(f"node {name}: a nested graph (e.g. a recurrent layer) is not supported")
        if kind not in LINEAR_OPS + NEURON_OPS + ("Input", "Output"):
            raise NeuroDeployError(f"node {name}: {kind} is not supported ({', '.join(LINEAR_OPS + NEURON_OPS)})")
        _check_values(name, node)
    order = _order(graph)
    first = graph.nodes[order[0]]
    shape = tuple(int(v) for v in np.asarray(first.output_type.get("output", first.input_type.get("input"))
                                             if first.output_type else first.input_type["input"]).reshape(-1))
    if not shape or min(shape) < 1:
        raise NeuroDeployError(f"node {order[0]}: the input's shape {list(shape)} is not a list of positive sizes")
    chain = Chain(shape, dt=dt)
    ops: list[tuple[str, object]] = []
    source_shape = shape
    current = torch.zeros((1, *shape), dtype=torch.float64)
    previous_spiking = True
    for name in order[1:]:
        node = graph.nodes[name]
        kind = type(node).__name__
        _declared(name, node, tuple(current.shape[1:]))
        if kind == "Output":
            break
        if kind in LINEAR_OPS:
            current = apply_op(name, node, current)
            ops.append((name, node))
            continue
        if not previous_spiking:
            raise NeuroDeployError(f"node {name}: it is fed the graded output of a non-spiking neuron, "
                                   "which plain netx layers cannot carry")
        syn = _linear_map(ops, source_shape, dt, name)
        if kind == "Threshold" and not ops and chain.stages:
            raise NeuroDeployError(f"node {name}: a Threshold right after a neuron fires without a reset, "
                                   "which Loihi's neurons cannot")
        layer_shape = tuple(current.shape[1:]) if syn.kind != "conv" else tuple(syn.bias.shape)
        cell = neuron(name, node, dt, layer_shape)
        if cell.du < 1 and np.any(syn.bias != 0):
            raise NeuroDeployError(f"node {name}: a bias into its synaptic current (Loihi's bias adds to the voltage)")
        chain.stages.append(Stage(name, syn, cell, source_shape, layer_shape))
        if syn.kind == "identity" and chain.stages[:-1]:
            raise NeuroDeployError(f"node {name}: a neuron fed straight by another neuron (no synapse between)")
        ops, source_shape, previous_spiking = [], layer_shape, kind in SPIKING
    if ops:
        raise NeuroDeployError(f"node {ops[-1][0]}: linear ops after the last neuron (the output of a Loihi "
                               "network is a neuron layer)")
    if not chain.stages:
        raise NeuroDeployError("the graph has no neuron between its input and its output")
    return chain


def _declared(name: str, node, actual: tuple[int, ...]) -> None:
    """A declared input type that disagrees with the shape arriving is a mismatch naming the node."""
    declared = (getattr(node, "input_type", None) or {}).get("input")
    if declared is None:
        return
    declared = tuple(int(v) for v in np.asarray(declared).reshape(-1))
    if declared and int(np.prod(declared)) != int(np.prod(actual)) or (declared and len(declared) == len(actual)
                                                                        and declared != actual):
        raise NeuroDeployError(f"node {name}: its input type is {list(declared)}, but {list(actual)} arrives")
