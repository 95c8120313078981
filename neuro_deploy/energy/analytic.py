"""Analytic operation counts of the seed networks from their architecture alone, and the paper's
global-firing-rate energy method with every assumption it rests on made switchable.

The seed paper's 13% (VLIFNet / ESDNet energy) came from an analytic calculator that was never
published: MACs per layer, one global firing rate, 45 nm figures. To replay and audit it, the zoo
network is built on torch's `meta` device and run once on a meta image: nothing is allocated or
computed, yet every module sees the shapes it would see, so the counts follow the zoo's own
structure (they cannot drift from it) and take well under a second at the release size.

Every op is put in one category (see `CATEGORIES`); whether a conv's input is binary (a LIF spike),
graded (NI-LIF levels) or real-valued is read from the structure: the conv's input is, or is a view
of, a neuron's output. The global-rate method then charges (docs/energy.md):

* the first layer as MACs, on every step or once (the image is the same on every step);
* a body layer with binary input as `rate x dense MACs` ACs;
* a body layer with a real-valued or graded input the same way (the paper's premise), or as dense
  MACs (a real value is not sparse: NeuroBench's rule);
* VLIF's 1x1 `channel_adjust` as a real-input body layer, or not at all;
* attention gates and Hadamard products as dense MACs, or not at all;
* the ANN tail after the mean over T as dense MACs (ESDNet's refinement block optionally left out).
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from rich import box
from rich.table import Table
from torch import nn

from neuro_deploy import zoo
from neuro_deploy.common import resources
from neuro_deploy.common.jsonfile import read_json
from neuro_deploy.counting.counts import axis_patterns, mda_macs, refinement_macs, time_gate_macs
from neuro_deploy.counting.hooks import FIRST
from neuro_deploy.energy.profiles import Profile, Term
from neuro_deploy.energy.report import format_energy
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.zoo import layers, neurons, vlifnet
from neuro_deploy.zoo.esdnet import FeatureRefinement

ARCHS = ("vlifnet", "esdnet")
RELEASE: dict[str, dict[str, Any]] = {  # design.md: both releases are dim 48, en [4,4,8,8], de [2,2,2,2]
    "vlifnet": {"dim": 48, "en_num_blocks": [4, 4, 8, 8], "de_num_blocks": [2, 2, 2, 2], "use_refinement": False},
    "esdnet": {"dim": 48, "en_num_blocks": [4, 4, 8, 8], "de_num_blocks": [2, 2, 2, 2]},
}
PAPER_RATIO = 0.13  # the seed paper: VLIFNet needs 13% of ESDNet's energy
PAPER_RATE = 0.1642  # the global firing rate of the original code's call
#: `--preset paper`: the original code's call `EnergyCalculator(T=4, sparsity=0.1642).calculate_vlifnet_energy(
#: input_size=(3,256,256), dim=24, en_num_blocks=[4,4,6,6], de_num_blocks=[4,4,6,6])` (the class defaults, not
#: the release), against the release ESDNet under the same settings
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"configs": {"vlifnet": {"dim": 24, "en_num_blocks": [4, 4, 6, 6], "de_num_blocks": [4, 4, 6, 6],
                                      "use_refinement": False},
                          "esdnet": dict(RELEASE["esdnet"])},
              "size": 256, "T": 4, "rate": PAPER_RATE},
    #: `--preset release-cpu`: both release configurations priced at the per-layer rates measured on
    #: their CPU-trained weights (bundled profiles, neuro_deploy/firing_rates/README.md); the
    #: configurations come with the rates
    "release-cpu": {"size": 256, "rate": "vlifnet=vlifnet_release_cpu,esdnet=esdnet_release_cpu"},
}
#: What the paper's formula charges (docs/energy.md section 5): every conv at k^2 H W per channel
#: pair (textbook counting), the first layer per step, real-valued inputs as ACs at the global rate,
#: and no attention gates or products; with `--preset paper`'s call this gives 17.4%.
PAPER_FORMULA = {"counting": "textbook", "first_layer": "per-step", "real_inputs": "ac", "exclude": frozenset({"gates"})}
CATEGORIES = {
    "first": "first layer (the image)",
    "body_binary": "spiking body, binary input",
    "body_real": "spiking body, real or graded input",
    "channel_adjust": "VLIF 1x1 channel_adjust",
    "gates": "attention gates and products",
    "tail": "ANN tail after the mean over T",
}
RATED = ("body_binary", "body_real", "channel_adjust")  # the categories a firing rate applies to
SWITCHES = ("channel_adjust", "gates", "refinement")  # what `exclude` can leave out
FIRST_LAYER = ("per-step", "once")
REAL_INPUTS = ("ac", "mac")
COUNTING = ("exact", "textbook")
SOLVE = ("esdnet-rate", "vlifnet-rate", "rate")
_SPEC_KEYS = {"dim": "dim", "en": "en_num_blocks", "de": "de_num_blocks", "refinement": "use_refinement",
              "attention": "attention", "product": "enhance_product"}
_ARCH_KEYS = {"vlifnet": tuple(_SPEC_KEYS), "esdnet": ("dim", "en", "de")}
_BOOLS = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class Op:
    name: str  # the zoo module (with `.products` for an SDEM block's Hadamard products)
    category: str  # a key of CATEGORIES
    part: str  # conv, temporal, channel_adjust, gate, products, refinement
    input: str  # binary, graded or real
    macs: int  # dense MACs per image, over every step the op runs
    steps: int  # the steps it runs over (T in the body, 1 after the mean)

    @property
    def stage(self) -> str:
        return self.name.split(".")[0]

    def switch(self) -> str | None:
        """The `exclude` switch that leaves this op out, if any."""
        return {"channel_adjust": "channel_adjust", "gate": "gates", "products": "gates",
                "refinement": "refinement"}.get(self.part)


@dataclass
class Thop:
    """What `thop.profile` prints for the network: it counts only modules of exactly its known types
    (nn.Conv2d, nn.Conv3d, nn.Linear, BatchNorm...), so subclasses such as the multi-step SeqConv2d
    and TdBN, and parameters held by custom modules, count as zero."""
    params: int
    macs: int
    missed_params: dict[str, int]  # module type -> parameters thop does not see


@dataclass
class NetworkCounts:
    arch: str
    config: dict[str, Any]
    size: int
    T: int
    counting: str
    ops: list[Op]
    params: int
    thop: Thop

    def rated_layers(self) -> list[str]:
        return [op.name for op in self.ops if op.category in RATED]

    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    def to_json(self) -> dict[str, Any]:
        return {"arch": self.arch, "config": self.config, "size": self.size, "T": self.T, "counting": self.counting,
                "params": self.params, "dense_macs": self.macs(),
                "thop": {"params": self.thop.params, "macs": self.thop.macs, "missed_params": self.thop.missed_params}}


# ---- configurations ----------------------------------------------------------------------------

def parse_spec(arch: str, text: str) -> dict[str, Any]:
    """`dim=24,en=4,4,6,6,de=4,4,6,6[,refinement=on,attention=off,product=off]` -> constructor
    arguments; keys not given keep the release's values."""
    if arch not in ARCHS:
        raise NeuroDeployError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
    pairs: list[tuple[str, list[str]]] = []
    for token in (t.strip() for t in text.split(",")):
        if "=" in token:
            key, _, value = token.partition("=")
            pairs.append((key.strip(), [value.strip()]))
        elif pairs and token:
            pairs[-1][1].append(token)
        else:
            raise NeuroDeployError(f"--{arch} {text!r}: expected key=value[,value...], got {token!r}")
    config = dict(RELEASE[arch])
    seen: set[str] = set()
    for key, values in pairs:
        where = f"--{arch} {text!r}: {key}"
        if key not in _ARCH_KEYS[arch]:
            raise NeuroDeployError(f"--{arch} {text!r}: unknown key {key!r} (known: {', '.join(_ARCH_KEYS[arch])})")
        if key in seen:
            raise NeuroDeployError(f"{where} given twice")
        seen.add(key)
        if key == "dim":
            (dim,) = _ints(where, values, 1)
            if dim < (4 if arch == "esdnet" else 1):
                raise NeuroDeployError(f"{where}={dim}: must be at least {4 if arch == 'esdnet' else 1}")
            config["dim"] = dim
        elif key in ("en", "de"):
            config[_SPEC_KEYS[key]] = _ints(where, values, 4)
        else:
            if len(values) != 1 or values[0].lower() not in _BOOLS:
                raise NeuroDeployError(f"{where}={','.join(values)}: expected on or off")
            config[_SPEC_KEYS[key]] = _BOOLS[values[0].lower()]
    return config


