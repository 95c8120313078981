"""The SANA-FE replay's memory estimate against its measured peak, and its time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sanafe_cost.py [--vlifnet16]

Replays lava-dl's tiny.net and mnist.net (random integer events) and, with --vlifnet16, the bundled
deployable VLIFNet converted at 16x16 on the bundled rainy image's 16x16 crop (about 6.4 GB), each in
a fresh process, and prints the estimate beside the process's own peak resident memory (`wait4`) and
its CPU time (docs/cross-check-sanafe.md, section "Cost").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

from neuro_deploy.counting.run import run_input
from neuro_deploy.crosscheck.sanafe_cost import estimate_bytes, replay_size
from neuro_deploy.formats.netx import read_network

NETX_TESTS = Path(sysconfig.get_paths()["purelib"]) / "tests" / "lava" / "lib" / "dl" / "netx"
REPLAY = ("import sys\nfrom neuro_deploy.crosscheck.sanafe import check_file\n"
          "assert check_file(*sys.argv[1:]).reconciles")


def measure(net_path: Path, x_path: Path) -> None:
    net = read_network(net_path)
    size = replay_size(net, *run_input(net, x_path), None)
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", REPLAY, str(net_path), str(x_path)], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the maximum over all children
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the replay of {net_path} failed")
    peak = usage.ru_maxrss * 1024
    estimate = estimate_bytes(size)
    print(f"| {net_path.name} | {size.neurons:,} | {size.synapses:,} | {size.steps} | {estimate / 1e6:,.0f} MB "
          f"| {peak / 1e6:,.0f} MB | {estimate / peak:.2f} | {usage.ru_utime + usage.ru_stime:.1f} s "
          f"| {time.perf_counter() - start:.1f} s |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vlifnet16", action="store_true", help="Also the 16x16 VLIFNet (peaks at about 6.4 GB).")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| network | neurons | connections | steps | estimate | peak | estimate / peak | CPU | wall |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, shape in (("tiny", (6, 3, 16, 16)), ("mnist", (20, 784))):
            np.save(work / f"{name}.npy", (rng.random(shape) * 200).astype(np.int32))
            measure(NETX_TESTS / f"{name}.net", work / f"{name}.npy")
        if args.vlifnet16:
            from neuro_deploy.compile.convert import BUNDLED_CALIBRATION, calibration_images, convert, write

            write(convert("vlifnet_small_deployable", size=16), work / "vlifnet16.net")
            np.save(work / "rain16.npy", calibration_images(BUNDLED_CALIBRATION / "rain_demo.png", 16)[0].numpy())
            measure(work / "vlifnet16.net", work / "rain16.npy")


if __name__ == "__main__":
    main()
