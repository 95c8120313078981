"""What lava-dl's netx (`lava.lib.dl.netx.hdf5.Network`) makes of the files neuro-deploy writes:
one test per claim of docs/format.md, "Which files lava-dl's netx loads"."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neuro_deploy.api import load_network
from neuro_deploy.compile.convert import convert, write
from neuro_deploy.compile.nir_convert import convert_nir
from neuro_deploy.compile.passes.quantize import quantize
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import read_network, write_network
from neuro_deploy.formats.nir_write import export_nir, write_nir
from neuro_deploy.ir.quantized import Drive

from netx_oracle import import_netx
from test_convert import _chain
from test_netx_plain import Fast, assert_netx_agrees, edited_copy, set_type, shipped

nir = pytest.importorskip("nir")

#: the layer types of a file netx builds as it is meant (`flatten` only marks the next dense block)
NETX_TYPES = {"input", "conv", "flatten", "dense"}
#: the types `hdf5.Network._create` raises NotImplementedError for
NETX_REFUSED = ("pool", "convT", "unpool", "average", "concat")


def netx_network(path: Path):
    return import_netx().hdf5.Network(net_config=str(path))


def layer_types(path: Path) -> list[str]:
    with h5py.File(path) as f:
        return [f[f"layer/{i}/type"][()][0].decode() for i in range(len(f["layer"]))]


# --- what netx loads


def test_netx_loads_a_nir_converted_file_and_runs_it_as_neuro_deploy_does(tmp_path):
    """`convert MODEL.nir` writes netx types only (a conv block, a delayed dense block): netx
    builds both, and its events equal the fast back end's in every block at every step."""
    from test_nir import conv_delay_dense_graph

    rng = np.random.default_rng(0)
    nir.write(str(tmp_path / "cd.nir"), conv_delay_dense_graph(rng))
    x = (rng.random((20, 2, 8, 8)) < 0.3).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    convert_nir(tmp_path / "cd.nir", tmp_path / "cd.net", tmp_path / "x.npy")
    assert layer_types(tmp_path / "cd.net") == ["input", "conv", "flatten", "dense"]
    assert len(netx_network(tmp_path / "cd.net").layers) == 2
    net = read_network(tmp_path / "cd.net")
    drive = Drive(len(x) + 2)
    fast = Fast(net, x.astype(np.int64), drive)
    assert fast.neurons(net)[-1].any()
    assert_netx_agrees(net, x.astype(np.int64), drive, fast)


def test_netx_loads_a_lava_dl_network_exported_to_nir_and_converted_back(tmp_path):
    """tiny.net through `export --nir` and `convert`: netx builds its three blocks and runs them as
    the fast back end does, which gives the original file's events."""
    original = read_network(shipped("tiny.net"))
    write_nir(export_nir(original).graph, tmp_path / "tiny.nir")
    convert_nir(tmp_path / "tiny.nir", tmp_path / "back.net")
    assert set(layer_types(tmp_path / "back.net")) <= NETX_TYPES
    assert len(netx_network(tmp_path / "back.net").layers) == len(netx_network(shipped("tiny.net")).layers) == 3
    back = read_network(tmp_path / "back.net")
    frames = (np.random.default_rng(2).random((8, 3, 16, 16)) < 0.5).astype(np.int64) * 40
    drive = Drive(10)
    fast = Fast(back, frames, drive)
    assert_netx_agrees(back, frames, drive, fast)
    before = Fast(original, frames, drive).neurons(original)
    assert all(np.array_equal(a, b) for a, b in zip(fast.neurons(back), before))


# --- what netx does not load


def chain_file(path: Path, shifted: str) -> Path:
    """test_convert's input-conv-LIF-conv-LIF chain, quantized, where only synapse `shifted` needs
    a right shift (Lava's weight_exp, which netx's conv lacks): its LIF is written as type `lif`."""
    q = quantize(_chain(), torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    for name in ("conv1", "conv2"):
        q.synapses[name].exp = q.synapses[name].shift = -3 if name == shifted else 0
    write_network(path, q, {})
    return path


def test_netx_passes_over_a_trailing_layer_it_does_not_know_without_an_error(tmp_path):
    """The last LIF written as `lif`: netx builds the first block only, and says nothing."""
    path = chain_file(tmp_path / "c.net", "conv2")
    assert layer_types(path) == ["input", "conv", "lif"]
    assert len(netx_network(path).layers) == 1


def test_netx_feeds_the_next_conv_from_the_last_block_it_built_unchecked(tmp_path):
    """The first LIF written as `lif`: netx runs the second conv (4 input channels) on the
    3-channel image, without an error."""
    path = chain_file(tmp_path / "c.net", "conv1")
    assert layer_types(path) == ["input", "lif", "conv"]
    (block,) = netx_network(path).layers
    assert block.inp.shape == (16, 16, 3)
    assert block.synapse.weight.init.shape == (6, 3, 3, 4)  # Lava's (out, kh, kw, in)


@pytest.mark.parametrize("kind", NETX_REFUSED)
def test_netx_refuses_the_types_it_has_not_implemented(tmp_path, kind):
    path = edited_copy(tmp_path, "tiny.net", lambda f: set_type(f["layer/2"], kind))
    with pytest.raises(NotImplementedError, match=f"{kind} is not implemented"):
        netx_network(path)


def test_netx_cannot_load_the_converted_esdnet(tmp_path):
    """No layer of it is a netx type: netx builds no block, then asks for its first."""
    write(convert("esdnet_small", size=16), tmp_path / "esd.net")
    types = layer_types(tmp_path / "esd.net")
    assert (set(types) - {"input"}).isdisjoint(NETX_TYPES) and {"relay", "lif", "mda_gate", "accumulate"} <= set(types)
    with pytest.raises(IndexError):
        netx_network(tmp_path / "esd.net")


@pytest.mark.slow
def test_netx_cannot_load_the_converted_vlifnets(tmp_path):
    """The deployable's first netx conv is wired to the input and does not fit; the small VLIFNet
    at 16x16 loads without an error, as one conv block of its 125 layers, run on the image."""
    write(convert("vlifnet_small_deployable", size=16), tmp_path / "deployable.net")
    with pytest.raises(RuntimeError, match=r"Expected synapse output shape to be \(8, 8, 8\), found \(16, 16, 8\)"):
        netx_network(tmp_path / "deployable.net")  # the 16x16 image's size
    write(convert("vlifnet_small", size=16), tmp_path / "small.net")
    types = layer_types(tmp_path / "small.net")
    assert len(types) == 125 and types.count("conv") == 1
    (block,) = netx_network(tmp_path / "small.net").layers
    assert block.inp.shape == (16, 16, 3)


@pytest.mark.parametrize("name", ["tiny.net", "mnist.net"])
def test_a_lava_dl_network_is_not_saved_again(tmp_path, name):
    """Written in neuro-deploy's format it would be neither the netx network nor a file neuro-deploy
    reads back: saving it is refused in one line, and nothing is written."""
    with pytest.raises(NeuroDeployError, match="plain netx file is not written again"):
        load_network(shipped(name)).save(tmp_path / "saved.net")
    assert not (tmp_path / "saved.net").exists()
