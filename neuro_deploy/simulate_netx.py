"""Simulate a plain netx file (lava-dl's own format, no `/neuro_deploy` extension) on an input array.

The input is fed to the first layer as events: `(C, H, W)` (or the file's input shape) values
repeated every step, or `(T, *shape)` frames fed one per step for exactly T steps. Both back
ends return every layer's events per step, in the file's shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.netx_chain import Chain, read_chain
from neuro_deploy.simulate import BACKENDS, load_array

#: inputs below this magnitude overflow neither Lava's int32 input neurons nor their 24-bit current
INPUT_LIMIT = 1 << 17


@dataclass
class ChainSimulation:
    chain: Chain
    steps: int
    inputs: np.ndarray  # what was fed: the input shape, or `(T, *shape)` frames
    events: dict[str, np.ndarray]  # "layer/<i>" -> `[steps, *shape]`, one entry per neuron layer

    @property
    def output(self) -> np.ndarray:
        """The last layer's events, `[steps, *shape]`."""
        return self.events[f"layer/{self.chain.layers[-1].index}"]


def read_chain_input(path: str | Path, chain: Chain) -> np.ndarray:
    """The `.npy` input for `chain`: its input shape, or `(T, *shape)` frames, of integers."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise NeuroDeployError(f"input {path}: a plain netx network takes a .npy array")
    x = load_array(path)
    shape = chain.input_shape
    if (x.shape != shape and x.shape[1:] != shape) or x.size == 0:
        raise NeuroDeployError(f"input {path} has shape {x.shape}; {chain.path} takes {shape} values "
                               f"or (T, {', '.join(map(str, shape))}) frames")
    if not np.issubdtype(x.dtype, np.number) and x.dtype != bool:
        raise NeuroDeployError(f"input {path} has dtype {x.dtype}; expected integers")
    if not np.isfinite(x).all() or np.any(x != np.round(x)) or np.abs(x).max() >= INPUT_LIMIT:
        raise NeuroDeployError(f"input {path}: expected integer values in (-{INPUT_LIMIT}, {INPUT_LIMIT}), "
                               "the events the input layer receives")
    return x.astype(np.int64)


def chain_steps(chain: Chain, x: np.ndarray, steps: int | None) -> int:
    """Frames set the step count; otherwise `steps`, or the file's `/simulation/tSample`."""
    if x.shape != chain.input_shape:
        if steps is not None and steps != x.shape[0]:
            raise NeuroDeployError(f"--steps {steps} conflicts with the input's {x.shape[0]} frames "
                                   "(frames run one per step)")
        return int(x.shape[0])
    steps = chain.sample_steps if steps is None else steps
    if steps is None:
        raise NeuroDeployError(f"{chain.path} has no /simulation/tSample: give --steps")
    if steps < 1:
        raise NeuroDeployError(f"--steps {steps}: expected at least 1")
    return steps


def simulate_netx(network: str | Path, input_path: str | Path, steps: int | None = None,
                  backend: str = "fast", skip: tuple[str, ...] = ()) -> ChainSimulation:
    """Read the file (without its trailing layers of the types in `skip`) and the input, then run
    every layer on the chosen back end."""
    if backend not in BACKENDS:
        raise NeuroDeployError(f"unknown back end {backend!r} (known: {', '.join(BACKENDS)})")
    chain = read_chain(network, skip)
    x = read_chain_input(input_path, chain)
    steps = chain_steps(chain, x, steps)
    if backend == "lava":
        from neuro_deploy.sim.chain_lava import run_chain_lava

        run = run_chain_lava(chain, x, steps)
    else:
        from neuro_deploy.sim.chain_fast import run_chain_fast

        run = run_chain_fast(chain, x, steps)
    events = {f"layer/{layer.index}": e for layer, e in zip(chain.layers, run.events)}
    return ChainSimulation(chain, steps, x, events)
