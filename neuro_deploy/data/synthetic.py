"""Seeded synthetic rain on bundled natural images, so demos and tests need no downloaded dataset."""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Callable
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata
from skimage.transform import resize

from neuro_deploy.common.atomic import atomic_path, check_outputs
from neuro_deploy.data.images import save_image
from neuro_deploy.errors import NeuroDeployError

# Natural colour photographs shipped inside installed wheels (scikit-image's data, matplotlib's
# sample data): no download. Training and held-out images never share a source photograph.
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("astronaut", "chelsea", "coffee"),
    "test": ("rocket", "grace_hopper"),
}

_SCALE_RANGE = (0.5, 1.0)  # random rescale of a source before cropping
_VEIL_GREY = 0.85  # brightness of the haze that heavy rain lays over the scene
_END_FADE = 0.7  # a streak's ends keep 1 - _END_FADE of its centre brightness
_SOFTNESS = 0.6  # Gaussian sigma (pixels) that defocuses the streak edges


@dataclass(frozen=True)
class RainPreset:
    """Ranges a rain layer is drawn from; angles in degrees from vertical, sizes in pixels."""

    angle: tuple[float, float]
    length: tuple[float, float]
    width: tuple[float, float]
    density: tuple[float, float]  # streak seeds per pixel, per layer
    intensity: tuple[float, float]  # peak brightness of a streak
    layers: tuple[int, int]  # inclusive
    layer_spread: float  # max angle offset of each layer from the shared base angle
    haze: tuple[float, float]  # veil opacity


PRESETS: dict[str, RainPreset] = {
    # Rain200L-like: one layer of sparse, thin, short-to-medium streaks.
    "light": RainPreset(
        angle=(-20.0, 20.0),
        length=(8.0, 20.0),
        width=(1.0, 1.5),
        density=(0.002, 0.005),
        intensity=(0.4, 0.8),
        layers=(1, 1),
        layer_spread=0.0,
        haze=(0.0, 0.0),
    ),
    # Rain200H-like: 2-3 dense layers of long, wide streaks at nearby angles, over a slight veil.
    "heavy": RainPreset(
        angle=(-25.0, 25.0),
        length=(18.0, 40.0),
        width=(1.5, 2.5),
        density=(0.002, 0.004),
        intensity=(0.35, 0.65),
        layers=(2, 3),
        layer_spread=8.0,
        haze=(0.05, 0.2),
    ),
}


def _preset(name: str) -> RainPreset:
    if name not in PRESETS:
        raise NeuroDeployError(f"unknown rain preset '{name}' (valid: {', '.join(sorted(PRESETS))})")
    return PRESETS[name]


def _streak_kernel(angle_deg: float, length: float, width: float) -> np.ndarray:
    """Soft line of the given length and width, fading towards its ends: the motion blur of one raindrop."""
    radius = math.ceil(length / 2 + width) + 1
    ys, xs = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    theta = math.radians(angle_deg)
    dx, dy = math.sin(theta), math.cos(theta)
    along = np.clip(xs * dx + ys * dy, -length / 2, length / 2)
    dist = np.hypot(xs - along * dx, ys - along * dy)
    line = np.clip(width / 2 + 0.5 - dist, 0.0, 1.0) * (1.0 - _END_FADE * (2 * along / length) ** 2)
    return gaussian_filter(line, _SOFTNESS)


def _rain_layer(shape: tuple[int, int], rng: np.random.Generator, angle: float, p: RainPreset) -> np.ndarray:
    """One HxW streak layer in [0,1]: sparse seeds smeared along `angle`, entering from beyond the edges."""
    length = rng.uniform(*p.length)
    width = rng.uniform(*p.width)
    density = rng.uniform(*p.density)
    intensity = rng.uniform(*p.intensity)
    kernel = _streak_kernel(angle, length, width)
    pad = kernel.shape[0] - 1
    canvas = (shape[0] + pad, shape[1] + pad)
    seeds = (rng.random(canvas) < density) * rng.uniform(0.5, 1.0, canvas)
    streaks = fftconvolve(seeds, kernel, mode="valid")
    return intensity * np.clip(streaks, 0.0, 1.0)


