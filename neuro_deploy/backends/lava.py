"""The Lava back end: any network file as Lava's own processes on the CPU simulator (fixed_pt).

Every synapse is a Lava synapse process holding the file's integer weights and exponent: a
Conv (`ConvExp`, which applies `weight_exp`; `DelayConv` where delayed), a Sparse for the bilinear
upsampling stage (a CachedDelaySparse where delayed), and for plain netx files' dense blocks a Dense or
DelayDense. LIF layers are Lava's LIF (LIFReset with a reset interval), sigma-delta layers
Lava's Delta / SigmaDelta / Sigma, bias-free relays Lava's GradedVec/GradedReluVec; only
NI-LIF, biased relays and the accumulator run neuro-deploy neuron programs
(`neuro_deploy.backends.lava_procs.neurons`), and every host layer runs in one `HostLayers` process, the
only one that imports torch. Fan-in is Lava's InPort sum.

The network runs in a worker process of its own session (`python -m neuro_deploy.backends.lava`),
so that an interrupt or a failure stops the worker and every Lava process it forked at once, and
the worker ends them, their shared memory and their files when its parent dies. The worker
imports torch only for the opt-in torch conv path, so the processes it forks stay small.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.sparse import csr_matrix

from neuro_deploy.backends.overflow import Overflow
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.ir.graph import NILIF, Graph, Input, MDAGate, SubstepGate, Synapse, pair
from neuro_deploy.ir.quantized import INPUT_SCALE, Drive, Quantized, neuron_positions
from neuro_deploy.loihi.limits import neuron_process, synapse_process

#: Lava's message channels cost each port a thread: a recorder takes at most this many layers.
MAX_RECORDED = 256
#: neuro-deploy's neuron processes save their own events; a recorder records every other layer's
SELF_RECORDING = ("GradedNeuron", "HostLayers")

Shape = tuple[int, int, int]
#: Shared-memory slots per Lava channel (Lava's default is 64, lava/magma/compiler/compiler.py:102).
#: Under the Loihi protocol a port holds at most one step's message, so a few slots suffice: 64
#: slots of a 64x64 layer's payload would be 16 MiB per channel.
CHANNEL_SLOTS = 4
TORCH_CONV = "NEURO_DEPLOY_LAVA_TORCH_CONV"  # set to 1: Lava's Conv runs its torch path (opt-in)
SEGMENTS_FILE = "segments.txt"  # the worker logs the shared-memory segments of the run here
SHARED_MEMORY = "/dev/shm"  # where Linux keeps POSIX shared memory (Lava's channels)
PROGRESS_FILE = "steps.txt"  # the first recorder writes the steps done here,
PROGRESS_EVERY = 0.5  # at most this often (seconds)
TALLIES_FILE = "tallies.txt"  # the worker lists each counted synapse's and layer's tally file here


def use_torch_conv() -> None:
    """Switch Lava's Conv to the torch path upstream disabled (lava/proc/conv/utils.py:10-18: it hung
    in forked processes whose parent had started torch's thread pool). One torch thread, set before
    Lava forks, avoids that; float32 is exact for the sums the target allows (below 2^24)."""
    import torch
    import torch.nn.functional as F
    from lava.proc.conv import utils

    torch.set_num_threads(1)
    utils.torch, utils.F, utils.TORCH_IS_AVAILABLE = torch, F, True


def lava_shape(shape: Shape) -> tuple[int, int, int]:
    """Lava orders neurons `(W, H, C)` (netx reverses the file's `(C, H, W)`)."""
    return tuple(int(v) for v in shape[::-1])


def lava_index(c: np.ndarray, y: np.ndarray, x: np.ndarray, shape: Shape) -> np.ndarray:
    """Flat index of neuron (c, y, x) in Lava's C-order `(W, H, C)` layout."""
    _, h, _ = shape
    return (x * h + y) * shape[0] + c


def conv_matrix(weight: np.ndarray, in_shape: Shape, stride: int, padding: int, offset: int, width: int,
                out_hw: tuple[int, int]) -> csr_matrix:
    """The convolution (torch semantics) as a `(dst, src)` matrix in Lava's flat layout, its
    outputs placed at channels `[offset, offset + out)` of a `width`-channel destination."""
    c_in, h, w = in_shape
    ho, wo = out_hw
    k = weight.shape[-1]
    rows, cols, vals = [], [], []
    for ky in range(k):
        for kx in range(k):
            iy, ix = np.arange(ho) * stride - padding + ky, np.arange(wo) * stride - padding + kx
            vy, vx = (iy >= 0) & (iy < h), (ix >= 0) & (ix < w)
            oy, ox = np.meshgrid(np.arange(ho)[vy], np.arange(wo)[vx], indexing="ij")
            sy, sx = np.meshgrid(iy[vy], ix[vx], indexing="ij")
            o, c = np.nonzero(weight[:, :, ky, kx])
            rows.append(lava_index(o[:, None] + offset, oy.ravel()[None], ox.ravel()[None], (width, ho, wo)).ravel())
            cols.append(lava_index(c[:, None], sy.ravel()[None], sx.ravel()[None], in_shape).ravel())
            vals.append(np.repeat(weight[o, c, ky, kx].astype(np.int64), oy.size))
    shape = (width * ho * wo, c_in * h * w)
    return csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape)


