"""A sink that keeps every step's input and saves it to a file at the last step.

Lava's own sink is read with `Var.get()`, one element per message (seconds for a
conv layer); this writes one `.npy` instead.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class EventRecorder(AbstractProcess):
    def __init__(self, *, shape: tuple[int, ...], num_steps: int, path: str) -> None:
        super().__init__(shape=shape, num_steps=num_steps, path=path)
        self.a_in = InPort(shape=shape)


@implements(proc=EventRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyEventRecorderModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.events = np.zeros((proc_params["num_steps"], *proc_params["shape"]), np.int32)

    def run_spk(self) -> None:
        s = self.time_step - 1
        self.events[s] = self.a_in.recv()
        if s == self.proc_params["num_steps"] - 1:
            np.save(self.proc_params["path"], self.events)
