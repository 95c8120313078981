"""Energy: fan-out and counts from events (both back ends), float-model hooks, profiles, reports, CLI."""

from __future__ import annotations

import csv
import io
import json
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuro_deploy import zoo
from neuro_deploy.backends.fast import upsample2x_int
from neuro_deploy.compile.convert import convert, write
from neuro_deploy.counting.counts import KEYS, Counts, LayerCounts, NetworkCounter, fanout_map
from neuro_deploy.counting.hooks import count_float
from neuro_deploy.counting.run import count_network
from neuro_deploy.energy.profiles import load_profile, parse_profile
from neuro_deploy.energy.report import build_report, price
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.netx import read_network
from neuro_deploy.ir.graph import Synapse

from test_cli import assert_one_line_error, run_cli
from test_lava_backend import fast_events

NETX_TESTS = Path(sysconfig.get_paths()["purelib"]) / "tests" / "lava" / "lib" / "dl" / "netx"  # lava-dl's own files
SMALL = {"dim": 8, "en_num_blocks": [1, 1, 1, 1], "de_num_blocks": [1, 1, 1, 1]}
DEPLOYABLE = {**SMALL, "attention": False, "enhance_product": False}


def _checkpoint(path: Path, arch: str, config: dict, seed: int) -> Path:
    torch.manual_seed(seed)
    zoo.save_checkpoint(path, zoo.Checkpoint(arch, dict(config), zoo.build(arch, **config).state_dict()))
    return path


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """The deployable VLIFNet (skips, concat, upsampling, VLIF) and the full one (host layers), at 16x16."""
    d = tmp_path_factory.mktemp("energy")
    out = {}
    for name, config in (("deployable", DEPLOYABLE), ("full", SMALL)):
        write(convert(_checkpoint(d / f"{name}.pt", "vlifnet", config, 3), size=16), d / f"{name}.net")
        out[name] = d / f"{name}.net"
    out["dir"] = d
    return out


# ---- fan-out ------------------------------------------------------------------------------------

def _brute_fanout(mask: np.ndarray, hw: tuple[int, int], stride: int, padding: int, upsample: int,
                  dilation: int = 1) -> np.ndarray:
    """Distinct outputs each source neuron reaches: one unit impulse at a time."""
    cin, (h, w) = mask.shape[1], hw
    impulses = torch.eye(cin * h * w, dtype=torch.int64).reshape(-1, cin, h, w)
    if upsample == 2:
        impulses = upsample2x_int(impulses)
    out = F.conv2d(impulses.double(), torch.from_numpy(mask.astype(np.float64)), stride=stride, padding=padding,
                   dilation=dilation)
    return (out > 0).flatten(1).sum(1).reshape(cin, h, w).numpy()


@pytest.mark.parametrize("k,stride,padding,upsample,dilation", [
    (3, 1, 1, 1, 1), (3, 2, 1, 1, 1), (5, 2, 0, 1, 1), (3, 1, 2, 1, 2), (1, 1, 0, 1, 1), (1, 1, 0, 2, 1), (3, 1, 1, 2, 1),
    (3, 2, 1, 2, 1)])
def test_fanout_is_exact_at_borders_and_through_upsampling(k, stride, padding, upsample, dilation):
    mask = np.random.default_rng(k + stride + upsample).random((4, 3, k, k)) > 0.4
    h, w = 5, 7
    out_hw = F.conv2d(torch.zeros(1, 3, h * upsample, w * upsample), torch.zeros(4, 3, k, k), stride=stride,
                      padding=padding, dilation=dilation).shape[2:]
    fan = fanout_map(mask, (h, w), tuple(out_hw), (stride,) * 2, (padding,) * 2, (dilation,) * 2, upsample)
    assert np.array_equal(fan, _brute_fanout(mask, (h, w), stride, padding, upsample, dilation))
    if upsample == 1 and dilation == 1:  # every connection once: the synapse count `inspect` reports
        ones = torch.ones(1, 3, h, w, dtype=torch.float64)
        assert fan.sum() == F.conv2d(ones, torch.from_numpy(mask.astype(np.float64)), stride=stride, padding=padding).sum()


def test_fanout_hand_computed():
    fan = fanout_map(np.ones((2, 1, 3, 3), bool), (3, 3), (3, 3), (1, 1), (1, 1))
    assert fan[0].tolist() == [[8, 12, 8], [12, 18, 12], [8, 12, 8]]  # 2 output channels x (corner 4, edge 6, centre 9)


