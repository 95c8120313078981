"""Fidelity of the shipped deployable model in fixed point, on held-out synthetic rain.

    .venv/bin/python benchmarks/fidelity.py [--count 24] [--lava 4]

Converts `neuro_deploy/models/vlifnet_small_deployable.pt` (calibrated on the bundled images, as `make demo`
does), makes the held-out set of the model cards (`synth-rain --split test --seed 2`, 64x64), and
scores the float PyTorch model, the fixed-point network on the fast back end (every image) and
on Lava (the first `--lava` images, also checked event-identical to the fast back end's output).
Prints a Markdown table of mean PSNR/SSIM and the drop from float.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from neuro_deploy import zoo
from neuro_deploy.compile.convert import convert, write
from neuro_deploy.data import PairedDataset, evaluate, make_synthetic_rain
from neuro_deploy.formats.netx import read_network
from neuro_deploy.run.simulate import simulate
from neuro_deploy.zoo.inference import derain_array

REPO = Path(__file__).resolve().parents[1]


def mean_scores(results: list[np.ndarray], cleans: list[np.ndarray]) -> dict[str, float]:
    scores = [evaluate(r, c) for r, c in zip(results, cleans)]
    return {k: float(np.mean([s[k] for s in scores])) for k in ("psnr", "ssim")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=REPO / "neuro_deploy" / "models" / "vlifnet_small_deployable.pt")
    parser.add_argument("--count", type=int, default=24, help="held-out pairs (fast back end and float)")
    parser.add_argument("--lava", type=int, default=4, help="how many of them also run on Lava")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic_rain(Path(tmp) / "test", args.count, preset="light", size=64, seed=2, split="test")
        data = PairedDataset(str(Path(tmp) / "test"))
        write(convert(args.checkpoint, size=64), Path(tmp) / "net.net")
        net = read_network(Path(tmp) / "net.net")
        model = zoo.load(args.checkpoint)
        rainy, clean = [data[i][0] for i in range(len(data))], [data[i][1] for i in range(len(data))]
        started = time.perf_counter()
        floats = [derain_array(model, r, tile=64) for r in rainy]
        fast = [simulate(net, r.transpose(2, 0, 1), "fast").output for r in rainy]
        fast_s = time.perf_counter() - started
        started = time.perf_counter()
        lava = [simulate(net, r.transpose(2, 0, 1), "lava").output for r in rainy[:args.lava]]
        lava_s = time.perf_counter() - started
    identical = all(np.array_equal(a, b) for a, b in zip(lava, fast))
    n = args.lava
    rows = [("rainy input", rainy, len(rainy)), ("float PyTorch", floats, len(rainy)),
            ("fixed point, fast back end", fast, len(rainy))]
    if n:
        rows += [(f"float PyTorch (first {n})", floats[:n], n), (f"fixed point, fast (first {n})", fast[:n], n),
                 (f"fixed point, Lava (first {n})", lava, n)]
    float_all, float_n = mean_scores(floats, clean), mean_scores(floats[:n], clean[:n])
    print(f"{args.checkpoint.name}: {net.meta['steps']} steps per 64x64 image, {len(net.quantized.layers)} layers")
    print("| run | images | PSNR (dB) | SSIM | drop from float (dB) |")
    print("|---|---:|---:|---:|---:|")
    for name, results, count in rows:
        s = mean_scores(results, clean[:count])
        ref = float_all if count == len(rainy) else float_n
        drop = "" if name.startswith(("rainy", "float")) else f"{ref['psnr'] - s['psnr']:.2f}"
        print(f"| {name} | {count} | {s['psnr']:.2f} | {s['ssim']:.4f} | {drop} |")
    print(f"Lava output identical to the fast back end's on all {n}: {identical}; "
          f"wall: float + fast {fast_s:.0f} s, Lava {lava_s:.0f} s")


if __name__ == "__main__":
    main()