def bilinear_matrix(shape: Shape) -> csr_matrix:
    """Bilinear x2 (align_corners False) times 16 as an integer matrix: per axis an output
    takes 3 parts of its nearest input and 1 of the next nearest (clamped at the borders)."""
    c, h, w = shape

    def axis(n: int) -> np.ndarray:
        m = np.zeros((2 * n, n), np.int64)
        for j in range(2 * n):
            k = j // 2
            m[j, k] += 3
            m[j, max(k - 1, 0) if j % 2 == 0 else min(k + 1, n - 1)] += 1
        return m

    ay, ax = axis(h), axis(w)
    yy, ky = np.nonzero(ay)
    xx, kx = np.nonzero(ax)
    # every (channel, row tap, column tap) triple
    C, Y, X = np.meshgrid(np.arange(c), np.arange(len(yy)), np.arange(len(xx)), indexing="ij")
    r = lava_index(C, yy[Y], xx[X], (c, 2 * h, 2 * w)).ravel()
    s = lava_index(C, ky[Y], kx[X], shape).ravel()
    v = (ay[yy[Y], ky[Y]] * ax[xx[X], kx[X]]).ravel()
    return csr_matrix((v, (r, s)), shape=(c * 4 * h * w, c * h * w))


def synapse_matrix(syn: Synapse, mantissa: np.ndarray, src_shape: Shape) -> csr_matrix:
    """The whole synapse (upsampling, convolution, placement) as one integer matrix."""
    up_shape = (src_shape[0], src_shape[1] * syn.upsample, src_shape[2] * syn.upsample)
    m = conv_matrix(mantissa, up_shape, syn.stride, syn.padding, syn.offset, syn.width, syn.shape[1:])
    return (m @ bilinear_matrix(src_shape)).tocsr() if syn.upsample > 1 else m


def input_frames(node: Input, image: np.ndarray, drive: Drive) -> np.ndarray:
    """The RingBuffer's data `(W, H, C, steps)`: 8-bit pixels for the input window, then zeros;
    or the integer events of a free-running network (none when they drive the bias)."""
    steps = drive.steps
    data = np.zeros((*lava_shape(node.shape), steps), np.int32)
    if node.encoding == "events":
        if drive.as_bias:
            return data
        frames = np.broadcast_to(image, (steps, *image.shape)) if image.ndim == 3 else image
    else:
        frames = image[None].repeat(node.repeat, 0) if image.ndim == 3 else image
        frames = np.round(np.clip(frames.astype(np.float64), 0, 1) * INPUT_SCALE)
    for t in range(min(len(frames), steps)):
        data[..., t] = frames[t].astype(np.int32).transpose(2, 1, 0)
    return data


def lava_array(a: np.ndarray) -> np.ndarray:
    """A per-neuron `(C, H, W)` array in Lava's `(W, H, C)` order."""
    return np.ascontiguousarray(np.asarray(a).transpose(2, 1, 0))


def _window(graph: Graph, name: str) -> int:
    srcs = [graph.inputs(s)[0] for s in graph.inputs(name)]
    return max((graph.nodes[s].steps for s in srcs), default=graph.nodes[name].steps)


