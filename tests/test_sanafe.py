"""SANA-FE cross-check: the replay's synaptic events equal ours layer for layer, and the energies compare."""

from __future__ import annotations

import math
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from neuro_deploy.common import memory
from neuro_deploy.energy.profiles import load_profile
from neuro_deploy.errors import NeuroDeployError

pytest.importorskip("sanafe")

from neuro_deploy.crosscheck import sanafe as sanafe_check  # noqa: E402
from neuro_deploy.crosscheck.sanafe import TERMS, check_file  # noqa: E402
from neuro_deploy.crosscheck.sanafe_cost import estimate_bytes, replay_size  # noqa: E402

NETX_TESTS = Path(sysconfig.get_paths()["purelib"]) / "tests" / "lava" / "lib" / "dl" / "netx"  # lava-dl's own files


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """lava-dl's tiny.net (a conv net on a 3x16x16 input) replayed on 6 frames of random events."""
    path = tmp_path_factory.mktemp("sanafe") / "x.npy"
    np.save(path, (np.random.default_rng(0).random((6, 3, 16, 16)) * 200).astype(np.int32))
    return check_file(NETX_TESTS / "tiny.net", path)


def test_replay_synaptic_events_equal_ours_layer_for_layer(tiny):
    assert [layer.name for layer in tiny.layers] == ["input", "layer/0", "layer/1", "layer/2"]
    for layer in tiny.layers:
        assert layer.sanafe_synops == layer.synops, layer.name  # SANA-FE's connection tables vs our fan-out maps
        assert layer.sanafe_spikes == layer.spikes, layer.name  # the replay emits exactly our events
    assert sum(layer.synops for layer in tiny.layers) > 0 and not tiny.mismatches
    assert tiny.layers[2].synops > tiny.layers[3].synops > 0 and tiny.layers[1].synops == 0  # input neurons: no synapse


def test_sanafe_energies_add_up_to_its_own_breakdown(tiny):
    """The per-layer split of SANA-FE's energy is exactly its own per-category total."""
    assert tiny.reconciles
    mine = tiny.total("sanafe_pj")
    assert math.isclose(mine["synapse"], tiny.sanafe_reported["synapse"], rel_tol=1e-9)
    assert math.isclose(sum(mine.values()), tiny.sanafe_reported["total"], rel_tol=1e-9)
    # every synapse of tiny.net is a conv: SANA-FE's conv unit prices each event
    assert math.isclose(mine["synapse"], sum(x.sanafe_synops for x in tiny.layers) * tiny.unit_pj["synapse_conv"])


def test_energy_terms_are_positive_and_set_side_by_side(tiny):
    loihi = load_profile("loihi").terms
    ours, theirs = tiny.total("ours_pj"), tiny.total("sanafe_pj")
    for term in ("synapse", "neuron", "spike"):
        assert ours[term] > 0 and theirs[term] > 0, term
    assert theirs["message"] > 0  # one message per (spike, destination core): our profile has no such term
    synops = sum(x.synops for x in tiny.layers)
    assert math.isclose(ours["synapse"], synops * loihi["synop"].pj)  # tiny.net's events are all binary
    spikes = sum(x.spikes for x in tiny.layers if x.placement == "neurocore")
    assert math.isclose(ours["spike"], spikes * loihi["spike"].pj)
    assert math.isclose(theirs["spike"], spikes * tiny.unit_pj["spike_out"])
    json = tiny.to_json()
    assert json["agree"] and json["reconciles"] and set(json["total"]["sanafe_pj"]) == set(TERMS)
    assert json["chips"] == 1 and json["cores"] == 4  # a layer per core, all on tile 0: no mesh hops
    assert json["total"]["hops"] == 0 and theirs["noc"] == 0


