"""Cross-check of the Loihi counts and energies against SANA-FE, an architecture-level simulator.

SANA-FE (PyPI `sanafe`, an optional extra: `neuro-deploy[sanafe]`) ships a model of Loihi 1
(`sanafe/examples/loihi.yaml`: 32 tiles of 4 cores, 1024 neurons a core, per-event energies).
This module replays one run of a deployed network through it and sets SANA-FE's events and
energies beside ours, layer by layer (docs/cross-check-sanafe.md).

The replay. Our fixed-point neurons (VLIF, NI-LIF, relays, graded payloads) are not SANA-FE
models, so SANA-FE is made to emit exactly the events our run emitted, and its own connection
tables, message routing, mesh and energy model do the rest:

* every layer is a SANA-FE neuron group on cores of its own (filled in order, so each message's
  destination core names its destination layer); the input layer's neurons are SANA-FE `input`
  neurons playing our input events as spike trains (zero-energy somas: the input comes from off
  the neurocores, as our counts treat it);
* every other neuron is a Loihi LIF (`loihi_lif` soma) that fires in a step exactly when our
  neuron sent a non-zero payload: its bias is set to cross the threshold in those steps, its
  leak clears it between steps, and its synapses carry weight 0, so they cost what SANA-FE
  charges but never move a potential;
* the synapses are our synapses' connections, found by convolving unit impulses with the
  synapse's non-zero pattern (upsampling included): a method independent of the fan-out maps
  `counts.py` uses. A conv runs on SANA-FE's conv synapse unit, an upsampling stage on its sparse
  unit, a dense synapse on its dense unit.

SANA-FE then counts one synaptic event per connection a message reaches, one message per
(spiking neuron, destination core), the mesh hops of each message, and every neuron access.
Per-layer figures come from its message and spike traces; their energies, priced with the
architecture's figures, are checked to add up to SANA-FE's own energy breakdown.

The cost: SANA-FE holds about 1 KB per connection (5.7 million on the 16x16 VLIFNet), so the
replay's peak is estimated from the network before anything is built (`sanafe_cost`) and refused
in one line above the memory limit; a `std::bad_alloc` that happens anyway is one line too, and
every phase (connections, our run, SANA-FE's network and chip, each step) reports progress.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import math
import os
import resource
import sys
import tempfile
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from neuro_deploy.common import memory
from neuro_deploy.common.progress import Update
from neuro_deploy.counting.counts import Counts
from neuro_deploy.counting.run import run_input, simulate_and_count
from neuro_deploy.crosscheck.sanafe_cost import (CHIP_CORES, PER_CORE, TILE_CORES, ReplaySize, check_memory,
                                                 estimate_bytes, phase_seconds, replay_size)
from neuro_deploy.energy.profiles import Profile, load_profile
from neuro_deploy.energy.report import layer_terms, price
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.formats.netx import placement, read_network
from neuro_deploy.ir.graph import Synapse, pair
from neuro_deploy.ir.quantized import Drive

#: energy terms set side by side (pJ); ours from the profile, SANA-FE's from its architecture
TERMS = ("synapse", "neuron", "spike", "message", "noc")
SOMA, INPUT_SOMA = "loihi_lif", "loihi_inputs"
SYNAPSE_UNITS = {"conv": "loihi_conv_synapse", "sparse": "loihi_sparse_synapse", "dense": "loihi_dense_synapse"}
MISSING = "the SANA-FE cross-check needs SANA-FE: pip install neuro-deploy[sanafe]"
CONNECT_CHUNK = 1 << 18  # connections handed to SANA-FE per call: bounds the Python list of pairs


def _require_sanafe() -> None:
    """A one-line error now if SANA-FE is missing, without importing it (the memory check comes first)."""
    if importlib.util.find_spec("sanafe") is None:
        raise NeuroDeployError(MISSING)


def _sanafe() -> Any:
    """The installed `sanafe` package, or a one-line error saying how to get it."""
    try:
        import sanafe
    except ImportError:
        raise NeuroDeployError(MISSING) from None
    return sanafe


@contextlib.contextmanager
def _out_of_memory(size: ReplaySize) -> Iterator[None]:
    """SANA-FE's `std::bad_alloc` (a MemoryError through pybind11), and ours, as one line."""
    try:
        yield
    except MemoryError:
        space = resource.getrlimit(resource.RLIMIT_AS)[0]  # a `ulimit -v` fails allocations long before RAM does
        allowed = "" if space == resource.RLIM_INFINITY else f", {memory.format_size(space)} of address space allowed"
        raise NeuroDeployError(
            f"SANA-FE ran out of memory replaying {size.neurons:,} neurons and {size.synapses:,} synapses "
            f"(estimated {memory.format_size(estimate_bytes(size))}; {memory.format_size(memory.available())} "
            f"available now{allowed}): free memory or replay a smaller network") from None