#: Memory a Lava run adds to the command's (summed PSS of its process tree), measured on this
#: project's machine (docs/lava-facts.md §10): what one forked Lava process holds before its layer's
#: data (Python, Lava's runtime, its port threads); the worker and Lava's services; the host
#: process's torch; and per element of a layer's payload, the copies its processes keep (send and
#: receive buffers, state, the channel's slots in shared memory, convolution temporaries).
PROCESS_BYTES = 13 << 20
BASE_BYTES = 512 << 20
TORCH_BYTES = 400 << 20
COPIES_PER_PAYLOAD = 16


def process_count(q: Quantized) -> int:
    """Lava processes a run of `q` starts: a neuron process per layer (all host layers share one),
    a synapse process per synapse, the recorders, and Lava's runtime service."""
    hosted = [n for n in q.layers if q.graph.nodes[n].role == "host"]
    recorded = sum(neuron_process(q.graph.nodes[n], q.layers[n].params) not in SELF_RECORDING for n in q.layers)
    return len(q.layers) - len(hosted) + bool(hosted) + len(q.synapses) + -(-recorded // MAX_RECORDED) + 1


def estimate_bytes(q: Quantized, steps: int) -> float:
    """Memory a Lava run of `q` for `steps` steps adds at its peak, its events read back included:
    the processes, each layer's payload copies, the delayed synapses' slots, the unrolled
    upsampling matrices, and the events of each layer's window (every step of a free-running
    network) as its process logs them and as the command reads them back (only the steps that
    carry events touch memory)."""
    graph = q.graph
    size = {n: math.prod(graph.nodes[n].shape) * 4 for n in graph.nodes}
    total = BASE_BYTES + process_count(q) * PROCESS_BYTES
    if any(graph.nodes[n].role == "host" for n in q.layers):
        total += TORCH_BYTES
    for name in q.layers:
        window = steps if q.free_running else _window(graph, name)
        total += size[name] * (COPIES_PER_PAYLOAD + 2 * min(window, steps))
    for name in q.synapses:
        syn = graph.nodes[name]
        total += size[name] * (COPIES_PER_PAYLOAD + syn.delay)
        if synapse_process(syn) in ("Sparse", "DelaySparse"):  # an output takes 4 bilinear taps of each weight
            m = q.synapses[name].mantissa
            total += 16 * math.prod(syn.shape) * 4 * np.count_nonzero(m) / m.shape[0]
    return total


@dataclasses.dataclass
class LavaNetwork:
    """A network as Lava processes: each layer's ports (`s_out`, `a_in`, `a_in1`), where each
    layer's events will be saved (`.whc.npz`: Lava's layout), where each counted layer and
    synapse saves its overflow tally (`recorder.Tally`), and every process to compile."""

    layers: dict[str, object]
    paths: dict[str, Path]
    processes: list[object]
    tallies: dict[str, Path] = dataclasses.field(default_factory=dict)


#: the synapse processes whose models count their wrapped sums (Lava's stock DelayDense does not)
COUNTED_SYNAPSES = ("Conv", "DelayConv", "Sparse", "DelaySparse", "Dense")


def build(q: Quantized, image: np.ndarray, drive: Drive, folder: Path, progress_every: float = PROGRESS_EVERY,
          states: tuple[str, ...] = ()) -> LavaNetwork:
    """Lava processes for the whole network; its first layer is the process to run. The steps
    done go to `folder/PROGRESS_FILE` at most every `progress_every` seconds. Every LIF layer, graded
    neuron program, host layer and counted synapse tallies its overflow; the LIF layers in `states`
    save their final `u` and `v` with it."""
    from lava.proc.io.source import RingBuffer

    from neuro_deploy.backends.lava_procs.recorder import MultiRecorder

    graph = q.graph
    order = [n for n in graph.topological() if n in q.layers]
    procs: dict[str, object] = {}
    paths: dict[str, Path] = {}
    recorded: list[tuple[object, tuple[int, ...], Path]] = []
    hosted: list[str] = []
    positions = neuron_positions(q)
    tallies = {}
    for i, name in enumerate(order):
        node, p = graph.nodes[name], q.layers[name].params
        kind = neuron_process(node, p)
        paths[name] = folder / (f"{i}.npz" if kind in SELF_RECORDING else f"{i}.whc.npz")
        if kind in ("LIF", "HostLayers") or (kind == "GradedNeuron" and not isinstance(node, NILIF)):
            tallies[name] = folder / f"t{i}.npz"  # the layers whose states wrap or saturate
        if kind == "HostLayers":  # built together below
            hosted.append(name)
            continue
        if kind == "GradedNeuron":  # a neuro-deploy neuron program, which saves its own events
            procs[name] = _graded_neuron(q, name, drive.steps, paths[name], tallies.get(name))
            continue
        if kind == "RingBuffer":
            proc = RingBuffer(data=input_frames(node, image, drive))
        elif kind == "LIF":
            bias = image if drive.as_bias and graph.inputs(name) == [order[0]] else None
            proc = _lif(lava_shape(node.shape), p, bias, drive, positions.get(name, 0), tallies[name], name in states)
        else:
            proc = _lava_neuron(kind, lava_shape(node.shape), p)
        recorded.append((proc, lava_shape(node.shape), paths[name]))
        procs[name] = proc
    processes = list(procs.values())
    if hosted:
        host, ports = _host_layers(q, hosted, drive.steps, paths, tallies)
        procs.update(ports)
        processes.append(host)
    for edge in graph.edges:  # a free-running network's input neurons take the input directly
        if edge.src in q.layers and edge.dst in q.layers:
            procs[edge.src].s_out.connect(procs[edge.dst].a_in)
    synapses = [name for name in graph.topological() if isinstance(graph.nodes[name], Synapse)]
    for j, name in enumerate(synapses):
        if synapse_process(graph.nodes[name]) in COUNTED_SYNAPSES:
            tallies[name] = folder / f"s{j}.npz"
    processes += [_connect(q, name, procs, drive.steps, tallies.get(name)) for name in synapses]
    for start in range(0, len(recorded), MAX_RECORDED):
        chunk = recorded[start:start + MAX_RECORDED]
        recorder = MultiRecorder(shapes=[s for _, s, _ in chunk], num_steps=drive.steps,
                                 paths=[str(path) for _, _, path in chunk],
                                 progress=str(folder / PROGRESS_FILE) if start == 0 else "",
                                 progress_every=progress_every)
        for k, (proc, _, _) in enumerate(chunk):
            proc.s_out.connect(getattr(recorder, f"in{k}"))
        processes.append(recorder)
    return LavaNetwork({n: procs[n] for n in order}, paths, processes, tallies)


def run_config(processes: list[object]):
    """Loihi2SimCfg(fixed_pt), each process's model chosen once per process class. Left to
    itself, Lava's compiler searches anew for every process, executing each module beside the
    process's own (docs/lava-facts.md §8.8): 840 s of one compile with 344 processes. neuro-deploy's
    recorder and host processes declare their ports per instance, so their models are made here."""
    from lava.magma.compiler.compiler_graphs import ProcGroupDiGraphs
    from lava.magma.core.run_configs import Loihi2SimCfg

    from neuro_deploy.backends.lava_procs.host import HostLayers, host_model
    from neuro_deploy.backends.lava_procs.recorder import MultiRecorder, recorder_model

    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    made = {HostLayers: host_model, MultiRecorder: recorder_model}
    chosen: dict[type, type] = {}
    models = {}
    for proc in processes:
        cls = type(proc)
        if cls in made:
            models[proc] = made[cls](proc)
            continue
        if cls not in chosen:
            chosen[cls] = cfg.select(proc, ProcGroupDiGraphs._find_proc_models(proc))
        models[proc] = chosen[cls]
    cfg.exception_proc_model_map = models
    return cfg


def _lif(shape: tuple[int, int, int], p, bias: np.ndarray | None, drive: Drive, position: int, tally: Path,
         states: bool):
    """A LIF layer as Lava's LIF (LIFReset with a reset interval), counted into `tally` (`bias`: the
    input, when it drives the bias; `states`: also save the final `u` and `v` there)."""
    from neuro_deploy.backends.lava_procs.neurons import CountedLIF, CountedLIFReset

    bias = bias if bias is not None else p.bias
    bias_mant = 0 if bias is None else lava_array(bias).astype(np.int32)
    common = dict(shape=shape, du=p.du, dv=p.dv, vth=p.vth, bias_mant=bias_mant, bias_exp=p.bias_exp,
                  num_steps=drive.steps, tally=str(tally), states=states)
    if drive.reset_interval is None:
        return CountedLIF(**common)
    return CountedLIFReset(**common, reset_interval=drive.reset_interval, reset_offset=position + 1)


def _lava_neuron(kind: str, shape: tuple[int, int, int], p):
    """One of Lava's own graded or sigma-delta neuron processes for a layer."""
    from lava.proc.graded.process import GradedReluVec, GradedVec
    from lava.proc.sdn.process import Delta, Sigma, SigmaDelta

    if kind in ("GradedVec", "GradedReluVec"):
        return (GradedReluVec if kind == "GradedReluVec" else GradedVec)(shape=shape, vth=0)
    if kind == "Sigma":
        return Sigma(shape=shape)
    if kind == "Delta":
        return Delta(shape=shape, vth=p.vth, spike_exp=p.spike_exp, state_exp=p.state_exp)
    bias = 0 if p.bias is None else lava_array(np.broadcast_to(p.bias, shape[::-1])).astype(np.int32)
    return SigmaDelta(shape=shape, vth=p.vth, bias=bias, spike_exp=p.spike_exp, state_exp=p.state_exp)


def _connect(q: Quantized, name: str, procs: dict[str, object], steps: int, tally: Path | None):
    """The synapse `name` as its Lava process, from its source's port to its destination's; a
    counted one tallies its wrapped sums over `steps` steps into `tally`."""
    from lava.proc.dense.process import DelayDense

    from neuro_deploy.backends.lava_procs.synapses import (CachedDelaySparse, ConvExp, CountedDense, CountedSparse,
                                                           DelayConv)

    graph = q.graph
    syn, qs = graph.nodes[name], q.synapses[name]
    src = graph.inputs(name)[0]
    edge = next(e for e in graph.edges if e.src == name)
    dst_port = getattr(procs[edge.dst], "a_in1" if edge.port == 1 else "a_in")
    out = procs[src].s_out
    bits = 0 if q.layers[src].payload_bits == 1 else 24
    kind = synapse_process(syn)
    if kind in ("Conv", "DelayConv"):
        weight = np.zeros((syn.width, *qs.mantissa.shape[1:]), np.int32)
        weight[syn.offset:syn.offset + qs.mantissa.shape[0]] = qs.mantissa
        common = dict(weight=np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)),
                      input_shape=lava_shape(graph.nodes[src].shape), padding=pair(syn.padding)[::-1],
                      stride=pair(syn.stride)[::-1], dilation=pair(syn.dilation)[::-1], groups=syn.groups,
                      weight_exp=qs.shift, num_message_bits=bits, num_steps=steps, tally=str(tally))
        conv = ConvExp(**common) if kind == "Conv" else DelayConv(**common, delay=syn.delay)
        out.connect(conv.s_in)
        conv.a_out.connect(dst_port)
        return conv
    if kind in ("Dense", "DelayDense"):  # netx's dense blocks: the source flattened in its (C, H, W) order
        weight = qs.mantissa.reshape(qs.mantissa.shape[0], -1).astype(np.int32)
        # the mantissas are what Lava's Dense keeps of the file's weights (netx's optimization, clip and
        # truncation ran on reading): Dense truncates `8 - num_weight_bits + mixed` bits, here none
        mixed = int(weight.min() < 0 < weight.max())
        common = dict(weights=weight, weight_exp=qs.shift, num_weight_bits=8 + mixed, num_message_bits=bits)
        dense = CountedDense(**common, num_steps=steps, tally=str(tally)) if kind == "Dense" else \
            DelayDense(**common, delays=syn.delays.reshape(weight.shape).astype(int), max_delay=62)
        out.transpose([2, 1, 0]).flatten().connect(dense.s_in)
        dense.a_out.reshape(lava_shape(syn.shape)).connect(dst_port)
        return dense
    matrix = synapse_matrix(syn, qs.mantissa, graph.nodes[src].shape).astype(np.int32)
    counted = dict(weight_exp=qs.shift, num_message_bits=bits, num_steps=steps, tally=str(tally))
    if kind == "Sparse":
        sparse = CountedSparse(weights=matrix, **counted)
    else:
        delays = matrix.astype(np.int64)
        delays.data[:] = syn.delay
        sparse = CachedDelaySparse(weights=matrix, delays=delays, **counted)
    out.flatten().connect(sparse.s_in)
    sparse.a_out.reshape(lava_shape(syn.shape)).connect(dst_port)
    return sparse