# ---- counts from events --------------------------------------------------------------------------

def _independent_synops(net, events: dict[str, np.ndarray]) -> dict[str, int]:
    """Per destination layer: synaptic ops of its plain (not upsampling) synapses, as the sum over
    output neurons of the active inputs in their window (conv of the event mask with the kernel mask)."""
    graph = net.quantized.graph
    total: dict[str, int] = {}
    for s in (n for n in graph.nodes.values() if isinstance(n, Synapse) and n.upsample == 1):
        src, dst = graph.inputs(s.name)[0], graph.consumers(s.name)[0]
        active = torch.from_numpy((events[src] != 0).astype(np.float64))
        mask = torch.from_numpy((net.quantized.synapses[s.name].mantissa != 0).astype(np.float64))
        total[dst] = total.get(dst, 0) + int(F.conv2d(active, mask, stride=s.stride, padding=s.padding).sum())
    return total


def test_counts_on_both_simulators_are_identical_and_exact(nets):
    net = read_network(nets["deployable"])
    image = np.random.default_rng(0).random((3, 16, 16))
    steps = net.meta["steps"]
    fast = fast_events(net, image, steps)
    counter = NetworkCounter(net)
    a = counter.count(fast)
    streamed = count_network(net, image.astype(np.float32))  # windows counted as the fast back end makes them
    assert all(np.array_equal(x.per_step[k], y.per_step[k]) for x, y in zip(a.layers, streamed.layers) for k in KEYS)
    graph = net.quantized.graph
    plain_only = {n for n in net.quantized.layers if all(
        graph.nodes[s].upsample == 1 for s in graph.inputs(n) if isinstance(graph.nodes[s], Synapse))}
    independent = _independent_synops(net, fast)
    by_name = {layer.name: layer for layer in a.layers}
    assert all(by_name[n].synops == independent.get(n, 0) for n in plain_only)
    assert len(plain_only) < len(by_name)  # some layers are fed through upsampling synapses
    kinds = {layer.type: layer for layer in a.layers}
    assert {"lif", "nilif", "relay", "input"} <= set(kinds)
    lif_fed = [layer for layer in a.layers if layer.total("synops_binary") > 0]
    assert lif_fed and a.layers[1].total("synops_real") > 0  # the image feeds the first synapse
    for layer in a.layers:
        assert np.array_equal(layer.per_step["spikes_out"], np.count_nonzero(fast[layer.name].reshape(steps, -1), 1))
        if layer.placement == "neurocore":
            assert layer.neuron_updates == layer.neurons * steps
    assert [layer.index for layer in a.layers] == list(range(len(a.layers)))


def test_host_layers_count_macs_not_synops(nets):
    net = read_network(nets["full"])
    steps, T = net.meta["steps"], net.meta["settings"]["timesteps"]
    events = fast_events(net, np.random.default_rng(1).random((3, 16, 16)), steps)
    counts = NetworkCounter(net).count(events)
    host = [layer for layer in counts.layers if layer.placement == "host"]
    assert {layer.type for layer in host} >= {"mul", "mda_gate"}
    for layer in host:
        assert layer.synops == 0 and layer.neuron_updates == 0 and layer.total("macs") > 0
    mul = next(layer for layer in host if layer.type == "mul")
    own = int(np.prod(mul.neurons)) * T  # one product per element and step
    assert mul.total("macs") == own + _independent_synops(net, events)[mul.name]  # its synapses run on the host


def test_plain_netx_counts_match_on_both_backends(tmp_path):
    from neuro_deploy.counting.run import count_file

    path = tmp_path / "x.npy"
    np.save(path, (np.random.default_rng(0).random((6, 3, 16, 16)) * 200).astype(np.int32))
    fast, lava = (count_file(NETX_TESTS / "tiny.net", path, b) for b in ("fast", "lava"))
    assert fast.steps == 6 and all(len(layer.per_step["synops_binary"]) == 6 for layer in fast.layers)
    assert all(np.array_equal(p.per_step[k], q.per_step[k]) for p, q in zip(fast.layers, lava.layers) for k in KEYS)
    assert [layer.name for layer in fast.layers] == ["input", "layer/0", "layer/1", "layer/2"]
    assert fast.layers[2].synops > 0 and fast.layers[1].synops == 0  # the input neurons get no synapse


# ---- float-model hooks --------------------------------------------------------------------------

