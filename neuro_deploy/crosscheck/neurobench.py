"""Cross-check of the `strict` convention against NeuroBench's own `SynapticOperations` metric.

`hooks.count_float(...).convention("strict")` is meant to be NeuroBench's effective ACs/MACs. This
module runs NeuroBench itself (its `Benchmark`, `TorchModel` wrapper and `SynapticOperations`
metric; nothing of its counting is re-implemented here) on a zoo network and one image, and sets
its figures beside ours, layer by layer and in total, so that a test can assert agreement where
both count under the same rule. NeuroBench is an optional extra (`neuro-deploy[neurobench]`),
imported only when a check runs.

What NeuroBench counts (neurobench 2.3, `metrics/workload/synaptic_operations.py`,
`metrics/utils/layers/`): every `nn.Linear`/`Conv1d`/`Conv2d`/`Conv3d` (and RNN) module found by
walking the children (not inside such a module), through a forward *pre*-hook, once per call with
the call's whole input (our multi-step convs take all T steps in one `[T, B, C, H, W]` call). A
call's input is "spiking" when every value is -1, 0 or 1; its ops are the layer re-run with
non-zero weights set to 1 and bias to 0 on the non-zero mask (so padding is exact), summed:
Effective_ACs when spiking, Effective_MACs otherwise; Dense is the same with all-ones weights
and inputs. Work done with `torch.nn.functional` on a module's weights (our attention gates,
ESDNet's refinement) and element-wise products fire no hook, so NeuroBench does not count them.
NeuroBench sums a layer's ops in float32, so a layer count above 2**24 may be off by its rounding
(docs/cross-check-neurobench.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neuro_deploy import zoo
from neuro_deploy.compile.convert import calibration_images
from neuro_deploy.counting.hooks import FloatCounts, count_float
from neuro_deploy.energy.compare import DEFAULT_IMAGE
from neuro_deploy.errors import NeuroDeployError

KEYS = ("Effective_ACs", "Effective_MACs", "Dense")
FLOAT32_EXACT = 2**24  # NeuroBench's float32 sums hold every integer below this
FLOAT32_RELATIVE = 2**-20  # above it, a float32 sum's rounding: measured up to ~1e-7 (2**-23) of the count


def _neurobench() -> Any:
    """The installed `neurobench` package, or a one-line error saying how to get it."""
    try:
        import neurobench.benchmarks
        import neurobench.metrics.abstract.workload_metric
        import neurobench.metrics.workload
        import neurobench.models
    except ImportError:
        raise NeuroDeployError(
            "the NeuroBench cross-check needs NeuroBench: pip install neuro-deploy[neurobench]") from None
    return neurobench


@dataclass
class LayerCheck:
    """One synaptic layer: our strict counts beside NeuroBench's, per image."""

    name: str
    kind: str  # the module's class
    ours: dict[str, int]  # Effective_ACs, Effective_MACs, Dense from count_float
    neurobench: dict[str, int]  # the same keys, from NeuroBench's metric on this layer alone

    @property
    def agreement(self) -> str:
        """`exact`; `float32` when the only difference is NeuroBench's float32 rounding of a count
        above 2**24 (relative difference at most 2**-20); else `differs`."""
        if self.ours == self.neurobench:
            return "exact"
        for k in KEYS:
            ours, theirs = self.ours[k], self.neurobench[k]
            if ours != theirs and (max(ours, theirs) < FLOAT32_EXACT or abs(ours - theirs) > FLOAT32_RELATIVE * ours):
                return "differs"
        return "float32"


@dataclass
class NeuroBenchCheck:
    """Ours (`strict`) against NeuroBench's `SynapticOperations` for one network and one image."""

    network: str
    image_shape: tuple[int, ...]
    layers: list[LayerCheck] = field(default_factory=list)  # convs both count
    ours_only: dict[str, int] = field(default_factory=dict)  # our gate/product MACs: no NeuroBench rule
    hooked_not_called: list[str] = field(default_factory=list)  # hooked by NeuroBench, weights used functionally
    neurobench_total: dict[str, float] = field(default_factory=dict)  # Benchmark.run's SynapticOperations
    ours_strict: dict[str, int] = field(default_factory=dict)  # count_float(...).convention("strict"), gates included
    ours_dense: int = 0  # dense MACs of every op we count, gates included

    @property
    def mismatches(self) -> list[LayerCheck]:
        return [layer for layer in self.layers if layer.agreement == "differs"]

    def layer_sum(self, side: str) -> dict[str, int]:
        """Sum over the layers both count of `side` ("ours" or "neurobench")."""
        return {k: sum(getattr(layer, side)[k] for layer in self.layers) for k in KEYS}

    def to_json(self) -> dict[str, Any]:
        return {"network": self.network, "image_shape": list(self.image_shape),
                "agree": not self.mismatches, "neurobench_total": self.neurobench_total,
                "ours_strict": self.ours_strict, "ours_dense": self.ours_dense,
                "ours_convs": self.layer_sum("ours"), "neurobench_convs": self.layer_sum("neurobench"),
                "ours_only": self.ours_only, "hooked_not_called": self.hooked_not_called,
                "layers": [{"name": layer.name, "kind": layer.kind, "ours": layer.ours,
                            "neurobench": layer.neurobench, "agreement": layer.agreement} for layer in self.layers]}


