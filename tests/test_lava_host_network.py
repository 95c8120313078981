"""The paper's own small VLIFNet, host layers included, on Lava's processes.

Its 36 host layers (products, attention gates) run in one `HostLayers` process; every other layer
and synapse is a Lava process. The runs here check it layer for layer against the fast back end,
check the memory estimate against the measured process tree, and check that neither an interrupt
nor a SIGKILL of the command leaves a process, a file or a shared-memory segment behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from neuro_deploy.backends import lava as lava_backend
from neuro_deploy.backends.fast import run_fixed
from neuro_deploy.backends.lava import estimate_bytes, process_count, run_lava
from neuro_deploy.compile.convert import convert, write
from neuro_deploy.formats.netx import read_network
from neuro_deploy.ir.quantized import Drive
from neuro_deploy.run.simulate import place_windows

from conftest import reference_file
from process_tree import alive, descendants, pss_bytes
from test_cli import assert_one_line_error, run_cli

HOST_KINDS = {"mul", "mda_gate", "substep_gate"}


def small_vlifnet(folder: Path, size: int):
    """The reference small VLIFNet (dim 16, the paper's code's weights) converted at `size`."""
    ref = torch.load(reference_file("official_vlifnet_small.pt"), weights_only=True)
    torch.save(ref["state_dict"], folder / "m.pth")
    write(convert(folder / "m.pth", size=size), folder / "m.net")
    return read_network(folder / "m.net")


def fast_events(net, image: np.ndarray) -> dict[str, np.ndarray]:
    windows = {}
    run_fixed(net.quantized, torch.from_numpy(image)[None].float(), lambda n, o: windows.__setitem__(n.name, o))
    return place_windows(net, windows)


@pytest.fixture(scope="module")
def small16(tmp_path_factory):
    return small_vlifnet(tmp_path_factory.mktemp("small16"), 16)


@pytest.fixture(scope="module")
def short_run(small16):
    """The first steps of a 16x16 run, enough for every host kind to have fired, on both back ends;
    and what the run added to this process's memory at its peak: the summed PSS of this process
    and all it started, less this process's own before the run (what an estimate must find free)."""
    image = np.random.default_rng(3).random((3, 16, 16)).astype(np.float32)
    fast = fast_events(small16, image)
    graph = small16.quantized.graph
    active = {n: np.flatnonzero(v.reshape(len(v), -1).any(1)) for n, v in fast.items()}
    first = {kind: min(int(a[0]) for n, a in active.items() if graph.nodes[n].kind == kind and a.size)
             for kind in HOST_KINDS}  # the step each host kind first sends
    steps = max(first.values()) + 2
    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], pss_bytes([os.getpid(), *descendants(os.getpid())]))
            time.sleep(0.5)

    own = pss_bytes([os.getpid()])
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        lava = run_lava(small16.path, image, Drive(steps)).events
    finally:
        done.set()
        watcher.join()
    return lava, {n: v[:steps] for n, v in fast.items()}, steps, peak[0] - own


@pytest.mark.slow  # CI time (40 s): the deployable VLIFNet and the overflow test run Lava end to end in make test
def test_the_paper_small_vlifnet_with_host_layers_equals_the_fast_back_end_on_lava(small16, short_run):
    lava, fast, steps, _ = short_run
    q = small16.quantized
    assert small16.meta["host_layers"] == 36 and steps < int(small16.meta["steps"])
    assert set(lava) == set(fast) == set(q.layers)
    assert [n for n in fast if not np.array_equal(lava[n], fast[n])] == []
    active = {q.graph.nodes[n].kind for n, v in lava.items() if v.any()}
    assert HOST_KINDS | {"input", "lif", "nilif", "relay"} <= active


@pytest.mark.slow  # shares the run above
def test_the_lava_memory_estimate_bounds_a_measured_run(small16, short_run):
    *_, steps, measured = short_run
    estimate = estimate_bytes(small16.quantized, steps)
    assert measured <= estimate <= 4 * measured, (measured, estimate)


def test_a_lava_run_over_the_memory_limit_is_refused_before_any_process(capsys, small16, tmp_path):
    np.save(tmp_path / "in.npy", np.zeros((3, 16, 16), np.float32))
    before = set(Path(tempfile.gettempdir()).glob("neuro-deploy-lava-*"))
    code, _, err = run_cli(capsys, "--max-memory", "1G", "simulate", small16.path, "--input", tmp_path / "in.npy",
                           "-o", tmp_path / "out.npy", "--backend", "lava")
    assert_one_line_error(code, err, "on Lava", "36 of them host layers", "--max-memory")
    assert code == 2 and not (tmp_path / "out.npy").exists()
    assert set(Path(tempfile.gettempdir()).glob("neuro-deploy-lava-*")) == before  # no worker started


@pytest.mark.slow  # CI time: test_ray_local kills an evaluation with SIGKILL in make test
@pytest.mark.parametrize("sig,within", [(signal.SIGINT, 10), (signal.SIGKILL, 5)])
def test_killing_the_command_ends_its_lava_processes_files_and_shared_memory(small16, tmp_path, sig, within):
    np.save(tmp_path / "in.npy", np.random.default_rng(0).random((3, 16, 16)).astype(np.float32))
    cli = subprocess.Popen([sys.executable, "-m", "neuro_deploy.cli", "simulate", small16.path, "--input",
                            str(tmp_path / "in.npy"), "-o", str(tmp_path / "out.npy"), "--backend", "lava"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(descendants(cli.pid)) < process_count(small16.quantized):
            time.sleep(0.2)  # until Lava has forked all its processes
        pids = descendants(cli.pid)
        q = small16.quantized
        # every host layer in one process: the worker, Lava's memory manager and Python's resource tracker aside
        assert process_count(q) <= len(pids) <= process_count(q) + 3 < len(q.layers) + len(q.synapses)
        folder = Path(_worker_arguments(cli.pid)[-1])  # the run's folder, the worker's last argument
        assert folder.is_dir()
        segments = (folder / lava_backend.SEGMENTS_FILE).read_text().split()
        assert segments and all(Path("/dev/shm", name).exists() for name in segments)
        cli.send_signal(sig)
        start = time.monotonic()
        while time.monotonic() - start < within and (any(alive(p) for p in pids) or folder.exists()):
            time.sleep(0.1)
        assert not [p for p in pids if alive(p)]
        assert not folder.exists()
        assert not [name for name in segments if Path("/dev/shm", name).exists()]
        _, err = cli.communicate(timeout=10)
        assert cli.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL) and b"Traceback" not in err
        assert not (tmp_path / "out.npy").exists()
    finally:
        if cli.poll() is None:
            cli.kill()


def _worker_arguments(pid: int) -> list[str]:
    """The command line of the Lava worker among `pid`'s children."""
    for child in descendants(pid):
        args = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")[:-1]
        if "neuro_deploy.backends.lava" in args:
            return args
    raise AssertionError("no Lava worker")


@pytest.mark.slow
def test_the_paper_small_vlifnet_at_64_on_lava_equals_the_fast_back_end_in_every_layer(tmp_path):
    net = small_vlifnet(tmp_path, 64)
    image = np.random.default_rng(4).random((3, 64, 64)).astype(np.float32)
    lava = run_lava(net.path, image, Drive(int(net.meta["steps"]))).events
    fast = fast_events(net, image)
    assert set(lava) == set(fast) == set(net.quantized.layers)
    assert [n for n in fast if not np.array_equal(lava[n], fast[n])] == []
