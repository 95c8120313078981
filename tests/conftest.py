"""Shared fixtures: the reference data produced by the paper's original code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

#: the reference outputs of the paper's code, carried in the repository (provenance in its README.md)
REFERENCE = Path(__file__).resolve().parent / "data" / "reference"
DEPLOYABLE = "vlifnet_small_deployable"
REPO = Path(__file__).resolve().parents[1]


def reference_file(name: str) -> Path:
    """A reference file; a missing one is an error, never a skip (the data ships with the tests)."""
    path = REFERENCE / name
    if not path.is_file():
        raise FileNotFoundError(f"reference data missing from the repository: {path}")
    return path


@pytest.fixture(params=["vlifnet", "esdnet"])
def official_small(request) -> tuple[str, dict]:
    """(arch, the reference file's dict) for each architecture's small official run."""
    arch = request.param
    return arch, torch.load(reference_file(f"official_{arch}_small.pt"), weights_only=True)


@pytest.fixture(scope="module")
def deployable16(tmp_path_factory) -> Path:
    """The bundled deployable VLIFNet converted at 16x16 (one small tile)."""
    from neuro_deploy.compile.convert import convert, write

    path = tmp_path_factory.mktemp("net") / "m.net"
    write(convert(DEPLOYABLE, size=16), path)
    return path


@pytest.fixture
def vlifnet_devices(monkeypatch) -> list[str]:
    """The devices VLIFNet's constructor runs on from now on: "meta" for the free skeleton a check
    builds, "cpu" for a real network (so a test sees that a refusal came before any build)."""
    import torch

    from neuro_deploy import zoo

    devices: list[str] = []
    real = zoo.ARCHITECTURES["vlifnet"]

    def recording(**kwargs):
        devices.append(torch.empty(0).device.type)  # where the constructor would allocate
        return real(**kwargs)

    monkeypatch.setitem(zoo.ARCHITECTURES, "vlifnet", recording)
    return devices
