"""Sinks that keep every step's input and save it to a file at the last step.

Lava's own sink is read with `Var.get()`, one element per message (seconds for a
conv layer); these write one file instead. A recorder given a `progress` file also writes the
steps done there, at most every `progress_every` seconds, so a long run can show how far it is
without a message to the runtime.
"""

from __future__ import annotations

import os
import time

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


class EventLog:
    """A layer's payloads for the steps that carry any: most layers of a converted network are
    silent outside a short window, and a dense `[steps, ...]` array would hold (and touch) every
    step's page. Saved as `.npz` (`steps`, `frames`); `load_events` makes the dense array again."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.frames: list[np.ndarray] = []

    def add(self, step: int, frame: np.ndarray) -> None:
        if frame.any():
            self.steps.append(step)
            self.frames.append(np.array(frame, np.int32))

    def save(self, path: str, shape: tuple[int, ...]) -> None:
        frames = np.stack(self.frames) if self.frames else np.zeros((0, *shape), np.int32)
        np.savez(path, steps=np.asarray(self.steps, np.int64), frames=frames)


class Tally:
    """A process model's run-time overflow, counted on the exact values its fixed-point arithmetic
    is about to wrap or saturate: how many left their range (`wrapped`, `saturated`; one per value per
    step) and the largest |sum| (`peak`). Saved once, after the last step, to a small `.npz` beside
    the layers' events: no `Var.get()`, no port or message of its own."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.wrapped = 0
        self.saturated = 0
        self.peak = 0

    @classmethod
    def at(cls, path: str | None) -> "Tally | None":
        """A tally saved to `path`, or None where the process was given no path (nothing counted)."""
        return cls(path) if path else None

    @staticmethod
    def outside(x: np.ndarray, low: int, high: int) -> int:
        """How many of `x` lie outside `[low, high]`."""
        return int(np.count_nonzero((x < low) | (x > high))) if x.size else 0

    def sums(self, x: np.ndarray, bits: int) -> None:
        """A synapse's exact sums, wrapped to `bits` signed bits after this: counted, and their peak kept."""
        if x.size:
            self.peak = max(self.peak, int(np.abs(x.astype(np.int64)).max()))
            self.wrapped += self.outside(x, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)

    def save(self, **arrays: np.ndarray) -> None:
        """Write the counts, and `arrays` beside them (a LIF layer's final `u` and `v`)."""
        np.savez(self.path, wrapped=self.wrapped, saturated=self.saturated, peak=self.peak, **arrays)


def load_tally(path: str) -> dict[str, np.ndarray]:
    """A saved `Tally`: `wrapped`, `saturated`, `peak`, and any arrays saved beside them."""
    with np.load(path) as f:
        return {key: f[key] for key in f.files}


def load_events(path: str, steps: int) -> np.ndarray:
    """The dense `[steps, ...]` payloads of an `EventLog` file."""
    with np.load(path) as f:
        out = np.zeros((steps, *f["frames"].shape[1:]), np.int32)
        out[f["steps"]] = f["frames"]
    return out


class MultiRecorder(AbstractProcess):
    """One process recording many layers: port `in<i>` saves to `paths[i]` (an `EventLog`);
    `progress`: a file to write the steps done to, at most every `progress_every` seconds (empty: none)."""

    def __init__(self, *, shapes: list[tuple[int, ...]], num_steps: int, paths: list[str], progress: str = "",
                 progress_every: float = 0.5) -> None:
        super().__init__(shapes=shapes, num_steps=num_steps, paths=paths, progress=progress,
                         progress_every=progress_every)
        for i, shape in enumerate(shapes):
            setattr(self, f"in{i}", InPort(shape=shape))


def _multi_init(self, proc_params) -> None:
    PyLoihiProcessModel.__init__(self, proc_params)
    self.logs = [EventLog() for _ in proc_params["shapes"]]
    self.reported = time.monotonic()


def _multi_run_spk(self) -> None:
    s = self.time_step - 1
    for i, log in enumerate(self.logs):
        log.add(s, getattr(self, f"in{i}").recv())
    if s == self.proc_params["num_steps"] - 1:
        for path, log, shape in zip(self.proc_params["paths"], self.logs, self.proc_params["shapes"]):
            log.save(path, shape)
    progress = self.proc_params["progress"]
    if progress and time.monotonic() - self.reported >= self.proc_params["progress_every"]:
        self.reported = time.monotonic()
        with open(f"{progress}.tmp", "w") as f:
            f.write(str(s + 1))
        os.replace(f"{progress}.tmp", progress)  # a reader sees a whole number or the previous one


def recorder_model(proc: MultiRecorder) -> type[PyLoihiProcessModel]:
    """The model class of `proc` (Lava needs a model's ports declared on its class)."""
    ports = {f"in{i}": LavaPyType(PyInPort.VEC_DENSE, np.int32) for i in range(len(proc.proc_params["shapes"]))}
    model = type("PyMultiRecorderModel", (PyLoihiProcessModel,), {
        "__module__": __name__, "__init__": _multi_init, "run_spk": _multi_run_spk, **ports})
    return implements(proc=MultiRecorder, protocol=LoihiProtocol)(requires(CPU)(tag("fixed_pt")(model)))
