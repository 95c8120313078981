"""The fast fixed-point back end against the float PyTorch forward, side by side in one run.

    .venv/bin/python benchmarks/fast_vs_float.py [--repeats 3] [--sizes 64 256]

Converts the release-size VLIFNet (dim 48, en [4,4,8,8], de [2,2,2,2], T 4; random weights:
speed does not depend on them) at 64x64 through the public API, then times, alternating, the
float model's forward on the whole image, the float model tiled as the deployed network is
(64x64 tiles, 8-pixel overlap: what `simulate` compares with), and `load_network(...).simulate(image)`
(the fast back end, the same tiles) on a 64x64 and a 256x256 image. Best of `--repeats` each.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import neuro_deploy
from neuro_deploy import zoo
from neuro_deploy.zoo.inference import derain_array

RELEASE = {"dim": 48, "en_num_blocks": [4, 4, 8, 8], "de_num_blocks": [2, 2, 2, 2], "T": 4}


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    args = parser.parse_args()
    torch.manual_seed(0)
    model = zoo.build("vlifnet", **RELEASE).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "vlifnet_release.pth"
        torch.save(model.state_dict(), ckpt)
        start = time.perf_counter()
        net = neuro_deploy.load_network(neuro_deploy.convert(ckpt, size=64).save(Path(tmp) / "v.net"))
        print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads; "
              f"converted {net} in {time.perf_counter() - start:.0f} s")
        print("| image | float, whole image (s) | float, tiled (s) | fast back end (s) | fast / float whole | "
              "fast / float tiled |")
        print("|---|---:|---:|---:|---:|---:|")
        for size in args.sizes:
            image = np.random.default_rng(size).random((size, size, 3)).astype(np.float32)
            batch = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]

            def float_forward() -> None:
                with torch.no_grad():
                    model(batch)

            def float_tiled() -> None:
                derain_array(model, image, tile=64, overlap=8)

            def fast() -> None:
                net.simulate(image, reference=False)

            runs = {"float": float_forward, "tiled": float_tiled, "fast": fast}
            for fn in runs.values():  # warm-up: allocator and oneDNN kernel selection
                fn()
            timings = {name: [] for name in runs}
            for _ in range(args.repeats):  # alternating, so all see the same machine load
                for name, fn in runs.items():
                    timings[name].append(best(fn, 1))
            f, t, q = (min(timings[name]) for name in runs)
            print(f"| {size}x{size} | {f:.3f} | {t:.3f} | {q:.3f} | {q / f:.2f}x | {q / t:.2f}x |")


if __name__ == "__main__":
    main()
