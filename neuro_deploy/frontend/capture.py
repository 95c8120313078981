"""Front end: capture a zoo network into the graph IR by walking its modules.

One handler per module class (like hls4ml's front-end handlers); neurons are leaves.
A module without a handler is refused with its path, so an unfamiliar network fails
loudly instead of converting into something else.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.ir.graph import (
    LIF, NILIF, Add, BatchNorm, Concat, Conv, Graph, Input, MDAGate, MeanT, Mul, Output, Refinement, ReLU, Scale,
    SubstepGate, Upsample,
)
from neuro_deploy.ir.shapes import infer_shapes
from neuro_deploy.zoo import esdnet, layers, neurons, vlifnet


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


class Capture:
    """Builds the graph; `visit` dispatches on the module class."""

    def __init__(self, height: int, width: int) -> None:
        self.graph = Graph()
        self.height, self.width = height, width

    def visit(self, module: nn.Module, path: str, x: str | None) -> str:
        handler = HANDLERS.get(type(module))
        if handler is None:
            raise NeuroDeployError(f"unsupported module {path or '<root>'} ({type(module).__name__})")
        return handler(self, module, path, x)

    def add(self, node, *inputs: str) -> str:
        return self.graph.add(node, *inputs)

    def child(self, module: nn.Module, path: str, name: str, x: str) -> str:
        return self.visit(getattr(module, name), f"{path}.{name}" if path else name, x)


Handler = Callable[[Capture, nn.Module, str, str | None], str]


def _conv(c: Capture, m: nn.Conv2d, path: str, x: str) -> str:
    (stride, _), (padding, _) = m.stride, m.padding
    return c.add(Conv(path, path, weight=_np(m.weight), bias=None if m.bias is None else _np(m.bias),
                      stride=stride, padding=padding, groups=m.groups), x)


def _bn(c: Capture, m: nn.BatchNorm2d, path: str, x: str) -> str:
    return c.add(BatchNorm(path, path, mean=_np(m.running_mean), var=_np(m.running_var), weight=_np(m.weight),
                           bias=_np(m.bias), eps=m.eps), x)


def _lif(c: Capture, m: neurons.LIF, path: str, x: str) -> str:
    return c.add(LIF(path, path, threshold=m.v_threshold, leak=1.0 - 1.0 / m.tau), x)


def _relu(c: Capture, m: nn.ReLU, path: str, x: str) -> str:
    return c.add(ReLU(path, path), x)


def _sequential(c: Capture, m: nn.Sequential, path: str, x: str) -> str:
    for name, _ in m.named_children():
        x = c.child(m, path, name, x)
    return x


def _mda(c: Capture, m: layers.MDA, path: str, x: str) -> str:
    (ta1, ta2), (ca1, ca2) = m.ta.weights(), m.ca.weights()
    return c.add(MDAGate(path, path, ta_w1=_np(ta1), ta_w2=_np(ta2), ca_w1=_np(ca1), ca_w2=_np(ca2),
                         sa_w=_np(m.sa.conv.weight)), x)


def _nilif(c: Capture, m: neurons.NILIF, path: str, x: str, r: int) -> str:
    return c.add(NILIF(path, path, decay=m.decay, levels=m.levels, r=r), x)


def _vlif(c: Capture, m: neurons.VLIF, path: str, x: str) -> str:
    s = _nilif(c, m.lif_node, f"{path}.lif_node", x, m.r)
    up = c.add(Upsample(f"{path}.upsample", path, factor=m.r), s)
    return c.child(m, path, "channel_adjust", up)


def _enhance(c: Capture, m: vlifnet.SDEMBlock, path: str, group: int, y: str, s: str) -> str:
    """`high*s + low*(y - s) [+ y*s]`, op for op as the release computes it."""
    high = float(getattr(m, f"high_freq_scale_{group}"))
    low = float(getattr(m, f"low_freq_scale_{group}"))
    p = f"{path}.enhance_{group}"
    hs = c.add(Scale(f"{p}.high", path, factor=high), s)
    minus_s = c.add(Scale(f"{p}.neg", path, factor=-1.0), s)
    ls = c.add(Scale(f"{p}.low", path, factor=low), c.add(Add(f"{p}.low_part", path), y, minus_s))
    z = c.add(Add(f"{p}.sum", path), hs, ls)
    if m.enhance_product:
        z = c.add(Add(f"{p}.sum_product", path), z, c.add(Mul(f"{p}.product", path), y, s))
    return z


def _sdem(c: Capture, m: vlifnet.SDEMBlock, path: str, x: str) -> str:
    s1 = c.child(m, path, "lif_1", x)
    y = c.child(m, path, "bn1", c.child(m, path, "conv1", _enhance(c, m, path, 1, x, s1)))
    s2 = c.child(m, path, "lif_2", y)
    o = c.child(m, path, "bn2", c.child(m, path, "conv2", _enhance(c, m, path, 2, y, s2)))
    o = c.add(Add(f"{path}.shortcut_add", path), o, c.child(m, path, "shortcut", x))
    return c.add(Add(f"{path}.residual_add", path), c.child(m, path, "attn", o), x)


def _smu(c: Capture, m: vlifnet.SMU, path: str, x: str) -> str:
    skip = c.child(m, path, "initial_residual", x)
    s = _nilif(c, m.lif_node, f"{path}.lif_node", skip, m.r)
    if m.time_attention is not None:
        w1, w2 = m.time_attention.weights()
        s = c.add(SubstepGate(f"{path}.time_attention", path, w1=_np(w1), w2=_np(w2), r=m.r), s)
    # Conv3d(C, C, (r^2,1,1), stride r^2) over the sub-steps of one step == 1x1 conv over the
    # NI-LIF's `c*r^2 + k` output channels.
    w3d = m.temporal_compress[0].weight
    t = c.add(Conv(f"{path}.temporal_compress.0", f"{path}.temporal_compress.0",
                   weight=_np(w3d.reshape(w3d.shape[0], -1, 1, 1))), s)
    out = c.child(m.temporal_compress, f"{path}.temporal_compress", "1", t)
    for i in (1, 2):
        for part in ("lif", "conv", "bn", "attn"):
            out = c.child(m, path, f"{part}_{i}", out)
    up = c.add(Upsample(f"{path}.upsample", path, factor=2), out)
    return c.child(m, path, "final_attn", c.add(Add(f"{path}.skip_add", path), up, skip))


def _lif_conv_bn(c: Capture, m: vlifnet.LifConvBN, path: str, x: str) -> str:
    if isinstance(m, vlifnet.UpSampling):
        x = c.add(Upsample(f"{path}.upsample", path, factor=2), x)
    for name in ("lif", "conv", "bn"):
        x = c.child(m, path, name, x)
    return x


def _patch_embed(c: Capture, m: vlifnet.PatchEmbed, path: str, x: str) -> str:
    return c.child(m, path, "proj", x)


def _image(c: Capture, m: nn.Module) -> str:
    """The input node: the image repeated over the network's T steps."""
    return c.add(Input("input", "", channels=m.patch_embed.proj.in_channels, height=c.height, width=c.width,
                       repeat=m.T))


