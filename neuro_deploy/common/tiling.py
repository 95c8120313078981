"""Tiled inference with cross-faded overlaps, so large images fit a network trained on small crops."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from neuro_deploy.common.tile_grid import grid
from neuro_deploy.errors import NeuroDeployError


def _pad_end(x: torch.Tensor, dim: int, amount: int) -> torch.Tensor:
    """Pad `amount` rows/columns after the end of `dim` (2 or 3); reflect, or replicate if too small."""
    if amount == 0:
        return x
    mode = "reflect" if amount < x.shape[dim] else "replicate"
    padding = (0, amount, 0, 0) if dim == 3 else (0, 0, 0, amount)
    return F.pad(x, padding, mode=mode)


def _edge_distance(start: int, size: int, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Distance of each tile pixel to the nearest tile edge that lies inside the image (inf if none).

    Edges on the image border have no neighbouring tile to fade into, so they are ignored;
    fading towards them would only put seams along the border.
    """
    idx = torch.arange(size, dtype=dtype, device=device)
    inf = torch.full_like(idx, float("inf"))
    to_low = idx if start > 0 else inf
    to_high = (size - 1 - idx) if start + size < n else inf
    return torch.minimum(to_low, to_high)


def _run(fn: Callable[[torch.Tensor], torch.Tensor], patch: torch.Tensor) -> torch.Tensor:
    out = fn(patch)
    if out.shape != patch.shape:
        raise NeuroDeployError(f"model output shape {tuple(out.shape)} differs from its input tile {tuple(patch.shape)}")
    return out


@torch.no_grad()
def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    img: torch.Tensor,
    tile: int = 80,
    overlap: int = 8,
    multiple: int = 8,
    on_tile: Callable[[int, int], None] | None = None,
    batch: int = 1,
) -> torch.Tensor:
    """Apply `fn` to [B,C,H,W] `img` tile by tile and blend the tiles back into [B,C,H,W].

    `fn` only sees heights/widths that are multiples of `multiple` (the image is padded at the
    bottom/right to get there). Overlapping tiles are averaged with weights growing with the
    distance to the tile edge (+1), so neighbouring tiles cross-fade instead of leaving seams.
    With `batch` k, `fn` gets up to k tiles at once, concatenated along the first axis ([k*B,C,h,w]).
    """
    if img.dim() != 4:
        raise NeuroDeployError(f"tiled inference needs a [B,C,H,W] tensor, got shape {tuple(img.shape)}")
    if multiple < 1 or tile < multiple or tile % multiple:
        raise NeuroDeployError(f"tile size {tile} must be a positive multiple of {multiple}")
    if not 0 <= overlap < tile:
        raise NeuroDeployError(f"tile overlap {overlap} must be at least 0 and below the tile size {tile}")
    h, w = img.shape[-2:]
    x = _pad_end(_pad_end(img, 2, -h % multiple), 3, -w % multiple)
    big_h, big_w = x.shape[-2:]
    ys, xs, th, tw = grid(h, w, tile, overlap, multiple)
    total = len(ys) * len(xs)
    if total == 1:
        out = _run(fn, x)
        if on_tile is not None:
            on_tile(1, 1)
        return out[..., :h, :w]

    # float64 makes identity tiles blend back bit-exactly; MPS has no float64.
    acc_dtype = torch.float32 if x.device.type == "mps" else torch.float64
    acc = torch.zeros(x.shape, dtype=acc_dtype, device=x.device)
    weight_sum = torch.zeros((big_h, big_w), dtype=acc_dtype, device=x.device)
    origins = [(y0, x0) for y0 in ys for x0 in xs]
    for start in range(0, total, max(1, batch)):
        group = origins[start:start + max(1, batch)]
        outs = _run(fn, torch.cat([x[..., y0 : y0 + th, x0 : x0 + tw] for y0, x0 in group])).split(x.shape[0])
        for (y0, x0), out in zip(group, outs):
            dist_y = _edge_distance(y0, th, big_h, acc_dtype, x.device)
            dist_x = _edge_distance(x0, tw, big_w, acc_dtype, x.device)
            weight = torch.minimum(dist_y[:, None], dist_x[None, :]) + 1
            acc[..., y0 : y0 + th, x0 : x0 + tw] += out.to(acc_dtype) * weight
            weight_sum[y0 : y0 + th, x0 : x0 + tw] += weight
        if on_tile is not None:
            on_tile(start + len(group), total)
    return (acc / weight_sum)[..., :h, :w].to(img.dtype)
