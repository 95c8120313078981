"""Loihi's fixed-point limits: converted networks obey them, violations are refused in one line,
and the fast simulator wraps sums exactly as Lava's synapse processes do."""

from __future__ import annotations

import functools

import h5py
import numpy as np
import pytest
import torch

from neuro_deploy import zoo
from neuro_deploy.backends.fast import synapse
from neuro_deploy.backends.lava import build
from neuro_deploy.compile.convert import convert, write
from neuro_deploy.compile.passes.align import align
from neuro_deploy.compile.passes.legalize import MAX_DELAY, split_delays, split_upsampling
from neuro_deploy.compile.passes.lower import lower
from neuro_deploy.formats.netx import read_network
from neuro_deploy.frontend.capture import capture
from neuro_deploy.ir.execute import execute
from neuro_deploy.ir.graph import LIF, NILIF, Edge, Graph, Input, Output, Relay, Synapse
from neuro_deploy.ir.quantized import Drive
from neuro_deploy.ir.shapes import infer_shapes
from neuro_deploy.loihi import limits as target

from conftest import REPO
from test_cli import assert_one_line_error, run_cli

BUNDLED = REPO / "neuro_deploy" / "models" / "vlifnet_small_deployable.pt"


@pytest.fixture(scope="module")
def bundled():
    return convert(BUNDLED, size=32).quantized


def test_the_bundled_deployable_model_respects_every_limit(bundled):
    q = bundled
    assert not target.check(q)
    graph = q.graph
    lifs = [layer for n, layer in q.layers.items() if isinstance(graph.nodes[n], LIF)]
    assert lifs and max(layer.params.vth for layer in lifs) <= 2**17 - 1
    assert all(layer.input_peak * q.headroom < 2**17 for layer in lifs)  # a_in << 6 fits 24 bits
    nilifs = [layer for n, layer in q.layers.items() if isinstance(graph.nodes[n], NILIF)]
    assert nilifs and all(5 * layer.params.unit < 2**23 and layer.peak * q.headroom < 2**23 for layer in nilifs)
    assert sum(qs.acc_peak > 0 for qs in q.synapses.values()) > 0.9 * len(q.synapses)  # measured, not vacuous
    for name, qs in q.synapses.items():
        syn = graph.nodes[name]
        assert syn.delay <= MAX_DELAY
        assert -7 <= qs.shift <= 7
        assert qs.acc_peak * q.headroom < (2**23 if target.synapse_process(syn) in ("Conv", "DelayConv") else 2**31), name
        assert syn.upsample == 1 or syn.stage  # upsampling only in the fixed stage (bilinear 1..16 times 1)
        if syn.stage:  # upsampling or delay: the identity, one-signed
            assert np.array_equal(qs.mantissa[:, :, 0, 0], np.eye(qs.mantissa.shape[0]))
        else:
            assert qs.mantissa.min() >= -256 and qs.mantissa.max() <= 254 and not (qs.mantissa % 2).any()


def test_upsampling_becomes_its_own_stage_and_computes_the_same(bundled):
    graph = lower(capture(zoo.load(BUNDLED), 16, 16))
    before = [n.name for n in graph.nodes.values() if isinstance(n, Synapse) and n.upsample > 1]
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)).double()
    reference = execute(graph, image)
    split_upsampling(graph)
    stages = [n for n in graph.nodes.values() if isinstance(n, Synapse) and n.upsample > 1]
    assert before and len(stages) == len(before) and all(s.stage for s in stages)
    for s in stages:
        (relay,) = graph.consumers(s.name)
        assert isinstance(graph.nodes[relay], Relay) and graph.nodes[relay].shape[1] == 2 * graph.nodes[
            graph.inputs(s.name)[0]].shape[1]
    assert torch.allclose(execute(graph, image), reference, atol=1e-12)