class _Progress:
    """One bar over the replay's phases, in thousandths of the whole, each phase weighted by its
    estimated seconds (`phase_seconds`) so the bar moves with the time spent and its ETA holds."""

    WHOLE = 1000

    def __init__(self, update: Update | None, size: ReplaySize) -> None:
        self.update = update or (lambda done, total, status="": None)
        self.phases = phase_seconds(size)  # phase: (seconds, items)
        self.total = sum(seconds for seconds, _ in self.phases.values())
        self.items = dict.fromkeys(self.phases, 0.0)  # items done per phase

    def advance(self, phase: str, items: float, status: str) -> None:
        """`items` more of `phase` are done."""
        seconds, count = self.phases[phase]
        self.items[phase] = min(count, self.items[phase] + items)
        done = sum(s * self.items[p] / max(n, 1) for p, (s, n) in self.phases.items())
        self.update(round(self.WHOLE * done / max(self.total, 1e-9), 6), self.WHOLE, status)  # 1000, not 999.99

    def our_run(self) -> Update:
        """An `on_tile` for our run: its tiles done so far."""
        def on_tile(done: float, total: int, status: str = "") -> None:
            self.advance("our run", done - self.items["our run"], f"our run: tile {int(done)}/{total}")
        return on_tile


@dataclass
class LayerCheck:
    """One layer: our counts and energies beside SANA-FE's replay of the same events."""

    index: int
    name: str
    placement: str
    neurons: int
    cores: int  # SANA-FE cores the layer occupies
    synops: int  # ours: synaptic ops into this layer
    sanafe_synops: int  # SANA-FE: synaptic events at this layer's cores
    spikes: int  # ours: events the layer sent
    sanafe_spikes: int  # SANA-FE: the layer's neurons that fired
    messages: int  # SANA-FE: spike messages the layer sent (one per destination core)
    hops: int  # SANA-FE: mesh hops of those messages
    sanafe_updates: int  # SANA-FE: neuron updates (its rule: fired, or received input the step before)
    ours_pj: dict[str, float]  # TERMS our profile prices
    sanafe_pj: dict[str, float]  # every TERM, from SANA-FE's counts and its architecture's figures
    unpriced: dict[str, int] = field(default_factory=dict)  # our counts the profile cannot price

    @property
    def agrees(self) -> bool:
        return self.synops == self.sanafe_synops and self.spikes == self.sanafe_spikes


