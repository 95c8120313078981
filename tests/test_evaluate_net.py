"""`evaluate --net`: a deployed network over a paired dataset, per image and resumable, in one
process, on a local Ray instance and on a two-node Ray cluster, with the same numbers everywhere."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import ray
import torch

import neuro_deploy
from neuro_deploy.common.resources import demo_folder
from neuro_deploy.data import evaluate, read_image, write_image
from neuro_deploy.run import evaluate as evaluate_net

from test_cli import assert_one_line_error, run_cli

DEMO = demo_folder("input").parent
#: (width, height): smaller than the 16x16 network (padded), 2 and 6 tiles; Y-SSIM is NaN below 19
SIZES = {"a_small.png": (12, 12), "b_wide.png": (24, 16), "c_odd.png": (20, 28)}
CORNERS = ((0, 8), (34, 12), (30, 14))  # (y, x) of the rainiest crops of the demo pair


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread in this process, as in each Ray worker: on CI's shared cores two spinning
    threads make these runs up to 100x slower. Results do not depend on the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def net16(tmp_path_factory) -> Path:
    """The bundled deployable model converted at 16x16: tiny tiles, so Ray tests stay short."""
    path = tmp_path_factory.mktemp("net") / "deployable16.net"
    neuro_deploy.convert("vlifnet_small_deployable", size=16).save(path)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Three pairs cut from the bundled demo pair, of sizes that exercise padding and blending."""
    root = tmp_path_factory.mktemp("data")
    rainy, clean = read_image(DEMO / "input" / "rain_demo.png"), read_image(DEMO / "target" / "rain_demo.png")
    for (name, (w, h)), (y, x) in zip(SIZES.items(), CORNERS):
        write_image(root / "input" / name, rainy[y:y + h, x:x + w])
        write_image(root / "target" / name, clean[y:y + h, x:x + w])
    return root


@pytest.fixture(scope="module")
def single(net16, data, tmp_path_factory) -> dict:
    """The in-process run everything else is compared with."""
    out = tmp_path_factory.mktemp("single") / "results.json"
    assert neuro_deploy_cli("evaluate", "--net", net16, "--data", data, "--workers", "1", "-o", out) == 0
    return json.loads(out.read_text())


def neuro_deploy_cli(*args) -> int:
    from neuro_deploy.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def test_single_process_per_image_metrics_equal_simulate(single, net16, data):
    net = neuro_deploy.load_network(net16)
    assert [r["name"] for r in single["images"]] == sorted(SIZES)
    for record in single["images"]:
        rainy, clean = read_image(data / "input" / record["name"]), read_image(data / "target" / record["name"])
        result = net.simulate(rainy, target=clean)  # the public API: tiled, with the float model beside
        assert (record["width"], record["height"]) == SIZES[record["name"]]
        # the API scores a transposed copy: numpy sums it in another order, hence the last-bit tolerance
        for prefix, metrics in (("", result.metrics["target"]), ("vs_float_", result.metrics["float"])):
            for key, value in metrics.items():
                assert record[prefix + key] == (None if np.isnan(value) else pytest.approx(value, rel=1e-12))
        assert record["input_psnr"] == evaluate(rainy, clean)["psnr"]
        assert record["float_psnr"] > record["input_psnr"]  # the float model derains
    assert single["images"][0]["tiles"] == 1 and single["images"][2]["tiles"] == 6
    assert single["images"][0]["ssim_y"] is None  # 12x12: below the Y-SSIM window, null in JSON
    assert single["mean"]["images"] == 3
    assert single["mean"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in single["images"]]), rel=1e-12)
    assert [r["ssim_y"] is None for r in single["images"]] == [True, True, False]  # 12 and 16 high: below 19
    assert single["mean"]["ssim_y"] == single["images"][2]["ssim_y"]  # the mean of the images that have it
    assert single["backend"] == "fast" and len(single["network_sha256"]) == 64


