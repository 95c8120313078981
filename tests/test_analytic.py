"""Analytic counts from the architecture alone, the global-rate method, thop's view, presets, sweeps and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from neuro_deploy import zoo
from neuro_deploy.counting.hooks import count_float
from neuro_deploy.energy import analytic
from neuro_deploy.energy.analytic import Settings
from neuro_deploy.energy.profiles import load_profile
from neuro_deploy.errors import NeuroDeployError

from test_cli import assert_one_line_error, run_cli

SMALL = {"dim": 8, "en_num_blocks": [1, 1, 2, 1], "de_num_blocks": [1, 2, 1, 1]}
CONFIGS = [("vlifnet", {**SMALL, "use_refinement": True}),
           ("vlifnet", {**SMALL, "attention": False, "enhance_product": False}),
           ("esdnet", SMALL)]
FP32 = load_profile("cmos45_fp32")


@pytest.mark.parametrize("arch, config", CONFIGS)
def test_analytic_macs_equal_the_counts_of_a_float_forward(arch, config):
    """Every op the hooks count in a real forward, with the same dense MACs, steps and a structural
    input kind that agrees with the values the forward saw."""
    torch.manual_seed(0)
    model = zoo.build(arch, **config)
    measured = {op.name: op for op in count_float(model, torch.rand(1, 3, 16, 16)).ops}
    counted = {op.name: op for op in analytic.analyze(arch, config, 16).ops}
    assert set(counted) == set(measured)
    for name, op in counted.items():
        assert (op.macs, op.steps) == (measured[name].dense_macs, measured[name].steps), name
        if op.input == "binary":  # a LIF spike is 0 or 1 whatever the weights (all 0: silent, not binary)
            assert measured[name].input in ("binary", "silent"), name
    assert analytic.analyze(arch, config, 16).params == sum(p.numel() for p in model.parameters())


def test_categories_follow_the_structure():
    ops = {op.name: op for op in analytic.analyze("vlifnet", SMALL, 16).ops}
    assert ops["patch_embed.proj"].category == "first"
    assert ops["output.0"].category == "tail" and ops["output.0"].steps == 1
    block = "encoder_level2.0"
    for conv in ("conv1", "conv2", "shortcut.0"):  # a*s + b*(x - s) + x*s and the shortcut: real-valued
        assert ops[f"{block}.{conv}"].category == "body_real" and ops[f"{block}.{conv}"].input == "real"
    assert ops[f"{block}.lif_2.channel_adjust"].category == "channel_adjust"
    assert ops[f"{block}.lif_2.channel_adjust"].macs == 16 * (4 * 16) * 8 * 8 * 4  # 1x1, 4C -> C at level 2 (8x8), T=4
    for conv in ("down1_2.conv", "up3_2.conv", "reduce_conv_level2", "encoder_level1.conv_1"):
        assert ops[conv].category == "body_binary" and ops[conv].input == "binary"
    assert {ops[f"{block}.attn"].category, ops[f"{block}.products"].category} == {"gates"}
    deployable = {op.name: op for op in analytic.analyze("vlifnet", {**SMALL, "attention": False,
                                                                    "enhance_product": False}, 16).ops}
    assert deployable["encoder_level1.temporal_compress.0"].input == "graded"  # NI-LIF levels, no gate
    assert ops["encoder_level1.temporal_compress.0"].input == "real"  # NI-LIF levels times the time gate
    esd = {op.name: op for op in analytic.analyze("esdnet", SMALL, 16).ops}
    assert esd["refinement"].category == "tail" and esd["refinement"].part == "refinement"
    assert esd["encoder_level1.0.residual.1"].category == "body_binary"
    assert not any(op.category == "channel_adjust" for op in esd.values())


def test_textbook_counting_counts_every_tap():
    exact = {op.name: op.macs for op in analytic.analyze("esdnet", SMALL, 16).ops}
    textbook = {op.name: op.macs for op in analytic.analyze("esdnet", SMALL, 16, counting="textbook").ops}
    assert textbook["patch_embed.proj"] == 8 * 3 * 9 * 16 * 16 * 4  # Cout Cin k^2 H W T
    assert exact["patch_embed.proj"] == 8 * 3 * (3 * 16 - 2) ** 2 * 4  # corner/edge/centre taps
    assert textbook["down1_2.maxpool_conv.1"] == 16 * 8 * 9 * 8 * 8 * 4  # stride 2: k^2 per output
    assert textbook["reduce_chan_level2.1"] == exact["reduce_chan_level2.1"]  # 1x1: no border
    assert all(textbook[n] >= exact[n] for n in exact)


def test_release_parameters_and_thop_view():
    """thop counts only exact nn.Conv2d/Conv3d/...: it misses the multi-step SeqConv2d and TdBN."""
    counts = {arch: analytic.analyze(arch, analytic.RELEASE[arch], 256) for arch in analytic.ARCHS}
    assert (counts["vlifnet"].params, counts["vlifnet"].thop.params) == (14_023_911, 86_507)
    assert (counts["esdnet"].params, counts["esdnet"].thop.params) == (12_811_463, 165_911)
    for c in counts.values():
        assert c.params == c.thop.params + sum(c.thop.missed_params.values())
        assert c.thop.missed_params["SeqConv2d"] > 0.98 * c.params


def test_thop_macs_by_hand_on_a_small_esdnet():
    """What thop prints when the release runs its gates' convs as modules: the MDA MLPs on the pooled
    summaries (twice each), the spatial gates, the refinement and the output conv; no SeqConv2d."""
    T, C, hw = 4, 8, 16
    net = analytic.analyze("esdnet", {"dim": C, "en_num_blocks": [1] * 4, "de_num_blocks": [1] * 4}, hw)
    blocks = [(C, hw), (2 * C, hw // 2), (4 * C, hw // 4), (4 * C, hw // 4), (2 * C, hw // 2), (2 * C, hw)]
    mda = sum(4 * T * 1 + 4 * ch * max(ch // 16, 1) + 2 * 9 * side**2 for ch, side in blocks)
    c2 = 2 * C
    refinement = (hw * hw + 1) * c2 + 2 * c2 * (c2 // 8) + (c2 * c2 + 2 * c2 * (c2 // 8)) * 9 * hw * hw
    assert net.thop.macs == mda + refinement + 3 * c2 * 9 * hw * hw  # + the output conv


def _by_hand(priced: analytic.Priced, settings: Settings, rate: float) -> float:
    energy = 0.0
    for op in priced.net.ops:
        if op.switch() in settings.exclude:
            continue
        if op.category == "first":
            energy += 4.6 * (op.macs if settings.first_layer == "per-step" else op.macs / op.steps)
        elif op.category == "body_binary" or op.category in analytic.RATED and settings.real_inputs == "ac":
            energy += 0.9 * rate * op.macs
        else:
            energy += 4.6 * op.macs
    return energy


@pytest.mark.parametrize("settings", list(analytic.scenarios())[::5])
def test_global_rate_pricing_by_hand(settings):
    net = analytic.analyze("vlifnet", SMALL, 16)
    priced = analytic.price(net, 0.25, settings, FP32)
    assert priced.energy_pj == pytest.approx(_by_hand(priced, settings, 0.25))
    assert priced.ann_pj == pytest.approx(4.6 * sum(op.macs / op.steps for op in net.ops))


def test_per_layer_rates_must_match_the_layers(tmp_path):
    net = analytic.analyze("esdnet", SMALL, 16)
    rates = {name: 0.5 for name in net.rated_layers()}
    assert analytic.price(net, rates, Settings(), FP32).energy_pj == pytest.approx(
        analytic.price(net, 0.5, Settings(), FP32).energy_pj)
    with pytest.raises(NeuroDeployError, match="no rate for 1 of"):
        analytic.price(net, {k: v for k, v in list(rates.items())[1:]}, Settings(), FP32)
    with pytest.raises(NeuroDeployError, match="names it does not have"):
        analytic.price(net, {**rates, "not.a.layer": 0.1}, Settings(), FP32)
    both, one = tmp_path / "rates.json", tmp_path / "esdnet.json"
    both.write_text(json.dumps({"vlifnet": 0.2, "esdnet": rates}))
    one.write_text(json.dumps(rates))
    assert analytic.parse_rates(str(both)) == {"vlifnet": 0.2, "esdnet": rates}
    assert analytic.parse_rates(f"vlifnet=0.1,esdnet={one}") == {"vlifnet": 0.1, "esdnet": rates}


@pytest.mark.parametrize("parameter", analytic.SOLVE)
def test_the_solved_value_reproduces_the_target_ratio(parameter):
    a = analytic.run({"vlifnet": SMALL, "esdnet": SMALL}, {"vlifnet": 0.2, "esdnet": 0.2}, Settings(), FP32, 16)
    target = a.ratio * 0.9
    value = analytic.solve(a, parameter, target)
    assert value is not None and value != pytest.approx(0.2)
    assert analytic.with_rate(a, parameter, value).ratio == pytest.approx(target, rel=1e-9)
    assert analytic.solution(a, parameter, target)["ratio_at_value"] == pytest.approx(target, rel=1e-9)


def test_paper_preset_replays_the_original_call(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "compare", "--preset", "paper", "--format", "json", "--json-out", tmp_path / "p.json")
    assert code == 0
    result = json.loads(out)
    assert json.loads((tmp_path / "p.json").read_text()) == result
    v, e = result["networks"]["vlifnet"], result["networks"]["esdnet"]
    assert (v["config"]["dim"], v["config"]["en_num_blocks"], v["config"]["de_num_blocks"]) == (24, [4, 4, 6, 6], [4, 4, 6, 6])
    assert (e["config"]["dim"], e["config"]["en_num_blocks"], e["config"]["de_num_blocks"]) == (48, [4, 4, 8, 8], [2, 2, 2, 2])
    assert v["rate"] == e["rate"] == 0.1642 and v["size"] == e["size"] == 256 and v["T"] == e["T"] == 4
    assert result["ratio"] == pytest.approx(v["energy_pj"] / e["energy_pj"])
    assert v["energy_pj"] == pytest.approx(0.9 * v["ac"] + 4.6 * v["mac"])
    assert sum(c["dense_macs"] for c in v["categories"].values()) == v["dense_macs"] == sum(
        s["dense_macs"] for s in v["stages"].values())
    assert result["solve"]["ratio_at_value"] == pytest.approx(0.13)


def test_sweep_solves_every_scenario(capsys):
    code, out, _ = run_cli(capsys, "compare", "--analytic", "--vlifnet", "dim=8,en=1,1,1,1,de=1,1,1,1", "--esdnet",
                           "dim=8,en=1,1,1,1,de=1,1,1,1", "--size", "16", "--firing-rate", "vlifnet=0.1,esdnet=0.3",
                           "--sweep", "--solve", "vlifnet-rate", "--target-ratio", "0.2", "--format", "json")
    assert code == 0
    result = json.loads(out)
    rows = result["sweep"]["scenarios"]
    assert len(rows) == 32 and len({(r["first_layer"], r["real_inputs"], tuple(r["exclude"])) for r in rows}) == 32
    base = analytic.run({a: {"dim": 8, "en_num_blocks": [1] * 4, "de_num_blocks": [1] * 4} for a in analytic.ARCHS},
                        {"vlifnet": 0.1, "esdnet": 0.3}, Settings(), FP32, 16)
    for row in rows[:4]:
        a = analytic.rescaled(base, Settings(row["first_layer"], row["real_inputs"], frozenset(row["exclude"])))
        assert a.ratio == pytest.approx(row["ratio"])
        if row["solved"] is not None:
            assert analytic.with_rate(a, "vlifnet-rate", row["solved"]).ratio == pytest.approx(0.2)
    code, out, _ = run_cli(capsys, "compare", "--preset", "paper", "--sweep")
    assert code == 0 and "Scenarios" in out and "VLIFNet/ESDNet = " in out and "thop would print" in out


def test_specs_configure_the_networks(capsys):
    code, out, _ = run_cli(capsys, "compare", "--vlifnet", "dim=8", "--esdnet", "dim=8,en=1,1,1,1", "--size", "16",
                           "--format", "json")  # a specification implies --analytic
    assert code == 0 and json.loads(out)["networks"]["esdnet"]["config"]["en_num_blocks"] == [1, 1, 1, 1]
    assert analytic.parse_spec("vlifnet", "dim=24,en=4,4,6,6,de=4,4,6,6,refinement=on") == {
        "dim": 24, "en_num_blocks": [4, 4, 6, 6], "de_num_blocks": [4, 4, 6, 6], "use_refinement": True}
    assert analytic.parse_spec("esdnet", "dim=32") == {**analytic.RELEASE["esdnet"], "dim": 32}
    with_refinement = analytic.analyze("vlifnet", analytic.parse_spec("vlifnet", "dim=8,refinement=on"), 16)
    assert any(op.stage == "refinement_blocks" for op in with_refinement.ops)
    assert analytic.analyze("vlifnet", SMALL, 16, T=2).T == 2


@pytest.mark.parametrize("args, fragment", [
    (("--vlifnet", "dim=24,en=4,4,6"), "expected 4 non-negative integers"),
    (("--vlifnet", "dim=x"), "expected integers"),
    (("--vlifnet", "width=24"), "unknown key 'width'"),
    (("--vlifnet", "dim=24,dim=8"), "given twice"),
    (("--vlifnet", "4,4,6,6"), "neither a specification"),
    (("--vlifnet", "dim=8,,4"), "expected key=value"),
    (("--esdnet", "dim=8,refinement=on"), "unknown key 'refinement'"),
    (("--vlifnet", "dim=8,attention=maybe"), "expected on or off"),
    (("--vlifnet", "no_such.pt"), "neither a specification"),
    (("--firing-rate", "1.5"), "not a number in [0, 1]"),
    (("--firing-rate", "-0.1"), "not a number in [0, 1]"),
    (("--firing-rate", "vlifnet=0.2"), "no rate for esdnet"),
    (("--firing-rate", "vlifnet=0.2,esdnet=abc"), "not a number, a rates JSON file nor a bundled rate profile"),
    (("--firing-rate", "missing.json"), "rates file not found"),
    (("--size", "100"), "multiple of 8"),
    (("--timesteps", "0"), "at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, fragment):
    code, _, err = run_cli(capsys, "compare", "--analytic", *args)
    assert code == 2
    assert_one_line_error(code, err, fragment)


def test_rates_json_not_matching_the_layers_is_refused(capsys, tmp_path):
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"vlifnet": {"patch_embed.proj": 0.1}, "esdnet": 0.2}))
    code, _, err = run_cli(capsys, "compare", "--analytic", "--firing-rate", path)
    assert code == 2
    assert_one_line_error(code, err, "firing rates for vlifnet", "do not match its layers")
    path.write_text(json.dumps({"vlifnet": {"x": 2.0}, "esdnet": 0.2}))
    code, _, err = run_cli(capsys, "compare", "--analytic", "--firing-rate", path)
    assert_one_line_error(code, err, "not a number in [0, 1]")
    path.write_text("[1, 2]")
    code, _, err = run_cli(capsys, "compare", "--analytic", "--firing-rate", path)
    assert_one_line_error(code, err, "exactly the keys")


def test_profiles_state_their_chip_and_grade_carried_over_figures():
    loihi = load_profile("loihi")
    assert loihi.terms["synop_graded"].evidence == "assumed"  # Loihi 1's binary figure for graded spikes
    assert all("Table 2" in t.source for t in loihi.terms.values())
    spinnaker = load_profile("spinnaker2")
    assert "28 nm" in spinnaker.title and all("28 nm" in t.source for t in spinnaker.terms.values())
    assert "0.775 V" in load_profile("truenorth").terms["synop"].note
    fp16, fp32, cpu = (load_profile(p) for p in ("gpu_a100", "gpu_a100_fp32", "cpu_xeon8380"))
    assert "fp16" in fp16.title and "fp32" in fp32.title and "fp32" in cpu.title
    assert fp32.terms["mac"].pj == pytest.approx(400 / (19.5e12 / 2) * 1e12, rel=1e-3)
    assert all("Degnan" in p.terms["mac"].note for p in (fp16, fp32, cpu))