@dataclass
class SanafeCheck:
    """Ours (a profile on our counts) against SANA-FE's Loihi model, for one run of a network."""

    network: str
    profile: str
    steps: int  # steps per run
    runs: int  # runs replayed (tiles of one image)
    cores: int  # SANA-FE cores used, of `chip_cores`
    chip_cores: int
    chips: int  # Loihi chips in the replayed mesh
    unit_pj: dict[str, float]  # the architecture's per-event energies used
    sanafe_reported: dict[str, float]  # SANA-FE's own energy breakdown (pJ): synapse, dendrite, soma, network, total
    sanafe_updates_reported: int  # SANA-FE's own count of neuron updates (input neurons that fire included)
    layers: list[LayerCheck] = field(default_factory=list)

    @property
    def mismatches(self) -> list[LayerCheck]:
        return [layer for layer in self.layers if not layer.agrees]

    def total(self, side: str) -> dict[str, float]:
        """Sum over layers of `ours_pj` or `sanafe_pj`, per term."""
        return {t: sum(getattr(layer, side).get(t, 0.0) for layer in self.layers) for t in TERMS}

    @property
    def reconciles(self) -> bool:
        """The per-layer SANA-FE energies add up to SANA-FE's own breakdown (and updates to its count)."""
        mine = self.total("sanafe_pj")
        sums = {"synapse": mine["synapse"], "soma": mine["neuron"] + mine["spike"],
                "network": mine["message"] + mine["noc"]}
        return (all(math.isclose(v, self.sanafe_reported[k], rel_tol=1e-9, abs_tol=1e-6) for k, v in sums.items())
                and sum(layer.sanafe_updates for layer in self.layers) == self.sanafe_updates_reported)

    def to_json(self) -> dict[str, Any]:
        return {"network": self.network, "profile": self.profile, "steps": self.steps, "runs": self.runs,
                "cores": self.cores, "chip_cores": self.chip_cores, "chips": self.chips, "agree": not self.mismatches,
                "reconciles": self.reconciles, "unit_pj": self.unit_pj, "sanafe_reported_pj": self.sanafe_reported,
                "total": {"ours_pj": self.total("ours_pj"), "sanafe_pj": self.total("sanafe_pj"),
                          "synops": sum(x.synops for x in self.layers),
                          "sanafe_synops": sum(x.sanafe_synops for x in self.layers),
                          "spikes": sum(x.spikes for x in self.layers),
                          "sanafe_spikes": sum(x.sanafe_spikes for x in self.layers),
                          "messages": sum(x.messages for x in self.layers), "hops": sum(x.hops for x in self.layers)},
                "layers": [{**{k: getattr(x, k) for k in (
                    "index", "name", "placement", "neurons", "cores", "synops", "sanafe_synops", "spikes",
                    "sanafe_spikes", "messages", "hops", "sanafe_updates", "ours_pj", "sanafe_pj", "unpriced")},
                    "agrees": x.agrees} for x in self.layers]}


# ---- the architecture ---------------------------------------------------------------------------

