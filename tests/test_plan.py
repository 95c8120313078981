"""The Loihi 2 plan against Intel's compiler: per-layer cores of two lava-dl tutorial networks whose
compiler tables lava-dl's notebooks print (docs/loihi-target.md, section 4), and the plan command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuro_deploy.cli import main
from neuro_deploy.deploy.plan import plan
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import read_network

DATA = Path(__file__).parent / "data" / "loihi2"
PILOTNET = DATA / "pilotnet_sdnn.net"
OXFORD = DATA / "oxford.net"

#: Intel's compiler, pilotnet_sdnn/benchmark.ipynb, loaded with skip_layers=1: layer -> (cores, block, synaptic memory)
INTEL_PILOTNET = {
    "layer/1": (25, "Conv(4, 32, 24)", 81), "layer/2": (13, "Conv(4, 15, 36)", 864),
    "layer/3": (3, "Conv(8, 7, 48)", 1620), "layer/4": (3, "Conv(8, 4, 64)", 2592),
    "layer/5": (2, "Conv(16, 2, 64)", 2880), "layer/7": (12, "Dense 8", 7253), "layer/8": (1, "Dense 50", 1500),
    "layer/9": (1, "Dense 10", 150), "layer/10": (1, "Dense 1", 10),
}
#: oxford/run.ipynb: layer -> cores
INTEL_OXFORD = {"layer/0": 3, "layer/1": 2}


def _by_name(result) -> dict:
    return {lp.name: lp for lp in result.layers if lp.cores}


def test_pilotnet_sdnn_matches_intels_compiler_layer_by_layer() -> None:
    result = plan(PILOTNET, skip_first=1)
    layers = _by_name(result)
    assert set(layers) == set(INTEL_PILOTNET)
    assert {n: lp.cores for n, lp in layers.items()} == {n: v[0] for n, v in INTEL_PILOTNET.items()}
    for name, (_, block, memory) in INTEL_PILOTNET.items():
        if block.startswith("Conv") or name != "layer/7":  # layer/7: docs/loihi-target.md says why it differs
            assert layers[name].block_label == block, name
            assert layers[name].use["synaptic_memory"] == memory, name
    assert result.cores == 61 and result.chips == 1 and result.fits


def test_oxford_is_read_and_its_second_layer_matches() -> None:
    net = read_network(OXFORD)  # a first dense layer fed from an external port, as netx loads it
    assert net.meta["input_shape"] == [200]
    layers = _by_name(plan(OXFORD))
    assert layers["layer/1"].cores == INTEL_OXFORD["layer/1"]
    assert layers["layer/0"].use["neurons"] == 128 and layers["layer/0"].use["synaptic_memory"] <= 12000


@pytest.mark.xfail(strict=True, reason="Intel's compiler gives oxford's first layer 3 cores, the model 2: at "
                                       "max_ratio 2 a 128-neuron block needs 8,200 of the logged 12,000 words and "
                                       "is within every other budget; no budget the logs reveal forces a third "
                                       "core, and a smaller one breaks PilotNet (docs/loihi-target.md, section 4)")
def test_oxford_first_layer_matches_intel() -> None:
    assert _by_name(plan(OXFORD))["layer/0"].cores == INTEL_OXFORD["layer/0"]


def test_skip_first_leaves_layers_off_the_chip() -> None:
    whole, skipped = plan(PILOTNET), plan(PILOTNET, skip_first=1)
    assert whole.cores > skipped.cores
    assert [lp.placement for lp in skipped.layers[:2]] == ["io", "skipped"]
    with pytest.raises(NeuroDeployError, match="--skip-first"):
        plan(PILOTNET, skip_first=99)


def test_chips_and_boards_decide_the_fit() -> None:
    assert plan(OXFORD, chips=1).fits
    with pytest.raises(NeuroDeployError, match="hala-point"):
        plan(OXFORD, board="spinnaker")
    with pytest.raises(NeuroDeployError, match="--chips"):
        plan(OXFORD, chips=0)


def test_cli_json_and_exit_codes(capsys, tmp_path) -> None:
    main(["plan", str(PILOTNET), "--skip-first", "1", "--format", "json", "--plot", str(tmp_path / "p.png")])
    out = json.loads(capsys.readouterr().out)
    assert {"board", "cores", "chips", "fits", "step_time_s", "image_time_s", "layers"} <= set(out)
    assert out["cores"] == 61 and out["step_time_s"] > 0
    row = next(r for r in out["layers"] if r["name"] == "layer/1")
    assert (row["cores"], row["block"]) == (25, "Conv(4, 32, 24)")
    assert (tmp_path / "p.png").stat().st_size > 0
    for args, code in ((["--board", "nope"], 2), (["--chips", "0"], 2), (["--chips", "1", "--require-fit"], 0)):
        with pytest.raises(SystemExit) as exc:
            main(["plan", str(OXFORD), *args])
            raise SystemExit(0)
        assert exc.value.code == code, args
    capsys.readouterr()


def test_not_fitting_is_a_result_and_require_fit_exits_3(capsys, monkeypatch) -> None:
    import neuro_deploy.deploy.plan as plan_module
    from neuro_deploy.loihi.budgets import Budget

    monkeypatch.setattr(plan_module, "CORES_PER_CHIP", Budget("cores_per_chip", 10, "cores", "", "", "assumed"))
    main(["plan", str(PILOTNET), "--skip-first", "1", "--chips", "2"])
    assert "needs 7 chips" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(PILOTNET), "--skip-first", "1", "--chips", "2", "--require-fit"])
    assert exc.value.code == 3


def test_python_api_gives_the_commands_plan() -> None:
    import neuro_deploy

    result = neuro_deploy.plan(OXFORD, chips=1)
    assert result["cores"] == 4 and result["fits"] and [r["cores"] for r in result["layers"]] == [0, 2, 2]
