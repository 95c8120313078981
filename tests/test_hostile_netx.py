"""Hostile network files (issue 19, point 6): each is built with h5py from a small valid file, and each
is refused by the one reader `inspect`, `view`, `simulate` and `energy` share, as one line naming the
problem, exit 2, before anything large is allocated or any output written."""

from __future__ import annotations

import json
import resource
import shutil
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import torch

from neuro_deploy.compile.passes.align import align
from neuro_deploy.compile.passes.quantize import quantize
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import read_network, tile_steps, write_network
from neuro_deploy.ir.graph import LIF, Graph, Input, Output, Synapse
from neuro_deploy.ir.shapes import infer_shapes

from test_cli import assert_one_line_error, run_cli

OXFORD = Path(__file__).parent / "data" / "loihi2" / "oxford.net"  # lava-dl's plain netx file
#: the address space each command may add here: a hostile file that made one allocate gigabytes
#: (10^9 int16 mantissas: 1.9 GiB) fails with a MemoryError, a traceback rather than one line, so the
#: one-line check also proves no such allocation was tried
HEADROOM = 3 << 29
Edit = Callable[[h5py.File], None]


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """A small converted network (input 3x16x16, two conv + LIF layers, an image out) with the
    metadata `convert` writes."""
    g = Graph()
    rng = np.random.default_rng(0)
    g.add(Input("input", channels=3, height=16, width=16, repeat=1))
    g.add(Synapse("conv1", weight=rng.normal(0, 0.5, (4, 3, 3, 3)), padding=1, width=4), "input")
    g.add(LIF("lif1"), "conv1")
    g.add(Synapse("conv2", weight=rng.normal(0, 0.5, (3, 4, 3, 3)), padding=1, width=3), "lif1")
    g.add(LIF("lif2"), "conv2")
    g.add(Output("output"), "lif2")
    infer_shapes(g)
    latency = align(g)
    q = quantize(g, torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    path = tmp_path_factory.mktemp("net") / "small.net"
    write_network(path, q, {"input_shape": [3, 16, 16], "latency": latency, "steps": latency + 1,
                            "settings": {"timesteps": 1, "size": 16}, "violations": []})
    return path


def _edited(tmp_path: Path, source: Path, edit: Edit) -> Path:
    path = tmp_path / "hostile.net"
    shutil.copy(source, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _replace(key: str, **dataset) -> Edit:
    def edit(f: h5py.File) -> None:
        del f[key]
        f.create_dataset(key, **dataset)
    return edit


def _meta(**changes) -> Edit:
    def edit(f: h5py.File) -> None:
        meta = json.loads(f["neuro_deploy/meta"][()])
        meta.update(changes)
        for key in [k for k, v in changes.items() if v is None]:
            del meta[key]
        _replace("neuro_deploy/meta", data=np.bytes_(json.dumps(meta)))(f)
    return edit


def _first_lif_vth(f: h5py.File) -> str:
    return next(f"neuro_deploy/layers/{i}/quant/params/vth" for i in range(len(f["neuro_deploy/layers"]))
                if "vth" in f[f"neuro_deploy/layers/{i}/quant/params"])


def _nan_vth(f: h5py.File) -> None:
    _replace(_first_lif_vth(f), data=np.float64("nan"))(f)


def _one_weight(value: float) -> Edit:
    def edit(f: h5py.File) -> None:
        mantissa = f["neuro_deploy/synapses/0/mantissa"][()].astype(np.float64)
        mantissa.flat[5] = value
        _replace("neuro_deploy/synapses/0/mantissa", data=mantissa)(f)
    return edit


def _self_link(key: str) -> Edit:
    def edit(f: h5py.File) -> None:
        del f[key]
        f[key] = h5py.SoftLink("/" + key)
    return edit


def _commands(tmp_path: Path, network: Path, plain: bool) -> dict[str, list]:
    x = tmp_path / "x.npy"
    np.save(x, np.full((200,), 1) if plain else np.full((3, 16, 16), 0.5, np.float32))
    out = tmp_path / ("out.npy" if plain else "out.png")
    return {"inspect": ["inspect", network], "view": ["view", network, "-o", tmp_path / "v.onnx", "--export-only"],
            "simulate": ["simulate", network, "--input", x, "-o", out], "energy": ["energy", network, "--input", x]}


def _address_space() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))


