"""The bundled models: they derain held-out rain, and each converts to fixed point faithfully."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro_deploy import zoo
from neuro_deploy.backends.fast import run_fixed
from neuro_deploy.compile.convert import convert
from neuro_deploy.data import PairedDataset, make_synthetic_rain, psnr
from neuro_deploy.zoo.inference import derain_array

from conftest import REPO

MODELS = REPO / "neuro_deploy" / "models"
SHIPPED = ["vlifnet_small", "vlifnet_small_deployable", "esdnet_small"]


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> PairedDataset:
    root = tmp_path_factory.mktemp("held_out")
    make_synthetic_rain(root, 4, preset="light", size=64, seed=11, split="test")
    return PairedDataset(str(root))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_has_a_card_and_derains_held_out_rain(name, held_out):
    assert (MODELS / f"{name}.md").is_file()
    model = zoo.load(MODELS / f"{name}.pt")
    gains = [psnr(derain_array(model, rainy), clean) - psnr(rainy, clean) for rainy, clean, _ in
             (held_out[i] for i in range(len(held_out)))]
    assert np.mean(gains) > 1.0, gains


@pytest.mark.parametrize("name, host_layers", [("vlifnet_small", True), ("vlifnet_small_deployable", False),
                                               ("esdnet_small", True)])
def test_shipped_model_converts_and_fixed_point_tracks_float(name, host_layers, held_out):
    result = convert(MODELS / f"{name}.pt", size=16)
    assert (result.meta["host_layers"] > 0) == host_layers
    if not host_layers:
        convert(MODELS / f"{name}.pt", size=16, strict=True)  # accepted: every layer on neurocores
    rainy = torch.from_numpy(held_out[0][0][:16, :16].transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        reference = zoo.load(MODELS / f"{name}.pt")(rainy).double()
    fixed = run_fixed(result.quantized, rainy)
    assert psnr(fixed[0].clamp(0, 1).numpy().transpose(1, 2, 0), reference[0].clamp(0, 1).numpy().transpose(1, 2, 0)) > 35