def _run_neurobench(model: nn.Module, image: torch.Tensor) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
    """NeuroBench's `Benchmark.run` with its `SynapticOperations` metric, plus the same metric on
    each hooked layer alone, both from the one forward: (total, {id(module): counts})."""
    nb = _neurobench()
    SynapticOperations = nb.metrics.workload.SynapticOperations

    class _OneLayer:
        """What `SynapticOperations` reads of a NeuroBench model: its connection hooks (here one)."""

        def __init__(self, hook: Any) -> None:
            self.connection_hooks = [hook]

    class LayerSynapticOperations(nb.metrics.abstract.workload_metric.AccumulatedMetric):
        """NeuroBench's own metric, run on every hooked layer alone."""

        def __init__(self) -> None:
            super().__init__(requires_hooks=True)
            self.per_layer: dict[int, dict[str, float]] = {}

        def reset(self) -> None:
            self.per_layer = {}

        def __call__(self, model: Any, preds: torch.Tensor, data: tuple) -> dict[int, dict[str, float]]:
            for hook in model.connection_hooks:
                self.per_layer[id(hook.layer)] = SynapticOperations()(_OneLayer(hook), preds, data)
            return self.compute()

        def compute(self) -> dict[int, dict[str, float]]:
            return self.per_layer

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(image, image), batch_size=1)
    bench = nb.benchmarks.Benchmark(nb.models.TorchModel(model), loader, [], [],
                                    [[], [SynapticOperations, LayerSynapticOperations]])
    try:
        with torch.no_grad():
            results = bench.run(quiet=True)
    finally:
        bench.workload_metric_manager.cleanup_hooks(bench.model)
    total, per_layer = results.get("SynapticOperations"), results.get("LayerSynapticOperations")
    if not isinstance(total, dict) or not isinstance(per_layer, dict):
        # NeuroBench's metric manager prints a metric's exception and stores 0.0 instead
        raise NeuroDeployError("NeuroBench's SynapticOperations failed on this network (it reported no counts)")
    return total, per_layer


def _ours(counts: FloatCounts) -> dict[str, dict[str, int]]:
    """Our strict counts of the synaptic ops, keyed like NeuroBench's and summed over a module's
    calls (NeuroBench's hook sums them too)."""
    per_module: dict[str, dict[str, int]] = {}
    for op in counts.ops:
        if op.stage != "gate":
            c = per_module.setdefault(op.name, dict.fromkeys(KEYS, 0))
            c["Effective_ACs" if op.binary else "Effective_MACs"] += op.effective
            c["Dense"] += op.dense_macs
    return per_module


def cross_check(model: nn.Module, image: torch.Tensor, network: str = "") -> NeuroBenchCheck:
    """Count one forward of `model` on one `[1, C, H, W]` image with our hooks and with NeuroBench."""
    _neurobench()  # refuse before the first forward
    counts = count_float(model, image)  # checks the image's shape
    total, per_layer = _run_neurobench(model, image)
    ours = _ours(counts)
    result = NeuroBenchCheck(network or type(model).__name__, tuple(image.shape),
                             neurobench_total=total, ours_strict=counts.convention("strict"),
                             ours_dense=sum(op.dense_macs for op in counts.ops))
    for op in counts.ops:
        if op.stage == "gate":
            result.ours_only[op.name] = result.ours_only.get(op.name, 0) + op.dense_macs
    modules = dict(model.named_modules())
    by_id = {id(m): name for name, m in modules.items()}
    for layer_id, nb_counts in per_layer.items():
        name = by_id[layer_id]
        if name in ours:
            result.layers.append(LayerCheck(name, type(modules[name]).__name__, ours.pop(name),
                                            {k: round(nb_counts[k]) for k in KEYS}))
        elif any(nb_counts[k] for k in KEYS):
            raise NeuroDeployError(f"NeuroBench counted layer {name} that our hooks do not")
        else:
            result.hooked_not_called.append(name)
    if ours:
        raise NeuroDeployError(f"our hooks counted layers NeuroBench does not hook: {', '.join(ours)}")
    return result


def check_checkpoint(checkpoint: str | Path, size: int = 32, image_path: Path = DEFAULT_IMAGE) -> NeuroBenchCheck:
    """The cross-check of a checkpoint (a path or a bundled model's name) on a `size` centre crop."""
    if size <= 0 or size % 8:
        raise NeuroDeployError(f"image size {size}: must be a positive multiple of 8")
    ckpt = zoo.read_checkpoint(checkpoint)
    image = calibration_images(image_path, size)[:1]
    return cross_check(zoo.build_from(ckpt), image, Path(ckpt.path or str(checkpoint)).stem)


def summary_lines(result: NeuroBenchCheck, layers: bool = False) -> list[str]:
    """The comparison as text: totals, the gates only we count, and (with `layers`) every layer."""
    ours, theirs = result.layer_sum("ours"), result.layer_sum("neurobench")
    agreement = [layer.agreement for layer in result.layers]
    lines = [f"{result.network} on {'x'.join(map(str, result.image_shape))}: {len(result.layers)} synaptic layers, "
             f"{agreement.count('exact')} exact, {agreement.count('float32')} within NeuroBench's float32 rounding, "
             f"{agreement.count('differs')} differ"]
    for k in KEYS:
        lines.append(f"  {k:15} ours {ours[k]:>16,}  NeuroBench {theirs[k]:>16,}  "
                     f"(NeuroBench's Benchmark total {result.neurobench_total[k]:,.0f})")
    gates = sum(result.ours_only.values())
    lines.append(f"  strict (ours, gates included): AC {result.ours_strict['ac']:,}  MAC {result.ours_strict['mac']:,}"
                 f"  = convs + {gates:,} gate/product MACs NeuroBench does not count ({len(result.ours_only)} ops)")
    if layers:
        for layer in result.layers:
            lines.append(f"  {layer.name:55} {layer.kind:10} {layer.agreement:8} "
                         + "  ".join(f"{k} {layer.ours[k]:,}/{layer.neurobench[k]:,}" for k in KEYS))
    return lines