def test_float_counts_are_exact_and_follow_the_conventions():
    torch.manual_seed(0)
    model = zoo.build("esdnet", **SMALL).eval()
    h = w = 16
    counts = count_float(model, torch.rand(1, 3, h, w))
    first = next(op for op in counts.ops if op.name == "patch_embed.proj")
    assert first.dense_macs == 8 * 3 * (3 * h - 2) * (3 * w - 2) * 4  # Cout Cin, corner/edge/centre taps, T
    assert first.stage == "first" and not first.binary and first.effective == first.dense_macs
    assert first.input == "real" and all(op.input in ("binary", "real", "silent") for op in counts.ops)
    binary = [op for op in counts.ops if op.binary and op.stage == "body"]
    assert binary and all(0 < op.effective <= op.dense_macs for op in binary)  # spikes: some non-zero input
    assert any(op.stage == "post" for op in counts.ops) and any(op.stage == "gate" for op in counts.ops)
    activity, strict, ann = (counts.convention(c) for c in ("activity", "strict", "ann"))
    gates = sum(op.dense_macs for op in counts.ops if op.stage == "gate")
    assert strict["ac"] == sum(op.effective for op in counts.ops if op.binary and op.stage != "gate")
    assert strict["ac"] + strict["mac"] == sum(op.effective for op in counts.ops)
    assert activity["mac"] == gates + sum(op.dense_macs for op in counts.ops if op.stage in ("first", "post"))
    assert ann["ac"] == 0 and ann["mac"] == sum(op.dense_macs // op.steps for op in counts.ops)
    assert 0 < counts.spike_rate < 1


def test_float_effective_ops_equal_a_conv_of_the_activity():
    """Effective ops of one conv hook == sum over outputs of active inputs in their window."""
    torch.manual_seed(1)
    model = zoo.build("vlifnet", **DEPLOYABLE).eval()
    seen = {}
    conv = model.down1_2.conv
    handle = conv.register_forward_hook(lambda m, i, o: seen.update(x=i[0].flatten(0, 1)))
    counts = count_float(model, torch.rand(1, 3, 16, 16))
    handle.remove()
    op = next(op for op in counts.ops if op.name == "down1_2.conv")
    active = (seen["x"] != 0).double()
    expected = F.conv2d(active, torch.ones(conv.out_channels, conv.in_channels, 3, 3, dtype=torch.float64),
                        stride=2, padding=1).sum()
    assert op.effective == int(expected) and op.binary


# ---- profiles and pricing -----------------------------------------------------------------------

def test_bundled_profiles_carry_their_evidence():
    from neuro_deploy.energy.profiles import available

    names = available()
    assert {"cmos45_fp32", "cmos45_int8", "loihi", "truenorth", "spinnaker2", "cpu_xeon8380", "gpu_a100"} <= set(names)
    for name in names:
        p = load_profile(name)
        assert p.terms and all(t.source and t.evidence and t.scope for t in p.terms.values())
    fp32 = load_profile("cmos45_fp32")
    assert (fp32.terms["ac"].pj, fp32.terms["mac"].pj) == (0.9, 4.6)


def _layer(**totals: int) -> LayerCounts:
    per_step = {k: np.array([totals.get(k, 0)], np.int64) for k in KEYS}
    return LayerCounts(0, "l", "lif", "neurocore", 10, 1, per_step)


def test_pricing_by_hand_and_unpriced_is_never_zero():
    layer = _layer(synops_binary=100, synops_graded=10, macs=7, updates_active=2, updates_inactive=8, spikes_out=2)
    report = build_report(Counts("n", 1, 1, [layer]), [load_profile(p) for p in ("loihi", "cmos45_fp32", "truenorth")])
    row = report["layers"][0]
    assert row["energy_pj"]["loihi"] == pytest.approx(110 * 23.6 + 2 * 81 + 8 * 52 + 2 * 1.7)
    assert row["unpriced"]["loihi"] == {"macs": 7}
    assert row["energy_pj"]["cmos45_fp32"] == pytest.approx(100 * 0.9 + (10 + 7) * 4.6)
    assert row["unpriced"]["cmos45_fp32"] == {"updates_active": 2, "updates_inactive": 8, "spikes": 2}
    assert row["energy_pj"]["truenorth"] == pytest.approx(100 * 26)
    assert set(row["included"]["truenorth"]) == {"updates_active", "updates_inactive", "spikes"}
    assert row["unpriced"]["truenorth"] == {"synops_nonbinary": 10, "macs": 7}
    assert price({"synops_binary": 0}, load_profile("loihi")) == (0.0, {}, [])


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(text)
    return path


GOOD_TERM = 'pj = 1.5\nsource = "measured by us"\nevidence = "measured"\nscope = "per-term"\n'


def test_user_profile_from_a_path(tmp_path):
    p = load_profile(_toml(tmp_path, f'name = "mine"\n[terms.synop]\n{GOOD_TERM}'))
    assert p.name == "mine" and p.terms["synop"].pj == 1.5


@pytest.mark.parametrize("text,fragment", [
    ("name = [", "not valid TOML"),
    ('[terms.synop]\npj = 1.0\nevidence = "measured"\nscope = "per-term"\n', "no 'source'"),
    (f'[terms.synop]\n{GOOD_TERM.replace("1.5", "-2.0")}', "positive"),
    (f'[terms.synapse]\n{GOOD_TERM}', "not a known term"),
    ("[terms.synop]\n" + GOOD_TERM.replace('evidence = "measured"', 'evidence = "guessed"'), "not one of"),
    ('name = "x"\n', "no [terms"),
])
def test_malformed_profiles_are_refused(tmp_path, text, fragment):
    with pytest.raises(NeuroDeployError, match=fragment.replace("[", r"\[")):
        load_profile(_toml(tmp_path, text))


def test_all_in_terms_cover_only_known_terms_without_their_own_figure():
    term = {"pj": 1.0, "source": "s", "evidence": "derived", "scope": "all-in"}
    with pytest.raises(NeuroDeployError, match="covers"):
        parse_profile({"terms": {"synop": {**term, "covers": ["nonsense"]}}}, "inline")
    with pytest.raises(NeuroDeployError, match="its own figure"):
        parse_profile({"terms": {"synop": {**term, "covers": ["spike"]}, "spike": term}}, "inline")


# ---- the command line ---------------------------------------------------------------------------

def test_energy_cli_json_csv_table_and_plot(capsys, nets, tmp_path):
    image = np.random.default_rng(3).random((4, 3, 16, 16)).astype(np.float32)  # (T, C, H, W) frames
    np.save(tmp_path / "x.npy", image)
    code, out, _ = run_cli(capsys, "energy", nets["deployable"], "--input", tmp_path / "x.npy", "--profile", "loihi",
                           "--profile", "cmos45_fp32", "--format", "json", "--plot", tmp_path / "e.png")
    assert code == 0
    report = json.loads(out)
    net = read_network(nets["deployable"])
    assert [r["index"] for r in report["layers"]] == list(range(len(net.quantized.layers)))
    assert [r["name"] for r in report["layers"]] == list(net.quantized.layers)
    for key in ("index", "name", "type", "placement", "neurons", "synops", "macs", "spikes_out", "neuron_updates",
                "energy_pj"):
        assert key in report["layers"][0]
    assert set(report["profiles"]) == {"loihi", "cmos45_fp32"}
    assert all(len(r["per_step"]["spikes_out"]) == net.meta["steps"] for r in report["layers"])
    total = report["total"]
    assert total["energy_pj"]["loihi"] == pytest.approx(sum(r["energy_pj"]["loihi"] for r in report["layers"]))
    assert total["synops"] == sum(r["synops"] for r in report["layers"]) > 0
    assert (tmp_path / "e.png").stat().st_size > 0
    code, out, _ = run_cli(capsys, "energy", nets["deployable"], "--input", tmp_path / "x.npy", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows[-1]["name"] == "total" and int(rows[-1]["synops"]) == total["synops"]
    code, out, _ = run_cli(capsys, "energy", nets["deployable"], "--input", tmp_path / "x.npy")
    assert code == 0 and "per image" in out and "share" in out


def test_energy_cli_on_lava_dl_files(capsys, tmp_path):
    np.save(tmp_path / "m.npy", (np.random.default_rng(4).random(784) * 100).astype(np.int32))
    code, out, _ = run_cli(capsys, "energy", NETX_TESTS / "mnist.net", "--input", tmp_path / "m.npy", "--steps", "5",
                           "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert [r["name"] for r in report["layers"]] == ["input", "layer/0", "layer/1", "layer/2", "layer/3"]
    assert report["steps"] == 5 and report["layers"][2]["synops"] > 0


def test_energy_cli_bad_input(capsys, nets, tmp_path):
    np.save(tmp_path / "gray.npy", np.zeros((1, 16, 16), np.float32))
    np.save(tmp_path / "ok.npy", np.zeros((3, 16, 16), np.float32))
    (tmp_path / "bad.toml").write_text('[terms.synop]\npj = -1.0\nsource = "s"\nevidence = "measured"\nscope = "per-term"\n')
    (tmp_path / "nosource.toml").write_text('[terms.synop]\npj = 1.0\nevidence = "measured"\nscope = "per-term"\n')
    (tmp_path / "broken.toml").write_text("terms = {")
    net = nets["deployable"]
    cases = [
        (("--input", tmp_path / "gray.npy"), "1 channels"),
        (("--input", tmp_path / "ok.npy", "--profile", "loihi3"), "unknown profile 'loihi3'"),
        (("--input", tmp_path / "ok.npy", "--profile", tmp_path / "bad.toml"), "positive"),
        (("--input", tmp_path / "ok.npy", "--profile", tmp_path / "nosource.toml"), "no 'source'"),
        (("--input", tmp_path / "ok.npy", "--profile", tmp_path / "broken.toml"), "not valid TOML"),
        (("--input", tmp_path / "ok.npy", "--plot", tmp_path / "e.gif"), "--plot"),
    ]
    for args, fragment in cases:
        code, _, err = run_cli(capsys, "energy", net, *args)
        assert_one_line_error(code, err, fragment)
    np.save(tmp_path / "wrong.npy", np.zeros((3, 8, 8), np.int32))
    code, _, err = run_cli(capsys, "energy", NETX_TESTS / "tiny.net", "--input", tmp_path / "wrong.npy")
    assert_one_line_error(code, err, "(3, 8, 8)")


def test_compare_cli(capsys, tmp_path):
    small = {name: _checkpoint(tmp_path / f"{name}.pt", arch, config, 5) for name, arch, config in (
        ("vlifnet", "vlifnet", SMALL), ("esdnet", "esdnet", SMALL), ("deployable", "vlifnet", DEPLOYABLE))}
    code, out, _ = run_cli(capsys, "compare", "--vlifnet", small["vlifnet"], "--esdnet", small["esdnet"],
                           "--deployable", small["deployable"], "--size", "16", "--release-size", "16", "--format",
                           "json", "--json-out", tmp_path / "c.json")
    assert code == 0
    result = json.loads(out)
    assert json.loads((tmp_path / "c.json").read_text()) == result
    entries = {(e["setting"], e["arch"]): e for e in result["entries"]}
    assert set(entries) == {(s, a) for s in ("release", "small") for a in ("vlifnet", "esdnet")}
    assert entries["release", "vlifnet"]["config"]["dim"] == 48 and "random" in entries["release", "vlifnet"]["weights"]
    assert [e["random_weights"] for e in result["entries"]] == [e["setting"] == "release" for e in result["entries"]]
    for e in entries.values():  # dead layers: body convs without an effective op
        assert e["dead"] == [op["name"] for op in e["counts"]["ops"] if op["stage"] == "body" and op["effective"] == 0]
    for e in entries.values():  # priced at 0.9 pJ per AC and 4.6 pJ per MAC
        for convention in ("activity", "strict", "ann"):
            n = e["counts"][convention]
            energy = e["energy_pj"][convention]
            assert energy > 0 and energy == pytest.approx(0.9 * n["ac"] + 4.6 * n["mac"])
    v, d = entries["small", "vlifnet"], entries["small", "esdnet"]
    assert result["ratios"]["small"]["activity"] == pytest.approx(v["energy_pj"]["activity"] / d["energy_pj"]["activity"])
    assert v["deployed"]["host_layers"] == 0 and d["deployed"]["host_layers"] > 0
    assert "macs" in d["deployed"]["unpriced"]  # host MACs: Loihi cannot price them
    code, out, _ = run_cli(capsys, "compare", "--vlifnet", small["vlifnet"], "--esdnet", small["esdnet"],
                           "--deployable", small["deployable"], "--size", "16", "--no-release")
    assert code == 0 and "VLIFNet/ESDNet (small)" in out and "(paper:" not in out and "not comparable with its 13%" in out
    assert "VLIFNet/ESDNet (release)" not in out
    code, _, err = run_cli(capsys, "compare", "--vlifnet", tmp_path / "missing.pt", "--esdnet", small["esdnet"],
                           "--deployable", small["deployable"], "--size", "16", "--no-release")
    assert_one_line_error(code, err, "missing.pt")
    code, out, _ = run_cli(capsys, "compare", "--size", "16", "--no-release")  # the bundled models, by name
    assert code == 0 and "vlifnet_small_deployable" in out
