"""Neuron programs Lava lacks, as Loihi 2 programmable neurons would compute them.

Written from docs/format.md (the semantics of each layer kind), in numpy int64, independent of
the fast simulator. Lava shapes are `(W, H, C)`; each model works on `(C, H, W)` views.
Every model knows its window (`start`, the step its first input arrives, and `window`, the
number of input steps), is silent outside it, and saves its payloads (an `EventLog` of
`(C, H, W)` frames) to `path` after the last step. Binary LIF neurons and bias-free relays are
Lava's own (LIF, GradedVec, GradedReluVec) and are recorded by `MultiRecorder`; host layers run
in `HostLayers`.
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

from neuro_deploy.backends.lava_procs.recorder import EventLog

SATURATION = 2**23 - 1  # graded state and payload: 24 bits signed


def chw(x: np.ndarray) -> np.ndarray:
    """A Lava `(W, H, C)` payload as an int64 `(C, H, W)` view."""
    return np.asarray(x, np.int64).transpose(2, 1, 0)


def whc(x: np.ndarray) -> np.ndarray:
    """A `(C, H, W)` payload in Lava's `(W, H, C)` order."""
    return np.ascontiguousarray(x.transpose(2, 1, 0))


class GradedNeuron(AbstractProcess):
    """A neuro-deploy neuron: `kind` selects the program, `params` its integer parameters."""

    def __init__(self, *, in_shape: tuple[int, ...], out_shape: tuple[int, ...], kind: str, start: int, window: int,
                 num_steps: int, path: str, params: dict, name: str = "") -> None:
        super().__init__(in_shape=in_shape, out_shape=out_shape, kind=kind, start=start, window=window,
                         num_steps=num_steps, path=path, params=params, name=name)
        self.a_in = InPort(shape=in_shape)
        self.s_out = OutPort(shape=out_shape)


@implements(proc=GradedNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGradedNeuronModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.p = proc_params["params"]
        self.out_shape = tuple(proc_params["out_shape"])[::-1]  # (C, H, W)
        self.log = EventLog()
        self.state: dict[str, np.ndarray] = {}

    def run_spk(self) -> None:
        s = self.time_step - 1
        x = chw(self.a_in.recv())
        k = s - self.proc_params["start"]
        out = self.compute(x, k) if 0 <= k < self.proc_params["window"] else None
        out = np.zeros(self.out_shape, np.int64) if out is None else out
        self.log.add(s, out)
        self.s_out.send(whc(out))
        if s == self.proc_params["num_steps"] - 1:
            self.log.save(self.proc_params["path"], self.out_shape)

    # (Lava's model base class owns `_host`-like command handler names: keep these distinct)
    def compute(self, x: np.ndarray, k: int) -> np.ndarray | None:
        kind = self.proc_params["kind"]
        if kind == "nilif":
            return self._nilif_program(x, k)
        if kind == "relay":
            return self._graded(x)
        self.state["sum"] = self.state.get("sum", 0) + x  # accumulate
        return self._graded(self.state["sum"]) if k == self.proc_params["window"] - 1 else None

    def _graded(self, x: np.ndarray) -> np.ndarray:
        """State `x + bias`, saturated to 24 bits; the payload is its arithmetic right shift
        (the bias holds the rounding), then the optional ReLU."""
        state = np.clip(x + self.p["bias"][:, None, None], -SATURATION, SATURATION)
        out = np.right_shift(state, self.p["shift"])
        return np.maximum(out, 0) if self.p["relu"] else out

    def _nilif_program(self, x: np.ndarray, k: int) -> np.ndarray:
        """r x r patches as r^2 sub-steps (row-major), U = floor((U - q*unit/levels) / 2^d) + x,
        q = round-half-to-even(clamp(U, 0, levels*unit) / unit); sub-step j to channel c*r^2 + j."""
        r, unit, levels, d = self.p["r"], self.p["unit"], self.p["levels"], self.p["decay_shift"]
        c, h, w = x.shape
        if k == 0:
            self.state = {"u": np.zeros((c, h // r, w // r), np.int64), "q": np.zeros((c, h // r, w // r), np.int64)}
        u, q = self.state["u"], self.state["q"]
        out = np.zeros((c, r * r, h // r, w // r), np.int64)
        for j in range(r * r):
            u = np.floor_divide(u - q * (unit // levels), 1 << d) + x[:, j // r::r, j % r::r]
            clamped = np.clip(u, 0, levels * unit)
            base, rem = np.divmod(clamped, unit)
            q = base + ((rem > unit // 2) | ((rem == unit // 2) & (base % 2 == 1)))
            out[:, j] = q
        self.state["u"], self.state["q"] = u, q
        return out.reshape(c * r * r, h // r, w // r)
