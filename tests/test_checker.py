"""The limit check recomputes what it can from a network file instead of trusting its figures:
stored headroom, LIF bias registers, synapse peaks against what the weights can sum, every
violation listed; `inspect` names the process classes that run."""

from __future__ import annotations

import json
import math
import shutil

import h5py
import numpy as np
import pytest

from neuro_deploy.formats.netx import read_network
from neuro_deploy.ir.graph import Synapse
from neuro_deploy.loihi import limits as target

from test_cli import assert_one_line_error, run_cli

CONV_LIMIT = 2**23 - 1  # Lava's Conv wraps its sums to 24 bits


@pytest.fixture
def net(tmp_path, deployable16):
    """A writable copy of the bundled deployable network at 16x16."""
    path = tmp_path / "m.net"
    shutil.copy(deployable16, path)
    return path


def _group(f: h5py.File, section: str, kind: str | None = None, name: str | None = None) -> h5py.Group:
    groups = f[f"neuro_deploy/{section}"]
    return next(groups[k] for k in groups if (kind is None or groups[k]["kind"][()] == kind.encode())
                and (name is None or groups[k]["name"][()].decode() == name))


def _graded_conv(path) -> tuple[str, int, str]:
    """The Conv synapse with the most taps times payload among those fed by a graded (multi-bit)
    source, that source's payload width, and the layer it feeds."""
    q = read_network(path).quantized
    graded = [(q.synapses[n].mantissa[0].size * 2 ** q.layers[q.graph.inputs(n)[0]].payload_bits, n)
              for n in q.synapses if target.synapse_process(q.graph.nodes[n]) == "Conv"
              and q.layers[q.graph.inputs(n)[0]].payload_bits > 1]
    name = max(graded)[1]
    dst = next(e.dst for e in q.graph.edges if e.src == name)
    return name, q.layers[q.graph.inputs(name)[0]].payload_bits, dst


def test_the_bundled_network_passes_and_its_peaks_are_possible(deployable16):
    q = read_network(deployable16).quantized
    assert not target.check(q)
    ratios = [qs.acc_peak / target.worst_case_sum(q, n) for n, qs in q.synapses.items() if qs.acc_peak]
    assert ratios and max(ratios) <= 1.0  # calibration never beats the bound...
    assert max(ratios) > 0.5  # ...and the bound is not vacuous: an identity pass of the input reaches it


@pytest.mark.parametrize(("headroom", "fragments"), [
    (0.0, ["stored headroom 0", "[1, inf]"]), (0.5, ["stored headroom 0.5", "[1, inf]"]),
    (float("nan"), ["/neuro_deploy/headroom holds non-finite values"]),  # refused as it is read, before the limits
])
def test_a_stored_headroom_below_1_is_refused(capsys, net, headroom, fragments):
    with h5py.File(net, "r+") as f:
        f["neuro_deploy/headroom"][()] = headroom
    code, _, err = run_cli(capsys, "inspect", net)
    assert_one_line_error(code, err, *fragments)


@pytest.mark.parametrize("bias_exp", [-1, 8])
def test_lif_bias_exp_outside_lavas_3_bits_is_refused(capsys, net, tmp_path, bias_exp):
    with h5py.File(net, "r+") as f:
        lif = _group(f, "layers", "lif")
        lif["quant/params/bias_exp"][()] = bias_exp
        name = lif["name"][()].decode()
    np.save(tmp_path / "x.npy", np.zeros((3, 16, 16)))
    code, _, err = run_cli(capsys, "simulate", net, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert not (tmp_path / "y.npy").exists()
    assert_one_line_error(code, err, f"{name}: bias_exp {bias_exp} is outside [0, 7]", "lava/proc/lif/models.py")


def test_a_peak_larger_than_the_weights_can_sum_is_refused(capsys, net):
    name, _, _ = _graded_conv(net)
    possible = target.worst_case_sum(read_network(net).quantized, name)
    with h5py.File(net, "r+") as f:
        _group(f, "synapses", name=name)["acc_peak"][()] = possible + 1
    code, _, err = run_cli(capsys, "inspect", net)
    assert_one_line_error(code, err, f"{name}: recorded peak |sum| {int(possible) + 1} is outside [0, {int(possible)}]")


def test_every_violation_is_listed_not_only_the_first(capsys, net):
    with h5py.File(net, "r+") as f:
        f["neuro_deploy/headroom"][()] = 0.5
        lif = _group(f, "layers", "lif")
        lif["quant/params/bias_exp"][()] = 9
        lif["quant/params/vth"][()] = 2**17
    code, _, err = run_cli(capsys, "inspect", net)
    assert_one_line_error(code, err, "in 3 places", "stored headroom 0.5", "bias_exp 9", "vth 131072")


def test_weights_all_at_254_are_reported_as_overflowing_for_some_input(capsys, net):
    """Each weight legal, the calibration peak unchanged: the file passes, but `inspect` shows
    that the worst-case sum is far beyond the 24-bit accumulator (run time says whether it wraps)."""
    name, bits, dst = _graded_conv(net)
    with h5py.File(net, "r+") as f:
        g = _group(f, "synapses", name=name)
        m = g["mantissa"][()]
        g["mantissa"][()] = np.where(np.arange(m.size).reshape(m.shape) % 2, 254, -254).astype(m.dtype)
        m = g["mantissa"][()]
    worst = 254 * m[0].size * (2 ** (bits - 1) - 1)  # every tap at 254 times the largest payload
    assert worst > CONV_LIMIT
    code, out, _ = run_cli(capsys, "inspect", net, "--json")
    row = next(r for r in json.loads(out) if r["name"] == dst)
    assert code == 0 and row["worst_sum"] >= round(worst / CONV_LIMIT, 2) > 1
    code, out, _ = run_cli(capsys, "inspect", net)
    assert code == 0 and "some input can overflow" in out  # the summary names the worst synapse of all


def test_nan_peaks_are_violations_not_passes():
    lim = target.LIMITS["lif_state"]
    assert target._outside(math.nan, lim) and not target._outside(0, lim)


@pytest.mark.parametrize("upsample,delay,cls", [(1, 0, "ConvExp"), (1, 3, "DelayConv"), (2, 0, "CountedSparse"),
                                                (2, 3, "CachedDelaySparse")])
def test_inspect_names_the_process_class_that_runs(upsample, delay, cls):
    import lava.proc.sparse.process as lava_sparse
    from neuro_deploy.backends.lava_procs import synapses as ours

    syn = Synapse("s", "m", weight=np.ones((2, 2, 1, 1)), upsample=upsample, delay=delay)
    assert target.synapse_class(syn) == cls
    assert hasattr(ours, cls) or hasattr(lava_sparse, cls)  # a class that exists, not a kind
