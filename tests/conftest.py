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
