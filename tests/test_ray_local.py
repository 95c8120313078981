"""`evaluate --net` on a local Ray instance: it listens on 127.0.0.1 only, never joins a cluster
named by a stale cluster file or RAY_ADDRESS, and neither its processes nor its folders outlive
the command, killed by SIGKILL or interrupted by Ctrl-C (whose finished images stay in -o)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray
from ray._private import services
from ray._private.utils import read_ray_address

from neuro_deploy.common.resources import demo_folder
from neuro_deploy.data import read_image, write_image
from neuro_deploy.run import ray_reaper
from neuro_deploy.run.ray_address import check_reachable
from neuro_deploy.run.ray_local import local_instance
from process_tree import alive, descendants

#: seconds the instance's processes and folders may take to go once the command has ended: a bound
#: against "never", not a timing (under a second measured at load 7, but killed processes need CPU to
#: exit, and at load 49 the last one went after 14.6 s; benchmarks/README.md)
CLEANUP = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """One local instance for the module's in-process tests, started while a stopped cluster's
    address sits in Ray's cluster file and in RAY_ADDRESS, where a plain `ray.init()` looks;
    yields (its folder, that address)."""
    ray_tmp = tmp_path_factory.mktemp("raytmp")
    stale = f"127.0.0.1:{_free_port()}"  # nothing listens there
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text(stale)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_TMPDIR", str(ray_tmp))
        env.setenv("RAY_ADDRESS", stale)
        with local_instance(2) as folder:
            yield folder, stale
    assert not folder.exists()  # the reaper removed it with the instance
    assert not ray_reaper.members(str(folder))


def test_stale_cluster_file_and_address_are_not_joined(instance):
    folder, stale = instance
    assert read_ray_address() == stale  # the file is where Ray reads it, and RAY_ADDRESS names it too:
    assert services.canonicalize_bootstrap_address(None) == stale  # a plain ray.init() would join it
    assert ray.get_runtime_context().gcs_address != stale
    assert [n["Alive"] for n in ray.nodes()] == [True] and ray.cluster_resources()["CPU"] == 2
    assert ray_reaper.members(str(folder))  # the instance's own processes, carrying its folder


def _listening(pids: list[int]) -> list[str]:
    """The addresses (hex, as /proc/net writes them) of the TCP sockets `pids` listen on."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                found.append(fields[1].split(":")[0])
    return found


def test_workers_and_servers_on_loopback_only(instance):
    folder, _ = instance

    @ray.remote(num_cpus=1)
    def node_address() -> str:
        return ray.util.get_node_ip_address()

    assert ray.get([node_address.remote() for _ in range(2)]) == ["127.0.0.1"] * 2
    assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
    addresses = _listening([os.getpid(), *ray_reaper.members(str(folder))])
    assert len(addresses) >= 3  # GCS, raylet, this driver's and the workers' servers
    loopback = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
    assert set(addresses) <= loopback  # 127.0.0.1 (as itself or IPv4-mapped), ::1; not 0.0.0.0 or [::]


def test_a_local_workers_temporary_files_go_into_the_instances_folder(instance, deployable16):
    """Lava's run folders of a worker killed mid-tile are removed with the instance, not left in TMPDIR."""
    from neuro_deploy.run.ray_pool import Worker

    folder, _ = instance
    worker = Worker.remote(Path(deployable16).read_bytes(), "m.net", "fast", None, 16, str(folder))
    where = ray.get(worker.__ray_call__.remote(lambda self: tempfile.gettempdir()))
    assert Path(where).parent == folder and Path(where).name.startswith("neuro_deploy_worker_")
    ray.kill(worker)


def test_a_long_tmpdir_puts_the_instance_where_rays_socket_paths_fit(monkeypatch):
    from neuro_deploy.run.ray_local import SOCKET_PATH_MAX, SOCKET_TAIL, scratch_parent

    monkeypatch.setattr(tempfile, "tempdir", "/tmp")
    assert scratch_parent() == "/tmp"
    monkeypatch.setattr(tempfile, "tempdir", "/tmp/" + "x" * (SOCKET_PATH_MAX - SOCKET_TAIL))  # one too many
    assert scratch_parent() == "/tmp"


def test_a_ray_head_passes_the_address_check(instance):
    check_reachable(ray.get_runtime_context().gcs_address)  # the probe `evaluate --address` makes


# ---- the command in a process of its own, as a user runs it ----------------------------------------

