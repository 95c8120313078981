"""What counting for the energy report adds to a simulation's wall time (target: at most 10%).

    .venv/bin/python benchmarks/energy_overhead.py [--checkpoint CKPT] [--image IMG] [--repeats 3]

Converts the shipped small deployable VLIFNet (a random one of the same kind when the checkpoint
is missing, said in the output) at 64x64, then times on the fast back end, best of `--repeats`:
the plain simulation (`simulate`), and the simulation with the events kept plus the per-layer,
per-step counts (`energy.run.count_network`, fan-out maps included).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from neuro_deploy import zoo
from neuro_deploy.convert import convert, write
from neuro_deploy.data import read_image
from neuro_deploy.energy.run import count_network
from neuro_deploy.netx_io import read_network
from neuro_deploy.simulate import simulate

REPO = Path(__file__).resolve().parents[1]
DEPLOYABLE = {"dim": 16, "en_num_blocks": [1, 1, 1, 1], "de_num_blocks": [1, 1, 1, 1], "attention": False,
              "enhance_product": False}


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=REPO / "models" / "vlifnet_small_deployable.pt")
    parser.add_argument("--image", type=Path, default=REPO / "neuro_deploy" / "assets" / "demo" / "input" /
                        "rain_demo_heavy.png")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, source = args.checkpoint, args.checkpoint.name
        if not checkpoint.is_file():
            torch.manual_seed(0)
            checkpoint = Path(tmp) / "random_deployable.pt"
            zoo.save_checkpoint(checkpoint, zoo.Checkpoint("vlifnet", dict(DEPLOYABLE),
                                                           zoo.build("vlifnet", **DEPLOYABLE).state_dict()))
            source = f"random deployable VLIFNet {DEPLOYABLE} ({args.checkpoint.name} not found)"
        write(convert(checkpoint, size=64, strict=True), Path(tmp) / "net.net")
        net = read_network(Path(tmp) / "net.net")
        x = read_image(args.image).transpose(2, 0, 1)
        plain = _best(lambda: simulate(net, x, "fast"), args.repeats)
        counted = _best(lambda: count_network(net, x, "fast"), args.repeats)
        tiles = simulate(net, x, "fast").tiles
    print(f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads); network: {source}, "
          f"{len(net.quantized.layers)} layers, {net.meta['steps']} steps per tile; input {args.image.name} "
          f"{x.shape[2]}x{x.shape[1]}: {tiles} tiles of 64x64; best of {args.repeats}")
    print("| run | wall (s) |")
    print("|---|---:|")
    print(f"| simulate (fast back end) | {plain:.2f} |")
    print(f"| simulate + events kept + counts | {counted:.2f} |")
    print(f"counting overhead: {100 * (counted - plain) / plain:+.1f}% (target: at most +10%)")


if __name__ == "__main__":
    main()
