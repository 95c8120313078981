"""Float PyTorch deraining of whole images, tiled like the official test."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from neuro_deploy.data import from_tensor, to_tensor
from neuro_deploy.tiling import tiled_apply

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
    return from_tensor(out.clamp(0, 1))
