"""How fast a killed or interrupted `evaluate --workers 2` leaves nothing behind (issue 19).

    .venv/bin/python benchmarks/ray_cleanup.py [--runs 3] [--images 8]

Converts the bundled deployable model at 16x16, cuts `--images` 24x24 pairs from the demo pair, and
runs `neuro-deploy evaluate --net NET --data DIR --workers 2 -o R.json` in a fresh process with a
TMPDIR of its own (its processes: its process tree just before the signal, and any other process
whose environment has that TMPDIR), `--runs` times ended by SIGKILL and `--runs` times by SIGINT
to its process group (Ctrl-C), each as soon as the first image is written. Prints a Markdown table: the processes alive before, the seconds until
none of them (and no folder of the run) is left, and for Ctrl-C the seconds until the command exited.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import neuro_deploy
from neuro_deploy.common.resources import demo_folder
from neuro_deploy.data import read_image, write_image


def own_processes(tmpdir: str, known: set[int]) -> set[int]:
    """The live processes of `known` (the command's tree, read before it ended), and any other whose
    environment has TMPDIR=`tmpdir` (Ray's process titles can blank it, hence `known`)."""
    tag = f"TMPDIR={tmpdir}".encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and (int(entry.name) in known or tag in (entry / "environ").read_bytes().split(b"\0")):
                pids.add(int(entry.name))
        except OSError:
            continue
    return pids


def tree(root: int) -> set[int]:
    """`root` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                children.setdefault(int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]), []).append(
                    int(entry.name))
        except OSError:
            continue
    found, todo = {root}, [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found.update(kids)
        todo += kids
    return found


def one_run(net: Path, data: Path, how: signal.Signals) -> tuple[int, float, float]:
    """(processes before, seconds until nothing is left, seconds until the command exited)."""
    tmpdir = tempfile.mkdtemp(prefix="ndb", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    out = Path(tmpdir) / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "neuro_deploy", "evaluate", "--net", str(net), "--data", str(data),
                             "--workers", "2", "-o", str(out)], env={**os.environ, "TMPDIR": tmpdir,
                                                                     "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while not out.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"evaluate ended with {proc.returncode} before any image")
        time.sleep(0.02)
    running = own_processes(tmpdir, tree(proc.pid))
    sent = time.monotonic()
    if how == signal.SIGKILL:
        proc.kill()
    else:
        os.killpg(proc.pid, how)
    proc.wait()
    exited = time.monotonic() - sent
    while own_processes(tmpdir, running) or any(Path(tmpdir).glob("neuro_deploy_*")):
        if time.monotonic() - sent > 60:
            raise RuntimeError(f"left after 60 s: {own_processes(tmpdir, running)}")
        time.sleep(0.02)
    gone = time.monotonic() - sent
    out.unlink()
    os.rmdir(tmpdir)
    return len(running), gone, exited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--images", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        net = root / "net16.net"
        neuro_deploy.convert("vlifnet_small_deployable", size=16).save(net)
        rainy, clean = (read_image(demo_folder(side) / "rain_demo.png") for side in ("input", "target"))
        for k in range(args.images):
            y, x = (4 * k) % 40, 36 - (4 * k) % 36
            write_image(root / "data" / "input" / f"{k}.png", rainy[y:y + 24, x:x + 24])
            write_image(root / "data" / "target" / f"{k}.png", clean[y:y + 24, x:x + 24])
        print(f"load average before: {os.getloadavg()[0]:.1f}")
        print("| ended by | processes before | all gone after (s) | command exited after (s) |")
        print("|---|---:|---:|---:|")
        for how in (signal.SIGKILL, signal.SIGINT):
            for _ in range(args.runs):
                before, gone, exited = one_run(net, root / "data", how)
                print(f"| {how.name} | {before} | {gone:.2f} | {exited:.2f} |", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
