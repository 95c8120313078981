"""Memory the float PyTorch networks need: the estimates convert, train and derain check before they run."""

from __future__ import annotations

import torch
from torch import nn

from neuro_deploy.zoo import build


def activation_bytes(arch: str, config: dict, batch: int, size: int | tuple[int, int],
                     measured_timesteps: int = 4) -> float:
    """Bytes of every module output of one forward of `[batch, C, h, w]` (`size`: `(h, w)` or a
    square's side) through the `arch` network of `config`, built on PyTorch's meta device (no
    memory, no arithmetic) at `measured_timesteps` and scaled linearly to the configuration's T:
    what capturing and calibrating the network holds at once, within a small factor."""
    h, w = (size, size) if isinstance(size, int) else size

    timesteps = int(config.get("T", 4))
    probe_t = max(1, min(timesteps, measured_timesteps))
    with torch.device("meta"):
        model = build(arch, **{**config, "T": probe_t})
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