def test_local_ray_equals_single_process(single, net16, data, tmp_path, capsys):
    out = tmp_path / "ray.json"
    environ = dict(os.environ)
    copies = set(Path(tempfile.gettempdir()).glob("neuro_deploy_worker_*"))  # the workers' copies of the network
    code, stdout, err = run_cli(capsys, "evaluate", "--net", net16, "--data", data, "--workers", "2", "-o", out)
    assert code == 0, err
    assert "on 2 worker(s)" in stdout and "images/s" in stdout
    assert "ETA" in err  # the progress lines in a log
    assert json.loads(out.read_text())["images"] == single["images"]
    assert json.loads(out.read_text())["mean"] == single["mean"]
    assert not ray.is_initialized() and dict(os.environ) == environ  # the local instance ended with the evaluation
    assert set(Path(tempfile.gettempdir()).glob("neuro_deploy_worker_*")) <= copies


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_using(folder: str) -> list[int]:
    """Processes whose command line names `folder`: every process of a Ray node started on it."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and folder.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


#: Ray's environment for the test cluster and its drivers: a loopback cluster without tokens (`ray
#: start --head` turns them on, and a driver only sends one with RAY_AUTH_MODE=token)
RAY_ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}
WAIT_FOR_TWO_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + 60
while sum(n["Alive"] for n in ray.nodes()) < 2:
    assert time.monotonic() < deadline, "the worker node did not join"
    time.sleep(0.2)
"""


