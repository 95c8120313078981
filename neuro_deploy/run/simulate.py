"""Simulate any network file: a converted network derains an image, tiled to the network's size;
a free-running one (a plain netx file) runs on an integer input array. Fast or Lava back end."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from neuro_deploy.backends.fast import OverflowCounter, run_bytes, run_fixed, run_free
from neuro_deploy.backends.overflow import Overflow
from neuro_deploy.common.tile_grid import tile_count
from neuro_deploy.common.tiling import tiled_apply
from neuro_deploy.data import read_image
from neuro_deploy.data.images import IMAGE_EXTENSIONS
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.ir.graph import Node
from neuro_deploy.ir.quantized import Drive

BACKENDS = ("fast", "lava")
OVERLAP = 8
#: tiles the fast back end computes in one batched run, per device: on a 2-core CPU a batch only
#: adds cache misses (benchmarks/README.md: 256x256 in 20.5 s one by one, 23.1 s by 2, 27.6 s by 4)
TILE_BATCH = {"cpu": 1, "cuda": 8}
#: inputs below this magnitude overflow neither Lava's int32 input neurons nor their 24-bit current
EVENT_LIMIT = 1 << 17


@dataclass
class Simulation:
    """A converted network's result: the derained image (HxWx3 in [0, 1]) and, when kept, every
    layer's events per tile ("tile<k>/<layer>" -> [steps, C, H, W]). A free-running network's:
    its output layer's events and every layer's ("<layer>" -> [steps, *the file's shape]).
    `overflow`: what wrapped or saturated at run time, all tiles summed, as the back end counted it."""

    output: np.ndarray
    events: dict[str, np.ndarray] = field(default_factory=dict)
    tiles: int = 0
    steps: int = 0
    overflow: Overflow = field(default_factory=Overflow)


def load_array(path: Path) -> np.ndarray:
    """A `.npy` input, never unpickled; a missing or unreadable file is a one-line error."""
    if not path.is_file():
        raise NeuroDeployError(f"cannot read input {path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise NeuroDeployError(f"cannot read input {path}: {exc}") from None


def read_input(path: str | Path, channels: int, timesteps: int) -> np.ndarray:
    """`(C, H, W)` image or `(T, C, H, W)` frames in [0, 1] from an image file or a `.npy` array."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        x = load_array(path)
        if x.dtype.kind not in "biuf":  # numpy would cast complex values to real with only a warning
            raise NeuroDeployError(f"input {path} holds {x.dtype} values; expected real numbers in [0, 1]")
        if x.ndim not in (3, 4) or x.size == 0:
            raise NeuroDeployError(f"input {path} has shape {x.shape}; expected (C,H,W) or (T,C,H,W), none of them 0")
        if x.ndim == 4 and x.shape[0] != timesteps:
            raise NeuroDeployError(f"input {path} has {x.shape[0]} frames; the network runs T={timesteps} steps")
    elif path.suffix.lower() in IMAGE_EXTENSIONS or not path.suffix:
        x = read_image(path).transpose(2, 0, 1)
    else:
        raise NeuroDeployError(f"cannot read input {path}: expected an image or a .npy array")
    if x.shape[-3] != channels:
        raise NeuroDeployError(f"input {path} has {x.shape[-3]} channels; the network takes {channels}")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise NeuroDeployError(f"input {path} has values outside [0, 1]")
    return x.astype(np.float32)


def read_events(path: str | Path, net: NetworkFile) -> np.ndarray:
    """A free-running network's `.npy` input: its input shape, or `(T, *shape)` frames, of integers."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise NeuroDeployError(f"input {path}: a plain netx network takes a .npy array")
    x = load_array(path)
    shape = tuple(net.meta["input_shape"])
    if (x.shape != shape and x.shape[1:] != shape) or x.size == 0:
        raise NeuroDeployError(f"input {path} has shape {x.shape}; {net.path} takes {shape} values "
                               f"or (T, {', '.join(map(str, shape))}) frames")
    if x.dtype.kind not in "biuf":  # complex too: numpy would drop the imaginary part with only a warning
        raise NeuroDeployError(f"input {path} has dtype {x.dtype}; expected integers")
    if not np.isfinite(x).all() or np.any(x != np.round(x)) or np.abs(x).max() >= EVENT_LIMIT:
        raise NeuroDeployError(f"input {path}: expected integer values in (-{EVENT_LIMIT}, {EVENT_LIMIT}), "
                               "the events the input layer receives")
    return x.astype(np.int64)


def run_steps(net: NetworkFile, x: np.ndarray, steps: int | None) -> int:
    """A free-running network's step count: the input's frames, else `steps`, else the file's
    `/simulation/tSample`."""
    if x.shape != tuple(net.meta["input_shape"]):
        if steps is not None and steps != x.shape[0]:
            raise NeuroDeployError(f"--steps {steps} conflicts with the input's {x.shape[0]} frames "
                                   "(frames run one per step)")
        return int(x.shape[0])
    steps = net.meta.get("sample_steps") if steps is None else steps
    if steps is None:
        raise NeuroDeployError(f"{net.path} has no /simulation/tSample: give --steps")
    if steps < 1:
        raise NeuroDeployError(f"--steps {steps}: expected at least 1")
    return steps


def check_device(device: str, backend: str = "fast") -> None:
    """A device torch can run the fast back end on, here and now; Lava runs on the CPU only."""
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise NeuroDeployError(f"--device {device!r}: not a torch device (cpu, cuda, cuda:1, ...)") from None
    if kind not in ("cpu", "cuda"):
        raise NeuroDeployError(f"--device {device}: the fast back end runs on cpu or cuda")
    if kind == "cuda" and not torch.cuda.is_available():
        raise NeuroDeployError(f"--device {device}: no CUDA device is available here")
    if kind != "cpu" and backend == "lava":
        raise NeuroDeployError(f"--device {device}: the Lava back end runs on the CPU")


def pad_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Pad `[..., H, W]` at the bottom/right up to at least `size` (reflect, or replicate when tiny)."""
    h, w = x.shape[-2:]
    ph, pw = max(0, size - h), max(0, size - w)
    if not ph and not pw:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    flat = x.reshape(-1, *x.shape[-3:])
    return F.pad(flat, (0, pw, 0, ph), mode=mode).reshape(*x.shape[:-2], h + ph, w + pw)


def simulate(net: NetworkFile, x: np.ndarray, backend: str = "fast", keep_events: bool = False,
             on_tile: Callable[[int, int], None] | None = None,
             on_events: Callable[[int, str, int, torch.Tensor], None] | None = None,
             drive: Drive | None = None, device: str = "cpu") -> Simulation:
    """Derain `x` (`(C,H,W)` or `(T,C,H,W)`) tile by tile on the chosen back end; a free-running
    network runs once on its integer input as `drive` says. The fast back end runs on `device`
    (e.g. "cuda"), with the CPU's results.

    `on_events(tile, layer, first_step, payloads)` sees every layer's `[steps, C, H, W]` payloads
    as soon as they are computed: the fast back end's window at the step the alignment assigned
    it, or Lava's every step (from 0), without placing windows into full-length arrays.
    """
    if backend not in BACKENDS:
        raise NeuroDeployError(f"unknown back end {backend!r} (known: {', '.join(BACKENDS)})")
    check_device(device, backend)
    if net.quantized.free_running:
        if drive is None:
            raise NeuroDeployError(f"{net.path} is a plain netx network: it needs a step count")
        check_memory(net, drive.steps, keep_events, backend)
        return _simulate_free(net, x, backend, drive, keep_events, on_events,
                              on_step=on_tile if backend == "lava" else None)
    check_memory(net, int(net.meta["steps"]), keep_events, backend)
    size = int(net.meta["input_shape"][-1])
    frames = torch.from_numpy(x if x.ndim == 4 else x[None])  # [T or 1, C, H, W]
    h, w = frames.shape[-2:]
    run = _TiledRun(net, frames.shape[0], tile_count(h, w, size, OVERLAP), keep_events, on_tile, on_events, device)
    tiles, batch = (run.lava, 1) if backend == "lava" else (run.fast, TILE_BATCH.get(torch.device(device).type, 1))
    merged = tiled_apply(tiles, pad_to(frames, size), tile=size, overlap=OVERLAP, multiple=8, on_tile=on_tile,
                         batch=batch)
    out = merged[0, :, :h, :w].clamp(0, 1).permute(1, 2, 0).numpy()
    return Simulation(out, run.events, run.done, overflow=run.overflow)


@dataclass
class _TiledRun:
    """One image's tiles on a back end: `lava` runs one tile, `fast` a batch; both add the tiles'
    events (when kept or watched) and overflow as they complete."""

    net: NetworkFile
    per_tile: int  # inputs per tile: the image, or its T frames
    total: int  # tiles in all, for progress
    keep_events: bool
    on_tile: Callable[[int, int], None] | None
    on_events: Callable[[int, str, int, torch.Tensor], None] | None
    device: str = "cpu"
    done: int = 0
    events: dict[str, np.ndarray] = field(default_factory=dict)
    overflow: Overflow = field(default_factory=Overflow)

    def lava(self, tile: torch.Tensor) -> torch.Tensor:
        k = self.done
        self.done += 1
        on_step = None if self.on_tile is None else lambda step, steps: self.on_tile(k + step / steps, self.total)
        out, layer_events, tile_overflow = lava_tile(self.net, (tile[0] if self.per_tile == 1 else tile).numpy(),
                                                     on_step)
        self.overflow.add(tile_overflow)
        if self.on_events is not None:
            for name, v in layer_events.items():
                self.on_events(k, name, 0, torch.from_numpy(v))
        if self.keep_events:
            self.events.update({f"tile{k}/{name}": v for name, v in layer_events.items()})
        return out[None].float().repeat(self.per_tile, 1, 1, 1)

    def fast(self, tiles: torch.Tensor) -> torch.Tensor:
        """A batch of tiles `[k * per_tile, C, H, W]` in one run."""
        first, k = self.done, tiles.shape[0] // self.per_tile
        self.done += k
        windows: dict[str, torch.Tensor] = {}

        def record(node: Node, out: torch.Tensor) -> None:
            out = out.cpu()
            if self.keep_events:
                windows[node.name] = out
            if self.on_events is not None and node.name in self.net.quantized.layers:
                for i in range(k):
                    self.on_events(first + i, node.name, node.emit, out[:, i])

        images = tiles if self.per_tile == 1 else tiles.reshape(k, self.per_tile, *tiles.shape[1:]).transpose(0, 1)
        recording = self.keep_events or self.on_events is not None
        counter = OverflowCounter()
        out = run_fixed(self.net.quantized, images, record if recording else None, device=self.device,
                        counter=counter)
        self.overflow.add(counter.result)
        if self.keep_events:
            for i in range(k):
                placed = place_windows(self.net, {name: v[:, i:i + 1] for name, v in windows.items()})
                self.events.update({f"tile{first + i}/{name}": v for name, v in placed.items()})
        return out.float().repeat_interleave(self.per_tile, 0)


def check_memory(net: NetworkFile, steps: int, keep_events: bool, backend: str = "fast") -> None:
    """Refuse a run whose payloads (on Lava: its processes) would not fit, before it starts."""
    from neuro_deploy.common import memory

    q = net.quantized
    free = q.free_running
    what, lower = (f"simulating {net.path} for {steps} steps", "lower --steps") if free else \
        (f"simulating {net.path} ({steps} steps per tile)", "use a smaller network")
    if backend == "lava":
        from neuro_deploy.backends.lava import estimate_bytes, process_count

        hosted = sum(q.graph.nodes[n].role == "host" for n in q.layers)
        memory.check(estimate_bytes(q, steps), f"{what} on Lava ({process_count(q)} processes; {len(q.layers)} "
                     f"layers, {hosted} of them host layers in one process)",
                     "use the fast back end or a smaller network")
        return
    memory.check(run_bytes(q, steps if free else None, steps if keep_events else 0), what, lower)


def lava_tile(net: NetworkFile, image: np.ndarray, on_step: Callable[[int, int], None] | None = None
              ) -> tuple[torch.Tensor, dict[str, np.ndarray], Overflow]:
    """One tile (`(C,H,W)` or `(T,C,H,W)`) on Lava: its decoded output `(C,H,W)`, every layer's
    events and the run's overflow; `on_step(step, steps)` hears how far the run is, every half
    second or so."""
    from neuro_deploy.backends.lava import run_lava

    run = run_lava(net.path, image, Drive(int(net.meta["steps"])), on_step=on_step)
    q = net.quantized
    name = q.graph.inputs(q.graph.output())[0]
    out = torch.from_numpy(run.events[name][q.graph.nodes[name].emit]).double() / q.layers[name].scale
    return out, run.events, run.overflow


def run_tiles(net: NetworkFile, tiles: torch.Tensor, backend: str = "fast", device: str = "cpu"
              ) -> tuple[torch.Tensor, Overflow]:
    """Single images' tiles `[k, C, S, S]`: their results before clamping, as `simulate` computes
    them, so tiles run anywhere (e.g. on Ray workers) blend into `simulate`'s image; and the
    overflow of their runs."""
    overflow = Overflow()
    if backend == "lava":
        runs = [lava_tile(net, tile.numpy()) for tile in tiles]
        for _, _, tile_overflow in runs:
            overflow.add(tile_overflow)
        return torch.stack([out for out, _, _ in runs]).float(), overflow
    counter = OverflowCounter()
    out = run_fixed(net.quantized, tiles, device=device, counter=counter).float()
    return out, counter.result


def _simulate_free(net: NetworkFile, x: np.ndarray, backend: str, drive: Drive, keep_events: bool,
                   on_events: Callable[[int, str, int, torch.Tensor], None] | None,
                   on_step: Callable[[int, int], None] | None = None) -> Simulation:
    """One run of a free-running network; every layer's events in the file's shapes (`on_step`: a
    Lava run's progress)."""
    q = net.quantized
    shape = q.graph.nodes[q.graph.topological()[0]].shape
    x = x.reshape(shape if x.shape == tuple(net.meta["input_shape"]) else (x.shape[0], *shape))
    if backend == "lava":
        from neuro_deploy.backends.lava import run_lava

        run = run_lava(net.path, x, drive, tuple(net.meta.get("skip", ())), on_step=on_step)
        events, overflow = run.events, run.overflow
    else:
        events = {}
        counter = OverflowCounter()
        run_free(q, x, drive, lambda node, v: events.__setitem__(node.name, v[:, 0].numpy())
                 if node.name in q.layers else None, counter=counter)
        overflow = counter.result
    if on_events is not None:
        for name, v in events.items():
            on_events(0, name, 0, torch.from_numpy(v))
    shapes = net.meta["shapes"]
    events = {name: v.astype(np.int32).reshape(drive.steps, *shapes[name]) for name, v in events.items()}
    output = events[q.graph.inputs(q.graph.output())[0]]
    return Simulation(output, events if keep_events else {}, 1, drive.steps, overflow)


def place_windows(net: NetworkFile, windows: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Fast back-end windows at the Lava steps the alignment assigned: `[steps, C, H, W]`."""
    steps = int(net.meta["steps"])
    placed = {}
    for name in net.quantized.layers:
        node, w = net.quantized.graph.nodes[name], windows[name][:, 0].numpy()
        placed[name] = np.zeros((steps, *node.shape), np.int32)
        placed[name][node.emit:node.emit + w.shape[0]] = w
    return placed
