"""Per-layer firing rates measured from a checkpoint over a folder of images, for `compare --analytic`.

The global-rate method (analytic.py) charges a rated layer `rate x dense MACs` ACs. The rate measured
here is exactly that factor: the layer's effective ops (non-zero inputs times fan-out, border-exact,
as `hooks.count_float` counts them) over its dense MACs, summed over every image before dividing. So
the analytic method fed these rates, at the size, T and (exact) counting they were measured at,
charges each rated layer the effective ops a real forward did, and its ACs equal the activity-based
convention's body ACs (tested): the two code paths agree.

The file records where the rates came from: the architecture and configuration (the analytic mode
refuses to apply them to another one), the checkpoint and whether its weights were trained (rates of
random weights say little about a trained network and are flagged wherever they are used), the
images, the layers that never had an effective op (dead) and the neuron modules that never fired.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from neuro_deploy import zoo
from neuro_deploy.common import memory
from neuro_deploy.common.atomic import atomic_path
from neuro_deploy.compile.convert import calibration_images
from neuro_deploy.counting.hooks import count_float
from neuro_deploy.data.images import IMAGE_EXTENSIONS, image_files
from neuro_deploy.energy import analytic
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.zoo import IMAGE_CHANNELS
from neuro_deploy.zoo.memory import inference_bytes


def weights_status(ckpt: zoo.Checkpoint) -> tuple[str, bool]:
    """(what the weights are, whether they are known to be random): a training record with steps is
    trained; one with no step and no initialisation from another checkpoint is untrained (random
    init); a file without a training record (a released state dict) is not known to be either."""
    if "steps_done" not in ckpt.meta:
        return "no training record", False
    steps = int(ckpt.meta["steps_done"])
    if steps:
        return f"trained ({steps} steps)", False
    if ckpt.meta.get("init"):
        return "initialised from another checkpoint, 0 steps", False
    return "untrained (random init, 0 steps)", True


def image_paths(data: Path, limit: int | None = None) -> list[Path]:
    """The images of `data/input` (a paired dataset root: the rainy inputs, as `evaluate` reads them)
    or of `data` itself, sorted by name, dot-files skipped; the first `limit` of them."""
    data = Path(data)
    if not data.is_dir():
        raise NeuroDeployError(f"image folder {data} does not exist" if not data.exists() else
                               f"{data} is not a folder")
    folder = data / "input" if (data / "input").is_dir() else data
    paths = image_files(folder)
    if not paths:
        raise NeuroDeployError(f"no images in {folder} (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    if limit is not None and limit < 1:
        raise NeuroDeployError(f"--limit {limit}: must be at least 1")
    return paths[:limit]


def _check_size(size: int) -> None:
    if size <= 0 or size % 8:
        raise NeuroDeployError(f"--size {size}: must be a positive multiple of 8 (three levels of 2x2 pixel groups)")


def check_memory(ckpt: zoo.Checkpoint, images: int, size: int) -> None:
    """Refuse, before any image is read, a size whose crops and one forward pass would not fit
    (`--size 100000` is 112 GiB for one image's crop alone)."""
    _check_size(size)
    crops = images * IMAGE_CHANNELS * size * size * 4  # float32
    memory.check(crops + inference_bytes(ckpt.arch, ckpt.config, (size, size)),
                 f"rates of {images} image(s) at {size}x{size}", "lower --size or --limit")


def load_images(paths: list[Path], size: int) -> torch.Tensor:
    """`[N, 3, size, size]` centre crops (upscaled when smaller), as `compare` and `convert` crop;
    every image is read here, so an unreadable one stops the command before any measuring."""
    _check_size(size)
    return torch.cat([calibration_images(p, size) for p in paths])


@dataclass
class MeasuredRates:
    arch: str
    config: dict[str, Any]
    T: int
    checkpoint: str
    sha256: str
    weights: str
    random_weights: bool
    data: str
    images: int
    size: int
    effective: dict[str, int]  # rated layer -> effective ops over all images
    dense: dict[str, int]  # rated layer -> dense MACs over all images
    spikes: int = 0
    neuron_outputs: int = 0
    fired: dict[str, int] = field(default_factory=dict)  # neuron module -> non-zero outputs over all images

    @property
    def rates(self) -> dict[str, float]:
        return {name: self.effective[name] / self.dense[name] for name in self.dense}

    @property
    def dead(self) -> list[str]:
        """Rated layers with no effective op on any image (rate 0)."""
        return [name for name, n in self.effective.items() if not n]

    @property
    def silent_neurons(self) -> list[str]:
        return [name for name, n in self.fired.items() if not n]

    @property
    def global_rate(self) -> float:
        """The one rate that charges the rated layers the same ACs: effective over dense, all layers."""
        return sum(self.effective.values()) / sum(self.dense.values())

    def to_json(self) -> dict[str, Any]:
        return {"arch": self.arch, "config": self.config, "checkpoint": self.checkpoint, "sha256": self.sha256,
                "weights": self.weights, "random_weights": self.random_weights, "data": self.data,
                "images": self.images, "size": self.size, "T": self.T, "counting": "exact",
                "rates": self.rates, "global_rate": self.global_rate, "dead": self.dead,
                "silent_neurons": self.silent_neurons,
                "spike_rate": self.spikes / self.neuron_outputs if self.neuron_outputs else 0.0}


def measure(ckpt: zoo.Checkpoint, label: str, images: torch.Tensor, data: str = "",
            on_image: Callable[[int, int], None] = lambda *_: None) -> MeasuredRates:
    """Per-layer rates of a checkpoint over `[N, 3, S, S]` images; `label` names it in the file (a path,
    or a bundled model's name: its path inside the installed package means nothing elsewhere)."""
    model = zoo.build_from(ckpt)
    size = int(images.shape[-1])
    rated = analytic.analyze(ckpt.arch, ckpt.config, size).rated_layers()  # the layers the analytic mode rates
    weights, random = weights_status(ckpt)
    result = MeasuredRates(ckpt.arch, dict(ckpt.config), int(model.T), label, ckpt.sha256 or "", weights,
                           random, data, len(images), size, dict.fromkeys(rated, 0), dict.fromkeys(rated, 0))
    for i, image in enumerate(images):
        counts = count_float(model, image[None])
        ops = {op.name: op for op in counts.ops}
        for name in rated:
            result.effective[name] += ops[name].effective
            result.dense[name] += ops[name].dense_macs
        result.spikes += counts.spikes
        result.neuron_outputs += counts.neuron_outputs
        for name, n in counts.fired.items():
            result.fired[name] = result.fired.get(name, 0) + n
        on_image(i + 1, len(images))
    return result


def write(result: MeasuredRates, path: Path) -> None:
    """The rates file, with full float precision (the analytic mode multiplies by these values)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result.to_json(), indent=1) + "\n")


def warning_lines(result: MeasuredRates) -> list[str]:
    """Dead layers, silent neurons and random weights, each a line naming them."""
    lines = []
    if result.random_weights:
        lines.append(f"warning: {result.checkpoint} has random (untrained) weights: these rates say little about "
                     "a trained network")
    if result.dead:
        lines.append(f"warning: {len(result.dead)} of {len(result.dense)} rated layers are dead (rate 0 over "
                     f"{result.images} images): {', '.join(result.dead)}")
    if result.silent_neurons:
        lines.append(f"warning: {len(result.silent_neurons)} of {len(result.fired)} neuron layers never fired: "
                     f"{', '.join(result.silent_neurons)}")
    return lines
