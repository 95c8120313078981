"""What a SANA-FE replay (`crosscheck/sanafe.py`) will cost, in memory and time, known before it starts.

SANA-FE keeps a C++ object per synapse twice (its `Network`, then the chip it is loaded on), a
neuron object per neuron in both, and a model instance per soma unit of its architecture. The
replay's peak is therefore linear in the synapses, neurons and input cores of the network, which
the fan-out maps of our counts give without building anything. The constants below were measured
with `sanafe` 2.2.9 (resident set, /proc/self/status, on this project's 2-core x86 machine; the
runs are in docs/cross-check-sanafe.md, section "Cost").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neuro_deploy.backends.fast import run_bytes
from neuro_deploy.common import memory
from neuro_deploy.common.tile_grid import tile_count
from neuro_deploy.counting.counts import synapse_fanout
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import placement
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.ir.graph import Synapse
from neuro_deploy.ir.quantized import Drive
from neuro_deploy.run.simulate import OVERLAP

CHIP_CORES = 128  # the bundled loihi.yaml: 32 tiles of 4 cores, as Loihi 1
TILE_CORES = 4
PER_CORE = 1024  # loihi.yaml's `max_neurons_supported`; `sanafe._architecture` checks it is still so

#: the Python process before the replay: interpreter, torch, neuro-deploy and SANA-FE imported, the
#: network read (482 MB on tiny.net, 504 MB on the 16x16 VLIFNet)
BASE_BYTES = 550e6
#: per connection: SANA-FE's `Connection` with its weight attribute in the `Network` (741 B on the
#: 16x16 VLIFNet, 490 B when every neuron's connections arrive at once), its mapped copy on the chip
#: (160 B), our `(pre, post)` int64 indices (16 B), and the steps' message traces (30 B a synapse on
#: the 16x16 VLIFNet)
SYNAPSE_BYTES = 950
#: per neuron: SANA-FE's neuron in the `Network` (787 B) and on the chip (500 B)
NEURON_BYTES = 1300
#: per input soma unit (1024 on each core that hosts input neurons): the unit's model instance in
#: the architecture (1.6 KB) and on the chip (11.9 KB)
INPUT_UNIT_BYTES = 13.5e3
#: per chip of the mesh without input units: its tiles, cores and units (54 MB measured)
CHIP_BYTES = 60e6


@dataclass(frozen=True)
class ReplaySize:
    """What the replay builds: SANA-FE objects, steps and runs."""

    neurons: int
    synapses: int  # connections, one per (source neuron, destination neuron) pair
    input_neurons: int
    cores: int  # a layer per core, as `sanafe._place` places them
    chips: int
    steps: int
    runs: int  # tiles of the image, each replayed on a fresh chip
    fast_run_bytes: float  # our fast run's peak (`run_bytes`), before SANA-FE is built

    @property
    def input_cores(self) -> int:
        """Cores given input soma units: the input layer's, rounded up to whole tiles."""
        return -(-math.ceil(self.input_neurons / PER_CORE) // TILE_CORES) * TILE_CORES


def cores_needed(net: NetworkFile, per_core: int = PER_CORE) -> int:
    """Cores the replay takes: every layer on cores of its own."""
    graph = net.quantized.graph
    return sum(-(-int(np.prod(graph.nodes[n].shape)) // per_core) for n in net.quantized.layers)


def replay_size(net: NetworkFile, x: np.ndarray, drive: Drive | None, chips: int | None) -> ReplaySize:
    """The replay of `net` on `x` (as `cross_check` takes them), counted from the network alone: the
    connections are the sum of every synapse's fan-out map (the same pairs `sanafe.connections`
    enumerates)."""
    q = net.quantized
    graph = q.graph
    synapses = sum(int(synapse_fanout(syn, q.synapses[syn.name].mantissa, graph.nodes[graph.inputs(syn.name)[0]].shape)
                       .sum()) for syn in graph.nodes.values() if isinstance(syn, Synapse))
    sizes = {n: int(np.prod(graph.nodes[n].shape)) for n in q.layers}
    inputs = sum(sizes[n] for n in q.layers if placement(graph.nodes[n]) == "io")
    if q.free_running:
        if drive is None:
            raise NeuroDeployError(f"{net.path} is a plain netx network: its replay needs a step count")
        steps, runs = drive.steps, 1
    else:
        size = int(net.meta["input_shape"][-1])
        steps, runs = int(net.meta["steps"]), tile_count(x.shape[-2], x.shape[-1], size, OVERLAP)
    cores = cores_needed(net)
    return ReplaySize(sum(sizes.values()), synapses, inputs, cores, chips or -(-cores // CHIP_CORES), steps, runs,
                      run_bytes(q, steps if q.free_running else None))


def estimate_bytes(size: ReplaySize) -> float:
    """Peak resident bytes of the replay: SANA-FE's objects or, if larger, our fast run before them,
    beside the event masks our run leaves (a byte per neuron, step and run)."""
    lean_chip_cores = size.chips * CHIP_CORES - size.input_cores
    sanafe = (SYNAPSE_BYTES * size.synapses + NEURON_BYTES * size.neurons
              + INPUT_UNIT_BYTES * PER_CORE * size.input_cores + CHIP_BYTES * lean_chip_cores / CHIP_CORES)
    return BASE_BYTES + size.runs * size.steps * size.neurons + max(sanafe, size.fast_run_bytes)


def check_memory(net: NetworkFile, size: ReplaySize) -> None:
    """Refuse, in one line, a replay whose estimate exceeds `--max-memory` or the memory available."""
    lower = ("give fewer --chips" if size.chips > -(-size.cores // CHIP_CORES) else
             "lower --steps" if net.quantized.free_running else
             "convert the network at a smaller --size or replay a smaller input")
    memory.check(estimate_bytes(size), f"the SANA-FE replay of {net.path} ({size.neurons:,} neurons, "
                 f"{size.synapses:,} synapses, {size.runs} run(s) of {size.steps} steps, {size.chips} chip(s))", lower)


#: CPU seconds per item, from the replay of the 16x16 VLIFNet (docs/cross-check-sanafe.md, "Cost"):
#: enumerating a connection (impulse convolutions), our fast run per neuron and step, building a
#: connection in SANA-FE's network, loading one on the chip, a SANA-FE step per neuron. They weigh the
#: phases of the progress bar, so its share done follows the time spent
PLAN_SECONDS = 1e-6
RUN_SECONDS = 1.5e-7
BUILD_SECONDS = 1.5e-6
LOAD_SECONDS = 1e-6
STEP_SECONDS = 6.5e-7


def phase_seconds(size: ReplaySize) -> dict[str, tuple[float, int]]:
    """Each phase of the replay: `(estimated seconds, items)`, items being what its progress counts."""
    neuron_steps = size.neurons * size.steps * size.runs
    return {"connections": (PLAN_SECONDS * size.synapses, size.synapses),
            "our run": (RUN_SECONDS * neuron_steps, size.runs),
            "network": (BUILD_SECONDS * size.synapses, size.synapses),
            "load": (LOAD_SECONDS * size.synapses * size.runs, size.runs),
            "steps": (STEP_SECONDS * neuron_steps, size.steps * size.runs)}