@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Eight 24x24 pairs cut from the demo pair (several 16x16 tiles each): several images per worker."""
    root = tmp_path_factory.mktemp("data")
    rainy, clean = (read_image(demo_folder(side) / "rain_demo.png") for side in ("input", "target"))
    for k in range(8):
        y, x = 4 * k, 36 - 4 * k
        write_image(root / "input" / f"{k}.png", rainy[y:y + 24, x:x + 24])
        write_image(root / "target" / f"{k}.png", clean[y:y + 24, x:x + 24])
    return root


def _own_processes(tmpdir: str, known: tuple[int, ...] = ()) -> list[int]:
    """The command's processes and all it started: those of `known` still alive, and any other
    whose environment has its TMPDIR (Ray's process titles can blank it, hence `known`)."""
    tag = f"TMPDIR={tmpdir}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and tag in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return sorted(set(pids) | {pid for pid in known if alive(pid)})


@pytest.fixture
def command(tmp_path):
    """Starts `neuro-deploy evaluate ...` in a session of its own with a private TMPDIR (short:
    Ray's socket paths must fit 107 bytes); yields (start, TMPDIR). Kills what a failed test left."""
    tmpdir = tempfile.mkdtemp(prefix="ndt", dir="/tmp")
    env = {**os.environ, "TMPDIR": tmpdir, "OMP_NUM_THREADS": "1"}

    def start(*args) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "neuro_deploy", "evaluate", *map(str, args)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    try:
        yield start, tmpdir
    finally:
        for pid in _own_processes(tmpdir):
            os.kill(pid, signal.SIGKILL)
        for leftover in Path(tmpdir).glob("neuro_deploy_*"):
            subprocess.run(["rm", "-rf", str(leftover)], check=False)
        subprocess.run(["rm", "-rf", tmpdir], check=False)


def _describe(pids: list[int]) -> list[str]:
    """Each process's command line, for a failure's message."""
    described = []
    for pid in pids:
        try:
            described.append(f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:80].decode())
        except OSError:
            continue
    return described


def _wait_for(condition, what, timeout: float = 240) -> None:
    """Wait until `condition()` holds; `what()` says what did not happen, at the deadline."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, what()
        time.sleep(0.05)


def test_sigkill_mid_run_leaves_no_process_and_no_folder(command, deployable16, dataset, tmp_path):
    start, tmpdir = command
    out = tmp_path / "r.json"
    proc = start("--net", deployable16, "--data", dataset, "--workers", "2", "-o", out)
    workers = lambda: list(Path(tmpdir).glob("neuro_deploy_ray_*/neuro_deploy_worker_*"))  # noqa: E731
    _wait_for(lambda: len(workers()) == 2 or proc.poll() is not None, lambda: "the workers did not start")
    assert proc.poll() is None, proc.communicate()[1]
    running = tuple(_own_processes(tmpdir, (proc.pid, *descendants(proc.pid))))
    assert len(running) >= 6  # the command, its reaper, Ray's GCS and raylet, two workers
    proc.kill()  # SIGKILL: the command runs no cleanup of its own
    proc.wait()
    _wait_for(lambda: not _own_processes(tmpdir, running) and not list(Path(tmpdir).glob("neuro_deploy_*")),
              lambda: f"left after SIGKILL: {_describe(_own_processes(tmpdir, running))}, "
                      f"{list(Path(tmpdir).iterdir())}", timeout=CLEANUP)


def test_ctrl_c_keeps_finished_images_and_leaves_nothing(command, deployable16, dataset, tmp_path):
    start, tmpdir = command
    out = tmp_path / "r.json"
    proc = start("--net", deployable16, "--data", dataset, "--workers", "2", "-o", out)
    _wait_for(lambda: out.exists() or proc.poll() is not None, lambda: "no image finished")
    running = tuple(_own_processes(tmpdir, (proc.pid, *descendants(proc.pid))))
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("evaluate (fast)")]
    assert lines == ["neuro-deploy: interrupted"], err
    assert "ETA" in err  # it showed progress meanwhile
    kept = json.loads(out.read_text())["images"]  # whole: rewritten atomically after each image
    assert 1 <= len(kept) < 8 and len({r["name"] for r in kept}) == len(kept)
    assert all(r["width"] == r["height"] == 24 and r["vs_float_psnr"] > 0 for r in kept)  # complete records
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary results file
    _wait_for(lambda: not _own_processes(tmpdir, running),
              lambda: f"left after Ctrl-C: {_describe(_own_processes(tmpdir, running))}", timeout=CLEANUP)
    assert not list(Path(tmpdir).iterdir())  # no folder, no temporary results file
