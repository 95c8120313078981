"""Fast back end vs Lava back end on the same network and 64x64 input.

    .venv/bin/python benchmarks/fast_vs_lava.py [--network NET] [--checkpoint CKPT]

Converts the shipped deployable VLIFNet (unless a .net is given), runs one 64x64 image on
both back ends, checks that every layer's events are identical, and reports wall times,
their ratio, Lava's OS process count, the peak memory of all processes together, and what
the network is made of (layers, neurons, synapse processes, latency).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from neuro_deploy.backends.fast import run_fixed
from neuro_deploy.backends.lava import run_lava
from neuro_deploy.compile.convert import convert, write
from neuro_deploy.data import read_image
from neuro_deploy.formats.netx import read_network
from neuro_deploy.ir.quantized import Drive
from neuro_deploy.loihi.limits import synapse_process
from neuro_deploy.run.simulate import place_windows

REPO = Path(__file__).resolve().parents[1]


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared pages split among the processes sharing them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def _tree_memory_mib(root: int) -> tuple[float, int]:
    """Memory of a process and all its descendants (summed PSS), and how many descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    todo, seen = [root], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo += children.get(pid, [])
    return sum(_pss_kib(p) for p in seen) / 1024, len(seen) - 1


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=REPO / "neuro_deploy" / "models" / "vlifnet_small_deployable.pt")
    parser.add_argument("--network", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.network or Path(tmp) / "net.net"
        if args.network is None:
            write(convert(args.checkpoint, size=64), path)
        net = read_network(path)
        image = read_image(REPO / "neuro_deploy" / "assets" / "demo" / "input" / "rain_demo.png").transpose(2, 0, 1)
        windows = {}
        run_fixed(net.quantized, torch.from_numpy(image)[None], lambda n, o: windows.__setitem__(n.name, o))
        fast = min(_timed(lambda: run_fixed(net.quantized, torch.from_numpy(image)[None])) for _ in range(3))

        peak = [0.0, 0]
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                mib, procs = _tree_memory_mib(os.getpid())
                peak[0], peak[1] = max(peak[0], mib), max(peak[1], procs)
                time.sleep(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        start = time.perf_counter()
        events = run_lava(net.path, image, Drive(int(net.meta["steps"]))).events
        lava = time.perf_counter() - start
        done.set()
        watcher.join()
        fast_events = place_windows(net, windows)
        same = all(np.array_equal(events[n], fast_events[n]) for n in fast_events)
    q = net.quantized
    kinds = [q.graph.nodes[n].kind for n in q.layers]
    processes = [synapse_process(q.graph.nodes[n]) for n in q.synapses]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; network {path.name}: "
          f"{len(q.layers)} layers ({', '.join(f'{kinds.count(k)} {k}' for k in sorted(set(kinds)))}), "
          f"{sum(int(np.prod(q.graph.nodes[n].shape)) for n in q.layers)} neurons, "
          f"{len(processes)} synapses ({', '.join(f'{processes.count(k)} {k}' for k in sorted(set(processes)))}), "
          f"latency {net.meta['latency']}, {net.meta['steps']} steps, input 64x64")
    print("| back end | wall (s) |")
    print("|---|---:|")
    print(f"| fast (torch, windows; best of 3 after a warm-up run) | {fast:.2f} |")
    print(f"| Lava (Loihi2SimCfg fixed_pt, compile + run) | {lava:.1f} |")
    print(f"ratio Lava/fast: {lava / fast:.0f}x; identical events: {same}")
    print(f"Lava: {peak[1]} OS processes at peak, {peak[0]:.0f} MiB peak memory (summed PSS of all processes)")


if __name__ == "__main__":
    main()
