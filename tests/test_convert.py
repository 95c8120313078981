"""Conversion to an HDF5 description: round trip, netx compatibility, inspection, bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from neuro_deploy.backends.fast import run_fixed
from neuro_deploy.cli import main
from neuro_deploy.compile.convert import convert, write
from neuro_deploy.compile.passes.align import align
from neuro_deploy.compile.passes.quantize import quantize
from neuro_deploy.deploy.inspect import COLUMNS, describe
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import read_network, write_network
from neuro_deploy.ir.graph import LIF, Graph, Input, Output, Synapse
from neuro_deploy.ir.shapes import infer_shapes

from conftest import reference_file
from test_cli import assert_one_line_error, run_cli

NETX_TESTS = "site-packages/tests/lava/lib/dl/netx"


@pytest.fixture(scope="module")
def esdnet_checkpoint(tmp_path_factory):
    ref = torch.load(reference_file("official_esdnet_small.pt"), weights_only=True)
    path = tmp_path_factory.mktemp("ckpt") / "esdnet_small.pth"
    torch.save(ref["state_dict"], path)
    return path


def test_description_round_trip_is_bit_exact(tmp_path, esdnet_checkpoint):
    conversion = convert(esdnet_checkpoint, size=32)
    path = tmp_path / "esd.net"
    write(conversion, path)
    back = read_network(path)
    assert back.meta["source"]["sha256"] == conversion.meta["source"]["sha256"]
    assert back.meta["latency"] == conversion.meta["latency"] > 0
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(run_fixed(back.quantized, image), run_fixed(conversion.quantized, image))
    rows = describe(path)
    assert [r["index"] for r in rows] == list(range(len(conversion.quantized.layers)))
    assert {r["placement"] for r in rows} == {"io", "neurocore", "host"}  # MDA gates and refinement on the host


def _chain(size: int = 16) -> Graph:
    """input -> conv3x3 -> LIF -> conv3x3(stride 2) -> LIF: a network netx can express."""
    g = Graph()
    rng = np.random.default_rng(0)
    g.add(Input("input", channels=3, height=size, width=size, repeat=4))
    g.add(Synapse("conv1", weight=rng.normal(0, 0.5, (4, 3, 3, 3)), padding=1, width=4), "input")
    g.add(LIF("lif1"), "conv1")
    g.add(Synapse("conv2", weight=rng.normal(0, 0.5, (6, 4, 3, 3)), stride=2, padding=1, width=6), "lif1")
    g.add(LIF("lif2"), "conv2")
    g.add(Output("output"), "lif2")
    infer_shapes(g)
    align(g)
    return g


def test_plain_chain_loads_unchanged_with_lava_dl_netx(tmp_path):
    from lava.lib.dl import netx

    g = _chain()
    q = quantize(g, torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    # Lava's Conv has no weight exponent: a layer is netx's only if its weights need no right
    # shift. Pixels in 8 bits into a LIF usually do (then it is written as an extension layer);
    # here both synapses are given integer weights, as slayer would export them.
    for name in ("conv1", "conv2"):
        q.synapses[name].exp = q.synapses[name].shift = 0
    path = tmp_path / "chain.net"
    write_network(path, q, {"note": "chain"})
    net = netx.hdf5.Network(net_config=str(path))
    assert len(net) == 2  # the input layer only declares the shape the first conv reads
    assert net.inp.shape == (16, 16, 3)
    assert [tuple(layer.out.shape) for layer in net.layers] == [(16, 16, 4), (8, 8, 6)]
    with h5py.File(path) as f:
        for i, syn in ((1, "conv1"), (2, "conv2")):
            qs = q.synapses[syn]
            assert np.array_equal(f[f"layer/{i}/weight"][()], qs.mantissa.astype(np.int64) << qs.shift)
            assert int(f[f"layer/{i}/neuron/vThMant"][()]) == q.layers[f"lif{i}"].params.vth



def test_netx_runs_the_netx_layers_of_a_converted_file_as_neuro_deploy_does(tmp_path):
    """lava-dl's netx (the independent oracle) loads the file's netx layers unchanged and, fed the
    same 8-bit pixels, its blocks spike exactly where the fast back end's windows say, at every step."""
    from netx_oracle import run_netx

    from neuro_deploy.backends.fast import run_fixed
    from neuro_deploy.ir.quantized import INPUT_SCALE

    g = _chain()
    q = quantize(g, torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    for name in ("conv1", "conv2"):  # integer weights, as in the test above
        q.synapses[name].exp = q.synapses[name].shift = 0
    write_network(tmp_path / "chain.net", q, {})
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2))
    windows = {}
    run_fixed(q, image[None], lambda node, v: windows.__setitem__(node.name, v[:, 0].numpy()))
    steps = max(g.nodes[n].emit + g.nodes[n].steps for n in ("lif1", "lif2")) + 2
    pixels = np.round(image.numpy().astype(np.float64) * INPUT_SCALE)[None].repeat(g.nodes["input"].repeat, 0)
    oracle = run_netx(tmp_path / "chain.net", pixels.astype(np.int64), steps, (3, 16, 16), input_message_bits=8)
    for name, events in zip(("lif1", "lif2"), oracle):
        node = g.nodes[name]
        placed = np.zeros((steps, *node.shape), np.int64)
        placed[node.emit:node.emit + node.steps] = windows[name]
        assert placed.any(), name
        assert np.array_equal(events, placed), name


