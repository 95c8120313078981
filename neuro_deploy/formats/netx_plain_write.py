"""Plain netx files (lava-dl's own schema, no `/neuro_deploy` extension) written from integer layers.

The counterpart of `netx_plain.read_plain`: what it reads back is what lava-dl's
`netx.hdf5.Network` builds, so a file written here runs unchanged in Lava and in every
neuro-deploy command that reads netx files (simulate, energy, inspect, view, plan).
Written to a temporary name and renamed. `write_cuba_neuron` and `write_conv_geometry` also
write the netx-schema layers of netx_io's extended files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from neuro_deploy.common.atomic import atomic_path


@dataclass
class PlainLayer:
    """One netx block with a CUBA-LIF neuron: `kind` "input" (a neuron fed the input events
    directly), "conv" (weight `(O, I, kh, kw)`) or "dense" (weight `(N_out, N_in)` on the
    flattened source). `bias` is per neuron in `shape`; `delays` per dense synapse."""

    kind: str
    shape: tuple[int, ...]
    i_decay: int  # netx iDecay: the current keeps (4096 - iDecay) / 4096 each step
    v_decay: int  # netx vDecay: the voltage keeps (4096 - vDecay) / 4096 each step
    vth: int  # threshold mantissa (compared as vth << 6)
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    delays: np.ndarray | None = None


def write_cuba_neuron(g: h5py.Group, i_decay: int, v_decay: int, vth: int) -> None:
    """A block's `neuron` group as netx reads a CUBA-LIF (also the plain part of netx_io's files)."""
    n = g.create_group("neuron")
    n.create_dataset("type", data=np.bytes_("CUBA"))
    for key, value in (("iDecay", i_decay), ("vDecay", v_decay), ("vThMant", vth), ("refDelay", 1), ("wgtExp", 0)):
        n.create_dataset(key, data=np.int64(value))


def write_conv_geometry(g: h5py.Group, channels: tuple[int, int], kernel, stride, padding) -> None:
    """A conv block's keys besides its weight and neuron (no dilation, one group) as netx's
    create_conv reads them; `channels` is (out, in), the rest `(H, W)` pairs."""
    for key, value in (("stride", stride), ("padding", padding), ("dilation", (1, 1)), ("kernelSize", kernel)):
        g.create_dataset(key, data=np.asarray(value, np.int64))
    for key, value in (("groups", 1), ("inChannels", channels[1]), ("outChannels", channels[0])):
        g.create_dataset(key, data=np.int64(value))


def _bias(g: h5py.Group, layer: PlainLayer) -> None:
    """Per channel where it is constant over the pixels, else per neuron in Lava's (W, H, C) order."""
    if layer.bias is None or not np.any(layer.bias):
        return
    b = np.asarray(layer.bias, np.float32).reshape(layer.shape)
    if b.ndim == 3:
        flat = b.reshape(b.shape[0], -1)
        b = flat[:, 0] if np.all(flat == flat[:, :1]) else b.transpose(2, 1, 0)
    g.create_dataset("bias", data=b)


def write_plain(path: str | Path, input_shape: tuple[int, ...], layers: list[PlainLayer],
                steps: int | None = None, attrs: dict | None = None) -> None:
    """`/layer/0` the input (with a neuron when `layers[0].kind == "input"`), then one conv or
    dense block per layer, a `flatten` block before a dense one that reads a 3-D layer."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        root = f.create_group("layer")
        g = root.create_group("0")
        g.create_dataset("type", data=np.array([b"input"]))
        g.create_dataset("shape", data=np.asarray(input_shape, np.int64))
        rest = layers
        if layers and layers[0].kind == "input":
            write_cuba_neuron(g, layers[0].i_decay, layers[0].v_decay, layers[0].vth)
            _bias(g, layers[0])
            rest = layers[1:]
        previous = tuple(input_shape)
        for layer in rest:
            if layer.kind == "dense" and len(previous) == 3:
                flat = root.create_group(str(len(root)))
                flat.create_dataset("type", data=np.array([b"flatten"]))
                flat.create_dataset("shape", data=np.asarray([int(np.prod(previous))], np.int64))
            g = root.create_group(str(len(root)))
            _block(g, layer)
            previous = tuple(layer.shape)
        if steps is not None:
            sim = f.create_group("simulation")
            sim.create_dataset("Ts", data=np.int64(1))
            sim.create_dataset("tSample", data=np.int64(steps))


def _block(g: h5py.Group, layer: PlainLayer) -> None:
    w = np.asarray(layer.weight, np.float32)
    g.create_dataset("type", data=np.array([layer.kind.encode()]))
    g.create_dataset("shape", data=np.asarray(layer.shape, np.int64))
    g.create_dataset("weight", data=w)
    if layer.kind == "conv":
        write_conv_geometry(g, w.shape[:2], w.shape[2:], layer.stride, layer.padding)
    else:
        g.create_dataset("inFeatures", data=np.int64(w.shape[1]))
        g.create_dataset("outFeatures", data=np.int64(w.shape[0]))
        if layer.delays is not None and np.any(layer.delays):
            g.create_dataset("delay", data=np.asarray(layer.delays, np.float32))
    write_cuba_neuron(g, layer.i_decay, layer.v_decay, layer.vth)
    _bias(g, layer)
