"""lava-dl's own networks (shipped in its wheel): the fast back end equals Lava event for event
in every layer, and reproduces the Loihi ground truth next to them; bad netx files and inputs
are one-line errors."""

from __future__ import annotations

import dataclasses
import multiprocessing
import shutil
import sysconfig
from pathlib import Path

import h5py
import numpy as np
import pytest

from neuro_deploy.energy.counts import KEYS, ChainCounter
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.netx_chain import import_netx, read_chain
from neuro_deploy.sim.chain_fast import run_chain_fast

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


def assert_same_events(fast: list[np.ndarray], lava: list[np.ndarray]) -> None:
    assert len(fast) == len(lava)
    for k, (f, v) in enumerate(zip(fast, lava)):
        assert f.shape == v.shape, k
        mismatch = np.argwhere(f != v)
        assert not mismatch.size, f"layer {k}: {len(mismatch)} events differ, first at step {mismatch[0][0] + 1}"
    assert sum(int(np.count_nonzero(f)) for f in fast) > 0


def run_lava(*args, **kwargs):
    from neuro_deploy.sim.chain_lava import run_chain_lava

    run = run_chain_lava(*args, **kwargs)
    assert not multiprocessing.active_children()
    return run


# --- tiny.net, mnist.net, pilotnet_sdnn: fast back end == Lava, and lava-dl's own references


def test_tinynet_fast_equals_lava_and_ground_truth():
    """Driven as lava-dl's test_hdf5 drives it: the image as the input neurons' bias, layer i
    reset every 17 steps at offset i + 1; its output at steps 3..17 is the Loihi ground truth."""
    chain = read_chain(shipped("tiny.net"))
    bias = np.load(GTS / "tinynet" / "input_bias.npy").T  # stored in Lava's (W, H, C)
    steps = 17 + len(chain.layers)
    fast = run_chain_fast(chain, bias, steps, as_bias=True, reset_interval=17)
    assert_same_events(fast.events, run_lava(chain, bias, steps, as_bias=True, reset_interval=17).events)
    gt = np.load(GTS / "tinynet" / "output.npy")[0][..., 1:]  # (C, H, W, T)
    assert gt.any()
    assert np.array_equal(fast.events[-1][2:17], gt.transpose(3, 0, 1, 2))


def test_mnist_fast_equals_lava_events_and_output_current():
    """Random spike frames; the output layer (netx's default neuron) never spikes, so its current is compared."""
    chain = read_chain(shipped("mnist.net"))
    frames = (np.random.default_rng(0).random((12, 784)) < 0.3).astype(np.int64) * 100
    steps = 16
    fast = run_chain_fast(chain, frames, steps, states=True)
    lava = run_lava(chain, frames, steps, probe_u=(3,))
    assert_same_events(fast.events, lava.events)
    assert fast.u[3][-1].any()
    assert np.array_equal(lava.u[3], fast.u[3][-1])


def test_pilotnet_sdnn_fast_equals_lava_and_ground_truth():
    """Graded (sigma-delta) spikes in every layer; the Sigma output is lava-dl's reference."""
    chain = read_chain(shipped("gts/pilotnet_sdnn/network.net"))
    image = np.load(GTS / "pilotnet_sdnn" / "input.npy")[..., 0].T  # one frame, repeated every step
    steps = len(chain.layers)
    fast = run_chain_fast(chain, image, steps)
    assert_same_events(fast.events, run_lava(chain, image, steps).events)
    gt = np.load(GTS / "pilotnet_sdnn" / "output.npy")
    assert np.array_equal(fast.events[-1].T, gt)


@pytest.mark.parametrize("name", ["tiny.net", "mnist.net"])
def test_input_layer_without_neuron_feeds_the_first_synapse(tmp_path, name):
    """Without an input neuron, netx wires the input straight to the first conv or dense synapse."""
    chain = read_chain(edited_copy(tmp_path, name, lambda f: f["layer/0"].__delitem__("neuron")))
    assert chain.layers[0].kind != "input"
    frames = (np.random.default_rng(1).random((8, *chain.input_shape)) < 0.5).astype(np.int64)
    fast = run_chain_fast(chain, frames, 10, reset_interval=6)
    assert_same_events(fast.events, run_lava(chain, frames, 10, reset_interval=6).events)


