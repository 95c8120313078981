"""Plain netx chains on Lava, as lava-dl builds them: `netx.hdf5.Network` blocks (Lava's Conv,
Dense, CUBA-LIF and sigma-delta processes) run with `Loihi2SimCfg(select_tag='fixed_pt')`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.netx_chain import Chain, import_netx
from neuro_deploy.sim.chain_fast import ChainRun, check_bias_input, input_frames


def run_chain_lava(chain: Chain, x: np.ndarray, steps: int, *, as_bias: bool = False,
                   reset_interval: int | None = None, probe_u: tuple[int, ...] = ()) -> ChainRun:
    """Run `steps` steps on Lava; every layer's output spikes, and the final current `u` of the
    layers in `probe_u` (read with `Var.get()`, so keep them small)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer

    from neuro_deploy.lava_procs.recorder import EventRecorder

    if as_bias:
        check_bias_input(chain)
    netx = import_netx()
    # skipped trailing layers (`read_chain(skip=...)`): netx stops before them, as lava-dl's ntidigits test does
    net = netx.hdf5.Network(net_config=chain.path, reset_interval=reset_interval, num_layers=chain.num_layers)
    if as_bias:
        net.in_layer.neuron.bias_mant.init = np.asarray(x).T.astype(np.int32)  # Lava shapes are reversed
    else:
        frames = input_frames(x, chain.input_shape, steps)
        if chain.layers[0].kind == "dense":  # a first dense synapse takes the input flattened
            frames = frames.reshape(steps, -1)
        source = RingBuffer(data=frames.T.astype(np.int32))  # Lava: reversed shape, time last
        first = net.layers[0]  # feed the leaf port: Lava does not compile a source wired to net.inp
        source.s_out.connect(first.neuron.a_in if chain.layers[0].kind == "input" else first.synapse.s_in)
    with tempfile.TemporaryDirectory(prefix="neuro-deploy-netx-") as folder:
        paths = [str(Path(folder) / f"{k}.npy") for k in range(len(net.layers))]
        for block, path in zip(net.layers, paths):
            block.out.connect(EventRecorder(shape=block.out.shape, num_steps=steps, path=path).a_in)
        try:
            net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            u = {k: np.asarray(net.layers[k].neuron.u.get()).T.astype(np.int64) for k in probe_u}
        except Exception as exc:
            detail = _child_error(net) or f"{type(exc).__name__}: {exc}"
            force_stop(net)
            raise NeuroDeployError(f"Lava run of {chain.path} failed: {detail}") from None
        net.stop()
        events = [_unreverse(np.load(p)) for p in paths]
    return ChainRun(events, u=u)


def _unreverse(events: np.ndarray) -> np.ndarray:
    """`[steps, *reversed shape]` from Lava to `[steps, *file shape]`."""
    return events.transpose(0, *range(events.ndim - 1, 0, -1))


def _child_error(net) -> str | None:
    """The first failed child process's exception and where it was raised (Lava itself only
    says "See output above for details")."""
    infrastructure = getattr(getattr(net, "runtime", None), "_messaging_infrastructure", None)
    for actor in getattr(infrastructure, "actors", []):
        if actor.exception:  # (exception, traceback text) or None
            error, trace = actor.exception
            frames = [line.strip() for line in trace.splitlines() if line.strip().startswith("File ")]
            return f"{type(error).__name__}: {error}" + (f" ({frames[-1]})" if frames else "")
    return None


def force_stop(root) -> None:
    """After a failure Lava's stop() waits forever on the dead actor; mark it stopped first."""
    runtime = getattr(root, "runtime", None)
    if runtime is not None:
        runtime._is_started = False
        try:
            root.stop()
        except Exception:  # the runtime is already broken; nothing else to release
            pass
