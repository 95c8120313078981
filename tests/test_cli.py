"""The command line: results on the happy path, one-line errors and no partial files otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neuro_deploy import zoo
from neuro_deploy.cli import main
from neuro_deploy.common.resources import demo_folder
from neuro_deploy.data import make_synthetic_rain, read_image, write_image

from conftest import reference_file

DEMO_IN = demo_folder("input") / "rain_demo.png"
DEMO_TARGET = demo_folder("target") / "rain_demo.png"


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("neuro-deploy: error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def small_vlifnet(tmp_path_factory) -> Path:
    """The official small VLIFNet weights saved as a released-style bare state dict."""
    ref = torch.load(reference_file("official_vlifnet_small.pt"), weights_only=True)
    path = tmp_path_factory.mktemp("ckpt") / "vlifnet_small_official.pth"
    torch.save(ref["state_dict"], path)
    return path


def test_derain_writes_image_and_scores(capsys, tmp_path, small_vlifnet):
    out = tmp_path / "derained.png"
    code, stdout, _ = run_cli(capsys, "derain", "--model", small_vlifnet, "--input", DEMO_IN, "-o", out,
                              "--target", DEMO_TARGET)
    assert code == 0
    assert read_image(out).shape == read_image(DEMO_IN).shape
    assert "rainy input : PSNR" in stdout and "derained    : PSNR" in stdout


def test_derain_any_size_matches_direct_forward_when_one_tile(capsys, tmp_path, small_vlifnet):
    rng = np.random.default_rng(0)
    img = rng.random((40, 56, 3)).astype(np.float32)
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    write_image(src, img)
    assert run_cli(capsys, "derain", "--model", small_vlifnet, "--input", src, "-o", out)[0] == 0
    model = zoo.load(small_vlifnet)
    with torch.no_grad():
        direct = model(torch.from_numpy(read_image(src)).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0)
    assert np.abs(read_image(out) - direct.numpy()).max() <= 1 / 255 + 1e-6
    odd, odd_out = tmp_path / "odd.png", tmp_path / "odd_out.png"
    write_image(odd, rng.random((50, 37, 3)))
    assert run_cli(capsys, "derain", "--model", small_vlifnet, "--input", odd, "-o", odd_out)[0] == 0
    assert read_image(odd_out).shape == (50, 37, 3)


def test_derain_bad_inputs(capsys, tmp_path, small_vlifnet):
    out = tmp_path / "never.png"
    code, _, err = run_cli(capsys, "derain", "--model", tmp_path / "nope.pt", "--input", DEMO_IN, "-o", out)
    assert_one_line_error(code, err, "nope.pt")
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    code, _, err = run_cli(capsys, "derain", "--model", small_vlifnet, "--input", not_image, "-o", out)
    assert_one_line_error(code, err, "notes.png")
    code, _, err = run_cli(capsys, "derain", "--model", small_vlifnet, "--input", DEMO_IN, "-o", out,
                           "--target", demo_folder("target") / "rain_demo_heavy.png")
    assert_one_line_error(code, err, "rain_demo_heavy.png")
    code, _, err = run_cli(capsys, "derain", "--model", small_vlifnet, "--arch", "esdnet", "--input", DEMO_IN,
                           "-o", out)
    assert_one_line_error(code, err, "not esdnet")
    code, _, err = run_cli(capsys, "derain", "--model", small_vlifnet, "--input", DEMO_IN, "-o",
                           tmp_path / "out.xyz")
    assert_one_line_error(code, err, "out.xyz")
    assert not out.exists() and not (tmp_path / "out.xyz").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_unsafe_checkpoint_refused_by_cli(capsys, tmp_path):
    target = tmp_path / "created_by_pickle"

    class Payload:
        def __reduce__(self):
            return (open, (str(target), "w"))

    evil = tmp_path / "evil.pth"
    torch.save({"x": Payload()}, evil)
    code, _, err = run_cli(capsys, "derain", "--model", evil, "--input", DEMO_IN, "-o", tmp_path / "o.png")
    assert_one_line_error(code, err, "refusing to load", "evil.pth")
    assert not target.exists() and not (tmp_path / "o.png").exists()


def test_synth_rain_and_train_resume_evaluate(capsys, tmp_path):
    data = tmp_path / "data"
    code, _, err = run_cli(capsys, "synth-rain", "-o", data, "-n", "4", "--size", "64", "--preset", "drizzle")
    assert_one_line_error(code, err, "drizzle")
    assert run_cli(capsys, "synth-rain", "-o", data, "-n", "4", "--size", "64")[0] == 0
    ckpt = tmp_path / "m.pt"
    args = ["train", "--dim", "8", "--data", data, "--batch-size", "2", "--crop", "32", "--warmup", "1", "-o", ckpt]
    assert run_cli(capsys, *args, "--steps", "2")[0] == 0
    first = zoo.read_checkpoint(ckpt)
    assert first.meta["steps_done"] == 2 and first.config["dim"] == 8
    code, stdout, _ = run_cli(capsys, *args, "--steps", "3", "--resume", ckpt, "--val", data)
    assert code == 0 and "held-out" in stdout
    resumed = zoo.read_checkpoint(ckpt)
    assert resumed.meta["steps_done"] == 3
    assert len(resumed.training_state["losses"]) == 3
    assert resumed.training_state["losses"][:2] == first.training_state["losses"]
    code, stdout, _ = run_cli(capsys, "evaluate", "--model", ckpt, "--data", data)
    assert code == 0 and "(4 images)" in stdout


def test_training_resume_equals_uninterrupted_run(tmp_path):
    from neuro_deploy.zoo.train import TrainConfig, train

    make_synthetic_rain(tmp_path / "d", 3, size=48)
    cfg = TrainConfig(arch="vlifnet", model={"dim": 8, "en_num_blocks": [1, 1, 1, 1], "de_num_blocks": [1, 1, 1, 1]},
                      data=str(tmp_path / "d"), steps=4, batch_size=2, crop=32, warmup_steps=2)
    whole = train(cfg, tmp_path / "whole.pt")
    train(TrainConfig(**{**cfg.__dict__, "steps": 2}), tmp_path / "part.pt")
    resumed = train(cfg, tmp_path / "part.pt", resume=tmp_path / "part.pt")
    assert resumed.training_state["losses"] == whole.training_state["losses"]
    for k, v in whole.state_dict.items():
        assert torch.allclose(v.float(), resumed.state_dict[k].float(), atol=1e-6), k


def test_entry_point_prints_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "neuro_deploy.cli", "derain", "--model", str(tmp_path / "x.pt"),
                           "--input", str(DEMO_IN), "-o", str(tmp_path / "y.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "checkpoint not found" in proc.stderr
