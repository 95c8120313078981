"""lava-dl's own networks (shipped in its wheel), read into the same graph IR as converted networks:
the fast back end equals neuro-deploy's Lava back end and lava-dl's netx (the independent oracle)
event for event in every layer, and reproduces the Loihi ground truths next to them; bad netx
files and inputs are one-line errors."""

from __future__ import annotations

import multiprocessing
import shutil
import sysconfig
from pathlib import Path

import h5py
import numpy as np
import pytest

from neuro_deploy.backends.fast import run_free
from neuro_deploy.backends.lava import LavaRun, run_lava
from neuro_deploy.counting.counts import KEYS, NetworkCounter
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.network_file import NetworkFile
from neuro_deploy.formats.netx import read_network
from neuro_deploy.ir.graph import Input
from neuro_deploy.ir.quantized import Drive
from neuro_deploy.run.simulate import simulate

from netx_oracle import import_netx, run_netx
from test_cli import assert_one_line_error, run_cli

#: lava-dl installs its tests, networks and Loihi ground truths next to the packages.
NETX_TESTS = Path(sysconfig.get_paths()["purelib"]) / "tests" / "lava" / "lib" / "dl" / "netx"
GTS = NETX_TESTS / "gts"
PILOTNET_LIF_RESET = 17  # the period the pilotnet_lif ground truth was recorded with (16 diverges at step 19)
PILOTNET_LIF_STEPS = 24  # the ground truth's length
#: the ground-truth names of pilotnet_lif's layers after the input, in order; fc-3's files come
#: from another run (they disagree with fc-2's spikes) and are not compared.
PILOTNET_LIF_LAYERS = ["conv-0", "conv-1", "conv-2", "conv-3", "conv-4", "fc-0", "fc-1", "fc-2"]
LOIHI_SPIKE_V = 128  # what Loihi reports as the voltage of a neuron in the step it spikes (Lava: 0)


def shipped(name: str) -> Path:
    path = NETX_TESTS / name
    if not path.is_file():
        pytest.skip(f"lava-dl's test networks are not installed ({path} not found)")
    return path


class Fast:
    """The fast back end's run: every layer's events `[steps, *file shape]`, and LIF `u`, `v` per step."""

    def __init__(self, net: NetworkFile, x: np.ndarray, drive: Drive) -> None:
        q = net.quantized
        shapes = net.meta["shapes"]
        self.events: dict[str, np.ndarray] = {}
        states: dict[str, list] = {}

        def keep(node, value) -> None:
            if node.name in q.layers:
                self.events[node.name] = value[:, 0].numpy().astype(np.int32).reshape(drive.steps, *shapes[node.name])

        run_free(q, _as3(net, x, drive), drive, keep, states)
        self.u = {n: np.stack([u[0].numpy() for u, _ in s]).reshape(drive.steps, *shapes[n]) for n, s in states.items()}
        self.v = {n: np.stack([v[0].numpy() for _, v in s]).reshape(drive.steps, *shapes[n]) for n, s in states.items()}

    def neurons(self, net: NetworkFile) -> list[np.ndarray]:
        """The events of the layers with neurons (netx's blocks), in order."""
        return [self.events[n] for n in neuron_layers(net)]


def _as3(net: NetworkFile, x: np.ndarray, drive: Drive) -> np.ndarray:
    """The input in the graph's 3-D shapes."""
    shape = net.quantized.graph.nodes[net.quantized.graph.topological()[0]].shape
    return x.reshape(shape if drive.as_bias or x.shape == tuple(net.meta["input_shape"]) else (len(x), *shape))


def neuron_layers(net: NetworkFile) -> list[str]:
    q = net.quantized
    return [n for n in q.layers if not isinstance(q.graph.nodes[n], Input)]


