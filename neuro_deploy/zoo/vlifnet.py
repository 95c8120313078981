"""VLIFNet, the spiking deraining U-Net of the seed paper (Chen et al., AAAI 2026).

Module and attribute names follow the released code so that released checkpoints load
with `strict=True`; class names follow the paper (release names in the docstrings).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from neuro_deploy.zoo.layers import MDA, SeqConv2d, TdBN, TimeAttention, upsample2x
from neuro_deploy.zoo.neurons import LIF, NILIF, V_TH, VLIF, patches_to_time


def conv3x3(cin: int, cout: int, stride: int = 1) -> SeqConv2d:
    return SeqConv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def attention_or_relu(attention: bool, T: int, channels: int) -> nn.Module:
    """MDA, or just its final ReLU in the deployable variant."""
    return MDA(T, channels) if attention else nn.ReLU()


class SDEMBlock(nn.Module):
    """Spiking detail-enhancement residual block (released as `Spiking_Residual_Block`).

    Two groups `z = a*s + b*(y - s) + y*s` around a LIF and a VLIF, each followed by
    conv3x3 + tdBN; a conv+tdBN shortcut; MDA; and the identity skip.

    The deployable variant drops what Loihi cannot run on its neurocores: with
    `attention=False` the MDA gates become their final ReLU, and with
    `enhance_product=False` the Hadamard term `y*s` is dropped.
    """

    def __init__(self, dim: int, T: int = 4, attention: bool = True, enhance_product: bool = True) -> None:
        super().__init__()
        self.enhance_product = enhance_product
        self.lif_1 = LIF()
        self.conv1 = conv3x3(dim, dim)
        self.bn1 = TdBN(dim, V_TH)
        self.high_freq_scale_1 = nn.Parameter(torch.ones(1))
        self.low_freq_scale_1 = nn.Parameter(torch.ones(1))
        self.lif_2 = VLIF(dim)
        self.conv2 = conv3x3(dim, dim)
        self.bn2 = TdBN(dim, V_TH * 0.2)
        self.high_freq_scale_2 = nn.Parameter(torch.ones(1))
        self.low_freq_scale_2 = nn.Parameter(torch.ones(1))
        self.shortcut = nn.Sequential(conv3x3(dim, dim), TdBN(dim, V_TH))
        self.attn = attention_or_relu(attention, T, dim)

    def _enhance(self, y: torch.Tensor, s: torch.Tensor, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        if self.enhance_product:
            return high * s + low * (y - s) + y * s
        return high * s + low * (y - s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn1(self.conv1(self._enhance(x, self.lif_1(x), self.high_freq_scale_1, self.low_freq_scale_1)))
        out = self.bn2(self.conv2(self._enhance(y, self.lif_2(y), self.high_freq_scale_2, self.low_freq_scale_2)))
        out = out + self.shortcut(x)
        return self.attn(out) + x


class SMU(nn.Module):
    """Spiking multi-scale unit (released as `SUNet_Level1_Block`).

    SDEM block -> skip; sub-pixels to time and NI-LIF over `T*4` steps; time attention;
    temporal Conv3d back to T steps; two [LIF, conv3x3, tdBN, MDA]; bilinear x2; + skip; MDA.
    """

    r = 2

    def __init__(self, dim: int, T: int = 4, attention: bool = True, enhance_product: bool = True) -> None:
        super().__init__()
        steps = T * self.r**2
        self.initial_residual = SDEMBlock(dim, T, attention, enhance_product)
        self.lif_node = NILIF()
        self.time_attention = TimeAttention(steps, ratio=4) if attention else None
        self.temporal_compress = nn.Sequential(
            nn.Conv3d(dim, dim, kernel_size=(self.r**2, 1, 1), stride=(self.r**2, 1, 1), bias=False),
            nn.ReLU(),
        )
        self.lif_1 = LIF()
        self.conv_1 = conv3x3(dim, dim)
        self.bn_1 = TdBN(dim, V_TH)
        self.attn_1 = attention_or_relu(attention, T, dim)
        self.lif_2 = LIF()
        self.conv_2 = conv3x3(dim, dim)
        self.bn_2 = TdBN(dim, V_TH)
        self.attn_2 = attention_or_relu(attention, T, dim)
        self.final_attn = attention_or_relu(attention, T, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.initial_residual(x)
        s = self.lif_node(patches_to_time(skip, self.r)).transpose(0, 1)  # [B, T*r^2, C, h, w]
        if self.time_attention is not None:
            s = s * self.time_attention(s)
        out = self.temporal_compress(s.permute(0, 2, 1, 3, 4)).permute(2, 0, 1, 3, 4)  # [T, B, C, h, w]
        out = self.attn_1(self.bn_1(self.conv_1(self.lif_1(out))))
        out = self.attn_2(self.bn_2(self.conv_2(self.lif_2(out))))
        return self.final_attn(upsample2x(out) + skip)


class PatchEmbed(nn.Module):
    """conv3x3 from image channels to `dim` on every step (the release's `OverlapPatchEmbed`)."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = conv3x3(in_channels, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class LifConvBN(nn.Module):
    """LIF, conv3x3, tdBN: the spiking resampling stage."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.lif = LIF()
        self.conv = conv3x3(cin, cout, stride)
        self.bn = TdBN(cout, V_TH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.lif(x)))


class DownSampling(LifConvBN):
    """Halve the resolution (stride-2 conv), double the channels."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, dim * 2, stride=2)


class UpSampling(LifConvBN):
    """Bilinear x2 first, then halve the channels."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, dim // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(upsample2x(x))


def encode(net: nn.Module, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The encoder both seed U-Nets share: the image repeated over T steps down to level 3,
    then the level-3 decoder. Returns the two skip tensors and the level-3 output."""
    x = img.unsqueeze(0).repeat(net.T, 1, 1, 1, 1)
    enc1 = net.encoder_level1(net.patch_embed(x))
    enc2 = net.encoder_level2(net.down1_2(enc1))
    return enc1, enc2, net.decoder_level3(net.encoder_level3(net.down2_3(enc2)))


class VLIFNet(nn.Module):
    """Three-level spiking U-Net over T steps; the release is `dim=48, en=[4,4,8,8], de=[2,2,2,2]`.

    Only `en_num_blocks[1:3]` and `de_num_blocks[1:3]` are used (level 1 is built of SMUs),
    as in the release. `attention=False, enhance_product=False` is the deployable variant
    (see `SDEMBlock`): every op then has a neurocore equivalent.
    """

    def __init__(
        self,
        dim: int = 48,
        en_num_blocks: Sequence[int] = (4, 4, 8, 8),
        de_num_blocks: Sequence[int] = (2, 2, 2, 2),
        T: int = 4,
        use_refinement: bool = False,
        in_channels: int = 3,
        out_channels: int = 3,
        attention: bool = True,
        enhance_product: bool = True,
    ) -> None:
        super().__init__()
        self.T = T
        self.use_refinement = use_refinement
        d1, d2, d3 = dim, dim * 2, dim * 4
        variant = (T, attention, enhance_product)

        def blocks(channels: int, n: int) -> nn.Sequential:
            return nn.Sequential(*[SDEMBlock(channels, *variant) for _ in range(n)])

        self.patch_embed = PatchEmbed(in_channels, d1)
        self.encoder_level1 = SMU(d1, *variant)
        self.down1_2 = DownSampling(d1)
        self.encoder_level2 = blocks(d2, en_num_blocks[1])
        self.down2_3 = DownSampling(d2)
        self.encoder_level3 = blocks(d3, en_num_blocks[2])
        self.decoder_level3 = blocks(d3, de_num_blocks[2])
        self.up3_2 = UpSampling(d3)
        self.lif_level2 = LIF()
        self.reduce_conv_level2 = SeqConv2d(d3, d2, kernel_size=1, bias=False)
        self.reduce_bn_level2 = TdBN(d2, V_TH)
        self.decoder_level2 = blocks(d2, de_num_blocks[1])
        self.up2_1 = UpSampling(d2)
        self.lif_level1 = LIF()
        self.reduce_conv_level1 = SeqConv2d(d2, d1, kernel_size=1, bias=False)
        self.reduce_bn_level1 = TdBN(d1, V_TH)
        self.decoder_level1 = SMU(d1, *variant)
        self.additional_sunet_level1 = SMU(d1, *variant)
        if use_refinement:
            self.refinement_blocks = blocks(d1, 4)
        self.output = nn.Sequential(nn.Conv2d(d1, out_channels, kernel_size=3, padding=1))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        enc1, enc2, dec3 = encode(self, img)
        x = torch.cat([self.up3_2(dec3), enc2], dim=2)
        dec2 = self.decoder_level2(self.reduce_bn_level2(self.reduce_conv_level2(self.lif_level2(x))))
        x = torch.cat([self.up2_1(dec2), enc1], dim=2)
        dec1 = self.decoder_level1(self.reduce_bn_level1(self.reduce_conv_level1(self.lif_level1(x))))
        dec1 = self.additional_sunet_level1(dec1)
        if self.use_refinement:
            dec1 = self.refinement_blocks(dec1)
        return self.output(dec1.mean(0)) + img
