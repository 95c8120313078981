"""The strict convention against NeuroBench's own SynapticOperations metric (docs/cross-check-neurobench.md)."""

from __future__ import annotations

import builtins

import pytest
import torch
from torch import nn

pytest.importorskip("neurobench")

from neuro_deploy.crosscheck import neurobench as neurobench_check  # noqa: E402
from neuro_deploy.crosscheck.neurobench import KEYS, LayerCheck, check_checkpoint, cross_check  # noqa: E402
from neuro_deploy.errors import NeuroDeployError  # noqa: E402

SIZE = 16  # every layer count stays below 2**24, so NeuroBench's float32 sums are exact


@pytest.fixture(scope="module", params=["vlifnet_small_deployable", "vlifnet_small", "esdnet_small"])
def check(request: pytest.FixtureRequest) -> neurobench_check.NeuroBenchCheck:
    return check_checkpoint(request.param, SIZE)


def test_every_conv_agrees_exactly(check: neurobench_check.NeuroBenchCheck) -> None:
    assert len(check.layers) >= 20
    assert [(layer.name, layer.ours, layer.neurobench) for layer in check.layers if layer.agreement != "exact"] == []
    ours = check.layer_sum("ours")
    assert ours["Effective_ACs"] > 0 and ours["Effective_MACs"] > 0  # both kinds of input occur
    assert ours["Effective_ACs"] + ours["Effective_MACs"] < ours["Dense"]  # zeros were skipped


def test_benchmark_total_is_the_sum_of_the_layers(check: neurobench_check.NeuroBenchCheck) -> None:
    """NeuroBench's own Benchmark total equals its metric run layer by layer, hence ours."""
    theirs = check.layer_sum("neurobench")
    assert {k: round(check.neurobench_total[k]) for k in KEYS} == theirs == check.layer_sum("ours")


def test_strict_total_differs_by_the_gates_only(check: neurobench_check.NeuroBenchCheck) -> None:
    """Gates and products are MACs in our strict total; NeuroBench hooks no functional op."""
    gates = sum(check.ours_only.values())
    total = check.neurobench_total
    assert check.ours_strict == {"ac": round(total["Effective_ACs"]), "mac": round(total["Effective_MACs"]) + gates}
    assert check.ours_dense == round(total["Dense"]) + gates
    # the modules NeuroBench hooks but never sees called hold the weights of those gates
    assert all(any(name.startswith(gate + ".") for gate in check.ours_only) for name in check.hooked_not_called)
    if check.network == "vlifnet_small_deployable":
        assert check.ours_only == {} and check.hooked_not_called == []
    else:
        assert check.ours_only and check.hooked_not_called


class _OneConv(nn.Module):
    """A conv on a transformed image: enough for count_float (it needs `T`) and for NeuroBench."""

    T = 1

    def __init__(self, transform) -> None:
        super().__init__()
        self.transform = transform
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.conv(self.transform(img))


def _image() -> torch.Tensor:
    return torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_ternary_input_is_an_ac_for_neurobench_only() -> None:
    """NeuroBench takes -1 as a spike; our strict convention's binary test takes only 0 and 1."""
    layer = cross_check(_OneConv(lambda x: torch.sign(x - 0.5)), _image()).layers[0]
    assert layer.agreement == "differs"
    assert layer.ours["Effective_ACs"] == 0 and layer.neurobench["Effective_MACs"] == 0
    assert layer.ours["Effective_MACs"] == layer.neurobench["Effective_ACs"] > 0
    assert layer.ours["Dense"] == layer.neurobench["Dense"]


def test_zero_weights_are_skipped_by_neurobench_only() -> None:
    """NeuroBench's effective ops use the weights' non-zero pattern; ours count every kernel tap."""
    model = _OneConv(lambda x: (x > 0.5).float())
    with torch.no_grad():
        model.conv.weight[0] = 0  # one of three output channels pruned
    layer = cross_check(model, _image()).layers[0]
    assert layer.agreement == "differs"
    assert 3 * layer.neurobench["Effective_ACs"] == 2 * layer.ours["Effective_ACs"] > 0
    assert layer.ours["Dense"] == layer.neurobench["Dense"]


def test_float32_rounding_is_told_apart() -> None:
    def agreement(ours: int, theirs: int) -> str:
        zero = {"Effective_ACs": 0, "Dense": max(ours, theirs)}
        return LayerCheck("l", "Conv2d", {**zero, "Effective_MACs": ours}, {**zero, "Effective_MACs": theirs}).agreement

    assert agreement(929_267_040, 929_266_944) == "float32"  # measured: release VLIFNet at 128x128
    assert agreement(929_267_040, 929_167_040) == "differs"
    assert agreement(1_000_000, 1_000_001) == "differs"  # below 2**24 a float32 sum is exact
    assert agreement(5, 5) == "exact"


def test_missing_neurobench_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_neurobench(name: str, *args, **kwargs):
        if name.split(".")[0] == "neurobench":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_neurobench)
    with pytest.raises(NeuroDeployError) as err:
        cross_check(_OneConv(torch.relu), _image())
    assert "\n" not in str(err.value) and "pip install neuro-deploy[neurobench]" in str(err.value)


def test_the_cli_checks_the_bundled_models(capsys):
    import json

    from test_cli import run_cli

    code, out, _ = run_cli(capsys, "cross-check", "neurobench", "vlifnet_small_deployable", "--size", "16",
                           "--format", "json")
    assert code == 0
    (result,) = json.loads(out)
    assert result["network"] == "vlifnet_small_deployable" and result["agree"]
    assert result["ours_convs"] == result["neurobench_convs"] and result["ours_convs"]["Effective_ACs"] > 0
