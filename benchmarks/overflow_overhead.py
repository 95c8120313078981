"""What counting run-time overflow costs the fast back end: one 64x64 tile of the bundled deployable
VLIFNet, run with and without an `OverflowCounter`, interleaved, one torch thread.

    .venv/bin/python benchmarks/overflow_overhead.py
"""

from __future__ import annotations

import time

import numpy as np
import torch

from neuro_deploy.compile.convert import convert
from neuro_deploy.backends.fast import OverflowCounter, run_fixed

ROUNDS = 20


def main() -> None:
    torch.set_num_threads(1)
    q = convert("vlifnet_small_deployable", size=64).quantized
    x = torch.from_numpy(np.random.default_rng(0).random((1, 3, 64, 64)).astype(np.float32))

    def timed(counting: bool) -> float:
        started = time.perf_counter()
        run_fixed(q, x, counter=OverflowCounter() if counting else None)
        return time.perf_counter() - started

    timed(False), timed(True)  # warm-up
    plain, counted = [], []
    for _ in range(ROUNDS):
        plain.append(timed(False))
        counted.append(timed(True))
    for label, times in (("without counting", plain), ("with counting", counted)):
        print(f"{label:17s}: best {min(times):.3f} s, median {np.median(times):.3f} s")
    print(f"overhead: best {min(counted) / min(plain) - 1:+.1%}, median {np.median(counted) / np.median(plain) - 1:+.1%}")


if __name__ == "__main__":
    main()
