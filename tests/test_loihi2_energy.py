"""Loihi 2 energy with static power: the `loihi2` profile's static energy is its measured static power
per chip x the plan's chips x the plan's run time, its total is dynamic + static, every constant is
sourced and graded, and `energy`, `simulate --energy` and `compare` show chips, time and static energy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tomli

from neuro_deploy.common import resources
from neuro_deploy.counting.run import count_file
from neuro_deploy.energy.profiles import EVIDENCE, load_profile, parse_profile
from neuro_deploy.energy.report import build_report
from neuro_deploy.errors import NeuroDeployError
from test_cli import run_cli

OXFORD = Path(__file__).parent / "data" / "loihi2" / "oxford.net"
STEPS = 8


def _raw_profile(name: str) -> dict:
    """A bundled profile's TOML as written, read without neuro-deploy's parser."""
    return tomli.loads(resources.profile(name).read_text())


@pytest.fixture(scope="module")
def image16(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "x.npy"
    np.save(path, np.random.default_rng(5).random((3, 16, 16)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def oxford_input(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ox") / "x.npy"
    np.save(path, (np.random.default_rng(6).random(200) * 60).astype(np.int32))
    return path


def _plan_json(capsys, net: Path, x: Path, *extra: str) -> dict:
    code, out, err = run_cli(capsys, "plan", net, "--input", x, *extra, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def _energy_json(capsys, net: Path, x: Path, *extra: str) -> dict:
    code, out, err = run_cli(capsys, "energy", net, "--input", x, *extra, "--profile", "loihi2", "--profile", "loihi",
                             "--format", "json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("which", ["converted", "plain netx"])
def test_static_energy_is_static_power_x_chips_x_the_plans_time(capsys, deployable16, image16, oxford_input, which):
    net, x, extra = (deployable16, image16, ()) if which == "converted" else (OXFORD, oxford_input,
                                                                            ("--steps", str(STEPS)))
    report = _energy_json(capsys, net, x, *extra)
    plan = _plan_json(capsys, net, x, *extra)  # the plan command, timed on the same input
    raw = _raw_profile("loihi2")
    watts, per_core_step = raw["deployment"]["static_power"]["w"], raw["deployment"]["active_core_step"]["pj"]
    run_s = plan["step_time_s"] * report["steps"] * report["runs"]
    expected_static = watts * plan["chips"] * run_s * 1e12
    total = report["total"]
    assert expected_static > 0
    assert total["static_energy_pj"]["loihi2"] == pytest.approx(expected_static, rel=1e-9)
    assert report["deployment"]["chips"] == plan["chips"] and report["deployment"]["cores"] == plan["cores"]
    assert report["deployment"]["run_time_s"] == pytest.approx(run_s, rel=1e-12)
    # dynamic: loihi2 carries Loihi 1's per-op figures over, plus each active core's per-step cost
    for term, values in raw["terms"].items():
        assert values["pj"] == _raw_profile("loihi")["terms"][term]["pj"], term
    core_steps = plan["cores"] * report["steps"] * report["runs"]
    expected_dynamic = total["energy_pj"]["loihi"] + per_core_step * core_steps
    assert total["dynamic_energy_pj"]["loihi2"] == pytest.approx(expected_dynamic, rel=1e-9)
    assert total["energy_pj"]["loihi2"] == pytest.approx(expected_dynamic + expected_static, rel=1e-9)
    assert total["energy_per_image_pj"]["loihi2"] == pytest.approx(total["energy_pj"]["loihi2"], rel=1e-12)
    assert sum(r["energy_pj"]["loihi2"] for r in report["layers"]) == pytest.approx(expected_dynamic, rel=1e-9)
    cores = {r["name"]: r["cores"] for r in plan["layers"] if r["cores"]}
    assert {r["name"]: r["cores"] for r in report["layers"] if r["cores"]} == cores
    assert "loihi" not in total["static_energy_pj"]  # a profile without static power claims none


def test_energy_table_and_csv_show_chips_time_and_static(capsys, deployable16, image16):
    code, out, _ = run_cli(capsys, "energy", deployable16, "--input", image16)  # loihi2 is a default profile
    assert code == 0
    assert "static: 1 chip(s) x" in out and "loihi2:" in out and "+ static" in out and "cores" in out
    code, out, _ = run_cli(capsys, "energy", deployable16, "--input", image16, "--format", "csv")
    rows = out.strip().splitlines()
    assert code == 0 and rows[-2].split(",")[1] == "static" and rows[-1].split(",")[1] == "total"


def test_simulate_energy_shows_the_static_part(capsys, deployable16, image16, tmp_path):
    code, out, err = run_cli(capsys, "simulate", deployable16, "--input", image16, "-o", tmp_path / "o.npy",
                             "--energy", "--profile", "loihi2", "--json")
    assert code == 0, err
    total = json.loads(out)["energy"]["total"]  # --json prints 6 significant digits
    assert total["static_energy_pj"]["loihi2"] > 0
    assert total["energy_pj"]["loihi2"] == pytest.approx(total["dynamic_energy_pj"]["loihi2"]
                                                         + total["static_energy_pj"]["loihi2"], rel=1e-5)
    saved = json.loads((tmp_path / "o_energy.json").read_text())
    assert saved["deployment"]["chips"] >= 1


def test_compare_prices_the_deployed_network_on_loihi2():
    import torch

    from neuro_deploy.compile.convert import calibration_images
    from neuro_deploy.energy.compare import DEFAULT_IMAGE, _deploy

    image = calibration_images(DEFAULT_IMAGE, 16)[:1]
    deployed = _deploy(resources.bundled_model("vlifnet_small_deployable"), image, 16, load_profile("loihi2"))
    assert isinstance(image, torch.Tensor)
    assert deployed["chips"] >= 1 and deployed["time_s"] > 0 and deployed["static_energy_pj"] > 0
    assert deployed["energy_pj"] == pytest.approx(deployed["dynamic_energy_pj"] + deployed["static_energy_pj"])


def test_every_loihi2_constant_has_a_source_and_a_grade():
    raw = _raw_profile("loihi2")
    entries = [*raw["terms"].items(), *raw["deployment"].items()]
    assert {k for k, _ in entries} >= {"synop", "neuron_update_active", "neuron_update_inactive", "spike",
                                       "static_power", "active_core_step"}
    for key, entry in entries:
        assert entry["source"].strip() and entry["evidence"] in EVIDENCE, key
    assert raw["deployment"]["static_power"] == {**raw["deployment"]["static_power"], "w": 0.232,
                                                 "evidence": "measured"}
    assert all(entry["evidence"] == "assumed" for entry in raw["terms"].values())  # Loihi 1's, carried over
    assert load_profile("loihi2").to_json()["deployment"]["static_power"]["w"] == 0.232


def test_deployment_terms_are_validated():
    term = {"pj": 1.0, "source": "s", "evidence": "measured", "scope": "per-term"}
    for deployment, fragment in (({"static_power": {"w": 0.2, "evidence": "measured"}}, "no 'source'"),
                                 ({"static_power": {"w": -1.0, "source": "s", "evidence": "measured"}}, "positive"),
                                 ({"static_power": {"w": 0.2, "source": "s", "evidence": "guess"}}, "evidence"),
                                 ({"leakage": {"w": 0.2, "source": "s", "evidence": "measured"}}, "leakage")):
        with pytest.raises(NeuroDeployError, match=fragment):
            parse_profile({"terms": {"synop": term}, "deployment": deployment}, "inline")


def test_a_report_with_static_power_needs_the_plan(deployable16, image16):
    counts = count_file(deployable16, image16)
    with pytest.raises(NeuroDeployError, match="deployment plan"):
        build_report(counts, [load_profile("loihi2")])