def add_rain(clean: np.ndarray, rng: np.random.Generator, preset: str) -> np.ndarray:
    """Rainy version of a clean HxWx3 [0,1] image; all randomness comes from `rng`."""
    p = _preset(preset)
    clean = np.asarray(clean, dtype=np.float64)
    if clean.ndim != 3 or clean.shape[2] != 3:
        raise NeuroDeployError(f"add_rain expects an HxWx3 image, got shape {clean.shape}")
    base = rng.uniform(*p.angle)
    n_layers = int(rng.integers(p.layers[0], p.layers[1] + 1))
    haze = rng.uniform(*p.haze)
    clear = np.ones(clean.shape[:2])  # product of (1 - layer): screen-blending the layers together
    for _ in range(n_layers):
        angle = base + rng.uniform(-p.layer_spread, p.layer_spread)
        clear *= 1.0 - _rain_layer(clean.shape[:2], rng, angle, p)
    veiled = clean * (1.0 - haze) + haze * _VEIL_GREY
    rainy = 1.0 - (1.0 - veiled) * clear[..., None]
    return np.clip(rainy, 0.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _source(name: str) -> np.ndarray:
    if name == "grace_hopper":
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            raw = np.asarray(Image.open(f).convert("RGB"))
    else:
        raw = getattr(skdata, name)()
    img = raw.astype(np.float32) / 255.0
    img.setflags(write=False)  # shared by every caller through the cache
    return img


def _sources(split: str) -> tuple[str, ...]:
    if split not in SPLITS:
        raise NeuroDeployError(f"unknown split '{split}' (valid: {', '.join(SPLITS)})")
    return SPLITS[split]


def _check_size(size: int, split: str) -> None:
    smallest = min(min(_source(name).shape[:2]) for name in _sources(split))
    if not isinstance(size, int) or not 1 <= size <= smallest:
        raise NeuroDeployError(f"crop size must be an integer between 1 and {smallest}, got {size!r}")


def _crop(rng: np.random.Generator, size: int, split: str) -> np.ndarray:
    """A random size x size crop of a randomly rescaled source image of the split."""
    sources = _sources(split)
    name = sources[int(rng.integers(len(sources)))]
    img = _source(name)
    h, w = img.shape[:2]
    scale = rng.uniform(max(_SCALE_RANGE[0], size / min(h, w)), _SCALE_RANGE[1])
    out_h, out_w = max(size, round(h * scale)), max(size, round(w * scale))
    scaled = resize(img, (out_h, out_w), order=1, anti_aliasing=True)
    y = int(rng.integers(out_h - size + 1))
    x = int(rng.integers(out_w - size + 1))
    return np.clip(scaled[y : y + size, x : x + size], 0.0, 1.0).astype(np.float32)


def clean_crops(n: int, size: int, rng: np.random.Generator, split: str = "train") -> list[np.ndarray]:
    """`n` random clean size x size crops (float32 HxWx3 in [0,1]), e.g. for training on synthetic rain."""
    _check_size(size, split)
    return [_crop(rng, size, split) for _ in range(n)]


def make_synthetic_rain(
    out_root: str | os.PathLike, n: int, preset: str = "light", size: int = 64, seed: int = 0, split: str = "train",
    force: bool = False, on_pair: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Write `n` rainy/clean pairs as `<out_root>/{input,target}/syn_NNNN.png`; returns the file names.

    `split` picks the source photographs: "train" or the held-out "test" ones. A folder that already
    holds files is refused unless `force` (two datasets would mix silently). Each pair appears
    together: both images are written under hidden temporary names and renamed at the end, so an
    interrupted run leaves complete pairs only. `on_pair(done, n)` follows the progress.
    """
    _preset(preset)
    if n < 1:
        raise NeuroDeployError(f"number of synthetic images must be at least 1, got {n}")
    if not 0 <= seed < 2**63:  # numpy's generator takes non-negative seeds only
        raise NeuroDeployError(f"--seed {seed}: expected a non-negative integer below 2^63")
    _check_size(size, split)
    out_root = Path(out_root)
    _check_root(out_root, force)
    rng = np.random.default_rng(seed)
    digits = max(4, len(str(n - 1)))
    names = []
    for i in range(n):
        clean = _crop(rng, size, split)
        rainy = add_rain(clean, rng, preset)
        name = f"syn_{i:0{digits}d}.png"
        with atomic_path(out_root / "target" / name) as target, atomic_path(out_root / "input" / name) as rain:
            save_image(target, clean, "PNG")
            save_image(rain, rainy, "PNG")
        names.append(name)
        if on_pair is not None:
            on_pair(i + 1, n)
    return names


def _check_root(root: Path, force: bool) -> None:
    """A dataset root must be a new or empty folder, unless `force`."""
    if root.exists() and not root.is_dir():
        raise NeuroDeployError(f"cannot write a dataset into {root}: it is a file")
    if root.is_dir() and not force:
        held = sum(1 for p in root.rglob("*") if p.is_file())
        if held:
            raise NeuroDeployError(f"{root} already holds {held} files: writing into it would mix datasets "
                                   "(choose a new folder, or --force to add to it)")
    check_outputs([root / "input" / "probe.png", root / "target" / "probe.png"])
