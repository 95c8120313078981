"""Where tiled inference cuts an image: plain arithmetic, for the plan and the estimates that need
no torch (`tiling.py` runs the tiles)."""

from __future__ import annotations


def starts(n: int, tile: int, step: int) -> list[int]:
    """Tile offsets along one axis; the last tile is clamped to end at the edge."""
    if n <= tile:
        return [0]
    return list(range(0, n - tile, step)) + [n - tile]


def grid(h: int, w: int, tile: int, overlap: int, multiple: int) -> tuple[list[int], list[int], int, int]:
    """Where `tiled_apply` cuts an `h x w` image: the tiles' row and column offsets in the image padded
    to `multiple`, and the tiles' height and width."""
    big_h, big_w = h + -h % multiple, w + -w % multiple
    step = tile - overlap
    return starts(big_h, tile, step), starts(big_w, tile, step), min(tile, big_h), min(tile, big_w)


def tile_shape(h: int, w: int, tile: int, multiple: int = 8) -> tuple[int, int]:
    """The `(h, w)` every tile of an `h x w` image has (the image padded to `multiple`, cut to `tile`)."""
    return grid(h, w, tile, 0, multiple)[2:]


def tile_count(h: int, w: int, tile: int, overlap: int, multiple: int = 8) -> int:
    """How many tiles `tiled_apply` runs on an `h x w` image."""
    ys, xs, _, _ = grid(h, w, tile, overlap, multiple)
    return len(ys) * len(xs)