def test_long_delays_are_split_through_relays_keeping_every_arrival():
    g = Graph()
    g.add(Input("input", channels=2, height=8, width=8, repeat=4))
    g.add(Synapse("early", weight=np.ones((2, 2, 1, 1)), width=2), "input")
    deep = "input"
    for k in range(150):  # a long path, so the shortcut waits 150 steps
        g.add(Synapse(f"s{k}", weight=np.eye(2).reshape(2, 2, 1, 1), width=2), deep)
        deep = g.add(Relay(f"r{k}"), f"s{k}")
    g.add(Synapse("late", weight=np.ones((2, 2, 1, 1)), width=2), deep)
    g.nodes["sum"] = Relay("sum")
    g.edges += [Edge("early", "sum", 0), Edge("late", "sum", 0)]
    g.add(Output("output"), "sum")
    infer_shapes(g)
    latency = align(g)
    assert g.nodes["early"].delay == 150
    split_delays(g)
    stages = [n for n in g.nodes.values() if isinstance(n, Synapse) and n.stage]
    assert len(stages) == 2 and all(s.delay == MAX_DELAY for s in stages)
    assert g.nodes["early"].delay == 150 - 2 * (MAX_DELAY + 1)
    chain = g.inputs("early")[0]
    assert g.nodes[chain].emit + 1 + g.nodes["early"].delay == g.nodes["sum"].start  # arrives when it did
    assert g.nodes[g.output()].emit == latency