def test_layers_on_other_tiles_pay_mesh_hops(tmp_path, monkeypatch):
    """Spread one core per tile: every message between layers now crosses the mesh, and the NoC
    term is SANA-FE's hops priced at its per-hop energies."""
    path = tmp_path / "x.npy"
    np.save(path, (np.random.default_rng(1).random((3, 3, 16, 16)) * 200).astype(np.int32))
    place = sanafe_check._place

    def one_core_per_tile(*args):
        layers = place(*args)
        for i, layer in enumerate(layers):
            layer.cores = [4 * (5 * i + 1)]  # tiles 1, 6, 11, 16
        return layers

    monkeypatch.setattr(sanafe_check, "_place", one_core_per_tile)
    check = check_file(NETX_TESTS / "tiny.net", path)
    assert check.reconciles and not check.mismatches
    hops = sum(x.hops for x in check.layers)
    assert hops >= sum(x.messages for x in check.layers) > 0
    energy = check.total("sanafe_pj")["noc"]
    low, high = (min(v for k, v in check.unit_pj.items() if k.startswith("hop_")),
                 max(v for k, v in check.unit_pj.items() if k.startswith("hop_")))
    assert low * hops <= energy <= high * hops


def test_missing_sanafe_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "sanafe", None)  # what Python does with a module that cannot be imported
    with pytest.raises(NeuroDeployError) as err:
        check_file(NETX_TESTS / "tiny.net", "unused.npy")
    message = str(err.value)
    assert "\n" not in message and "pip install neuro-deploy[sanafe]" in message


def test_bad_chip_count_is_one_line(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((2, 3, 16, 16), np.int32))
    with pytest.raises(NeuroDeployError, match="chips must be at least 1"):
        check_file(NETX_TESTS / "tiny.net", path, chips=0)


def test_the_cli_prints_the_check_and_agrees_with_the_module(tiny, tmp_path, capsys):
    import json

    from test_cli import run_cli

    x = tmp_path / "x.npy"
    np.save(x, (np.random.default_rng(0).random((6, 3, 16, 16)) * 200).astype(np.int32))
    code, out, _ = run_cli(capsys, "cross-check", "sanafe", NETX_TESTS / "tiny.net", "--input", x, "--format", "json")
    assert code == 0
    got, expected = json.loads(out)["total"], tiny.to_json()["total"]  # the same input: the same replay
    for key in ("synops", "sanafe_synops", "spikes", "sanafe_spikes", "messages", "hops"):
        assert got[key] == expected[key], key
    for side in ("ours_pj", "sanafe_pj"):  # the CLI's JSON keeps 6 significant digits
        assert got[side] == pytest.approx(expected[side], rel=1e-5), side
    code, out, _ = run_cli(capsys, "cross-check", "sanafe", NETX_TESTS / "tiny.net", "--input", x, "--layers")
    assert code == 0 and "4 of 4 layers agree exactly" in out and "layer/2" in out


# ---- cost: the memory estimate, out of memory, progress --------------------------------------------

def _events(tmp_path: Path, frames: int = 6) -> Path:
    x = tmp_path / "x.npy"
    np.save(x, (np.random.default_rng(0).random((frames, 3, 16, 16)) * 200).astype(np.int32))
    return x


def _estimate(net_path: Path, x: Path) -> float:
    from neuro_deploy.counting.run import run_input
    from neuro_deploy.formats.netx import read_network

    net = read_network(net_path)
    return estimate_bytes(replay_size(net, *run_input(net, x), None))


def test_a_replay_over_max_memory_is_refused_before_sanafe_is_imported(tmp_path):
    """In a fresh process: exit 2, one line naming the estimate and the limit, and SANA-FE never
    imported, so nothing of the replay was built."""
    from test_cli import assert_one_line_error

    x = _events(tmp_path)
    probe = ("import sys\nfrom neuro_deploy.cli import main\ntry:\n    main(sys.argv[1:])\n"
             "except SystemExit as exit:\n    print(exit.code, 'sanafe' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", probe, "--max-memory", "100M", "cross-check", "sanafe",
                          str(NETX_TESTS / "tiny.net"), "--input", str(x)], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["2", "False"], run.stdout + run.stderr
    estimate = memory.format_size(_estimate(NETX_TESTS / "tiny.net", x))
    assert_one_line_error(2, run.stderr, "SANA-FE replay", f"needs about {estimate} of memory (estimate)",
                          "more than the 100.0 MB limit set by --max-memory")


