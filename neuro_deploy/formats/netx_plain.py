"""Plain netx files (lava-dl's own format) read into the graph IR every back end runs.

`lava.lib.dl.netx.hdf5.Network` turns each `/layer/<i>` into a block (input, conv or
dense, with a CUBA-LIF or sigma-delta neuron); this front end reads the same groups into
a free-running `Quantized` graph: one neuron node per block (`layer/<i>`), joined by one
synapse each, holding exactly the integers the Lava processes end up with (Dense weights
after netx's `optimize_weight_bits` and Lava's clip and truncation; conv weights as
stored, which Lava's Conv uses unchanged, without an exponent). A 1-D layer `(N,)` becomes
`(N, 1, 1)`; the file's shapes are kept in the metadata.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from neuro_deploy.common import memory
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.network_file import NetworkFile, open_hdf5, read_dataset, refuse_links
from neuro_deploy.ir.graph import LIF, Graph, Input, Node, Output, SigmaDelta, Synapse
from neuro_deploy.ir.quantized import LIFParams, QLayer, QSynapse, Quantized, SigmaDeltaParams

#: layer types netx itself cannot build (`hdf5.Network._create` raises for them).
NETX_UNSUPPORTED = ("pool", "convT", "unpool", "average", "concat")
#: every layer type `hdf5.Network._create` knows (what `read_chain(skip=...)` accepts).
NETX_TYPES = ("input", "flatten", "conv", "dense", "dense_rec", "dense_comp", *NETX_UNSUPPORTED)
#: the layer types neuro-deploy reads (netx also builds dense_rec and dense_comp).
SUPPORTED = ("input", "flatten", "conv", "dense")
#: netx's neuron for a dense layer without one: a non-leaky integrator that never spikes.
DEFAULT_DENSE_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}
MAX_DELAY = 62  # netx clips synaptic delays to this and builds DelayDense(max_delay=62)
SPIKE_EXP = 6  # netx's default position of the graded-spike binary point
STATE_EXP = 6  # netx's sigma-delta state exponent
BIAS_EXP = 6  # netx gives its CUBA-LIF neurons bias_exp 6
SDNN_MESSAGE_BITS = 16  # netx's default payload width of sigma-delta neurons


@dataclass
class Block:
    """One netx block as read: its neuron node and parameters, and its payload width."""

    node: Node
    params: LIFParams | SigmaDeltaParams
    payload_bits: int


def _get(group, key: str, where: str):
    """`group[key]`'s value: a missing, unreadable or non-dataset key is a one-line error naming it, and
    so is one declaring more data than the file holds or holding NaN (`read_dataset`)."""
    if key not in group:
        raise NeuroDeployError(f"{where}/{key} is missing")
    try:
        item = group[key]
        if isinstance(item, h5py.Group):
            raise NeuroDeployError(f"{where}/{key} is a group, expected a dataset")
        return read_dataset(item.id, f"{where}/{key}") if isinstance(item, h5py.Dataset) else item
    except (OSError, ValueError, TypeError) as exc:
        raise NeuroDeployError(f"{where}/{key} cannot be read ({str(exc).splitlines()[0]})") from None


def _int(group, key: str, where: str) -> int:
    value = np.asarray(_get(group, key, where))
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise NeuroDeployError(f"{where}/{key} is {value.tolist()!r}, expected one number")
    return int(value.reshape(-1)[0])


def _str(group, key: str, where: str) -> str:
    """A string key as netx reads it: the first element of a 1-D dataset, or the scalar."""
    value = np.asarray(_get(group, key, where)).reshape(-1)
    value = value[0] if value.size else ""
    return value.decode(errors="replace") if isinstance(value, (bytes, np.bytes_)) else str(value)


def _ints(group, key: str, where: str) -> np.ndarray:
    """An integer array as netx reads weights and biases: `.astype(int)` (floats truncated)."""
    value = np.asarray(_get(group, key, where))
    if not np.issubdtype(value.dtype, np.number) or not np.isfinite(value).all():
        raise NeuroDeployError(f"{where}/{key} holds non-numeric or non-finite values")
    return value.astype(np.int64)


def _pair(group, key: str, where: str) -> tuple[int, int]:
    v = _ints(group, key, where).reshape(-1)
    if v.size not in (1, 2):
        raise NeuroDeployError(f"{where}/{key} has {v.size} values, expected 1 or 2 (H, W)")
    return (int(v[0]), int(v[0])) if v.size == 1 else (int(v[0]), int(v[1]))


def _neuron(config, name: str, is_input: bool, where: str) -> Block:
    """What `hdf5.Network.get_neuron_params` makes of a neuron group (`where` names the group)."""
    kind = _str(config, "type", where)
    if "messageBits" in config:
        raise NeuroDeployError(f"{where}/messageBits is set, which lava-dl's netx cannot load")
    if kind in ("LOIHI", "CUBA"):
        params = LIFParams(vth=_int(config, "vThMant", where), du=_int(config, "iDecay", where) - 1,
                           dv=_int(config, "vDecay", where), bias_exp=BIAS_EXP)
        return Block(LIF(name), params, 1)
    if kind == "SDNN":
        mode = "delta" if is_input else "sigma" if "sigma_output" in config else "sigma_delta"
        params = SigmaDeltaParams(vth=_int(config, "vThMant", where) if mode != "sigma" else 0, spike_exp=SPIKE_EXP,
                                  state_exp=STATE_EXP)
        return Block(SigmaDelta(name, mode=mode), params, SDNN_MESSAGE_BITS)
    raise NeuroDeployError(f"{where}/type is {kind!r}: not supported (CUBA, LOIHI or SDNN)")


def _bias(g: h5py.Group, shape: tuple[int, ...], where: str) -> np.ndarray:
    """The per-neuron bias in file order, broadcast as the netx block's `_neuron` does it (refused
    before it is made when a layer declares more neurons than memory holds)."""
    neurons = math.prod(shape)
    memory.check(neurons * np.dtype(np.int32).itemsize, f"{where}/bias: a layer of {neurons:,} neurons {list(shape)}",
                 "check the layer shapes the file declares")
    b = _ints(g, "bias", where)
    if len(shape) == 3 and b.shape == shape[::-1]:  # per neuron, in Lava's order
        b = b.transpose(2, 1, 0)
    elif len(shape) == 3 and b.shape == (shape[0],):  # per channel
        b = b[:, None, None]
    try:
        return np.broadcast_to(b, shape).astype(np.int32)
    except ValueError:
        raise NeuroDeployError(f"{where}/bias has shape {b.shape}, which does not fit the layer's {shape}") from None


def import_netx():
    """`lava.lib.dl.netx`, without the notices slayer and torch print on import (the CUDA one on stderr)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from lava.lib.dl import netx
    return netx


