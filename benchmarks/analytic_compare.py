"""How long the analytic comparison of the release networks takes (issue 10: seconds).

    .venv/bin/python benchmarks/analytic_compare.py [--repeats 5]

Times `neuro-deploy compare --analytic` (VLIFNet and ESDNet at the release configuration, dim 48,
en [4,4,8,8], de [2,2,2,2], 256x256, T=4: counted on torch's meta device, no forward pass) in a
fresh process, as a user runs it (Python and torch imports included), and in-process (counting
and pricing alone, after a warm-up); then `--preset paper --sweep` (the 32 scenarios) in a fresh
process. Each is the best of `--repeats` (other work on the machine slows single runs). Prints the
figures and the ratios they give.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from neuro_deploy.energy import analytic
from neuro_deploy.energy.profiles import load_profile

CLI = [sys.executable, "-m", "neuro_deploy.cli"]


def _fresh(repeats: int, *args: str) -> tuple[float, dict]:
    """Best wall time of a CLI run in a new process, and its JSON."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([*CLI, "compare", *args, "--format", "json"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).resolve().parents[1])
        best = min(best, time.perf_counter() - start)
    return best, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    profile = load_profile("cmos45_fp32")
    analytic.configure(profile)  # warm-up
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = analytic.configure(profile)
        best = min(best, time.perf_counter() - start)
    release_wall, release = _fresh(args.repeats, "--analytic")
    sweep_wall, sweep = _fresh(args.repeats, "--preset", "paper", "--sweep")
    print(f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print("| run | wall (s) |")
    print("|---|---:|")
    print(f"| `compare --analytic` (release configurations, 256x256, T=4), fresh process (best of {args.repeats}) | {release_wall:.2f} |")
    print(f"| the same, counting and pricing alone (in-process, best of {args.repeats}) | {best:.2f} |")
    print(f"| `compare --preset paper --sweep` ({len(sweep['sweep']['scenarios'])} scenarios), fresh process (best of {args.repeats}) | "
          f"{sweep_wall:.2f} |")
    print(f"release ratio {release['ratio']:.4f} (in-process {result.ratio:.4f}); paper preset ratio "
          f"{sweep['ratio']:.4f}; ESDNet rate for 13%: {sweep['solve']['value']:.4f}")


if __name__ == "__main__":
    main()
