"""A run's overflow for people: the JSON object commands carry, and the one-line warning that names
the worst synapse and its layer as `inspect` prints them.

"Peak ratio": a synapse's largest |sum| before its shift in this run over the largest the
calibration recorded in the network file (`acc_peak`); above the file's headroom the margin that
quantization left is used up, and a sum past the accumulator's limit wraps.
"""

from __future__ import annotations

from typing import Any

from neuro_deploy.ir.graph import Synapse
from neuro_deploy.ir.quantized import Quantized
from neuro_deploy.backends.overflow import Overflow

#: the exit code of a command run with --fail-on-overflow whose run overflowed
OVERFLOW_EXIT = 3


def _destination(q: Quantized, synapse: str) -> str:
    """The layer a synapse feeds."""
    return next(e.dst for e in q.graph.edges if e.src == synapse)


def _index(q: Quantized) -> dict[str, int]:
    """Each layer's index, as `inspect` numbers the rows."""
    return {name: i for i, name in enumerate(n for n in q.graph.topological() if n in q.layers)}


def _ratio(peak: float, recorded: float) -> float | None:
    """Run-time peak over calibration peak (None when calibration saw no sum at all)."""
    return peak / recorded if recorded else None


def summarize(q: Quantized, overflow: Overflow) -> dict[str, Any]:
    """The JSON object: totals; every synapse whose sums wrapped or passed their calibration peak,
    every layer whose states wrapped or saturated (names and indices as `inspect` prints them);
    the largest peak ratio; and the worst synapse (`worst_synapse`)."""
    index = _index(q)
    synapses = {}
    for name, peak in overflow.synapse_peaks.items():
        recorded = q.synapses[name].acc_peak
        wrapped = overflow.synapse_wraps.get(name, 0)
        ratio = _ratio(peak, recorded)
        if wrapped or (peak and (ratio is None or ratio > 1)):
            layer = _destination(q, name)
            synapses[name] = {"layer": layer, "layer_index": index[layer], "wrapped": wrapped, "peak": peak,
                              "calibration_peak": recorded, "peak_ratio": ratio}
    layers = {name: {"index": index[name], "wrapped": overflow.layer_wraps.get(name, 0), "saturated": n}
              for name, n in overflow.layer_saturations.items() if n or overflow.layer_wraps.get(name, 0)}
    ratios = [(r, n) for n, r in ((n, _ratio(p, q.synapses[n].acc_peak)) for n, p in overflow.synapse_peaks.items())
              if r is not None]
    largest = max(ratios, default=None)
    return {"total": overflow.total, "wrapped_sums": sum(overflow.synapse_wraps.values()),
            "wrapped_currents": sum(overflow.layer_wraps.values()),
            "saturated_states": sum(overflow.layer_saturations.values()),
            "largest_peak_ratio": None if largest is None else {"synapse": largest[1], "ratio": largest[0]},
            "worst": worst_synapse(q, overflow), "synapses": synapses, "layers": layers}


def worst_synapse(q: Quantized, overflow: Overflow) -> dict[str, Any] | None:
    """The synapse to look at first, with its layer: the one whose sums wrapped most often; when no
    sum wrapped, the synapse with the largest peak ratio into the layer whose states wrapped or
    saturated most often. None when nothing overflowed."""
    if not overflow.total:
        return None

    def ratio(name: str) -> float:
        r = _ratio(overflow.synapse_peaks.get(name, 0.0), q.synapses[name].acc_peak)
        return float("inf") if r is None else r

    wrapped = {n: c for n, c in overflow.synapse_wraps.items() if c}
    if wrapped:
        name = max(wrapped, key=lambda n: (wrapped[n], ratio(n)))
    else:
        lost = {n: overflow.layer_saturations.get(n, 0) + overflow.layer_wraps.get(n, 0)
                for n in {*overflow.layer_saturations, *overflow.layer_wraps}}
        layer = max(lost, key=lambda n: lost[n])
        into = [s for s in q.graph.inputs(layer) if isinstance(q.graph.nodes[s], Synapse) and s in overflow.synapse_peaks]
        if not into:  # a host layer, fed by its sources' payloads directly
            return {"synapse": None, "layer": layer, "layer_index": _index(q)[layer], "wrapped": 0, "peak_ratio": None, "layer_overflow": lost[layer]}
        name = max(into, key=ratio)
    layer = _destination(q, name)
    return {"synapse": name, "layer": layer, "layer_index": _index(q)[layer], "wrapped": overflow.synapse_wraps.get(name, 0),
            "peak_ratio": _ratio(overflow.synapse_peaks.get(name, 0.0), q.synapses[name].acc_peak),
            "layer_overflow": overflow.layer_saturations.get(layer, 0) + overflow.layer_wraps.get(layer, 0)}


def warning(summary: dict[str, Any]) -> str | None:
    """One line for a run that overflowed (a `summarize` object), None for one that did not."""
    if not summary["total"]:
        return None
    worst = summary["worst"]
    layer = f"layer {worst['layer_index']} {worst['layer']}"
    where = layer if worst["synapse"] is None else f"synapse {worst['synapse']} into {layer}"
    ratio = worst["peak_ratio"]
    peak = "" if worst["synapse"] is None else \
        ", its calibration saw no sum" if ratio is None else f", peak {ratio:.3g}x its calibration peak"
    return (f"warning: fixed-point overflow at run time: {summary['wrapped_sums']} synapse sums wrapped, "
            f"{summary['wrapped_currents']} LIF currents wrapped, {summary['saturated_states']} states saturated; "
            f"worst: {where} ({worst['wrapped']} sums wrapped{peak}; {worst['layer_overflow']} states of the "
            f"layer wrapped or saturated)")