def _ints(where: str, values: list[str], n: int) -> list[int]:
    try:
        ints = [int(v) for v in values]
    except ValueError:
        raise NeuroDeployError(f"{where}={','.join(values)}: expected integers") from None
    if len(ints) != n or any(i < 0 for i in ints):
        raise NeuroDeployError(f"{where}={','.join(values)}: expected {n} non-negative integer{'s' * (n > 1)}")
    return ints


def resolve_config(arch: str, value: str | None) -> dict[str, Any]:
    """A spec (`key=value,...`), a checkpoint (its configuration), or the release (None)."""
    if value is None:
        return dict(RELEASE[arch])
    if "=" in value:
        return parse_spec(arch, value)
    if not Path(value).is_file():
        raise NeuroDeployError(f"--{arch} {value!r}: neither a specification (dim=..,en=..,de=..) nor a checkpoint file")
    return dict(zoo.read_checkpoint(value, arch).config)


# ---- counting ------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _taps(n_in: int, n_out: int, k: int, stride: int, padding: int, dilation: int) -> int:
    """Kernel taps along one axis that land inside the input, over all outputs."""
    return int(axis_patterns(n_in, n_out, k, stride, padding, dilation, 1).sum())


def conv2d_macs(m: nn.Conv2d, in_hw: tuple[int, int], out_hw: tuple[int, int], counting: str) -> int:
    """MACs of one step of a conv: every tap (textbook, k^2 H W per channel pair) or only the taps
    that land inside the image (exact at the padded borders)."""
    (kh, kw), per_channel = m.kernel_size, m.out_channels * (m.in_channels // m.groups)
    if counting == "textbook":
        return per_channel * kh * kw * out_hw[0] * out_hw[1]
    if not isinstance(m.padding, tuple) or m.padding_mode != "zeros":
        raise NeuroDeployError(f"conv {m} has padding {m.padding!r} ({m.padding_mode}); only explicit zero padding is counted")
    return per_channel * (_taps(in_hw[0], out_hw[0], kh, m.stride[0], m.padding[0], m.dilation[0])
                          * _taps(in_hw[1], out_hw[1], kw, m.stride[1], m.padding[1], m.dilation[1]))


def _same_conv(cout: int, cin: int, hw: tuple[int, int], k: int, counting: str) -> int:
    return conv2d_macs(nn.Conv2d(cin, cout, k, padding=k // 2, device="meta"), hw, hw, counting)


def _border(cout: int, cin: int, hw: tuple[int, int], k: int, counting: str) -> int:
    """What textbook counting adds to a same-padded conv the gate formulas count border-exact."""
    return _same_conv(cout, cin, hw, k, counting) - _same_conv(cout, cin, hw, k, "exact")


class _Recorder:
    """Forward hooks of the meta forward: ops, the kinds of conv inputs, and thop's view."""

    GATES = (layers.MDA, layers.TimeAttention, FeatureRefinement)

    def __init__(self, model: nn.Module, counting: str) -> None:
        self.counting, self.T = counting, int(model.T)
        self.ops: list[Op] = []
        self.sources: dict[int, tuple[str, torch.Tensor]] = {}  # id of a neuron output -> (kind, the tensor)
        self.gate_names = [n for n, m in model.named_modules() if isinstance(m, self.GATES)]
        self.adjust = {id(m.channel_adjust) for m in model.modules() if isinstance(m, neurons.VLIF)}
        self.inputs: dict[str, tuple[int, ...]] = {}  # module -> shape of its first input
        self.thop_macs: dict[str, int] = {}  # exact-type modules run as modules -> thop's MACs

    def kind(self, x: torch.Tensor) -> str:
        for t in (x, x._base):
            if t is not None and id(t) in self.sources:
                return self.sources[id(t)][0]
        return "real"

    def inside_gate(self, name: str) -> bool:
        return any(name.startswith(g + ".") for g in self.gate_names)

    def hook(self, name: str, module: nn.Module) -> Callable[..., None]:
        def record(_m: nn.Module, inputs: tuple, out: Any) -> None:
            x = inputs[0] if inputs else None
            if isinstance(x, torch.Tensor):
                self.inputs.setdefault(name, tuple(x.shape))
            if type(module) in THOP_RULES and isinstance(out, torch.Tensor):
                self.thop_macs[name] = self.thop_macs.get(name, 0) + _thop_ops(module, tuple(x.shape), tuple(out.shape))
            if isinstance(module, (neurons.LIF, neurons.NILIF)):
                self.sources[id(out)] = ("binary" if isinstance(module, neurons.LIF) else "graded", out)
            elif self.inside_gate(name):
                return  # counted by the gate's own formula
            elif isinstance(module, nn.Conv3d):
                self.temporal(name, module, x, out)
            elif isinstance(module, nn.Conv2d):
                self.conv(name, module, x, out)
            elif isinstance(module, self.GATES) or isinstance(module, vlifnet.SDEMBlock) and module.enhance_product:
                self.gate(name, module, x)
        return record

    def conv(self, name: str, m: nn.Conv2d, x: torch.Tensor, out: torch.Tensor) -> None:
        steps = x.shape[0] if x.dim() == 5 else 1
        per_step = conv2d_macs(m, tuple(x.shape[-2:]), tuple(out.shape[-2:]), self.counting)
        kind = self.kind(x)
        if name == FIRST:
            category, part = "first", "conv"
        elif id(m) in self.adjust:
            category, part = "channel_adjust", "channel_adjust"
        elif x.dim() == 4:
            category, part = "tail", "conv"
        else:
            category, part = ("body_binary" if kind == "binary" else "body_real"), "conv"
        self.ops.append(Op(name, category, part, kind, per_step * steps, steps))

    def temporal(self, name: str, m: nn.Conv3d, x: torch.Tensor, out: torch.Tensor) -> None:
        """The SMU's temporal compress: non-overlapping `(r^2, 1, 1)` kernels over the sub-steps."""
        if m.kernel_size[1:] != (1, 1) or m.stride[0] != m.kernel_size[0]:
            raise NeuroDeployError(f"{name}: only non-overlapping temporal Conv3d kernels are counted")
        _, cin, _, h, w = x.shape
        kind = self.kind(x)
        macs = m.out_channels * cin * m.kernel_size[0] * out.shape[2] * h * w
        self.ops.append(Op(name, "body_binary" if kind == "binary" else "body_real", "temporal", kind, macs,
                           out.shape[2]))

    def gate(self, name: str, m: nn.Module, x: torch.Tensor) -> None:
        c = self.counting
        if isinstance(m, layers.MDA):
            steps, _, ch, h, w = x.shape
            k = m.sa.conv.kernel_size[0]
            macs = (mda_macs(steps, ch, h, w, m.ta.sharedMLP[0].out_channels, m.ca.sharedMLP[0].out_channels, k)
                    + _border(1, 2, (h, w), k, c))
            self.ops.append(Op(name, "gates", "gate", "real", macs, steps))
        elif isinstance(m, layers.TimeAttention):  # the SMU's gate over [B, T r^2, C, h, w]
            _, sub, ch, h, w = x.shape
            self.ops.append(Op(name, "gates", "gate", "real",
                               time_gate_macs(sub, m.sharedMLP[0].out_channels, ch, h, w), self.T))
        elif isinstance(m, FeatureRefinement):
            _, ch, h, w = x.shape
            ca, sa = m.convs()
            macs = refinement_macs(ch, h, w, [tuple(wt.shape) for wt, _ in ca], [tuple(wt.shape) for wt, _ in sa])
            macs += sum(_border(wt.shape[0], wt.shape[1], (h, w), wt.shape[-1], c) for wt, _ in sa)
            self.ops.append(Op(name, "tail", "refinement", "real", macs, 1))
        else:  # an SDEM block's x*s1 and y*s2
            self.ops.append(Op(f"{name}.products", "gates", "products", "real", 2 * x.numel() // x.shape[1], x.shape[0]))


def analyze(arch: str, config: dict[str, Any], size: int = 256, T: int | None = None,
            counting: str = "exact") -> NetworkCounts:
    """Per-layer dense MACs of one `size x size` image through the zoo network, from its structure."""
    if counting not in COUNTING:
        raise NeuroDeployError(f"counting {counting!r}: expected one of {', '.join(COUNTING)}")
    if size <= 0 or size % 8:
        raise NeuroDeployError(f"image size {size}: must be a positive multiple of 8 (three levels of 2x2 pixel groups)")
    config = {**config, **({"T": T} if T is not None else {})}
    if int(config.get("T", 4)) < 1:
        raise NeuroDeployError(f"T={config['T']}: must be at least 1")
    with torch.device("meta"):
        model = zoo.build(arch, **config)
    recorder = _Recorder(model, counting)
    handles = [m.register_forward_hook(recorder.hook(name, m)) for name, m in model.named_modules()]
    try:
        with torch.no_grad():
            model.eval()(torch.empty(1, 3, size, size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return NetworkCounts(arch, config, size, recorder.T, counting, recorder.ops,
                         sum(p.numel() for p in model.parameters()), _thop_view(model, recorder))


# ---- thop's view -----------------------------------------------------------------------------------

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
AVG_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
ZERO_OPS = (nn.ReLU, nn.ReLU6, nn.Dropout, nn.Sequential, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
            nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
#: the module types thop has a counting rule for (matched by exact type, as thop does), of those a zoo could hold
THOP_RULES = (*CONVS, *NORMS, *AVG_POOLS, nn.Linear, *ZERO_OPS)


def _thop_ops(m: nn.Module, x: tuple[int, ...], out: tuple[int, ...]) -> int:
    """thop's count for one call: a conv is `output elements x Cin/groups x kernel` (bias not counted),
    a linear `output elements x in_features`, BN `2 x input elements` (x2 when affine), an adaptive
    average pool `(pooled elements + 1) x output elements`; ReLU, max pools and containers zero."""
    if isinstance(m, CONVS):
        return math.prod(out) * (m.in_channels // m.groups) * math.prod(m.kernel_size)
    if isinstance(m, nn.Linear):
        return math.prod(out) * m.in_features
    if isinstance(m, NORMS):
        return 2 * math.prod(x) * (2 if m.affine else 1)
    if isinstance(m, AVG_POOLS):
        return (math.prod(x[2:]) // math.prod(out[2:]) + 1) * math.prod(out)
    return 0


def _release_call(container: nn.Module, sub: str, m: nn.Module, x: tuple[int, ...]) -> int:
    """thop's count for a module the zoo calls through a shared function (so that its graph executor
    computes the same thing) and the release calls as a module: the shapes the release gives it."""
    if not isinstance(m, (*CONVS, *AVG_POOLS)):
        return 0  # the zoo's gates hold no linear or BN layer; thop counts the rest as zero
    if isinstance(container, layers.TimeAttention) or isinstance(container, layers.MDA) and sub[:3] in ("ta.", "ca."):
        return 2 * _thop_ops(m, (1, m.in_channels, 1, 1, 1), (1, m.out_channels, 1, 1, 1))  # avg and max summaries
    hw = x[-2:]
    if isinstance(container, FeatureRefinement) and sub.startswith("ca."):
        pooled = (1, 1) if not isinstance(m, AVG_POOLS) else hw
        return _thop_ops(m, (1, getattr(m, "in_channels", x[1]), *pooled), (1, getattr(m, "out_channels", x[1]), 1, 1))
    return _thop_ops(m, (1, getattr(m, "in_channels", 0), *hw), (1, getattr(m, "out_channels", 0), *hw))


def _thop_view(model: nn.Module, recorder: _Recorder) -> Thop:
    params = macs = 0
    missed: dict[str, int] = {}
    containers = {n: m for n, m in model.named_modules() if isinstance(m, recorder.GATES)}
    for name, m in model.named_modules():
        own = sum(p.numel() for p in m.parameters(recurse=False))
        if type(m) not in THOP_RULES:
            if own:
                missed[type(m).__name__] = missed.get(type(m).__name__, 0) + own
            continue
        params += own
        if name in recorder.thop_macs:
            macs += recorder.thop_macs[name]
        else:
            owner = max((n for n in containers if name.startswith(n + ".") and n in recorder.inputs), key=len,
                        default=None)
            if owner is not None:
                macs += _release_call(containers[owner], name[len(owner) + 1:], m, recorder.inputs[owner])
    return Thop(params, macs, missed)


# ---- firing rates -----------------------------------------------------------------------------------

Rate = float | dict[str, float]  # one global rate, or per layer (the rate of the layer's input events)


def _rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise NeuroDeployError(f"{where}: firing rate {value!r} is not a number in [0, 1]")
    return float(value)


def _layer_rates(value: Any, where: str) -> Rate:
    if isinstance(value, dict):
        return {str(k): _rate(v, f"{where}, layer {k!r}") for k, v in value.items()}
    return _rate(value, where)


def _read_json(path: str) -> Any:
    try:
        return read_json(path)
    except FileNotFoundError:
        raise NeuroDeployError(f"--firing-rate: rates file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NeuroDeployError(f"--firing-rate: {path} is not valid JSON ({exc})") from None


def parse_rates(spec: str) -> dict[str, Rate]:
    """`--firing-rate`: `0.1642` (both networks), `vlifnet=0.16,esdnet=0.2` (a rate or a per-layer JSON
    file per network), or a JSON file `{"vlifnet": rate or {layer: rate}, "esdnet": ...}`."""
    spec = spec.strip()
    if "=" in spec:
        rates: dict[str, Rate] = {}
        for item in spec.split(","):
            arch, _, value = (s.strip() for s in item.partition("="))
            if arch not in ARCHS or not value:
                raise NeuroDeployError(f"--firing-rate {spec!r}: expected vlifnet=R,esdnet=R, got {item!r}")
            if arch in rates:
                raise NeuroDeployError(f"--firing-rate {spec!r}: {arch} given twice")
            rates[arch] = _scalar_or_file(value, f"--firing-rate {arch}", arch)
        missing = [a for a in ARCHS if a not in rates]
        if missing:
            raise NeuroDeployError(f"--firing-rate {spec!r}: no rate for {', '.join(missing)}")
        return rates
    if spec.endswith(".json") or Path(spec).is_file():
        data = _read_json(spec)
        if isinstance(data, dict) and _is_measured(data):
            raise NeuroDeployError(f"--firing-rate {spec}: it holds one network's measured rates "
                                   f"({data.get('arch')}): give it as {data.get('arch')}={spec},<other>=R")
        if not isinstance(data, dict) or set(data) != set(ARCHS):
            raise NeuroDeployError(f"--firing-rate {spec}: expected a JSON object with exactly the keys "
                                   f"{', '.join(ARCHS)} (a rate or {{layer: rate}} each)")
        return {arch: _layer_rates(data[arch], f"{spec}: {arch}") for arch in ARCHS}
    rate = _scalar_or_file(spec, "--firing-rate", None)
    return {arch: rate for arch in ARCHS}


def _scalar_or_file(value: str, where: str, arch: str | None) -> Rate:
    """A rate, a rates JSON file, or the name of a bundled rate profile (`resources.rates_names()`)."""
    try:
        return _rate(float(value), f"{where} {value!r}")
    except ValueError:
        pass
    bundled = resources.bundled_rates(value)
    if bundled is not None and not Path(value).exists():
        value = str(bundled)
    if not (value.endswith(".json") or Path(value).is_file()):
        raise NeuroDeployError(f"{where} {value!r}: not a number, a rates JSON file nor a bundled rate profile "
                               f"({', '.join(resources.rates_names())})")
    data = _read_json(value)
    if not isinstance(data, dict):
        raise NeuroDeployError(f"{where} {value}: expected a JSON object {{layer: rate}}")
    if _is_measured(data) and arch is not None:
        return _measured(data, value, where, arch)
    return _layer_rates(data, f"{where} {value}")


class MeasuredTable(dict):
    """A per-layer rate table read from a `neuro-deploy rates` file, with where it came from (`source`:
    the file's fields but the rates: arch, config, checkpoint, weights, images, size, ...)."""

    def __init__(self, rates: dict[str, float], source: dict[str, Any], path: str) -> None:
        super().__init__(rates)
        self.source, self.path = source, path

    @property
    def random_weights(self) -> bool:
        return bool(self.source.get("random_weights"))

    @property
    def below_input(self) -> bool:
        """The measured network scores below its own rainy input (held-out PSNR): it has not learned
        the task, and its rates say little of a network that has."""
        held = self.source.get("held_out") or {}
        return isinstance(held, dict) and all(isinstance(held.get(k), (int, float)) for k in ("psnr", "psnr_input")) \
            and held["psnr"] < held["psnr_input"]

    @property
    def config(self) -> dict[str, Any]:
        """The measured network's constructor arguments, with the T it ran at."""
        return {**self.source["config"], **({"T": self.source["T"]} if "T" in self.source else {})}


def _is_measured(data: dict[str, Any]) -> bool:
    """A `neuro-deploy rates` file (a plain table's values are numbers, never a table)."""
    return isinstance(data.get("rates"), dict)


def _measured(data: dict[str, Any], path: str, where: str, arch: str) -> MeasuredTable:
    if data.get("arch") != arch:
        raise NeuroDeployError(f"{where} {path}: it holds rates measured on {data.get('arch')!r}, not {arch}")
    if not isinstance(data.get("config"), dict):
        raise NeuroDeployError(f"{where} {path}: measured rates without the network's configuration")
    rates = {str(k): _rate(v, f"{where} {path}, layer {k!r}") for k, v in data["rates"].items()}
    return MeasuredTable(rates, {k: v for k, v in data.items() if k != "rates"}, path)


def check_rates(net: NetworkCounts, rate: Rate) -> None:
    """A per-layer rate table must name exactly the layers a rate applies to."""
    if not isinstance(rate, dict):
        return
    expected = net.rated_layers()
    missing = [n for n in expected if n not in rate]
    unknown = sorted(set(rate) - set(expected))
    if missing or unknown:
        what = "; ".join(filter(None, [
            f"no rate for {len(missing)} of its {len(expected)} rated layers (first: {missing[0]})" if missing else "",
            f"{len(unknown)} names it does not have (first: {unknown[0]})" if unknown else ""]))
        raise NeuroDeployError(f"firing rates for {net.arch} (dim {net.config.get('dim')}) do not match its layers: {what}")


# ---- the global-rate method --------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """Every assumption of the global-rate method (module docstring)."""
    first_layer: str = "per-step"
    real_inputs: str = "ac"
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name, value, allowed in (("first layer", self.first_layer, FIRST_LAYER),
                                     ("real inputs", self.real_inputs, REAL_INPUTS)):
            if value not in allowed:
                raise NeuroDeployError(f"{name} {value!r}: expected one of {', '.join(allowed)}")
        unknown = set(self.exclude) - set(SWITCHES)
        if unknown:
            raise NeuroDeployError(f"cannot exclude {', '.join(sorted(unknown))} (known: {', '.join(SWITCHES)})")

    def to_json(self) -> dict[str, Any]:
        return {"first_layer": self.first_layer, "real_inputs": self.real_inputs, "exclude": sorted(self.exclude)}


def charge(op: Op, rate: float, settings: Settings) -> tuple[float, float]:
    """(ACs, MACs) the method charges for one op at the rate of its input."""
    if op.switch() in settings.exclude:
        return 0.0, 0.0
    if op.category == "first":
        return 0.0, float(op.macs if settings.first_layer == "per-step" else op.macs // op.steps)
    if op.category == "body_binary" or op.category in RATED and settings.real_inputs == "ac":
        return rate * op.macs, 0.0
    return 0.0, float(op.macs)  # real-valued body input as MAC (dense), gates, the ANN tail


@dataclass
class Priced:
    net: NetworkCounts
    rate: Rate
    e_ac: float
    e_mac: float
    rows: list[tuple[Op, float, float, float]] = field(default_factory=list)  # op, rate, ACs, MACs

    @property
    def ac(self) -> float:
        return sum(r[2] for r in self.rows)

    @property
    def mac(self) -> float:
        return sum(r[3] for r in self.rows)

    @property
    def energy_pj(self) -> float:
        return self.e_ac * self.ac + self.e_mac * self.mac

    @property
    def ann_pj(self) -> float:
        """The same architecture as an ANN: every op a dense MAC, once instead of T times."""
        return self.e_mac * sum(op.macs // op.steps for op in self.net.ops)

    @property
    def measured(self) -> MeasuredTable | None:
        return self.rate if isinstance(self.rate, MeasuredTable) else None

    @property
    def random_weights(self) -> bool:
        """The rates were measured on random (untrained) weights: the energy says little of a trained network."""
        return self.measured is not None and self.measured.random_weights

    @property
    def dead(self) -> list[str]:
        """Rated layers at a per-layer rate of 0."""
        return [name for name, r in self.rate.items() if r == 0] if isinstance(self.rate, dict) else []

    def breakdown(self, key: Callable[[Op], str]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for op, _, ac, mac in self.rows:
            d = out.setdefault(key(op), {"dense_macs": 0, "ac": 0.0, "mac": 0.0, "energy_pj": 0.0})
            d["dense_macs"] += op.macs
            d["ac"] += ac
            d["mac"] += mac
            d["energy_pj"] += self.e_ac * ac + self.e_mac * mac
        return out

    def to_json(self) -> dict[str, Any]:
        return {**self.net.to_json(), "rate": self.rate, "ac": self.ac, "mac": self.mac, "energy_pj": self.energy_pj,
                "ann_energy_pj": self.ann_pj, "random_weights": self.random_weights,
                "below_input": self.measured is not None and self.measured.below_input, "dead": self.dead,
                "rates_from": {**self.measured.source, "file": self.measured.path} if self.measured else None,
                "categories": self.breakdown(lambda op: op.category), "stages": self.breakdown(lambda op: op.stage),
                "layers": [{"name": op.name, "stage": op.stage, "category": op.category, "part": op.part,
                            "input": op.input, "steps": op.steps, "dense_macs": op.macs, "rate": r, "ac": ac, "mac": mac}
                           for op, r, ac, mac in self.rows]}


def price(net: NetworkCounts, rate: Rate, settings: Settings, profile: Profile) -> Priced:
    for term in ("ac", "mac"):
        if term not in profile.terms:
            raise NeuroDeployError(f"profile {profile.name} has no {term!r} term: the global-rate method needs AC and MAC")
    check_rates(net, rate)
    priced = Priced(net, rate, profile.terms["ac"].pj, profile.terms["mac"].pj)
    for op in net.ops:
        r = (rate.get(op.name, 0.0) if isinstance(rate, dict) else rate) if op.category in RATED else 1.0
        priced.rows.append((op, r, *charge(op, r, settings)))
    return priced


@dataclass
class Analysis:
    settings: Settings
    profile: str
    networks: dict[str, Priced]
    preset: str | None = None

    @property
    def ratio(self) -> float:
        e = self.networks["esdnet"].energy_pj
        return self.networks["vlifnet"].energy_pj / e if e else math.inf

    @property
    def random_weights(self) -> list[str]:
        """The networks priced at rates measured on random weights (the ratio is then not the paper's kind)."""
        return [arch for arch, p in self.networks.items() if p.random_weights]

    def to_json(self) -> dict[str, Any]:
        return {"method": "global-rate", "preset": self.preset, "profile": self.profile,
                "settings": self.settings.to_json(), "ratio": self.ratio, "paper_ratio": PAPER_RATIO,
                "random_weights": bool(self.random_weights),
                "networks": {arch: p.to_json() for arch, p in self.networks.items()}}


def run(configs: dict[str, dict[str, Any]], rates: dict[str, Rate], settings: Settings, profile: Profile,
        size: int = 256, T: int | None = None, counting: str = "exact", preset: str | None = None) -> Analysis:
    """Both networks counted and priced under one set of assumptions."""
    nets = {arch: analyze(arch, configs[arch], size, T, counting) for arch in ARCHS}
    return Analysis(settings, profile.name, {a: price(nets[a], rates[a], settings, profile) for a in ARCHS}, preset)


# ---- scenarios and the solver -------------------------------------------------------------------------

def scenarios() -> Iterable[Settings]:
    """Every combination of the method's switches."""
    for first, real, *kept in itertools.product(FIRST_LAYER, REAL_INPUTS, *[(True, False)] * len(SWITCHES)):
        yield Settings(first, real, frozenset(s for s, keep in zip(SWITCHES, kept) if not keep))


def solve(analysis: Analysis, parameter: str, target: float) -> float | None:
    """The value of `parameter` (a global rate: ESDNet's, VLIFNet's, or one for both) at which the
    VLIFNet/ESDNet energy ratio is `target`; None when the ratio does not depend on it. Energy is
    affine in a network's global rate, so the solution is exact (it may fall outside [0, 1])."""
    if parameter not in SOLVE:
        raise NeuroDeployError(f"cannot solve for {parameter!r} (known: {', '.join(SOLVE)})")
    if not (target > 0 and math.isfinite(target)):
        raise NeuroDeployError(f"target ratio {target}: must be positive and finite (--target-ratio)")
    lines = {}
    for arch, p in analysis.networks.items():  # energy = a + b * rate
        profile = _profile_of(p)
        at = [price(p.net, r, analysis.settings, profile).energy_pj for r in (0.0, 1.0)]
        lines[arch] = (at[0], at[1] - at[0])
    (av, bv), (ae, be) = lines["vlifnet"], lines["esdnet"]
    ev, ee = analysis.networks["vlifnet"].energy_pj, analysis.networks["esdnet"].energy_pj
    if parameter == "esdnet-rate":  # ev = target * (ae + be r)
        return (ev / target - ae) / be if be else None
    if parameter == "vlifnet-rate":  # av + bv r = target * ee
        return (target * ee - av) / bv if bv else None
    denom = bv - target * be  # av + bv r = target (ae + be r)
    return (target * ae - av) / denom if denom else None


def _profile_of(p: Priced) -> Profile:
    """A two-term profile with the energies `p` was priced at (for re-pricing at other rates)."""
    terms = {t: Term(pj, "re-pricing", "derived", "per-term") for t, pj in (("ac", p.e_ac), ("mac", p.e_mac))}
    return Profile("re-pricing", "", terms, "")


def with_rate(analysis: Analysis, parameter: str, value: float) -> Analysis:
    """The same analysis with `parameter` set to `value` (to check a solution)."""
    rates = {arch: p.rate for arch, p in analysis.networks.items()}
    for arch in ({"esdnet-rate": ["esdnet"], "vlifnet-rate": ["vlifnet"]}.get(parameter, list(ARCHS))):
        rates[arch] = value
    return Analysis(analysis.settings, analysis.profile,
                    {a: price(p.net, rates[a], analysis.settings, _profile_of(p)) for a, p in analysis.networks.items()},
                    analysis.preset)


@dataclass
class Sweep:
    base: Analysis
    parameter: str
    target: float
    rows: list[tuple[Analysis, float | None]]

    def to_json(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "target_ratio": self.target,
                "scenarios": [{**a.settings.to_json(), "vlifnet_pj": a.networks["vlifnet"].energy_pj,
                               "esdnet_pj": a.networks["esdnet"].energy_pj, "ratio": a.ratio, "solved": s,
                               "solved_in_range": s is not None and 0 <= s <= 1} for a, s in self.rows]}


def sweep(base: Analysis, parameter: str = "esdnet-rate", target: float = PAPER_RATIO) -> Sweep:
    """Every scenario of the switches at the base's rates and counts, each with its solved value."""
    rows = [(a, solve(a, parameter, target)) for a in (rescaled(base, s) for s in scenarios())]
    return Sweep(base, parameter, target, rows)


def rescaled(analysis: Analysis, settings: Settings) -> Analysis:
    """The same networks and rates under other settings."""
    return replace(analysis, settings=settings,
                   networks={a: price(p.net, p.rate, settings, _profile_of(p)) for a, p in analysis.networks.items()})


# ---- the command line's view ----------------------------------------------------------------------

def configure(profile: Profile, preset: str | None = None, vlifnet: str | None = None, esdnet: str | None = None,
              size: int | None = None, T: int | None = None, firing_rate: str | None = None,
              first_layer: str = "per-step", real_inputs: str = "ac", exclude: Iterable[str] = (),
              counting: str = "exact") -> Analysis:
    """`compare --analytic`: a preset's values where an option is not given, else the release
    configurations at 256x256 with the paper's global rate."""
    if preset is not None and preset not in PRESETS:
        raise NeuroDeployError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    base = PRESETS.get(preset or "", {})
    given = {"vlifnet": vlifnet, "esdnet": esdnet}
    spec = firing_rate if firing_rate is not None else base.get("rate", PAPER_RATE)  # a preset's: a number or a spec
    rates = parse_rates(spec) if isinstance(spec, str) else dict.fromkeys(ARCHS, spec)
    T = T if T is not None else base.get("T")
    configs = {}
    for arch in ARCHS:
        measured = rates[arch] if isinstance(rates[arch], MeasuredTable) else None
        preset_config = base.get("configs", {}).get(arch)
        if given[arch] is not None:
            configs[arch] = resolve_config(arch, given[arch])
        elif preset_config is not None:
            configs[arch] = dict(preset_config)
        elif measured is not None:
            configs[arch] = measured.config  # the network the rates were measured on
        else:
            configs[arch] = resolve_config(arch, None)
        if measured is not None:
            _check_measured_config(arch, configs[arch], T, measured)
    return run(configs, rates, Settings(first_layer, real_inputs, frozenset(exclude)), profile,
               size if size is not None else base.get("size", 256), T, counting, preset)


def _full_config(arch: str, config: dict[str, Any]) -> dict[str, Any]:
    """Every constructor argument, defaults filled in, sequences as lists (so configurations compare)."""
    params = inspect.signature(zoo.ARCHITECTURES[arch].__init__).parameters.values()
    full = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    full.update(config)
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in full.items()}


def _check_measured_config(arch: str, config: dict[str, Any], T: int | None, measured: MeasuredTable) -> None:
    """Measured rates apply to the network they were measured on: refuse another configuration or T."""
    analysed = _full_config(arch, {**config, **({"T": T} if T is not None else {})})
    source = _full_config(arch, measured.config)
    differ = [k for k in {**analysed, **source} if analysed.get(k) != source.get(k)]  # in the constructor's order
    if differ:
        def show(c: dict[str, Any]) -> str:
            return ", ".join(f"{k}={c.get(k)}" for k in differ)
        raise NeuroDeployError(f"--firing-rate {arch}={measured.path}: rates measured on {arch} ({show(source)}) but "
                               f"the analytic {arch} is ({show(analysed)}); leave --{arch} (and --timesteps, --preset) "
                               "out to analyse the measured network")


def _config_text(net: NetworkCounts) -> str:
    c = net.config
    text = f"dim {c['dim']} en {list(c['en_num_blocks'])} de {list(c['de_num_blocks'])}"
    for key, label in (("use_refinement", "refinement"), ("attention", "attention"), ("enhance_product", "products")):
        if key in c and c[key] != (key != "use_refinement"):
            text += f", {label} {'on' if c[key] else 'off'}"
    return text


def _rate_text(rate: Rate) -> str:
    if isinstance(rate, MeasuredTable):
        random = ", RANDOM WEIGHTS" if rate.random_weights else ""
        return f"measured per layer ({len(rate)} layers, global {rate.source.get('global_rate', math.nan):.4f}{random})"
    if isinstance(rate, dict):
        values = list(rate.values())
        return f"per layer ({len(values)} layers, mean {sum(values) / max(len(values), 1):.4f})"
    return f"{rate:g}"


def _charged(category: str, settings: Settings) -> str:
    if category in ("channel_adjust", "gates") and category in settings.exclude:
        return "excluded"
    if category == "first":
        return f"MAC, {settings.first_layer.replace('-', ' ')}"
    if category == "body_binary" or category in RATED and settings.real_inputs == "ac":
        return "AC x rate"
    if category == "tail" and "refinement" in settings.exclude:
        return "MAC (refinement excluded)"
    return "MAC, dense" if category in RATED else "MAC"


def _giga(n: float) -> str:
    return f"{n / 1e9:.3f}"


def analysis_tables(a: Analysis) -> list[Table]:
    """Energy by category side by side, then by stage."""
    v, e = a.networks["vlifnet"], a.networks["esdnet"]
    t = Table(title=f"VLIFNet vs ESDNet, analytic, global-rate method ({a.profile}: E_AC {v.e_ac:g} pJ, "
                    f"E_MAC {v.e_mac:g} pJ; {v.net.size}x{v.net.size}, T={v.net.T}, {v.net.counting} counting)",
              box=box.SIMPLE)
    flag = {arch: " (random weights)" if p.random_weights else "" for arch, p in a.networks.items()}
    for col in ("category", "charged as", "VLIFNet GMAC", f"VLIFNet energy{flag['vlifnet']}", "ESDNet GMAC",
                f"ESDNet energy{flag['esdnet']}"):
        t.add_column(col, justify="left" if col in ("category", "charged as") else "right")
    by = {arch: p.breakdown(lambda op: op.category) for arch, p in a.networks.items()}
    empty = {"dense_macs": 0, "energy_pj": 0.0}
    for category, label in CATEGORIES.items():
        cells = [(by[arch].get(category, empty)) for arch in ARCHS]
        t.add_row(label, _charged(category, a.settings),
                  *[x for c in cells for x in (_giga(c["dense_macs"]), format_energy(c["energy_pj"]))])
    t.add_row("total", "", _giga(v.net.macs()), format_energy(v.energy_pj), _giga(e.net.macs()), format_energy(e.energy_pj))
    s = Table(title="By stage", box=box.SIMPLE)
    for col in ("network", "stage", "GMAC", "energy", "share"):
        s.add_column(col, justify="left" if col in ("network", "stage") else "right")
    for arch, p in a.networks.items():
        for stage, d in p.breakdown(lambda op: op.stage).items():
            s.add_row(arch, stage, _giga(d["dense_macs"]), format_energy(d["energy_pj"]),
                      f"{d['energy_pj'] / p.energy_pj:.1%}" if p.energy_pj else "-")
    return [t, s]


def differences_from_paper(a: Analysis) -> list[str]:
    """How an analysis departs from the paper's formula and its original call (`PRESETS["paper"]`);
    empty when its ratio is the paper's kind of figure, the only one set beside the paper's 13%."""
    call, out = PRESETS["paper"], []
    if a.random_weights:
        out.append(f"rates of RANDOM (untrained) weights ({', '.join(a.random_weights)})")
    for arch, p in a.networks.items():
        if _full_config(arch, p.net.config) != _full_config(arch, call["configs"][arch]):
            out.append(f"{arch} {_config_text(p.net)}, not the call's")
        if p.rate != call["rate"]:
            out.append(f"{arch} rate {_rate_text(p.rate)}, not {call['rate']}")
    net = a.networks["vlifnet"].net
    if (net.size, net.T) != (call["size"], call["T"]):
        out.append(f"{net.size}x{net.size}, T={net.T}, not {call['size']}x{call['size']}, T={call['T']}")
    if net.counting != PAPER_FORMULA["counting"]:
        out.append(f"{net.counting} counting")
    settings = a.settings
    if settings.first_layer != PAPER_FORMULA["first_layer"]:
        out.append(f"first layer {settings.first_layer}")
    if settings.real_inputs != PAPER_FORMULA["real_inputs"]:
        out.append(f"real-valued inputs as {settings.real_inputs.upper()}")
    if "gates" not in settings.exclude:
        out.append("gate MACs charged")
    out.extend(f"{switch} excluded" for switch in sorted(settings.exclude - PAPER_FORMULA["exclude"]))
    return out


def paper_claim(a: Analysis) -> str:
    """The label beside the ratio: the paper's 13% only beside a figure of its own formula and call
    (ESDNet's configuration and rate, which the paper does not state, assumed as in the call);
    every other ratio says what it is."""
    differences = differences_from_paper(a)
    if not differences:
        return (f"(paper: {PAPER_RATIO:.0%}; its formula and call, with ESDNet's configuration and rate, "
                "which the paper does not state, assumed)")
    return f"(not comparable with the paper's {PAPER_RATIO:.0%}: {'; '.join(differences)})"


def analysis_lines(a: Analysis, parameter: str = "esdnet-rate", target: float = PAPER_RATIO) -> list[str]:
    """Configurations, parameters beside thop's, the ratio and what it would take to reach the target."""
    lines = []
    for arch, p in a.networks.items():
        n = p.net
        missed = ", ".join(f"{k} {v / 1e6:.3g} M" for k, v in sorted(n.thop.missed_params.items(), key=lambda kv: -kv[1]))
        lines.append(f"{arch} ({_config_text(n)}): {n.params / 1e6:.2f} M parameters, {n.macs() / 1e9:.2f} GMAC dense; "
                     f"thop would print {n.thop.params / 1e6:.3f} M parameters and {n.thop.macs / 1e9:.3f} GMAC "
                     f"(it misses {missed}); firing rate {_rate_text(p.rate)}; SNN/ANN {p.energy_pj / p.ann_pj:.1%}")
        lines.extend(_measured_lines(arch, p))
    solved = solve(a, parameter, target)
    lines.append(f"VLIFNet/ESDNet = {a.ratio:.1%} {paper_claim(a)}" + (f"; preset {a.preset}" if a.preset else ""))
    lines.append(f"{parameter} giving {target:.1%}: " + ("none (the ratio does not depend on it)" if solved is None else
                 f"{solved:.4f}" + ("" if 0 <= solved <= 1 else " (outside [0, 1]: unreachable)")))
    lines.append(f"settings: first layer {a.settings.first_layer}, real-valued inputs as {a.settings.real_inputs.upper()}, "
                 f"excluded: {', '.join(sorted(a.settings.exclude)) or 'none'}; `--sweep` shows every combination")
    return lines


def _measured_lines(arch: str, p: Priced) -> list[str]:
    """Where measured rates came from, and what in them needs a warning."""
    lines = []
    m = p.measured
    if m is not None:
        src = m.source
        at = f"{src.get('size')}x{src.get('size')}"
        applied = "" if src.get("size") == p.net.size else f", applied at {p.net.size}x{p.net.size}"
        lines.append(f"{arch} rates measured from {src.get('checkpoint')} ({src.get('weights')}) over "
                     f"{src.get('images')} images at {at}, T={src.get('T')}{applied} ({m.path})")
        if m.random_weights:
            lines.append(f"warning: {arch}'s rates were measured on random (untrained) weights")
        if m.below_input:
            held = src["held_out"]
            lines.append(f"warning: {arch}'s rates come from a network that scores below its own input (held-out "
                         f"PSNR {held['psnr']:.2f} dB against the rainy input's {held['psnr_input']:.2f} dB): it has "
                         "not learned the task")
    if p.dead:
        lines.append(f"warning: {arch}: {len(p.dead)} of {len(p.rate)} rated layers are dead (rate 0): "
                     f"{', '.join(p.dead)}")
    return lines


def sweep_table(s: Sweep) -> Table:
    t = Table(title=f"Scenarios (rates: vlifnet {_rate_text(s.base.networks['vlifnet'].rate)}, esdnet "
                    f"{_rate_text(s.base.networks['esdnet'].rate)}); {s.parameter} solved for a ratio of {s.target:.1%}",
              box=box.SIMPLE)
    for col in ("first layer", "real inputs", "channel_adjust", "gates", "refinement", "VLIFNet", "ESDNet", "ratio",
                s.parameter):
        t.add_column(col, justify="left" if col in ("first layer", "real inputs") else "right")
    for a, solved in s.rows:
        value = "-" if solved is None else f"{solved:.4f}" + ("" if 0 <= solved <= 1 else "*")
        t.add_row(a.settings.first_layer, a.settings.real_inputs.upper(),
                  *["out" if sw in a.settings.exclude else "in" for sw in SWITCHES],
                  format_energy(a.networks["vlifnet"].energy_pj), format_energy(a.networks["esdnet"].energy_pj),
                  f"{a.ratio:.1%}", value)
    return t


def solution(a: Analysis, parameter: str = "esdnet-rate", target: float = PAPER_RATIO) -> dict[str, Any]:
    """The solved value, and the ratio the analysis gives when it is fed back."""
    value = solve(a, parameter, target)
    return {"parameter": parameter, "target_ratio": target, "value": value,
            "in_range": value is not None and 0 <= value <= 1,
            "ratio_at_value": None if value is None else with_rate(a, parameter, value).ratio}


def analysis(profile: Profile, preset: str | None, vlifnet: str | None, esdnet: str | None, size: int | None,
             T: int | None, firing_rate: str | None, first_layer: str, real_inputs: str, exclude: Iterable[str],
             counting: str, with_sweep: bool, parameter: str, target: float
             ) -> tuple[dict[str, Any], list[Table], list[str]]:
    """`compare --analytic`: its JSON, tables and summary lines (the rate solved for `target`, and with
    `with_sweep` every combination of the switches)."""
    a = configure(profile, preset, vlifnet, esdnet, size, T, firing_rate, first_layer, real_inputs, exclude, counting)
    scenarios = sweep(a, parameter, target) if with_sweep else None
    data = {**a.to_json(), "solve": solution(a, parameter, target),
            **({"sweep": scenarios.to_json()} if scenarios else {})}
    tables = [*analysis_tables(a), *([sweep_table(scenarios)] if scenarios else [])]
    return data, tables, analysis_lines(a, parameter, target)