def _dense_weight(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """The weights and exponent Lava's Dense computes with, for the weights netx reads."""
    optimize_weight_bits = import_netx().utils.optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    w, bits, exp, _ = optimize_weight_bits(weight)
    w = w.astype(np.int32)
    mode = determine_sign_mode(w)  # netx does not pass its sign mode on; Dense works it out again
    w = truncate_weights(clip_weights(w, mode, num_bits=8), mode, bits)
    return np.asarray(w, np.int32), int(exp)


def read_plain(path: str | Path, skip: tuple[str, ...] = ()) -> NetworkFile:
    """Read a plain netx file; unsupported layers or neurons, and missing or bad keys, are
    one-line errors naming the file, the layer and the key. Trailing layers of the types in
    `skip` are dropped (lava-dl's ntidigits ends in an `average` layer that netx cannot build)."""
    path = str(path)
    with open_hdf5(path) as f:
        refuse_links(f, path)
        if not isinstance(f.get("layer"), h5py.Group):
            raise NeuroDeployError(f"{path}: /layer is missing: not a netx network description")
        q, meta = _read(f["layer"], path, tuple(skip))
        if "simulation" in f and "tSample" in f["simulation"]:
            meta["sample_steps"] = _int(f["simulation"], "tSample", f"{path}: /simulation")
            if meta["sample_steps"] < 1:
                raise NeuroDeployError(f"{path}: /simulation/tSample is {meta['sample_steps']}, expected at least 1")
    return NetworkFile(q, meta, path)


def _layer_types(groups: h5py.Group, path: str) -> list[str]:
    """Every `/layer/<i>`'s type, in order."""
    kinds = []
    for i in range(len(groups)):
        where = f"{path}: /layer/{i}"
        if not isinstance(groups.get(str(i)), h5py.Group):
            raise NeuroDeployError(f"{where} is missing (netx reads /layer/0 .. /layer/{len(groups) - 1} in order)")
        kinds.append(_str(groups[str(i)], "type", where))
    return kinds


def _kept(kinds: list[str], path: str, skip: tuple[str, ...]) -> int:
    """How many leading layers remain once the trailing layers of the types in `skip` are dropped;
    skipping a layer that other layers follow would change what those compute, so it is an error."""
    for kind in skip:
        if kind not in NETX_TYPES:
            raise NeuroDeployError(f"--skip-layer {kind!r}: not a netx layer type ({', '.join(NETX_TYPES)})")
    count = len(kinds)
    while count and kinds[count - 1] in skip:
        count -= 1
    for i, kind in enumerate(kinds[:count]):
        if kind in skip:
            raise NeuroDeployError(f"{path}: /layer/{i}/type is {kind!r}: --skip-layer {kind} drops only trailing "
                                   f"layers, and /layer/{count - 1} ({kinds[count - 1]}) follows it")
    return count


def _skip_hint(kinds: list[str], i: int) -> str:
    """For an unsupported layer with only unsupported layers after it: the options that drop them."""
    tail = kinds[i:]
    if any(kind in SUPPORTED for kind in tail):
        return ""
    options = " ".join(f"--skip-layer {kind}" for kind in dict.fromkeys(tail))
    return f"; {options} drops {'it' if len(tail) == 1 else 'them'}"


def _shape3(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (shape[0], 1, 1) if len(shape) == 1 else tuple(shape)


class _Builder:
    """The graph under construction: neuron layers joined by one synapse each, in file order."""

    def __init__(self) -> None:
        self.graph = Graph()
        self.layers: dict[str, QLayer] = {}
        self.synapses: dict[str, QSynapse] = {}
        self.shapes: dict[str, list[int]] = {}

    def layer(self, node: Node, shape: tuple[int, ...], payload_bits: int, params=None, *inputs: str) -> str:
        node.shape, node.start, node.emit = _shape3(shape), 0, 0
        self.graph.add(node, *inputs)
        self.layers[node.name] = QLayer(1.0, 1.0, payload_bits, params)
        self.shapes[node.name] = list(shape)
        return node.name

    def synapse(self, syn: Synapse, src: str, shape: tuple[int, ...], mantissa: np.ndarray, exp: int) -> str:
        syn.shape, syn.start, syn.emit = _shape3(shape), 0, 0
        self.graph.add(syn, src)
        self.synapses[syn.name] = QSynapse(mantissa, exp, exp)
        return syn.name


def _read(groups: h5py.Group, path: str, skip: tuple[str, ...] = ()) -> tuple[Quantized, dict]:
    net = _Builder()
    previous: str | None = None  # the layer whose events the next synapse reads
    input_shape: tuple[int, ...] | None = None
    flatten = False
    kinds = _layer_types(groups, path)
    count = _kept(kinds, path, skip)
    for i in range(count):
        where = f"{path}: /layer/{i}"
        g = groups[str(i)]
        kind = kinds[i]
        if kind in NETX_UNSUPPORTED:
            hint = _skip_hint(kinds, i)
            if hint:
                raise NeuroDeployError(f"{where}/type is {kind!r}: not supported (lava-dl's netx cannot build "
                                       f"such layers){hint}")
            raise NeuroDeployError(f"{where}/type is {kind!r}: lava-dl's netx cannot build such layers")
        if kind not in SUPPORTED:
            raise NeuroDeployError(f"{where}/type is {kind!r}: not supported ({', '.join(SUPPORTED)})"
                                   f"{_skip_hint(kinds, i)}")
        if kind == "flatten":
            flatten = True
            continue
        shape = tuple(int(v) for v in _ints(g, "shape", where).reshape(-1))
        if not shape or min(shape) < 1 or len(shape) not in (1, 3):
            raise NeuroDeployError(f"{where}/shape is {list(shape)}, expected positive sizes (C, H, W) or (N,)")
        if kind == "dense":  # netx: `shape = (np.prod(layer_config['shape']),)`
            shape = (int(np.prod(shape)),)
        name = f"layer/{i}"
        if kind == "input":
            if previous is not None:
                raise NeuroDeployError(f"{where}: an input layer must come first")
            input_shape = shape
            # without a neuron netx feeds the input to the first synapse, which takes it as binary spikes
            source = Input("input" if "neuron" in g else name, encoding="events", channels=_shape3(shape)[0])
            previous = net.layer(source, shape, 1)
            if "neuron" in g:
                block = _neuron(g["neuron"], name, True, f"{where}/neuron")
                previous = net.layer(block.node, shape, block.payload_bits, block.params, previous)
            continue
        if previous is None and kind == "dense":  # netx feeds a leading dense layer from an external port
            input_shape = (_fan_in(g, where),)
            previous = net.layer(Input("input", encoding="events", channels=input_shape[0]), input_shape, 1)
        if previous is None:
            raise NeuroDeployError(f"{where}: {kind} layer without an input layer before it")
        if "delay" in g and kind == "conv":  # netx's create_conv ignores the key; Lava's Conv has no delays
            raise NeuroDeployError(f"{where}/delay: delays on a conv layer are not supported (netx ignores them)")
        src_shape = net.shapes[previous]
        syn, exp = _conv(g, name, shape, src_shape, where) if kind == "conv" else \
            _dense(g, name, shape, src_shape, flatten or len(src_shape) == 1, where)
        neuron = g["neuron"] if "neuron" in g else None
        if neuron is None and kind == "conv":
            raise NeuroDeployError(f"{where}/neuron is missing")
        block = _neuron(neuron if neuron is not None else DEFAULT_DENSE_NEURON, name, False, f"{where}/neuron")
        if "bias" in g and block.node.kind in ("lif", "sigma_delta") and getattr(block.node, "mode", "") != "sigma":
            block.params.bias = _bias(g, _shape3(shape), where)
        net.synapse(syn, previous, shape, syn.weight.astype(np.int32), exp)
        previous = net.layer(block.node, shape, block.payload_bits, block.params, syn.name)
        flatten = False
    if input_shape is None:
        raise NeuroDeployError(f"{path}: no input layer")
    if len(net.layers) == 1:
        skipped = " left after --skip-layer" if count < len(kinds) else ""
        raise NeuroDeployError(f"{path}: no layer with neurons{skipped}")
    last = net.graph.nodes[previous]
    net.graph.add(Output("output", shape=last.shape, start=0, emit=0), previous)
    meta = {"input_shape": list(input_shape), "shapes": net.shapes, "sample_steps": None, "skip": list(skip),
            "num_layers": count if count < len(kinds) else None}
    return Quantized(net.graph, net.layers, net.synapses, 1.0, free_running=True), meta


def _conv(g: h5py.Group, name: str, shape: tuple[int, ...], previous: tuple[int, ...], where: str
          ) -> tuple[Synapse, int]:
    """A conv block's synapse; its weights as Lava's Conv uses them (cast to int32, no clipping,
    no exponent: Lava's Conv ignores `weight_exp` and netx passes none)."""
    if len(shape) != 3 or len(previous) != 3:
        raise NeuroDeployError(f"{where}/shape: a conv layer maps (C, H, W) to (C, H, W), got {previous} -> {shape}")
    w = _ints(g, "weight", where)
    w = w[..., 0] if w.ndim == 5 and w.shape[4] == 1 else w
    if w.ndim != 4:
        raise NeuroDeployError(f"{where}/weight has shape {w.shape}, expected (out, in, kH, kW)")
    stride, padding, dilation = (_pair(g, key, where) for key in ("stride", "padding", "dilation"))
    groups = _int(g, "groups", where)
    if min(*stride, *dilation, groups) < 1 or min(padding) < 0 or previous[0] != w.shape[1] * groups \
            or w.shape[0] % groups:
        raise NeuroDeployError(f"{where}: weight {w.shape} with groups {groups}, stride {stride}, dilation "
                               f"{dilation}, padding {padding} cannot take the {previous} input")
    out = (w.shape[0], *((previous[1 + a] + 2 * padding[a] - dilation[a] * (w.shape[2 + a] - 1) - 1) // stride[a] + 1
                         for a in (0, 1)))
    if out != shape:
        raise NeuroDeployError(f"{where}/shape is {list(shape)}, but the convolution of {previous} gives {list(out)}")
    return Synapse(f"{name}.synapse", name, weight=w.astype(np.int32), stride=stride, padding=padding,
                   dilation=dilation, groups=groups, width=w.shape[0]), 0


def _dense(g: h5py.Group, name: str, shape: tuple[int, ...], previous: tuple[int, ...], flatten: bool,
           where: str) -> tuple[Synapse, int]:
    """A dense block's synapse and its weight exponent (`flatten`: the previous layer is flattened
    into it, in PyTorch's C order, as netx transposes Lava's port before flattening it). Its weight
    spans the whole source `(out, C, H, W)`."""
    if isinstance(g.get("weight"), h5py.Group):
        raise NeuroDeployError(f"{where}/weight is complex (weight/real, weight/imag): not supported")
    if not flatten:
        raise NeuroDeployError(f"{where}: a dense layer after a {previous} layer needs a flatten layer before it")
    n, fan_in = int(np.prod(shape)), int(np.prod(previous))
    w = _ints(g, "weight", where)
    w = w.reshape(n, -1) if w.ndim == 1 and w.size % n == 0 else w
    if w.shape != (n, fan_in):
        raise NeuroDeployError(f"{where}/weight has shape {w.shape}, expected ({n}, {fan_in}) from the layer "
                               f"shapes {previous} -> {shape}")
    if not w.any():
        raise NeuroDeployError(f"{where}/weight is all zeros, which netx cannot optimize")
    weight, exp = _dense_weight(w)
    delays = _delay(g, (n, fan_in), where)
    src = _shape3(previous)
    return Synapse(f"{name}.synapse", name, weight=weight.reshape(n, *src), width=n, dense=True,
                   delays=None if delays is None else delays.reshape(n, *src)), exp


def _fan_in(g: h5py.Group, where: str) -> int:
    """The input size of a dense layer that no input layer precedes: `inFeatures`, else its weight's
    columns (netx sizes the external port from the weight it reads)."""
    if "inFeatures" in g:
        return _int(g, "inFeatures", where)
    w = np.asarray(_get(g, "weight", where))
    if w.ndim != 2 or min(w.shape) < 1:
        raise NeuroDeployError(f"{where}/weight has shape {w.shape}: a leading dense layer needs (out, in) weights")
    return int(w.shape[1])


def _delay(g: h5py.Group, shape: tuple[int, int], where: str) -> np.ndarray | None:
    """The `(out, in)` delays netx hands DelayDense (`create_dense`, then `delay.astype(int)` in the
    block): a scalar, one per output (tried first) or per input, or the matrix; when the largest
    exceeds 62, netx clips all of them to [0, 62] with a warning. Lava refuses negative delays."""
    if "delay" not in g:
        return None
    d = np.asarray(_get(g, "delay", where))
    if not np.issubdtype(d.dtype, np.number) or d.dtype.kind == "c" or not np.isfinite(d).all() or not d.size:
        raise NeuroDeployError(f"{where}/delay holds non-numeric or non-finite values")
    if d.max() > MAX_DELAY:
        warnings.warn(f"{where}/delay: the largest delay {d.max()} is clipped to {MAX_DELAY}, as netx does",
                      stacklevel=2)
        d = np.clip(d, 0, MAX_DELAY)
    n, fan_in = shape
    if d.ndim == 0:
        d = np.full(shape, d)
    elif d.ndim == 1 and d.size in (n, fan_in):
        d = np.repeat(d.reshape(-1, 1), fan_in, axis=1) if d.size == n else np.repeat(d.reshape(1, -1), n, axis=0)
    elif d.shape != shape:
        raise NeuroDeployError(f"{where}/delay has shape {d.shape}, expected one value, ({n},), ({fan_in},) or {shape}")
    d = d.astype(np.int64)
    if d.min() < 0:
        raise NeuroDeployError(f"{where}/delay holds {d.min()}: Lava's DelayDense refuses negative delays")
    return d


