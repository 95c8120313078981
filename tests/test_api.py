"""The public Python API: the README's example runs, and the API gives what the modules and the
command line give."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import neuro_deploy
from neuro_deploy.common.resources import demo_folder
from neuro_deploy.data import read_image
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import read_network
from neuro_deploy.run.simulate import simulate

from conftest import REPO
from test_cli import run_cli

DEMO_IN = demo_folder("input") / "rain_demo.png"
DEMO_TARGET = demo_folder("target") / "rain_demo.png"


@pytest.fixture(scope="module")
def net() -> neuro_deploy.Network:
    return neuro_deploy.convert("vlifnet_small_deployable", size=16)


@pytest.fixture
def rainy() -> np.ndarray:
    return np.random.default_rng(3).random((24, 40, 3))  # not a multiple of the network's 16x16 tiles


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    shutil.copy(DEMO_IN, "rain.png")
    shutil.copy(DEMO_TARGET, "clean.png")
    exec(compile(code, "README.md", "exec"), {})
    target_psnr, float_psnr = map(float, capsys.readouterr().out.split("\n")[0].split())
    assert 30 < target_psnr < float_psnr  # derained towards the target, and close to the float model
    assert read_network("deployable.net").meta["source"]["path"].endswith("vlifnet_small_deployable.pt")


def test_package_exposes_the_api_and_keeps_its_modules():
    assert set(neuro_deploy.__all__) >= {"Network", "SimulationResult", "convert", "load_network"}
    from neuro_deploy import api
    from neuro_deploy.compile import convert as conversion  # the compiler's module, which the CLI and tests import

    assert neuro_deploy.convert is api.convert

    assert callable(conversion.convert) and callable(conversion.quantization_report)
    with pytest.raises(AttributeError):
        neuro_deploy.no_such_name  # noqa: B018


def test_simulate_gives_the_fast_back_end_result_in_the_input_shape(net, rainy, tmp_path):
    result = net.simulate(rainy)
    assert result.output.shape == rainy.shape
    assert 0 <= result.output.min() and result.output.max() <= 1
    direct = simulate(read_network(net.save(tmp_path / "m.net")), rainy.transpose(2, 0, 1).astype(np.float32))
    assert np.array_equal(result.output, direct.output) and result.tiles == direct.tiles == 8
    assert set(result.metrics) == {"float"} and result.metrics["float"]["psnr"] > 30


def test_save_and_load_keep_the_network(net, rainy, tmp_path):
    path = net.save(tmp_path / "sub" / "m.net")
    assert net.path == path
    loaded = neuro_deploy.load_network(path)
    assert loaded.meta == net.meta and loaded.input_shape == (3, 16, 16)
    assert loaded.quantization_report() == net.quantization_report()
    again = loaded.simulate(rainy, target=rainy, reference=False)
    assert np.array_equal(again.output, net.simulate(rainy, reference=False).output)
    assert set(again.metrics) == {"target"}


def test_energy_report_equals_the_command_lines(net, tmp_path, capsys):
    image = read_image(DEMO_IN)[:16, :16]
    report = net.energy(image, profiles=["loihi"])
    path = net.save(tmp_path / "m.net")
    np.save(tmp_path / "x.npy", image.transpose(2, 0, 1).astype(np.float32))
    code, out, _ = run_cli(capsys, "energy", path, "--input", tmp_path / "x.npy", "--profile", "loihi", "--format", "json")
    assert code == 0
    assert report["total"] == json.loads(out)["total"] and report["total"]["energy_pj"]["loihi"] > 0


@pytest.mark.parametrize("image, message", [
    (np.zeros((16, 16)), "HxWx3"),
    (np.zeros((3, 16, 16)), "HxWx3"),
    (np.full((16, 16, 3), 1.5), r"\[0, 1\]"),
    (np.full((16, 16, 3), np.nan), r"\[0, 1\]"),
    (np.array([[["a"] * 3] * 16] * 16), "numeric"),
])
def test_bad_images_are_refused_in_one_line(net, image, message):
    with pytest.raises(NeuroDeployError, match=message):
        net.simulate(image)
    with pytest.raises(NeuroDeployError, match=message):
        net.energy(image)


def test_bad_options_and_names_are_refused(net, rainy):
    with pytest.raises(NeuroDeployError, match="multiple of 8"):
        neuro_deploy.convert("vlifnet_small_deployable", size=12)
    with pytest.raises(NeuroDeployError, match="bundled models: esdnet_small, vlifnet_small"):
        neuro_deploy.convert("vlifnet_tiny")
    with pytest.raises(NeuroDeployError, match="unknown back end"):
        net.simulate(rainy, backend="gpu")
    with pytest.raises(NeuroDeployError, match="unknown profile"):
        net.energy(rainy, profiles=["loihii"])


def test_save_never_replaces_the_source_checkpoint(tmp_path):
    ckpt = tmp_path / "m.pt"
    shutil.copy(REPO / "neuro_deploy" / "models" / "vlifnet_small_deployable.pt", ckpt)
    before = ckpt.read_bytes()
    network = neuro_deploy.convert(ckpt, size=16)
    with pytest.raises(NeuroDeployError, match="it is the input"):
        network.save(ckpt)
    assert ckpt.read_bytes() == before


def test_python_m_runs_the_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "neuro_deploy", "convert", "vlifnet_small_deployable", "-o",
                             str(tmp_path / "m.net"), "--size", "16"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert neuro_deploy.load_network(tmp_path / "m.net").meta["steps"] > 0


def test_evaluate_gives_the_command_lines_document(deployable16, tmp_path, capsys):
    """`neuro_deploy.evaluate` and `evaluate --net --format json` are one implementation: the same scores."""
    code, _, _ = run_cli(capsys, "synth-rain", "-o", tmp_path / "data", "-n", "2", "--size", "16", "--split", "test")
    assert code == 0
    document = neuro_deploy.evaluate(deployable16, tmp_path / "data", workers=1)
    code, out, _ = run_cli(capsys, "evaluate", "--net", deployable16, "--data", tmp_path / "data", "--workers", "1",
                           "--format", "json")
    assert code == 0
    printed = json.loads(out)
    assert [r["name"] for r in document["images"]] == [r["name"] for r in printed["images"]] == ["syn_0000.png",
                                                                                                 "syn_0001.png"]
    assert document["mean"] == printed["mean"] and document["mean"]["psnr"] > 10
    assert [r["overflow"] for r in document["images"]] == [r["overflow"] for r in printed["images"]]
    assert document["overflow"]["total"] == sum(r["overflow"] for r in printed["images"])  # the run's, summed
    with pytest.raises(NeuroDeployError, match="workers"):
        neuro_deploy.evaluate(deployable16, tmp_path / "data", workers=0)
    with pytest.raises(NeuroDeployError, match="data"):
        neuro_deploy.evaluate(deployable16, None)
