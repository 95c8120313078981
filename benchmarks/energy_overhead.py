"""What counting for the energy report adds to a simulation's wall time (target: at most 10%).

    .venv/bin/python benchmarks/energy_overhead.py [--checkpoint CKPT] [--image IMG] [--repeats 7]

Converts the shipped small deployable VLIFNet (a random one of the same kind when the checkpoint
is missing, said in the output) at 64x64, then times on the fast back end, best of `--repeats`
with the runs interleaved (other work on the machine slows them alike): the plain simulation
(`simulate`), the simulation that counts every layer as it is computed (`count_network`,
fan-out maps included), and the counting alone on recorded windows.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from neuro_deploy import zoo
from neuro_deploy.compile.convert import convert, write
from neuro_deploy.counting.counts import NetworkCounter
from neuro_deploy.counting.run import count_network
from neuro_deploy.data import read_image
from neuro_deploy.formats.netx import read_network
from neuro_deploy.run.simulate import simulate

REPO = Path(__file__).resolve().parents[1]
DEPLOYABLE = {"dim": 16, "en_num_blocks": [1, 1, 1, 1], "de_num_blocks": [1, 1, 1, 1], "attention": False,
              "enhance_product": False}


def _best_interleaved(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each, the runs alternating so that a busy machine slows them alike."""
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _count_recorded(net, recorded: list[tuple[int, str, int, torch.Tensor]]) -> None:
    """Counting alone: fan-out maps, then every recorded layer window."""
    counter = NetworkCounter(net)
    runs: dict[int, object] = {}
    for tile, layer, first, payload in recorded:
        if tile not in runs:
            runs[tile] = counter.start()
        counter.add(runs[tile], layer, first, payload)
    for run in runs.values():
        counter.finish(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=REPO / "neuro_deploy" / "models" / "vlifnet_small_deployable.pt")
    parser.add_argument("--image", type=Path, default=REPO / "neuro_deploy" / "assets" / "demo" / "input" /
                        "rain_demo_heavy.png")
    parser.add_argument("--repeats", type=int, default=7)
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
        recorded: list = []
        tiles = simulate(net, x, "fast", on_events=lambda *event: recorded.append(event)).tiles
        best = _best_interleaved({"plain": lambda: simulate(net, x, "fast"),
                                  "counted": lambda: count_network(net, x, "fast"),
                                  "counting": lambda: _count_recorded(net, recorded)}, args.repeats)
    print(f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads); network: {source}, "
          f"{len(net.quantized.layers)} layers, {net.meta['steps']} steps per tile; input {args.image.name} "
          f"{x.shape[2]}x{x.shape[1]}: {tiles} tiles of 64x64; best of {args.repeats}")
    print("| run | wall (s) |")
    print("|---|---:|")
    print(f"| simulate (fast back end) | {best['plain']:.3f} |")
    print(f"| simulate, counting every layer as it is computed (`count_network`) | {best['counted']:.3f} |")
    print(f"| counting alone (fan-out maps + the recorded windows of every tile) | {best['counting']:.3f} |")
    print(f"counting overhead: {100 * (best['counted'] - best['plain']) / best['plain']:+.1f}% end to end, "
          f"{100 * best['counting'] / best['plain']:.1f}% counted alone (target: at most 10%)")


if __name__ == "__main__":
    main()
