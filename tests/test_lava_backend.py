"""Lava back end: Lava's own processes give the fast back end's events, step for step, layer by layer.

The fast back end (`sim/fixed.py`, torch) and the Lava back end (Lava's Conv, Sparse, DelaySparse,
LIF and GradedVec models, plus neuro-deploy neuron programs in numpy) share no arithmetic.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from neuro_deploy.backends import lava as lava_backend
from neuro_deploy.backends.fast import run_fixed
from neuro_deploy.backends.lava import run_lava
from neuro_deploy.compile.convert import convert, write
from neuro_deploy.counting.counts import KEYS, NetworkCounter
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import read_network, write_network
from neuro_deploy.ir.quantized import Drive
from neuro_deploy.loihi.limits import synapse_process
from neuro_deploy.run.simulate import place_windows

from conftest import REPO, reference_file
from process_tree import descendants

DEPLOYABLE = {"dim": 8, "en_num_blocks": [1, 1, 1, 1], "de_num_blocks": [1, 1, 1, 1], "attention": False,
              "enhance_product": False}


def fast_events(net, image: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """The fast back end's windows placed at the steps the alignment pass assigned."""
    assert steps == net.meta["steps"]
    windows = {}
    run_fixed(net.quantized, torch.from_numpy(image)[None].float(), lambda n, o: windows.__setitem__(n.name, o))
    return place_windows(net, windows)


def lava_events(net, image: np.ndarray) -> dict[str, np.ndarray]:
    return run_lava(net.path, image.astype(np.float32), Drive(int(net.meta["steps"]))).events


def assert_same_events(net, lava: dict[str, np.ndarray], fast: dict[str, np.ndarray]) -> None:
    assert set(lava) == set(fast) == set(net.quantized.layers)
    mismatched = [n for n in fast if not np.array_equal(lava[n], fast[n])]
    assert not mismatched, f"{len(mismatched)} layers differ, first {mismatched[0]}"


@pytest.fixture(scope="module")
def deployable(tmp_path_factory):
    """The bundled deployable VLIFNet at 16x16, run once on Lava (the run the tests below share),
    reporting its progress on every step; returns the steps it reported too."""
    d = tmp_path_factory.mktemp("lava")
    write(convert(REPO / "neuro_deploy" / "models" / "vlifnet_small_deployable.pt", size=16), d / "m.net")
    net = read_network(d / "m.net")
    image = np.random.default_rng(2).random((3, 16, 16))
    reported = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lava_backend, "PROGRESS_EVERY", 0.0)
        run = run_lava(net.path, image.astype(np.float32), Drive(int(net.meta["steps"])),
                       on_step=lambda step, steps: reported.append((step, steps)))
    return net, image, run.events, reported


def test_a_lava_run_reports_its_steps_as_it_goes(deployable):
    net, _, _, reported = deployable
    steps = int(net.meta["steps"])
    assert len(reported) >= 2 and {total for _, total in reported} == {steps}
    done = [step for step, _ in reported]
    assert done == sorted(set(done)) and done[0] >= 1 and done[-1] == steps


def test_lava_run_of_the_bundled_deployable_model_equals_the_fast_backend(deployable):
    net, image, lava, _ = deployable
    assert_same_events(net, lava, fast_events(net, image, net.meta["steps"]))
    kinds = {net.quantized.graph.nodes[n].kind for n, v in lava.items() if v.any()}
    assert {"input", "lif", "nilif", "relay", "accumulate"} <= kinds  # every kind was active
    graph = net.quantized.graph
    used = {synapse_process(graph.nodes[s]) for s in net.quantized.synapses}
    assert used == {"Conv", "Sparse", "DelayConv"}


def test_energy_counts_from_lava_equal_those_of_the_fast_backend(deployable):
    net, image, lava, _ = deployable
    counter = NetworkCounter(net)
    a, b = counter.count(lava), counter.count(fast_events(net, image, net.meta["steps"]))
    assert all(np.array_equal(x.per_step[k], y.per_step[k]) for x, y in zip(a.layers, b.layers) for k in KEYS)
    assert sum(layer.synops for layer in a.layers) > 0


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vlifnet", "esdnet"])
def test_lava_equals_fast_on_the_reference_configurations_with_host_layers(arch, tmp_path):
    ref = torch.load(reference_file(f"official_{arch}_small.pt"), weights_only=True)
    torch.save(ref["state_dict"], tmp_path / "m.pth")
    write(convert(tmp_path / "m.pth", size=16), tmp_path / "m.net")
    net = read_network(tmp_path / "m.net")
    assert net.meta["host_layers"] > 0
    image = np.random.default_rng(1).random((3, 16, 16))
    assert_same_events(net, lava_events(net, image), fast_events(net, image, net.meta["steps"]))


@pytest.mark.slow
def test_lava_equals_fast_on_the_bundled_deployable_model_at_64(tmp_path):
    write(convert(REPO / "neuro_deploy" / "models" / "vlifnet_small_deployable.pt", size=64), tmp_path / "m.net")
    net = read_network(tmp_path / "m.net")
    image = np.random.default_rng(4).random((3, 64, 64))
    assert_same_events(net, lava_events(net, image), fast_events(net, image, net.meta["steps"]))


def test_a_failing_lava_process_is_one_error_and_leaves_no_process(deployable, tmp_path):
    net, image, _, _ = deployable
    q = net.quantized
    relay = next(n for n, layer in q.layers.items() if layer.params is not None and layer.params.programmed
                 and q.graph.nodes[n].kind == "relay")
    q.layers[relay].params.bias = np.zeros(3, np.int64)  # the wrong number of channels: fails mid-run
    write_network(tmp_path / "broken.net", q, net.meta)
    before = set(descendants(os.getpid()))  # e.g. the resource tracker of earlier in-process Lava runs
    try:
        with pytest.raises(NeuroDeployError, match=r"Lava run failed: ValueError: operands could not be broadcast"):
            run_lava(str(tmp_path / "broken.net"), image.astype(np.float32), Drive(int(net.meta["steps"])))
    finally:
        q.layers[relay].params.bias = read_network(net.path).quantized.layers[relay].params.bias
    assert not set(descendants(os.getpid())) - before
