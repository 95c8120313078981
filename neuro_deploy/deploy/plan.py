"""A Loihi 2 deployment plan: each layer cut into per-core blocks as Intel's compiler cuts it, the cores
and chips that takes, whether a board holds it, and the time per step and per image.

The partition (docs/loihi-target.md, section 4) follows what the compiler's published logs show:
a layer fed by convolutions keeps its channels and rows whole and splits its columns into blocks of
a power of two (`Conv(W, H, C)`), the largest whose neurons fit a core; a dense layer is a run of
neurons. A block whose synaptic memory exceeds the core's budget is cut by the ratio of the two
(`max_ratio` in the logs) until it fits. Every core holds one block of one layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuro_deploy.loihi.budgets import (BOARDS, BUDGETS, CORES_PER_CHIP, CORES_PER_TILE, DELAY_BITS,
                                         DENSE_EXTRA_BITS, DENSE_HEADER_BITS, TILES_PER_ROW, TIMES_NS, WORD_BITS,
                                         board_chips)
from neuro_deploy.counting.counts import Counts, synapse_fanout
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.formats.netx import placement, read_network
from neuro_deploy.ir.graph import Synapse
from neuro_deploy.loihi.limits import synapse_process

USES = ("neurons", "synaptic_memory", "input_axons", "output_axons", "neuron_groups")
IMAGE_SIZE = 256  # a converted network's time per image is given for an image of this size, tiled


@dataclass
class Incoming:
    """One synapse into a layer, as the partition needs it."""

    name: str
    source: str
    process: str  # Conv, Sparse, DelaySparse, Dense, DelayDense
    bits: int  # weight bits stored per synapse (sign included)
    synapses: int  # synapses in the whole layer (non-zero weights reached)
    source_neurons: int
    taps: int  # Cin per group x kh x kw of a conv


@dataclass
class LayerPlan:
    index: int
    name: str
    kind: str
    placement: str  # chip, host, io or skipped
    shape: tuple[int, int, int]  # (C, H, W)
    neurons: int
    cores: int = 0
    block: tuple[int, int, int] = (0, 0, 0)  # (W, H, C) per core, as the compiler prints it
    dense: bool = False
    use: dict[str, int] = field(default_factory=dict)  # the largest block's use of each budget
    synapse_kinds: list[str] = field(default_factory=list)
    first_core: int = 0
    core_ns: float = 0.0  # busiest core's time per step
    per_core_step: dict[str, float] = field(default_factory=dict)  # synops, updates, spikes

    @property
    def block_label(self) -> str:
        if not self.cores:
            return "-"
        return f"Dense {self.block[2]}" if self.dense else f"Conv({self.block[0]}, {self.block[1]}, {self.block[2]})"

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "kind": self.kind, "placement": self.placement,
                "shape": list(self.shape), "neurons": self.neurons, "cores": self.cores, "block": self.block_label,
                "use": self.use, "synapse_kinds": self.synapse_kinds, "first_core": self.first_core,
                "core_time_ns": self.core_ns, "per_core_step": self.per_core_step}


@dataclass
class Plan:
    network: str
    board: str
    chips_available: int
    cores: int
    chips: int
    layers: list[LayerPlan]
    activity: str  # "input" (a run's counts) or "worst case"
    step_time_s: float
    steps_per_tile: int
    tiles: int
    mesh_ns: float
    busiest: str

    @property
    def fits(self) -> bool:
        return self.chips <= self.chips_available

    @property
    def image_time_s(self) -> float:
        return self.step_time_s * self.steps_per_tile * self.tiles

    def dominant(self, top: int = 3) -> list[LayerPlan]:
        return sorted((lp for lp in self.layers if lp.cores), key=lambda lp: -lp.cores)[:top]

    def to_json(self) -> dict[str, Any]:
        return {"network": self.network, "board": self.board, "chips_available": self.chips_available,
                "cores": self.cores, "chips": self.chips, "fits": self.fits, "step_time_s": self.step_time_s,
                "image_time_s": self.image_time_s, "images_per_s": 1 / self.image_time_s if self.image_time_s else None,
                "steps_per_tile": self.steps_per_tile, "tiles": self.tiles, "activity": self.activity,
                "mesh_ns": self.mesh_ns, "busiest_layer": self.busiest,
                "budgets": {k: b.value for k, b in BUDGETS.items()}, "cores_per_chip": CORES_PER_CHIP.value,
                "dominant": [{"name": lp.name, "cores": lp.cores, "share": lp.cores / self.cores}
                             for lp in self.dominant()],
                "layers": [lp.to_json() for lp in self.layers]}


# ---- synaptic memory ------------------------------------------------------------------------------

def weight_bits(mantissa: np.ndarray, process: str) -> int:
    """Bits a weight takes in synaptic memory, sign included. Lava's Conv has no exponent: the
    mantissas' own width. Other synapses carry netx's `num_weight_bits` (`optimize_weight_bits`: the
    8-bit field less the trailing zero bits every mantissa shares, one more when the signs are mixed)."""
    m = np.abs(mantissa.astype(np.int64))
    nonzero = m[m != 0]
    if not nonzero.size:
        return 1
    signed = int(mantissa.min() < 0 < mantissa.max())
    if process == "Conv":
        return int(nonzero.max()).bit_length() + signed
    common = int(np.bitwise_or.reduce(nonzero))
    zeros = (common & -common).bit_length() - 1
    return max(1, 8 + signed - zeros) + signed


def _words(bits: float) -> int:
    return math.ceil(bits / WORD_BITS.value)


def synaptic_memory(syn: Incoming, block_neurons: int, block_channels: int, layer_neurons: int) -> int:
    """Units (64-bit words) of synaptic memory one core spends on `syn` for a block of its layer.

    conv: the kernel once per core, each (input channel, tap) a row of the block's output channels;
    dense: each input axon a list of the block's weights, `bits + 11` per synapse and a 16-bit header;
    sparse: each input axon a list of its non-zero synapses into the block, with the dense entry
    size; a delayed synapse adds its delay field to every entry (docs/loihi-target.md, section 4)."""
    entry = syn.bits + DENSE_EXTRA_BITS.value + (DELAY_BITS.value if syn.process.startswith("Delay") else 0)
    if is_conv(syn):
        return syn.taps * _words(block_channels * syn.bits)
    if syn.process in ("Dense", "DelayDense"):
        return syn.source_neurons * _words(DENSE_HEADER_BITS.value + block_neurons * entry)
    axons = input_axons(syn, block_neurons, layer_neurons)
    entries = syn.synapses * block_neurons / layer_neurons
    return math.ceil((axons * DENSE_HEADER_BITS.value + entries * entry) / WORD_BITS.value)


def is_conv(syn: Incoming) -> bool:
    """A shared-kernel synapse: Lava's Conv, or a conv with one axonal delay (no per-weight field)."""
    return syn.process in ("Conv", "DelayConv")