def _graded_neuron(q: Quantized, name: str, steps: int, path: Path, tally: Path | None):
    """The neuro-deploy neuron program of a layer (NI-LIF, biased relay, accumulator), its events
    saved to `path` and its saturated states counted into `tally` (none for NI-LIF: its state
    does not saturate)."""
    from neuro_deploy.backends.lava_procs.neurons import GradedNeuron

    graph = q.graph
    node, p = graph.nodes[name], q.layers[name].params
    syn = graph.nodes[graph.inputs(name)[0]]
    if isinstance(node, NILIF):
        kind, params = "nilif", {**dataclasses.asdict(p), "r": node.r}
    else:
        kind = node.kind
        bias = np.zeros(syn.shape[0], np.int64) if p.bias is None else np.asarray(p.bias, np.int64)
        params = {"bias": bias, "relu": bool(p.relu), "shift": int(p.shift)}
    return GradedNeuron(in_shape=lava_shape(syn.shape), out_shape=lava_shape(node.shape), kind=kind, start=node.start,
                        window=_window(graph, name), num_steps=steps, path=str(path), params=params,
                        tally="" if tally is None else str(tally))


def _host_layers(q: Quantized, names: list[str], steps: int, paths: dict[str, Path], tallies: dict[str, Path]):
    """One `HostLayers` process for every host layer, and each layer's ports on it."""
    from types import SimpleNamespace

    from neuro_deploy.backends.lava_procs.host import HostLayers

    graph = q.graph
    layers = []
    for name in names:
        node, layer = graph.nodes[name], q.layers[name]
        into = {e.port: e.src for e in graph.edges if e.dst == name}  # several synapses into a port sum there
        layers.append({
            "in_shapes": [lava_shape(graph.nodes[into[p]].shape) for p in sorted(into)], "out_shape": lava_shape(node.shape),
            "start": node.start, "window": _window(graph, name), "path": str(paths[name]), "tally": str(tallies[name]),
            "params": {"node": node, "scale": layer.scale, "state_scale": layer.state_scale, "emit": node.emit,
                       "windowed": isinstance(node, (MDAGate, SubstepGate))}})
    host = HostLayers(layers=layers, num_steps=steps)
    ports = {name: SimpleNamespace(s_out=getattr(host, f"s_out{i}"), **{
        "a_in" + ("" if p == 0 else str(p)): getattr(host, f"a_in{i}_{p}") for p in range(len(layers[i]["in_shapes"]))})
        for i, name in enumerate(names)}
    return host, ports