def _image_skip(c: Capture, out: str, image: str) -> str:
    """`output(mean_T(features)) + image`; the image is the mean of its T identical copies."""
    image_once = c.add(MeanT("input.mean_t", ""), image)
    return c.add(Output("output", ""), c.add(Add("output.image_add", "output"), out, image_once))


def _encode(c: Capture, m: nn.Module, path: str, image: str) -> tuple[str, str, str]:
    """The shared encoder of both U-Nets (see `vlifnet.encode`)."""
    enc1 = c.child(m, path, "encoder_level1", c.child(m, path, "patch_embed", image))
    enc2 = c.child(m, path, "encoder_level2", c.child(m, path, "down1_2", enc1))
    enc3 = c.child(m, path, "encoder_level3", c.child(m, path, "down2_3", enc2))
    return enc1, enc2, c.child(m, path, "decoder_level3", enc3)


def _vlifnet(c: Capture, m: vlifnet.VLIFNet, path: str, _: str | None) -> str:
    image = _image(c, m)
    enc1, enc2, dec3 = _encode(c, m, path, image)
    x = c.add(Concat("cat_level2", ""), c.child(m, path, "up3_2", dec3), enc2)
    for name in ("lif_level2", "reduce_conv_level2", "reduce_bn_level2", "decoder_level2"):
        x = c.child(m, path, name, x)
    x = c.add(Concat("cat_level1", ""), c.child(m, path, "up2_1", x), enc1)
    for name in ("lif_level1", "reduce_conv_level1", "reduce_bn_level1", "decoder_level1", "additional_sunet_level1"):
        x = c.child(m, path, name, x)
    if m.use_refinement:
        x = c.child(m, path, "refinement_blocks", x)
    out = c.child(m, path, "output", c.add(MeanT("mean_t", ""), x))
    return _image_skip(c, out, image)


