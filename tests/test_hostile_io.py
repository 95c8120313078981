"""Careless or hostile input: non-finite weights refused, no output ever replaces an input, and
output paths checked before any work, each as one line naming the user's path and exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from neuro_deploy import zoo
from neuro_deploy.common import resources
from neuro_deploy.common.atomic import atomic_path, check_outputs
from neuro_deploy.common.resources import demo_folder
from neuro_deploy.compile.convert import convert
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.zoo.inference import derain_array

from test_cli import assert_one_line_error, run_cli

DEMO_IN = demo_folder("input") / "rain_demo.png"
DEPLOYABLE = "vlifnet_small_deployable"


def _poisoned(tmp_path: Path, key: str, value: float, name: str = "poisoned.pt") -> Path:
    """The bundled deployable model with one element of `key` set to `value`, as a bare state dict."""
    sd = dict(zoo.read_checkpoint(DEPLOYABLE).state_dict)
    sd[key] = sd[key].clone()
    sd[key].view(-1)[0] = value
    path = tmp_path / name
    torch.save(sd, path)
    return path


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "rain.png"
    path.write_bytes(DEMO_IN.read_bytes())
    return path


# ---- non-finite weights -----------------------------------------------------------------------

@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused_when_read(tmp_path, value):
    path = _poisoned(tmp_path, "patch_embed.proj.weight", value)
    with pytest.raises(NeuroDeployError, match="patch_embed.proj.weight holds NaN or infinite values"):
        zoo.read_checkpoint(path)


def test_a_folder_given_as_checkpoint_is_called_a_folder(tmp_path):
    with pytest.raises(NeuroDeployError, match=f"checkpoint {tmp_path} is a folder, not a file"):
        zoo.read_checkpoint(tmp_path)
    with pytest.raises(NeuroDeployError, match="not found: .*bundled models: esdnet_small, vlifnet_small"):
        zoo.read_checkpoint(tmp_path / "missing.pt")


def test_derain_and_convert_refuse_nan_weights_and_write_nothing(capsys, tmp_path, image):
    path = _poisoned(tmp_path, "encoder_level1.bn_1.weight", float("nan"))
    out = tmp_path / "out.png"
    code, _, err = run_cli(capsys, "derain", "--model", path, "--input", image, "-o", out)
    assert_one_line_error(code, err, str(path), "NaN or infinite")
    assert code == 2 and not out.exists()
    net = tmp_path / "m.net"
    code, _, err = run_cli(capsys, "convert", path, "-o", net, "--size", "16")
    assert_one_line_error(code, err, "NaN or infinite")
    assert code == 2 and not net.exists()


def test_weights_that_fold_to_nan_are_refused_at_convert(capsys, tmp_path):
    path = _poisoned(tmp_path, "encoder_level1.bn_1.running_var", -1.0)  # finite, but sqrt(var + eps) is NaN
    zoo.read_checkpoint(path)  # every stored value is finite: only folding reveals it
    with pytest.raises(NeuroDeployError, match="NaN or infinite .* after folding"):
        convert(path, size=16)
    net = tmp_path / "m.net"
    code, _, err = run_cli(capsys, "convert", path, "-o", net, "--size", "16")
    assert_one_line_error(code, err, str(path), "after folding")  # one line: no numpy warning
    assert code == 2 and not net.exists()


def test_float_inference_refuses_to_turn_nan_into_black_pixels():
    model = zoo.build("vlifnet", dim=8, en_num_blocks=[1] * 4, de_num_blocks=[1] * 4)
    with torch.no_grad():
        model.output[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(NeuroDeployError, match="output holds NaN"):
        derain_array(model.eval(), np.full((16, 16, 3), 0.5, np.float32))


# ---- no output replaces an input ------------------------------------------------------------

def _unchanged_after(capsys, victim: Path, *args: str | Path) -> str:
    before = victim.read_bytes()
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, "cannot write", "it is the input")
    assert code == 2
    assert victim.read_bytes() == before
    return err


def test_convert_onto_its_checkpoint(capsys, tmp_path):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(resources.bundled_model(DEPLOYABLE).read_bytes())
    _unchanged_after(capsys, ckpt, "convert", ckpt, "-o", ckpt, "--size", "16")


def test_view_onto_its_network(capsys, deployable16):
    _unchanged_after(capsys, deployable16, "view", deployable16, "-o", deployable16, "--export-only")


def test_energy_json_out_onto_the_network(capsys, deployable16, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 16, 16), np.float32))
    _unchanged_after(capsys, deployable16, "energy", deployable16, "--input", x, "--json-out", deployable16)


def test_derain_onto_its_input_image_even_through_another_name(capsys, tmp_path, image):
    _unchanged_after(capsys, image, "derain", "--model", DEPLOYABLE, "--input", image, "-o", image)
    alias = tmp_path / "alias.png"
    alias.symlink_to(image)
    err = _unchanged_after(capsys, image, "derain", "--model", DEPLOYABLE, "--input", image, "-o", alias)
    assert str(alias) in err


def test_simulate_onto_its_input_image(capsys, deployable16, image):
    _unchanged_after(capsys, image, "simulate", deployable16, "--input", image, "-o", image)


# ---- output paths checked before the work ---------------------------------------------------

def _bad_outputs(tmp_path: Path) -> list[tuple[Path, str]]:
    """(output, what the error says): a folder, a path under a file, a folder nobody can create files in."""
    folder = tmp_path / "out.png"
    folder.mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    return [(folder, "it is a folder"), (a_file / "out.png", "is not a folder"),
            (Path("/proc/neuro_deploy_missing/out.png"), "is not writable")]


def test_derain_checks_its_output_before_loading_anything(capsys, tmp_path):
    for out, reason in _bad_outputs(tmp_path):
        # the model does not exist: an error about the output proves the output was checked first
        code, _, err = run_cli(capsys, "derain", "--model", tmp_path / "missing.pt", "--input", DEMO_IN, "-o", out)
        assert_one_line_error(code, err, f"cannot write {out}", reason)
        assert code == 2 and ".tmp" not in err


def test_convert_checks_its_output_before_converting(capsys, tmp_path):
    for out, reason in _bad_outputs(tmp_path):
        code, _, err = run_cli(capsys, "convert", tmp_path / "missing.pt", "-o", out)
        assert_one_line_error(code, err, f"cannot write {out}", reason)
        assert code == 2


def test_relative_output_is_named_as_given(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("out.net").mkdir()
    code, _, err = run_cli(capsys, "convert", DEPLOYABLE, "-o", "out.net", "--size", "16")
    assert_one_line_error(code, err, "cannot write out.net: it is a folder")
    assert code == 2


def test_energy_and_view_check_their_outputs_first(capsys, tmp_path, deployable16):
    for out, reason in _bad_outputs(tmp_path):
        code, _, err = run_cli(capsys, "energy", deployable16, "--input", tmp_path / "missing.npy", "--json-out", out)
        assert_one_line_error(code, err, f"cannot write {out}", reason)
        code, _, err = run_cli(capsys, "view", deployable16, "-o", out, "--export-only")
        assert_one_line_error(code, err, f"cannot write {out}", reason)
        assert code == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(NeuroDeployError, match="is not writable"):
        check_outputs([folder / "out.png"])


def test_check_outputs_accepts_new_files_and_missing_folders_and_leaves_nothing(tmp_path):
    check_outputs([tmp_path / "a" / "b" / "out.png", None, tmp_path / "x.net"], [tmp_path / "missing.pt", None])
    assert list(tmp_path.iterdir()) == []  # neither the probe nor the folders stay behind


def test_atomic_path_names_the_target_not_its_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.mkdir()
    with pytest.raises(NeuroDeployError) as info, atomic_path(target) as tmp:
        tmp.write_text("{}")
    assert str(info.value).startswith(f"cannot write {target}") and ".tmp" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with pytest.raises(NeuroDeployError, match=f"cannot write {tmp_path / 'f' / 'x.json'}"):
        (tmp_path / "f").write_text("")
        with atomic_path(tmp_path / "f" / "x.json"):
            pass


def test_bare_command_prints_help(capsys):
    code, out, err = run_cli(capsys)
    assert code == 0 and err == ""
    assert out.startswith("Usage: neuro-deploy") and "Commands:" in out