def _run_capped(capsys, args: list) -> tuple[int, str, str]:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + HEADROOM, hard))
    try:
        return run_cli(capsys, *args)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


CONVERTED_CASES = {
    "huge-exponent": (_replace("neuro_deploy/synapses/0/exp", data=10**6),
                      ["/neuro_deploy/synapses/0/exp is 1000000", "[-63, 63]"]),
    "huge-bias-exponent": (_replace("neuro_deploy/layers/1/quant/params/bias_exp", data=10**12),
                         ["/neuro_deploy/layers/1/quant/params/bias_exp is 1000000000000"]),
    "nan-vth": (_nan_vth, ["/quant/params/vth", "NaN"]),
    "nan-weight": (_one_weight(np.nan), ["/neuro_deploy/synapses/0/mantissa", "NaN"]),
    "inf-weight": (_one_weight(np.inf), ["/neuro_deploy/synapses/0/mantissa", "infinite"]),
    "float-weight": (_one_weight(0.5), ["/neuro_deploy/synapses/0/mantissa holds float64", "16-bit"]),
    "input-1e9": (_meta(input_shape=[3, 10**9, 10**9]), ["input_shape [3, 1000000000, 1000000000]", "[3, 16, 16]"]),
    "input-2^20": (_meta(input_shape=[2**20]), ["input_shape [1048576]"]),
    "no-input-shape": (_meta(input_shape=None), ["meta has no input_shape"]),
    "steps-1e9": (_meta(steps=10**9), ["gives steps 1000000000"]),
    "timesteps-1e9": (_meta(settings={"timesteps": 10**9}), ["settings/timesteps 1000000000"]),
    "mantissa-1e9": (_replace("neuro_deploy/synapses/0/mantissa", shape=(10**9,), dtype="i2"),
                     ["/neuro_deploy/synapses/0/mantissa declares 1,000,000,000 values"]),
    "self-link": (_self_link("neuro_deploy/synapses/0/mantissa"), ["/neuro_deploy/synapses/0/mantissa is a soft link"]),
    "layers-not-a-group": (_replace("neuro_deploy/layers", data=np.arange(3)), ["/neuro_deploy/layers is not a group"]),
    "fractional-source": (_replace("neuro_deploy/synapses/0/src", data=0.5),
                          ["/neuro_deploy/synapses/0/src is 0.5, expected an integer"]),
    "self-link-root": (_self_link("neuro_deploy"), ["/neuro_deploy is a link"]),
}


def test_the_small_valid_files_pass_every_command(capsys, tmp_path, converted):
    """The control: without the edits, all four commands succeed on both files."""
    for source, plain in ((converted, False), (OXFORD, True)):
        for name, args in _commands(tmp_path, source, plain).items():
            steps = ["--steps", "5"] if plain and name in ("simulate", "energy") else []  # oxford has no tSample
            code, _, err = _run_capped(capsys, args + steps)
            assert code == 0, (source.name, name, err)


@pytest.mark.parametrize("case", list(CONVERTED_CASES))
def test_a_hostile_converted_file_is_one_line_from_every_command(capsys, tmp_path, converted, case):
    edit, fragments = CONVERTED_CASES[case]
    path = _edited(tmp_path, converted, edit)
    for name, args in _commands(tmp_path, path, False).items():
        code, out, err = _run_capped(capsys, args)
        assert code == 2, (name, err)
        assert_one_line_error(code, err, str(path), *fragments)
        assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob("v.onnx*")), name


PLAIN_CASES = {
    "nan-vth": (_replace("layer/0/neuron/vThMant", data=np.float64("nan")), ["/layer/0/neuron/vThMant", "NaN"]),
    "nan-weight": (lambda f: f["layer/1/weight"].__setitem__((0, 0), np.nan), ["/layer/1/weight", "NaN"]),
    "inf-weight": (lambda f: f["layer/0/weight"].__setitem__((3, 4), -np.inf), ["/layer/0/weight", "infinite"]),
    "input-1e9": (_replace("layer/0/inFeatures", data=10**9), ["/layer/0/weight has shape (256, 200)",
                                                                "(256, 1000000000)"]),
    "no-input-shape": (lambda f: f["layer/0"].__delitem__("shape"), ["/layer/0/shape is missing"]),
    "weight-1e9": (_replace("layer/1/weight", shape=(10**9,), dtype="f4"),
                   ["/layer/1/weight declares 1,000,000,000 values"]),
    "self-link": (_self_link("layer/1/weight"), ["/layer/1/weight is a soft link"]),
    "tsample-0": (lambda f: f.create_dataset("simulation/tSample", data=0), ["/simulation/tSample is 0"]),
}


