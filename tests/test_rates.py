"""Measured per-layer rates: what a rate is, the analytic mode fed them, provenance, flags and bad input."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from neuro_deploy import zoo
from neuro_deploy.counting.hooks import count_float
from neuro_deploy.data import make_synthetic_rain
from neuro_deploy.energy import analytic, compare
from neuro_deploy.energy import rates as measured
from neuro_deploy.energy.profiles import load_profile

from test_cli import assert_one_line_error, run_cli

SIZE = 16
SMALL = {"dim": 8, "en_num_blocks": [1, 1, 1, 1], "de_num_blocks": [1, 1, 1, 1]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rates") / "rain"
    make_synthetic_rain(root, 3, size=SIZE, seed=1)
    return root


def _rates(capsys, checkpoint, data, out, *args) -> tuple[dict, str]:
    code, _, err = run_cli(capsys, "rates", checkpoint, "--data", data, "-o", out, "--size", SIZE, *args)
    assert code == 0, err
    return json.loads(out.read_text()), err


def test_a_rate_is_effective_ops_over_dense_macs_summed_over_the_images(capsys, data, tmp_path):
    """Keys are exactly the analytic mode's rated layers; each rate is sum(effective) / sum(dense) over
    the images (not a mean of per-image ratios); provenance and the spike rate come with them."""
    result, _ = _rates(capsys, "esdnet_small", data, tmp_path / "e.json")
    ckpt = zoo.read_checkpoint("esdnet_small")
    model = zoo.build_from(ckpt)
    images = measured.load_images(measured.image_paths(data), SIZE)
    per_image = [count_float(model, image[None]) for image in images]
    rated = analytic.analyze("esdnet", ckpt.config, SIZE).rated_layers()
    assert list(result["rates"]) == rated
    for name in rated:
        ops = [next(op for op in c.ops if op.name == name) for c in per_image]
        assert result["rates"][name] == sum(op.effective for op in ops) / sum(op.dense_macs for op in ops), name
    spikes = sum(c.spikes for c in per_image) / sum(c.neuron_outputs for c in per_image)
    assert result["spike_rate"] == pytest.approx(spikes, rel=1e-12)
    assert (result["arch"], result["config"], result["checkpoint"], result["images"], result["size"], result["T"]) == (
        "esdnet", ckpt.config, "esdnet_small", 3, SIZE, 4)
    assert result["weights"] == f"trained ({ckpt.meta['steps_done']} steps)" and result["random_weights"] is False
    assert result["dead"] == [n for n, r in result["rates"].items() if r == 0]
    _, _, err = run_cli(capsys, "rates", "esdnet_small", "--data", data / "input", "-o", tmp_path / "one.json",
                        "--size", SIZE, "--limit", "1")  # a plain folder of images, and --limit
    assert json.loads((tmp_path / "one.json").read_text())["images"] == 1


def test_analytic_with_measured_rates_equals_the_activity_counts_of_the_same_image(capsys, data, tmp_path):
    """The two code paths agree: fed the rates measured on one image (same size and T, exact counting),
    the global-rate method charges every rated layer the effective ops the forward did, so its ACs and
    MACs are the activity-based convention's, network by network."""
    image = data / "input" / "syn_0000.png"
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(image, one / image.name)
    files = {arch: tmp_path / f"{arch}.json" for arch in analytic.ARCHS}
    for arch in analytic.ARCHS:
        _rates(capsys, f"{arch}_small", one, files[arch])
    code, out, err = run_cli(capsys, "compare", "--analytic", "--firing-rate",
                             ",".join(f"{a}={f}" for a, f in files.items()), "--size", SIZE, "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    x = measured.load_images([image], SIZE)
    fp32 = load_profile("cmos45_fp32")
    for arch in analytic.ARCHS:
        net = result["networks"][arch]
        assert net["config"] == {**zoo.read_checkpoint(f"{arch}_small").config}  # taken from the rates file
        counts = count_float(zoo.load(f"{arch}_small"), x)
        ops = {op.name: op for op in counts.ops}
        for layer in net["layers"]:
            if layer["category"] in analytic.RATED:
                assert layer["ac"] == pytest.approx(ops[layer["name"]].effective, rel=1e-12, abs=1e-9), layer["name"]
        activity = counts.convention("activity")
        assert net["ac"] == pytest.approx(activity["ac"], rel=1e-12)
        assert net["mac"] == activity["mac"]
        assert net["energy_pj"] == pytest.approx(fp32.terms["ac"].pj * activity["ac"] + fp32.terms["mac"].pj
                                                 * activity["mac"], rel=1e-12)
        assert net["rates_from"]["checkpoint"] == f"{arch}_small" and net["random_weights"] is False
    assert result["random_weights"] is False


def test_measured_config_is_taken_or_a_mismatch_refused(capsys, data, tmp_path):
    path = tmp_path / "v.json"
    _rates(capsys, "vlifnet_small", data, path, "--limit", "1")
    code, out, _ = run_cli(capsys, "compare", "--analytic", "--firing-rate", f"vlifnet={path},esdnet=0.2", "--size",
                           SIZE, "--format", "json")
    assert code == 0
    nets = json.loads(out)["networks"]
    assert nets["vlifnet"]["config"]["dim"] == 8 and nets["esdnet"]["config"]["dim"] == 48  # the file's; the release
    for args, ours, theirs in ((("--vlifnet", "dim=16"), "dim=8", "dim=16"), (("--timesteps", "2"), "T=4", "T=2"),
                               (("--preset", "paper"), "dim=8", "dim=24")):  # one line naming both
        code, _, err = run_cli(capsys, "compare", "--analytic", "--firing-rate", f"vlifnet={path},esdnet=0.2",
                               "--size", SIZE, *args)
        assert_one_line_error(code, err, f"rates measured on vlifnet ({ours}", f"the analytic vlifnet is ({theirs}")
        assert code == 2
    code, _, err = run_cli(capsys, "compare", "--analytic", "--firing-rate", f"vlifnet=0.2,esdnet={path}")
    assert_one_line_error(code, err, "measured on 'vlifnet', not esdnet")
    code, _, err = run_cli(capsys, "compare", "--analytic", "--firing-rate", path)
    assert_one_line_error(code, err, f"give it as vlifnet={path}")
    bad = json.loads(path.read_text())
    bad["rates"][next(iter(bad["rates"]))] = 1.5
    path.write_text(json.dumps(bad))
    code, _, err = run_cli(capsys, "compare", "--analytic", "--firing-rate", f"vlifnet={path},esdnet=0.2")
    assert_one_line_error(code, err, "not a number in [0, 1]")
    del bad["rates"][next(iter(bad["rates"]))]
    path.write_text(json.dumps(bad))
    code, _, err = run_cli(capsys, "compare", "--analytic", "--firing-rate", f"vlifnet={path},esdnet=0.2")
    assert_one_line_error(code, err, "do not match its layers", "no rate for 1 of")
    assert code == 2


def test_random_weights_are_flagged_and_never_set_beside_the_paper(capsys, data, tmp_path):
    torch.manual_seed(0)
    untrained = tmp_path / "untrained.pt"  # what `train --steps 0` leaves: a training record of no step
    zoo.save_checkpoint(untrained, zoo.Checkpoint("vlifnet", dict(SMALL), zoo.build("vlifnet", **SMALL).state_dict(),
                                                   {"steps_done": 0}))
    result, err = _rates(capsys, untrained, data, tmp_path / "r.json", "--limit", "1")
    assert result["random_weights"] is True and result["weights"].startswith("untrained")
    assert "random (untrained) weights" in err
    rates_arg = f"vlifnet={tmp_path / 'r.json'},esdnet=0.2"
    code, out, _ = run_cli(capsys, "compare", "--analytic", "--firing-rate", rates_arg, "--size", SIZE)
    ratio_line = next(line for line in out.splitlines() if line.startswith("VLIFNet/ESDNet ="))
    assert "RANDOM" in ratio_line and "not comparable" in ratio_line and "(paper: 13%)" not in out
    assert "VLIFNet energy (random weights)" in out
    code, out, _ = run_cli(capsys, "compare", "--analytic", "--firing-rate", rates_arg, "--size", SIZE, "--format", "json")
    result = json.loads(out)
    assert result["random_weights"] is True and result["networks"]["vlifnet"]["random_weights"] is True
    assert result["networks"]["esdnet"]["random_weights"] is False


def test_compare_flags_random_rows_and_keeps_their_ratio_off_the_paper_line():
    """The release rows of `compare` have random weights: their ratio is printed only with the flag."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, SIZE, SIZE)
    fp32 = load_profile("cmos45_fp32")
    result = compare.Comparison(profile="cmos45_fp32", loihi_profile="loihi")
    for arch in analytic.ARCHS:
        counts = count_float(zoo.build(arch, **SMALL), x)
        result.entries.append(compare.Entry("release", arch, dict(SMALL), compare.RANDOM_WEIGHTS, SIZE, counts,
                                            compare._price(counts, fp32), random_weights=True))
    line = next(line for line in compare.comparison_lines(result) if line.startswith("VLIFNet/ESDNet (release"))
    assert "RANDOM WEIGHTS" in line and "not comparable" in line and "(paper: 13%)" not in line
    assert all(e["random_weights"] for e in result.to_json()["entries"])
    for e in result.entries:
        e.random_weights = False
    line = next(line for line in compare.comparison_lines(result) if line.startswith("VLIFNet/ESDNet (release"))
    assert "not comparable with its 13%" in line and "(paper:" not in line and "RANDOM" not in line


def test_dead_layers_are_warned_and_silent_inputs_are_not_binary(capsys, data, tmp_path):
    """A trained VLIFNet whose first conv is zeroed: the layers it feeds never see a non-zero value."""
    ckpt = zoo.read_checkpoint("vlifnet_small")
    ckpt.state_dict = {k: torch.zeros_like(v) if k.startswith("patch_embed.") else v for k, v in ckpt.state_dict.items()}
    path = tmp_path / "dead.pt"
    zoo.save_checkpoint(path, ckpt)
    result, err = _rates(capsys, path, data, tmp_path / "dead.json", "--limit", "2")
    dead = result["dead"]
    assert dead and dead == [n for n, r in result["rates"].items() if r == 0]
    warning = next(line for line in err.splitlines() if "dead" in line)
    assert f"{len(dead)} of {len(result['rates'])} rated layers are dead" in warning
    assert all(name in warning for name in dead) and result["silent_neurons"]
    counts = count_float(zoo.build_from(ckpt), measured.load_images(measured.image_paths(data, 1), SIZE))
    structural = {op.name: op.input for op in analytic.analyze("vlifnet", ckpt.config, SIZE).ops}
    silent = [op for op in counts.ops if op.input == "silent"]
    assert any(structural[op.name] == "binary" for op in silent)  # a LIF's output, all zeros: not called binary
    assert all(not op.binary and op.effective == 0 for op in silent)
    strict = counts.convention("strict")
    assert strict["ac"] + strict["mac"] == sum(op.effective for op in counts.ops)
    code, out, _ = run_cli(capsys, "compare", "--analytic", "--firing-rate", f"vlifnet={tmp_path / 'dead.json'},esdnet=0.2",
                           "--size", SIZE)
    assert code == 0 and f"vlifnet: {len(dead)} of" in out and dead[0] in out


def test_bad_input_is_one_line_before_any_work(capsys, data, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    own = tmp_path / "ckpt.json"  # a checkpoint may have any name: the output must not replace it
    shutil.copy(zoo.read_checkpoint("vlifnet_small").path, own)
    for checkpoint, folder, out, args, fragment in (
            ("vlifnet_small", tmp_path / "missing", "r.json", (), "does not exist"),
            ("vlifnet_small", empty, "r.json", (), "no images in"),
            ("vlifnet_small", broken, "r.json", (), "cannot read image"),
            (own, data, own, (), "it is the input"),
            ("vlifnet_small", data, "r.txt", (), "*.json"),
            ("vlifnet_small", data, "r.json", ("--size", "12"), "multiple of 8"),
            ("no_such_model", data, "r.json", (), "checkpoint not found")):
        code, _, err = run_cli(capsys, "rates", checkpoint, "--data", folder, "-o", tmp_path / out, *args)
        assert code == 2
        assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "r.txt").exists()


def test_the_bundled_release_rates_price_the_trained_release_networks(capsys):
    """`--preset release-cpu`: the release configurations at the per-layer rates measured on their
    CPU-trained weights, read from the package data with their configurations."""
    from neuro_deploy.common import resources

    code, out, err = run_cli(capsys, "compare", "--preset", "release-cpu", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["preset"] == "release-cpu" and not result["random_weights"] and 0 < result["ratio"]
    for arch in ("vlifnet", "esdnet"):
        net = result["networks"][arch]
        profile = json.loads(resources.bundled_rates(f"{arch}_release_cpu").read_text())
        assert all(net["config"][k] == v for k, v in analytic.RELEASE[arch].items())  # the release configuration
        assert net["rates_from"]["sha256"] == profile["sha256"] and net["rates_from"]["weights"].startswith("trained")
        rated = {row["name"]: row["rate"] for row in net["layers"] if row["name"] in profile["rates"]}
        assert rated == profile["rates"]  # every rated layer priced at its own measured rate
    code, out, _ = run_cli(capsys, "compare", "--analytic", "--firing-rate",
                           "vlifnet=vlifnet_release_cpu,esdnet=esdnet_release_cpu", "--format", "json")
    assert code == 0 and json.loads(out)["ratio"] == result["ratio"]  # the names are the preset's profiles
    code, _, err = run_cli(capsys, "compare", "--analytic", "--firing-rate", "vlifnet=nonesuch,esdnet=0.2")
    assert_one_line_error(code, err, "nonesuch", "bundled rate profile", "esdnet_release_cpu")
