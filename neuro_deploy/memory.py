"""Memory estimates checked before the work starts.

A step count, time steps or size a hundred times too large would otherwise grow until the
kernel kills the process (no message) or fail to allocate minutes later. Commands estimate
what they need and refuse, in one line naming the estimate and the override, anything above
the limit: `--max-memory SIZE` (or NEURO_DEPLOY_MAX_MEMORY), by default 90% of the memory
available now.
"""

from __future__ import annotations

import math
import os
import re
from typing import TYPE_CHECKING

import torch
from torch import nn

from neuro_deploy.errors import NeuroDeployError

if TYPE_CHECKING:
    from neuro_deploy.ir.quantized import Quantized

ENV = "NEURO_DEPLOY_MAX_MEMORY"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
AVAILABLE_SHARE = 0.9


def parse_size(text: str) -> int:
    """`'40G'`, `'512M'`, `'2e9'` (bytes) -> bytes; `'0'` means no limit."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if match is None:
        raise NeuroDeployError(f"memory size {text!r}: expected a number of bytes with an optional K, M, G or T "
                               "(e.g. 40G; 0 for no limit)")
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not math.isfinite(value):
        raise NeuroDeployError(f"memory size {text!r} is not finite")
    return int(value)


def format_size(n: float) -> str:
    for unit in ("T", "G", "M", "K"):
        if n >= _UNITS[unit]:
            return f"{n / _UNITS[unit]:.1f} {unit}B"
    return f"{int(n)} B"


def available() -> int:
    """Memory the process can use now: MemAvailable on Linux, else the physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


#: the `--max-memory` of the current command, which takes precedence over the environment.
override: str | None = None


def limit() -> tuple[int | None, str]:
    """The limit in bytes (None: none) and how to name it in a message."""
    given = override or os.environ.get(ENV)
    if given:
        value = parse_size(given)
        return (value or None), f"limit set by --max-memory/{ENV}"
    return int(available() * AVAILABLE_SHARE), "memory available"


def check(estimate: float, what: str, lower: str) -> None:
    """Refuse `what` (e.g. "simulate --steps 300000") when its `estimate` in bytes exceeds the limit;
    `lower` says which option to reduce."""
    bound, source = limit()
    if bound is None or estimate <= bound:
        return
    suggestion = format_size(estimate * 1.25).replace(" ", "").replace("B", "")
    raise NeuroDeployError(f"{what} needs about {format_size(estimate)} of memory (estimate), more than the "
                           f"{format_size(bound)} {source}; {lower}, or raise the limit with "
                           f"`neuro-deploy --max-memory {suggestion} ...`")


def activation_bytes(arch: str, config: dict, batch: int, size: int | tuple[int, int],
                     measured_timesteps: int = 4) -> float:
    """Bytes of every module output of one forward of `[batch, C, h, w]` (`size`: `(h, w)` or a
    square's side) through the `arch` network of `config`, built on PyTorch's meta device (no
    memory, no arithmetic) at `measured_timesteps` and scaled linearly to the configuration's T:
    what capturing and calibrating the network holds at once, within a small factor."""
    from neuro_deploy import zoo

    h, w = (size, size) if isinstance(size, int) else size

    timesteps = int(config.get("T", 4))
    probe_t = max(1, min(timesteps, measured_timesteps))
    with torch.device("meta"):
        model = zoo.build(arch, **{**config, "T": probe_t})
    total = 0

    def count(_module: nn.Module, _inputs: object, out: object) -> None:
        nonlocal total
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    handles = [m.register_forward_hook(count) for m in model.modules()]
    try:
        with torch.no_grad():
            model(torch.empty(batch, int(config.get("in_channels", 3)), h, w, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return total * timesteps / probe_t


#: the peak of a no-grad forward over `activation_bytes` (measured 0.22-0.25 for both small bundled
#: models at 128 and 256 pixels: a layer's outputs are freed once the next has read them)
INFERENCE_SHARE = 0.25


def inference_bytes(arch: str, config: dict, size: tuple[int, int]) -> float:
    """Bytes one no-grad forward of a `size` tile holds at its peak (derain's tiles)."""
    return activation_bytes(arch, config, 1, size) * INFERENCE_SHARE


#: a fast run's peak resident memory over its payloads alive at once (`run_bytes`), measured on the
#: first run of a freshly read network: 5.3x for the bundled deployable model and 9.6x for the
#: release VLIFNet, both at 64x64 (bit slices, float32 copies, convolution buffers)
RUN_OVERHEAD = 10


def run_bytes(q: "Quantized", steps: int | None = None, kept_steps: int = 0) -> float:
    """Peak bytes of a fast-back-end run of `q` on one tile: the float64 payloads alive at once (each
    node's window of `node.steps`, or `steps` for every node of a free-running network; `execute`
    frees a value after its last reader) times `RUN_OVERHEAD`, the weights prepared as float64, and
    `kept_steps` of every layer's events kept as 4-byte values (--dump)."""
    graph = q.graph
    order = graph.topological()
    readers = {n: 0 for n in order}
    sources: dict[str, list[str]] = {n: [] for n in order}
    for e in graph.edges:
        readers[e.src] += 1
        sources[e.dst].append(e.src)
    size = {n: math.prod(graph.nodes[n].shape) * (steps or graph.nodes[n].steps or 1) * 8 for n in order}
    live = peak = 0
    for name in order:
        live += size[name]
        peak = max(peak, live)
        for src in sources[name]:
            readers[src] -= 1
            if readers[src] == 0:
                live -= size[src]
    weights = sum(w.mantissa.size for w in q.synapses.values()) * 8 * 2
    kept = sum(math.prod(graph.nodes[n].shape) for n in q.layers) * kept_steps * 4
    return peak * RUN_OVERHEAD + weights + kept
