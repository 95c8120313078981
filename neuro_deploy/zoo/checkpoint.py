"""Checkpoints: released `.pth` state dicts, the reference files, and the project's own format.

Everything is read with `torch.load(..., weights_only=True)`: a file that needs arbitrary
unpickling is refused, never executed.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from neuro_deploy.common import resources
from neuro_deploy.common.atomic import atomic_path, refuse_special_file
from neuro_deploy.errors import NeuroDeployError

FORMAT = "neuro-deploy-checkpoint"
FORMAT_VERSION = 1
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "params", "net", "params_ema")


@dataclass
class Checkpoint:
    """A zoo network's identity and weights, plus whatever training left behind."""

    arch: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    training_state: dict[str, Any] | None = None
    path: str | None = None
    sha256: str | None = None


def _read(path: Path) -> Any:
    if path.is_dir():
        raise NeuroDeployError(f"checkpoint {path} is a folder, not a file")
    refuse_special_file(path)
    if not path.is_file():
        raise NeuroDeployError(f"checkpoint not found: {path} (bundled models: {', '.join(resources.model_names())})")
    with path.open("rb") as f:
        magic = f.read(2)
    if magic[:2] != b"PK" and magic[:1] != b"\x80":  # torch's zip format, or a legacy pickle
        raise NeuroDeployError(f"{path} is not a readable PyTorch checkpoint: neither a zip archive nor a pickle")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).rpartition("WeightsUnpickler error:")[2].strip() or type(exc).__name__
        raise NeuroDeployError(
            f"refusing to load {path}: it needs arbitrary unpickling, not only weights ({reason})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeuroDeployError(f"{path} is not a readable PyTorch checkpoint: {first}") from None


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _unwrap_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if _is_state_dict(obj):
        sd = dict(obj)
    else:
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj, Mapping) and _is_state_dict(obj.get(k))), None)
        if inner is None:
            raise NeuroDeployError(f"{path} holds no state dict (a mapping of names to tensors)")
        sd = dict(inner)
    if all(k.startswith("module.") for k in sd):  # saved from DataParallel
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def infer_arch(sd: Mapping[str, torch.Tensor]) -> str:
    if any(k.startswith("encoder_level1.initial_residual.") for k in sd):
        return "vlifnet"  # level 1 is an SMU
    if any(re.match(r"encoder_level1\.\d+\.residual\.", k) for k in sd):
        return "esdnet"  # level 1 is a chain of plain spiking residual blocks
    raise NeuroDeployError(
        "unknown architecture: the state dict is neither VLIFNet nor ESDNet "
        f"(first keys: {', '.join(list(sd)[:3])})"
    )


