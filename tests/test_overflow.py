"""Run-time overflow and LIF states: the fast back end (torch, whole windows) and the Lava back end
(counted inside neuro-deploy's Lava process models, step by step) count the same sums wrapped and
states saturated, see the same peaks, and end with the same `u` and `v` in every LIF layer.

One Lava run of the bundled deployable VLIFNet at 16x16 whose first synapse is made 16 times
stronger (its exponent raised by 4): sums wrap in synapses, LIF currents wrap, voltages saturate.
A small NIR-converted CNN gives the normal run, where nothing overflows on either back end.
The command line (fast back end): one warning line naming the worst synapse, exit 3 with
--fail-on-overflow after the outputs are written, the counts in the JSON.
"""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import torch

from neuro_deploy.backends.fast import OverflowCounter, run_fixed, run_free, states_after
from neuro_deploy.backends.lava import run_lava
from neuro_deploy.compile.nir_convert import convert_nir
from neuro_deploy.data import write_image
from neuro_deploy.formats.netx import read_network, write_network
from neuro_deploy.formats.netx_plain import read_plain
from neuro_deploy.ir.quantized import Drive
from neuro_deploy.loihi.limits import synapse_process
from neuro_deploy.run.overflow import summarize, warning

from test_cli import run_cli

FIRST_SYNAPSE = "patch_embed.proj.syn0_0"
BOOST = 4  # exponent steps added to the first synapse: 16x its sums reach the relays, LIFs and synapses after it


def overflowing_copy(source, path):
    """The network at `source` with its first synapse's exponent raised by `BOOST`, written to `path`."""
    net = read_network(source)
    net.quantized.synapses[FIRST_SYNAPSE].shift += BOOST
    write_network(path, net.quantized, net.meta)
    return read_network(path)


@pytest.fixture(scope="module")
def overflowing(deployable16, tmp_path_factory):
    """The boosted network, an image, its fast run (overflow counter, LIF states) and its Lava run."""
    net = overflowing_copy(deployable16, tmp_path_factory.mktemp("over") / "over.net")
    image = np.random.default_rng(2).random((3, 16, 16)).astype(np.float32)
    counter, states = OverflowCounter(), {}
    run_fixed(net.quantized, torch.from_numpy(image)[None], counter=counter, states=states)
    steps = int(net.meta["steps"])
    lava = run_lava(str(net.path), image, Drive(steps), states=True)
    return net, counter.result, states_after(net.quantized, states, steps), lava


def test_both_back_ends_count_the_same_overflow_and_peaks(overflowing):
    net, fast, _, lava = overflowing
    assert lava.overflow == fast
    assert set(fast.synapse_peaks) == set(net.quantized.synapses)  # converted networks: every synapse counted
    assert sum(fast.synapse_wraps.values()) > 0
    assert sum(fast.layer_wraps.values()) > 0 and sum(fast.layer_saturations.values()) > 0
    calibrated = {n: s.acc_peak for n, s in net.quantized.synapses.items()}
    assert fast.synapse_peaks[FIRST_SYNAPSE] > calibrated[FIRST_SYNAPSE]  # the sums themselves are as calibrated
    assert any(fast.synapse_peaks[n] > 2 * calibrated[n] for n in fast.synapse_wraps if fast.synapse_wraps[n])


def test_u_and_v_of_every_lif_layer_are_equal_on_both_back_ends(overflowing):
    net, _, fast_states, lava = overflowing
    lifs = {n for n in net.quantized.layers if net.quantized.graph.nodes[n].kind == "lif"}
    assert set(lava.states) == set(fast_states) == lifs
    for name, (u, v) in fast_states.items():
        assert np.array_equal(lava.states[name][0], u[0].numpy()), f"u of {name}"
        assert np.array_equal(lava.states[name][1], v[0].numpy()), f"v of {name}"
    assert sum(bool(v.any()) for _, v in lava.states.values()) >= 2  # states that remain at the end are compared