def lava(net: NetworkFile, x: np.ndarray, drive: Drive, probe_u: tuple[str, ...] = ()) -> LavaRun:
    """neuro-deploy's Lava back end (Lava's own processes, built from the graph IR)."""
    run = run_lava(net.path, _as3(net, x, drive), drive, tuple(net.meta["skip"]), probe_u)
    assert not multiprocessing.active_children()
    return run


def assert_same_events(fast: list[np.ndarray], other: list[np.ndarray]) -> None:
    assert len(fast) == len(other)
    for k, (f, v) in enumerate(zip(fast, other)):
        assert f.shape == v.shape, (k, f.shape, v.shape)
        mismatch = np.argwhere(f != v)
        assert not mismatch.size, f"layer {k}: {len(mismatch)} events differ, first at step {mismatch[0][0] + 1}"
    assert sum(int(np.count_nonzero(f)) for f in fast) > 0


def simulated_on_lava(net: NetworkFile, x: np.ndarray, drive: Drive) -> dict[str, np.ndarray]:
    """`neuro-deploy simulate --backend lava` (the `simulate` the command calls): every layer's
    events `[steps, *file shape]`, the output layer's among them."""
    run = simulate(net, x, "lava", keep_events=True, drive=drive)
    assert not multiprocessing.active_children()
    assert sorted(run.events) == sorted(net.quantized.layers) and run.steps == drive.steps
    assert np.array_equal(run.output, run.events[neuron_layers(net)[-1]])
    return run.events


def assert_netx_agrees(net: NetworkFile, x: np.ndarray, drive: Drive, fast: Fast, **netx_options) -> None:
    """lava-dl's netx gives the fast back end's events in every block at every step."""
    oracle = run_netx(Path(net.path), x, drive.steps, tuple(net.meta["input_shape"]), as_bias=drive.as_bias, reset_interval=drive.reset_interval,
                      num_layers=net.meta["num_layers"], **netx_options)
    assert_same_events(fast.neurons(net), [e.reshape(f.shape) for e, f in zip(oracle, fast.neurons(net))])


def assert_three_agree(net: NetworkFile, x: np.ndarray, drive: Drive, **netx_options) -> tuple[Fast, LavaRun]:
    """Fast == neuro-deploy's Lava == lava-dl's netx, in every layer at every step."""
    fast = Fast(net, x, drive)
    ours = lava(net, x, drive)
    names = list(net.quantized.layers)
    assert_same_events([fast.events[n] for n in names],
                       [ours.events[n].reshape(drive.steps, *net.meta["shapes"][n]) for n in names])
    assert_netx_agrees(net, x, drive, fast, **netx_options)
    return fast, ours


# --- tiny.net, mnist.net, pilotnet_sdnn: fast back end == Lava, and lava-dl's own references


def test_tinynet_three_back_ends_agree_and_match_ground_truth():
    """Driven as lava-dl's test_hdf5 drives it: the image as the input neurons' bias, layer i
    reset every 17 steps at offset i + 1; its output at steps 3..17 is the Loihi ground truth."""
    net = read_network(shipped("tiny.net"))
    bias = np.load(GTS / "tinynet" / "input_bias.npy").T  # stored in Lava's (W, H, C)
    steps = 17 + len(neuron_layers(net))
    fast, _ = assert_three_agree(net, bias, Drive(steps, as_bias=True, reset_interval=17))
    gt = np.load(GTS / "tinynet" / "output.npy")[0][..., 1:]  # (C, H, W, T)
    assert gt.any()
    assert np.array_equal(fast.neurons(net)[-1][2:17], gt.transpose(3, 0, 1, 2))


@pytest.mark.slow  # CI time: tiny, pilotnet and ntidigits run the three back ends in make test
def test_mnist_three_back_ends_agree_and_output_current():
    """Random spike frames; the output layer (netx's default neuron) never spikes, so its current is compared."""
    net = read_network(shipped("mnist.net"))
    frames = (np.random.default_rng(0).random((12, 784)) < 0.3).astype(np.int64) * 100
    drive = Drive(16)
    fast, _ = assert_three_agree(net, frames, drive)
    ours = lava(net, frames, drive, probe_u=("layer/3",))
    assert fast.u["layer/3"][-1].any()
    assert np.array_equal(ours.u["layer/3"].reshape(-1), fast.u["layer/3"][-1])


