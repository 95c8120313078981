"""NIR front end: conversion time of a ~1 M-synapse NIR graph, and the fidelity figure of
tests/test_nir.py's snnTorch check (fixed-point output spike counts against snnTorch's float run).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nir_convert.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nir
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from neuro_deploy.compile.nir_convert import convert_nir  # noqa: E402
from neuro_deploy.formats.netx_plain import read_plain  # noqa: E402
from neuro_deploy.ir.quantized import Drive  # noqa: E402
from neuro_deploy.run.simulate import simulate  # noqa: E402


def million_synapses(folder: Path, n: int = 1024, steps: int = 100) -> None:
    rng = np.random.default_rng(0)
    ones = np.ones(n)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([n])}),
                                "fc1": nir.Affine(weight=rng.normal(0, 0.05, (n, n)), bias=np.zeros(n)),
                                "lif1": nir.LIF(tau=ones * 2e-3, r=ones * 20, v_leak=0 * ones, v_threshold=ones,
                                                v_reset=0 * ones),
                                "output": nir.Output(output_type={"output": np.array([n])})},
                         edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "output")])
    nir.write(str(folder / "big.nir"), graph)
    np.save(folder / "x.npy", (rng.random((steps, n)) < 0.1).astype(np.float32))
    start = time.perf_counter()
    convert_nir(folder / "big.nir", folder / "big.net", folder / "x.npy")
    print(f"1 M synapses ({n}x{n} Affine + LIF), {steps}-step calibration: convert {time.perf_counter() - start:.2f} s")


def snntorch_fidelity(folder: Path) -> None:
    from test_nir import snntorch_cnn

    x = (np.random.default_rng(0).random((100, 2, 16, 16)) < 0.2).astype(np.float32)
    reference = snntorch_cnn(folder / "cnn.nir", x)
    np.save(folder / "cnn_x.npy", x)
    convert_nir(folder / "cnn.nir", folder / "cnn.net", folder / "cnn_x.npy")
    run = simulate(read_plain(folder / "cnn.net"), x.astype(np.int64), "fast", drive=Drive(len(x) + 3))
    counts, expected = run.output.reshape(len(x) + 3, -1).sum(0), reference.sum(0)
    print(f"snnTorch CNN, 100 steps: output spikes {int(counts.sum())} fixed vs {int(expected.sum())} float; "
          f"largest per-neuron difference {int(np.abs(counts - expected).max())}; per neuron {counts.astype(int).tolist()} "
          f"vs {expected.astype(int).tolist()}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        million_synapses(Path(tmp))
        snntorch_fidelity(Path(tmp))