@pytest.mark.parametrize("case", list(PLAIN_CASES))
def test_a_hostile_plain_netx_file_is_one_line_from_every_command(capsys, tmp_path, case):
    edit, fragments = PLAIN_CASES[case]
    path = _edited(tmp_path, OXFORD, edit)
    for name, args in _commands(tmp_path, path, True).items():
        code, _, err = _run_capped(capsys, args)
        assert_one_line_error(code, err, str(path), *fragments)
        assert code == 2 and not list(tmp_path.glob("out*")), name


def test_a_sample_of_1e9_steps_is_refused_before_the_run(capsys, tmp_path):
    """tSample is the run's default length, not a claim about the network: inspect and view show the
    file; simulate and energy refuse the run it asks for, from its memory estimate, before allocating."""
    path = _edited(tmp_path, OXFORD, lambda f: f.create_dataset("simulation/tSample", data=10**9))
    assert read_network(path).meta["sample_steps"] == 10**9
    for name, args in _commands(tmp_path, path, True).items():
        code, _, err = _run_capped(capsys, args)
        if name in ("inspect", "view"):
            assert code == 0, err
        else:
            assert_one_line_error(code, err, "for 1000000000 steps needs about", "lower --steps")
            assert code == 2 and not (tmp_path / "out.npy").exists()


def test_simulate_prints_the_steps_that_ran(capsys, tmp_path, converted):
    net = read_network(converted)
    x = tmp_path / "x.npy"
    np.save(x, np.full((3, 16, 16), 0.5, np.float32))
    code, out, err = run_cli(capsys, "simulate", converted, "--input", x, "-o", tmp_path / "o.png", "--json")
    assert code == 0, err
    assert json.loads(out)["steps"] == tile_steps(net.quantized) == net.meta["steps"]
    assert f"{tile_steps(net.quantized)} steps each" in err


def test_reading_is_unchanged_by_the_checks(converted):
    """The one-pass reader gives back what was written (the round trip the checks must not disturb)."""
    net = read_network(converted)
    with h5py.File(converted) as f:
        for j, name in enumerate(n for n in net.quantized.graph.topological() if n in net.quantized.synapses):
            assert f[f"neuro_deploy/synapses/{j}/name"][()].decode() == name
            assert np.array_equal(f[f"neuro_deploy/synapses/{j}/mantissa"][()], net.quantized.synapses[name].mantissa)
    with pytest.raises(NeuroDeployError, match="/neuro_deploy/synapses/0/src is missing"):
        read_network(_edited(converted.parent, converted, lambda f: f.__delitem__("neuro_deploy/synapses/0/src")))


def test_consistent_but_huge_layer_shapes_are_refused_before_their_bias_is_made(capsys, tmp_path):
    """lava-dl's tiny.net with every shape scaled up consistently (input 3 x 10^5 x 10^5): the convolutions
    check out, so the reader would broadcast a 223 GiB bias; it refuses from the memory estimate instead."""
    from test_netx_plain import shipped

    shapes = {"layer/0/shape": [3, 10**5, 10**5], "layer/1/shape": [24, 49998, 49998],
              "layer/2/shape": [36, 24997, 24997]}

    def scale(f: h5py.File) -> None:
        for key, shape in shapes.items():
            _replace(key, data=np.array(shape))(f)

    path = _edited(tmp_path, shipped("tiny.net"), scale)
    for name, args in _commands(tmp_path, path, True).items():
        code, _, err = _run_capped(capsys, args)
        assert_one_line_error(code, err, str(path), "/layer/1/bias: a layer of 59,995,200,096 neurons", "needs about")
        assert code == 2, name