@pytest.mark.slow  # CI time: pilotnet_lif runs the three back ends against Loihi in make test
def test_pilotnet_sdnn_three_back_ends_agree_and_match_ground_truth():
    """Graded (sigma-delta) spikes in every layer; the Sigma output is lava-dl's reference."""
    net = read_network(shipped("gts/pilotnet_sdnn/network.net"))
    image = np.load(GTS / "pilotnet_sdnn" / "input.npy")[..., 0].T  # one frame, repeated every step
    fast, _ = assert_three_agree(net, image, Drive(len(neuron_layers(net))))
    gt = np.load(GTS / "pilotnet_sdnn" / "output.npy")
    assert np.array_equal(fast.neurons(net)[-1].T, gt)


@pytest.mark.parametrize("name", ["tiny.net", pytest.param("mnist.net", marks=pytest.mark.slow)])  # CI time
def test_input_layer_without_neuron_feeds_the_first_synapse(tmp_path, name):
    """Without an input neuron, netx wires the input straight to the first conv or dense synapse."""
    net = read_network(edited_copy(tmp_path, name, lambda f: f["layer/0"].__delitem__("neuron")))
    assert isinstance(net.quantized.graph.nodes["layer/0"], Input)
    frames = (np.random.default_rng(1).random((8, *net.meta["input_shape"])) < 0.5).astype(np.int64)
    assert_three_agree(net, frames, Drive(10, reset_interval=6))


# --- pilotnet_lif: per-layer currents against the Loihi ground truth


@pytest.fixture(scope="module")
def pilotnet_lif():
    net = read_network(shipped("gts/pilotnet_lif/network.net"))
    image = np.load(GTS / "pilotnet_lif" / "image.npy").T  # the input neurons' bias, as in test_hdf5_nx
    drive = Drive(PILOTNET_LIF_STEPS, as_bias=True, reset_interval=PILOTNET_LIF_RESET)
    return net, image, drive, Fast(net, image, drive)


def ground_truth(name: str) -> np.ndarray:
    return np.load(GTS / "pilotnet_lif" / f"{name}.npy")


def test_pilotnet_lif_fast_matches_loihi_at_every_step(pilotnet_lif):
    """u and spikes of the input and every layer equal Loihi's at all 24 steps (index t-1 is
    the state after step t); v too, except that Loihi reports a spiking neuron's v as 128.
    The ground truths are in Lava's order, reversed shape and time last: `[steps, *shape].T`."""
    net, _, _, fast = pilotnet_lif
    layers = neuron_layers(net)
    assert np.array_equal(fast.events[layers[0]].T, ground_truth("input"))
    for layer, name in zip(layers[1:], PILOTNET_LIF_LAYERS):
        spikes = ground_truth(name)
        assert spikes.any(), name
        shape = spikes.shape  # fc layers are stored (N, T)
        assert np.array_equal(fast.events[layer].T.reshape(shape), spikes), name
        assert np.array_equal(fast.u[layer].T.reshape(shape), ground_truth(f"{name}-u")), name
        v = np.where(fast.events[layer] != 0, LOIHI_SPIKE_V, fast.v[layer])
        assert np.array_equal(v.T.reshape(shape), ground_truth(f"{name}-v")), name