# --- pilotnet_lif: per-layer currents against the Loihi ground truth


@pytest.fixture(scope="module")
def pilotnet_lif():
    chain = read_chain(shipped("gts/pilotnet_lif/network.net"))
    image = np.load(GTS / "pilotnet_lif" / "image.npy").T  # the input neurons' bias, as in test_hdf5_nx
    fast = run_chain_fast(chain, image, PILOTNET_LIF_STEPS, as_bias=True, reset_interval=PILOTNET_LIF_RESET,
                          states=True)
    return chain, image, fast


def ground_truth(name: str) -> np.ndarray:
    return np.load(GTS / "pilotnet_lif" / f"{name}.npy")


def test_pilotnet_lif_fast_matches_loihi_at_every_step(pilotnet_lif):
    """u and spikes of the input and every layer equal Loihi's at all 24 steps (index t-1 is
    the state after step t); v too, except that Loihi reports a spiking neuron's v as 128.
    The ground truths are in Lava's order, reversed shape and time last: `[steps, *shape].T`."""
    chain, _, fast = pilotnet_lif
    assert np.array_equal(fast.events[0].T, ground_truth("input"))
    for k, name in enumerate(PILOTNET_LIF_LAYERS, start=1):
        spikes = ground_truth(name)
        assert spikes.any(), name
        shape = spikes.shape  # fc layers are stored (N, T)
        assert np.array_equal(fast.events[k].T.reshape(shape), spikes), name
        assert np.array_equal(fast.u[k].T.reshape(shape), ground_truth(f"{name}-u")), name
        v = np.where(fast.events[k] != 0, LOIHI_SPIKE_V, fast.v[k])
        assert np.array_equal(v.T.reshape(shape), ground_truth(f"{name}-v")), name


def test_pilotnet_lif_lava_equals_fast_and_loihi(pilotnet_lif):
    """Lava's events at every step, and its final currents, equal the fast back end's and Loihi's."""
    chain, image, fast = pilotnet_lif
    layers = tuple(range(1, len(PILOTNET_LIF_LAYERS) + 1))
    lava = run_lava(chain, image, PILOTNET_LIF_STEPS, as_bias=True, reset_interval=PILOTNET_LIF_RESET,
                    probe_u=layers)
    assert_same_events(fast.events, lava.events)
    for k, name in zip(layers, PILOTNET_LIF_LAYERS):
        assert np.array_equal(lava.u[k], fast.u[k][-1]), name
        gt = ground_truth(f"{name}-u")[..., -1]
        assert np.array_equal(lava.u[k].T.reshape(gt.shape), gt), name