@pytest.mark.parametrize("name", ["tiny.net", "mnist.net", "gts/pilotnet_lif/network.net",
                                  "gts/pilotnet_sdnn/network.net"])
def test_inspect_reads_lava_dl_networks(capsys, name):
    import lava.lib.dl.netx as netx_pkg
    from pathlib import Path

    path = Path(netx_pkg.__file__).parents[4] / "tests/lava/lib/dl/netx" / name
    capsys.readouterr()  # what importing lava-dl printed, when this test runs first
    code, out, _ = run_cli(capsys, "inspect", path, "--json")
    assert code == 0
    rows = json.loads(out)
    assert rows and all(set(r) == set(COLUMNS) for r in rows)
    assert rows[0]["type"] == "input" and sum(r["synapses"] for r in rows) > 0
    with h5py.File(path) as f:  # every netx layer but the flatten ones, and the input events' source
        kinds = [f[f"layer/{i}/type"][0] for i in range(len(f["layer"]))]
        assert {r["name"] for r in rows} - {"input"} == {f"layer/{i}" for i, k in enumerate(kinds) if k != b"flatten"}


def test_layers_netx_cannot_express_are_extension_layers(tmp_path):
    g = _chain()
    q = quantize(g, torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    q.synapses["conv1"].shift = -3  # needs Lava's weight_exp, which netx's conv lacks
    write_network(tmp_path / "c.net", q, {})
    with h5py.File(tmp_path / "c.net") as f:
        assert f["layer/1/type"][0] == b"lif" and "weight" not in f["layer/1"]
        assert f["neuro_deploy/synapses/0/shift"][()] == -3


def test_strict_refuses_host_ops_with_their_module_paths(esdnet_checkpoint):
    with pytest.raises(NeuroDeployError, match=r"--strict: .*encoder_level1\.0\.attn \(mda_gate\).*refinement"):
        convert(esdnet_checkpoint, size=32, strict=True)


def test_convert_and_inspect_bad_input(capsys, tmp_path, esdnet_checkpoint):
    out = tmp_path / "x.net"
    code, _, err = run_cli(capsys, "convert", tmp_path / "none.pt", "-o", out)
    assert_one_line_error(code, err, "none.pt")
    code, _, err = run_cli(capsys, "convert", esdnet_checkpoint, "-o", out, "--size", "30")
    assert_one_line_error(code, err, "--size")
    code, _, err = run_cli(capsys, "convert", esdnet_checkpoint, "-o", out, "--size", "32", "--strict")
    assert_one_line_error(code, err, "--strict")
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))
    good = tmp_path / "good.net"
    assert run_cli(capsys, "convert", esdnet_checkpoint, "-o", good, "--size", "32")[0] == 0
    truncated = tmp_path / "truncated.net"
    truncated.write_bytes(good.read_bytes()[:4096])
    not_hdf5 = tmp_path / "text.net"
    not_hdf5.write_text("hello")
    missing_key = tmp_path / "missing.net"
    missing_key.write_bytes(good.read_bytes())
    with h5py.File(missing_key, "a") as f:
        del f["neuro_deploy/layers/3/kind"]
    for path, fragment in ((truncated, "truncated.net"), (not_hdf5, "text.net"), (tmp_path / "no.net", "no.net"),
                           (missing_key, "/neuro_deploy/layers/3/kind is missing")):
        code, _, err = run_cli(capsys, "inspect", path)
        assert_one_line_error(code, err, fragment)


def test_onnx_view_one_node_per_layer_and_netron_serves_it(tmp_path, esdnet_checkpoint):
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    import onnx

    net = tmp_path / "esd.net"
    write(convert(esdnet_checkpoint, size=32), net)
    from neuro_deploy.deploy.onnx_view import export

    heard = []
    export(net, tmp_path / "esd.onnx", on_layer=lambda done, total: heard.append((done, total)))
    model = onnx.load(tmp_path / "esd.onnx")
    onnx.checker.check_model(model)
    rows = describe(net)
    assert [n.name for n in model.graph.node] == [r["name"] for r in rows]
    assert heard == [(i, len(rows)) for i in range(len(rows))]  # view's progress: one report per node
    assert {a.name for a in model.graph.node[1].attribute} >= {"placement", "shape", "synapse_weight_exp"}
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "neuro_deploy.cli", "view", str(net), "--no-browser",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        line = ""
        while "netron serving at" not in line and time.time() < deadline:
            line = proc.stdout.readline()
        url = line.split("at ")[-1].split()[0]
        assert urllib.request.urlopen(url, timeout=10).status == 200
    finally:
        proc.kill()
        proc.wait()