def _load(paths: dict[str, Path], steps: int) -> dict[str, np.ndarray]:
    from neuro_deploy.backends.lava_procs.recorder import load_events

    events = {}
    for name, path in paths.items():
        e = load_events(str(path), steps)
        events[name] = e.transpose(0, 3, 2, 1) if path.name.endswith(".whc.npz") else e
    return events


# ---- the worker: builds and runs the network in a session of its own -----------------------------

def _worker(net_path: str, image_path: str, options: str, folder: str) -> int:
    from lava.magma.core.run_conditions import RunSteps

    from neuro_deploy.formats.netx import read_network

    folder_path = Path(folder)
    opts = json.loads(options)
    drive = Drive(**opts["drive"])
    parent = os.getppid()
    try:
        q = read_network(net_path, tuple(opts["skip"])).quantized
    except NeuroDeployError as exc:
        (folder_path / "error.txt").write_text(str(exc))
        return 2
    if os.environ.get(TORCH_CONV) == "1":
        use_torch_conv()
    _log_segments(folder_path / SEGMENTS_FILE)
    running: list[object] = []  # the process run() is called on, once built
    threading.Thread(target=_watch, args=(running, folder_path, parent), daemon=True).start()
    lifs = [n for n in q.layers if neuron_process(q.graph.nodes[n], q.layers[n].params) == "LIF"]
    net = build(q, np.load(image_path), drive, folder_path, opts["progress_every"],
                tuple(lifs if opts["states"] else opts["probe_u"]))
    root = next(iter(net.layers.values()))
    running.append(root)
    gc.freeze()  # the forked Lava processes share the worker's objects: keep the collector off their pages
    try:
        root.run(condition=RunSteps(num_steps=drive.steps), run_cfg=run_config(net.processes),
                 compile_config={"pypy_channel_size": CHANNEL_SLOTS})
        error = _child_error(root)  # a model may fail after the last step's messages went out
    except Exception as exc:
        error = _child_error(root) or f"{type(exc).__name__}: {exc}"
    saved = [*net.paths.items(), *net.tallies.items()]
    missing = [name for name, path in saved if not path.exists()]  # saved in each model's last step
    if not error and missing:  # an error reported late (Lava's actors are polled without waiting)
        error = _child_error(root) or f"layer {missing[0]} saved no events"
    if error:  # Lava's stop() would wait forever on the dead process: the parent stops the session
        (folder_path / "error.txt").write_text(error)
        return 3
    (folder_path / TALLIES_FILE).write_text("\n".join(f"{_tally_kind(q, n)}\t{n}\t{p}" for n, p in net.tallies.items()))
    (folder_path / "paths.txt").write_text("\n".join(f"{n}\t{p}" for n, p in net.paths.items()))
    root.stop()
    return 0


