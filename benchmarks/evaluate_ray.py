"""Throughput of `neuro-deploy evaluate --net` on 1 and 2 workers, fast back end and Lava.

    .venv/bin/python benchmarks/evaluate_ray.py [--count 12] [--size 128] [--lava-count 4] [--lava-size 32]

Converts the bundled deployable model (`neuro-deploy convert vlifnet_small_deployable`, at 64x64 as
`make demo` does, and at `--lava-size` for Lava), makes held-out synthetic rain (`synth-rain --split
test --seed 2`), and times each evaluation as the command line runs it, in a fresh process: one
worker (in that process, no Ray) with torch's default threads and with one thread (as each Ray
worker has: on a shared machine, spinning threads can cost more than they give), and two workers
(a local Ray instance). Prints a Markdown table of wall time, the start-up the command reports (Ray
and the workers reading the network), images per second, and whether every run's per-image results
are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "neuro_deploy"]
STATS = re.compile(r"(\d+) images in ([\d.]+) s on (\d+) worker\(s\), ([\d.]+) s of it starting Ray")


def cli(*args: str | Path, threads: int | None = None) -> str:
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    done = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"neuro-deploy {' '.join(map(str, args))} failed: {done.stderr.strip().splitlines()[-1]}")
    return done.stdout


def timed_evaluation(net: Path, data: Path, backend: str, workers: int, out: Path, threads: int | None = None) -> dict:
    started = time.perf_counter()
    stdout = cli("evaluate", "--net", net, "--data", data, "--backend", backend, "--workers", str(workers), "-o", out,
                 threads=threads)
    wall = time.perf_counter() - started
    images, seconds, used, startup = STATS.search(stdout).groups()
    return {"backend": backend, "workers": f"{used}{' (1 thread)' if threads else ''}", "images": int(images),
            "wall": wall, "run": float(seconds), "startup": float(startup),
            "results": json.loads(out.read_text())["images"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=12, help="images for the fast back end")
    parser.add_argument("--size", type=int, default=128, help="their side (128: 9 tiles of 64x64 each)")
    parser.add_argument("--lava-count", type=int, default=4, help="images for Lava (0: skip Lava)")
    parser.add_argument("--lava-size", type=int, default=32, help="Lava's images and network side (one tile each)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cli("convert", "vlifnet_small_deployable", "-o", folder / "net64.net")
        cli("synth-rain", "-o", folder / "fast", "-n", str(args.count), "--size", str(args.size), "--split", "test",
            "--seed", "2")
        plan = [("fast", folder / "net64.net", folder / "fast")]
        if args.lava_count:
            cli("convert", "vlifnet_small_deployable", "-o", folder / "lava.net", "--size", str(args.lava_size))
            cli("synth-rain", "-o", folder / "lava", "-n", str(args.lava_count), "--size", str(args.lava_size),
                "--split", "test", "--seed", "2")
            plan.append(("lava", folder / "lava.net", folder / "lava"))
        for backend, net, data in plan:
            configurations = [(1, None), (1, 1), (2, None)] if backend == "fast" else [(1, 1), (2, None)]
            runs = [timed_evaluation(net, data, backend, w, folder / f"{backend}{w}_{t}.json", t)
                    for w, t in configurations]
            same = all(r["results"] == runs[0]["results"] for r in runs)
            rows += [(r, same) for r in runs]
    print("| back end | images | workers | wall (s) | start-up (s) | images/s (wall) | images/s (after start-up) "
          "| identical results |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r, same in rows:
        print(f"| {r['backend']} | {r['images']} | {r['workers']} | {r['wall']:.1f} | {r['startup']:.1f} | "
              f"{r['images'] / r['wall']:.3f} | {r['images'] / (r['run'] - r['startup']):.3f} | "
              f"{'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
