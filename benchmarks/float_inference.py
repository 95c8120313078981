"""Float PyTorch inference speed of the zoo networks on one 256x256 image (CPU).

    .venv/bin/python benchmarks/float_inference.py [--repeats 3] [--json OUT]

Times a whole-image forward and the tiled derain of the official test (80x80 tiles,
8-pixel overlap), for the release-size VLIFNet and ESDNet (random weights: speed does not
depend on them) and the shipped small model. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from neuro_deploy import zoo
from neuro_deploy.zoo.inference import derain_array

RELEASE = {"dim": 48, "en_num_blocks": [4, 4, 8, 8], "de_num_blocks": [2, 2, 2, 2], "T": 4}


def _time(fn, repeats: int) -> float:
    fn()  # warm-up: allocator and oneDNN kernel selection
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    models = {
        "VLIFNet release (dim 48)": zoo.build("vlifnet", **RELEASE).eval(),
        "ESDNet release (dim 48)": zoo.build("esdnet", **RELEASE).eval(),
        "VLIFNet shipped small (vlifnet_small)": zoo.load("vlifnet_small"),  # the bundled model, by name
    }
    rng = np.random.default_rng(0)
    img = rng.random((args.size, args.size, 3)).astype(np.float32)
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    rows = []
    for name, model in models.items():
        with torch.no_grad():
            whole = _time(lambda: model(x), args.repeats)
        tiled = _time(lambda: derain_array(model, img), args.repeats)
        params = sum(p.numel() for p in model.parameters())
        rows.append({"model": name, "params": params, "whole_s": whole, "tiled_s": tiled})
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; input {args.size}x{args.size}, median of {args.repeats}")
    print("| model | parameters | whole-image forward (s) | tiled 80/8 derain (s) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['whole_s']:.2f} | {r['tiled_s']:.2f} |")
    print(f"peak RSS of the process: {peak_mib:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "peak_rss_mib": peak_mib}, indent=2))


if __name__ == "__main__":
    main()
