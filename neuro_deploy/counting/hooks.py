"""Operation counts of the float PyTorch model, through forward hooks: what one forward really did.

Every synaptic op (conv) records its dense MACs, its effective ops (non-zero inputs times
fan-out, exact at the padded borders) and the kind of its input (`INPUT_KINDS`); the ops that have no
synaptic equivalent (attention gates, Hadamard products, ESDNet's refinement) record their MACs.
Conventions (docs/energy.md) then split these into ACs and MACs:

* `activity` (activity-based): the first conv (the image) and the layers after the mean over T as
  MACs, every conv of the T-step spiking body as ACs per effective op (measured non-zero inputs
  times fan-out), whatever its input. The paper's own method, one global firing rate times dense
  MACs, is `analytic.py`'s; real-valued conv inputs are near dense here, so the two differ;
* `strict` (NeuroBench's effective ACs/MACs): a conv's effective ops are ACs when its input was
  binary and MACs when it was real; a silent input (all zeros) has no effective ops to charge;
* `ann`: the same architecture as an ANN, every op a dense MAC, once instead of T times.

Gates and products are MACs in every convention. Neuron dynamics, scales, BN and sums are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from neuro_deploy.counting.counts import axis_patterns, mda_macs, refinement_macs, time_gate_macs
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.zoo import layers, neurons, vlifnet
from neuro_deploy.zoo.esdnet import FeatureRefinement

CONVENTIONS = ("activity", "strict", "ann")
FIRST = "patch_embed.proj"  # the conv that reads the image
#: what an op's input held: spikes (every value 0 or 1, some 1), anything else (graded NI-LIF levels,
#: real values; gates are "real"), or nothing at all (all zeros: a dead layer, neither binary nor real)
INPUT_KINDS = ("binary", "real", "silent")


@dataclass
class OpCount:
    name: str
    stage: str  # first, body (inside the T steps), post (after the mean over T), gate
    input: str  # one of INPUT_KINDS
    dense_macs: int  # per image, every input position
    effective: int  # per image, non-zero inputs times fan-out
    steps: int  # time steps the op ran over (T in the body, 1 after the mean)

    @property
    def binary(self) -> bool:
        """The input was spikes; an all-zero input is not called binary (it is "silent")."""
        return self.input == "binary"


@dataclass
class FloatCounts:
    ops: list[OpCount] = field(default_factory=list)
    spikes: int = 0  # non-zero outputs of all LIF and NI-LIF neurons
    neuron_outputs: int = 0  # all their outputs
    fired: dict[str, int] = field(default_factory=dict)  # LIF / NI-LIF module -> its non-zero outputs

    @property
    def spike_rate(self) -> float:
        return self.spikes / self.neuron_outputs if self.neuron_outputs else 0.0

    @property
    def silent_neurons(self) -> list[str]:
        """Neuron modules that never fired."""
        return [name for name, n in self.fired.items() if not n]

    def dead(self) -> list[str]:
        """Body convs with no effective op: their input never held a non-zero value the conv reads."""
        return [op.name for op in self.ops if op.stage == "body" and op.effective == 0]

    def convention(self, name: str) -> dict[str, int]:
        """`{"ac": n, "mac": n}` per image under convention `name`."""
        ac = mac = 0
        for op in self.ops:
            if name == "ann":
                mac += op.dense_macs // op.steps
            elif op.stage == "gate":
                mac += op.dense_macs
            elif name == "activity":
                if op.stage == "body":
                    ac += op.effective
                else:
                    mac += op.dense_macs
            elif name == "strict":  # a silent input has no effective op (0): neither AC nor MAC
                if op.input == "binary":
                    ac += op.effective
                elif op.input == "real":
                    mac += op.effective
            else:
                raise NeuroDeployError(f"unknown convention {name!r} (known: {', '.join(CONVENTIONS)})")
        return {"ac": ac, "mac": mac}

    def to_json(self) -> dict[str, Any]:
        return {"spike_rate": self.spike_rate, **{c: self.convention(c) for c in CONVENTIONS},
                "dead": self.dead(), "silent_neurons": self.silent_neurons,
                "ops": [{**vars(op), "binary": op.binary} for op in self.ops]}


def _axis_fanout(n_in: int, n_out: int, k: int, stride: int, padding: int, dilation: int) -> torch.Tensor:
    """Outputs that see each input position along one axis (a full kernel)."""
    return torch.from_numpy(axis_patterns(n_in, n_out, k, stride, padding, dilation, 1).sum(1).astype(np.float64))


def _conv_counts(m: nn.Conv2d, x: torch.Tensor, out: torch.Tensor) -> tuple[int, int, str]:
    """(dense MACs, effective ops, input kind) of a conv over `[N, C, H, W]` inputs."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = m.kernel_size, m.stride, m.padding, m.dilation
    if not isinstance(m.padding, tuple) or m.padding_mode != "zeros":
        raise NeuroDeployError(f"conv {m} has padding {m.padding!r} ({m.padding_mode}); only explicit zero padding is counted")
    fy = _axis_fanout(x.shape[-2], out.shape[-2], kh, sh, ph, dh)
    fx = _axis_fanout(x.shape[-1], out.shape[-1], kw, sw, pw, dw)
    per_input = m.out_channels // m.groups
    nonzero = (x != 0).to(torch.float64).sum(dim=(0, 1))  # [H, W]
    effective = per_input * float(fy @ nonzero @ fx)
    dense = per_input * x.shape[0] * x.shape[1] * float(fy.sum() * fx.sum())
    return round(dense), round(effective), _input_kind(x)


