"""ESDNet (Song et al., IJCAI 2024), the spiking deraining baseline of the seed paper.

Same U-Net skeleton as VLIFNet with plain spiking residual blocks, a level-1 decoder at
twice the width, and a float (ANN) refinement block before the output conv. Names follow
the released code so its checkpoints load with `strict=True`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neuro_deploy.zoo.layers import MDA, SeqConv2d, TdBN, upsample2x
from neuro_deploy.zoo.neurons import LIF, V_TH
from neuro_deploy.zoo.vlifnet import PatchEmbed, conv3x3, encode


def lif_conv_bn(cin: int, cout: int, kernel_size: int = 3, stride: int = 1, v_th: float = V_TH) -> list[nn.Module]:
    conv = SeqConv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
    return [LIF(), conv, TdBN(cout, v_th)]


class SpikingResidualBlock(nn.Module):
    """[LIF, conv3x3, tdBN, LIF, conv3x3, tdBN'] + conv3x3/tdBN shortcut, MDA, + identity."""

    def __init__(self, dim: int, T: int = 4) -> None:
        super().__init__()
        self.residual = nn.Sequential(*lif_conv_bn(dim, dim), *lif_conv_bn(dim, dim, v_th=V_TH * 0.2))
        self.shortcut = nn.Sequential(conv3x3(dim, dim), TdBN(dim, V_TH))
        self.attn = MDA(T, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual(x) + self.shortcut(x)
        return self.attn(out) + x


class ESDDownSampling(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(*lif_conv_bn(dim, dim * 2, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class ESDUpSampling(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.up = nn.Sequential(*lif_conv_bn(dim, dim // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(upsample2x(x))


class FeatureRefinement(nn.Module):
    """Float refinement: `(1 - t) * a + t * x` with a channel gate a and a spatial gate t."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.ca = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )
        self.sa = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.Conv2d(channels, channels // 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels // 8, channels, 3, padding=1),
            nn.Sigmoid(),
        )

    def convs(self) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[tuple[torch.Tensor, torch.Tensor]]]:
        """(weight, bias) of the channel gate's and the spatial gate's convs, in order."""
        return ([(c.weight, c.bias) for c in self.ca if isinstance(c, nn.Conv2d)],
                [(c.weight, c.bias) for c in self.sa if isinstance(c, nn.Conv2d)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return refine(x, *self.convs())


def refine(x: torch.Tensor, ca: list[tuple[torch.Tensor, torch.Tensor]],
           sa: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """`(1 - t) * a + t * x` on `[B, C, H, W]`; shared by the module and the graph executor."""
    (w1, b1), (w2, b2) = ca
    a = torch.sigmoid(F.conv2d(F.relu(F.conv2d(F.adaptive_avg_pool2d(x, 1), w1, b1)), w2, b2))
    (w3, b3), (w4, b4), (w5, b5) = sa
    t = F.conv2d(F.conv2d(x, w3, b3, padding=1), w4, b4, padding=1)
    t = torch.sigmoid(F.conv2d(F.relu(t), w5, b5, padding=1))
    return (1 - t) * a + t * x


class ESDNet(nn.Module):
    """ESDNet; the release is `dim=48, en=[4,4,8,8], de=[2,2,2,2]` (`en[3]`, `de[3]` unused)."""

    def __init__(
        self,
        dim: int = 48,
        en_num_blocks: Sequence[int] = (4, 4, 8, 8),
        de_num_blocks: Sequence[int] = (2, 2, 2, 2),
        T: int = 4,
        in_channels: int = 3,
        out_channels: int = 3,
    ) -> None:
        super().__init__()
        self.T = T
        d1, d2, d3 = dim, dim * 2, dim * 4

        def blocks(channels: int, n: int) -> nn.Sequential:
            return nn.Sequential(*[SpikingResidualBlock(channels, T) for _ in range(n)])

        self.patch_embed = PatchEmbed(in_channels, d1)
        self.encoder_level1 = blocks(d1, en_num_blocks[0])
        self.down1_2 = ESDDownSampling(d1)
        self.encoder_level2 = blocks(d2, en_num_blocks[1])
        self.down2_3 = ESDDownSampling(d2)
        self.encoder_level3 = blocks(d3, en_num_blocks[2])
        self.decoder_level3 = blocks(d3, de_num_blocks[2])
        self.up3_2 = ESDUpSampling(d3)
        self.reduce_chan_level2 = nn.Sequential(*lif_conv_bn(d3, d2, kernel_size=1))
        self.decoder_level2 = blocks(d2, de_num_blocks[1])
        self.up2_1 = ESDUpSampling(d2)
        self.decoder_level1 = blocks(d2, de_num_blocks[0])
        self.refinement = FeatureRefinement(d2, reduction=8)
        self.output = nn.Sequential(nn.Conv2d(d2, out_channels, kernel_size=3, padding=1))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        enc1, enc2, dec3 = encode(self, img)
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=2)))
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=2))
        return self.output(self.refinement(dec1.mean(0))) + img