def test_a_violation_is_refused_in_one_line_or_written_and_listed(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(target.LIMITS, "lif_vth", target.Limit("lif_vth", 0, 100, "LIF vth mantissa", "test"))
    code, _, err = run_cli(capsys, "convert", BUNDLED, "-o", tmp_path / "m.net", "--size", "16")
    assert_one_line_error(code, err, "not deployable on Loihi", ": vth ", "[0, 100]", "--allow-violations")
    assert code == 2 and not (tmp_path / "m.net").exists()
    code, _, err = run_cli(capsys, "convert", BUNDLED, "-o", tmp_path / "m.net", "--size", "16",
                           "--allow-violations")
    assert code == 0 and "violates Loihi's limits" in err
    code, out, _ = run_cli(capsys, "inspect", tmp_path / "m.net")
    assert code == 0 and out.count("violates Loihi's limits") == len(read_network(tmp_path / "m.net").meta["violations"])
    monkeypatch.undo()
    assert read_network(tmp_path / "m.net").meta["violations"]  # still marked once the limit is back


def test_a_file_that_breaks_a_limit_is_refused_on_reading(capsys, tmp_path):
    write(convert(BUNDLED, size=16), tmp_path / "m.net")
    with h5py.File(tmp_path / "m.net", "r+") as f:
        layers = f["neuro_deploy/layers"]
        i = next(k for k in layers if layers[k]["kind"][()] == b"lif")
        name = layers[i]["name"][()].decode()
        layers[i]["quant/params/vth"][()] = 157286  # what the audit found: it can never spike
    code, _, err = run_cli(capsys, "inspect", tmp_path / "m.net")
    assert_one_line_error(code, err, f"{name}: vth 157286", "lava/proc/lif/models.py")


@pytest.mark.parametrize("exp,torch_conv", [(-5, False), (2, False), (-5, True)])
def test_fast_synapses_wrap_and_shift_like_lavas_conv_and_sparse(exp, torch_conv, tmp_path, monkeypatch, request):
    """Sums beyond 24 bits: the fast simulator must give what Lava's ConvExp (24-bit wrap, then
    weight_exp) and Sparse (int32, then weight_exp) deliver, one step later; also with Lava's Conv
    on its opt-in torch path."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.sparse.process import Sparse

    from neuro_deploy.backends.lava import lava_shape, synapse_matrix
    from neuro_deploy.backends.lava_procs.recorder import EventRecorder
    from neuro_deploy.backends.lava_procs.synapses import ConvExp

    if torch_conv:
        from lava.proc.conv import utils

        from neuro_deploy.backends.lava import use_torch_conv

        for attr in ("torch", "F", "TORCH_IS_AVAILABLE"):
            monkeypatch.setattr(utils, attr, getattr(utils, attr, None), raising=False)
        request.addfinalizer(functools.partial(torch.set_num_threads, torch.get_num_threads()))
        use_torch_conv()  # one torch thread from here on: forked Lava processes then do not hang
        assert utils.TORCH_IS_AVAILABLE
    rng = np.random.default_rng(exp + 10)
    c, h, steps = 3, 6, 3
    # graded payloads; the torch path computes in float32, exact only below 2^24
    payload = rng.integers(-(2**17), 2**17, (2, c, h, h)) >> (9 if torch_conv else 0)
    mantissa = (2 * rng.integers(-128, 128, (4, c, 3, 3))).astype(np.int16)
    conv = Synapse("conv", weight=mantissa.astype(float), padding=1, width=4)
    sparse = Synapse("sparse", weight=mantissa.astype(float), padding=1, width=4, dense=True)  # int32 accumulator
    conv.shape = sparse.shape = (4, h, h)
    expected = {s.name: synapse(s, mantissa, exp, torch.from_numpy(payload)[:, None])[:, 0].numpy()
                for s in (conv, sparse)}
    exact = torch.nn.functional.conv2d(torch.from_numpy(payload).double(), torch.from_numpy(mantissa).double(),
                                       padding=1)
    assert (exact.abs().max() > 2**23) != torch_conv  # the Conv wraps (not on the float32 torch path)
    assert torch_conv or not np.array_equal(expected["conv"], expected["sparse"])

    data = np.zeros((*lava_shape((c, h, h)), steps), np.int32)
    for t in range(2):
        data[..., t] = payload[t].transpose(2, 1, 0)
    source = RingBuffer(data=data)
    lava_conv = ConvExp(weight=np.ascontiguousarray(mantissa[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)).astype(np.int32),
                        input_shape=lava_shape((c, h, h)), padding=1, weight_exp=exp, num_message_bits=24)
    lava_sparse = Sparse(weights=synapse_matrix(sparse, mantissa, (c, h, h)).astype(np.int32), weight_exp=exp,
                         num_message_bits=24)
    paths = [tmp_path / "conv.npy", tmp_path / "sparse.npy"]
    recorders = [EventRecorder(shape=lava_shape((4, h, h)), num_steps=steps, path=str(p)) for p in paths]
    source.s_out.connect(lava_conv.s_in)
    source.s_out.flatten().connect(lava_sparse.s_in)
    lava_conv.a_out.connect(recorders[0].a_in)
    lava_sparse.a_out.reshape(lava_shape((4, h, h))).connect(recorders[1].a_in)
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    finally:
        source.stop()
    for name, path in zip(("conv", "sparse"), paths):
        got = np.load(path).transpose(0, 3, 2, 1)  # [steps, C, H, W]
        assert np.array_equal(got[1:], expected[name]), name  # one step of synaptic latency


def test_inspect_names_the_lava_process_of_every_layer_and_synapse(capsys, tmp_path):
    import json
    import sysconfig
    from pathlib import Path

    write(convert(BUNDLED, size=16), tmp_path / "m.net")
    code, out, _ = run_cli(capsys, "inspect", tmp_path / "m.net", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    q = read_network(tmp_path / "m.net").quantized
    for name, layer in q.layers.items():
        neuron, *synapses = rows[name]["lava"]
        kind = q.graph.nodes[name].kind
        expected = {"input": "RingBuffer", "lif": "CountedLIF"}.get(kind) or (
            "GradedNeuron" if kind != "relay" or layer.params.programmed else "GradedVec")
        assert neuron in (expected, "GradedReluVec"), name
        assert sorted(synapses) == sorted(target.synapse_class(q.graph.nodes[s]) for s in q.graph.inputs(name))
    assert {"ConvExp", "CountedSparse", "DelayConv"} <= {p for r in rows.values() for p in r["lava"]}
    built = build(q, np.zeros((3, 16, 16)), Drive(int(read_network(tmp_path / "m.net").meta["steps"])), tmp_path)
    made = {type(p).__name__ for p in built.processes}  # the classes the Lava back end really instantiates
    shown = {p for r in rows.values() for p in r["lava"]} - {"RingBuffer", "HostLayers"}
    assert shown <= made and made - shown <= {"MultiRecorder", "EventRecorder", "RingBuffer", "HostLayers"}
    ntidigits = Path(sysconfig.get_paths()["purelib"]) / "tests/lava/lib/dl/netx/gts/ntidigits/ntidigits.net"
    code, out, _ = run_cli(capsys, "inspect", ntidigits, "--json", "--skip-layer", "average")
    assert code == 0 and [r["lava"] for r in json.loads(out)] == [["RingBuffer"], ["CountedLIF", "DelayDense"],
                                                                   ["CountedLIF", "DelayDense"],
                                                                   ["CountedLIF", "CountedDense"]]
    from neuro_deploy.deploy.inspect import describe

    heard = []
    assert describe(tmp_path / "m.net", on_layer=lambda done, total: heard.append((done, total))) == list(rows.values())
    assert heard == [(i, len(rows)) for i in range(len(rows))]  # inspect's progress: one report per row