def _tally_kind(q: Quantized, name: str) -> str:
    """What a tally counts: a synapse's wrapped sums, a LIF layer's wrapped currents and saturated
    voltages, another layer's saturated states."""
    if name in q.synapses:
        return "synapse"
    return "lif" if neuron_process(q.graph.nodes[name], q.layers[name].params) == "LIF" else "layer"


def _log_segments(path: Path) -> None:
    """Have Lava's shared-memory manager write the name of every segment it creates to `path`, so
    that whoever ends the run removes them, whatever killed it (a killed manager leaves them in
    /dev/shm: about 700 after one interrupt in three)."""
    from lava.magma.runtime.message_infrastructure import multiprocessing as infrastructure

    class LoggedSharedMemoryManager(infrastructure.SharedMemoryManager):
        def create_shared_memory(self, size: int):
            handle = super().create_shared_memory(size)
            with open(path, "a") as f:
                f.write(handle.name + "\n")
            return handle

    infrastructure.SharedMemoryManager = LoggedSharedMemoryManager


def remove_segments(folder: Path) -> None:
    """Unlink the shared-memory segments a run in `folder` logged (those still there). Through the
    file system: attaching a `SharedMemory` would start Python's resource tracker in this process."""
    log = folder / SEGMENTS_FILE
    for name in log.read_text().split() if log.exists() else ():
        Path(SHARED_MEMORY, name).unlink(missing_ok=True)