def _input_kind(x: torch.Tensor) -> str:
    if not bool(x.any()):
        return "silent"
    return "binary" if bool(((x == 0) | (x == 1)).all()) else "real"


class _Recorder:
    def __init__(self, model: nn.Module) -> None:
        self.counts = FloatCounts()
        self.T = int(model.T)

    def op(self, name: str, stage: str, kind: str, dense: int, effective: int, steps: int) -> None:
        self.counts.ops.append(OpCount(name, stage, kind, dense, effective, steps))

    def hook(self, name: str, module: nn.Module):
        def record(_m: nn.Module, inputs: tuple, out: Any) -> None:
            x = inputs[0]
            if isinstance(module, (neurons.LIF, neurons.NILIF)):
                fired = int(torch.count_nonzero(out))
                self.counts.spikes += fired
                self.counts.neuron_outputs += out.numel()
                self.counts.fired[name] = self.counts.fired.get(name, 0) + fired
            elif isinstance(module, nn.Conv3d):  # temporal compress: (r^2,1,1) kernels over sub-steps, no overlap
                if module.kernel_size[1:] != (1, 1) or module.stride[0] != module.kernel_size[0]:
                    raise NeuroDeployError(f"{name}: only non-overlapping temporal Conv3d kernels are counted")
                b, cin, _, h, w = x.shape
                dense = module.out_channels * cin * module.kernel_size[0] * out.shape[2] * h * w // b
                self.op(name, "body", _input_kind(x), dense,
                        module.out_channels * int(torch.count_nonzero(x[:, :, :out.shape[2] * module.kernel_size[0]])) // b,
                        out.shape[2])
            elif isinstance(module, nn.Conv2d):
                if x.dim() == 5:  # multi-step conv over [T, B, C, H, W]
                    steps, b = x.shape[:2]
                    dense, effective, kind = _conv_counts(module, x.flatten(0, 1), out.flatten(0, 1))
                else:
                    steps, b = 1, x.shape[0]
                    dense, effective, kind = _conv_counts(module, x, out)
                stage = "first" if name == FIRST else "body" if x.dim() == 5 else "post"
                self.op(name, stage, kind, dense // b, effective // b, steps)
            elif isinstance(module, layers.MDA):
                steps, b, c, h, w = x.shape
                macs = mda_macs(steps, c, h, w, module.ta.sharedMLP[0].out_channels,
                                module.ca.sharedMLP[0].out_channels, module.sa.conv.kernel_size[0])
                self.op(name, "gate", "real", macs, macs, steps)
            elif isinstance(module, layers.TimeAttention):  # the SMU's gate over [B, T r^2, C, h, w]
                b, sub, c, h, w = x.shape
                macs = time_gate_macs(sub, module.sharedMLP[0].out_channels, c, h, w)
                self.op(name, "gate", "real", macs, macs, self.T)
            elif isinstance(module, FeatureRefinement):
                b, c, h, w = x.shape
                ca, sa = module.convs()
                macs = refinement_macs(c, h, w, [tuple(wt.shape) for wt, _ in ca], [tuple(wt.shape) for wt, _ in sa])
                self.op(name, "gate", "real", macs, macs, 1)
            elif isinstance(module, vlifnet.SDEMBlock) and module.enhance_product:  # x*s1 and y*s2
                steps, b = x.shape[:2]
                macs = 2 * x.numel() // b
                self.op(f"{name}.products", "gate", "real", macs, macs, steps)
        return record


COUNTED = (neurons.LIF, neurons.NILIF, nn.Conv2d, nn.Conv3d, layers.MDA, layers.TimeAttention, FeatureRefinement,
           vlifnet.SDEMBlock)


@torch.no_grad()
def count_float(model: nn.Module, image: torch.Tensor) -> FloatCounts:
    """Counts of one forward of a zoo network on one `[1, 3, H, W]` image."""
    if image.dim() != 4 or image.shape[0] != 1:
        raise NeuroDeployError(f"count_float takes one image [1, C, H, W], got {tuple(image.shape)}")
    recorder = _Recorder(model)
    handles = [m.register_forward_hook(recorder.hook(name, m)) for name, m in model.named_modules()
               if isinstance(m, COUNTED)]
    try:
        model.eval()(image)
    finally:
        for h in handles:
            h.remove()
    return recorder.counts
