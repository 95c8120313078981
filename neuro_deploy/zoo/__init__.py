"""The network zoo: the seed paper's spiking deraining networks, torch only (no Lava import).

    build(arch, **constructor_kwargs) -> nn.Module
    load(path, arch=None) -> nn.Module in eval mode
    spike_rates(model, x) -> {module name: fraction of non-zero outputs}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.zoo.checkpoint import Checkpoint, load_weights, mismatch, read_checkpoint, save_checkpoint
from neuro_deploy.zoo.esdnet import ESDNet
from neuro_deploy.zoo.neurons import LIF, NILIF
from neuro_deploy.zoo.vlifnet import VLIFNet

ARCHITECTURES: dict[str, type[nn.Module]] = {"vlifnet": VLIFNet, "esdnet": ESDNet}

__all__ = ["ARCHITECTURES", "Checkpoint", "build", "build_from", "check_config", "load", "read_checkpoint",
           "save_checkpoint", "spike_rates"]


#: constructor arguments that count something, and the least each may be (a block count of 0 leaves a level out)
COUNTS = {"dim": 1, "T": 1, "in_channels": 1, "out_channels": 1}
BLOCK_COUNTS = ("en_num_blocks", "de_num_blocks")
#: deraining reads and writes RGB images, and adds the input to the output
IMAGE_CHANNELS = 3


def _check_counts(arch: str, kwargs: dict[str, Any]) -> None:
    """Refuse a width, step count or block count PyTorch would build without complaint (`dim=0`
    makes empty layers; `T=0` fails much later, inside a forward pass or a division)."""
    for key, least in COUNTS.items():
        value = kwargs.get(key, least)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise NeuroDeployError(f"bad {arch} configuration: {key}={value!r}, expected an integer >= {least}")
    for key in BLOCK_COUNTS:
        value = kwargs.get(key, (1,))
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                           for v in value):
            raise NeuroDeployError(f"bad {arch} configuration: {key}={value!r}, expected a list of integers >= 0")


def build(arch: str, **constructor_kwargs: Any) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise NeuroDeployError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    _check_counts(arch, constructor_kwargs)
    try:
        return ARCHITECTURES[arch](**constructor_kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeuroDeployError(f"bad {arch} configuration: {first}") from None


def check_config(ckpt: Checkpoint) -> None:
    """Refuse a configuration its weights do not fit (a `dim=4096` beside dim-8 weights would
    otherwise allocate gigabytes before any check): the network is built on the meta device,
    which costs no memory, and compared name by name and shape by shape."""
    try:
        with torch.device("meta"):
            skeleton = build(ckpt.arch, **ckpt.config)
    except NeuroDeployError as exc:
        raise NeuroDeployError(f"{ckpt.path or ckpt.arch}: {exc}") from None
    channels = (ckpt.config.get("in_channels", IMAGE_CHANNELS), ckpt.config.get("out_channels", IMAGE_CHANNELS))
    if channels != (IMAGE_CHANNELS, IMAGE_CHANNELS):
        raise NeuroDeployError(f"{ckpt.path or ckpt.arch}: a network of {channels[0]} input and {channels[1]} output "
                               f"channels; deraining runs on RGB images ({IMAGE_CHANNELS} in, {IMAGE_CHANNELS} out)")
    differences = mismatch(skeleton, ckpt.state_dict)
    if differences:
        shown = ", ".join(f"{k}={v}" for k, v in ckpt.config.items())
        raise NeuroDeployError(f"{ckpt.path or ckpt.arch}: its configuration ({shown}) does not match its weights: "
                               f"{differences}")


def build_from(ckpt: Checkpoint) -> nn.Module:
    """The checkpoint's network with its weights, in eval mode; the configuration is checked first."""
    check_config(ckpt)
    model = build(ckpt.arch, **ckpt.config)
    load_weights(model, ckpt.state_dict, ckpt.path or ckpt.arch)
    return model.eval()


def load(path: str | Path, arch: str | None = None) -> nn.Module:
    return build_from(read_checkpoint(path, arch))


def spike_rates(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Fraction of non-zero outputs of every LIF and NI-LIF module for one forward of `x`."""
    counts: dict[str, list[int]] = {}

    def hook(name: str):
        def record(_module: nn.Module, _inputs: Any, out: torch.Tensor) -> None:
            c = counts.setdefault(name, [0, 0])
            c[0] += int(torch.count_nonzero(out))
            c[1] += out.numel()
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, (LIF, NILIF))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {name: nonzero / total for name, (nonzero, total) in counts.items()}