def input_axons(syn: Incoming, block_neurons: int, layer_neurons: int) -> int:
    """Axons a block receives `syn` on: one per source neuron for dense and sparse synapses (a sparse
    one's sources spread over the blocks); a conv's spikes arrive on shared axons, one per synapse
    (the PilotNet log shows 1 or 2 per conv core)."""
    if is_conv(syn):
        return 1
    if syn.process in ("Dense", "DelayDense"):
        return syn.source_neurons
    return min(syn.source_neurons, math.ceil(syn.source_neurons * block_neurons / layer_neurons) + 1)


# ---- partition ----------------------------------------------------------------------------------

def _pow2_floor(n: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(n, 1)))))


def _first_block(shape: tuple[int, int, int], limit: int) -> tuple[int, int, int]:
    """(W, H, C): whole channels and rows, a power-of-two run of columns (the compiler's blocks);
    rows, then channels, are cut the same way when one column does not fit."""
    c, h, w = shape
    if c * h <= limit:
        return min(w, _pow2_floor(limit // (c * h))), h, c
    if c <= limit:
        return 1, min(h, _pow2_floor(limit // c)), c
    return 1, 1, _pow2_floor(limit)


def _block_use(incoming: list[Incoming], block: tuple[int, int, int], dense: bool, layer_neurons: int) -> dict:
    w, h, c = block
    n = w * h * c
    memory = sum(synaptic_memory(s, n, c, layer_neurons) for s in incoming)
    axons = sum(input_axons(s, n, layer_neurons) for s in incoming)
    return {"neurons": n, "synaptic_memory": memory, "input_axons": axons, "neuron_groups": 1}


def partition(layer: LayerPlan, incoming: list[Incoming]) -> None:
    """Cut the layer into blocks until one fits every budget; fills `cores`, `block` and `use`."""
    c, h, w = layer.shape
    limit = int(BUDGETS["neurons"].value)
    memory_budget = BUDGETS["synaptic_memory"].value
    if layer.dense:
        block = (1, 1, min(layer.neurons, limit))
    else:
        block = _first_block(layer.shape, limit)
    while True:
        use = _block_use(incoming, block, layer.dense, layer.neurons)
        over = max(use["synaptic_memory"] / memory_budget, use["input_axons"] / BUDGETS["input_axons"].value)
        if over <= 1 or block == (1, 1, 1):
            break
        ratio = math.ceil(over)
        bw, bh, bc = block
        if layer.dense:
            block = (1, 1, math.ceil(bc / ratio))
        elif any(is_conv(s) for s in incoming) and bc > 1 and use["input_axons"] <= BUDGETS["input_axons"].value:
            block = (bw, bh, _pow2_floor(bc / ratio))  # a conv kernel's memory follows the block's channels
        elif bw > 1:
            block = (_pow2_floor(bw / ratio), bh, bc)
        elif bh > 1:
            block = (bw, _pow2_floor(bh / ratio), bc)
        else:
            block = (bw, bh, _pow2_floor(bc / ratio))
    layer.block, layer.use = block, use
    bw, bh, bc = block
    layer.cores = math.ceil(layer.neurons / bc) if layer.dense else \
        math.ceil(w / bw) * math.ceil(h / bh) * math.ceil(c / bc)


# ---- reading the network ------------------------------------------------------------------------

def _incoming(net: NetworkFile, name: str) -> list[Incoming]:
    q = net.quantized
    graph = q.graph
    out = []
    for s in graph.inputs(name):
        syn = graph.nodes[s]
        if not isinstance(syn, Synapse):
            continue
        src = graph.nodes[graph.inputs(s)[0]]
        mantissa = q.synapses[s].mantissa
        taps = int(np.prod(mantissa.shape[1:])) if not syn.dense else 0
        process = synapse_process(syn)
        out.append(Incoming(s, src.name, process, weight_bits(mantissa, process),
                            int(synapse_fanout(syn, mantissa, src.shape).sum()), int(np.prod(src.shape)), taps))
    return out


def _layers(net: NetworkFile, skip_first: int) -> tuple[list[LayerPlan], dict[str, list[Incoming]]]:
    q = net.quantized
    graph = q.graph
    order = [n for n in graph.topological() if n in q.layers]
    movable = [n for n in order if placement(graph.nodes[n]) != "io"]
    if skip_first < 0 or skip_first >= len(movable):
        raise NeuroDeployError(f"--skip-first {skip_first}: the network has {len(movable)} layers to place "
                               f"(expected 0..{len(movable) - 1})")
    skipped = set(movable[:skip_first])
    layers, incoming = [], {}
    for i, name in enumerate(order):
        node = graph.nodes[name]
        where = "skipped" if name in skipped else {"neurocore": "chip"}.get(placement(node), placement(node))
        lp = LayerPlan(i, name, node.kind, where, tuple(node.shape), int(np.prod(node.shape)))
        incoming[name] = _incoming(net, name)
        lp.synapse_kinds = sorted({s.process for s in incoming[name]})
        lp.dense = any(s.process in ("Dense", "DelayDense") for s in incoming[name]) or lp.shape[1:] == (1, 1)
        layers.append(lp)
    return layers, incoming


# ---- time ---------------------------------------------------------------------------------------

def _per_step_activity(layer: LayerPlan, incoming: list[Incoming], counts: Counts | None) -> dict[str, float]:
    """A layer's synaptic ops, neuron updates and spikes in its busiest step: from a run's counts, or
    the worst case (every source neuron sends and every neuron spikes in every step)."""
    if counts is None:
        return {"synops": float(sum(s.synapses for s in incoming)), "updates": float(layer.neurons),
                "spikes": float(layer.neurons)}
    lc = next((x for x in counts.layers if x.name == layer.name), None)
    if lc is None:
        raise NeuroDeployError(f"the run's counts have no layer {layer.name}")
    runs = max(counts.runs, 1)
    synops = sum(lc.per_step[f"synops_{k}"] for k in ("binary", "graded", "real"))
    updates = lc.per_step["updates_active"] + lc.per_step["updates_inactive"]
    return {"synops": float(synops.max()) / runs, "updates": float(updates.max()) / runs,
            "spikes": float(lc.per_step["spikes_out"].max()) / runs}


def _position(core: int) -> tuple[int, int, int]:
    """(chip, x, y) of a core placed in order: cores fill tiles, tiles fill rows of the mesh."""
    chip, local = divmod(core, int(CORES_PER_CHIP.value))
    tile = local // int(CORES_PER_TILE.value)
    return chip, tile % int(TILES_PER_ROW.value), tile // int(TILES_PER_ROW.value)


def _route_ns(src: LayerPlan, dst: LayerPlan) -> float:
    """The longest route a layer's spikes take to the cores of the layer they reach: mesh hops
    between the farthest pair of their cores, plus a chip crossing per chip between them."""
    worst = 0.0
    for a in (src.first_core, src.first_core + src.cores - 1):
        for b in (dst.first_core, dst.first_core + dst.cores - 1):
            (ca, xa, ya), (cb, xb, yb) = _position(a), _position(b)
            hops = abs(xa - xb) + abs(ya - yb) if ca == cb else xa + ya + xb + yb
            worst = max(worst, hops * TIMES_NS["hop"].value + abs(ca - cb) * TIMES_NS["chip_hop"].value)
    return worst


def _timing(layers: list[LayerPlan], incoming: dict[str, list[Incoming]], counts: Counts | None
            ) -> tuple[float, float, str]:
    """(step time in ns, its mesh part, the busiest layer): the busiest core's ops, the longest route
    between the cores of connected layers, and the barrier (Davies 2018's Loihi 1 times)."""
    by_name = {lp.name: lp for lp in layers}
    busiest, busiest_ns = "", 0.0
    for lp in layers:
        if not lp.cores:
            continue
        act = _per_step_activity(lp, incoming[lp.name], counts)
        share = lp.use["neurons"] / lp.neurons
        lp.per_core_step = {k: v * share for k, v in act.items()}
        lp.core_ns = (lp.per_core_step["synops"] * TIMES_NS["synop"].value
                      + lp.per_core_step["updates"] * TIMES_NS["neuron_update"].value
                      + lp.per_core_step["spikes"] * TIMES_NS["spike"].value)
        if lp.core_ns > busiest_ns:
            busiest, busiest_ns = lp.name, lp.core_ns
    mesh = max((_route_ns(by_name[s.source], lp) for lp in layers if lp.cores for s in incoming[lp.name]
                if by_name.get(s.source) is not None and by_name[s.source].cores), default=0.0)
    return busiest_ns + mesh + TIMES_NS["barrier"].value, mesh, busiest


def _steps_and_tiles(net: NetworkFile, counts: Counts | None, image_size: int) -> tuple[int, int]:
    """Steps per tile and tiles per image: a converted network runs its own steps on each tile of an
    `image_size` square image; a plain netx file runs its sample length (or the run's steps) once."""
    if not net.quantized.free_running:
        from neuro_deploy.common.tile_grid import tile_count

        size = int(net.meta["input_shape"][-1])
        return int(net.meta["steps"]), tile_count(image_size, image_size, size, 8)
    steps = counts.steps if counts is not None else net.meta.get("sample_steps") or 1
    return int(steps), 1


def plan_network(net: NetworkFile, skip_first: int = 0, board: str | None = None, chips: int | None = None,
                 counts: Counts | None = None, image_size: int = IMAGE_SIZE) -> Plan:
    """The plan of a network read into the graph IR; `counts` (a run's) replace the worst case."""
    if chips is not None and chips <= 0:
        raise NeuroDeployError(f"--chips must be at least 1, got {chips}")
    if board is not None and chips is not None:
        raise NeuroDeployError("give --board or --chips, not both")
    if board is not None:
        board_chips(board)
    layers, incoming = _layers(net, skip_first)
    core = 0
    for lp in layers:
        if lp.placement != "chip":
            continue
        partition(lp, incoming[lp.name])
        lp.first_core, core = core, core + lp.cores
    _output_axons(layers, incoming)
    cores = core
    needed = max(1, math.ceil(cores / CORES_PER_CHIP.value))
    if chips is not None:
        name, available = f"{chips} chip{'s' if chips > 1 else ''}", chips
    elif board is not None:
        name, available = board, board_chips(board)
    else:  # the smallest board that holds it
        name = next((b for b, (n, _) in BOARDS.items() if n >= needed), "hala-point")
        available = BOARDS[name][0]
    step_ns, mesh_ns, busiest = _timing(layers, incoming, counts)
    steps, tiles = _steps_and_tiles(net, counts, image_size)
    return Plan(net.path, name, available, cores, needed, layers, "input" if counts is not None else "worst case",
                step_ns * 1e-9, steps, tiles, mesh_ns, busiest)


def _output_axons(layers: list[LayerPlan], incoming: dict[str, list[Incoming]]) -> None:
    """Output axon entries of each layer's largest block: one per neuron for each dense or sparse
    synapse it feeds (as the logs' AxonMap column shows for dense layers), one per destination core
    a conv block's shared axons reach."""
    by_name = {lp.name: lp for lp in layers}
    for lp in layers:
        if lp.cores:
            lp.use["output_axons"] = 0
    for dst in layers:
        for s in incoming[dst.name]:
            src = by_name.get(s.source)
            if src is None or not src.cores or not dst.cores:
                continue
            src.use["output_axons"] += max(1, math.ceil(dst.cores / src.cores)) if is_conv(s) \
                else src.use["neurons"]


def plan(path: str | Path, skip_first: int = 0, board: str | None = None, chips: int | None = None,
         input_path: str | Path | None = None, steps: int | None = None, image_size: int = IMAGE_SIZE) -> Plan:
    """The plan of a network file (converted or plain netx); with `input_path`, its time comes from a
    run of the fast simulator on that input rather than from the worst case."""
    if chips is not None and chips <= 0:
        raise NeuroDeployError(f"--chips must be at least 1, got {chips}")
    if board is not None:
        board_chips(board)
    if board is not None and chips is not None:
        raise NeuroDeployError("give --board or --chips, not both")
    net = read_network(path)
    counts = None
    if input_path is not None:
        from neuro_deploy.counting.run import run_input, simulate_and_count

        x, drive = run_input(net, input_path, steps)
        counts = simulate_and_count(net, x, "fast", drive=drive)[1]
    return plan_network(net, skip_first, board, chips, counts, image_size)
