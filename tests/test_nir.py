"""NIR import and export, checked against a Loihi 2 chip's trace, snnTorch's own NIR export and a
round trip of lava-dl's pilotnet_lif (docs/nir.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from neuro_deploy.backends.fast import run_free
from neuro_deploy.compile.nir_convert import convert_nir, run_float, fold
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx_plain import read_plain
from neuro_deploy.formats.netx_plain_write import PlainLayer, write_plain
from neuro_deploy.formats.nir_write import export_nir, write_nir
from neuro_deploy.ir.quantized import Drive
from neuro_deploy.run.simulate import simulate

nir = pytest.importorskip("nir")
LIF_DIR = Path(__file__).parent / "data" / "nir" / "01_lif"
PILOTNET = Path(sys.prefix) / "lib/python3.10/site-packages/tests/lava/lib/dl/netx/gts/pilotnet_lif/network.net"


def chip_trace() -> np.ndarray:
    """`(1000, 3)`: input spike, the chip's voltage, the chip's spike, per step."""
    return np.loadtxt(LIF_DIR / "lif_lava_loihi_fixed.csv", delimiter=",")


def test_converted_lif_neuron_spikes_at_the_chips_steps(tmp_path):
    chip = chip_trace()
    x = chip[:, :1]
    np.save(tmp_path / "x.npy", x)
    convert_nir(LIF_DIR / "lif_norse.nir", tmp_path / "lif.net", tmp_path / "x.npy")
    out = run_free(read_plain(tmp_path / "lif.net").quantized, x.reshape(-1, 1, 1, 1).astype(np.int64), Drive(len(x)))
    steps = np.nonzero(out.numpy().reshape(len(x)))[0]
    assert steps.tolist() == np.nonzero(chip[:, 2])[0].tolist() == [461, 511, 711, 761]


def paper_network(path: Path) -> None:
    """The paper's integer parameters (its nir_to_lava.py: dv int(0.04*4095) = 163, vth
    int(0.1*131071) >> 9 = 25, weight int(0.04*256) = 10; du 4095: no current state)."""
    write_plain(path, (1,), [PlainLayer("dense", (1,), 4096, 163, 25, weight=np.array([[10.0]]))])


def test_paper_parameters_reproduce_the_chips_voltage_at_every_step_without_a_spike(tmp_path):
    chip = chip_trace()
    paper_network(tmp_path / "paper.net")
    states: dict[str, list] = {}
    run_free(read_plain(tmp_path / "paper.net").quantized, chip[:, 0].reshape(-1, 1, 1, 1).astype(np.int64),
             Drive(len(chip)), states=states)
    v = np.array([float(s[1].reshape(-1)[0]) for s in states["layer/1"]])
    quiet = chip[:, 2] == 0
    assert np.array_equal(v[quiet], chip[quiet, 1])
    # at a spike step the chip reports 128, Lava's CPU model the reset voltage 0 (docs/nir.md)
    assert np.all(chip[~quiet, 1] == 128) and np.all(v[~quiet] == 0)


@pytest.mark.slow
def test_lava_lif_process_reproduces_the_chips_voltage_at_every_step_without_a_spike():
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    chip = chip_trace()
    source = RingBuffer(data=chip[:, 0].reshape(1, -1))
    dense = Dense(weights=np.array([[10]]))
    lif = LIF(shape=(1,), du=4095, dv=163, vth=25)
    source.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    monitor = Monitor()
    monitor.probe(lif.v, len(chip))
    lif.run(condition=RunSteps(num_steps=len(chip)), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    v = monitor.get_data()[lif.name]["v"].reshape(-1)
    lif.stop()
    quiet = chip[:, 2] == 0
    assert np.array_equal(v[quiet], chip[quiet, 1])


def snntorch_cnn(path: Path, x: np.ndarray) -> np.ndarray:
    """A small convolutional snnTorch network, written by snnTorch's own NIR exporter; returns
    snnTorch's float output spikes `[T, 10]` on `x`."""
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)

    def leaky(beta: float, shape: tuple[int, ...], **kw):  # per-neuron parameters: snnTorch 1.0 exports them typed
        return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape), init_hidden=True,
                         reset_mechanism="zero", **kw)

    net = torch.nn.Sequential(torch.nn.Conv2d(2, 8, 3, padding=1), torch.nn.AvgPool2d(2), leaky(0.9, (8, 8, 8)),
                              torch.nn.Conv2d(8, 8, 3, padding=1), leaky(0.9, (8, 8, 8)), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 8 * 8, 10), leaky(0.8, (10,), output=True))
    with torch.no_grad():
        for m in net:
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(3.0)
    nir.write(str(path), export_to_nir(net, torch.zeros(1, 2, 16, 16), ignore_dims=[0]))
    utils.reset(net)
    with torch.no_grad():
        return np.concatenate([net(torch.as_tensor(frame[None], dtype=torch.float32))[0].numpy() for frame in x])


