"""neuro-deploy simulate: inputs, tiling, outputs, event dumps and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro_deploy import zoo
from neuro_deploy.compile.convert import convert, write
from neuro_deploy.data import read_image, write_image
from neuro_deploy.formats.netx import read_network
from neuro_deploy.run.simulate import simulate

from test_cli import assert_one_line_error, run_cli

CONFIG = {"dim": 8, "en_num_blocks": [1, 1, 1, 1], "de_num_blocks": [1, 1, 1, 1], "attention": False,
          "enhance_product": False}


@pytest.fixture(scope="module")
def small_net(tmp_path_factory):
    torch.manual_seed(5)
    d = tmp_path_factory.mktemp("sim")
    zoo.save_checkpoint(d / "m.pt", zoo.Checkpoint("vlifnet", dict(CONFIG), zoo.build("vlifnet", **CONFIG).state_dict()))
    write(convert(d / "m.pt", size=16), d / "m.net")
    return d


def test_simulate_image_with_target_and_float_reference(capsys, small_net, tmp_path):
    rng = np.random.default_rng(0)
    write_image(tmp_path / "in.png", rng.random((40, 24, 3)))  # larger than one 16x16 tile, and not square
    write_image(tmp_path / "clean.png", rng.random((40, 24, 3)))
    code, out, _ = run_cli(capsys, "simulate", small_net / "m.net", "--input", tmp_path / "in.png", "--target",
                           tmp_path / "clean.png", "-o", tmp_path / "out.png", "--dump", tmp_path / "ev.npz")
    assert code == 0, out
    assert read_image(tmp_path / "out.png").shape == (40, 24, 3)
    assert "fast  vs target" in out and "float vs target" in out and "fast vs float model" in out
    events = np.load(tmp_path / "ev.npz")
    net = read_network(small_net / "m.net")
    tiles = {k.split("/")[0] for k in events.files}
    assert len(tiles) > 1 and len(events.files) == len(tiles) * len(net.quantized.layers)
    assert all(events[k].shape[0] == net.meta["steps"] for k in events.files)


def test_npy_input_output_and_frames(capsys, small_net, tmp_path):
    net = read_network(small_net / "m.net")
    image = np.random.default_rng(1).random((3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", image)
    assert run_cli(capsys, "simulate", small_net / "m.net", "--input", tmp_path / "x.npy", "-o",
                   tmp_path / "y.npy")[0] == 0
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3, 16, 16) and 0 <= y.min() and y.max() <= 1
    # T identical frames are the same input as one image
    frames = np.repeat(image[None], net.meta["settings"]["timesteps"], axis=0)
    assert np.array_equal(simulate(net, frames).output, simulate(net, image).output)
    changed = frames.copy()
    changed[2] = 0.0
    assert not np.array_equal(simulate(net, changed).output, simulate(net, image).output)


def test_simulate_bad_input(capsys, small_net, tmp_path):
    out = tmp_path / "o.png"
    np.save(tmp_path / "gray.npy", np.zeros((1, 16, 16), np.float32))
    np.save(tmp_path / "frames.npy", np.zeros((7, 3, 16, 16), np.float32))
    np.save(tmp_path / "big.npy", np.full((3, 16, 16), 3.0, np.float32))
    (tmp_path / "junk.net").write_text("not hdf5")
    cases = [((tmp_path / "gray.npy",), "1 channels"), ((tmp_path / "frames.npy",), "7 frames"),
             ((tmp_path / "big.npy",), "outside [0, 1]"), ((tmp_path / "nope.png",), "nope.png")]
    for (inp,), fragment in cases:
        code, _, err = run_cli(capsys, "simulate", small_net / "m.net", "--input", inp, "-o", out)
        assert_one_line_error(code, err, fragment)
    code, _, err = run_cli(capsys, "simulate", tmp_path / "junk.net", "--input", tmp_path / "gray.npy", "-o", out)
    assert_one_line_error(code, err, "junk.net")
    assert not out.exists()


@pytest.mark.slow
def test_lava_backend_through_the_cli(capsys, small_net, tmp_path):
    write_image(tmp_path / "in.png", np.random.default_rng(2).random((16, 16, 3)))
    for backend in ("fast", "lava"):
        assert run_cli(capsys, "simulate", small_net / "m.net", "--input", tmp_path / "in.png", "-o",
                       tmp_path / f"{backend}.npy", "--backend", backend)[0] == 0
    assert np.array_equal(np.load(tmp_path / "fast.npy"), np.load(tmp_path / "lava.npy"))


def test_simulate_with_energy_counts_the_same_run_as_the_energy_command(capsys, small_net, tmp_path):
    import json

    write_image(tmp_path / "in.png", np.random.default_rng(2).random((16, 16, 3)))
    code, out, _ = run_cli(capsys, "simulate", small_net / "m.net", "--input", tmp_path / "in.png", "-o",
                           tmp_path / "out.png", "--energy", "--profile", "loihi")
    assert code == 0, out
    assert read_image(tmp_path / "out.png").shape == (16, 16, 3)
    assert (tmp_path / "out_energy.png").stat().st_size > 0
    report = json.loads((tmp_path / "out_energy.json").read_text())
    code, out, _ = run_cli(capsys, "energy", small_net / "m.net", "--input", tmp_path / "in.png", "--profile",
                           "loihi", "--format", "json")
    assert code == 0
    assert report == json.loads(out)
    assert report["total"]["synops"] > 0


def test_simulate_energy_refuses_an_unknown_profile_before_running(capsys, small_net, tmp_path):
    write_image(tmp_path / "in.png", np.random.default_rng(2).random((16, 16, 3)))
    code, _, err = run_cli(capsys, "simulate", small_net / "m.net", "--input", tmp_path / "in.png", "-o",
                           tmp_path / "out.png", "--energy", "--profile", "no_such_chip")
    assert_one_line_error(code, err, "no_such_chip")
    assert not (tmp_path / "out.png").exists()


def test_batched_tiles_equal_tiles_run_one_by_one(small_net, monkeypatch):
    """The fast back end can run several tiles at once (the default on CUDA): the image and every
    tile's events are those of one tile at a time."""
    import neuro_deploy.run.simulate as sim

    net = read_network(small_net / "m.net")
    image = np.random.default_rng(3).random((3, 40, 32)).astype(np.float32)
    monkeypatch.setattr(sim, "TILE_BATCH", {"cpu": 4})
    batched = simulate(net, image, keep_events=True)
    monkeypatch.setattr(sim, "TILE_BATCH", {"cpu": 1})
    single = simulate(net, image, keep_events=True)
    assert batched.tiles == single.tiles > 2
    assert np.array_equal(batched.output, single.output)
    assert batched.events.keys() == single.events.keys()
    assert all(np.array_equal(batched.events[k], single.events[k]) for k in single.events)


@pytest.mark.parametrize(("device", "fragment"), [("bogus", "not a torch device"), ("mps", "cpu or cuda")]
                         + ([] if torch.cuda.is_available() else [("cuda", "no CUDA device")]))
def test_bad_device_is_one_line(capsys, small_net, tmp_path, device, fragment):
    np.save(tmp_path / "x.npy", np.zeros((3, 16, 16), np.float32))
    code, _, err = run_cli(capsys, "simulate", small_net / "m.net", "--input", tmp_path / "x.npy", "-o",
                           tmp_path / "y.npy", "--device", device)
    assert_one_line_error(code, err, f"--device {device}" if device != "bogus" else "'bogus'", fragment)
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="runs where a GPU is lent")
def test_cuda_equals_cpu_bit_for_bit(small_net):
    net = read_network(small_net / "m.net")
    image = np.random.default_rng(4).random((3, 40, 32)).astype(np.float32)
    cpu, cuda = (simulate(net, image, keep_events=True, device=d) for d in ("cpu", "cuda"))
    assert np.array_equal(cpu.output, cuda.output)
    assert all(np.array_equal(cpu.events[k], cuda.events[k]) for k in cpu.events)
