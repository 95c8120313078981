"""One Lava process per layer: a neurocore (or host process) with its incoming synapses.

A layer with K incoming synapses gets K InPorts, one per source layer, so the synapse
weights, delays and the neuron program run inside the process. Every step the process
first sends the payload it computed in the previous step (one step per synapse hop, as
Lava's own Dense/Conv do), then receives its sources' payloads and computes the next.
A process class exists for each fan-in up to MAX_FANIN (Lava needs ports declared
statically on the model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

MAX_FANIN = 8


class _LayerProcess(AbstractProcess):
    def __init__(self, *, in_shapes: list[tuple[int, ...]], out_shape: tuple[int, ...], network: str, layer: str,
                 index: int, image: np.ndarray, num_steps: int, events_dir: str) -> None:
        super().__init__(network=network, layer=layer, index=index, image=image, num_steps=num_steps,
                         events_dir=events_dir, name=f"L{index}")
        for i, shape in enumerate(in_shapes):
            setattr(self, f"in{i}", InPort(shape=shape))
        self.out = OutPort(shape=out_shape)


def _model_init(self, proc_params) -> None:
    PyLoihiProcessModel.__init__(self, proc_params)
    import torch

    torch.set_num_threads(1)  # a forked child must not reuse the parent's OpenMP pool: it would hang
    from neuro_deploy.netx_io import read_network
    from neuro_deploy.sim.stepwise import LayerStepper

    q = read_network(proc_params["network"]).quantized
    self.stepper = LayerStepper(q, proc_params["layer"], proc_params["image"])
    self.buffer = np.zeros(q.graph.nodes[proc_params["layer"]].shape, np.int64)
    self.events = np.zeros((proc_params["num_steps"], *self.buffer.shape), np.int32)


def _run_spk(self) -> None:
    params = self.proc_params
    s = self.time_step - 1
    try:
        self.out.send(self.buffer)
        inputs = [getattr(self, f"in{i}").recv() for i in range(self.fan_in)]
        self.buffer = self.stepper.step(s, inputs)
        self.events[s] = self.buffer
        if s == params["num_steps"] - 1:
            np.save(Path(params["events_dir"]) / f"{params['index']}.npy", self.events)
    except Exception as exc:  # name the layer: Lava itself only reports "1 Exception(s) occurred"
        (Path(params["events_dir"]) / f"error_{params['index']}.txt").write_text(
            f"layer {params['index']} ({params['layer']}): {type(exc).__name__}: {exc}")
        raise


PROCESSES: dict[int, type[AbstractProcess]] = {}
for _k in range(MAX_FANIN + 1):
    _proc = type(f"LayerProcess{_k}", (_LayerProcess,), {"__module__": __name__})
    _ports = {f"in{i}": LavaPyType(PyInPort.VEC_DENSE, np.int32) for i in range(_k)}
    _model = type(f"PyLayerModel{_k}", (PyLoihiProcessModel,), {
        "__module__": __name__, "__init__": _model_init, "run_spk": _run_spk, "fan_in": _k,
        "out": LavaPyType(PyOutPort.VEC_DENSE, np.int32), **_ports,
    })
    _model = implements(proc=_proc, protocol=LoihiProtocol)(requires(CPU)(tag("fixed_pt")(_model)))
    globals()[_proc.__name__], globals()[_model.__name__] = _proc, _model
    PROCESSES[_k] = _proc