def _count_blocks(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    indices = {int(m.group(1)) for k in sd if (m := pattern.match(k))}
    return max(indices) + 1 if indices else 0


def infer_config(arch: str, sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Constructor arguments from key names and shapes.

    Block counts the network does not use (VLIFNet's `en[0], en[3], de[0], de[3]`,
    ESDNet's `en[3], de[3]`) are filled from their neighbours, which reproduces the
    released configurations.
    """
    try:
        embed = sd["patch_embed.proj.weight"]
        config: dict[str, Any] = {
            "dim": int(embed.shape[0]),
            "in_channels": int(embed.shape[1]),
            "out_channels": int(sd["output.0.weight"].shape[0]),
        }
        ta = next((v for k, v in sd.items() if k.endswith("attn.ta.sharedMLP.0.weight")), None)
        if ta is not None:  # the time gate's MLP has T inputs
            config["T"] = int(ta.shape[1])
    except (KeyError, StopIteration, IndexError) as exc:
        raise NeuroDeployError(f"cannot infer the {arch} configuration: missing key {exc}") from None
    e1, e2 = _count_blocks(sd, "encoder_level2"), _count_blocks(sd, "encoder_level3")
    d1, d2 = _count_blocks(sd, "decoder_level2"), _count_blocks(sd, "decoder_level3")
    if arch == "vlifnet":
        config.update(en_num_blocks=[e1, e1, e2, e2], de_num_blocks=[d1, d1, d2, d2],
                      use_refinement=any(k.startswith("refinement_blocks.") for k in sd))
        if ta is None:  # no gates: the deployable variant (its Hadamard switch leaves no trace)
            config.update(attention=False, enhance_product=False)
    else:
        e0, d0 = _count_blocks(sd, "encoder_level1"), _count_blocks(sd, "decoder_level1")
        config.update(en_num_blocks=[e0, e1, e2, e2], de_num_blocks=[d0, d1, d2, d2])
    return config


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_checkpoint(path: str | Path) -> Path:
    """`path` itself, or the bundled model of that name when no such file exists here."""
    path = Path(path)
    return path if path.exists() else resources.bundled_model(path) or path


def _refuse_non_finite(sd: Mapping[str, torch.Tensor], path: Path) -> None:
    """NaN or Inf weights run without complaint and give black images or NaN scores: refuse them at load."""
    bad = [k for k, v in sd.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise NeuroDeployError(f"{path}: weight {bad[0]}{more} holds NaN or infinite values")


def _check_own_format(obj: Mapping[str, Any], path: Path) -> None:
    """The project's format names its architecture and configuration instead of leaving them to be
    inferred: a file missing either, or holding the wrong kind of value, is refused here rather than
    failing as a KeyError (or worse, a wrong network) later."""
    from neuro_deploy.zoo import ARCHITECTURES  # the package imports this module first

    if obj.get("arch") not in ARCHITECTURES:
        found = "no 'arch' entry" if "arch" not in obj else f"arch {obj['arch']!r}"
        raise NeuroDeployError(f"{path}: a {FORMAT} file with {found} (expected one of {', '.join(ARCHITECTURES)})")
    if not isinstance(obj.get("config"), Mapping) or not all(isinstance(k, str) for k in obj["config"]):
        raise NeuroDeployError(f"{path}: a {FORMAT} file without a 'config' mapping of constructor arguments")
    if not _is_state_dict(obj.get("state_dict")):
        raise NeuroDeployError(f"{path}: a {FORMAT} file without a 'state_dict' (a mapping of names to tensors)")
    if not isinstance(obj.get("meta") or {}, Mapping):
        raise NeuroDeployError(f"{path}: a {FORMAT} file whose 'meta' is not a mapping")


def read_checkpoint(path: str | Path, arch: str | None = None) -> Checkpoint:
    """Read any supported checkpoint, or a bundled model by name, into a `Checkpoint` (no model built yet)."""
    path = resolve_checkpoint(path)
    obj = _read(path)
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        _check_own_format(obj, path)
        if arch is not None and arch != obj["arch"]:
            raise NeuroDeployError(f"{path} is a {obj['arch']} checkpoint, not {arch}")
        ckpt = Checkpoint(obj["arch"], dict(obj["config"]), dict(obj["state_dict"]), dict(obj.get("meta") or {}),
                          obj.get("training_state"))
    else:
        sd = _unwrap_state_dict(obj, path)
        found = infer_arch(sd)
        if arch is not None and arch != found:
            raise NeuroDeployError(f"{path} holds a {found} state dict, not {arch}")
        config = infer_config(found, sd)
        if isinstance(obj, Mapping) and isinstance(obj.get("constructor"), Mapping):
            config.update(obj["constructor"])  # the reference files state their constructor
        ckpt = Checkpoint(found, config, sd)
    _refuse_non_finite(ckpt.state_dict, path)
    ckpt.path, ckpt.sha256 = str(path), _sha256(path)
    return ckpt


def describe_mismatch(missing: list[str], unexpected: list[str], shapes: list[str]) -> str:
    parts = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if names:
            more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
            parts.append(f"{label}: {', '.join(names[:3])}{more}")
    return "; ".join(parts)


def mismatch(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> str:
    """How `sd` differs from `model`'s state dict in names and shapes ("" when it fits); works on
    a model built on the meta device, so a configuration is checked before memory is spent."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    return describe_mismatch(missing, unexpected, shapes)


def load_weights(model: nn.Module, sd: Mapping[str, torch.Tensor], origin: str) -> None:
    """`load_state_dict(strict=True)` with a one-line account of any mismatch."""
    differences = mismatch(model, sd)
    if differences:
        raise NeuroDeployError(f"state dict of {origin} does not match the network: {differences}")
    model.load_state_dict(sd, strict=True)


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> None:
    """Write the project format atomically: plain containers and tensors only."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": ckpt.arch,
        "config": ckpt.config,
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.state_dict.items()},
        "meta": ckpt.meta,
    }
    if ckpt.training_state is not None:
        payload["training_state"] = ckpt.training_state
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