#: the fixed-point run's output spike counts against snnTorch's float run: total within 25 %, and
#: no neuron off by more than 3 spikes in 100 steps (quantization, a step per layer of latency,
#: and snnTorch's zero reset, which also drops the input of the step after a spike)
COUNT_TOLERANCE = (0.25, 3)


def test_snntorch_cnn_converts_within_tolerance_and_fast_equals_lava_event_for_event(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.random((100, 2, 16, 16)) < 0.2).astype(np.float32)
    reference = snntorch_cnn(tmp_path / "cnn.nir", x)
    np.save(tmp_path / "x.npy", x)
    convert_nir(tmp_path / "cnn.nir", tmp_path / "cnn.net", tmp_path / "x.npy")
    net = read_plain(tmp_path / "cnn.net")
    steps = len(x) + 3  # one step per synapse hop
    fast = simulate(net, x.astype(np.int64), "fast", keep_events=True, drive=Drive(steps))
    counts, expected = fast.output.reshape(steps, -1).sum(0), reference.sum(0)
    assert expected.sum() > 10
    assert abs(counts.sum() - expected.sum()) <= COUNT_TOLERANCE[0] * expected.sum()
    assert np.abs(counts - expected).max() <= COUNT_TOLERANCE[1]
    lava = simulate(net, x[:30].astype(np.int64), "lava", keep_events=True, drive=Drive(30))
    short = simulate(net, x[:30].astype(np.int64), "fast", keep_events=True, drive=Drive(30))
    assert set(lava.events) == set(short.events)
    assert all(np.array_equal(lava.events[k], short.events[k]) for k in short.events)


def test_pilotnet_round_trip_through_nir_gives_the_same_events(tmp_path):
    if not PILOTNET.is_file():
        pytest.skip("lava-dl's test networks are not installed")
    original = read_plain(PILOTNET)
    exported = export_nir(original)
    assert exported.layers == 10 and exported.left_out == []
    write_nir(exported.graph, tmp_path / "pilotnet.nir")
    convert_nir(tmp_path / "pilotnet.nir", tmp_path / "back.net")
    back = read_plain(tmp_path / "back.net")
    rng = np.random.default_rng(1)
    x = (rng.random((8, 3, 66, 200)) < 0.3) * rng.integers(1, 40, (8, 3, 66, 200))
    events = []
    for net in (original, back):
        run = simulate(net, x.astype(np.int64), "fast", keep_events=True, drive=Drive(16))
        events.append(run.events)
    assert set(events[0]) == set(events[1])
    assert all(np.array_equal(events[0][k], events[1][k]) for k in events[0])
    assert sum(int(np.count_nonzero(v)) for v in events[0].values()) > 1000


