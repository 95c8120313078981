"""Lava back end: the same events as the step simulator and the fast back end, step for step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro_deploy import zoo
from neuro_deploy.convert import convert, write
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.netx_io import read_network
from neuro_deploy.sim.fixed import run_fixed
from neuro_deploy.sim.stepwise import run_stepwise
from neuro_deploy.simulate import place_windows

from conftest import reference_file


def fast_events(net, image: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """The fast back end's windows placed at the steps the alignment pass assigned."""
    assert steps == net.meta["steps"]
    windows = {}
    run_fixed(net.quantized, torch.from_numpy(image)[None].float(), lambda n, o: windows.__setitem__(n.name, o))
    return place_windows(net, windows)


@pytest.fixture(scope="module")
def deployable_net(tmp_path_factory):
    torch.manual_seed(3)
    model = zoo.build("vlifnet", dim=8, en_num_blocks=[1, 1, 1, 1], de_num_blocks=[1, 1, 1, 1],
                      attention=False, enhance_product=False)
    d = tmp_path_factory.mktemp("lava")
    zoo.save_checkpoint(d / "m.pt", zoo.Checkpoint("vlifnet", {"dim": 8, "en_num_blocks": [1, 1, 1, 1],
                        "de_num_blocks": [1, 1, 1, 1], "attention": False, "enhance_product": False},
                        model.state_dict()))
    write(convert(d / "m.pt", size=16), d / "m.net")
    return read_network(d / "m.net")


def test_stepwise_equals_fast_backend_at_every_step(deployable_net):
    image = np.random.default_rng(0).random((3, 16, 16))
    steps = deployable_net.meta["steps"]
    fast = fast_events(deployable_net, image, steps)
    stepped = run_stepwise(deployable_net.quantized, image, steps)
    assert all(np.array_equal(stepped[n], fast[n]) for n in fast)
    assert any(stepped[n].any() for n in stepped if deployable_net.quantized.graph.nodes[n].kind == "lif")


def test_stepwise_equals_fast_backend_with_host_layers(tmp_path):
    ref = torch.load(reference_file("official_esdnet_small.pt"), weights_only=True)
    torch.save(ref["state_dict"], tmp_path / "e.pth")
    write(convert(tmp_path / "e.pth", size=16), tmp_path / "e.net")
    net = read_network(tmp_path / "e.net")
    image = np.random.default_rng(1).random((3, 16, 16))
    fast = fast_events(net, image, net.meta["steps"])
    stepped = run_stepwise(net.quantized, image, net.meta["steps"])
    assert all(np.array_equal(stepped[n], fast[n]) for n in fast)


def test_lava_run_is_bit_identical_to_the_fast_backend(deployable_net):
    from neuro_deploy.sim.lava import run_lava

    image = np.random.default_rng(2).random((3, 16, 16))
    steps = deployable_net.meta["steps"]
    lava = run_lava(deployable_net, image)
    fast = fast_events(deployable_net, image, steps)
    mismatched = [n for n in fast if not np.array_equal(lava[n], fast[n])]
    assert not mismatched
    assert sum(int(np.count_nonzero(v)) for v in lava.values()) > 0


def test_lava_failure_names_the_layer_and_leaves_no_processes(deployable_net, monkeypatch):
    import multiprocessing

    from neuro_deploy.sim import lava as lava_backend
    from neuro_deploy.sim import stepwise

    def broken(self, s, inputs):
        if self.name.endswith("lif_1") and s == 3:
            raise ValueError("injected fault")
        return original(self, s, inputs)

    original = stepwise.LayerStepper.step
    monkeypatch.setattr(stepwise.LayerStepper, "step", broken)
    with pytest.raises(NeuroDeployError, match=r"Lava run failed in layer \d+ \(.*lif_1\): ValueError: injected"):
        lava_backend.run_lava(deployable_net, np.zeros((3, 16, 16)))
    assert not multiprocessing.active_children()
