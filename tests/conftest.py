"""Shared fixtures: the reference data produced by the paper's original code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
REPO = Path(__file__).resolve().parents[1]


def reference_file(name: str) -> Path:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"reference data not found at {path}")
    return path


@pytest.fixture(params=["vlifnet", "esdnet"])
def official_small(request) -> tuple[str, dict]:
    """(arch, the reference file's dict) for each architecture's small official run."""
    arch = request.param
    return arch, torch.load(reference_file(f"official_{arch}_small.pt"), weights_only=True)