def _esd_block(c: Capture, m: esdnet.SpikingResidualBlock, path: str, x: str) -> str:
    o = c.add(Add(f"{path}.shortcut_add", path), c.child(m, path, "residual", x), c.child(m, path, "shortcut", x))
    return c.add(Add(f"{path}.residual_add", path), c.child(m, path, "attn", o), x)


def _esd_down(c: Capture, m: esdnet.ESDDownSampling, path: str, x: str) -> str:
    return c.child(m, path, "maxpool_conv", x)


def _esd_up(c: Capture, m: esdnet.ESDUpSampling, path: str, x: str) -> str:
    return c.child(m, path, "up", c.add(Upsample(f"{path}.upsample", path, factor=2), x))


def _refinement(c: Capture, m: esdnet.FeatureRefinement, path: str, x: str) -> str:
    ca, sa = m.convs()
    return c.add(Refinement(path, path, ca=tuple((_np(w), _np(b)) for w, b in ca),
                            sa=tuple((_np(w), _np(b)) for w, b in sa)), x)


def _esdnet(c: Capture, m: esdnet.ESDNet, path: str, _: str | None) -> str:
    image = _image(c, m)
    enc1, enc2, dec3 = _encode(c, m, path, image)
    x = c.add(Concat("cat_level2", ""), c.child(m, path, "up3_2", dec3), enc2)
    x = c.child(m, path, "decoder_level2", c.child(m, path, "reduce_chan_level2", x))
    x = c.add(Concat("cat_level1", ""), c.child(m, path, "up2_1", x), enc1)
    x = c.child(m, path, "decoder_level1", x)
    x = c.child(m, path, "refinement", c.add(MeanT("mean_t", ""), x))
    return _image_skip(c, c.child(m, path, "output", x), image)


HANDLERS: dict[type, Handler] = {
    vlifnet.VLIFNet: _vlifnet,
    vlifnet.SMU: _smu,
    vlifnet.SDEMBlock: _sdem,
    vlifnet.DownSampling: _lif_conv_bn,
    vlifnet.UpSampling: _lif_conv_bn,
    vlifnet.PatchEmbed: _patch_embed,
    neurons.VLIF: _vlif,
    neurons.LIF: _lif,
    layers.SeqConv2d: _conv,
    layers.TdBN: _bn,
    layers.MDA: _mda,
    nn.Conv2d: _conv,
    nn.ReLU: _relu,
    nn.Sequential: _sequential,
    esdnet.ESDNet: _esdnet,
    esdnet.SpikingResidualBlock: _esd_block,
    esdnet.ESDDownSampling: _esd_down,
    esdnet.ESDUpSampling: _esd_up,
    esdnet.FeatureRefinement: _refinement,
}


def capture(model: nn.Module, height: int, width: int) -> Graph:
    """The op graph of a zoo network for `height x width` images (multiples of 8)."""
    if height % 8 or width % 8:
        raise NeuroDeployError(f"image size {width}x{height}: both sides must be multiples of 8")
    c = Capture(height, width)
    c.visit(model, "", None)
    infer_shapes(c.graph)
    return c.graph