def test_the_float_simulation_of_the_paper_neuron_spikes_where_the_exact_solution_does():
    chain_graph = nir.read(str(LIF_DIR / "lif_norse.nir"))
    from neuro_deploy.frontend.nir import to_chain

    chain = to_chain(chain_graph, 1e-4)
    spikes, _ = run_float([fold(s) for s in chain.stages], chip_trace()[:, :1])
    exact = np.loadtxt(LIF_DIR / "lif_exact.csv", delimiter=",")
    assert np.nonzero(spikes[0].reshape(-1))[0].tolist() == np.nonzero(exact[:, 2])[0].tolist()


def lif_graph(**overrides) -> "nir.NIRGraph":
    params = dict(tau=np.array([0.0025]), r=np.array([1.0]), v_leak=np.array([0.0]),
                  v_threshold=np.array([0.1]), v_reset=np.array([0.0]))
    params.update(overrides)
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1])}),
                               "w": nir.Linear(weight=np.ones((1, 1))), "lif": nir.LIF(**params),
                               "output": nir.Output(output_type={"output": np.array([1])})},
                        edges=[("input", "w"), ("w", "lif"), ("lif", "output")], type_check=False)


@pytest.mark.parametrize("graph, message", [
    (lambda: lif_graph(v_reset=np.array([0.05])), "node lif: v_reset"),
    (lambda: lif_graph(v_threshold=np.array([np.nan])), "node lif: v_threshold holds NaN"),
    (lambda: lif_graph(v_leak=np.array([1e-9])), "node lif: its v_leak is below Loihi's bias resolution"),
])
def test_what_loihi_cannot_express_is_one_line_naming_the_node(tmp_path, graph, message):
    nir.write(str(tmp_path / "g.nir"), graph())
    with pytest.raises(NeuroDeployError, match=message):
        convert_nir(tmp_path / "g.nir", tmp_path / "g.net")
    assert not (tmp_path / "g.net").exists()


def test_export_of_a_current_that_never_decays_is_one_line_and_exit_2(tmp_path):
    """lava-dl's mnist.net ends in a layer whose current never decays: NIR's CubaLIF has no finite tau_syn."""
    mnist = PILOTNET.parents[2] / "mnist.net"
    if not mnist.is_file():
        pytest.skip("lava-dl's test networks are not installed")
    run = subprocess.run([sys.executable, "-m", "neuro_deploy", "export", str(mnist), "--nir", str(tmp_path / "m.nir")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "layer/3" in run.stderr and "never decays" in run.stderr
    assert not (tmp_path / "m.nir").exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    with h5py.File(tmp_path / "empty.nir", "w") as f:
        f.create_dataset("x", data=1)
    cyclic = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                 "a": nir.Linear(weight=np.eye(2)), "b": nir.Linear(weight=np.eye(2)),
                                 "output": nir.Output(output_type={"output": np.array([2])})},
                          edges=[("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")], type_check=False)
    nir.write(str(tmp_path / "cyclic.nir"), cyclic)
    mismatched = lif_graph()
    mismatched.nodes["w"] = nir.Linear(weight=np.ones((1, 3)))
    nir.write(str(tmp_path / "shapes.nir"), mismatched)
    for name, message in (("empty", "is not a NIR graph"), ("cyclic", "cycle without a delay"),
                          ("shapes", "mismatched shapes")):
        with pytest.raises(NeuroDeployError, match=message):
            convert_nir(tmp_path / f"{name}.nir", tmp_path / f"{name}.net")
    for name, message in (("junk", "is not a NIR graph"),):  # the CLI: one line, exit 2, nothing written
        run = subprocess.run([sys.executable, "-m", "neuro_deploy", "convert", str(tmp_path / f"{name}.nir"),
                              "-o", str(tmp_path / f"{name}.net")], capture_output=True, text=True)
        assert run.returncode == 2, (name, run.stderr)
        assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, (name, run.stderr)
        assert not (tmp_path / f"{name}.net").exists()