def _watch(running: list[object], folder: Path, parent: int) -> None:
    """A Lava process that fails mid-run leaves the others waiting on its channels and run()
    never returns: report the first failure and end the worker (the parent stops the session).
    If the parent dies (any signal, SIGKILL included), nobody would: end the session, its
    shared memory and its folder here."""
    while True:
        time.sleep(0.2)
        if os.getppid() != parent:
            remove_segments(folder)
            shutil.rmtree(folder, ignore_errors=True)
            os.killpg(os.getpgrp(), signal.SIGKILL)
        error = _child_error(running[0]) if running else None
        if error:
            (folder / "error.txt").write_text(error)
            os._exit(3)


def _child_error(root) -> str | None:
    """The failed Lava process's exception (Lava itself only says "See output above")."""
    infrastructure = getattr(getattr(root, "runtime", None), "_messaging_infrastructure", None)
    for actor in getattr(infrastructure, "actors", []):
        if actor.exception:
            error, trace = actor.exception
            frames = [line.strip() for line in trace.splitlines() if line.strip().startswith("File ")]
            return f"{type(error).__name__}: {error}" + (f" ({frames[-1]})" if frames else "")
    return None


def stop_group(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """Terminate the worker's whole session (the worker and every Lava process it forked)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
    proc.poll()


@dataclasses.dataclass
class LavaRun:
    events: dict[str, np.ndarray]  # every layer's payloads `[steps, C, H, W]`
    u: dict[str, np.ndarray]  # the final current `u` of the probed LIF layers, `(C, H, W)`
    overflow: Overflow = dataclasses.field(default_factory=Overflow)  # as the process models counted it
    states: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)  # final (u, v)


def run_lava(path: str, image: np.ndarray, drive: Drive, skip: tuple[str, ...] = (),
             probe_u: tuple[str, ...] = (), on_step: Callable[[int, int], None] | None = None,
             states: bool = False) -> LavaRun:
    """Run the network file at `path` on Lava: a converted network on one `(C,H,W)` image or
    `(T,C,H,W)` frames in [0, 1], a free-running one on its integer input as `drive` says (`skip`:
    a plain netx file's trailing layer types to drop). `probe_u`: LIF layers whose final `u` to read;
    `on_step(step, steps)`: told the steps done as the run goes; `states`: read every LIF layer's
    final `u` and `v` (`(C, H, W)`), as its process holds them after the last step."""
    options = json.dumps({"drive": dataclasses.asdict(drive), "skip": list(skip), "probe_u": list(probe_u),
                          "progress_every": PROGRESS_EVERY, "states": states})
    with tempfile.TemporaryDirectory(prefix="neuro-deploy-lava-") as folder:
        np.save(Path(folder) / "input.npy", image)
        with open(Path(folder) / "stderr.txt", "wb") as err:
            worker = subprocess.Popen(
                [sys.executable, "-m", "neuro_deploy.backends.lava", path, str(Path(folder) / "input.npy"), options,
                 folder], stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
            try:
                code = _wait(worker, Path(folder) / "paths.txt",
                             None if on_step is None else _step_reader(Path(folder) / PROGRESS_FILE, drive.steps, on_step))
            finally:
                stop_group(worker)
                remove_segments(Path(folder))
        if code != 0:
            error = Path(folder) / "error.txt"
            detail = error.read_text() if error.exists() else _last_error(Path(folder) / "stderr.txt")
            raise NeuroDeployError(f"Lava run failed: {detail}")
        lines = (Path(folder) / "paths.txt").read_text().splitlines()
        paths = {n: Path(p) for n, p in (line.split("\t") for line in lines)}
        overflow, final = _read_tallies(Path(folder) / TALLIES_FILE)
        u = {name: final[name][0] for name in probe_u}
        return LavaRun(_load(paths, drive.steps), u, overflow, final if states else {})


def _read_tallies(listing: Path) -> tuple[Overflow, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The overflow the process models counted, and the final `(u, v)` the LIF layers saved (`(C, H, W)`)."""
    from neuro_deploy.backends.lava_procs.recorder import load_tally

    overflow = Overflow()
    final = {}
    for line in listing.read_text().splitlines():
        kind, name, path = line.split("\t")
        tally = load_tally(path)
        if kind == "synapse":
            overflow.synapse_wraps[name] = int(tally["wrapped"])
            overflow.synapse_peaks[name] = float(tally["peak"])
            continue
        if kind == "lif":
            overflow.layer_wraps[name] = int(tally["wrapped"])
        overflow.layer_saturations[name] = int(tally["saturated"])
        if "u" in tally:
            final[name] = (lava_array(tally["u"]).astype(np.int64), lava_array(tally["v"]).astype(np.int64))
    return overflow, final


def _step_reader(path: Path, steps: int, on_step: Callable[[int, int], None]) -> Callable[[], None]:
    """A poll that passes the recorder's latest step count to `on_step` when it has grown."""
    last = [0]

    def poll() -> None:
        try:
            step = int(path.read_text())
        except (OSError, ValueError):  # not written yet
            return
        if step > last[0]:
            last[0] = step
            on_step(step, steps)
    return poll


def _wait(worker: subprocess.Popen, done: Path, poll: Callable[[], None] | None = None,
          stop_timeout: float = 30.0) -> int:
    """The worker's exit code; once it has written its results, it gets `stop_timeout` seconds
    for Lava's stop() before the session is stopped anyway. `poll` runs on every check."""
    finished = None
    while worker.poll() is None:
        if poll is not None:
            poll()
        if finished is None and done.exists():
            finished = time.monotonic()
            if poll is not None:
                poll()  # the run's last report, written before its results
        if finished is not None and time.monotonic() - finished > stop_timeout:
            return 0
        time.sleep(0.05)
    return worker.returncode


def _last_error(path: Path) -> str:
    """The exception line of the worker's traceback (or its last line)."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith(" ") and ("Error" in line or "Exception" in line)]
    return (errors or lines or ["the worker exited without a message"])[-1][:500]


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]))
