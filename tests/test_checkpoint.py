"""Checkpoint loading: released layouts, the project format, and refusal of unsafe pickles."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from neuro_deploy import zoo
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.zoo.checkpoint import Checkpoint, infer_config, save_checkpoint

from conftest import reference_file


class _Payload:
    """Unpickling this would create a file: the loader must never do it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def _release_entries():
    for arch in ("vlifnet", "esdnet"):
        for name, entry in json.loads(reference_file(f"{arch}_release_state_dict.json").read_text()).items():
            yield pytest.param(arch, entry["constructor"], id=name)


@pytest.mark.parametrize("arch,constructor", list(_release_entries()))
def test_release_configuration_is_inferred_from_keys_and_shapes(arch, constructor):
    sd = zoo.build(arch, **constructor).state_dict()
    assert zoo.checkpoint.infer_arch(sd) == arch
    inferred = infer_config(arch, sd)
    assert {k: inferred[k] for k in constructor} == constructor


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "params", "module_prefix"])
def test_released_pth_layouts_load_and_reproduce_outputs(tmp_path, official_small, wrap):
    arch, ref = official_small
    sd = ref["state_dict"]
    obj = {"bare": sd, "state_dict": {"state_dict": sd, "epoch": 3}, "params": {"params": sd},
           "module_prefix": {f"module.{k}": v for k, v in sd.items()}}[wrap]
    path = tmp_path / "released.pth"
    torch.save(obj, path)
    model = zoo.load(path)  # arch and configuration inferred
    assert not model.training
    with torch.no_grad():
        assert torch.allclose(model(ref["input"]), ref["output"], atol=1e-5, rtol=0)


def test_project_format_round_trip(tmp_path, official_small):
    arch, ref = official_small
    path = tmp_path / "model.pt"
    save_checkpoint(path, Checkpoint(arch, dict(ref["constructor"]), ref["state_dict"], {"note": "round trip"}))
    ckpt = zoo.read_checkpoint(path)
    assert (ckpt.arch, ckpt.config, ckpt.meta["note"]) == (arch, dict(ref["constructor"]), "round trip")
    assert len(ckpt.sha256) == 64
    with torch.no_grad():
        assert torch.allclose(zoo.load(path, arch)(ref["input"]), ref["output"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused_and_never_executed(tmp_path, writer):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth"
    payload = {"state_dict": {"w": torch.zeros(1)}, "hook": _Payload(str(target))}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(NeuroDeployError, match="refusing to load .*evil.pth"):
        zoo.load(path)
    assert not target.exists()


def test_bad_checkpoints_give_one_line_errors(tmp_path, official_small):
    arch, ref = official_small
    with pytest.raises(NeuroDeployError, match="checkpoint not found"):
        zoo.load(tmp_path / "missing.pt")
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(NeuroDeployError, match="not a readable PyTorch checkpoint"):
        zoo.load(text)
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)}, other)
    with pytest.raises(NeuroDeployError, match="unknown architecture"):
        zoo.load(other)
    broken = dict(ref["state_dict"])
    removed = next(iter(k for k in broken if k.endswith("conv1.weight") or k.endswith("residual.1.weight")))
    del broken[removed]
    cut = tmp_path / "cut.pth"
    torch.save(broken, cut)
    with pytest.raises(NeuroDeployError, match=f"missing: {removed}"):
        zoo.load(cut)
    wrong_arch = "esdnet" if arch == "vlifnet" else "vlifnet"
    good = tmp_path / "good.pth"
    torch.save(ref["state_dict"], good)
    with pytest.raises(NeuroDeployError, match=f"holds a {arch} state dict, not {wrong_arch}"):
        zoo.load(good, wrong_arch)
