"""Run any network file on an input, on either back end, and count its operations.

Files written by neuro-deploy run through `simulate` (tiled to the network's size, events
kept); plain netx files (lava-dl's own) run through the chain simulators. Either way the
counts come from the events the back end produced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from neuro_deploy.energy.counts import ChainCounter, Counts, NetworkCounter
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.netx_io import NetworkFile, read_network
from neuro_deploy.progress import Update
from neuro_deploy.simulate import BACKENDS, Simulation, read_input, simulate


def simulate_and_count(net: NetworkFile, x: np.ndarray, backend: str = "fast", keep_events: bool = False,
                       on_tile: Update | None = None) -> tuple[Simulation, Counts]:
    """Derain `x` (`(C,H,W)` or `(T,C,H,W)`) and count the run, all tiles summed, in one simulation.

    Each layer's payloads are counted as the back end produces them, so no run keeps its events.
    """
    counter = NetworkCounter(net)
    runs = {}

    def on_events(tile: int, layer: str, first: int, payload) -> None:
        if tile not in runs:
            runs[tile] = counter.start()
        counter.add(runs[tile], layer, first, payload)

    with threadpool_limits(1, user_api="blas"):  # numpy's BLAS threads would fight torch's for the 2 cores
        result = simulate(net, x, backend, keep_events, on_tile=on_tile, on_events=on_events)
    total, *rest = (counter.finish(runs[k]) for k in sorted(runs))
    for counts in rest:
        total.add(counts)
    return result, total


def count_network(net: NetworkFile, x: np.ndarray, backend: str = "fast", on_tile: Update | None = None) -> Counts:
    return simulate_and_count(net, x, backend, on_tile=on_tile)[1]


def count_chain(path: str | Path, input_path: str | Path, backend: str = "fast", steps: int | None = None,
                skip: tuple[str, ...] = ()) -> Counts:
    """Counts of a plain netx file's run on the chain simulators (`simulate_netx`; `skip`: trailing
    layer types dropped, as `read_chain` takes them)."""
    from neuro_deploy.sim.chain_fast import input_frames
    from neuro_deploy.simulate_netx import simulate_netx

    sim = simulate_netx(path, input_path, steps, backend, skip)
    frames = input_frames(sim.inputs, sim.chain.input_shape, sim.steps)
    return ChainCounter(sim.chain).count([sim.events[f"layer/{layer.index}"] for layer in sim.chain.layers], frames)


def count_file(path: str | Path, input_path: str | Path, backend: str = "fast", steps: int | None = None,
               on_tile: Update | None = None, skip: tuple[str, ...] = ()) -> Counts:
    """Counts of any network file (ours or plain netx) run on the input at `input_path`."""
    from neuro_deploy.netx_chain import is_plain_netx

    if backend not in BACKENDS:
        raise NeuroDeployError(f"unknown back end {backend!r} (known: {', '.join(BACKENDS)})")
    if is_plain_netx(path):
        return count_chain(path, input_path, backend, steps, skip)
    if steps is not None:
        raise NeuroDeployError(f"--steps applies to plain netx files; {path} sets its own steps per image")
    if skip:
        raise NeuroDeployError(f"--skip-layer applies to plain netx files; {path} runs all its layers")
    net = read_network(path)
    x = read_input(input_path, int(net.meta["input_shape"][0]), int(net.meta["settings"]["timesteps"]))
    return count_network(net, x, backend, on_tile)
