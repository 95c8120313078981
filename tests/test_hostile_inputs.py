"""Careless and hostile input beyond network file contents (issue 19, point 6): each answered in one
line naming the problem, exit 2, before any work and without writing anything; the Python API raises
NeuroDeployError naming the argument."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

import neuro_deploy
from neuro_deploy import zoo
from neuro_deploy.common.atomic import check_outputs
from neuro_deploy.common.resources import bundled_model, demo_folder
from neuro_deploy.data import make_synthetic_rain
from neuro_deploy.deploy.inspect import describe
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.loihi.limits import weight_bits
from neuro_deploy.zoo.checkpoint import FORMAT

from test_cli import assert_one_line_error, run_cli

DEPLOYABLE = "vlifnet_small_deployable"
DEMO_IN = demo_folder("input") / "rain_demo.png"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_synthetic_rain(root, 1, size=16)
    return root


@pytest.fixture
def x16(tmp_path) -> Path:
    path = tmp_path / "x16.npy"
    np.save(path, np.full((3, 16, 16), 0.5, np.float32))
    return path


# ---- checkpoints: the project's format without arch or with T = 0; a 4-channel state dict ----------

def _bad_checkpoint(folder: Path, kind: str) -> tuple[Path, str]:
    """(checkpoint, what the error must say) for a kind of careless checkpoint."""
    ckpt = zoo.read_checkpoint(DEPLOYABLE)
    own = {"format": FORMAT, "format_version": 1, "arch": ckpt.arch, "config": dict(ckpt.config),
           "state_dict": ckpt.state_dict, "meta": {}}
    path = folder / f"{kind}.pt"
    if kind == "no_arch":
        del own["arch"]
        torch.save(own, path)
        return path, "no 'arch' entry"
    if kind == "T0":
        own["config"]["T"] = 0
        torch.save(own, path)
        return path, "T=0, expected an integer >= 1"
    sd = dict(ckpt.state_dict)  # a released-style state dict whose first conv reads 4 channels
    weight = sd["patch_embed.proj.weight"]
    sd["patch_embed.proj.weight"] = torch.cat([weight, weight[:, :1]], 1)
    torch.save(sd, path)
    return path, "4 input and 3 output channels"


@pytest.mark.parametrize("kind", ["no_arch", "T0", "four_channels"])
@pytest.mark.parametrize("command", ["derain", "evaluate", "convert"])
def test_careless_checkpoints_are_refused_before_any_work(capsys, tmp_path, data, kind, command, vlifnet_devices):
    path, reason = _bad_checkpoint(tmp_path, kind)
    out = tmp_path / ("out.png" if command == "derain" else "out.net")
    args = {"derain": ["derain", "--model", path, "--input", DEMO_IN, "-o", out],
            "evaluate": ["evaluate", "--model", path, "--data", data],
            "convert": ["convert", path, "-o", out, "--size", "16"]}[command]

    code, stdout, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, str(path), reason)
    assert code == 2 and stdout == "" and not out.exists()
    assert set(vlifnet_devices) <= {"meta"}  # at most the free skeleton the check builds: no weights, no images


def test_zoo_build_refuses_counts_below_one():
    for kwargs, fragment in (({"dim": 0}, "dim=0"), ({"dim": 8, "T": 0}, "T=0"),
                             ({"dim": 8, "en_num_blocks": [1, -1, 1, 1]}, "en_num_blocks"),
                             ({"dim": 8.0}, "dim=8.0")):
        with pytest.raises(NeuroDeployError, match=fragment):
            zoo.build("vlifnet", **kwargs)
    assert sum(p.numel() for p in zoo.build("vlifnet", dim=8, en_num_blocks=[1] * 4, de_num_blocks=[1] * 4)
               .parameters()) > 0


# ---- command-line inputs and options ----------------------------------------------------------------

def test_view_on_a_port_in_use_is_refused_before_the_export(capsys, tmp_path, deployable16):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = tmp_path / "v.onnx"
        code, _, err = run_cli(capsys, "view", deployable16, "-o", out, "--no-browser", "--port", port)
    assert_one_line_error(code, err, f"--port {port}", "in use")
    assert code == 2 and not out.exists()  # refused before the export, not after it


@pytest.mark.parametrize("shape", [(0,), (3, 0, 0), (4, 3, 16, 0)])
def test_simulate_refuses_an_empty_array(capsys, tmp_path, deployable16, shape):
    x, out = tmp_path / "empty.npy", tmp_path / "out.npy"
    np.save(x, np.zeros(shape, np.float32))
    code, _, err = run_cli(capsys, "simulate", deployable16, "--input", x, "-o", out)
    assert_one_line_error(code, err, f"has shape {shape}")
    assert code == 2 and not out.exists()


@pytest.mark.parametrize("command", ["simulate", "energy"])
def test_a_complex_array_is_refused_not_cast(capsys, tmp_path, deployable16, command):
    x, out = tmp_path / "complex.npy", tmp_path / "out.npy"
    np.save(x, np.full((3, 16, 16), 0.5 + 0.25j, np.complex64))
    args = ["simulate", deployable16, "--input", x, "-o", out] if command == "simulate" else \
        ["energy", deployable16, "--input", x, "--json-out", tmp_path / "e.json"]
    code, stdout, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, "complex64 values")
    assert code == 2 and stdout == "" and list(tmp_path.iterdir()) == [x]


def _checkpoints() -> list[str]:
    return ["--vlifnet", str(bundled_model("vlifnet_small")), "--esdnet", str(bundled_model("esdnet_small")),
            "--deployable", str(bundled_model(DEPLOYABLE))]


def test_compare_size_0_is_refused_not_run_at_64(capsys):
    code, stdout, err = run_cli(capsys, "compare", *_checkpoints(), "--size", "0", "--no-release")
    assert_one_line_error(code, err, "image size 0")
    assert code == 2 and stdout == ""


def test_sizes_beyond_memory_are_refused_before_reading_an_image(capsys, tmp_path, data, monkeypatch):
    from neuro_deploy.compile import convert as conversion

    def no_image(*_args, **_kwargs):
        raise AssertionError("an image was read before the memory estimate")

    monkeypatch.setattr(conversion, "calibration_images", no_image)
    monkeypatch.setattr("neuro_deploy.energy.rates.calibration_images", no_image)
    monkeypatch.setattr("neuro_deploy.energy.compare.calibration_images", no_image)
    out = tmp_path / "r.json"
    for args in (["rates", DEPLOYABLE, "--data", data, "-o", out, "--size", "100000"],
                 ["compare", *_checkpoints(), "--size", "1000000", "--no-release"],
                 ["compare", *_checkpoints(), "--size", "1000000"],
                 ["compare", "--analytic", "--size", "1000000"]):
        code, stdout, err = run_cli(capsys, *args)
        assert_one_line_error(code, err, "of memory (estimate)", "--max-memory")
        assert code == 2 and stdout == "" and not out.exists()


def _report(capsys, net: Path, x: Path, path: Path) -> dict:
    code, _, err = run_cli(capsys, "energy", net, "--input", x, "--json-out", path, "--format", "json")
    assert code == 0, err
    return json.loads(path.read_text())


def test_view_takes_only_a_report_of_the_same_layers(capsys, tmp_path, deployable16, x16):
    report = _report(capsys, deployable16, x16, tmp_path / "own.json")
    code, _, err = run_cli(capsys, "view", deployable16, "-o", tmp_path / "own.onnx", "--energy",
                           tmp_path / "own.json", "--export-only")
    assert code == 0, err
    # another network of the zoo shares `input` and `patch_embed.proj`: that is not enough
    for name, layers in (("renamed", [report["layers"][0], report["layers"][1],
                                      *({**r, "name": f"other.{r['name']}"} for r in report["layers"][2:])]),
                         ("partial", report["layers"][:-1])):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({**report, "layers": layers}))
        out = tmp_path / f"{name}.onnx"
        code, _, err = run_cli(capsys, "view", deployable16, "-o", out, "--energy", path, "--export-only")
        assert_one_line_error(code, err, "another network's")
        assert code == 2 and not out.exists()


# ---- special files and impossible output paths ----------------------------------------------------

def test_a_fifo_or_device_is_not_a_regular_file(capsys, tmp_path, deployable16):
    fifo = tmp_path / "input.npy"
    os.mkfifo(fifo)
    for args, named in ((["simulate", deployable16, "--input", fifo, "-o", tmp_path / "o.npy"], fifo),
                        (["simulate", deployable16, "--input", "/dev/zero", "-o", tmp_path / "o.npy"], "/dev/zero"),
                        (["convert", "/dev/zero", "-o", tmp_path / "o.net"], "/dev/zero"),
                        (["inspect", fifo], fifo),
                        (["derain", "--model", DEPLOYABLE, "--input", fifo, "-o", tmp_path / "o.png"], fifo)):
        code, _, err = run_cli(capsys, *args)
        assert_one_line_error(code, err, str(named), "not a regular file")
        assert code == 2
    assert [p.name for p in tmp_path.iterdir()] == ["input.npy"]


@pytest.mark.parametrize("command", ["simulate", "convert", "derain"])
def test_output_names_and_paths_too_long_are_refused_first(capsys, tmp_path, deployable16, x16, command):
    long_name = tmp_path / ("a" * 300 + ".npy")
    long_path = tmp_path.joinpath(*["d" * 100] * 50, "out.npy")
    for out, reason in ((long_name, "a name of 304 bytes"), (long_path, "bytes long")):
        args = {"simulate": ["simulate", deployable16, "--input", x16, "-o", out],
                "convert": ["convert", DEPLOYABLE, "-o", out.with_suffix(".net"), "--size", "16"],
                "derain": ["derain", "--model", DEPLOYABLE, "--input", DEMO_IN, "-o", out.with_suffix(".png")]}[command]
        code, _, err = run_cli(capsys, *args)
        assert_one_line_error(code, err, "cannot write", reason, "more than the file system takes")
        assert code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x16.npy"]  # no folder of the long path was made


def test_simulate_energy_checks_the_names_it_derives_from_its_output(capsys, tmp_path, deployable16, x16):
    out = tmp_path / ("a" * 246 + ".npy")  # 250 bytes: allowed, but OUT_energy.json would be 257
    code, _, err = run_cli(capsys, "simulate", deployable16, "--input", x16, "-o", out, "--energy")
    assert_one_line_error(code, err, "cannot write", "_energy.json", "more than the file system takes")
    assert code == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["x16.npy"]


def test_a_name_near_the_limit_still_gets_its_temporary(tmp_path):
    from neuro_deploy.common.atomic import atomic_path

    target = tmp_path / ("b" * 250 + ".json")  # the temporary adds a dot, a random part and .tmp
    check_outputs([target])
    with atomic_path(target) as tmp:
        tmp.write_text("{}")
    assert target.read_text() == "{}"


# ---- JSON nested deeper than the json module can recurse ------------------------------------------

def test_deeply_nested_json_is_one_line(capsys, tmp_path, deployable16):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    report = tmp_path / "report.json"
    report.write_text('{"layers": ' + "[" * 100_000 + "]" * 100_000 + "}")
    view = ["view", deployable16, "--energy", report, "-o", tmp_path / "v.onnx", "--export-only"]
    for args, named in ((["compare", "--analytic", "--firing-rate", f"vlifnet={deep}"], deep),
                        (["compare", "--analytic", "--firing-rate", str(deep)], deep), (view, report)):
        code, stdout, err = run_cli(capsys, *args)
        assert_one_line_error(code, err, str(named), "nested too deeply")
        assert code == 2 and stdout == ""
    assert not (tmp_path / "v.onnx").exists()


# ---- the Python API checks its arguments at the boundary -------------------------------------------

def test_api_convert_names_a_bad_checkpoint_or_option_before_reading_anything(tmp_path):
    missing = tmp_path / "missing.pt"  # never read: each error is about the argument, not the file
    for call, fragment in ((lambda: neuro_deploy.convert(None), "checkpoint must be a file path"),
                           (lambda: neuro_deploy.convert(5), r"file path \(str or os.PathLike\), got 5"),
                           (lambda: neuro_deploy.convert(missing, timesteps="4"), "timesteps must be int, got '4'"),
                           (lambda: neuro_deploy.convert(missing, size=True), "size must be int, got True"),
                           (lambda: neuro_deploy.convert(missing, headroom="2"), "headroom must be"),
                           (lambda: neuro_deploy.convert(missing, timestep=4), "unknown option 'timestep'"),
                           (lambda: neuro_deploy.load_network(None), "path must be a file path"),
                           (lambda: neuro_deploy.plan(None), "path must be a file path")):
        with pytest.raises(NeuroDeployError, match=fragment):
            call()


@pytest.fixture(scope="module")
def network(deployable16) -> neuro_deploy.Network:
    return neuro_deploy.load_network(deployable16)


def test_api_network_refuses_bad_paths_and_empty_images(network, tmp_path):
    with pytest.raises(NeuroDeployError, match="path must be a file path"):
        network.save(None)
    for image in (np.zeros((0, 0, 3), np.float32), np.zeros((16, 0, 3), np.float32)):
        with pytest.raises(NeuroDeployError, match="image must be a non-empty HxWx3"):
            network.simulate(image)
        with pytest.raises(NeuroDeployError, match="image must be a non-empty HxWx3"):
            network.energy(image, profiles="loihi")
    with pytest.raises(NeuroDeployError, match="image must be"):
        network.simulate(np.full((16, 16, 3), 0.5 + 0j))
    assert list(tmp_path.iterdir()) == []


def test_api_energy_takes_one_profile_name_or_none(network):
    image = np.full((16, 16, 3), 0.5, np.float32)
    one = network.energy(image, profiles="loihi")
    assert list(one["profiles"]) == ["loihi"]
    assert one["total"]["energy_pj"] == network.energy(image, profiles=["loihi"])["total"]["energy_pj"]
    assert list(network.energy(image, profiles=None)["profiles"]) == list(neuro_deploy.api.DEFAULT_PROFILES)
    with pytest.raises(NeuroDeployError, match="profiles must be a profile name or path"):
        network.energy(image, profiles=5)


# ---- weight bits: inspect and convert say the same, Loihi's 8-bit field -----------------------------

def test_weight_bits_count_the_field_lava_stores():
    assert weight_bits([np.array([-256, 254, 0, 2])]) == 8  # mixed sign: the LSB is the sign's (even values)
    assert weight_bits([np.array([0, 255])]) == 8  # one-signed: magnitudes
    assert weight_bits([np.array([-255, 0])]) == 8
    assert weight_bits([np.array([-255, 255])]) == 9  # odd mixed-sign weights (netx's num_weight_bits 9)
    assert weight_bits([np.array([1, 1])]) == 1
    assert weight_bits([]) is None


def test_inspect_and_convert_report_the_same_weight_bits(capsys, deployable16):
    from neuro_deploy.compile.convert import convert, quantization_report

    inspected = {r["name"]: r["weight_bits"] for r in describe(deployable16)}
    converted = {r["name"]: r["weight_bits"] for r in quantization_report(convert(DEPLOYABLE, size=16).quantized)}
    assert inspected == converted
    assert max(v for v in inspected.values() if v is not None) == 8


# ---- Ctrl-C during a Lava evaluation leaves no temporary folders -----------------------------------

@pytest.mark.slow
def test_ctrl_c_during_a_lava_evaluation_removes_its_temporary_folders(tmp_path, deployable16, data):
    import signal
    import subprocess
    import sys
    import time

    scratch = tmp_path / "tmp"  # the command's TMPDIR: whatever it leaves is seen here, apart from others' runs
    scratch.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "neuro_deploy", "evaluate", "--net", str(deployable16), "--data",
                             str(data), "--backend", "lava", "--workers", "1"],
                            env={**os.environ, "TMPDIR": str(scratch)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not any(scratch.glob("neuro-deploy-lava-*")):
        time.sleep(0.2)
    assert any(scratch.glob("neuro-deploy-lava-*")), "the Lava run never started"
    time.sleep(2)  # inside the run: its worker process is up
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the terminal's whole foreground group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err
    assert list(scratch.iterdir()) == []
