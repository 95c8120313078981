"""The conversion pipeline: checkpoint -> graph -> lowered, aligned, quantized -> HDF5 description.

`neuro_deploy.compile.convert` is also the public function `neuro_deploy.api.convert`: the module and the
function share the name, so calling this module calls the function (see the end of the file).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from skimage.transform import resize

from neuro_deploy import __version__, zoo
from neuro_deploy.common import memory, resources
from neuro_deploy.compile.passes.align import align
from neuro_deploy.compile.passes.legalize import split_delays, split_upsampling
from neuro_deploy.compile.passes.lower import lower
from neuro_deploy.compile.passes.quantize import PAYLOAD_BITS, STATE_BITS, quantize
from neuro_deploy.data import read_image
from neuro_deploy.data.images import IMAGE_EXTENSIONS
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import placement, write_network
from neuro_deploy.frontend.capture import capture
from neuro_deploy.ir.graph import Graph, Synapse
from neuro_deploy.ir.quantized import Quantized
from neuro_deploy.loihi.limits import check, weight_bits
from neuro_deploy.zoo.memory import activation_bytes

BUNDLED_CALIBRATION = resources.demo_folder("input")


@dataclass
class Conversion:
    quantized: Quantized
    meta: dict[str, Any]


def calibration_images(source: str | Path | None, size: int) -> torch.Tensor:
    """`[N, 3, size, size]` centre crops (upscaled when smaller) of an image or a folder of images."""
    source = Path(source) if source else BUNDLED_CALIBRATION
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not paths:
            raise NeuroDeployError(f"no images in calibration folder {source}")
    else:
        paths = [source]
    crops = []
    for path in paths:
        img = read_image(path)
        h, w = img.shape[:2]
        if min(h, w) < size:
            scale = size / min(h, w)
            img = resize(img, (max(size, round(h * scale)), max(size, round(w * scale))), order=1)
            h, w = img.shape[:2]
        y, x = (h - size) // 2, (w - size) // 2
        crops.append(np.ascontiguousarray(img[y:y + size, x:x + size].transpose(2, 0, 1)))
    return torch.from_numpy(np.stack(crops).astype(np.float32))


def host_layers(graph: Graph) -> list[str]:
    return [f"{n.name} ({n.kind})" for n in graph.nodes.values() if placement(n) == "host"]


def _refuse_non_finite(graph: Graph, checkpoint: str | Path) -> None:
    """Folding can make finite weights NaN or infinite (a tdBN variance below -eps), which
    quantization would silently turn into garbage integers: refuse them before quantizing."""
    for node in graph.nodes.values():
        for key, value in node.params().items():
            if isinstance(value, (float, np.ndarray)) and np.asarray(value).dtype.kind == "f" \
                    and not np.isfinite(value).all():
                raise NeuroDeployError(f"{checkpoint}: {node.name} has a NaN or infinite {key} after folding "
                                       "(check the checkpoint's normalisation statistics)")


def convert(checkpoint: str | Path, arch: str | None = None, calibrate: str | Path | None = None, size: int = 64,
            timesteps: int | None = None, strict: bool = False, headroom: float = 2.0,
            payload_bits: int = PAYLOAD_BITS, allow_violations: bool = False,
            on_stage: Callable[[int, int, str], None] | None = None) -> Conversion:
    """Capture, lower, legalize, align and quantize; refuse a result that breaks a Loihi limit
    (`neuro_deploy.loihi.limits`) unless `allow_violations`, which records the violations in the file.
    `checkpoint` is a path or a bundled model's name; `on_stage(done, total, stage)` hears of each
    stage as it starts (the whole takes seconds to minutes)."""
    stage = _stages(on_stage, ("building", "capturing", "aligning", "quantizing", "checking limits"))
    if size % 8 or size <= 0:
        raise NeuroDeployError(f"size must be a positive multiple of 8 (--size), got {size}")
    if not 2 <= payload_bits <= 24:
        raise NeuroDeployError(f"payload bits must be between 2 and 24, Loihi's graded payloads (--payload-bits), "
                               f"got {payload_bits}")
    if timesteps is not None and timesteps < 1:
        raise NeuroDeployError(f"time steps must be at least 1 (--timesteps), got {timesteps}")
    if not (math.isfinite(headroom) and headroom > 0):
        raise NeuroDeployError(f"headroom must be a positive finite margin over the calibration peaks (--headroom), "
                               f"got {headroom}")
    ckpt = zoo.read_checkpoint(checkpoint, arch)
    if timesteps is not None and timesteps != ckpt.config.get("T", 4):
        if any("attn.ta." in k or "time_attention" in k for k in ckpt.state_dict):
            raise NeuroDeployError(f"--timesteps {timesteps}: the attention gates of {checkpoint} are trained for "
                                   f"T={ckpt.config.get('T', 4)}")
        ckpt.config["T"] = timesteps
    zoo.check_config(ckpt)
    images = calibration_images(calibrate, size)
    memory.check(activation_bytes(ckpt.arch, ckpt.config, len(images), size),
                 f"converting with T={ckpt.config.get('T', 4)} at size {size} on {len(images)} calibration images",
                 "lower --timesteps or --size, or calibrate on fewer images")
    stage()  # announced once the input is checked: an error stays one line
    model = zoo.build_from(ckpt)
    stage()
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # reported in one line just below
        lowered = lower(capture(model, size, size))
    _refuse_non_finite(lowered, checkpoint)
    hosts = host_layers(lowered)
    if strict and hosts:
        raise NeuroDeployError(f"--strict: {len(hosts)} ops have no neurocore equivalent: {', '.join(hosts)}")
    stage()
    split_upsampling(lowered)
    latency = align(lowered)
    split_delays(lowered)
    stage()
    q = quantize(lowered, images, headroom, payload_bits)
    stage()
    violations = check(q)
    if violations and not allow_violations:
        more = f" (and {len(violations) - 1} more; --allow-violations writes the file anyway)" \
            if len(violations) > 1 else " (--allow-violations writes the file anyway)"
        raise NeuroDeployError(f"not deployable on Loihi: {violations[0]}{more}")
    meta = {
        "producer": f"neuro-deploy {__version__}",
        "source": {"path": ckpt.path, "sha256": ckpt.sha256, "arch": ckpt.arch, "config": ckpt.config},
        "settings": {"size": size, "timesteps": model.T, "headroom": headroom, "strict": strict,
                     "payload_bits": payload_bits, "calibration": str(calibrate or BUNDLED_CALIBRATION)},
        "violations": [str(v) for v in violations],
        "input_shape": [model.patch_embed.proj.in_channels, size, size],
        "latency": latency,
        "steps": latency + 1,
        "host_layers": len(hosts),
    }
    return Conversion(q, meta)


def _stages(on_stage: Callable[[int, int, str], None] | None, names: tuple[str, ...]) -> Callable[[], None]:
    """A callable announcing the next of `names` to `on_stage` at each call."""
    done = iter(range(len(names)))

    def next_stage() -> None:
        i = next(done)
        if on_stage is not None:
            on_stage(i, len(names), names[i])
    return next_stage


def write(conversion: Conversion, out: str | Path) -> None:
    write_network(out, conversion.quantized, conversion.meta)


def quantization_report(q: Quantized) -> list[dict[str, Any]]:
    """Per layer: incoming weight exponents, clipped fraction, weight error, state peak and overflow."""
    rows = []
    incoming: dict[str, list[str]] = {}
    for e in q.graph.edges:
        if isinstance(q.graph.nodes[e.src], Synapse):
            incoming.setdefault(e.dst, []).append(e.src)
    for name, layer in q.layers.items():
        syns = [q.synapses[s] for s in incoming.get(name, [])]
        rows.append({
            "name": name,
            "kind": q.graph.nodes[name].kind,
            "weight_bits": weight_bits([s.mantissa for s in syns]),
            "weight_exp": sorted({s.exp for s in syns}),
            "clipped": max((s.clipped for s in syns), default=0.0),
            "weight_error": max((s.error for s in syns), default=0.0),
            "state_peak_bits": float(np.log2(layer.peak + 1)),
            "state_bits": STATE_BITS,
            "overflow": layer.overflow,
        })
    return rows
