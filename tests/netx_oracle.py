"""lava-dl's own `netx.hdf5.Network` as an oracle: the file run as netx builds it (its blocks of
Lava's Conv, Dense, DelayDense, CUBA-LIF and sigma-delta processes), sharing no code with
neuro-deploy's reader, fast simulator or Lava builder."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np


def import_netx():
    """`lava.lib.dl.netx`, without the notices slayer and torch print on import."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from lava.lib.dl import netx
    return netx


def run_netx(path: Path, x: np.ndarray, steps: int, input_shape: tuple[int, ...], *, as_bias: bool = False,
             reset_interval: int | None = None, num_layers: int | None = None, input_message_bits: int = 0
             ) -> list[np.ndarray]:
    """Every block's output events `[steps, *its shape in file order]` (netx's dense blocks are 1-D).
    `x`: the input of `input_shape` (file order) every step, or `(T, *input_shape)` frames then
    zeros; with `as_bias` the input neurons' bias, as lava-dl's tests drive them."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer

    from neuro_deploy.backends.lava_procs.recorder import EventRecorder

    netx = import_netx()
    net = netx.hdf5.Network(net_config=str(path), reset_interval=reset_interval, num_layers=num_layers,
                            input_message_bits=input_message_bits)
    first = net.layers[0]
    has_input_neuron = type(first).__name__ == "Input"
    if as_bias:
        first.neuron.bias_mant.init = np.asarray(x).T.astype(np.int32)  # Lava shapes are reversed
    else:
        x = np.asarray(x)
        frames = np.zeros((steps, *input_shape), np.int64)
        if x.shape == tuple(input_shape):
            frames[:] = x
        else:
            frames[:min(steps, len(x))] = x[:steps]
        if not has_input_neuron and not hasattr(first.synapse, "input_shape"):  # a dense synapse: flattened
            frames = frames.reshape(steps, -1)
        source = RingBuffer(data=frames.T.astype(np.int32))  # Lava: reversed shape, time last
        # feed the leaf port: Lava does not compile a source wired to net.inp
        source.s_out.connect(first.neuron.a_in if has_input_neuron else first.synapse.s_in)
    with tempfile.TemporaryDirectory(prefix="netx-oracle-") as folder:
        paths = [str(Path(folder) / f"{k}.npy") for k in range(len(net.layers))]
        for block, p in zip(net.layers, paths):
            block.out.connect(EventRecorder(shape=block.out.shape, num_steps=steps, path=p).a_in)
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        net.stop()
        events = [np.load(p) for p in paths]
    return [e.transpose(0, *range(e.ndim - 1, 0, -1)) for e in events]