def test_pilotnet_lif_lava_and_netx_equal_fast_and_loihi(pilotnet_lif):
    """neuro-deploy's Lava back end and netx give the fast back end's events at every step; Lava's
    final currents equal the fast back end's and Loihi's."""
    net, image, drive, fast = pilotnet_lif
    layers = tuple(neuron_layers(net)[1:len(PILOTNET_LIF_LAYERS) + 1])
    ours = lava(net, image, drive, probe_u=layers)
    assert_same_events([fast.events[n] for n in net.quantized.layers],
                       [ours.events[n].reshape(fast.events[n].shape) for n in net.quantized.layers])
    oracle = run_netx(Path(net.path), image, drive.steps, tuple(net.meta["input_shape"]), as_bias=True, reset_interval=drive.reset_interval)
    assert_same_events(fast.neurons(net), [e.reshape(f.shape) for e, f in zip(oracle, fast.neurons(net))])
    for layer, name in zip(layers, PILOTNET_LIF_LAYERS):
        assert np.array_equal(ours.u[layer].reshape(-1), fast.u[layer][-1].reshape(-1)), name
        gt = ground_truth(f"{name}-u")[..., -1]
        assert np.array_equal(ours.u[layer].T.reshape(gt.shape), gt), name


# --- bad netx files


def edited_copy(tmp_path: Path, name: str, edit) -> Path:
    path = tmp_path / Path(name).name
    shutil.copy(shipped(name), path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def set_type(group: h5py.Group, kind: str) -> None:
    del group["type"]
    group.create_dataset("type", data=np.array([kind.encode()], dtype="S10"))


@pytest.mark.parametrize(("edit", "fragments"), [
    (lambda f: set_type(f["layer/1"], "pool"), ["/layer/1/type", "'pool'", "netx cannot build"]),
    (lambda f: set_type(f["layer/2"], "dense_rec"), ["/layer/2/type", "'dense_rec'", "not supported"]),
    (lambda f: set_type(f["layer/1/neuron"], "ALIF"), ["/layer/1/neuron/type", "'ALIF'"]),
    (lambda f: f["layer/1"].__delitem__("stride"), ["/layer/1/stride is missing"]),
    (lambda f: f["layer/2/neuron"].__delitem__("vThMant"), ["/layer/2/neuron/vThMant is missing"]),
    (lambda f: f["layer"].__delitem__("1"), ["/layer/1 is missing"]),
    (lambda f: f.__delitem__("layer"), ["/layer is missing"]),
    (lambda f: f["layer/1/shape"].__setitem__(..., [24, 7, 7]), ["/layer/1/shape", "[24, 6, 6]"]),
    (lambda f: f["layer/2/bias"].__setitem__(..., np.nan), ["/layer/2/bias", "non-finite"]),
], ids=["pool", "dense_rec", "neuron-type", "stride", "vThMant", "layer", "no-layers", "shape", "nan-bias"])
def test_bad_netx_file_is_one_line_naming_file_layer_and_key(tmp_path, edit, fragments):
    path = edited_copy(tmp_path, "tiny.net", edit)
    with pytest.raises(NeuroDeployError) as err:
        read_network(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message


def test_truncated_netx_file_is_one_line(tmp_path):
    path = tmp_path / "mnist.net"
    path.write_bytes(shipped("mnist.net").read_bytes()[:100_000])
    with pytest.raises(NeuroDeployError, match=r"mnist\.net is not a readable HDF5 file \(.*truncated") as err:
        read_network(path)
    assert "\n" not in str(err.value)


# --- neuro-deploy simulate on a plain netx file


def test_cli_simulates_tiny_on_both_backends(capsys, tmp_path):
    net = shipped("tiny.net")
    frames = (np.random.default_rng(3).random((10, 3, 16, 16)) < 0.5).astype(np.int64) * 40
    np.save(tmp_path / "frames.npy", frames)
    results = {}
    for backend in ("fast", "lava"):
        out, dump = tmp_path / f"{backend}.npy", tmp_path / f"{backend}.npz"
        code, stdout, err = run_cli(capsys, "simulate", net, "--input", tmp_path / "frames.npy", "-o", out,
                                    "--backend", backend, "--dump", dump)
        assert code == 0, err
        assert f"wrote {out}" in stdout
        with np.load(dump) as events:
            results[backend] = np.load(out), {k: events[k] for k in events.files}
    (fast_out, fast_dump), (lava_out, lava_dump) = results["fast"], results["lava"]
    assert fast_out.shape == (10, 36, 1, 1) and fast_out.any()  # exactly T steps
    assert sorted(fast_dump) == ["input", "layer/0", "layer/1", "layer/2"]
    assert np.array_equal(fast_dump["layer/2"], fast_out)
    assert np.array_equal(fast_out, lava_out)
    assert all(np.array_equal(fast_dump[k], lava_dump[k]) for k in fast_dump)
    direct = Fast(read_network(net), frames, Drive(10))
    assert all(np.array_equal(fast_dump[name], e) for name, e in direct.events.items())


def test_cli_constant_input_runs_tsample_or_steps(capsys, tmp_path):
    net = shipped("tiny.net")
    np.save(tmp_path / "x.npy", np.full((3, 16, 16), 30))
    for extra, steps in (((), 64), (("--steps", "5"), 5)):  # tiny.net's /simulation/tSample is 64
        code, _, err = run_cli(capsys, "simulate", net, "--input", tmp_path / "x.npy", "-o", tmp_path / "o.npy",
                               *extra)
        assert code == 0, err
        assert np.load(tmp_path / "o.npy").shape == (steps, 36, 1, 1)


@pytest.mark.parametrize(("x", "extra", "fragments"), [
    (np.zeros((3, 15, 16)), (), ["shape (3, 15, 16)", "(3, 16, 16)"]),
    (np.zeros((4, 3, 16, 16)), ("--steps", "6"), ["--steps 6", "4 frames"]),
    (np.zeros((3, 16, 16)), ("--steps", "0"), ["--steps 0"]),
    (np.full((3, 16, 16), 0.5), (), ["integer values"]),
    (np.zeros((3, 16, 16)), ("--target", "t.png"), ["--target"]),
], ids=["shape", "steps-vs-frames", "no-steps", "fractions", "target"])
def test_cli_bad_netx_input_is_one_line_and_writes_nothing(capsys, tmp_path, x, extra, fragments):
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "o.npy"
    code, _, err = run_cli(capsys, "simulate", shipped("tiny.net"), "--input", tmp_path / "x.npy", "-o", out, *extra)
    assert_one_line_error(code, err, *fragments)
    assert not out.exists() and not list(tmp_path.glob(".o.npy*"))


def test_cli_netx_output_must_be_npy(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 16, 16)))
    code, _, err = run_cli(capsys, "simulate", shipped("tiny.net"), "--input", tmp_path / "x.npy",
                           "-o", tmp_path / "o.png")
    assert_one_line_error(code, err, "o.png", ".npy")
    assert not (tmp_path / "o.png").exists()


