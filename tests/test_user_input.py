"""Issue 11, points 3 to 5: input checked against itself before resources are spent, user errors as
one line and exit 2, the CLI conventions a script relies on, and a netron view with numbers."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from neuro_deploy import zoo
from neuro_deploy.backends.fast import run_bytes
from neuro_deploy.common import memory
from neuro_deploy.common.resources import demo_folder
from neuro_deploy.data import PairedDataset, read_image
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.zoo.checkpoint import save_checkpoint

from test_cli import assert_one_line_error, run_cli

DEMO_IN = demo_folder("input") / "rain_demo.png"
DEMO_TARGET = demo_folder("target") / "rain_demo.png"
DEPLOYABLE = "vlifnet_small_deployable"
NETX_TESTS = Path(__import__("sysconfig").get_paths()["purelib"]) / "tests" / "lava" / "lib" / "dl" / "netx"


@pytest.fixture
def image16(tmp_path) -> Path:
    """A 16x16 crop of the demo image: one tile of `deployable16`."""
    path = tmp_path / "in.png"
    Image.fromarray((read_image(DEMO_IN)[:16, :16] * 255).round().astype(np.uint8)).save(path)
    return path


def tiny_netx() -> Path:
    path = NETX_TESTS / "tiny.net"
    if not path.is_file():
        pytest.skip(f"lava-dl's test networks are not installed ({path} not found)")
    return path


# ---- configuration checked against the weights before anything is built ----------------------

def _oversized(tmp_path: Path) -> Path:
    """The bundled deployable model whose configuration claims dim=4096 (its weights are dim 8)."""
    ckpt = zoo.read_checkpoint(DEPLOYABLE)
    ckpt.config["dim"] = 4096
    path = tmp_path / "claims_4096.pt"
    save_checkpoint(path, ckpt)
    return path


def test_a_configuration_its_weights_do_not_fit_is_refused_without_building(tmp_path, vlifnet_devices):
    path = _oversized(tmp_path)
    with pytest.raises(NeuroDeployError, match=r"configuration \(dim=4096.*does not match its weights: wrong shape"):
        zoo.load(path)
    assert vlifnet_devices == ["meta"]  # only the free skeleton on the meta device was built


def test_convert_and_derain_refuse_it_in_one_line(capsys, tmp_path):
    path = _oversized(tmp_path)
    for args in (["convert", path, "-o", tmp_path / "x.net", "--size", "16"],
                 ["derain", "--model", path, "--input", DEMO_IN, "-o", tmp_path / "x.png"]):
        code, _, err = run_cli(capsys, *args)
        assert_one_line_error(code, err, "does not match its weights")
        assert code == 2
    assert not (tmp_path / "x.net").exists() and not (tmp_path / "x.png").exists()


def test_simulate_refuses_a_net_whose_source_config_is_oversized_before_writing(capsys, tmp_path, deployable16, image16):
    net = tmp_path / "edited.net"
    net.write_bytes(deployable16.read_bytes())
    with h5py.File(net, "r+") as f:
        meta = json.loads(f["neuro_deploy/meta"][()])
        meta["source"]["config"]["dim"] = 4096
        del f["neuro_deploy/meta"]
        f["neuro_deploy/meta"] = np.bytes_(json.dumps(meta))
    out = tmp_path / "out.png"
    code, _, err = run_cli(capsys, "simulate", net, "--input", image16, "-o", out)
    assert_one_line_error(code, err, "does not match its weights")
    assert code == 2 and not out.exists()


# ---- memory estimates -------------------------------------------------------------------------

def test_sizes_parse_and_the_limit_names_its_override(monkeypatch):
    assert memory.parse_size("40G") == 40 << 30 and memory.parse_size("512m") == 512 << 20
    assert memory.parse_size("2e9") == 2_000_000_000 and memory.parse_size("0") == 0
    with pytest.raises(NeuroDeployError, match="expected a number of bytes"):
        memory.parse_size("lots")
    monkeypatch.setattr(memory, "override", "1G")
    with pytest.raises(NeuroDeployError, match=r"x needs about 2\.0 GB of memory \(estimate\), more than the 1\.0 GB "
                                               r"limit .*; lower y, or raise the limit with `neuro-deploy --max-memory"):
        memory.check(2 << 30, "x", "lower y")
    monkeypatch.setattr(memory, "override", "0")
    memory.check(1 << 50, "x", "lower y")  # 0: no limit


def test_convert_timesteps_beyond_memory_refused_at_once(capsys, tmp_path):
    out = tmp_path / "x.net"
    started = time.perf_counter()
    code, _, err = run_cli(capsys, "--max-memory", "2G", "convert", DEPLOYABLE, "-o", out, "--timesteps", "1000")
    assert_one_line_error(code, err, "T=1000", "needs about", "(estimate)", "--max-memory")
    assert code == 2 and not out.exists()
    assert time.perf_counter() - started < 30  # the estimate, not the run (minutes, then out of memory)


def test_simulate_steps_beyond_memory_refused_at_once(capsys, tmp_path):
    x, out = tmp_path / "x.npy", tmp_path / "out.npy"
    np.save(x, np.zeros((3, 16, 16), np.int64))
    code, _, err = run_cli(capsys, "--max-memory", "1G", "simulate", tiny_netx(), "--input", x, "-o", out,
                           "--steps", "300000")
    assert_one_line_error(code, err, "300000 steps", "needs about", "lower --steps", "--max-memory")
    assert code == 2 and not out.exists()


def test_the_run_estimate_bounds_a_measured_fast_run(tmp_path):
    """The estimate follows the fast back end (each node's window, freed after its last reader): at
    least the peak a run really takes, and within a small factor of it, so no deployable network is
    refused for memory it would not use (all steps of all nodes at once was 1,000x too high)."""
    from neuro_deploy.compile.convert import convert, write
    from neuro_deploy.formats.netx import read_network

    write(convert(DEPLOYABLE, size=64), tmp_path / "m.net")
    estimate = run_bytes(read_network(tmp_path / "m.net").quantized)
    # the peak resident size of the child itself (VmHWM: ru_maxrss would carry pytest's over the exec)
    script = ("import re, torch; from neuro_deploy.formats.netx import read_network; "
              "from neuro_deploy.backends.fast import run_fixed; net = read_network(%r); "
              "peak = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); "
              "base = peak(); run_fixed(net.quantized, torch.rand(1, 3, 64, 64).double()); "
              "print((peak() - base) * 1024)") % str(tmp_path / "m.net")
    measured = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    assert measured <= estimate <= 4 * measured, (measured, estimate)


def test_energy_beyond_memory_refused_at_once(capsys, tmp_path, deployable16, image16):
    report = tmp_path / "r.json"
    code, _, err = run_cli(capsys, "--max-memory", "1M", "energy", deployable16, "--input", image16, "--json-out", report)
    assert_one_line_error(code, err, "steps per tile", "needs about", "--max-memory")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 16, 16), np.int64))
    code, _, err = run_cli(capsys, "--max-memory", "1G", "energy", tiny_netx(), "--input", x, "--steps", "300000",
                           "--json-out", report)
    assert_one_line_error(code, err, "300000 steps", "needs about", "lower --steps")
    assert not report.exists()


def test_derain_tiles_beyond_memory_refused_and_the_default_tile_fits(capsys, tmp_path):
    from neuro_deploy.data import write_image

    rainy, out = tmp_path / "big.png", tmp_path / "out.png"
    write_image(rainy, np.random.default_rng(0).random((400, 300, 3)))
    code, _, err = run_cli(capsys, "--max-memory", "64M", "derain", "--model", DEPLOYABLE, "--input", rainy, "-o", out,
                           "--tile", "400")
    assert_one_line_error(code, err, "400x304 tiles", "needs about", "lower --tile", "--max-memory")
    assert not out.exists()
    code, _, err = run_cli(capsys, "--max-memory", "64M", "derain", "--model", DEPLOYABLE, "--input", rainy, "-o", out)
    assert code == 0, err  # 80x80 tiles: an estimate of a few MB
    assert read_image(out).shape == (400, 300, 3)


def test_training_size_beyond_memory_refused(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--max-memory", "100M", "train", "--data", tmp_path, "-o", tmp_path / "m.pt",
                           "--batch-size", "64")
    assert_one_line_error(code, err, "batches of 64", "needs about", "lower --batch-size")


# ---- hostile .net files ---------------------------------------------------------------------

def _set(group: h5py.Group, key: str, value) -> None:
    del group[key]
    group.create_dataset(key, data=value)


@pytest.mark.parametrize(("edit", "fragments"), [
    (lambda f: _set(f["neuro_deploy/synapses/0"], "padding", -3), ["padding -3"]),
    (lambda f: _set(f["neuro_deploy/synapses/0"], "stride", 0), ["stride 0"]),
    (lambda f: _set(f["neuro_deploy/synapses/0"], "upsample", 0), ["upsample 0"]),
    (lambda f: _set(f["neuro_deploy/layers/1"], "shape", np.array([-8, 16, 16])), ["[-8, 16, 16]", "positive"]),
    (lambda f: _set(f["neuro_deploy/layers/1"], "shape", np.array([8, 99999, 99999])), ["recorded as", "[8, 16, 16]"]),
    (lambda f: _set(f["neuro_deploy/synapses/0"], "mantissa", np.zeros((8, 5, 3, 3), np.int16)), ["expects 5 channels"]),
    (lambda f: _set(f["neuro_deploy/synapses/0"], "mantissa", np.zeros((5,), np.int16)), ["weight of shape [5]"]),
    (lambda f: _set(f["neuro_deploy/synapses/0"], "offset", 7), ["writes channels 7"]),
], ids=["negative-padding", "zero-stride", "zero-upsample", "negative-shape", "huge-shape", "weight-channels",
        "weight-rank", "channels-outside"])
def test_a_hand_edited_net_is_refused_on_reading(capsys, tmp_path, deployable16, edit, fragments):
    net = tmp_path / "edited.net"
    net.write_bytes(deployable16.read_bytes())
    with h5py.File(net, "r+") as f:
        edit(f)
    code, _, err = run_cli(capsys, "inspect", net)
    assert_one_line_error(code, err, str(net), *fragments)
    assert code == 2


# ---- user errors exit 2, in one line --------------------------------------------------------

@pytest.mark.parametrize(("option", "fragment"), [
    (["--batch-size", "0"], "--batch-size must be at least 1"), (["--crop", "60"], "--crop must be a positive multiple"),
    (["--lr", "-1"], "--lr must be a positive"), (["--lr", "nan"], "--lr must be a positive"),
    (["--dim", "0"], "--dim must be at least 1"), (["--T", "0"], "--T must be at least 1"),
    (["--device", "bogus"], "not a torch device"), (["--steps", "0"], "--steps must be at least 1"),
    (["--en", "1,1"], "--en must be 4 block counts"), (["--save-every", "0"], "--save-every must be at least 1"),
])
def test_bad_train_options(capsys, tmp_path, option, fragment):
    out = tmp_path / "m.pt"
    code, _, err = run_cli(capsys, "train", "--data", tmp_path / "nowhere", "-o", out, *option)
    assert_one_line_error(code, err, fragment)  # before the missing data set is even looked at
    assert code == 2 and not out.exists()


@pytest.mark.parametrize("option", [["--timesteps", "0"], ["--headroom", "0"], ["--headroom", "-1"],
                                    ["--headroom", "nan"], ["--headroom", "inf"]])
def test_bad_convert_options(capsys, tmp_path, option):
    code, _, err = run_cli(capsys, "convert", DEPLOYABLE, "-o", tmp_path / "x.net", *option)
    assert_one_line_error(code, err, option[0].lstrip("-"))
    assert code == 2


def test_checkpoints_missing_keys_or_with_wrong_shapes(capsys, tmp_path):
    sd = dict(zoo.read_checkpoint(DEPLOYABLE).state_dict)
    missing = {k: v for k, v in sd.items() if k != "encoder_level1.initial_residual.conv1.weight"}
    wrong = {**sd, "encoder_level1.initial_residual.conv1.weight": torch.zeros(8, 8, 5, 5)}
    no_embed = {k: v for k, v in sd.items() if not k.startswith("patch_embed")}
    for name, state, fragment in (("missing.pt", missing, "missing: encoder_level1.initial_residual.conv1.weight"),
                                  ("wrong.pt", wrong, "wrong shape"), ("no_embed.pt", no_embed, "missing key")):
        torch.save(state, tmp_path / name)
        code, _, err = run_cli(capsys, "convert", tmp_path / name, "-o", tmp_path / "x.net", "--size", "16")
        assert_one_line_error(code, err, fragment)
        assert code == 2


def test_view_port_out_of_range(capsys, deployable16, tmp_path):
    code, _, err = run_cli(capsys, "view", deployable16, "-o", tmp_path / "v.onnx", "--port", "99999")
    assert code == 2 and "99999" in err and "Traceback" not in err
    assert not (tmp_path / "v.onnx").exists()


def test_empty_and_folder_inputs(capsys, tmp_path, deployable16):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    code, _, err = run_cli(capsys, "simulate", deployable16, "--input", empty, "-o", tmp_path / "o.npy")
    assert_one_line_error(code, err, f"cannot read {empty}: the file is empty")
    assert code == 2  # not "interrupted" (130)
    code, _, err = run_cli(capsys, "simulate", deployable16, "--input", tmp_path, "-o", tmp_path / "o.npy")
    assert_one_line_error(code, err, f"cannot read {tmp_path}: it is a folder")
    code, _, err = run_cli(capsys, "inspect", tmp_path)
    assert_one_line_error(code, err, f"network file {tmp_path} is a folder")


def test_an_input_ending_early_is_a_user_error_not_an_interruption(capsys, tmp_path, deployable16, monkeypatch):
    from neuro_deploy.run import simulate as sim

    def truncated(*_args, **_kwargs):
        raise EOFError("No data left in file")

    monkeypatch.setattr(sim, "read_input", truncated)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 16, 16), np.float32))
    code, _, err = run_cli(capsys, "simulate", deployable16, "--input", x, "-o", tmp_path / "o.npy")
    assert_one_line_error(code, err, "empty or truncated")
    assert code == 2


def test_sixteen_bit_colour_is_refused_not_cut_to_eight_bits(tmp_path):
    import struct
    import zlib

    h, w = 4, 5
    rows = b"".join(b"\x00" + np.full((w, 3), 0x1234, ">u2").tobytes() for _ in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = tmp_path / "rgb48.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    with pytest.raises(NeuroDeployError, match="16 bits per colour channel, which would be cut to 8 bits"):
        read_image(path)
    gray = tmp_path / "gray16.png"
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(gray)
    assert read_image(gray)[0, 0, 0] == pytest.approx(40000 / 65535)  # full precision


# ---- training: resume, init --------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "set"
    from neuro_deploy.data import make_synthetic_rain

    make_synthetic_rain(root, 2, size=32)
    return root


def test_resume_takes_the_architecture_from_the_checkpoint(capsys, tmp_path, data):
    ckpt = tmp_path / "m.pt"
    base = ["train", "--data", data, "--batch-size", "1", "--crop", "32", "--warmup", "1", "-o", ckpt]
    assert run_cli(capsys, *base, "--T", "2", "--steps", "1")[0] == 0
    assert run_cli(capsys, *base, "--steps", "2", "--resume", ckpt)[0] == 0  # no --T: the checkpoint's
    resumed = zoo.read_checkpoint(ckpt)
    assert resumed.config["T"] == 2 and resumed.meta["steps_done"] == 2
    code, _, err = run_cli(capsys, *base, "--T", "4", "--steps", "3", "--resume", ckpt)
    assert_one_line_error(code, err, "another architecture", "T=4 (checkpoint: 2)")
    code, _, err = run_cli(capsys, *base, "--arch", "esdnet", "--steps", "3", "--resume", ckpt)
    assert_one_line_error(code, err, "is a vlifnet run, not esdnet")


def test_init_says_how_many_weights_matched(capsys, tmp_path, data):
    code, out, _ = run_cli(capsys, "train", "--data", data, "--batch-size", "1", "--crop", "32", "--steps", "1",
                           "--deployable", "--init", "vlifnet_small", "-o", tmp_path / "d.pt")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("started from vlifnet_small"))
    assert " of " in line and "weight tensors matched" in line


# ---- synth-rain ---------------------------------------------------------------------------------

def test_synth_rain_refuses_a_folder_with_files_unless_forced(capsys, tmp_path):
    root = tmp_path / "set"
    assert run_cli(capsys, "synth-rain", "-o", root, "-n", "2", "--size", "16")[0] == 0
    code, _, err = run_cli(capsys, "synth-rain", "-o", root, "-n", "3", "--size", "16", "--seed", "1")
    assert_one_line_error(code, err, "already holds 4 files", "--force")
    assert len(PairedDataset(root)) == 2
    assert run_cli(capsys, "synth-rain", "-o", root, "-n", "3", "--size", "16", "--force")[0] == 0
    assert len(PairedDataset(root)) == 3


def test_an_interrupted_synth_rain_leaves_whole_pairs_only(capsys, tmp_path, monkeypatch):
    from neuro_deploy.data import synthetic

    calls = {"n": 0}
    real = synthetic.save_image

    def interrupted(path, img, fmt):
        calls["n"] += 1
        if calls["n"] == 4:  # the second image of the second pair
            raise KeyboardInterrupt
        real(path, img, fmt)

    monkeypatch.setattr(synthetic, "save_image", interrupted)
    root = tmp_path / "set"
    code, _, err = run_cli(capsys, "synth-rain", "-o", root, "-n", "5", "--size", "16")
    assert code == 130 and "interrupted" in err
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == ["input/syn_0000.png", "target/syn_0000.png"]  # no temporary, no unpaired target


def test_sigterm_unwinds_and_removes_temporary_files(tmp_path):
    root = tmp_path / "set"
    proc = subprocess.Popen([sys.executable, "-m", "neuro_deploy", "synth-rain", "-o", str(root), "-n", "100000",
                             "--size", "64"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(root.glob("input/syn_*.png"))) < 3:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    inputs = {p.name for p in (root / "input").iterdir()}
    targets = {p.name for p in (root / "target").iterdir()}
    assert inputs == targets and not any(name.startswith(".") for name in inputs | targets)


# ---- outputs not left behind ----------------------------------------------------------------

def test_demo_checks_its_models_before_writing(capsys, tmp_path):
    out = tmp_path / "demo"
    code, _, err = run_cli(capsys, "demo", "--deployable", tmp_path / "MISSING.pt", "-o", out, "--backend", "fast")
    assert_one_line_error(code, err, "MISSING.pt")
    assert code == 2 and not out.exists()


# ---- CLI conventions ------------------------------------------------------------------------

def test_convert_json_report_and_progress(capsys, tmp_path):
    out = tmp_path / "m.net"
    code, stdout, err = run_cli(capsys, "-v", "convert", DEPLOYABLE, "-o", out, "--size", "16", "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["output"] == str(out) and report["steps"] == report["latency"] + 1
    assert {"name", "kind", "weight_exp", "clipped", "weight_error", "overflow"} <= set(report["layers"][0])
    assert "convert: " in err and "quantizing" in err  # stage progress on stderr (in logs with -v)
    code, _, err = run_cli(capsys, "convert", DEPLOYABLE, "-o", tmp_path / "n.net", "--size", "16", "--headroom", "0")
    assert_one_line_error(code, err, "headroom")  # no progress line before it


def test_derain_simulate_evaluate_json(capsys, tmp_path, deployable16, image16, data):
    target = tmp_path / "clean.png"
    target.write_bytes(image16.read_bytes())
    code, stdout, _ = run_cli(capsys, "derain", "--model", DEPLOYABLE, "--input", image16, "-o", tmp_path / "d.png",
                              "--target", target, "--json")
    scores = json.loads(stdout)
    assert code == 0 and scores["input"]["psnr"] is None  # identical images: infinite PSNR is null, not Infinity
    assert set(scores["derained"]) == {"psnr", "ssim", "psnr_y", "ssim_y"}
    code, stdout, _ = run_cli(capsys, "simulate", deployable16, "--input", image16, "-o", tmp_path / "s.png",
                              "--target", target, "--json")
    result = json.loads(stdout)
    assert code == 0 and result["tiles"] == 1 and {"vs_target", "vs_float_model"} <= set(result)
    code, stdout, err = run_cli(capsys, "evaluate", "--model", DEPLOYABLE, "--data", data, "--json")
    scores = json.loads(stdout)
    assert code == 0 and scores["images"] == 2 and math.isfinite(scores["model_psnr"])
    assert "evaluate: 2/2" in err


def test_convert_and_simulate_agree_on_steps(capsys, tmp_path, deployable16, image16):
    _, stdout, _ = run_cli(capsys, "convert", DEPLOYABLE, "-o", tmp_path / "m.net", "--size", "16")
    steps = int(stdout.split(" steps per tile")[0].rsplit(" ", 1)[1])
    _, stdout, _ = run_cli(capsys, "simulate", tmp_path / "m.net", "--input", image16, "-o", tmp_path / "s.png")
    assert f"{steps} steps each" in stdout


def test_quiet_and_verbose(capsys, tmp_path):
    code, out, err = run_cli(capsys, "-q", "synth-rain", "-o", tmp_path / "a", "-n", "2", "--size", "16")
    assert code == 0 and out == "" and err == ""
    code, out, err = run_cli(capsys, "-v", "synth-rain", "-o", tmp_path / "b", "-n", "2", "--size", "16")
    assert code == 0 and "wrote 2 pairs" in out
    assert "synth-rain: 1/2" in err and "synth-rain: 2/2" in err  # every step with -v
    code, _, err = run_cli(capsys, "-q", "-v", "synth-rain", "-o", tmp_path / "c")
    assert code == 2 and "contradict" in err


def test_shell_completion_is_wired(tmp_path):
    env = {**os.environ, "_NEURO_DEPLOY_COMPLETE": "bash_complete", "COMP_WORDS": "neuro-deploy sim",
           "COMP_CWORD": "1"}
    proc = subprocess.run([sys.executable, "-c", "from neuro_deploy.cli import main; main()"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert "simulate" in proc.stdout


def test_compare_does_not_show_internal_file_names():
    from neuro_deploy.energy.compare import _weights_note

    note = _weights_note(zoo.Checkpoint("vlifnet", {}, {}, {"steps_done": 5,
                                                            "train": {"init": "runs/run2/C_dep_lr3e-3.pt"}},
                                        path="/x/vlifnet_small.pt"))
    assert "C_dep" not in note and "another checkpoint" in note
    note = _weights_note(zoo.Checkpoint("vlifnet", {}, {}, {"steps_done": 5, "train": {"init": "vlifnet_small.pt"}}))
    assert "after init from vlifnet_small" in note


def test_csv_has_no_float_noise():
    from neuro_deploy.energy.report import _cell

    assert _cell(0.1 + 0.2) == "0.3" and _cell(1 / 3) == "0.333333333" and _cell(7) == 7


# ---- netron view with numbers ---------------------------------------------------------------

def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def test_view_has_edge_shapes_synapse_attributes_and_energy(capsys, tmp_path, deployable16):
    x, report = tmp_path / "x.npy", tmp_path / "energy.json"
    np.save(x, np.full((3, 16, 16), 0.5, np.float32))
    assert run_cli(capsys, "energy", deployable16, "--input", x, "--json-out", report)[0] == 0
    out = tmp_path / "v.onnx"
    code, _, _ = run_cli(capsys, "view", deployable16, "-o", out, "--energy", report, "--export-only")
    assert code == 0
    model = onnx.load(out)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    assert shapes["patch_embed.proj"] == [1, 8, 16, 16]
    attrs = _attributes(next(n for n in model.graph.node if n.name == "patch_embed.proj"))
    assert attrs["synapse_padding"] == [1] and attrs["synapse_stride"] == [1]
    assert attrs["synapse_channels"] == [b"0..7 of 8"] and attrs["synapse_kernel"] == [b"3x3"]
    layers = {r["name"]: r for r in json.loads(report.read_text())["layers"]}
    assert attrs["energy_spikes"] == layers["patch_embed.proj"]["spikes_out"]
    assert attrs["energy_synops"] == layers["patch_embed.proj"]["synops"]
    assert attrs["energy_pj_loihi"] == pytest.approx(layers["patch_embed.proj"]["energy_pj"]["loihi"], rel=1e-6)


def test_view_refuses_another_networks_report(capsys, tmp_path, deployable16):
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"layers": [{"name": "elsewhere", "spikes_out": 1, "firing_rate": 0.1, "synops": 1,
                                              "macs": 0, "neuron_updates": 1, "energy_pj": {"loihi": 1.0}}]}))
    code, _, err = run_cli(capsys, "view", deployable16, "-o", tmp_path / "v.onnx", "--energy", report, "--export-only")
    assert_one_line_error(code, err, "another network")
    assert not (tmp_path / "v.onnx").exists()


def test_view_accepts_plain_netx_files(capsys, tmp_path):
    out = tmp_path / "tiny.onnx"
    assert run_cli(capsys, "view", tiny_netx(), "-o", out, "--export-only")[0] == 0
    nodes = onnx.load(out).graph.node
    assert any("synapse_stride" in _attributes(n) for n in nodes)


def test_plot_keeps_long_names_inside_the_image(tmp_path):
    from neuro_deploy.energy.report import plot

    name = "decoder_level1.0.initial_residual.shortcut.0.a_long_module_name_" * 2
    for count in (1, 3):
        layers = [{"index": i, "name": f"{name}{i}", "energy_pj": {"loihi": 10.0 ** i}, "unpriced": {"loihi": {}}}
                  for i in range(count)]
        report = {"network": "a_network_file_with_" + "a_very_long_name_" * 5 + ".net", "layers": layers,
                  "profiles": {"loihi": {}}, "total": {"energy_pj": {"loihi": 111.0}}}
        plot(report, tmp_path / "e.png")
        pixels = np.asarray(Image.open(tmp_path / "e.png").convert("L"))
        edges = np.concatenate([pixels[:, :2].ravel(), pixels[:, -2:].ravel(), pixels[:2].ravel(), pixels[-2:].ravel()])
        assert edges.min() == 255  # nothing touches the border: no label or title is cut off