def test_the_summary_and_warning_name_the_synapse_that_wrapped_most(overflowing):
    net, fast, _, _ = overflowing
    summary = summarize(net.quantized, fast)
    worst = max(fast.synapse_wraps, key=fast.synapse_wraps.get)
    assert summary["worst"]["synapse"] == worst and summary["worst"]["wrapped"] == fast.synapse_wraps[worst]
    assert summary["total"] == fast.total > 0
    assert summary["synapses"][worst]["peak"] == fast.synapse_peaks[worst]
    line = warning(summary)
    assert "\n" not in line and worst in line and summary["worst"]["layer"] in line


def lif(shape: tuple[int, ...]) -> nir.LIF:
    return nir.LIF(tau=np.full(shape, 0.0025), r=np.ones(shape), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, 0.1), v_reset=np.zeros(shape))


@pytest.fixture(scope="module")
def small_cnn(tmp_path_factory):
    """Two convolutional LIF layers and a dense one converted from NIR (Lava's Conv and Dense), and
    a spike input it was calibrated on."""
    folder = tmp_path_factory.mktemp("cnn")
    rng = np.random.default_rng(0)

    def conv(out: int, into: int) -> nir.Conv2d:
        return nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0.05, 0.1, (out, into, 3, 3)), stride=1, padding=1,
                          dilation=1, groups=1, bias=np.zeros(out))

    nodes = {"input": nir.Input(input_type={"input": np.array([2, 8, 8])}), "conv1": conv(4, 2), "lif1": lif((4, 8, 8)),
             "conv2": conv(4, 4), "lif2": lif((4, 8, 8)),
             "flat": nir.Flatten(input_type={"input": np.array([4, 8, 8])}, start_dim=0, end_dim=-1),
             "fc": nir.Linear(weight=rng.normal(0, 0.1, (10, 256))), "lif3": lif((10,)),
             "output": nir.Output(output_type={"output": np.array([10])})}
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "conv2"), ("conv2", "lif2"), ("lif2", "flat"),
             ("flat", "fc"), ("fc", "lif3"), ("lif3", "output")]
    nir.write(str(folder / "cnn.nir"), nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    x = (rng.random((20, 2, 8, 8)) < 0.3).astype(np.float32)
    np.save(folder / "x.npy", x)
    convert_nir(folder / "cnn.nir", folder / "cnn.net", folder / "x.npy")
    return read_plain(folder / "cnn.net"), x.astype(np.int64)


def test_a_normal_run_overflows_nowhere_on_either_back_end(small_cnn):
    net, x = small_cnn
    drive = Drive(len(x))
    counter, states = OverflowCounter(), {}
    run_free(net.quantized, x, drive, states=states, counter=counter)
    lava = run_lava(str(net.path), x, drive, states=True)
    assert counter.result.total == lava.overflow.total == 0
    assert lava.overflow == counter.result and min(counter.result.synapse_peaks.values()) > 0
    assert {synapse_process(net.quantized.graph.nodes[n]) for n in counter.result.synapse_peaks} == {"Conv", "Dense"}
    for name, per_step in states.items():  # a free-running network's states: every step of the run
        assert np.array_equal(lava.states[name][0].reshape(-1), per_step[-1][0].reshape(-1).numpy()), name
        assert np.array_equal(lava.states[name][1].reshape(-1), per_step[-1][1].reshape(-1).numpy()), name


# ---- the command line: one warning line, exit 3 when asked, the counts in the JSON ------------------

@pytest.fixture(scope="module")
def cli_files(deployable16, tmp_path_factory):
    """The normal and the boosted network files, and a 16x16 image."""
    folder = tmp_path_factory.mktemp("cli")
    over = overflowing_copy(deployable16, folder / "over.net")
    write_image(folder / "in.png", np.random.default_rng(3).random((16, 16, 3)))
    return deployable16, over.path, folder / "in.png"


def warnings_in(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: fixed-point overflow")]


def test_cli_simulate_warns_in_one_line_and_exits_3_only_when_asked(capsys, tmp_path, cli_files):
    _, over, image = cli_files
    code, out, err = run_cli(capsys, "simulate", over, "--input", image, "-o", tmp_path / "a.png", "--json")
    assert code == 0, err
    overflow = json.loads(out)["overflow"]
    assert overflow["total"] > 0 and overflow["wrapped_sums"] > 0
    worst = overflow["worst"]
    assert overflow["synapses"][worst["synapse"]]["wrapped"] == worst["wrapped"] > 0
    [line] = warnings_in(err)
    assert worst["synapse"] in line and f"layer {worst['layer_index']} {worst['layer']}" in line
    code, _, err = run_cli(capsys, "simulate", over, "--input", image, "-o", tmp_path / "b.png", "--fail-on-overflow")
    assert code == 3 and len(warnings_in(err)) == 1
    assert (tmp_path / "b.png").is_file()  # the outputs are written before the exit


def test_cli_normal_run_has_no_warning_and_zero_counts(capsys, tmp_path, cli_files):
    normal, _, image = cli_files
    code, out, err = run_cli(capsys, "simulate", normal, "--input", image, "-o", tmp_path / "a.png", "--json",
                             "--fail-on-overflow")
    assert code == 0, err
    assert json.loads(out)["overflow"]["total"] == 0 and json.loads(out)["overflow"]["worst"] is None
    assert not warnings_in(err)


def test_cli_energy_carries_the_counts_and_exits_3_when_asked(capsys, tmp_path, cli_files):
    _, over, image = cli_files
    code, out, err = run_cli(capsys, "energy", over, "--input", image, "--format", "json",
                             "--json-out", tmp_path / "e.json")
    assert code == 0, err
    assert json.loads(out)["overflow"]["total"] > 0 and len(warnings_in(err)) == 1
    assert json.loads((tmp_path / "e.json").read_text())["overflow"] == json.loads(out)["overflow"]
    code, _, err = run_cli(capsys, "energy", over, "--input", image, "--fail-on-overflow")
    assert code == 3 and len(warnings_in(err)) == 1


def dataset(root) -> None:
    """Two pairs: one tile, and several blended."""
    rng = np.random.default_rng(4)
    for name, (h, w) in {"a.png": (16, 16), "b.png": (20, 28)}.items():
        for folder in ("input", "target"):
            write_image(root / folder / name, rng.random((h, w, 3)))


def evaluate_overflow(capsys, over, data, workers: int) -> dict[str, int]:
    """Each image's overflow count as `evaluate --format json` gives it, after one warning line."""
    code, out, err = run_cli(capsys, "evaluate", "--net", over, "--data", data, "--workers", workers, "--format", "json")
    assert code == 0, err
    assert len(warnings_in(err)) == 1
    return {r["name"]: r["overflow"] for r in json.loads(out)["images"]}


def test_cli_evaluate_counts_each_image_and_exits_3_when_asked(capsys, tmp_path, cli_files):
    _, over, image = cli_files
    dataset(tmp_path / "data")
    counts = evaluate_overflow(capsys, over, tmp_path / "data", 1)
    code, out, _ = run_cli(capsys, "simulate", over, "--input", tmp_path / "data" / "input" / "a.png",
                           "-o", tmp_path / "a.png", "--json")
    assert counts["a.png"] == json.loads(out)["overflow"]["total"] > 0 and counts["b.png"] > 0
    code, _, err = run_cli(capsys, "evaluate", "--net", over, "--data", tmp_path / "data", "--workers", 1,
                           "-o", tmp_path / "r.csv", "--fail-on-overflow")
    assert code == 3 and len(warnings_in(err)) == 1 and "overflow" in (tmp_path / "r.csv").read_text().splitlines()[0]


@pytest.mark.slow
def test_cli_evaluate_on_ray_counts_as_in_this_process(capsys, tmp_path, cli_files):
    _, over, _ = cli_files
    dataset(tmp_path / "data")
    assert evaluate_overflow(capsys, over, tmp_path / "data", 2) == evaluate_overflow(capsys, over, tmp_path / "data", 1)


def test_cli_fail_on_overflow_with_a_float_model_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", "--model", tmp_path / "m.pt", "--data", tmp_path, "--fail-on-overflow")
    assert code == 2 and err.strip() == "neuro-deploy: error: --fail-on-overflow applies to --net"