@pytest.fixture
def two_node_cluster():
    """A Ray head and a worker node on this machine, one CPU each, as separate processes; yields
    the head's address. Only the processes started here are stopped (never `ray stop`)."""
    folder = tempfile.mkdtemp(prefix="ndray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    ray_cli = str(Path(sys.executable).with_name("ray"))
    common = ["--num-cpus", "1", "--object-store-memory", str(80 << 20), "--temp-dir", folder, "--block",
              "--disable-usage-stats"]
    nodes = []
    try:
        for role in (["--head", "--port", str(port), "--include-dashboard=false"], ["--address", f"127.0.0.1:{port}"]):
            log = open(Path(folder) / f"node{len(nodes)}.log", "w")
            nodes.append(subprocess.Popen([ray_cli, "start", *role, "--dashboard-agent-listen-port",
                                           str(_free_port()), *common], env=RAY_ENV, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
            log.close()
            if role[0] == "--head":
                _wait_for_port(port, nodes[0], folder)
        subprocess.run([sys.executable, "-c", WAIT_FOR_TWO_NODES, f"127.0.0.1:{port}"], env=RAY_ENV, check=True,
                       timeout=90)
        yield f"127.0.0.1:{port}"
    finally:
        for node in reversed(nodes):
            node.send_signal(signal.SIGTERM)  # `ray start --block` stops its node's processes
        for node in reversed(nodes):
            try:
                node.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
        deadline = time.monotonic() + 20
        while _pids_using(folder) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _pids_using(folder)
        for pid in left:  # stragglers of this cluster only: they name its private folder
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
        assert not left, f"processes of the test cluster outlived it: {left}"


def _wait_for_port(port: int, head: subprocess.Popen, folder: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            assert head.poll() is None, (Path(folder) / "node0.log").read_text()
            assert time.monotonic() < deadline, "the Ray head did not start"
            time.sleep(0.2)


@pytest.mark.slow  # CI time: a local Ray instance equals one process in make test
def test_two_node_cluster_equals_single_process(single, net16, data, tmp_path, two_node_cluster):
    out = tmp_path / "cluster.csv"
    done = subprocess.run([sys.executable, "-m", "neuro_deploy", "evaluate", "--net", str(net16), "--data", str(data),
                           "--address", two_node_cluster, "-o", str(out)], env=RAY_ENV, capture_output=True, text=True,
                          timeout=120)  # a driver process of its own, as a user runs it
    assert done.returncode == 0, done.stderr
    assert "on 2 worker(s)" in done.stdout  # one per free CPU of the cluster: one on each node
    rows = out.read_text().splitlines()
    assert rows[0].split(",")[:5] == ["name", "width", "height", "tiles", "psnr"]
    assert [r.split(",")[0] for r in rows[1:]] == [*sorted(SIZES), "mean"]
    resumed = evaluate_net.Results._read(out, evaluate_net.prepare(net16, data, "fast"))
    expected = {r["name"]: {k: (np.nan if v is None else v) for k, v in r.items()} for r in single["images"]}
    for name, record in resumed.items():
        assert record.keys() == expected[name].keys()
        for key, value in record.items():
            assert value == expected[name][key] or (value != value and expected[name][key] != expected[name][key])


def test_rerun_skips_done_images_and_ends_equal(single, net16, data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "r.json"
    calls = []
    real = evaluate_net.simulate

    def interrupted_after_one(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_net, "simulate", interrupted_after_one)
    code, _, err = run_cli(capsys, "evaluate", "--net", net16, "--data", data, "--workers", "1", "-o", out)
    assert code == 130, err
    partial = json.loads(out.read_text())  # written as the first image completed
    assert [r["name"] for r in partial["images"]] == ["a_small.png"] and partial["mean"]["images"] == 1
    assert not list(tmp_path.glob(".*"))  # no temporary file left

    seen = []
    monkeypatch.setattr(evaluate_net, "simulate", lambda net, x, *a, **k: seen.append(x.shape) or real(net, x, *a, **k))
    code, stdout, err = run_cli(capsys, "evaluate", "--net", net16, "--data", data, "--workers", "1", "-o", out)
    assert code == 0, err
    assert len(seen) == 2 and "1 resumed" in stdout
    assert json.loads(out.read_text())["images"] == single["images"]

    code, stdout, _ = run_cli(capsys, "evaluate", "--net", net16, "--data", data, "-o", out)
    assert code == 0 and "nothing left to run" in stdout and len(seen) == 2
    assert not ray.is_initialized()


def test_json_and_csv_on_stdout(single, net16, data, tmp_path, capsys):
    root = tmp_path / "one"
    for side in ("input", "target"):
        (root / side).mkdir(parents=True)
        shutil.copy(data / side / "a_small.png", root / side)
    args = ["evaluate", "--net", net16, "--data", root, "--workers", "1", "--format"]
    code, stdout, err = run_cli(capsys, *args, "json")
    assert code == 0, err
    printed = json.loads(stdout)
    assert printed["images"] == single["images"][:1] and printed["mean"]["images"] == 1
    code, stdout, err = run_cli(capsys, *args, "csv")
    assert code == 0, err
    header, row, average = stdout.splitlines()
    assert row.startswith("a_small.png,12,12,1,") and average.startswith("mean,,,,")
    assert float(row.split(",")[4]) == single["images"][0]["psnr"]
    code, _, err = run_cli(capsys, "evaluate", "--net", net16, "--data", root, "--format", "csv", "-o",
                           tmp_path / "r.json")
    assert_one_line_error(code, err, "--format csv", "r.json")


@pytest.mark.parametrize("case", ["unreachable", "not an address", "unpaired", "untileable", "plain netx",
                                  "sizes differ", "other network", "not results", "model and net",
                                  "net-only option"])
def test_bad_input_is_one_line_before_any_work(case, net16, data, single, tmp_path, capsys, monkeypatch):
    started = []
    monkeypatch.setattr(evaluate_net, "simulate", lambda *a, **k: started.append(1))
    monkeypatch.setattr(ray, "init", lambda *a, **k: started.append(1))
    args = ["evaluate", "--net", net16, "--data", data]
    fragments: tuple[str, ...]
    if case == "unreachable":
        args += ["--address", f"127.0.0.1:{_free_port()}"]
        fragments = ("--address 127.0.0.1:", "no Ray cluster reachable")
    elif case == "not an address":
        args += ["--address", "head-node"]
        fragments = ("'head-node'", "HOST:PORT")
    elif case == "unpaired":
        root = tmp_path / "d"
        shutil.copytree(data, root)
        (root / "target" / "b_wide.png").unlink()
        args[4] = root
        fragments = ("b_wide.png has no counterpart",)
    elif case == "untileable":
        bad = tmp_path / "bad.net"
        shutil.copy(net16, bad)
        with h5py.File(bad, "r+") as f:
            meta = json.loads(f["neuro_deploy/meta"][()])
            del f["neuro_deploy/meta"]
            f["neuro_deploy/meta"] = np.bytes_(json.dumps({**meta, "input_shape": [3, 16, 12]}))
        args[2] = bad  # metadata that disagrees with the graph: the reader refuses it (test_hostile_netx.py)
        fragments = ("bad.net", "meta gives input_shape [3, 16, 12]", "network's is [3, 16, 16]")
    elif case == "plain netx":
        from test_netx_plain import shipped

        args[2] = shipped("tiny.net")
        fragments = ("tiny.net is a plain netx network",)
    elif case == "sizes differ":
        root = tmp_path / "d"
        shutil.copytree(data, root)
        write_image(root / "target" / "c_odd.png", np.zeros((8, 8, 3)))
        args[4] = root
        fragments = ("c_odd.png is 20x28", "is 8x8")
    elif case == "other network":
        out = tmp_path / "r.json"
        out.write_text(json.dumps({**single, "network_sha256": "0" * 64}))
        args += ["-o", out]
        fragments = ("r.json holds results of another network",)
    elif case == "not results":
        out = tmp_path / "r.csv"
        out.write_text("some,other\ncsv,file\n")
        args += ["-o", out]
        fragments = ("cannot resume from", "r.csv")
    elif case == "model and net":
        args += ["--model", "vlifnet_small_deployable"]
        fragments = ("--model", "--net")
    else:
        args = ["evaluate", "--model", "vlifnet_small_deployable", "--data", data, "--workers", "2"]
        fragments = ("--workers applies to --net",)
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert_one_line_error(code, err, *fragments)
    assert not started and not ray.is_initialized()


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        """Not on stderr, where the test reads the command's one line."""


@pytest.fixture
def not_a_ray_head(request):
    """The address of something that is not a Ray head node, by `request.param`: an HTTP server, a
    port that accepts connections and stays silent, a Ray Client address, a 300-character host."""
    kind = request.param
    if kind in ("ray client", "long host name"):
        yield "ray://127.0.0.1:10001" if kind == "ray client" else "h" * 300 + ":6379"
        return
    if kind == "http server":
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"127.0.0.1:{server.server_address[1]}"
        server.shutdown()
        server.server_close()
        return
    with socket.socket() as silent:  # the kernel accepts connections into the backlog; nobody answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        yield f"127.0.0.1:{silent.getsockname()[1]}"


@pytest.mark.parametrize("not_a_ray_head, fragments", [
    ("http server", ("not a Ray head node", "it answered", "not gRPC")),
    ("silent port", ("did not answer within", "not a Ray head node")),
    ("ray client", ("ray://", "client mode", "HOST:PORT")),
    ("long host name", ("300 characters", "not a valid host name")),
], indirect=["not_a_ray_head"])
def test_address_of_no_ray_head_is_one_line_before_ray(not_a_ray_head, fragments, net16, data, capsys, monkeypatch):
    started = []
    monkeypatch.setattr(ray, "init", lambda *a, **k: started.append(1))  # would wait for a GCS for minutes
    code, _, err = run_cli(capsys, "evaluate", "--net", net16, "--data", data, "--address", not_a_ray_head)
    assert code == 2
    assert_one_line_error(code, err, *fragments)
    assert "Name or service not known" not in err and "idna" not in err
    assert not started


@pytest.mark.parametrize("case", ["more than the cores", "more than the memory"])
def test_workers_beyond_the_machine_are_one_line_before_ray(case, net16, data, capsys, monkeypatch):
    from neuro_deploy.common import memory
    from neuro_deploy.run import ray_capacity

    started = []
    monkeypatch.setattr(ray, "init", lambda *a, **k: started.append(1))
    monkeypatch.setattr(memory, "override", None)  # --max-memory's, reset when the test ends
    if case == "more than the cores":
        args, fragments = ["evaluate"], ("--workers 1000", f"{ray_capacity.cores()} cores", "or fewer")
        workers = 1000
    else:  # as many cores as workers, but memory for the instance and one worker only
        monkeypatch.setattr(ray_capacity, "cores", lambda: 64)
        job = evaluate_net.prepare(net16, data, "fast")
        limit = ray_capacity.INSTANCE_BYTES + 1.5 * ray_capacity.worker_bytes(job)
        args, fragments = ["--max-memory", str(int(limit)), "evaluate"], ("evaluate on 2 local Ray workers",
                                                                          "lower --workers")
        workers = 2
    code, _, err = run_cli(capsys, *args, "--net", net16, "--data", data, "--workers", workers)
    assert_one_line_error(code, err, *fragments)
    assert code == 2 and not started
    if case == "more than the memory":
        assert ray_capacity.default_workers(job) == 1  # without --workers: as many as the memory holds
