"""Lowering to neuron layers and normal-form synapses keeps the network's function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro_deploy import zoo
from neuro_deploy.compile.passes.lower import lower
from neuro_deploy.frontend.capture import capture
from neuro_deploy.ir.execute import execute
from neuro_deploy.ir.graph import LIF, NILIF, Accumulate, BatchNorm, Conv, Input, Output, Synapse

from test_capture import spike_counts


def check_normal_form(graph):
    for name, node in graph.nodes.items():
        ins = graph.inputs(name)
        if isinstance(node, Synapse):
            assert len(ins) == 1 and not isinstance(graph.nodes[ins[0]], Synapse), name
            assert len(graph.consumers(name)) == 1, name
        elif not isinstance(node, (Input, Output)):
            assert ins and all(isinstance(graph.nodes[i], Synapse) for i in ins), name
    assert not any(isinstance(n, (BatchNorm, Conv)) for n in graph.nodes.values())  # all folded


def test_lowered_reference_networks_match_the_original_code(official_small):
    arch, ref = official_small
    model = zoo.build(arch, **ref["constructor"])
    model.load_state_dict(ref["state_dict"])
    lowered = lower(capture(model.eval(), *ref["input"].shape[-2:]))
    check_normal_form(lowered)
    out, counts = spike_counts(lowered, ref["input"].double())  # folded weights: float64 keeps spikes exact
    assert torch.allclose(out.float(), ref["output"], atol=1e-5, rtol=0)
    assert all(np.float32(n / total) == np.float32(ref["spike_rates"][k]) for k, (n, total) in counts.items())


def test_deployable_variant_lowers_without_host_ops_and_keeps_its_function():
    torch.manual_seed(1)
    model = zoo.build("vlifnet", dim=8, en_num_blocks=[1, 1, 1, 1], de_num_blocks=[1, 1, 1, 1],
                      attention=False, enhance_product=False).eval()
    image = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    graph = capture(model, 32, 32)
    lowered = lower(graph)
    check_normal_form(lowered)
    assert not [n.name for n in lowered.nodes.values() if n.role == "host"]
    assert sum(isinstance(n, Accumulate) for n in lowered.nodes.values()) == 1  # the mean over T
    ref, ref_counts = spike_counts(graph, image)
    out, counts = spike_counts(lowered, image)
    assert torch.allclose(out, ref, atol=1e-9)
    assert counts == ref_counts
    assert sum(isinstance(n, (LIF, NILIF)) for n in lowered.nodes.values()) == len(counts)


@pytest.mark.slow  # CI time: the small networks' lowering tests fold the same layer kinds
@pytest.mark.parametrize("arch", ["vlifnet", "esdnet"])
def test_release_size_lowering_folds_every_batchnorm(arch):
    lowered = lower(capture(zoo.build(arch), 64, 64))
    check_normal_form(lowered)
