"""The Lava back end: a converted network as Lava processes on the CPU simulator (fixed_pt)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.ir.graph import Synapse
from neuro_deploy.netx_io import NetworkFile


def run_lava(net: NetworkFile, image: np.ndarray, steps: int | None = None) -> dict[str, np.ndarray]:
    """Every layer's payload at every step `[steps, C, H, W]` for one `(C,H,W)` image or `(T,C,H,W)` frames."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from neuro_deploy.lava_procs.layer import MAX_FANIN, PROCESSES

    q = net.quantized
    graph = q.graph
    steps = steps or int(net.meta["steps"])
    order = [n for n in graph.topological() if n in q.layers]
    with tempfile.TemporaryDirectory(prefix="neuro-deploy-lava-") as events_dir:
        procs = {}
        for i, name in enumerate(order):
            syns = [graph.nodes[s] for s in graph.inputs(name) if isinstance(graph.nodes[s], Synapse)]
            if len(syns) > MAX_FANIN:
                raise NeuroDeployError(f"layer {name} has {len(syns)} inputs; the Lava back end takes {MAX_FANIN}")
            sources = [graph.inputs(s.name)[0] for s in syns]
            procs[name] = PROCESSES[len(syns)](
                in_shapes=[graph.nodes[s].shape for s in sources], out_shape=graph.nodes[name].shape,
                network=net.path, layer=name, index=i, image=image.astype(np.float32), num_steps=steps,
                events_dir=events_dir)
            for k, src in enumerate(sources):
                procs[src].out.connect(getattr(procs[name], f"in{k}"))
        root = procs[order[0]]
        try:
            root.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        except Exception as exc:
            errors = sorted(Path(events_dir).glob("error_*.txt"))
            detail = errors[0].read_text() if errors else f"{type(exc).__name__}: {exc}"
            force_stop(root)
            raise NeuroDeployError(f"Lava run failed in {detail}") from None
        root.stop()
        return {name: np.load(Path(events_dir) / f"{i}.npy") for i, name in enumerate(order)}


def force_stop(root) -> None:
    """After a failure Lava's stop() waits forever on the dead actor; mark it stopped first."""
    runtime = getattr(root, "runtime", None)
    if runtime is not None:
        runtime._is_started = False
        try:
            root.stop()
        except Exception:  # the runtime is already broken; nothing else to release
            pass