def test_a_replay_over_the_available_memory_is_refused(tmp_path, capsys, monkeypatch):
    from test_cli import assert_one_line_error, run_cli

    monkeypatch.setattr(memory, "available", lambda: 200 << 20)  # no --max-memory: 90% of what is free
    code, _, err = run_cli(capsys, "cross-check", "sanafe", NETX_TESTS / "tiny.net", "--input", _events(tmp_path))
    assert code == 2
    assert_one_line_error(code, err, "SANA-FE replay", "180.0 MB memory available")


def test_the_estimate_is_within_1_5x_of_the_measured_peak(tmp_path):
    """The replay of tiny.net in a child process: its peak resident set (VmHWM, the kernel's count for
    the process after exec; wait4's ru_maxrss also counts the pages of the test process the fork
    copied before exec, 1.37 GB late in a full run) against the estimate, within 1.5x either way."""
    x = _events(tmp_path)
    script = ("import sys\nfrom neuro_deploy.crosscheck.sanafe import check_file\n"
              "assert check_file(sys.argv[1], sys.argv[2]).reconciles\n"
              "print(next(line for line in open('/proc/self/status') if line.startswith('VmHWM')).split()[1])")
    child = subprocess.run([sys.executable, "-c", script, str(NETX_TESTS / "tiny.net"), str(x)],
                           capture_output=True, text=True)
    assert child.returncode == 0, child.stderr[-2000:]
    peak = int(child.stdout.split()[-1]) * 1024  # kB
    estimate = _estimate(NETX_TESTS / "tiny.net", x)
    assert 1 / 1.5 < estimate / peak < 1.5, (estimate, peak)


def test_out_of_memory_in_sanafe_is_one_line(tmp_path, capsys, monkeypatch):
    """A layer too large to allocate: SANA-FE's own std::bad_alloc becomes one line naming SANA-FE
    and the memory, exit 2 (the limit is off, so the estimate lets it through)."""
    from test_cli import assert_one_line_error, run_cli

    place = sanafe_check._place

    def huge_last_layer(*args):
        layers = place(*args)
        layers[-1].neurons = 2**31 - 1  # SANA-FE reserves its neurons at once: std::bad_alloc
        return layers

    monkeypatch.setattr(sanafe_check, "_place", huge_last_layer)
    code, _, err = run_cli(capsys, "-q", "--max-memory", "0", "cross-check", "sanafe", NETX_TESTS / "tiny.net",
                           "--input", _events(tmp_path))
    assert code == 2
    assert_one_line_error(code, err, "SANA-FE ran out of memory", "estimated", "available now")


def test_progress_names_every_phase_and_step(tmp_path, capsys):
    """With -v a log line per update: the connections, our run, SANA-FE's network and chip, each
    step; the share done only grows and ends at the whole."""
    from test_cli import run_cli

    code, _, err = run_cli(capsys, "-v", "cross-check", "sanafe", NETX_TESTS / "tiny.net", "--input",
                           _events(tmp_path), "--format", "json")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("cross-check sanafe: ")]
    phases = ("connections of layer/2.synapse", "our run", "SANA-FE network: layer/1 -> layer/2",
              "SANA-FE chip loaded", *(f"SANA-FE step {t}/6" for t in range(1, 7)))
    for phase in phases:
        assert any(phase in line for line in lines), (phase, err)
    done = [int(line.split()[2].split("/")[0]) for line in lines]
    assert done == sorted(done) and done[-1] == 1000, lines


def test_a_plain_netx_file_run_for_too_many_steps_is_refused_naming_steps(tmp_path, capsys):
    """Our run's masks (a byte per neuron and step) and fast run are in the estimate too: 10 million
    steps of tiny.net are refused before the run starts, and the line says which option to lower."""
    from test_cli import assert_one_line_error, run_cli

    x = tmp_path / "x.npy"
    np.save(x, np.ones((3, 16, 16), np.int32))  # one frame, repeated for every step
    code, _, err = run_cli(capsys, "cross-check", "sanafe", NETX_TESTS / "tiny.net", "--input", x, "--steps", "10000000")
    assert_one_line_error(code, err, "1 run(s) of 10000000 steps", "lower --steps")
    assert code == 2
