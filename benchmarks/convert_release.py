"""Conversion time and peak memory of the release-size networks (random weights).

    .venv/bin/python benchmarks/convert_release.py [--size 64] [--arch vlifnet esdnet]

Writes a released-style state dict for each architecture, then times
`neuro-deploy convert` in a fresh process and reads its peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from neuro_deploy import zoo

RELEASE = {"dim": 48, "en_num_blocks": [4, 4, 8, 8], "de_num_blocks": [2, 2, 2, 2], "T": 4}


def run(arch: str, size: int, workdir: Path) -> tuple[float, float, int]:
    torch.manual_seed(0)
    model = zoo.build(arch, **RELEASE)
    ckpt = workdir / f"{arch}_release.pth"
    torch.save(model.state_dict(), ckpt)
    params = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "neuro_deploy.cli", "convert", str(ckpt), "-o",
                              str(workdir / f"{arch}.net"), "--size", str(size)], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the maximum over all children
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"convert of {arch} failed")
    return wall, usage.ru_maxrss / 1024, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--arch", nargs="+", default=["vlifnet", "esdnet"])
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads; convert --size {args.size}")
    print("| network | parameters | wall (s) | peak RSS (MiB) | file (MiB) |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch:
            wall, peak, params = run(arch, args.size, Path(tmp))
            size = (Path(tmp) / f"{arch}.net").stat().st_size / 2**20
            print(f"| {arch} release | {params:,} | {wall:.1f} | {peak:.0f} | {size:.1f} |")


if __name__ == "__main__":
    main()