# --- synaptic delays: lava-dl's ntidigits (axonal delays, Loihi ground truth) and a synthetic chain

NTIDIGITS_LAVA_STEPS = 200  # `make test`'s Lava run; the output layer spikes from step 21 on
#: netx's part of it, shorter (netx's run costs by the step): 80 steps pass every delay (<= 62)
NTIDIGITS_NETX_STEPS = 80


@pytest.fixture(scope="module")
def ntidigits():
    """ntidigits as lava-dl's test_axonal_delay_ntidigits runs it: its trailing `average` layer
    dropped (netx cannot build it), the (64, 3000) input fed to the first dense synapse, one column
    per step, for 3000 steps. Frames here are `[steps, *input_shape]` = `[3000, 1, 1, 64]`."""
    path = shipped("gts/ntidigits/ntidigits.net")
    net = read_network(path, skip=("average",))
    frames = np.load(GTS / "ntidigits" / "input.npy").T.reshape(-1, *net.meta["input_shape"]).astype(np.int64)
    return path, net, frames


def test_ntidigits_delays_are_read_as_netx_reads_them(ntidigits):
    """Its 1-D (256,) delays are per output (axonal); the matrices equal the DelayDense netx builds."""
    path, net, _ = ntidigits
    graph = net.quantized.graph
    layers = neuron_layers(net)
    assert layers == ["layer/2", "layer/3", "layer/4"] and net.meta["num_layers"] == 5
    synapses = [graph.nodes[graph.inputs(n)[0]] for n in layers]
    with h5py.File(path) as f:
        for name, syn in zip(layers[:2], synapses):
            per_output = f[f"{name}/delay"][()]
            delays = syn.delays.reshape(syn.weight.shape[0], -1)
            assert np.array_equal(delays, np.repeat(per_output[:, None], delays.shape[1], axis=1))
    assert synapses[2].delays is None
    netx_net = import_netx().hdf5.Network(net_config=str(path), num_layers=net.meta["num_layers"])
    for syn, block in zip(synapses, netx_net.layers):
        delays = getattr(block.synapse, "delays", None)
        assert (delays is None) == (syn.delays is None)
        assert delays is None or np.array_equal(delays.init, syn.delays.reshape(delays.init.shape))


