"""Multi-step synaptic layers and the attention gates of the seed networks.

Tensors are `[T, B, C, H, W]`; multi-step convs and BNs fold `T*B` into the batch,
as spikingjelly's `step_mode='m'` layers do, so state-dict names stay the release's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TDBN_ALPHA = 1 / (2**0.5)


def _fold_time(module_forward, x: torch.Tensor) -> torch.Tensor:
    T, B = x.shape[:2]
    y = module_forward(x.flatten(0, 1))
    return y.reshape(T, B, *y.shape[1:])


class SeqConv2d(nn.Conv2d):
    """Conv2d applied to every time step (spikingjelly `layer.Conv2d`, multi-step)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _fold_time(super().forward, x)


class TdBN(nn.BatchNorm2d):
    """Threshold-dependent BatchNorm: BN over the folded `T*B` batch, weight initialised to alpha*v_th."""

    def __init__(self, num_features: int, v_th: float, alpha: float = TDBN_ALPHA) -> None:
        super().__init__(num_features)
        self.v_th = v_th
        nn.init.constant_(self.weight, alpha * v_th)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _fold_time(super().forward, x)


def _shared_mlp(planes: int, ratio: int) -> nn.Sequential:
    # At least one hidden unit: the release asserts planes >= ratio; small zoo
    # networks (dim < 16) keep a one-unit bottleneck instead.
    hidden = max(planes // ratio, 1)
    return nn.Sequential(
        nn.Conv3d(planes, hidden, 1, bias=False),
        nn.ReLU(),
        nn.Conv3d(hidden, planes, 1, bias=False),
    )


# The gates as functions of their weights, shared by the modules and the graph executor
# so that both compute bit for bit the same thing.

def time_gate(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """Sigmoid gate over dim 1 of `[B, F, C, H, W]` from its avg- and max-pooled summaries (CBAM-style).

    Adaptive pools, not mean/amax: the release's reduction order, so gates match bit for bit.
    """
    def mlp(v: torch.Tensor) -> torch.Tensor:
        return F.conv3d(F.relu(F.conv3d(v, w1)), w2)

    return torch.sigmoid(mlp(F.adaptive_avg_pool3d(x, 1)) + mlp(F.adaptive_max_pool3d(x, 1)))


def channel_gate(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """The same gate over the channel dim C of `[B, F, C, H, W]`."""
    return time_gate(x.transpose(1, 2), w1, w2).transpose(1, 2)


def spatial_gate(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Sigmoid gate over pixels of `[B, F, C, H, W]` from the mean and max over all `F*C` maps."""
    maps = x.flatten(1, 2)
    pooled = torch.cat([maps.mean(dim=1, keepdim=True), maps.amax(dim=1, keepdim=True)], dim=1)
    return torch.sigmoid(F.conv2d(pooled, w, padding=w.shape[-1] // 2)).unsqueeze(1)


def mda(x: torch.Tensor, ta: tuple[torch.Tensor, torch.Tensor], ca: tuple[torch.Tensor, torch.Tensor],
        sa: torch.Tensor) -> torch.Tensor:
    """Multi-dimensional attention on `[T, B, C, H, W]`: time, channel, spatial gates, then ReLU."""
    x = x.transpose(0, 1)
    out = time_gate(x, *ta) * x
    out = channel_gate(out, *ca) * out
    out = spatial_gate(out, sa) * out
    return torch.relu(out).transpose(0, 1)


class TimeAttention(nn.Module):
    """Gate over dim 1 of `[B, F, C, H, W]` (returns the gate, not the gated input)."""

    def __init__(self, planes: int, ratio: int) -> None:
        super().__init__()
        self.sharedMLP = _shared_mlp(planes, ratio)

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sharedMLP[0].weight, self.sharedMLP[2].weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return time_gate(x, *self.weights())


class SpatialAttention(nn.Module):
    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)


class MDA(nn.Module):
    """Multi-dimensional attention of MA-SNN (spikingjelly `MultiDimensionalAttention`)."""

    def __init__(self, T: int, C: int, reduction_t: int = 4, reduction_c: int = 16, kernel_size: int = 3) -> None:
        super().__init__()
        self.ta = TimeAttention(T, reduction_t)
        self.ca = TimeAttention(C, reduction_c)  # applied over channels by `mda`
        self.sa = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mda(x, self.ta.weights(), self.ca.weights(), self.sa.conv.weight)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 upsampling (align_corners False) of every time step of `[T,B,C,H,W]`."""
    return _fold_time(lambda y: nn.functional.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False), x)