def test_cli_convert_prints_dt_and_export_names_what_nir_lacks(tmp_path):
    chip = chip_trace()
    np.save(tmp_path / "x.npy", chip[:, :1])
    run = subprocess.run([sys.executable, "-m", "neuro_deploy", "convert", str(LIF_DIR / "lif_norse.nir"),
                          "-o", str(tmp_path / "lif.net"), "--calibrate", str(tmp_path / "x.npy"), "--dt", "1e-4"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "dt = 0.0001 s (--dt)" in run.stdout
    out = subprocess.run([sys.executable, "-m", "neuro_deploy", "export", str(tmp_path / "lif.net"), "--nir",
                          str(tmp_path / "back.nir")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    graph = nir.read(str(tmp_path / "back.nir"))
    assert {type(n).__name__ for n in graph.nodes.values()} == {"Input", "Affine", "LIF", "Output"}


def graph_of(nodes: dict, edges: list[tuple[str, str]]) -> "nir.NIRGraph":
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def lif(shape: int | tuple[int, ...] = 1, **overrides) -> "nir.LIF":
    params = dict(tau=np.full(shape, 0.0025), r=np.ones(shape), v_leak=np.zeros(shape),
                  v_threshold=np.full(shape, 0.1), v_reset=np.zeros(shape))
    params.update(overrides)
    return nir.LIF(**params)


def io(n) -> dict:
    shape = np.array(n if isinstance(n, tuple) else (n,))
    return {"input": nir.Input(input_type={"input": shape}), "output": nir.Output(output_type={"output": shape})}


def per_neuron_tau():
    return graph_of({**io(2), "w": nir.Linear(weight=np.eye(2)), "lif": lif(2, tau=np.array([0.002, 0.003]))},
                    [("input", "w"), ("w", "lif"), ("lif", "output")])


def branch():
    return graph_of({**io(2), "a": nir.Linear(weight=np.eye(2)), "b": nir.Linear(weight=np.eye(2)),
                     "lif_a": lif(2), "lif_b": lif(2)},
                    [("input", "a"), ("input", "b"), ("a", "lif_a"), ("b", "lif_b"), ("lif_a", "output"),
                     ("lif_b", "output")])


def recurrent_with_delay():
    return graph_of({**io(2), "w": nir.Linear(weight=np.eye(2)), "lif": lif(2), "rec": nir.Linear(weight=np.eye(2)),
                     "delay": nir.Delay(delay=np.full(2, 2e-4))},
                    [("input", "w"), ("w", "lif"), ("lif", "rec"), ("rec", "delay"), ("delay", "w"),
                     ("lif", "output")])


def cycle_without_delay():
    return graph_of({**io(2), "a": nir.Linear(weight=np.eye(2)), "b": nir.Linear(weight=np.eye(2))},
                    [("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")])


def nested():
    inner = graph_of({**io(2), "w": nir.Linear(weight=np.eye(2)), "lif": lif(2)},
                     [("input", "w"), ("w", "lif"), ("lif", "output")])
    return graph_of({**io(2), "block": inner}, [("input", "block"), ("block", "output")])


def delay_before_conv():
    return graph_of({**io((2, 4, 4)), "delay": nir.Delay(delay=np.full((2, 4, 4), 1e-4)),
                     "conv": nir.Conv2d(input_shape=(4, 4), weight=np.ones((2, 2, 1, 1)), stride=1, padding=0,
                                        dilation=1, groups=1, bias=np.zeros(2)),
                     "lif": lif((2, 4, 4))},
                    [("input", "delay"), ("delay", "conv"), ("conv", "lif"), ("lif", "output")])


def nan_weight():
    return graph_of({**io(2), "w": nir.Linear(weight=np.array([[1.0, np.nan], [0.0, 1.0]])), "lif": lif(2)},
                    [("input", "w"), ("w", "lif"), ("lif", "output")])


def mismatched():
    return graph_of({**io(2), "w": nir.Linear(weight=np.ones((3, 2))), "lif": lif(2)},
                    [("input", "w"), ("w", "lif"), ("lif", "output")])


def conv_channels():
    return graph_of({**io((2, 4, 4)), "conv": nir.Conv2d(input_shape=(4, 4), weight=np.ones((2, 3, 1, 1)), stride=1,
                                                          padding=0, dilation=1, groups=1, bias=np.zeros(2)),
                     "lif": lif((2, 4, 4))},
                    [("input", "conv"), ("conv", "lif"), ("lif", "output")])


def single_node():
    return lif(2)


REFUSED = {  # graph (None: a file written below), the one line's fragments
    "per_neuron_tau": (per_neuron_tau, "node lif: tau differs across neurons"),
    "branch": (branch, "node input: 0 inputs and 2 outputs"),
    "recurrent": (recurrent_with_delay, "a recurrent loop"),
    "cycle": (cycle_without_delay, "the graph has a cycle without a delay"),
    "nested": (nested, "node block: a nested graph"),
    "delay_conv": (delay_before_conv, "node lif: a delay before a convolution"),
    "nan": (nan_weight, "node w: weight holds NaN"),
    "shapes": (mismatched, "mismatched shapes (Type inference error: type mismatch: w.output: [[3]] -> lif.input"),
    "conv_channels": (conv_channels, "mismatched shapes (Type inference error: type mismatch: input.output: [[2 4 4]] "
                                     "-> conv.input: [[3 4 4]]"),
    "single_node": (single_node, "single_node.nir is not a NIR graph"),
    "junk": (None, "is not a NIR graph"),
    "foreign_hdf5": (None, "is not a NIR graph"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_cli_refuses_what_it_cannot_convert_in_one_line_with_exit_2_writing_nothing(tmp_path, capsys, case):
    from test_cli import assert_one_line_error, run_cli

    build, message = REFUSED[case]
    model = tmp_path / f"{case}.nir"
    if case == "junk":
        model.write_bytes(b"not hdf5 at all")
    elif case == "foreign_hdf5":
        with h5py.File(model, "w") as f:
            f.create_dataset("weights", data=np.ones(3))
    else:
        nir.write(str(model), build())
    code, _, err = run_cli(capsys, "convert", model, "-o", tmp_path / "out.net")
    assert code == 2
    assert_one_line_error(code, err, message)
    assert list(tmp_path.iterdir()) == [model]  # no output, no temporary file left behind


def test_export_of_the_deployable_vlifnet_writes_its_lif_layers_and_names_what_nir_lacks_in_one_line(
        deployable16, tmp_path, capsys):
    from test_cli import run_cli

    from neuro_deploy.formats.netx import read_network
    from neuro_deploy.ir.graph import LIF

    code, out, err = run_cli(capsys, "export", deployable16, "--nir", tmp_path / "vlif.nir")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("not exported (NIR has no primitive for them): ")
    assert "graded relay layers (patch_embed.proj, ...)" in lines[0] and "10 NI-LIF layers" in lines[0]
    q = read_network(deployable16).quantized
    graph = nir.read(str(tmp_path / "vlif.nir"))
    lifs = {k for k, n in graph.nodes.items() if type(n).__name__ == "LIF"}
    left_out = {n for n in q.graph.nodes if isinstance(q.graph.nodes[n], LIF)} - lifs
    assert len(lifs) >= 15 and f"{len(lifs)} neuron layers" in out
    assert left_out and f"{len(left_out)} LIF (behind an upsampling, concatenating or delayed synapse)" in lines[0]
    for name in lifs:
        (syn,) = q.graph.inputs(name)
        (src,) = q.graph.inputs(syn)
        qs, p = q.synapses[syn], q.layers[name].params
        assert np.array_equal(graph.nodes[f"{name}.conv"].weight, qs.mantissa * 2.0 ** qs.shift)
        assert np.all(graph.nodes[name].v_threshold == p.vth)
        assert np.allclose(graph.nodes[name].tau * p.dv / 4096, 1e-4)
        # the layer it reads: an exported neuron, or an Input standing for the relay or NI-LIF layer
        assert (src, f"{name}.conv") in graph.edges
        assert src in lifs or type(graph.nodes[src]).__name__ == "Input"


def conv_delay_dense_graph(rng: np.random.Generator) -> "nir.NIRGraph":
    """Conv2d-LIF, then Flatten-Delay-Affine-LIF: a conv block and a delayed dense block in netx."""
    return graph_of({"input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
                     "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.5, (4, 2, 3, 3)), stride=1,
                                        padding=1, dilation=1, groups=1, bias=np.zeros(4)),
                     "lif1": lif((4, 8, 8)),
                     "flat": nir.Flatten(input_type={"input": np.array([4, 8, 8])}, start_dim=0, end_dim=-1),
                     "delay": nir.Delay(delay=np.full(256, 2e-4)),
                     "fc": nir.Affine(weight=rng.normal(0, 0.3, (10, 256)), bias=np.zeros(10)), "lif2": lif(10),
                     "output": nir.Output(output_type={"output": np.array([10])})},
                    [("input", "conv"), ("conv", "lif1"), ("lif1", "flat"), ("flat", "delay"), ("delay", "fc"),
                     ("fc", "lif2"), ("lif2", "output")])


def test_plan_runs_on_a_nir_converted_network(tmp_path, capsys):
    import json

    from test_cli import run_cli

    rng = np.random.default_rng(0)
    nir.write(str(tmp_path / "cd.nir"), conv_delay_dense_graph(rng))
    np.save(tmp_path / "x.npy", (rng.random((20, 2, 8, 8)) < 0.3).astype(np.float32))
    code, _, err = run_cli(capsys, "convert", tmp_path / "cd.nir", "-o", tmp_path / "cd.net",
                           "--calibrate", tmp_path / "x.npy")
    assert code == 0, err
    code, out, err = run_cli(capsys, "plan", tmp_path / "cd.net", "--input", tmp_path / "x.npy", "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["activity"] == "input" and plan["fits"]
    layers = [(lp["kind"], lp["neurons"], lp["synapse_kinds"]) for lp in plan["layers"]]
    assert layers == [("input", 128, []), ("lif", 256, ["Conv"]), ("lif", 10, ["DelayDense"])]
    assert plan["cores"] == sum(lp["cores"] for lp in plan["layers"]) >= 2


def test_simulate_energy_inspect_and_view_run_on_a_nir_converted_network(tmp_path, capsys):
    import json

    from test_cli import run_cli

    rng = np.random.default_rng(1)
    nir.write(str(tmp_path / "cd.nir"), conv_delay_dense_graph(rng))
    np.save(tmp_path / "x.npy", (rng.random((20, 2, 8, 8)) < 0.3).astype(np.float32))
    assert run_cli(capsys, "convert", tmp_path / "cd.nir", "-o", tmp_path / "cd.net", "--calibrate",
                   tmp_path / "x.npy")[0] == 0
    code, _, err = run_cli(capsys, "simulate", tmp_path / "cd.net", "--input", tmp_path / "x.npy",
                           "-o", tmp_path / "out.npy", "--dump", tmp_path / "all.npz")
    assert code == 0, err
    out, every = np.load(tmp_path / "out.npy"), np.load(tmp_path / "all.npz")
    assert out.shape[0] == 20 and len(every.files) == 3 and any(every[k].any() for k in every.files)
    code, report, err = run_cli(capsys, "energy", tmp_path / "cd.net", "--input", tmp_path / "x.npy",
                                "--format", "json")
    assert code == 0, err
    assert json.loads(report)["total"]["energy_per_image_pj"]["loihi"] > 0
    code, rows, err = run_cli(capsys, "inspect", tmp_path / "cd.net", "--json")
    assert code == 0 and [r["type"] for r in json.loads(rows)] == ["input", "lif", "lif"], err
    code, _, err = run_cli(capsys, "view", tmp_path / "cd.net", "--export-only", "-o", tmp_path / "cd.onnx")
    assert code == 0 and (tmp_path / "cd.onnx").stat().st_size > 0, err