def assert_ntidigits_ground_truth(output: np.ndarray) -> None:
    """ntidigits' output layer `[steps, 242]` from step 1 equals the Loihi ground truth, which is one
    step later: gt[:, t + 1] == output[t] in Lava's (242, 3000) order, and gt[:, 0] is empty."""
    gt = np.load(GTS / "ntidigits" / "output.npy")
    output = output.reshape(len(output), -1).T
    steps = output.shape[1]
    assert output.shape[0] == gt.shape[0] and steps <= gt.shape[1] and gt[:, 1:steps + 1].any()
    assert not gt[:, 0].any()
    assert np.array_equal(output[:, :gt.shape[1] - 1], gt[:, 1:steps + 1])
    assert steps < gt.shape[1] or not output[:, -1].any()  # the last step has no ground truth left


def test_ntidigits_three_back_ends_agree_and_count_alike(ntidigits):
    """Every layer's events at every step of the first 200 on the fast back end and on Lava as
    `simulate --backend lava` runs it (of the first 80 on netx); Lava's output is Loihi's; the
    energy counts agree. The run without delays differs, so the delays are what is compared."""
    path, net, frames = ntidigits
    drive = Drive(NTIDIGITS_LAVA_STEPS)
    x = frames[:drive.steps]
    fast = Fast(net, x, drive)
    ours = simulated_on_lava(net, x, drive)
    names = list(net.quantized.layers)
    assert len(names) == 4
    assert_same_events([fast.events[n] for n in names], [ours[n] for n in names])
    netx_drive = Drive(NTIDIGITS_NETX_STEPS)
    head = x[:netx_drive.steps]
    assert_netx_agrees(net, head, netx_drive, Fast(net, head, netx_drive))
    assert_ntidigits_ground_truth(ours["layer/4"])
    output = fast.events["layer/4"]
    assert not output[:20].any() and output[20].any() and output.sum() > 1000
    graph_shapes = {n: (drive.steps, *net.quantized.graph.nodes[n].shape) for n in names}
    counter = NetworkCounter(net, drive.steps)
    fast_counts = counter.count({n: fast.events[n].reshape(graph_shapes[n]) for n in names})
    lava_counts = counter.count({n: ours[n].reshape(graph_shapes[n]) for n in names})
    for p, q in zip(fast_counts.layers, lava_counts.layers):
        assert all(np.array_equal(p.per_step[k], q.per_step[k]) for k in KEYS), p.name
    assert fast_counts.layers[1].synops > 0
    undelayed = read_network(path, skip=("average",))
    for syn in undelayed.quantized.graph.nodes.values():
        if getattr(syn, "delays", None) is not None:
            syn.delays = None
    assert not np.array_equal(Fast(undelayed, x, drive).events["layer/4"], output)


