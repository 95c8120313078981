"""The spiking neurons of the seed paper, as multi-step modules over `[T, B, ...]`.

Each forward starts from zero state, as the release resets all neurons before every
forward. The arithmetic follows the release operation for operation, so that spikes
(threshold crossings) reproduce the original code bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn

from neuro_deploy.zoo.layers import SeqConv2d

V_TH = 0.15  # LIF threshold used throughout VLIFNet and ESDNet


class _SigmoidHeaviside(torch.autograd.Function):
    """Heaviside forward, sigmoid-derivative surrogate backward (spikingjelly `Sigmoid`)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        sg = torch.sigmoid(ctx.alpha * x)
        return grad * ctx.alpha * sg * (1 - sg), None


class LIF(nn.Module):
    """Leaky integrate-and-fire with hard reset to 0 and no input decay (spikingjelly `LIFNode`).

    `h[t] = (1 - 1/tau) v[t-1] + x[t]`, `s[t] = h[t] >= v_threshold`, `v[t] = h[t] (1 - s[t])`.
    """

    def __init__(self, v_threshold: float = V_TH, tau: float = 2.0, surrogate_alpha: float = 4.0) -> None:
        super().__init__()
        self.v_threshold = v_threshold
        self.tau = tau
        self.surrogate_alpha = surrogate_alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leak = 1.0 - 1.0 / self.tau
        v = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            h = v * leak + x[t]
            s = _SigmoidHeaviside.apply(h - self.v_threshold, self.surrogate_alpha)
            v = h * (1.0 - s)
            spikes.append(s)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return f"v_threshold={self.v_threshold}, tau={self.tau}"


class _QuantizeLevels(torch.autograd.Function):
    """`round(clamp(u, 0, L)) / L` forward; straight-through gradient scaled by 1/L inside [0, L]."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, levels: int) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.levels = levels
        return torch.round(torch.clamp(u, min=0, max=levels)) / float(levels)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (u,) = ctx.saved_tensors
        inside = (u >= 0) & (u <= ctx.levels)
        return grad * inside.to(grad.dtype) / ctx.levels, None


class NILIF(nn.Module):
    """Normalized integer LIF (released as `mem_update`): graded spikes in {0, 1/4, ..., 1}.

    `u[0] = x[0]`, `u[i] = (u[i-1] - s[i-1]) * decay + x[i]` with `s` detached,
    `s[i] = round(clamp(u[i], 0, levels)) / levels` (round half to even).
    """

    def __init__(self, decay: float = 0.25, levels: int = 4) -> None:
        super().__init__()
        self.decay = decay
        self.levels = levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes = []
        u = x[0]
        for i in range(x.shape[0]):
            if i > 0:
                u = (u - spikes[-1].detach()) * self.decay + x[i]
            spikes.append(_QuantizeLevels.apply(u, self.levels))
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return f"decay={self.decay}, levels={self.levels}"


def patches_to_time(x: torch.Tensor, r: int) -> torch.Tensor:
    """`[T,B,C,H,W]` -> `[T*r^2, B, C, H/r, W/r]`: sub-pixel k of each r x r patch becomes step `t*r^2 + k`."""
    T, B, C, H, W = x.shape
    u = nn.functional.pixel_unshuffle(x.reshape(T * B, C, H, W), r)
    u = u.reshape(T, B, C, r * r, H // r, W // r).permute(0, 3, 1, 2, 4, 5)
    return u.reshape(T * r * r, B, C, H // r, W // r)


def time_to_channels(s: torch.Tensor, r: int) -> torch.Tensor:
    """Inverse regrouping of `patches_to_time` into channels: `[T*r^2,B,C,h,w]` -> `[T,B,C*r^2,h,w]`."""
    Tr, B, C, h, w = s.shape
    T = Tr // (r * r)
    s = s.reshape(T, r * r, B, C, h, w).permute(0, 2, 3, 1, 4, 5)
    return s.reshape(T, B, C * r * r, h, w)


class VLIF(nn.Module):
    """Visual LIF (released as `PixelShuffleLIFBlock`): NI-LIF over sub-pixel positions as extra steps.

    Pixel-unshuffle by r, run NI-LIF over `T*r^2` steps, regroup to `C*r^2` channels,
    bilinear-upsample back to `H x W`, then a bias-free 1x1 conv back to C channels.
    """

    def __init__(self, channels: int, r: int = 2) -> None:
        super().__init__()
        self.r = r
        self.lif_node = NILIF()
        self.channel_adjust = SeqConv2d(channels * r * r, channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        s = time_to_channels(self.lif_node(patches_to_time(x, self.r)), self.r)
        up = nn.functional.interpolate(
            s.reshape(T * B, C * self.r**2, H // self.r, W // self.r),
            size=(H, W), mode="bilinear", align_corners=False,
        )
        return self.channel_adjust(up.reshape(T, B, C * self.r**2, H, W))
