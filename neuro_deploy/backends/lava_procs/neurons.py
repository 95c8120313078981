"""Neuron programs Lava lacks, as Loihi 2 programmable neurons would compute them.

Written from docs/format.md (the semantics of each layer kind), in numpy int64, independent of
the fast simulator. Lava shapes are `(W, H, C)`; each model works on `(C, H, W)` views.
Every model knows its window (`start`, the step its first input arrives, and `window`, the
number of input steps), is silent outside it, and saves its payloads (an `EventLog` of
`(C, H, W)` frames) to `path` after the last step. Binary LIF neurons and bias-free relays are
Lava's own (LIF, GradedVec, GradedReluVec) and are recorded by `MultiRecorder`; host layers run
in `HostLayers`. `CountedLIF` / `CountedLIFReset` are Lava's LIF models unchanged, counting the
currents Lava wraps and the voltages it saturates (`recorder.Tally`), and able to save their final
`u` and `v` with the counts; the programs here count the states they saturate.
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
from lava.proc.lif.models import PyLifModelBitAcc, PyLifResetModelBitAcc
from lava.proc.lif.process import LIF, LIFReset

from neuro_deploy.backends.lava_procs.recorder import EventLog, Tally

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
                 num_steps: int, path: str, params: dict, name: str = "", tally: str = "") -> None:
        """`tally`: where to save the count of saturated states (empty: not counted)."""
        super().__init__(in_shape=in_shape, out_shape=out_shape, kind=kind, start=start, window=window,
                         num_steps=num_steps, path=path, params=params, name=name, tally=tally)
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
        self.tally = Tally.at(proc_params["tally"])

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
            if self.tally is not None:
                self.tally.save()

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
        state = x + self.p["bias"][:, None, None]
        if self.tally is not None:
            self.tally.saturated += Tally.outside(state, -SATURATION, SATURATION)
        state = np.clip(state, -SATURATION, SATURATION)
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


U_LOW, U_HIGH = -(2**23) + 1, 2**23  # Lava's LIF current wraps into (-2^23, 2^23] (lava/proc/lif/models.py:161-171)
V_LIMIT = 2**23 - 1  # and its voltage saturates at +-(2^23 - 1) (:175-185)


def _truncated_decay(x: np.ndarray, keep: int) -> np.ndarray:
    """`x * keep / 4096` truncated toward zero, exactly (int64)."""
    product = x.astype(np.int64) * keep
    return np.sign(product) * (np.abs(product) >> 12)


class CountingLif:
    """Counting for Lava's bit-accurate LIF models, which run unchanged: before each step's update
    the exact current and decayed voltage are made in int64, and after it the values Lava wrapped
    (`u`) or saturated (`v`) are counted. After the last step the counts go to the `tally` file,
    with the final `u` and `v` (Lava's `(W, H, C)` order) when `states` is set."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.tally = Tally.at(self.proc_params.get("tally"))

    def subthr_dynamics(self, activation_in: np.ndarray) -> None:
        if self.tally is None:
            super().subthr_dynamics(activation_in)
            return
        current = _truncated_decay(self.u, self.decay_unity - (self.du + self.ds_offset)) + \
            (np.asarray(activation_in, np.int64) << self.act_shift)
        decayed = _truncated_decay(self.v, self.decay_unity - (self.dv + self.dm_offset))
        super().subthr_dynamics(activation_in)
        self.tally.wrapped += Tally.outside(current, U_LOW, U_HIGH)
        self.tally.saturated += Tally.outside(decayed + self.u + np.asarray(self.effective_bias, np.int64),
                                              -V_LIMIT, V_LIMIT)

    def run_spk(self) -> None:
        super().run_spk()
        if self.tally is not None and self.time_step == self.proc_params["num_steps"]:
            states = {"u": np.array(self.u), "v": np.array(self.v)} if self.proc_params["states"] else {}
            self.tally.save(**states)


def _counted(process: LIF, num_steps: int, tally: str, states: bool) -> None:
    """Give a LIF process what its counting model reads (LIFReset takes no extra arguments)."""
    process.proc_params["num_steps"] = num_steps
    process.proc_params["tally"] = tally
    process.proc_params["states"] = states


class CountedLIF(LIF):
    """Lava's LIF; its model counts what overflows into `tally` over `num_steps` steps and, with
    `states`, saves its final `u` and `v` there."""

    def __init__(self, *, num_steps: int, tally: str, states: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        _counted(self, num_steps, tally, states)


class CountedLIFReset(LIFReset):
    """Lava's LIFReset, counted as `CountedLIF`."""

    def __init__(self, *, num_steps: int, tally: str, states: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        _counted(self, num_steps, tally, states)


@implements(proc=CountedLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyCountedLifModel(CountingLif, PyLifModelBitAcc):
    implements_process = None  # Lava refuses to re-decorate a model that already implements a process
    tags: list = []


@implements(proc=CountedLIFReset, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyCountedLifResetModel(CountingLif, PyLifResetModelBitAcc):
    implements_process = None
    tags: list = []