@pytest.mark.slow
def test_ntidigits_lava_equals_fast_in_every_layer_and_loihi_full_run(ntidigits):
    """All 3000 steps (DelayDense sums 63 delay slots every step), as `simulate --backend lava`
    runs them: every layer equals the fast back end's, the output Loihi's."""
    _, net, frames = ntidigits
    drive = Drive(len(frames))
    ours = simulated_on_lava(net, frames, drive)
    fast = Fast(net, frames, drive)
    assert_same_events([fast.events[n] for n in net.quantized.layers], [ours[n] for n in net.quantized.layers])
    assert_ntidigits_ground_truth(ours["layer/4"])


def test_ntidigits_reproduces_loihi_ground_truth(ntidigits):
    """The fast back end's output over all 3000 steps. lava-dl's own test compares only
    `output[:, -1]` with `gt[:, 1]` (test_hdf5.py:258), which this includes."""
    _, net, frames = ntidigits
    output = Fast(net, frames, Drive(len(frames))).events["layer/4"]
    assert len(output) == 3000 and output.sum() > 20_000
    assert_ntidigits_ground_truth(output)
    gt = np.load(GTS / "ntidigits" / "output.npy")
    assert not np.abs(output.T[:, -1] - gt[:, 1]).sum()  # lava-dl's check


def test_cli_ntidigits_needs_skip_layer(capsys, tmp_path, ntidigits):
    """Without --skip-layer: one line naming the layer, its type and the option; with it, the
    output layer's events, equal to the fast run, and an energy report."""
    path, net, frames = ntidigits
    np.save(tmp_path / "x.npy", frames[:60])
    out = tmp_path / "o.npy"
    code, _, err = run_cli(capsys, "simulate", path, "--input", tmp_path / "x.npy", "-o", out)
    assert code == 2
    assert_one_line_error(code, err, "/layer/5/type is 'average'", "not supported", "--skip-layer average drops it")
    assert not out.exists()
    code, stdout, err = run_cli(capsys, "simulate", path, "--input", tmp_path / "x.npy", "-o", out,
                                "--skip-layer", "average")
    assert code == 0, err
    assert f"wrote {out}" in stdout
    assert np.array_equal(np.load(out), Fast(net, frames[:60], Drive(60)).events["layer/4"])
    code, _, err = run_cli(capsys, "energy", path, "--input", tmp_path / "x.npy", "--format", "json")
    assert_one_line_error(code, err, "--skip-layer average")
    code, stdout, err = run_cli(capsys, "energy", path, "--input", tmp_path / "x.npy", "--format", "json",
                                "--skip-layer", "average")
    assert code == 0, err
    assert "layer/4" in stdout


def test_count_file_with_skip(tmp_path, ntidigits):
    from neuro_deploy.counting.run import count_file

    path, net, frames = ntidigits
    np.save(tmp_path / "x.npy", frames[:50])
    counts = count_file(path, tmp_path / "x.npy", skip=("average",))
    assert [layer.name for layer in counts.layers] == ["layer/0", "layer/2", "layer/3", "layer/4"]
    assert counts.steps == 50
    events = Fast(net, frames[:50], Drive(50)).events
    assert [layer.total("spikes_out") for layer in counts.layers] == \
        [int(np.count_nonzero(events[layer.name])) for layer in counts.layers]


@pytest.mark.parametrize(("skip", "fragments"), [
    (("dense",), ["/layer/2/type is 'dense'", "--skip-layer dense drops only trailing layers", "/layer/5 (average)"]),
    (("dense", "average"), ["no layer with neurons left after --skip-layer"]),
    (("averge",), ["--skip-layer 'averge'", "not a netx layer type"]),
], ids=["not-last", "everything", "unknown"])
def test_bad_skip_is_one_line(capsys, tmp_path, ntidigits, skip, fragments):
    path, _, frames = ntidigits
    with pytest.raises(NeuroDeployError) as err:
        read_network(path, skip)
    assert "\n" not in str(err.value)
    np.save(tmp_path / "x.npy", frames[:5])
    code, _, err = run_cli(capsys, "simulate", path, "--input", tmp_path / "x.npy", "-o", tmp_path / "o.npy",
                           *(arg for kind in skip for arg in ("--skip-layer", kind)))
    assert code == 2
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "o.npy").exists()


