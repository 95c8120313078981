"""Minimal subclasses of Lava's own synapse models, where a stock model needs a fix.

* `ConvExp`: Lava's fixed-point Conv computes the convolution and wraps it to 24 bits but
  ignores its `weight_exp` (lava/proc/conv/models.py:34-51, 78-79). Loihi applies the exponent,
  so this model runs Lava's convolution and wrap unchanged and then shifts the wrapped sum by
  `weight_exp` as Lava's Sparse does (left shift, or arithmetic right shift). A step without input
  events is not convolved (its sum is zero), as on Loihi's event-driven synapses.
* `DelayConv`: a Conv whose synapses share one axonal delay, as Loihi's dendritic delay slots
  hold it. Lava has no delayed Conv: its DelaySparse would need the convolution unrolled into a
  matrix (9.4 M entries for one 16-channel 3x3 conv at 64x64, in the worker and again in its
  process), where the Conv keeps the kernel. This model runs `ConvExp` unchanged and hands its
  shifted sum to the dendrite `delay` steps later.
* `CachedDelaySparse`: Lava's DelaySparse rebuilds its delay-stacked weight matrix from scratch
  every step (lava/proc/sparse/models.py:207-262, `calc_act` -> `get_delay_wgts_mat`); this model
  builds it once. The arithmetic is Lava's.
* `CountedSparse`, `CountedDense`: Lava's Sparse and Dense, their step made in int64 and wrapped
  to int32 (what Lava's int32 product does) so that the wrapped sums can be counted.

Each model given a `tally` path counts its run-time overflow there (`recorder.Tally`): the sums
its accumulator wraps (Conv: 24 bits; Sparse: int32) and their largest |value| before the shift.

docs/lava-facts.md records both. This package holds nothing but processes and their models:
Lava's compiler executes every module in it.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.conv import utils
from lava.proc.conv.models import PyConvModelFixed
from lava.proc.conv.process import Conv
from lava.proc.dense.models import PyDenseModelBitAcc
from lava.proc.dense.process import Dense
from lava.proc.sparse.models import PyDelaySparseModelBitAcc, PySparseModelBitAcc
from lava.proc.sparse.process import DelaySparse, Sparse
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights
from scipy.sparse import csr_matrix

from neuro_deploy.backends.lava_procs.recorder import Tally

CONV_BITS = 24  # Lava's fixed-point Conv wraps its sums to 24 bits (lava/proc/conv/models.py:78-79)
SPARSE_BITS = 32  # Lava's Sparse and DelaySparse sum in int32


def _saved_at_end(model) -> None:
    """Save the model's tally after its last step."""
    if model.tally is not None and model.time_step == model.proc_params["num_steps"]:
        model.tally.save()


