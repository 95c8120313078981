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


def build(arch: str, **constructor_kwargs: Any) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise NeuroDeployError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    try:
        return ARCHITECTURES[arch](**constructor_kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeuroDeployError(f"bad {arch} configuration: {first}") from None


def check_config(ckpt: Checkpoint) -> None:
    """Refuse a configuration its weights do not fit (a `dim=4096` beside dim-8 weights would
    otherwise allocate gigabytes before any check): the network is built on the meta device,
    which costs no memory, and compared name by name and shape by shape."""
    with torch.device("meta"):
        skeleton = build(ckpt.arch, **ckpt.config)
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