def write_delay_chain(path: Path) -> Path:
    """A dense chain with every form of delay netx reads: a full matrix (one entry of 70, which
    netx clips to 62), one scalar, and one per input into netx's default (never spiking) neuron."""
    rng = np.random.default_rng(0)
    cuba = {"iDecay": 1024, "vDecay": 128, "vThMant": 300}
    with h5py.File(path, "w") as f:
        def layer(i: int, kind: str, shape: list[int], weight=None, delay=None, neuron: bool = True) -> None:
            g = f.create_group(f"layer/{i}")
            g.create_dataset("type", data=np.array([kind.encode()], dtype="S10"))
            g.create_dataset("shape", data=np.array(shape))
            if weight is not None:
                g.create_dataset("weight", data=weight.astype(np.float32))
                g.create_dataset("delay", data=delay)
            if weight is not None and neuron:
                g.create_dataset("neuron/type", data=b"CUBA")
                for key, value in cuba.items():
                    g.create_dataset(f"neuron/{key}", data=value)

        w = rng.integers(-120, 255, (16, 12))
        w[rng.random(w.shape) < 0.2] = 0
        layer(0, "input", [1, 1, 12])
        layer(1, "flatten", [12, 1, 1])
        delay = np.where(np.eye(16, 12) > 0, 70, rng.integers(0, 63, (16, 12))).astype(np.float32)
        layer(2, "dense", [16, 1, 1], w, delay)
        layer(3, "dense", [10, 1, 1], rng.integers(-9, 13, (10, 16)), np.float32(3))
        layer(4, "dense", [6, 1, 1], rng.integers(-40, 80, (6, 10)), rng.integers(0, 9, 10), neuron=False)
    return path


@pytest.mark.slow  # CI time: ntidigits runs Lava's delays in make test
def test_synthetic_delay_chain_three_back_ends_agree(tmp_path):
    """Events of every layer and step, and the final current of the integrating output layer."""
    path = write_delay_chain(tmp_path / "delays.net")
    with pytest.warns(UserWarning, match=r"/layer/2/delay: the largest delay 70\.0 is clipped to 62"):
        net = read_network(path)
    graph = net.quantized.graph
    first, second, last = (graph.nodes[f"layer/{i}.synapse"] for i in (2, 3, 4))
    d = first.delays.reshape(16, 12)
    assert d.max() == 62 and d[0, 0] == 62 and np.unique(d).size > 40
    assert np.array_equal(second.delays.reshape(10, 16), np.full((10, 16), 3))
    d = last.delays.reshape(6, 10)
    assert np.array_equal(d, np.tile(d[0], (6, 1))) and np.unique(d).size > 3
    assert {net.quantized.synapses[s.name].shift for s in (second, last)} != {0}
    frames = (np.random.default_rng(1).random((90, 1, 1, 12)) < 0.15).astype(np.int64)
    drive = Drive(90)
    with pytest.warns(UserWarning, match="Clamping the delays"):  # netx's own warning (hdf5.py:428)
        fast, _ = assert_three_agree(net, frames, drive)
    ours = lava(net, frames, drive, probe_u=("layer/4",))
    assert all(fast.events[n].any() for n in ("layer/2", "layer/3")) and fast.u["layer/4"][-1].any()
    assert np.array_equal(ours.u["layer/4"].reshape(-1), fast.u["layer/4"][-1])
    for syn in (first, second, last):
        syn.delays = None
    assert not np.array_equal(Fast(net, frames, drive).events["layer/3"], fast.events["layer/3"])
