"""Float PyTorch deraining of whole images, tiled like the official test."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from neuro_deploy import zoo
from neuro_deploy.common.tiling import tiled_apply
from neuro_deploy.data import from_tensor, to_tensor
from neuro_deploy.errors import NeuroDeployError

TILE = 80
OVERLAP = 8
MULTIPLE = 8  # three levels of /2 (the last inside a VLIF): tile sides must divide by 8


def derain_array(
    model: nn.Module,
    img: np.ndarray,
    tile: int = TILE,
    overlap: int = OVERLAP,
    on_tile: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """HxWx3 rainy image in [0,1] -> derained HxWx3 in [0,1], any size."""
    with torch.no_grad():
        out = tiled_apply(model, to_tensor(img), tile=tile, overlap=overlap, multiple=MULTIPLE, on_tile=on_tile)
    if not bool(torch.isfinite(out).all()):  # else NaN would be written as black pixels, with exit 0
        raise NeuroDeployError("the model's output holds NaN or infinite values (check its weights and "
                               "normalisation statistics)")
    return from_tensor(out.clamp(0, 1))


def float_model(source: dict[str, Any]) -> nn.Module | None:
    """The float model a converted network came from (its `meta["source"]`), when that checkpoint
    is still there and unchanged; else None, since another model's output is no reference."""
    path = Path(source.get("path", ""))
    if not path.is_file():
        return None
    ckpt = zoo.read_checkpoint(path)
    if ckpt.sha256 != source.get("sha256"):
        return None
    ckpt.config.update(source.get("config", {}))
    return zoo.build_from(ckpt)


def float_reference(source: dict[str, Any], x: np.ndarray, tile: int) -> np.ndarray | None:
    """The float model's HxWx3 result on the `(C, H, W)` image `x`, for a converted network whose
    `meta["source"]` checkpoint is still there and unchanged (else None), tiled as the network is."""
    model = float_model(source) if x.ndim == 3 else None
    return None if model is None else derain_array(model, x.transpose(1, 2, 0), tile=tile, overlap=OVERLAP)
