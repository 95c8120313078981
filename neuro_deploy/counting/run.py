"""Run any network file on an input, on either back end, and count its operations.

Converted networks and plain netx files (lava-dl's own) alike run through `simulate` and are
counted by one `NetworkCounter` from the events the back end produced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from neuro_deploy.common.progress import Update
from neuro_deploy.counting.counts import Counts, NetworkCounter
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.formats.netx import read_network
from neuro_deploy.ir.quantized import Drive
from neuro_deploy.run.simulate import BACKENDS, Simulation, read_events, read_input, run_steps, simulate


def simulate_and_count(net: NetworkFile, x: np.ndarray, backend: str = "fast", keep_events: bool = False,
                       on_tile: Update | None = None, drive: Drive | None = None,
                       also: Callable[[int, str, int, torch.Tensor], None] | None = None
                       ) -> tuple[Simulation, Counts]:
    """Derain `x` (`(C,H,W)` or `(T,C,H,W)`) and count the run, all tiles summed, in one simulation
    (a free-running network: run it on its input as `drive` says).

    Each layer's payloads are counted as the back end produces them, so no run keeps its events;
    `also(tile, layer, first_step, payloads)` sees them too (as `simulate`'s `on_events`).
    """
    counter = NetworkCounter(net, drive.steps if drive is not None else None)
    runs = {}

    def on_events(tile: int, layer: str, first: int, payload: torch.Tensor) -> None:
        if tile not in runs:
            runs[tile] = counter.start()
        counter.add(runs[tile], layer, first, payload)
        if also is not None:
            also(tile, layer, first, payload)

    with threadpool_limits(1, user_api="blas"):  # numpy's BLAS threads would fight torch's for the 2 cores
        result = simulate(net, x, backend, keep_events, on_tile=on_tile, on_events=on_events, drive=drive)
    total, *rest = (counter.finish(runs[k]) for k in sorted(runs))
    for counts in rest:
        total.add(counts)
    return result, total


def count_network(net: NetworkFile, x: np.ndarray, backend: str = "fast", on_tile: Update | None = None) -> Counts:
    return simulate_and_count(net, x, backend, on_tile=on_tile)[1]


def count_file(path: str | Path, input_path: str | Path, backend: str = "fast", steps: int | None = None,
               on_tile: Update | None = None, skip: tuple[str, ...] = ()) -> Counts:
    """Counts of any network file (ours or plain netx) run on the input at `input_path` (a plain
    netx file: `steps` steps, `skip` its trailing layer types to drop)."""
    return count_network_file(path, input_path, backend, steps, on_tile, skip)[1]


def count_network_file(path: str | Path, input_path: str | Path, backend: str = "fast", steps: int | None = None,
                       on_tile: Update | None = None, skip: tuple[str, ...] = ()) -> tuple[NetworkFile, Counts]:
    """`count_file`, with the network it read (a deployment plan needs it too)."""
    net, _, counts = simulate_network_file(path, input_path, backend, steps, on_tile, skip)
    return net, counts


def simulate_network_file(path: str | Path, input_path: str | Path, backend: str = "fast", steps: int | None = None,
                          on_tile: Update | None = None, skip: tuple[str, ...] = ()
                          ) -> tuple[NetworkFile, Simulation, Counts]:
    """`count_network_file`, with the run itself (its overflow, say)."""
    if backend not in BACKENDS:
        raise NeuroDeployError(f"unknown back end {backend!r} (known: {', '.join(BACKENDS)})")
    net = read_network(path, skip)
    x, drive = run_input(net, input_path, steps)
    return net, *simulate_and_count(net, x, backend, on_tile=on_tile, drive=drive)


def run_input(net: NetworkFile, input_path: str | Path, steps: int | None = None) -> tuple[np.ndarray, Drive | None]:
    """The input at `input_path` as `simulate` takes it for `net`, and a free-running network's drive
    (`steps` steps, default its tSample); a converted network runs its own steps."""
    if net.quantized.free_running:
        x = read_events(input_path, net)
        return x, Drive(run_steps(net, x, steps))
    if steps is not None:
        raise NeuroDeployError(f"--steps applies to plain netx files; {net.path} sets its own steps per image")
    return read_input(input_path, int(net.meta["input_shape"][0]), int(net.meta["settings"]["timesteps"])), None
