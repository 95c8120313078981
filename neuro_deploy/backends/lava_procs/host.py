"""Every host layer of a network in one Lava CPU process.

Host layers (products, attention gates, refinement) have no neurocore equivalent: on Loihi they
would run on the host CPU, not on a core. One process for all of them, instead of one each,
spares Lava a process, its channels and its own torch import per layer (36 layers of the paper's
small VLIFNet), and torch is imported here, after Lava forked, so no other process carries it.

Each layer computes in float64 from its inputs decoded by its state scale, and sends its result
encoded by its scale, as docs/format.md defines host layers. Its ports are `a_in<i>_<p>` (layer i,
input port p) and `s_out<i>`; Lava needs a model's ports declared on its class, so `host_model`
makes the class for a given process.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neuro_deploy.backends.lava_procs.neurons import SATURATION, chw, whc
from neuro_deploy.backends.lava_procs.recorder import EventLog, Tally


class HostLayers(AbstractProcess):
    """`layers`: per layer its `in_shapes` (Lava order), `out_shape`, `start`, `window`, `path`
    (where its payloads are saved), `params` (the IR node, scales, emit step, windowed) and `tally`
    (where the count of saturated payloads goes; empty: not counted)."""

    def __init__(self, *, layers: list[dict], num_steps: int) -> None:
        super().__init__(layers=layers, num_steps=num_steps)
        for i, layer in enumerate(layers):
            for p, shape in enumerate(layer["in_shapes"]):
                setattr(self, f"a_in{i}_{p}", InPort(shape=shape))
            setattr(self, f"s_out{i}", OutPort(shape=layer["out_shape"]))


class HostLayer:
    """One host op: its window's inputs in, its encoded result out. Gates that pool over time
    hold their whole window and emit it from `emit` on."""

    def __init__(self, layer: dict) -> None:
        self.start, self.window, self.path = layer["start"], layer["window"], layer["path"]
        self.p = layer["params"]
        self.ports = len(layer["in_shapes"])
        self.out_shape = tuple(layer["out_shape"])[::-1]  # (C, H, W)
        self.held: list[list[np.ndarray]] = []
        self.out: np.ndarray | None = None
        self.log = EventLog()
        self.tally = Tally.at(layer.get("tally"))

    def step(self, x: list[np.ndarray], s: int) -> np.ndarray:
        out = self._compute(x, s - self.start, s)
        out = np.zeros(self.out_shape, np.int64) if out is None else out
        self.log.add(s, out)
        return out

    def _compute(self, x: list[np.ndarray], k: int, s: int) -> np.ndarray | None:
        import torch

        from neuro_deploy.ir.execute import apply_float

        p = self.p
        inside = 0 <= k < self.window
        if inside:
            self.held.append(x)
        if (k == self.window - 1) if p["windowed"] else inside:
            frames = self.held if p["windowed"] else [x]
            ins = [torch.from_numpy(np.stack([f[i] for f in frames])[:, None]).double() / p["state_scale"]
                   for i in range(len(x))]
            real = apply_float(p["node"], ins, None)
            encoded = np.round(real[:, 0].numpy() * p["scale"])
            if self.tally is not None:
                self.tally.saturated += Tally.outside(encoded, -SATURATION, SATURATION)
            encoded = np.clip(encoded, -SATURATION, SATURATION).astype(np.int64)
            if not p["windowed"]:
                return encoded[0]
            self.out, self.held = encoded, []
        j = s - p["emit"]
        if p["windowed"] and self.out is not None and 0 <= j < len(self.out):
            return self.out[j]
        return None


def _init(self, proc_params) -> None:
    PyLoihiProcessModel.__init__(self, proc_params)
    import torch

    torch.set_num_threads(1)  # a forked child must not use the parent's OpenMP pool
    self.layers = [HostLayer(layer) for layer in proc_params["layers"]]


def _run_spk(self) -> None:
    s = self.time_step - 1
    outs = [layer.step([chw(getattr(self, f"a_in{i}_{p}").recv()) for p in range(layer.ports)], s)
            for i, layer in enumerate(self.layers)]
    for i, out in enumerate(outs):  # every input first: a layer's output reaches another only through a synapse
        getattr(self, f"s_out{i}").send(whc(out))
    if s == self.proc_params["num_steps"] - 1:
        for layer in self.layers:
            layer.log.save(layer.path, layer.out_shape)
            if layer.tally is not None:
                layer.tally.save()


def host_model(proc: HostLayers) -> type[PyLoihiProcessModel]:
    """The model class of `proc`, with its ports declared."""
    ports = {f"s_out{i}": LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
             for i in range(len(proc.proc_params["layers"]))}
    for i, layer in enumerate(proc.proc_params["layers"]):
        ports.update({f"a_in{i}_{p}": LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
                      for p in range(len(layer["in_shapes"]))})
    model = type("PyHostLayersModel", (PyLoihiProcessModel,),
                 {"__module__": __name__, "__init__": _init, "run_spk": _run_spk, **ports})
    return implements(proc=HostLayers, protocol=LoihiProtocol)(requires(CPU)(tag("fixed_pt")(model)))