def test_lava_failure_is_one_message_and_leaves_no_processes(monkeypatch):
    from neuro_deploy.lava_procs import recorder
    from neuro_deploy.sim.chain_lava import run_chain_lava

    def broken(self):
        if self.time_step == 3:
            raise ValueError("injected fault")
        original(self)

    original = recorder.PyEventRecorderModel.run_spk
    monkeypatch.setattr(recorder.PyEventRecorderModel, "run_spk", broken)
    chain = read_chain(shipped("tiny.net"))
    with pytest.raises(NeuroDeployError, match=r"Lava run of .*tiny\.net failed: ValueError: injected fault") as err:
        run_chain_lava(chain, np.ones(chain.input_shape, np.int64), 5)
    assert "\n" not in str(err.value)
    assert not multiprocessing.active_children()


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
        read_chain(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message


def test_truncated_netx_file_is_one_line(tmp_path):
    path = tmp_path / "mnist.net"
    path.write_bytes(shipped("mnist.net").read_bytes()[:100_000])
    with pytest.raises(NeuroDeployError, match=r"mnist\.net is not a readable HDF5 file \(.*truncated") as err:
        read_chain(path)
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
    assert sorted(fast_dump) == ["layer/0", "layer/1", "layer/2"]
    assert np.array_equal(fast_dump["layer/2"], fast_out)
    assert np.array_equal(fast_out, lava_out)
    assert all(np.array_equal(fast_dump[k], lava_dump[k]) for k in fast_dump)
    direct = run_chain_fast(read_chain(net), frames, 10)
    assert all(np.array_equal(fast_dump[f"layer/{k}"], e) for k, e in enumerate(direct.events))


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

NTIDIGITS_LAVA_STEPS = 200  # the unmarked Lava run (about 7 s); its output layer spikes from step 21 on


@pytest.fixture(scope="module")
def ntidigits():
    """ntidigits as lava-dl's test_axonal_delay_ntidigits runs it: its trailing `average` layer
    dropped (netx cannot build it), the (64, 3000) input fed to the first dense synapse, one column
    per step, for 3000 steps. Frames here are `[steps, *input_shape]` = `[3000, 1, 1, 64]`."""
    path = shipped("gts/ntidigits/ntidigits.net")
    chain = read_chain(path, skip=("average",))
    frames = np.load(GTS / "ntidigits" / "input.npy").T.reshape(-1, *chain.input_shape).astype(np.int64)
    return path, chain, frames


def test_ntidigits_delays_are_read_as_netx_reads_them(ntidigits):
    """Its 1-D (256,) delays are per output (axonal); the matrices equal the DelayDense netx builds."""
    path, chain, _ = ntidigits
    assert [layer.index for layer in chain.layers] == [2, 3, 4] and chain.num_layers == 5
    with h5py.File(path) as f:
        for layer in chain.layers[:2]:
            per_output = f[f"layer/{layer.index}/delay"][()]
            assert layer.delay.shape == layer.weight.shape
            assert np.array_equal(layer.delay, np.repeat(per_output[:, None], layer.weight.shape[1], axis=1))
    assert chain.layers[2].delay is None
    net = import_netx().hdf5.Network(net_config=str(path), num_layers=chain.num_layers)
    for layer, block in zip(chain.layers, net.layers):
        delays = getattr(block.synapse, "delays", None)
        assert (delays is None) == (layer.delay is None)
        assert delays is None or np.array_equal(delays.init, layer.delay)


def test_ntidigits_fast_equals_lava(ntidigits):
    """Every layer's events at every step of the first 200, and their energy counts; the run
    without delays differs, so the delays are what is compared."""
    _, chain, frames = ntidigits
    steps = NTIDIGITS_LAVA_STEPS
    fast = run_chain_fast(chain, frames[:steps], steps)
    lava = run_lava(chain, frames[:steps], steps)
    assert_same_events(fast.events, lava.events)
    assert not fast.events[-1][:20].any() and fast.events[-1][20].any() and fast.events[-1].sum() > 1000
    counter = ChainCounter(chain)
    fast_counts, lava_counts = (counter.count(run.events, frames[:steps]) for run in (fast, lava))
    for p, q in zip(fast_counts.layers, lava_counts.layers):
        assert all(np.array_equal(p.per_step[k], q.per_step[k]) for k in KEYS), p.name
    assert fast_counts.layers[0].synops > 0
    undelayed = run_chain_fast(dataclasses.replace(chain, layers=[
        dataclasses.replace(layer, delay=None) for layer in chain.layers]), frames[:steps], steps)
    assert not np.array_equal(undelayed.events[-1], lava.events[-1])


@pytest.mark.slow
def test_ntidigits_fast_equals_lava_full_run(ntidigits):
    """All 3000 steps (about a minute on Lava: DelayDense sums 63 delay slots every step)."""
    _, chain, frames = ntidigits
    assert_same_events(run_chain_fast(chain, frames, len(frames)).events, run_lava(chain, frames, len(frames)).events)


def test_ntidigits_reproduces_loihi_ground_truth(ntidigits):
    """The output layer's spikes, in Lava's (242, 3000) order, equal the Loihi ground truth one step
    later: gt[:, t + 1] == output[:, t] (the shift of one step), and gt[:, 0] is empty. lava-dl's own
    test compares only `output[:, -1]` with `gt[:, 1]` (test_hdf5.py:258), which this includes."""
    _, chain, frames = ntidigits
    output = run_chain_fast(chain, frames, len(frames)).events[-1].T
    gt = np.load(GTS / "ntidigits" / "output.npy")
    assert output.shape == gt.shape and gt.sum() > 20_000
    assert np.array_equal(output[:, :-1], gt[:, 1:])
    assert not gt[:, 0].any() and not output[:, -1].any()
    assert not np.abs(output[:, -1] - gt[:, 1]).sum()  # lava-dl's check


def test_cli_ntidigits_needs_skip_layer(capsys, tmp_path, ntidigits):
    """Without --skip-layer: one line naming the layer, its type and the option; with it, the
    output layer's events, equal to the fast run, and an energy report."""
    path, chain, frames = ntidigits
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
    assert np.array_equal(np.load(out), run_chain_fast(chain, frames[:60], 60).events[-1])
    code, _, err = run_cli(capsys, "energy", path, "--input", tmp_path / "x.npy", "--format", "json")
    assert_one_line_error(code, err, "--skip-layer average")
    code, stdout, err = run_cli(capsys, "energy", path, "--input", tmp_path / "x.npy", "--format", "json",
                                "--skip-layer", "average")
    assert code == 0, err
    assert "layer/4" in stdout


def test_count_chain_with_skip(tmp_path, ntidigits):
    from neuro_deploy.energy.run import count_chain

    path, chain, frames = ntidigits
    np.save(tmp_path / "x.npy", frames[:50])
    counts = count_chain(path, tmp_path / "x.npy", skip=("average",))
    assert [layer.name for layer in counts.layers] == ["layer/2", "layer/3", "layer/4"] and counts.steps == 50
    spikes = run_chain_fast(chain, frames[:50], 50).events
    assert [int(layer.per_step["spikes_out"].sum()) for layer in counts.layers] == [int(e.sum()) for e in spikes]


@pytest.mark.parametrize(("skip", "fragments"), [
    (("dense",), ["/layer/2/type is 'dense'", "--skip-layer dense drops only trailing layers", "/layer/5 (average)"]),
    (("dense", "average"), ["no layer with neurons left after --skip-layer"]),
    (("averge",), ["--skip-layer 'averge'", "not a netx layer type"]),
], ids=["not-last", "everything", "unknown"])
def test_bad_skip_is_one_line(capsys, tmp_path, ntidigits, skip, fragments):
    path, _, frames = ntidigits
    with pytest.raises(NeuroDeployError) as err:
        read_chain(path, skip)
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


def test_synthetic_delay_chain_fast_equals_lava(tmp_path):
    """Events of every layer and step, and the final current of the integrating output layer."""
    path = write_delay_chain(tmp_path / "delays.net")
    with pytest.warns(UserWarning, match=r"/layer/2/delay: the largest delay 70\.0 is clipped to 62"):
        chain = read_chain(path)
    first, second, last = chain.layers
    assert first.delay.max() == 62 and first.delay[0, 0] == 62 and np.unique(first.delay).size > 40
    assert np.array_equal(second.delay, np.full((10, 16), 3))
    assert np.array_equal(last.delay, np.tile(last.delay[0], (6, 1))) and np.unique(last.delay).size > 3
    assert {second.weight_exp, last.weight_exp} != {0}
    frames = (np.random.default_rng(1).random((90, 1, 1, 12)) < 0.15).astype(np.int64)
    fast = run_chain_fast(chain, frames, 90, states=True)
    with pytest.warns(UserWarning, match="Clamping the delays"):  # netx's own warning (hdf5.py:428)
        lava = run_lava(chain, frames, 90, probe_u=(2,))
    assert_same_events(fast.events, lava.events)
    assert all(e.any() for e in fast.events[:2]) and fast.u[2][-1].any()
    assert np.array_equal(lava.u[2], fast.u[2][-1])
    undelayed = dataclasses.replace(chain, layers=[dataclasses.replace(layer, delay=None) for layer in chain.layers])
    assert not np.array_equal(run_chain_fast(undelayed, frames, 90).events[1], lava.events[1])
