"""Image files <-> float RGB arrays <-> tensors, so every tool sees the same [0,1] HxWx3 convention."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from neuro_deploy.common.atomic import atomic_path
from neuro_deploy.errors import NeuroDeployError

# Pillow format per extension; also the set of extensions a dataset folder may hold.
FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
IMAGE_EXTENSIONS = frozenset(FORMATS)


def image_files(folder: Path) -> list[Path]:
    """The image files in `folder`, sorted by name; dot-files (e.g. half-written temporaries) are skipped."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)

_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I"}


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Load any supported image as float32 RGB in [0,1]; gray and alpha are folded to RGB."""
    path = Path(path)
    if path.is_dir():
        raise NeuroDeployError(f"cannot read image {path}: it is a directory")
    if not path.exists():
        raise NeuroDeployError(f"cannot read image {path}: no such file")
    try:
        with Image.open(path) as im:
            if im.mode not in _SIXTEEN_BIT_MODES and _sixteen_bit_colour(im):
                raise NeuroDeployError(f"cannot read image {path}: it has 16 bits per colour channel, which would "
                                       "be cut to 8 bits; save it with 8 bits per channel (or as 16-bit grayscale)")
            im.load()  # decode now, so truncated files fail here and not later
            if im.mode in _SIXTEEN_BIT_MODES:
                gray = np.asarray(im, dtype=np.float32) / 65535.0
                return np.repeat(np.clip(gray, 0.0, 1.0)[..., None], 3, axis=2)
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except UnidentifiedImageError:
        raise NeuroDeployError(f"cannot read image {path}: not a recognised image file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise NeuroDeployError(f"cannot read image {path}: {exc}") from None
    return rgb


def _sixteen_bit_colour(im: Image.Image) -> bool:
    """True for colour images Pillow decodes from 16-bit samples into 8-bit modes (it drops the low byte)."""
    for tile in getattr(im, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        rawmode = args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args else ""
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def image_format(path: str | os.PathLike) -> str:
    """Pillow format for an output path; checked before any work so a bad name fails fast."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        valid = ", ".join(sorted(FORMATS))
        raise NeuroDeployError(f"cannot write image {path}: unknown extension '{path.suffix}' (valid: {valid})")
    return fmt


def write_image(path: str | os.PathLike, img: np.ndarray) -> None:
    """Save HxWx3 [0,1] floats as 8-bit, format from the extension, atomically."""
    path = Path(path)
    fmt = image_format(path)
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise NeuroDeployError(f"cannot write image {path}: expected HxWx3 array, got shape {img.shape}")
    with atomic_path(path) as tmp:
        save_image(tmp, img, fmt)


def save_image(path: str | os.PathLike, img: np.ndarray, fmt: str) -> None:
    """Save HxWx3 [0,1] floats as 8-bit in Pillow's `fmt`, straight to `path` (callers write it
    under a temporary name)."""
    pixels = np.round(np.clip(np.asarray(img, np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    options = {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(pixels, mode="RGB").save(path, format=fmt, **options)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """HxWx3 array -> float32 [1,3,H,W], the batch layout the networks take."""
    chw = np.ascontiguousarray(np.asarray(img, dtype=np.float32).transpose(2, 0, 1))
    return torch.from_numpy(chw).unsqueeze(0)


def from_tensor(t: torch.Tensor) -> np.ndarray:
    """[1,3,H,W] or [3,H,W] tensor -> float32 HxWx3 array, back on the CPU."""
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"from_tensor expects a batch of one, got shape {tuple(t.shape)}")
        t = t[0]
    if t.dim() != 3:
        raise ValueError(f"from_tensor expects [1,C,H,W] or [C,H,W], got shape {tuple(t.shape)}")
    return t.detach().to("cpu", torch.float32).permute(1, 2, 0).contiguous().numpy()
