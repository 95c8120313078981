"""The zoo networks are the paper's networks: same state dicts, same outputs, same spikes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neuro_deploy import zoo
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.zoo.neurons import LIF, NILIF, VLIF, patches_to_time, time_to_channels

from conftest import reference_file


def _manifests():
    for arch in ("vlifnet", "esdnet"):
        data = json.loads(reference_file(f"{arch}_release_state_dict.json").read_text())
        for name, entry in data.items():
            yield pytest.param(arch, entry, id=name)


@pytest.mark.parametrize("arch,entry", list(_manifests()))
def test_release_state_dict_names_shapes_and_order(arch, entry):
    model = zoo.build(arch, **entry["constructor"])
    mine = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    assert mine == [(e["name"], e["shape"], e["dtype"]) for e in entry["state_dict"]]
    assert sum(p.numel() for p in model.parameters()) == entry["parameters"]


def test_official_outputs_and_spike_rates(official_small):
    arch, ref = official_small
    model = zoo.build(arch, **ref["constructor"])
    model.load_state_dict(ref["state_dict"], strict=True)
    model.eval()
    with torch.no_grad():
        out = model(ref["input"])
    assert torch.allclose(out, ref["output"], atol=1e-5, rtol=0)
    rates = zoo.spike_rates(model, ref["input"])
    assert set(rates) == set(ref["spike_rates"])
    # The original stored float32 means; equal float32 values mean equal spike counts
    # (one spike changes a rate by ~1e-5, far above float32 resolution).
    mismatched = {k: (rates[k], v) for k, v in ref["spike_rates"].items() if np.float32(rates[k]) != np.float32(v)}
    assert not mismatched


def test_lif_dynamics_by_hand():
    x = torch.tensor([0.1, 0.1, 0.2, 0.0]).reshape(4, 1)
    # h: 0.1 (no spike) -> 0.15 (spike, reset) -> 0.2 (spike) -> 0.0
    assert LIF()(x).flatten().tolist() == [0.0, 1.0, 1.0, 0.0]


def test_nilif_graded_spikes_and_soft_reset():
    x = torch.tensor([1.3, 0.0, 2.0, -1.0]).reshape(4, 1)
    s = NILIF()(x).flatten().tolist()
    # u0=1.3 -> s=1/4; u1=(1.3-0.25)*0.25=0.2625 -> 0; u2=0.2625*0.25+2=2.065625 -> 2/4; u3 -> 0
    assert s == [0.25, 0.0, 0.5, 0.0]
    # round half to even: 2.5 -> 2, 3.5 -> 4; clamp at 4
    assert NILIF()(torch.tensor([[2.5], [0.0]]))[0].item() == 0.5
    assert NILIF()(torch.tensor([[9.0]]))[0].item() == 1.0


def test_nilif_straight_through_gradient():
    x = torch.tensor([[2.2], [1.0], [7.0]], requires_grad=True)
    NILIF()(x).sum().backward()
    # u1 = (2.2 - 0.5)*0.25 + 1 = 1.425 is inside [0, 4]: x0 reaches s0 and, decayed, s1;
    # u2 = 7.29 is outside, so nothing flows through s2 (the subtracted spikes are detached).
    assert x.grad.flatten().tolist() == pytest.approx([0.25 + 0.25 * 0.25, 0.25, 0.0])


def test_patches_to_time_order_and_inverse():
    T, B, C, H, W = 2, 1, 3, 4, 6
    x = torch.arange(T * B * C * H * W, dtype=torch.float32).reshape(T, B, C, H, W)
    steps = patches_to_time(x, 2)
    assert steps.shape == (T * 4, B, C, H // 2, W // 2)
    # step t*4 + k holds sub-pixel k (row-major in the 2x2 patch) of time step t
    for t in range(T):
        for k, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            assert torch.equal(steps[t * 4 + k], x[t, :, :, dy::2, dx::2])
    regrouped = time_to_channels(steps, 2)
    assert torch.equal(regrouped, torch.nn.functional.pixel_unshuffle(x.flatten(0, 1), 2).reshape(T, B, C * 4, 2, 3))


def test_vlif_shape_and_binary_free_output():
    v = VLIF(4)
    y = v(torch.rand(4, 2, 4, 8, 8) * 3)
    assert y.shape == (4, 2, 4, 8, 8)


def test_build_rejects_unknown_architecture_and_bad_kwargs():
    with pytest.raises(NeuroDeployError, match="unknown architecture 'resnet'"):
        zoo.build("resnet")
    with pytest.raises(NeuroDeployError, match="bad vlifnet configuration"):
        zoo.build("vlifnet", width=3)


def test_deployable_variant_drops_gates_and_products():
    cfg = dict(dim=8, en_num_blocks=[1, 1, 1, 1], de_num_blocks=[1, 1, 1, 1])
    full = zoo.build("vlifnet", **cfg)
    deploy = zoo.build("vlifnet", **cfg, attention=False, enhance_product=False)
    assert not any(".attn" in k or "time_attention" in k or "final_attn" in k for k in deploy.state_dict())
    assert set(deploy.state_dict()) < set(full.state_dict())
    deploy.load_state_dict({k: v for k, v in full.state_dict().items() if k in deploy.state_dict()})
    inferred = zoo.checkpoint.infer_config("vlifnet", deploy.state_dict())
    assert inferred["attention"] is False and inferred["enhance_product"] is False
    # One SDEM block by hand: z = a*s + b*(y - s) without y*s, and ReLU in place of MDA.
    block = deploy.encoder_level2[0].eval()
    x = torch.randn(4, 1, 16, 8, 8)
    with torch.no_grad():
        s1 = block.lif_1(x)
        y = block.bn1(block.conv1(block.high_freq_scale_1 * s1 + block.low_freq_scale_1 * (x - s1)))
        s2 = block.lif_2(y)
        o = block.bn2(block.conv2(block.high_freq_scale_2 * s2 + block.low_freq_scale_2 * (y - s2)))
        expected = torch.relu(o + block.shortcut(x)) + x
        assert torch.allclose(block(x), expected, atol=1e-6)
    with torch.no_grad():
        assert deploy.eval()(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)