def _architecture(sanafe: Any, chips: int, input_cores: set[int]) -> tuple[Any, dict[str, float]]:
    """SANA-FE's bundled Loihi (one chip: 32 tiles of 4 cores in an 8x4 mesh), `chips` of them side by
    side in one mesh as SANA-FE's own `arch/loihi_large.yaml` does (a hop between chips is priced as a
    hop within one); its per-event energies (pJ), read from the file SANA-FE loads, so the per-layer
    prices are the simulator's own. Only the tiles holding `input_cores` keep the file's 1024 input
    somas a core: they cost nothing per event but 13.5 KB each to build, 1.8 GB a chip."""
    import yaml

    data = yaml.safe_load((files("sanafe.examples") / "loihi.yaml").read_text())
    arch = data["architecture"]
    tile = arch["tile"][0]
    base, count = tile["name"].split("[")[0], int(tile["name"].split("..")[1].rstrip("]")) + 1
    core = tile["core"][0]
    if (int(core["attributes"]["max_neurons_supported"]), len(range(*_span(core["name"])))) != (PER_CORE, TILE_CORES):
        raise NeuroDeployError("SANA-FE's Loihi cores changed (neurons a core, cores a tile): the replay's "
                               "placement and memory estimate no longer hold")
    arch["attributes"]["width"] *= chips
    lean = copy.deepcopy(tile)
    lean["core"][0]["soma"] = [u for u in core["soma"] if not u["name"].startswith(INPUT_SOMA)]
    with_inputs = {c // TILE_CORES for c in input_cores}
    arch["tile"] = [{**copy.deepcopy(tile if t in with_inputs else lean), "name": f"{base}[{t}..{t}]"}
                    for t in range(count * chips)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "loihi.yaml"
        path.write_text(yaml.safe_dump(data))
        loaded = sanafe.load_arch(str(path))
    units = {u["name"]: u["attributes"] for section in ("soma", "synapse", "axon_in", "axon_out")
             for u in core[section]}
    pj = {f"hop_{d}": tile["attributes"][f"energy_{d}_hop"] * 1e12 for d in ("north", "south", "east", "west")}
    pj.update({f"synapse_{k}": units[u]["energy_process_spike"] * 1e12 for k, u in SYNAPSE_UNITS.items()})
    soma = units[SOMA]
    pj.update(access=soma["energy_access_neuron"] * 1e12, update=soma["energy_update_neuron"] * 1e12,
              spike_out=soma["energy_spike_out"] * 1e12,
              message=(units["loihi_out"]["energy_message_out"] + units["loihi_in"]["energy_message_in"]) * 1e12)
    if any(v for k, v in units[f"{INPUT_SOMA}[0..{PER_CORE - 1}]"].items() if k.startswith("energy")):
        raise NeuroDeployError("SANA-FE's Loihi input somas are no longer free: this replay would charge the input")
    return loaded, pj


def _span(name: str) -> tuple[int, int]:
    """`'loihi_core[0..3]'` -> `(0, 4)`."""
    first, last = name.split("[")[1].rstrip("]").split("..")
    return int(first), int(last) + 1


# ---- connections: our synapses as (source, destination) neuron pairs ---------------------------

def _unit(syn: Synapse) -> str:
    return "dense" if syn.dense else "sparse" if syn.upsample > 1 else "conv"


def connections(syn: Synapse, mantissa: np.ndarray, src_shape: tuple[int, ...], dst_neurons: int,
                chunk: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """`(pre, post)`: every source neuron and the destination neurons it reaches through `syn`, by
    convolving unit impulses with the non-zero pattern (after the bilinear upsampling); `post`
    indexes the destination layer, channels placed at the synapse's offset."""
    mask = mantissa != 0
    n_src = int(np.prod(src_shape))
    if syn.dense:
        pre, post = np.nonzero(mask.reshape(mask.shape[0], -1).T)
        return pre.astype(np.int64), post.astype(np.int64) + syn.offset
    kernel = torch.from_numpy(mask.astype(np.float32))
    batch = max(1, chunk // max(n_src * syn.upsample ** 2, int(np.prod(syn.shape))))  # elements per impulse
    pres, posts = [], []
    with torch.no_grad():
        for start in range(0, n_src, batch):
            idx = torch.arange(start, min(start + batch, n_src))
            x = torch.zeros(len(idx), n_src)
            x[torch.arange(len(idx)), idx] = 1.0
            x = x.reshape(len(idx), *src_shape)
            if syn.upsample > 1:
                x = F.interpolate(x, scale_factor=syn.upsample, mode="bilinear", align_corners=False)
            y = F.conv2d(x, kernel, stride=pair(syn.stride), padding=pair(syn.padding), dilation=pair(syn.dilation),
                         groups=syn.groups)
            b, flat = torch.nonzero(y.reshape(len(idx), -1) > 0, as_tuple=True)
            pres.append((idx[b]).numpy())
            posts.append(flat.numpy())
    offset = syn.offset * int(np.prod(syn.shape[1:]))
    post = np.concatenate(posts).astype(np.int64) + offset
    if post.size and post.max() >= dst_neurons:
        raise NeuroDeployError(f"synapse {syn.name} reaches beyond its destination's {dst_neurons} neurons")
    return np.concatenate(pres).astype(np.int64), post


# ---- our run: counts and every layer's event masks -----------------------------------------------

def record(net: NetworkFile, x: np.ndarray, drive: Drive | None = None, on_tile: Update | None = None
           ) -> tuple[Counts, list[dict[str, np.ndarray]]]:
    """Our counts of one run, and per tile every layer's `[steps, neurons]` mask of non-zero payloads."""
    q = net.quantized
    steps = drive.steps if q.free_running and drive is not None else int(net.meta["steps"])
    sizes = {n: int(np.prod(q.graph.nodes[n].shape)) for n in q.layers}
    masks: dict[int, dict[str, np.ndarray]] = {}

    def mark(tile: int, layer: str, first: int, payload: torch.Tensor) -> None:
        if tile not in masks:
            masks[tile] = {n: np.zeros((steps, sizes[n]), bool) for n in q.layers}
        active = np.asarray(payload).reshape(payload.shape[0], -1) != 0
        masks[tile][layer][first:first + active.shape[0]] |= active

    counts = simulate_and_count(net, x, "fast", drive=drive, also=mark, on_tile=on_tile)[1]
    return counts, [masks[k] for k in sorted(masks)]


# ---- the replay ---------------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """SANA-FE's C++ kernel prints a progress line per `sim` call, to file descriptor 1 or, when
    Python's `sys.stdout` is replaced (a captured CLI run), through it: silence both."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "wb") as null, contextlib.redirect_stdout(io.StringIO()):
        os.dup2(null.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


@dataclass
class _Layer:
    name: str
    neurons: int
    is_input: bool
    cores: list[int]  # indices into the chip's core list
    incoming: list[tuple[str, str, np.ndarray, np.ndarray]]  # (source, unit, pre, post)


def _place(net: NetworkFile, per_core: int, chip_cores: int) -> list[_Layer]:
    """Every layer on cores of its own, in file order (no connections yet: this is the cheap check that
    the network can be replayed at all)."""
    q = net.quantized
    graph = q.graph
    layers, next_core = [], 0
    for name in q.layers:
        node = graph.nodes[name]
        where = placement(node)
        if where == "host":
            raise NeuroDeployError(f"layer {name} runs on the host: the SANA-FE replay needs a network wholly on "
                                   "neurocores")
        neurons = int(np.prod(node.shape))
        used = -(-neurons // per_core)
        layers.append(_Layer(name, neurons, where == "io", list(range(next_core, next_core + used)), []))
        next_core += used
    if next_core > chip_cores:
        raise NeuroDeployError(f"{net.path} needs {next_core} cores with a layer per core; the replayed chip has "
                               f"{chip_cores}")
    return layers


def _connect(net: NetworkFile, layers: list[_Layer], progress: _Progress) -> None:
    """Every layer's incoming connections, one synapse at a time."""
    q = net.quantized
    graph = q.graph
    by_name = {layer.name: layer for layer in layers}
    for syn in (n for n in graph.nodes.values() if isinstance(n, Synapse)):
        src = graph.nodes[graph.inputs(syn.name)[0]]
        dst = by_name[graph.consumers(syn.name)[0]]
        pre, post = connections(syn, q.synapses[syn.name].mantissa, src.shape, dst.neurons)
        dst.incoming.append((src.name, _unit(syn), pre, post))
        progress.advance("connections", len(pre), f"connections of {syn.name}")


def _units(layers: list[_Layer]) -> dict[tuple[str, str], str]:
    """`(source, destination)` layer -> the synapse unit of its connections; SANA-FE's message trace
    names the two layers only, so two kinds between one pair would be indistinguishable."""
    unit_of: dict[tuple[str, str], str] = {}
    for layer in layers:
        for src, unit, _, _ in layer.incoming:
            if unit_of.setdefault((src, layer.name), unit) != unit:
                raise NeuroDeployError(f"{src} reaches {layer.name} through synapses of two kinds: their SANA-FE "
                                       "events cannot be told apart")
    return unit_of


def _build(sanafe: Any, layers: list[_Layer], arch: Any, per_core: int, progress: _Progress) -> Any:
    """The SANA-FE network: groups, zero-weight connections on the right synapse units, placement."""
    cores = [core for tile in arch.tiles for core in tile.cores]
    snn = sanafe.Network()
    groups = {}
    for layer in layers:
        attributes = {} if layer.is_input else {"threshold": 0.5, "leak_decay": 0.0, "reset": 0.0,
                                                  "reset_mode": "hard", "bias": 0.0}
        groups[layer.name] = snn.create_neuron_group(layer.name, layer.neurons, model_attributes=attributes,
                                                     soma_hw_name=INPUT_SOMA if layer.is_input else SOMA,
                                                     log_spikes=True)
    for layer in layers:
        for src, unit, pre, post in layer.incoming:
            for neuron in groups[layer.name]:  # SANA-FE takes a connection's synapse unit from its destination
                neuron.set_attributes(default_synapse_hw_name=SYNAPSE_UNITS[unit])
            for start in range(0, len(pre), CONNECT_CHUNK):  # in chunks: a pair costs 140 B as a Python tuple
                part = slice(start, start + CONNECT_CHUNK)
                groups[src].connect_neurons_sparse(groups[layer.name], {"w": np.zeros(len(pre[part]))},
                                                   list(zip(pre[part].tolist(), post[part].tolist())))
                progress.advance("network", len(pre[part]), f"SANA-FE network: {src} -> {layer.name}")
    for layer in layers:
        for i, neuron in enumerate(groups[layer.name]):
            if layer.is_input:  # one input soma unit per neuron: SANA-FE's input model keeps one spike train a unit
                neuron.set_attributes(soma_hw_name=f"{INPUT_SOMA}[{i % per_core}]")
            neuron.map_to_core(cores[layer.cores[i // per_core]])
    return snn


def _received(layer: _Layer, masks: dict[str, np.ndarray]) -> np.ndarray:
    """`[steps, neurons]`: the layer's neurons that a spike message reached in each step."""
    steps = next(iter(masks.values())).shape[0]
    hit = np.zeros((steps, layer.neurons), bool)
    for src, _, pre, post in layer.incoming:
        for t in np.nonzero(masks[src].any(axis=1))[0]:
            hit[t, post[masks[src][t, pre]]] = True
    return hit


def _replay(sanafe: Any, arch: Any, snn: Any, layers: list[_Layer], masks: dict[str, np.ndarray],
            core_layer: dict[int, str], unit_of: dict[tuple[str, str], str], pj: dict[str, float],
            acc: dict[str, dict[str, float]], reported: dict[str, float], progress: _Progress, run: str) -> int:
    """Run one tile's events through SANA-FE step by step; add per-layer counts and energies to `acc`
    and SANA-FE's own breakdown to `reported`. Returns SANA-FE's count of neuron updates."""
    chip = sanafe.SpikingChip(arch)
    chip.load(snn)
    progress.advance("load", 1, f"SANA-FE chip loaded{run}")
    steps = next(iter(masks.values())).shape[0]
    mapped = chip.mapped_neuron_groups
    for layer in (x for x in layers if x.is_input):
        for i, neuron in enumerate(mapped[layer.name]):
            neuron.set_attributes(model_attributes={"spikes": masks[layer.name][:, i].tolist()})
    updates = 0
    firing = {x.name: np.zeros(x.neurons, bool) for x in layers if not x.is_input}
    with _quiet_stdout():
        for t in range(steps):
            for name, was in firing.items():
                now = masks[name][t]
                group = mapped[name]
                for i in np.nonzero(now != was)[0].tolist():
                    group[i].set_attributes(model_attributes={"bias": 1.0 if now[i] else 0.0})
                firing[name] = now
            result = chip.sim(1, spike_trace=True, message_trace=True)
            for key in ("synapse", "dendrite", "soma", "network", "total"):
                reported[key] += result["energy"][key] * 1e12
            updates += int(result["neurons_updated"])
            for fired in result["spike_trace"]:
                for address in fired:
                    acc[address.group_name]["sanafe_spikes"] += 1
            for messages in result["message_trace"]:
                for m in messages:
                    if m["placeholder"]:
                        continue
                    src, dst = m["src_neuron_group_id"], core_layer[m["dest_core_id"]]
                    acc[dst]["sanafe_synops"] += m["spikes"]
                    acc[dst]["synapse"] += m["spikes"] * pj[f"synapse_{unit_of[src, dst]}"]
                    dx, dy = m["dest_x"] - m["src_x"], m["dest_y"] - m["src_y"]
                    acc[src]["messages"] += 1
                    acc[src]["hops"] += abs(dx) + abs(dy)
                    acc[src]["message"] += pj["message"]
                    acc[src]["noc"] += abs(dx) * pj["hop_east" if dx > 0 else "hop_west"] + \
                        abs(dy) * pj["hop_north" if dy > 0 else "hop_south"]
            progress.advance("steps", 1, f"SANA-FE step {t + 1}/{steps}{run}")
    for layer in layers:
        fired = masks[layer.name]
        if layer.is_input:  # SANA-FE counts an input neuron that fires as updated (at no energy)
            acc[layer.name]["sanafe_updates"] += int(fired.sum())
            continue
        received = np.zeros_like(fired)
        received[1:] = _received(layer, masks)[:-1]  # a message is processed in its step, the soma in the next
        updated = int((fired | received).sum())
        acc[layer.name]["sanafe_updates"] += updated
        acc[layer.name]["neuron"] += layer.neurons * steps * pj["access"] + updated * pj["update"]
        acc[layer.name]["spike"] += int(fired.sum()) * pj["spike_out"]
    return updates


def _ours(layer: Any, profile: Profile) -> tuple[dict[str, float], dict[str, int]]:
    """Our energies per term, priced as `build_report` prices them, and what the profile cannot price."""
    quantities = layer_terms(layer)
    groups = {"synapse": ("synops_binary", "synops_nonbinary"), "neuron": ("updates_active", "updates_inactive"),
              "spike": ("spikes",)}  # no host MACs: `_place` refuses host layers
    energies, unpriced = {}, {}
    for term, keys in groups.items():
        energy, missing, _ = price({k: quantities[k] for k in keys}, profile)
        energies[term] = energy
        unpriced.update(missing)
    return energies, unpriced


def cross_check(net: NetworkFile, x: np.ndarray, drive: Drive | None = None, profile: str | Path = "loihi",
                chips: int | None = None, on_progress: Update | None = None) -> SanafeCheck:
    """Run `net` on `x` (as `simulate` takes it; a free-running network as `drive` says), count it, and
    replay every tile's events through SANA-FE's bundled Loihi, on `chips` chips in one mesh (default:
    as few as hold a layer per core); ours priced on `profile`. Refused before anything is built when
    its memory estimate exceeds the limit (`sanafe_cost`); `on_progress` hears every phase."""
    prof = load_profile(profile)
    if chips is not None and chips < 1:
        raise NeuroDeployError(f"chips must be at least 1, got {chips}")
    size = replay_size(net, x, drive, chips)
    chip_cores = size.chips * CHIP_CORES
    layers = _place(net, PER_CORE, chip_cores)
    check_memory(net, size)
    sanafe = _sanafe()
    progress = _Progress(on_progress, size)
    with _out_of_memory(size):
        _connect(net, layers, progress)
        counts, tiles = record(net, x, drive, progress.our_run())
        progress.advance("our run", size.runs, "our run: counted")
        arch, pj = _architecture(sanafe, size.chips, {c for layer in layers if layer.is_input for c in layer.cores})
        snn = _build(sanafe, layers, arch, PER_CORE, progress)
        core_layer = {core: layer.name for layer in layers for core in layer.cores}
        unit_of = _units(layers)
        acc = {layer.name: dict.fromkeys(("sanafe_synops", "sanafe_spikes", "messages", "hops", "sanafe_updates",
                                          *TERMS), 0.0) for layer in layers}
        reported = dict.fromkeys(("synapse", "dendrite", "soma", "network", "total"), 0.0)
        updates = sum(_replay(sanafe, arch, snn, layers, masks, core_layer, unit_of, pj, acc, reported, progress,
                              f" (run {k + 1}/{len(tiles)})" if len(tiles) > 1 else "")
                      for k, masks in enumerate(tiles))
    check = SanafeCheck(net.path, prof.name, counts.steps, counts.runs, len(core_layer), chip_cores, size.chips, pj,
                        reported, updates)
    for plan, ours in zip(layers, counts.layers):
        a = acc[plan.name]
        energies, unpriced = _ours(ours, prof)
        check.layers.append(LayerCheck(
            ours.index, ours.name, ours.placement, ours.neurons, len(plan.cores), ours.synops, int(a["sanafe_synops"]),
            ours.total("spikes_out"), int(a["sanafe_spikes"]), int(a["messages"]), int(a["hops"]),
            int(a["sanafe_updates"]), energies, {t: a[t] for t in TERMS}, unpriced))
    return check


def check_file(path: str | Path, input_path: str | Path, steps: int | None = None,
               profile: str | Path = "loihi", chips: int | None = None,
               on_progress: Update | None = None) -> SanafeCheck:
    """The cross-check of a network file (ours or plain netx) on the input at `input_path`, as
    `neuro-deploy energy` reads it (a plain netx file: `steps` steps)."""
    _require_sanafe()
    net = read_network(path)
    x, drive = run_input(net, input_path, steps)
    return cross_check(net, x, drive, profile, chips, on_progress)