class ConvExp(Conv):
    """Lava's Conv process; its model applies `weight_exp` and, given a `tally` path, counts its
    wrapped sums over `num_steps` steps."""

    def __init__(self, *, num_steps: int = 0, tally: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.proc_params["num_steps"] = num_steps
        self.proc_params["tally"] = tally


@implements(proc=ConvExp, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyConvExpModel(PyConvModelFixed):
    implements_process = None  # Lava refuses to re-decorate a model that already implements a process
    tags: list = []

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.tally = Tally.at(self.proc_params.get("tally"))

    def run_spk(self) -> None:
        """Lava's Conv step (send the previous step's sum, convolve this step's input), except that
        a step without input events is not convolved: its sum is zero, and Loihi's event-driven
        synapses spend nothing on it either. Lava's model convolves every step, one scipy
        convolve2d per channel pair: most of a converted network's run, whose layers are silent
        outside a short window."""
        self.a_out.send(self.a_buf)
        s_in = self.s_in.recv() if self.num_message_bits.item() > 0 else self.s_in.recv().astype(bool)
        if s_in.any():
            a_out = utils.conv(s_in, self.weight, self.kernel_size, self.stride, self.padding, self.dilation,
                               self.groups[0])
        else:
            a_out = np.zeros(self.a_buf.shape, np.int32)
        self.a_buf = self.clamp_precision(a_out)
        _saved_at_end(self)

    def clamp_precision(self, x: np.ndarray) -> np.ndarray:
        if self.tally is not None:
            self.tally.sums(x, CONV_BITS)
        wrapped = super().clamp_precision(x).astype(np.int32)
        exp = int(self.weight_exp[0])
        return np.left_shift(wrapped, exp) if exp > 0 else np.right_shift(wrapped, -exp)


class DelayConv(ConvExp):
    """`ConvExp` whose every synapse has the same axonal delay: a spike sent in step t reaches the
    neurons in step t + 1 + delay, as with Lava's DelaySparse."""

    def __init__(self, *, delay: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.delay = Var(shape=(1,), init=delay)


@implements(proc=DelayConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyDelayConvModel(PyConvExpModel):
    implements_process = None
    tags: list = []
    delay: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=6)
    slots: deque | None = None

    def clamp_precision(self, x: np.ndarray) -> np.ndarray:
        """Conv sends the sum it stored in the step before: store the one made `delay` steps ago."""
        shifted = super().clamp_precision(x)
        if self.slots is None:
            self.slots = deque(np.zeros_like(shifted) for _ in range(int(self.delay[0])))
        self.slots.append(shifted)
        return self.slots.popleft()


class CachedDelaySparse(DelaySparse):
    """Lava's DelaySparse process; its model builds the delay-stacked matrix once and, given a
    `tally` path (and `num_steps`), counts its wrapped sums."""


@implements(proc=CachedDelaySparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyCachedDelaySparseModel(PyDelaySparseModelBitAcc):
    implements_process = None
    tags: list = []
    stacked = None

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.tally = Tally.at(self.proc_params.get("tally"))

    def run_spk(self) -> None:
        super().run_spk()
        _saved_at_end(self)

    def calc_act(self, s_in: np.ndarray) -> np.ndarray:
        if self.stacked is None:  # weights are final: run_spk clipped them before the first call
            stacked = self.get_delay_wgts_mat(self.weights, self.delays, self.a_buff.shape[-1] - 1)
            self.stacked = csr_matrix(stacked, dtype=np.int64)
        act = self.stacked.dot(np.asarray(s_in, np.int64))  # exact; the int32 cast is Lava's int32 wrap
        if self.tally is not None:
            self.tally.sums(act, SPARSE_BITS)
        return np.reshape(act.astype(np.int32), (self.a_buff.shape[-1], self.weights.shape[0])).T


class CountedSparse(Sparse):
    """Lava's Sparse process that, given a `tally` path (and `num_steps`), counts its wrapped sums."""


class CountedDense(Dense):
    """Lava's Dense process that, given a `tally` path (and `num_steps`), counts its wrapped sums."""


class ExactSum:
    """Lava's Sparse and Dense step (lava/proc/sparse/models.py:77-107, dense/models.py:77-107: weights
    clipped once, the previous step's sum sent, this step's summed and shifted by `weight_exp`),
    with the sum made exactly in int64, counted, then cast to int32 (Lava's int32 wrap)."""

    exact = None

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.tally = Tally.at(self.proc_params.get("tally"))

    @staticmethod
    def int64(weights):
        """The clipped weights, as int64, in the layout the process keeps them."""
        raise NotImplementedError

    def run_spk(self) -> None:
        if self.exact is None:
            mode = self.proc_params.get("sign_mode") or determine_sign_mode(self.weights)
            weights = clip_weights(self.weights, mode, num_bits=8)
            weights = truncate_weights(weights, mode, self.proc_params.get("num_weight_bits", 8))
            self.exact = self.int64(weights)
        self.a_out.send(self.a_buff)
        s_in = self.s_in.recv()
        if self.num_message_bits.item() == 0:
            s_in = s_in.astype(bool)
        acc = self.exact.dot(s_in.astype(np.int64))
        if self.tally is not None:
            self.tally.sums(acc, SPARSE_BITS)
            _saved_at_end(self)
        exp = int(self.proc_params.get("weight_exp", 0))
        acc = acc.astype(np.int32)
        self.a_buff = np.left_shift(acc, exp) if exp > 0 else np.right_shift(acc, -exp)


@implements(proc=CountedSparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyCountedSparseModel(ExactSum, PySparseModelBitAcc):
    implements_process = None  # Lava refuses to re-decorate a model that already implements a process
    tags: list = []

    @staticmethod
    def int64(weights):
        return csr_matrix(weights, dtype=np.int64)


@implements(proc=CountedDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyCountedDenseModel(ExactSum, PyDenseModelBitAcc):
    implements_process = None
    tags: list = []

    @staticmethod
    def int64(weights):
        return np.asarray(weights, np.int64)
